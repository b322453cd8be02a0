//! One gate for several issuers: each token is judged by its issuer's
//! gate alone (keys, audience, claim profile), a token claiming one
//! issuer but signed with another's key is refused, and requests the
//! gates do not claim get the first gate's answer.

use http::{Request, StatusCode};
use tollgate::{
    AccessTokenConfigError, AccessTokenLayer, Algorithm, RevocationCache,
    access_token::MultiIssuerLayer, claims::TokenProfile, keys::SigningKey,
};
use tower::{Layer, ServiceExt, service_fn};

use crate::{
    common::{self, ES256_PEM, RSA_PEM},
    resource::{bearer_challenge, param},
};

const A: &str = "https://login.tenant-a.example";
const B: &str = "https://sso.tenant-b.example/realms/b";

fn key_a() -> SigningKey {
    SigningKey::from_pem("a-1", Algorithm::ES256, ES256_PEM).unwrap()
}

fn key_b() -> SigningKey {
    SigningKey::from_pem("b-1", Algorithm::RS256, RSA_PEM).unwrap()
}

fn gates(revocations: &RevocationCache) -> MultiIssuerLayer {
    let a = AccessTokenLayer::builder()
        .keys(
            tollgate::KeySet::builder()
                .verifying_key(key_a().verifying_key())
                .build()
                .unwrap(),
        )
        .issuer(A)
        .audience("orders-api")
        .realm("tenant-a")
        .revocations(revocations.clone())
        .build()
        .unwrap();
    let b = AccessTokenLayer::builder()
        .keys(
            tollgate::KeySet::builder()
                .verifying_key(key_b().verifying_key())
                .build()
                .unwrap(),
        )
        .issuer(B)
        .audience("b-orders")
        .profile(TokenProfile::Oidc)
        .revocations(revocations.clone())
        .build()
        .unwrap();
    MultiIssuerLayer::new([a, b]).unwrap()
}

/// A token of `iss` for `aud`, signed with `key`.
fn token(key: &SigningKey, iss: &str, aud: &str, jti: &str) -> String {
    let mut c = common::claims(jti);
    c.iss = iss.into();
    c.aud = vec![aud.into()];
    key.sign(&c).unwrap()
}

async fn call(g: &MultiIssuerLayer, req: Request<String>) -> http::Response<String> {
    g.layer(service_fn(common::echo_sub))
        .oneshot(req)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_token_is_judged_by_its_issuers_gate_alone() {
    let g = gates(&RevocationCache::default());
    // Each issuer's own token, for its own audience.
    let res = call(&g, common::bearer(&token(&key_a(), A, "orders-api", "t-1"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(&g, common::bearer(&token(&key_b(), B, "b-orders", "t-2"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice:t-2");
    // Judged under B's profile (OpenID: no `jti`, no `client_id` needed),
    // while A's strict RFC 9068 gate refuses the same shape.
    let bare = |key: &SigningKey, iss: &str, aud: &str| {
        let mut c = common::claims("unused");
        (c.iss, c.aud, c.jti, c.client_id) = (iss.into(), vec![aud.into()], None, None);
        key.sign(&c).unwrap()
    };
    let res = call(&g, common::bearer(&bare(&key_b(), B, "b-orders"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(&g, common::bearer(&bare(&key_a(), A, "orders-api"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    for (t, why) in [
        // Claims B, signed with A's key: B's gate knows no such key.
        (
            token(&key_a(), B, "b-orders", "t-3"),
            "another issuer's key",
        ),
        // A's token for B's audience.
        (
            token(&key_a(), A, "b-orders", "t-4"),
            "another issuer's audience",
        ),
        // An issuer no gate trusts.
        (
            token(&key_a(), "https://evil.example", "orders-api", "t-5"),
            "an unknown issuer",
        ),
        // Not a JWT at all.
        ("abc.def".to_owned(), "garbage"),
    ] {
        let res = call(&g, common::bearer(&t)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(
            param(&bearer_challenge(res.headers()), "error"),
            Some("invalid_token"),
            "{why}"
        );
    }
    // Nothing at all: the first gate's challenge.
    let anonymous = Request::get("/orders").body(String::new()).unwrap();
    let res = call(&g, anonymous).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        param(&bearer_challenge(res.headers()), "realm"),
        Some("tenant-a")
    );
}

#[tokio::test]
async fn a_revocation_in_the_shared_deny_list_reaches_every_issuers_tokens() {
    let revocations = RevocationCache::default();
    let g = gates(&revocations);
    let t = token(&key_b(), B, "b-orders", "t-6");
    revocations.revoke_token(
        "t-6",
        std::time::SystemTime::now() + std::time::Duration::from_secs(600),
    );
    let res = call(&g, common::bearer(&t)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn one_gate_per_issuer() {
    let g = gates(&RevocationCache::default());
    let a = g.gates()[0].clone();
    assert_eq!(
        MultiIssuerLayer::new([a.clone(), a]).unwrap_err(),
        AccessTokenConfigError::DuplicateIssuer(A.into())
    );
    assert_eq!(
        MultiIssuerLayer::new([]).unwrap_err(),
        AccessTokenConfigError::NoIssuers
    );
}
