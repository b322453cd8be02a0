//! Claim profiles: tokens in the shapes Keycloak, Auth0, Entra ID and Okta
//! mint them (from their documented token formats), signed by Python's
//! joserfc rather than our signer, accepted under `TokenProfile::Oidc` and
//! read into the same `AccessClaims`; refused under the strict RFC 9068
//! default; and every malformed variant refused with the check it failed
//! named in `error_description`.

use std::{
    convert::Infallible,
    time::{Duration, SystemTime},
};

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tollgate::{
    AccessClaims, AccessTokenLayer, Algorithm, KeySet, RevocationCache,
    claims::{Claim, RawClaims, TokenProfile},
    keys::VerifyingKey,
};
use tower::{Layer, ServiceExt, service_fn};

use crate::{
    common::{self, RSA_PUB_PEM, joserfc, now},
    resource::{bearer_challenge, param},
};

const KEYCLOAK: &str = "https://sso.example/realms/shop";
const AUTH0: &str = "https://shop.eu.auth0.example/";
const ENTRA: &str =
    "https://login.microsoftonline.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
const OKTA: &str = "https://shop.okta.example/oauth2/default";
const API: &str = "https://api.shop.example";

fn rsa_keys(kid: &str) -> KeySet {
    KeySet::builder()
        .verifying_key(VerifyingKey::from_pem(kid, Algorithm::RS256, RSA_PUB_PEM).unwrap())
        .build()
        .unwrap()
}

fn oidc_gate(issuer: &str, kid: &str) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(rsa_keys(kid))
        .issuer(issuer)
        .audience(API)
        .profile(TokenProfile::Oidc)
        .build()
        .unwrap()
}

/// Answers 200 with the verified claims as JSON, and under `_raw` every
/// claim as the issuer signed it.
async fn echo_claims(req: Request<String>) -> Result<Response<String>, Infallible> {
    let claims = req.extensions().get::<AccessClaims>().unwrap();
    let raw: Value = req
        .extensions()
        .get::<RawClaims>()
        .unwrap()
        .deserialize()
        .unwrap();
    let mut answer = serde_json::to_value(claims).unwrap();
    answer["_raw"] = raw;
    Ok(Response::new(answer.to_string()))
}

/// The gate's answer to `token`: status, the verified claims on 200, the
/// challenge's parameters otherwise.
async fn present(
    gate: &AccessTokenLayer,
    token: &str,
) -> (StatusCode, Value, Vec<(String, String)>) {
    let res = gate
        .clone()
        .layer(service_fn(echo_claims))
        .oneshot(common::bearer(token))
        .await
        .unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        return (
            status,
            serde_json::from_str(res.body()).unwrap(),
            Vec::new(),
        );
    }
    let params = bearer_challenge(res.headers());
    (status, Value::Null, params)
}

/// Keycloak's access token: `typ` JWT, `azp` for the client, realm roles
/// and `sid`, an audience mapper adding the API.
fn keycloak(now: u64) -> (Value, Value) {
    (
        json!({"alg": "RS256", "typ": "JWT", "kid": "kc-rsa"}),
        json!({
            "exp": now + 300, "iat": now, "auth_time": now - 10,
            "jti": "onrtac:4f1d2a44-7c3b-4f21-9a55-3f5c8f6d2b10",
            "iss": KEYCLOAK, "aud": [API, "account"],
            "sub": "f0b3a1e2-9c4d-4e8f-a2b1-6d5c4b3a2f10", "typ": "Bearer",
            "azp": "shop-web", "sid": "7a1c9e2b-3d4f-4a5b-8c6d-1e2f3a4b5c6d",
            "acr": "1", "allowed-origins": ["https://shop.example"],
            "realm_access": {"roles": ["default-roles-shop", "orders-admin"]},
            "resource_access": {"account": {"roles": ["view-profile"]}},
            "scope": "openid email profile orders:read",
            "email_verified": true, "preferred_username": "alice",
            "email": "alice@shop.example"
        }),
    )
}

/// Auth0's default access token: `typ` JWT, no `jti`, `azp`, two
/// audiences (the API and `/userinfo`), RBAC `permissions`.
fn auth0(now: u64) -> (Value, Value) {
    (
        json!({"alg": "RS256", "typ": "JWT", "kid": "auth0-rsa"}),
        json!({
            "iss": AUTH0, "sub": "auth0|64b7f0c2a1d3e4f5a6b7c8d9",
            "aud": [API, "https://shop.eu.auth0.example/userinfo"],
            "iat": now, "exp": now + 86_000, "azp": "Xq9vZ2b8PpT1mN3kL6cR",
            "scope": "openid profile orders:read",
            "permissions": ["orders:read"]
        }),
    )
}

