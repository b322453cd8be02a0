//! `examples/resource_server.rs` from outside, as a user runs it: in front
//! of a stand-in issuer (discovery and JWKS over HTTP, an RSA key published
//! without `alg` as Entra ID does, a key rotated in mid-test, then the
//! issuer taken down), with Keycloak-shaped access and logout tokens
//! signed by joserfc.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};
use tollgate::{Algorithm, KeySet, keys::VerifyingKey};

use crate::common::{RSA_PUB_PEM, joserfc, now, quickstart::binary};

const ES256_PUB_PEM: &[u8] = include_bytes!("../keys/es256.pub.pem");

const AUDIENCE: &str = "shop-api";
const CLIENT: &str = "shop-backend";

/// What the stand-in issuer publishes: its JWK set, or `None` when down.
#[derive(Clone, Default)]
struct Published {
    jwks: Arc<Mutex<Option<Value>>>,
    fetches: Arc<Mutex<usize>>,
}

async fn stand_in_issuer(published: Published) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}/realms/shop");
    let discovery = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
    });
    let app = Router::new()
        .route(
            "/realms/shop/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/realms/shop/protocol/openid-connect/certs",
            get(|State(p): State<Published>| async move {
                *p.fetches.lock().unwrap() += 1;
                match p.jwks.lock().unwrap().clone() {
                    Some(jwks) => Ok(axum::Json(jwks)),
                    None => Err(StatusCode::SERVICE_UNAVAILABLE),
                }
            }),
        )
        .with_state(published);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

/// The JWK set of `keys`, each without `alg`.
fn jwks(keys: &[VerifyingKey]) -> Value {
    let mut b = KeySet::builder();
    for k in keys {
        b = b.verifying_key(k.clone());
    }
    let mut set = serde_json::to_value(b.build().unwrap().jwks()).unwrap();
    for k in set["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("alg");
    }
    set
}

fn rsa() -> VerifyingKey {
    VerifyingKey::from_pem("kc-rsa", Algorithm::RS256, RSA_PUB_PEM).unwrap()
}

fn ec() -> VerifyingKey {
    VerifyingKey::from_pem("kc-ec", Algorithm::ES256, ES256_PUB_PEM).unwrap()
}

/// A Keycloak access token of session `sid` with `scope`.
fn access(issuer: &str, kid: &str, sid: &str, scope: &str) -> (Value, Value) {
    let now = now();
    let alg = if kid == "kc-ec" { "ES256" } else { "RS256" };
    (
        json!({"alg": alg, "typ": "JWT", "kid": kid}),
        json!({
            "exp": now + 300, "iat": now, "jti": format!("at-{sid}-{kid}-{scope}"),
            "iss": issuer, "aud": [AUDIENCE, "account"], "sub": "f0b3a1e2",
            "typ": "Bearer", "azp": "shop-web", "sid": sid, "scope": scope,
            "realm_access": {"roles": ["orders-admin"]}, "email": "alice@shop.example",
        }),
    )
}

/// The example, started as a user would; killed on drop.
struct Example {
    child: Child,
    base: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(issuer: &str) -> Example {
    // Its log, in a file: a pipe nobody reads could fill and stall it.
    let log = std::env::temp_dir().join(format!(
        "tollgate-resource-server-{}.log",
        std::process::id()
    ));
    let mut child = Command::new(binary("resource_server"))
        .env("TOLLGATE_ADDR", "127.0.0.1:0")
        .env("TOLLGATE_UPSTREAM_ISSUER", issuer)
        .env("TOLLGATE_AUDIENCE", AUDIENCE)
        .env("TOLLGATE_TOKEN_PROFILE", "oidc")
        .env("TOLLGATE_BACKCHANNEL_CLIENT_ID", CLIENT)
        .env("TOLLGATE_UNKNOWN_KID_INTERVAL_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| {
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("no address in {line:?}: {err}")
        })
        .to_owned();
    Example {
        base: format!("http://{addr}"),
        child,
    }
}

