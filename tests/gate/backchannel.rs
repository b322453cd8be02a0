//! OpenID Connect Back-Channel Logout 1.0: logout tokens signed by joserfc
//! (an independent JOSE implementation) in the shapes Keycloak and Auth0
//! send, POSTed to the receiver as a provider does; the session or the
//! subject they name is refused at once by a gate sharing the deny list,
//! and every token §2.6 says to reject is refused with 400, a JSON error,
//! `Cache-Control: no-store` and nothing denied.

use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tollgate::{
    AccessTokenLayer, Algorithm, KeySet, RevocationCache,
    backchannel::{BackChannelConfigError, BackChannelLogout, LoggedOut, LogoutError},
    claims::TokenProfile,
    keys::VerifyingKey,
};
use tower::{Layer, ServiceExt, service_fn};

use crate::common::{self, RSA_PUB_PEM, joserfc, now};

const ISS: &str = "https://sso.example/realms/shop";
const CLIENT: &str = "shop-api";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const SID: &str = "7a1c9e2b-3d4f-4a5b-8c6d-1e2f3a4b5c6d";
const SUB: &str = "f0b3a1e2-9c4d-4e8f-a2b1-6d5c4b3a2f10";

fn keys() -> KeySet {
    KeySet::builder()
        .verifying_key(VerifyingKey::from_pem("kc-rsa", Algorithm::RS256, RSA_PUB_PEM).unwrap())
        .build()
        .unwrap()
}

fn receiver(revocations: &RevocationCache) -> BackChannelLogout {
    BackChannelLogout::builder()
        .issuer(ISS)
        .client_id(CLIENT)
        .keys(keys())
        .revocations(revocations.clone())
        .build()
        .unwrap()
}

fn gate(revocations: &RevocationCache) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(keys())
        .issuer(ISS)
        .audience(CLIENT)
        .profile(TokenProfile::Oidc)
        .revocations(revocations.clone())
        .build()
        .unwrap()
}

/// Keycloak's logout token: `typ` logout+jwt, `sid` and `sub`, no `exp`.
fn keycloak_logout(jti: &str, iat: u64) -> (Value, Value) {
    (
        json!({"alg": "RS256", "typ": "logout+jwt", "kid": "kc-rsa"}),
        json!({
            "iat": iat, "jti": jti, "iss": ISS, "aud": CLIENT, "sub": SUB,
            "typ": "Logout", "sid": SID, "events": {EVENT: {}},
        }),
    )
}

/// An access token of the provider for `sid`, issued at `iat`.
fn access(jti: &str, sid: Option<&str>, iat: u64) -> (Value, Value) {
    let mut claims = json!({
        "exp": iat + 300, "iat": iat, "jti": jti, "iss": ISS, "aud": CLIENT,
        "sub": SUB, "azp": "shop-web", "scope": "openid",
    });
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    (
        json!({"alg": "RS256", "typ": "JWT", "kid": "kc-rsa"}),
        claims,
    )
}