/// Entra ID v2: `typ` JWT with `x5t`, no `jti` (`uti` instead), `azp`,
/// `scp` as a space-separated string, `tid`.
fn entra(now: u64) -> (Value, Value) {
    (
        json!({"typ": "JWT", "alg": "RS256", "kid": "entra-rsa", "x5t": "entra-rsa"}),
        json!({
            "aud": API, "iss": ENTRA, "iat": now, "nbf": now, "exp": now + 3_900,
            "aio": "AWQAm/8TAAAA", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "azpacr": "0", "name": "Alice", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "preferred_username": "alice@shop.example", "rh": "0.ARoAv4j5cvGGr0",
            "scp": "orders.read orders.write",
            "sub": "MF4f-ggWMEji12KynJUNQZphaUTvLcQug5jdF2nl01Q",
            "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
            "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"
        }),
    )
}

/// Okta's custom authorization server: no `typ`, `cid` for the client,
/// `scp` as an array, `uid`.
fn okta(now: u64) -> (Value, Value) {
    (
        json!({"kid": "okta-rsa", "alg": "RS256"}),
        json!({
            "ver": 1, "jti": "AT.0mP4JKAa8zM3eLn6bqD5eXEm9U2mHqDmLn8UGrZ4xWk",
            "iss": OKTA, "aud": API, "iat": now, "exp": now + 3_600,
            "cid": "0oa1abcdEFGHijkl2345", "uid": "00u1abcdEFGHijkl2345",
            "scp": ["openid", "orders:read"], "auth_time": now - 60,
            "sub": "alice@shop.example"
        }),
    )
}

#[tokio::test]
async fn every_providers_token_is_read_into_the_same_claims() {
    let now = now();
    let Some(tokens) = joserfc(
        "rsa.pem",
        &[keycloak(now), auth0(now), entra(now), okta(now)],
    ) else {
        return;
    };
    // Each provider's own claim, as the handler reads it.
    let own = [
        ("/realm_access/roles/1", json!("orders-admin")),
        ("/permissions/0", json!("orders:read")),
        ("/tid", json!("9188040d-6c67-4c5b-b112-36a304b66dad")),
        ("/uid", json!("00u1abcdEFGHijkl2345")),
    ];
    let cases = [
        (
            KEYCLOAK,
            "kc-rsa",
            "shop-web",
            "openid email profile orders:read",
            true,
        ),
        (
            AUTH0,
            "auth0-rsa",
            "Xq9vZ2b8PpT1mN3kL6cR",
            "openid profile orders:read",
            false,
        ),
        (
            ENTRA,
            "entra-rsa",
            "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "orders.read orders.write",
            false,
        ),
        (
            OKTA,
            "okta-rsa",
            "0oa1abcdEFGHijkl2345",
            "openid orders:read",
            true,
        ),
    ];
    for (((issuer, kid, client, scope, has_jti), token), (pointer, value)) in
        cases.into_iter().zip(&tokens).zip(own)
    {
        let (status, claims, params) = present(&oidc_gate(issuer, kid), token).await;
        assert_eq!(status, StatusCode::OK, "{issuer}: {params:?}");
        assert_eq!(claims["_raw"].pointer(pointer), Some(&value), "{issuer}");
        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["client_id"], client, "{issuer}");
        assert_eq!(claims["scope"], scope, "{issuer}");
        assert_eq!(claims.get("jti").is_some(), has_jti, "{issuer}");

        // The strict default refuses each, naming why: `typ` JWT (or
        // none) is not `at+jwt`.
        let strict = AccessTokenLayer::builder()
            .keys(rsa_keys(kid))
            .issuer(issuer)
            .audience(API)
            .build()
            .unwrap();
        let (status, _, params) = present(&strict, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{issuer}");
        assert_eq!(param(&params, "error"), Some("invalid_token"));
        assert_eq!(
            param(&params, "error_description"),
            Some("The token is not an access token"),
            "{issuer}"
        );
        // With the type allowed, the missing RFC 9068 claim is named.
        let (_, _, params) = present(&strict_any_type(issuer, kid), token).await;
        let missing = if has_jti { "client_id" } else { "jti" };
        assert_eq!(
            param(&params, "error_description"),
            Some(format!("The access token has no `{missing}` claim").as_str()),
            "{issuer}"
        );
    }
}

fn strict_any_type(issuer: &str, kid: &str) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(rsa_keys(kid))
        .issuer(issuer)
        .audience(API)
        .allow_any_token_type()
        .build()
        .unwrap()
}