async fn get_with(base: &str, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    (status, res.text().await.unwrap())
}

/// Waits (at most 15 s) until `path` answers `want` to `token`.
async fn until(base: &str, path: &str, token: &str, want: StatusCode) {
    let start = Instant::now();
    loop {
        if get_with(base, path, Some(token)).await.0 == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{path} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_server_example_in_front_of_a_keycloak_shaped_issuer() {
    let published = Published::default();
    *published.jwks.lock().unwrap() = Some(jwks(&[rsa()]));
    let issuer = stand_in_issuer(published.clone()).await;
    let now = now();
    let logout = (
        json!({"alg": "RS256", "typ": "logout+jwt", "kid": "kc-rsa"}),
        json!({
            "iat": now, "jti": "lo-1", "iss": issuer, "aud": CLIENT, "sub": "f0b3a1e2",
            "sid": "s-1", "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }),
    );
    let Some(rsa_tokens) = joserfc(
        "rsa.pem",
        &[
            access(&issuer, "kc-rsa", "s-1", "openid orders:read"),
            access(&issuer, "kc-rsa", "s-2", "openid"),
            logout,
        ],
    ) else {
        return;
    };
    let ec_tokens = joserfc("es256.pem", &[access(&issuer, "kc-ec", "s-3", "openid")]).unwrap();
    // Blocking until it prints its address, off the stand-in's runtime.
    let ex = tokio::task::spawn_blocking({
        let issuer = issuer.clone();
        move || start(&issuer)
    })
    .await
    .unwrap();
    let base = ex.base.as_str();

    assert_eq!(get_with(base, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(
        get_with(base, "/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get_with(base, "/me", Some(&rsa_tokens[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["realm_access"]["roles"][0], "orders-admin");
    assert_eq!(me["email"], "alice@shop.example");
    assert_eq!(
        get_with(base, "/orders", Some(&rsa_tokens[0])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_with(base, "/orders", Some(&rsa_tokens[1])).await.0,
        StatusCode::FORBIDDEN
    );

    // The issuer rotates a key in: the first token naming it is refused,
    // and the refetch it causes lets the next ones through.
    *published.jwks.lock().unwrap() = Some(jwks(&[rsa(), ec()]));
    until(base, "/me", &ec_tokens[0], StatusCode::OK).await;

    // The issuer goes down: a refetch fails, the keys it had still serve.
    *published.jwks.lock().unwrap() = None;
    let fetched = *published.fetches.lock().unwrap();
    let unknown = joserfc(
        "es256.pem",
        &[{
            let (mut h, c) = access(&issuer, "kc-ec", "s-4", "openid");
            h["kid"] = json!("kc-next");
            (h, c)
        }],
    )
    .unwrap();
    let start = Instant::now();
    while *published.fetches.lock().unwrap() == fetched {
        assert_eq!(
            get_with(base, "/me", Some(&unknown[0])).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no refetch tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get_with(base, "/me", Some(&rsa_tokens[1])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get_with(base, "/me", Some(&ec_tokens[0])).await.0,
        StatusCode::OK
    );

    // The user logs out at the provider: session s-1 is refused at once,
    // s-2 is not; the same logout again is refused.
    let post = || {
        reqwest::Client::new()
            .post(format!("{base}/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("logout_token={}", rsa_tokens[2]))
            .send()
    };
    let res = post().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        get_with(base, "/me", Some(&rsa_tokens[0])).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(base, "/me", Some(&rsa_tokens[1])).await.0,
        StatusCode::OK
    );
    assert_eq!(post().await.unwrap().status().as_u16(), 400);
}

#[test]
fn the_example_refuses_a_plain_http_issuer_off_loopback() {
    let out = Command::new(binary("resource_server"))
        .env("TOLLGATE_UPSTREAM_ISSUER", "http://sso.example/realms/shop")
        .env("TOLLGATE_AUDIENCE", AUDIENCE)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https only"), "{err}");
}
