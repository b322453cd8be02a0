//! Keys from an issuer over real local HTTP and HTTPS servers (a test CA
//! in tests/keys): discovery (OpenID Connect, then RFC 8414) with its
//! `issuer` checked byte for byte, a JWKS URL, a rotation picked up on an
//! unknown `kid` with a flood of random kids causing a handful of fetches,
//! the last good set kept when the issuer fails, and hostile servers
//! (slow drip, huge, redirecting, wrong issuer, untrusted certificate)
//! refused within the deadline and the cap.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tollgate::{
    AccessTokenLayer, AuthError, KeySet,
    access_token::InvalidToken,
    keys::{Algorithm, SigningKey},
    remote_keys::{RemoteKeys, RemoteKeysError},
};

use crate::common::{
    self, ED25519_PEM, ES256_PEM,
    scripted::{CA, Reply, Server, json},
};

fn es256() -> SigningKey {
    SigningKey::from_pem("k1", Algorithm::ES256, ES256_PEM).unwrap()
}

fn ed25519() -> SigningKey {
    SigningKey::from_pem("k2", Algorithm::EdDSA, ED25519_PEM).unwrap()
}

fn jwks(keys: &[SigningKey]) -> String {
    let mut b = KeySet::builder();
    for k in keys {
        b = b.verifying_key(k.verifying_key());
    }
    serde_json::to_string(&b.build().unwrap().jwks()).unwrap()
}

fn discovery(issuer: &str, jwks_uri: &str) -> String {
    serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string()
}

fn token(key: &SigningKey, iss: &str, jti: &str) -> String {
    let mut c = common::claims(jti);
    c.iss = iss.to_owned();
    key.sign(&c).unwrap()
}

fn gate(keys: &RemoteKeys) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(keys.keys())
        .issuer(keys.issuer())
        .audience(common::AUD)
        // The issuer may rotate to a key of another algorithm.
        .algorithms([Algorithm::ES256, Algorithm::EdDSA])
        .no_verified_token_cache()
        .build()
        .unwrap()
}

#[tokio::test]
async fn discovery_finds_the_keys_and_checks_the_issuer_byte_for_byte() {
    let s = Server::start(false).await;
    let issuer = s.url("/realms/shop");
    s.route(
        "/realms/shop/.well-known/openid-configuration",
        json(discovery(&issuer, &s.url("/certs"))),
    );
    s.route("/certs", json(jwks(&[es256()])));
    let keys = RemoteKeys::discover(&issuer).build().await.unwrap();
    assert_eq!(keys.jwks_uri().to_string(), s.url("/certs"));
    let g = gate(&keys);
    assert!(g.verify(&token(&es256(), &issuer, "t-1")).is_ok());

    // The document names another issuer (a trailing slash is another).
    for other in [format!("{issuer}/"), s.url("/realms/other")] {
        s.route(
            "/realms/shop/.well-known/openid-configuration",
            json(discovery(&other, &s.url("/certs"))),
        );
        let err = RemoteKeys::discover(&issuer).build().await.unwrap_err();
        assert!(
            matches!(err, RemoteKeysError::IssuerMismatch(ref i) if *i == other),
            "{err}"
        );
    }
    // A jwks_uri that is plain http to another host.
    s.route(
        "/realms/shop/.well-known/openid-configuration",
        json(discovery(&issuer, "http://keys.example/certs")),
    );
    let err = RemoteKeys::discover(&issuer).build().await.unwrap_err();
    assert!(matches!(err, RemoteKeysError::Url(_)), "{err}");
}

#[tokio::test]
async fn discovery_falls_back_to_rfc_8414() {
    let s = Server::start(false).await;
    let issuer = s.url("/tenant-1");
    s.route(
        "/.well-known/oauth-authorization-server/tenant-1",
        json(discovery(&issuer, &s.url("/jwks"))),
    );
    s.route("/jwks", json(jwks(&[ed25519()])));
    let keys = RemoteKeys::discover(&issuer).build().await.unwrap();
    assert!(
        gate(&keys)
            .verify(&token(&ed25519(), &issuer, "t-2"))
            .is_ok()
    );
    assert_eq!(s.hits("/tenant-1/.well-known/openid-configuration"), 1);
}