/// Keycloak's token with one change each, and the description the gate
/// answers with.
#[tokio::test]
async fn every_malformed_variant_is_refused_with_its_reason() {
    let now = now();
    let (header, claims) = keycloak(now);
    let edit = |f: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header.clone(), claims.clone());
        f(&mut h, &mut c);
        (h, c)
    };
    let remove = |name: &'static str| {
        move |_: &mut Value, c: &mut Value| {
            c.as_object_mut().unwrap().remove(name);
        }
    };
    let variants: Vec<((Value, Value), &str)> = vec![
        (edit(&remove("exp")), "The access token has no `exp` claim"),
        (edit(&remove("sub")), "The access token has no `sub` claim"),
        (edit(&remove("aud")), "The access token has no `aud` claim"),
        (edit(&remove("iss")), "The access token has no `iss` claim"),
        (
            edit(&|_, c| c["sub"] = "".into()),
            "The access token has no `sub` claim",
        ),
        (
            edit(&|_, c| c["exp"] = "soon".into()),
            "The access token's claims are not a valid claim set",
        ),
        (
            edit(&|_, c| c["exp"] = (now - 3_600).into()),
            "The access token expired",
        ),
        (
            edit(&|_, c| c["iat"] = (now + 3_600).into()),
            "The access token is not valid yet",
        ),
        (
            edit(&|_, c| c["nbf"] = (now + 3_600).into()),
            "The access token is not valid yet",
        ),
        (
            edit(&|_, c| {
                c["iat"] = (now - 60).into();
                c["exp"] = (now - 120).into();
            }),
            "The access token expired",
        ),
        (
            edit(&|_, c| c["aud"] = "account".into()),
            "The access token is not meant for this resource",
        ),
        (
            edit(&|_, c| c["iss"] = "https://sso.example/realms/other".into()),
            "The access token was issued by an untrusted issuer",
        ),
        (
            edit(&|_, c| {
                c["iat"] = (now + 10).into();
                c["exp"] = (now + 5).into();
            }),
            "The access token expires before it was issued",
        ),
        (
            edit(&|_, c| c["exp"] = (now + 30 * 86_400).into()),
            "The access token's lifetime is longer than this resource accepts",
        ),
        (
            edit(&|_, c| {
                c.as_object_mut().unwrap().remove("scope");
                c["scp"] = json!(["orders:read admin"]);
            }),
            "The access token has a malformed `scp` claim",
        ),
        // Another JWT of the same issuer is not an access token: a
        // back-channel logout token, an ID token's type.
        (
            edit(&|h, _| h["typ"] = "logout+jwt".into()),
            "The token is not an access token",
        ),
        (
            edit(&|h, _| h["typ"] = "dpop+jwt".into()),
            "The token is not an access token",
        ),
        (
            edit(&|h, _| h["kid"] = "kc-other".into()),
            "The access token is invalid",
        ),
    ];
    let Some(tokens) = joserfc(
        "rsa.pem",
        &variants.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
    ) else {
        return;
    };
    let gate = oidc_gate(KEYCLOAK, "kc-rsa");
    for ((token, (_, description)), i) in tokens.iter().zip(&variants).zip(0..) {
        let (status, _, params) = present(&gate, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "variant {i}");
        assert_eq!(
            param(&params, "error"),
            Some("invalid_token"),
            "variant {i}"
        );
        assert_eq!(
            param(&params, "error_description"),
            Some(*description),
            "variant {i}"
        );
        assert!(!params.iter().any(|(_, v)| v.contains(token.as_str())));
    }
}

/// Claims an app asks for on top of the profile are required, and each
/// absence is named; the token without them still passes a gate that does
/// not ask.
#[tokio::test]
async fn required_claims_are_configurable_per_gate() {
    let now = now();
    let (header, mut claims) = auth0(now);
    claims["sid"] = "auth0-session".into();
    let (_, no_sid) = auth0(now);
    let Some(tokens) = joserfc("rsa.pem", &[(header.clone(), claims), (header, no_sid)]) else {
        return;
    };
    let gate = |required: &[Claim]| {
        let mut b = AccessTokenLayer::builder()
            .keys(rsa_keys("auth0-rsa"))
            .issuer(AUTH0)
            .audience(API)
            .profile(TokenProfile::Oidc);
        for c in required {
            b = b.require_claim(*c);
        }
        b.build().unwrap()
    };
    assert_eq!(
        present(&gate(&[Claim::Sid]), &tokens[0]).await.0,
        StatusCode::OK
    );
    let (status, _, params) = present(&gate(&[Claim::Sid]), &tokens[1]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        param(&params, "error_description"),
        Some("The access token has no `sid` claim")
    );
    let (_, _, params) = present(&gate(&[Claim::Jti]), &tokens[0]).await;
    assert_eq!(
        param(&params, "error_description"),
        Some("The access token has no `jti` claim")
    );
    assert_eq!(present(&gate(&[]), &tokens[1]).await.0, StatusCode::OK);

    // `required_claims` replaces the profile's list: an RFC 9068 issuer
    // that leaves out `jti`, with `at+jwt` and `client_id`.
    let mut ours = common::claims("unused");
    ours.jti = None;
    let token = common::hs256().sign(&ours).unwrap();
    let relaxed = common::gate_builder(&common::hs256())
        .required_claims([Claim::Iat, Claim::ClientId])
        .build()
        .unwrap();
    assert_eq!(present(&relaxed, &token).await.0, StatusCode::OK);
    let (status, _, params) = present(&common::gate(Default::default()), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        param(&params, "error_description"),
        Some("The access token has no `jti` claim")
    );
}