fn post(body: String) -> Request<String> {
    Request::post("/backchannel-logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .unwrap()
}

/// The receiver's answer: status, and the parsed JSON error (if any).
async fn deliver(r: &BackChannelLogout, req: Request<String>) -> (StatusCode, Option<Value>) {
    let res = r.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let error = (!body.is_empty()).then(|| {
        assert_eq!(status, StatusCode::BAD_REQUEST);
        serde_json::from_slice::<Value>(&body).unwrap()
    });
    (status, error)
}

async fn admitted(g: &AccessTokenLayer, token: &str) -> bool {
    let res = g
        .clone()
        .layer(service_fn(common::echo_sub))
        .oneshot(common::bearer(token))
        .await
        .unwrap();
    res.status() == StatusCode::OK
}

#[tokio::test]
async fn a_keycloak_logout_ends_that_sessions_access_tokens_at_once() {
    let now = now();
    let Some(t) = joserfc(
        "rsa.pem",
        &[
            keycloak_logout("lo-1", now),
            access("at-1", Some(SID), now - 5),
            access("at-2", Some("another-session"), now - 5),
        ],
    ) else {
        return;
    };
    let revocations = RevocationCache::default();
    let (r, g) = (receiver(&revocations), gate(&revocations));
    assert!(admitted(&g, &t[1]).await);
    let (status, error) = deliver(&r, post(format!("logout_token={}", t[0]))).await;
    assert_eq!((status, error), (StatusCode::OK, None));
    assert!(!admitted(&g, &t[1]).await, "the session's token is refused");
    assert!(admitted(&g, &t[2]).await, "another session is not");

    // The provider delivering it again (a retry, or an attacker replaying
    // it): refused, and nothing changes.
    let (status, error) = deliver(&r, post(format!("logout_token={}", t[0]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = error.unwrap();
    assert_eq!(error["error"], "invalid_request");
    assert_eq!(
        error["error_description"],
        "The logout token was already used"
    );
}

#[tokio::test]
async fn a_logout_without_sid_ends_the_subjects_tokens_issued_up_to_it() {
    let now = now();
    // Auth0's shape: no `typ`, `aud` an array, `sub` only.
    let logout = (
        json!({"alg": "RS256", "kid": "kc-rsa"}),
        json!({
            "iss": ISS, "aud": [CLIENT], "iat": now - 10, "exp": now + 110,
            "jti": "lo-2", "sub": SUB, "events": {EVENT: {}},
        }),
    );
    let Some(t) = joserfc(
        "rsa.pem",
        &[
            logout,
            access("at-3", None, now - 20),
            access("at-4", Some("s-9"), now - 10),
            // Signed after the logout: a new sign-in.
            access("at-5", None, now - 9),
        ],
    ) else {
        return;
    };
    let revocations = RevocationCache::default();
    let (r, g) = (receiver(&revocations), gate(&revocations));
    assert_eq!(
        r.logout(&t[0]).await,
        Ok(LoggedOut::Subject(SUB.to_owned()))
    );
    assert!(!admitted(&g, &t[1]).await);
    assert!(
        !admitted(&g, &t[2]).await,
        "the logout's second, any session"
    );
    assert!(admitted(&g, &t[3]).await, "issued after the logout");
}

#[tokio::test]
async fn every_token_the_spec_rejects_is_refused_and_denies_nothing() {
    let now = now();
    let variant = |jti: &str, edit: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = keycloak_logout(jti, now);
        edit(&mut h, &mut c);
        (h, c)
    };
    let cases: Vec<(&str, (Value, Value))> = vec![
        (
            "The token is not a logout token",
            variant("v-nonce", &|_, c| c["nonce"] = json!("n-1")),
        ),
        (
            "The token is not a logout token",
            variant("v-events", &|_, c| c["events"] = json!({})),
        ),
        (
            "The token is not a logout token",
            variant("v-event-value", &|_, c| c["events"] = json!({EVENT: "yes"})),
        ),
        (
            "The token is not a logout token",
            variant("v-no-events", &|_, c| {
                c.as_object_mut().unwrap().remove("events");
            }),
        ),
        (
            "The token is not a logout token",
            variant("v-nobody", &|_, c| {
                let c = c.as_object_mut().unwrap();
                c.remove("sid");
                c.remove("sub");
            }),
        ),
        (
            "The token is not a logout token",
            variant("v-no-iat", &|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "The token is not a logout token",
            variant("v-no-jti", &|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "The logout token is from another issuer",
            variant("v-iss", &|_, c| {
                c["iss"] = json!("https://sso.example/realms/other");
            }),
        ),
        (
            "The logout token is for another client",
            variant("v-aud", &|_, c| c["aud"] = json!("another-client")),
        ),
        (
            "The logout token is too old or not valid yet",
            variant("v-old", &|_, c| c["iat"] = json!(now - 600)),
        ),
        (
            "The logout token is too old or not valid yet",
            variant("v-future", &|_, c| c["iat"] = json!(now + 600)),
        ),
        (
            "The logout token is too old or not valid yet",
            variant("v-exp", &|_, c| c["exp"] = json!(now - 120)),
        ),
        // An ID token's type: the cross-JWT confusion §4.1 warns of.
        (
            "The token is not a logout token (typ)",
            variant("v-typ", &|h, _| h["typ"] = json!("JWT")),
        ),
        (
            "The logout token's key is unknown",
            variant("v-kid", &|h, _| h["kid"] = json!("another-key")),
        ),
    ];
    let tokens: Vec<_> = cases.iter().map(|(_, t)| t.clone()).collect();
    let Some(signed) = joserfc("rsa.pem", &tokens) else {
        return;
    };
    let Some(session) = joserfc("rsa.pem", &[access("at-6", Some(SID), now - 5)]) else {
        return;
    };
    let revocations = RevocationCache::default();
    let (r, g) = (receiver(&revocations), gate(&revocations));
    for ((want, _), token) in cases.iter().zip(&signed) {
        let (status, error) = deliver(&r, post(format!("logout_token={token}"))).await;
        let error = error.unwrap_or_else(|| panic!("{want}: accepted ({status})"));
        assert_eq!(error["error"], "invalid_request");
        assert_eq!(error["error_description"], *want, "{token}");
    }
    // A signature by another key, and a token one character off.
    let mut flipped = signed[0].clone().into_bytes();
    let last = flipped.len() - 3;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let (h, c) = keycloak_logout("v-forged", now);
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        c.to_string(),
    );
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        h.to_string(),
    );
    for (token, want) in [
        (
            flipped,
            LogoutError::Token(tollgate::access_token::InvalidToken::BadSignature),
        ),
        (
            format!("{header}.{payload}.c2lnbmF0dXJl"),
            LogoutError::Token(tollgate::access_token::InvalidToken::BadSignature),
        ),
        (
            common::raw_jwt(&json!({"alg": "none"}), &c, ""),
            LogoutError::Token(tollgate::access_token::InvalidToken::DisallowedAlgorithm),
        ),
    ] {
        assert_eq!(r.logout(&token).await, Err(want), "{token}");
    }
    assert!(admitted(&g, &session[0]).await, "nothing was denied");
}

#[tokio::test]
async fn requests_that_are_not_one_posted_logout_token_are_refused() {
    let revocations = RevocationCache::default();
    let r = receiver(&revocations);
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJ9.c2ln";
    let get = Request::get(format!("/backchannel-logout?logout_token={token}"))
        .body(String::new())
        .unwrap();
    let json = Request::post("/backchannel-logout")
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({"logout_token": token}).to_string())
        .unwrap();
    let cases = [
        get,
        json,
        post(format!("logout_token={token}&logout_token={token}")),
        post(String::new()),
        post("logout_token=".into()),
        post("logout_token".into()),
        post(format!("logout_token={token}%2B")),
        post(format!("logout_token={}", "a".repeat(20_000))),
    ];
    for req in cases {
        let (status, error) = deliver(&r, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error.unwrap()["error_description"],
            "The request must be a POST of a form with one logout_token"
        );
    }
    // Other parameters are ignored; the token is then judged on its own.
    let (status, error) = deliver(&r, post(format!("x=1&logout_token={token}&y"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_ne!(
        error.unwrap()["error_description"],
        "The request must be a POST of a form with one logout_token"
    );
}

#[test]
fn the_receiver_is_built_whole_and_with_public_keys_only() {
    let revocations = RevocationCache::default();
    let hmac = KeySet::builder()
        .signing_key(common::hs256())
        .build()
        .unwrap();
    let built = BackChannelLogout::builder()
        .issuer(ISS)
        .client_id(CLIENT)
        .keys(hmac)
        .revocations(revocations.clone())
        .build();
    assert_eq!(built.unwrap_err(), BackChannelConfigError::HmacKey);
    let built = BackChannelLogout::builder()
        .issuer(ISS)
        .keys(keys())
        .revocations(revocations)
        .build();
    assert!(matches!(built, Err(BackChannelConfigError::Missing(_))));
}