#[tokio::test]
async fn over_https_with_a_private_ca_and_never_with_an_untrusted_certificate() {
    let s = Server::start(true).await;
    s.route("/jwks", json(jwks(&[es256()])));
    let issuer = "https://auth.example";
    let keys = RemoteKeys::jwks(issuer, &s.url("/jwks"))
        .root_certificates(CA)
        .build()
        .await
        .unwrap();
    assert!(gate(&keys).verify(&token(&es256(), issuer, "t-3")).is_ok());
    let err = RemoteKeys::jwks(issuer, &s.url("/jwks"))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteKeysError::Http(_)), "{err}");
    assert!(matches!(
        RemoteKeys::jwks(issuer, &s.url("/jwks"))
            .root_certificates(b"not pem")
            .build()
            .await,
        Err(RemoteKeysError::BadRootCertificate)
    ));
    // Plain http is for loopback hosts only.
    let err = RemoteKeys::jwks(issuer, "http://auth.example/jwks")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteKeysError::Url(_)));
}

#[tokio::test]
async fn an_unknown_kid_brings_the_rotation_in_and_a_flood_costs_a_handful_of_fetches() {
    let s = Server::start(false).await;
    s.route("/jwks", json(jwks(&[es256()])));
    let issuer = "https://auth.example";
    let interval = Duration::from_millis(300);
    let keys = RemoteKeys::jwks(issuer, &s.url("/jwks"))
        .unknown_kid_interval(interval)
        .build()
        .await
        .unwrap();
    let refresher = keys.spawn();
    let g = gate(&keys);
    assert_eq!(s.hits("/jwks"), 1);

    // The issuer rotates to a new key; its tokens name `k2`.
    s.route("/jwks", json(jwks(&[es256(), ed25519()])));
    let new = token(&ed25519(), issuer, "t-4");
    let start = Instant::now();
    // Meanwhile, tokens with random kids from many tasks at once.
    let flood: Vec<_> = (0..8)
        .map(|t| {
            let g = g.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    let k = SigningKey::hmac(format!("random-{t}-{i}"), Algorithm::HS256, &[1; 32])
                        .unwrap();
                    let _ = g.verify(&token(&k, "https://auth.example", "x"));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    loop {
        match g.verify(&new) {
            Ok(_) => break,
            Err(e) => assert_eq!(e, AuthError::InvalidToken(InvalidToken::UnknownKey)),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new key never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for f in flood {
        f.await.unwrap();
    }
    let took = start.elapsed();
    // One fetch at build, then at most one per interval while the flood
    // lasted (and one more at its edge).
    let bound = 2 + (took.as_millis() / interval.as_millis()) as usize + 1;
    let fetched = s.hits("/jwks");
    assert!(
        fetched >= 2 && fetched <= bound,
        "{fetched} fetches in {took:?} (bound {bound})"
    );
    refresher.abort();
}

#[tokio::test]
async fn a_failing_issuer_leaves_the_last_good_keys_serving() {
    let s = Server::start(false).await;
    s.route("/jwks", json(jwks(&[es256()])));
    let issuer = "https://auth.example";
    let keys = RemoteKeys::jwks(issuer, &s.url("/jwks"))
        .build()
        .await
        .unwrap();
    let g = gate(&keys);
    let t = token(&es256(), issuer, "t-5");
    let failures = [
        Reply::Json {
            status: 500,
            body: "{}".into(),
            cache_control: None,
        },
        json("<html>maintenance</html>"),
        json(r#"{"keys":[]}"#),
        json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"k1"}]}"#),
    ];
    let before = keys.last_refresh();
    for reply in failures {
        s.route("/jwks", reply);
        assert!(keys.refresh().await.is_err());
        assert!(keys.is_failing());
        assert!(g.verify(&t).is_ok(), "the last good set still serves");
    }
    assert_eq!(keys.last_refresh(), before);
    s.route("/jwks", json(jwks(&[es256()])));
    assert_eq!(keys.refresh().await.unwrap(), 1);
    assert!(!keys.is_failing());
    // At build there is no last good set: no keys, no gate.
    s.route("/jwks", json(r#"{"keys":[]}"#));
    assert!(matches!(
        RemoteKeys::jwks(issuer, &s.url("/jwks")).build().await,
        Err(RemoteKeysError::Keys(_))
    ));
}

#[tokio::test]
async fn hostile_servers_are_cut_off_within_the_deadline_and_the_cap() {
    let s = Server::start(false).await;
    let issuer = "https://auth.example";
    let timeout = Duration::from_millis(800);
    let build = |path: &str| {
        RemoteKeys::jwks(issuer, &s.url(path))
            .timeout(timeout)
            .max_bytes(64 * 1024)
            .build()
    };
    s.route("/drip", Reply::Drip);
    let start = Instant::now();
    assert!(matches!(
        build("/drip").await,
        Err(RemoteKeysError::Timeout(_))
    ));
    assert!(start.elapsed() < timeout * 3, "cut off at the deadline");

    s.route("/endless", Reply::Endless);
    assert!(matches!(
        build("/endless").await,
        Err(RemoteKeysError::TooLarge(_))
    ));
    s.route(
        "/big",
        json(format!(
            "{{\"keys\":[],\"pad\":\"{}\"}}",
            "x".repeat(100_000)
        )),
    );
    assert!(matches!(
        build("/big").await,
        Err(RemoteKeysError::TooLarge(_))
    ));

    // A redirect is never followed, even to good keys on the same host.
    s.route("/jwks", json(jwks(&[es256()])));
    s.route("/moved", Reply::Redirect(s.url("/jwks")));
    assert!(matches!(
        build("/moved").await,
        Err(RemoteKeysError::Status(http::StatusCode::FOUND))
    ));
    assert_eq!(s.hits("/jwks"), 0);
    assert!(build("/jwks").await.is_ok());
}

#[tokio::test]
async fn the_background_refresh_follows_cache_control_within_the_bounds() {
    let s = Server::start(false).await;
    let issuer = "https://auth.example";
    let with = |cc: &'static str| Reply::Json {
        status: 200,
        body: jwks(&[es256()]),
        cache_control: Some(cc),
    };
    // Each (Cache-Control, bounds): the wait it must come to.
    for (path, cc, min, max) in [
        // A day asked for, an hour's worth of bound: the upper bound.
        ("/a", "public, max-age=86400", 50, 250),
        // Nothing to keep: the lower bound, never a busy loop.
        ("/b", "no-store", 250, 3_600_000),
    ] {
        s.route(path, with(cc));
        let keys = RemoteKeys::jwks(issuer, &s.url(path))
            .refresh_between(Duration::from_millis(min), Duration::from_millis(max))
            .build()
            .await
            .unwrap();
        let start = Instant::now();
        let task = keys.spawn();
        while s.hits(path) < 4 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{path}: no refresh"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = start.elapsed();
        task.abort();
        // Three refreshes after the build: at least three waits of 250 ms.
        assert!(took >= Duration::from_millis(3 * 250), "{path}: {took:?}");
    }
}

#[tokio::test]
async fn the_same_keys_fetched_again_rotate_nothing() {
    let s = Server::start(false).await;
    s.route("/jwks", json(jwks(&[es256()])));
    let keys = RemoteKeys::jwks("https://auth.example", &s.url("/jwks"))
        .build()
        .await
        .unwrap();
    let before = keys.keys().current();
    keys.refresh().await.unwrap();
    // The gate's verified-token cache lives on (it is tied to the set).
    assert!(Arc::ptr_eq(&before, &keys.keys().current()));
    s.route("/jwks", json(jwks(&[es256(), ed25519()])));
    keys.refresh().await.unwrap();
    assert!(!Arc::ptr_eq(&before, &keys.keys().current()));
    assert_eq!(keys.keys().current().verifying_keys().len(), 2);
}

#[tokio::test]
async fn public_addresses_only_refuses_loopback_by_address_and_by_name() {
    // The same servers that serve keys above, over plain HTTP and HTTPS
    // (the certificate names `localhost`, resolved by the system).
    for tls in [false, true] {
        let s = Server::start(tls).await;
        s.route("/jwks", json(jwks(&[es256()])));
        let url = s.url("/jwks");
        let build = |public_only: bool| {
            let b = RemoteKeys::jwks("https://auth.example", &url).root_certificates(CA);
            let b = if public_only {
                b.public_addresses_only()
            } else {
                b
            };
            b.build()
        };
        assert!(build(false).await.is_ok(), "{url}");
        let err = build(true).await.unwrap_err();
        assert!(matches!(err, RemoteKeysError::Address), "{url}: {err}");
        assert_eq!(s.hits("/jwks"), 1, "refused before any request was sent");
    }
}