/// A token without `jti` or `iat` is still denied: by its session, and by
/// a logout-everywhere of its subject (it cannot show it came later).
#[tokio::test]
async fn a_token_without_jti_or_iat_is_denied_by_session_and_subject() {
    let now = now();
    let (header, mut claims) = okta(now);
    let o = claims.as_object_mut().unwrap();
    o.remove("jti");
    o.remove("iat");
    o.insert("sid".into(), "okta-session".into());
    let Some(tokens) = joserfc("rsa.pem", &[(header, claims)]) else {
        return;
    };
    let token = &tokens[0];
    fn by_session(r: &RevocationCache) {
        r.revoke_session(
            "okta-session",
            SystemTime::now() + Duration::from_secs(3_600),
        );
    }
    fn by_subject(r: &RevocationCache) {
        r.revoke_subject_before("alice@shop.example", SystemTime::now());
    }
    for deny in [by_session as fn(&RevocationCache), by_subject] {
        let revocations = RevocationCache::default();
        let gate = AccessTokenLayer::builder()
            .keys(rsa_keys("okta-rsa"))
            .issuer(OKTA)
            .audience(API)
            .profile(TokenProfile::Oidc)
            .revocations(revocations.clone())
            .build()
            .unwrap();
        assert_eq!(present(&gate, token).await.0, StatusCode::OK);
        deny(&revocations);
        let (status, _, params) = present(&gate, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            param(&params, "error_description"),
            Some("The access token has been revoked")
        );
    }
}

/// Entra ID publishes RSA keys without `alg` (with `x5t` and an `issuer`
/// member), beside which a provider may list encryption keys: the set is
/// read as published, and the keys verify that provider's tokens — RSA
/// for Entra ID, an EC key without `alg` for a Keycloak realm on ES256.
#[tokio::test]
async fn keys_published_without_alg_verify_their_providers_tokens() {
    let now = now();
    let (_, entra_claims) = entra(now);
    let (_, kc_claims) = keycloak(now);
    let (Some(rsa_tokens), Some(ec_tokens)) = (
        joserfc(
            "rsa.pem",
            &[(
                json!({"typ": "JWT", "alg": "RS256", "kid": "entra-rsa", "x5t": "entra-rsa"}),
                entra_claims,
            )],
        ),
        joserfc(
            "es256.pem",
            &[(
                json!({"alg": "ES256", "typ": "JWT", "kid": "kc-ec"}),
                kc_claims,
            )],
        ),
    ) else {
        return;
    };
    let as_published = |key: VerifyingKey, extra: Value| {
        let mut v = serde_json::to_value(key.jwk().unwrap()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("alg");
        o.extend(extra.as_object().unwrap().clone());
        v
    };
    let rsa = VerifyingKey::from_pem("entra-rsa", Algorithm::RS256, RSA_PUB_PEM).unwrap();
    let ec = VerifyingKey::from_pem(
        "kc-ec",
        Algorithm::ES256,
        include_bytes!("../keys/es256.pub.pem"),
    )
    .unwrap();
    let jwks = json!({"keys": [
        as_published(rsa.clone(), json!({"x5t": "entra-rsa", "issuer": ENTRA})),
        as_published(rsa, json!({"kid": "entra-enc", "use": "enc"})),
        as_published(ec, json!({})),
    ]});
    let jwks = jwks.to_string();
    for (issuer, token, alg) in [
        (ENTRA, &rsa_tokens[0], Algorithm::RS256),
        (KEYCLOAK, &ec_tokens[0], Algorithm::ES256),
    ] {
        let keys = KeySet::from_jwks(jwks.as_bytes(), &[alg]).unwrap();
        let gate = AccessTokenLayer::builder()
            .keys(keys)
            .issuer(issuer)
            .audience(API)
            .profile(TokenProfile::Oidc)
            .build()
            .unwrap();
        let (status, claims, params) = present(&gate, token).await;
        assert_eq!(status, StatusCode::OK, "{issuer}: {params:?}");
        assert_eq!(claims["iss"], issuer);
    }
    // Under an allow-list without the key's algorithm, the key is not
    // taken: the set has nothing to verify with.
    assert!(matches!(
        KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::EdDSA]),
        Err(tollgate::KeyError::NoUsableKey)
    ));
}
