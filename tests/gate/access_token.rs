//! The gate through its public API, one `oneshot` per request, no sockets.

use std::time::{Duration, SystemTime};

use crate::common::*;
use http::{HeaderValue, Request, Response, StatusCode, header};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use tollgate::{
    AccessTokenLayer, AuthError, RevocationCache,
    access_token::InvalidToken,
    keys::{Algorithm, KeySet, Keys, SigningKey},
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

async fn call(gate: AccessTokenLayer, req: Request<String>) -> Response<String> {
    ServiceBuilder::new()
        .layer(gate)
        .service(service_fn(echo_sub))
        .oneshot(req)
        .await
        .unwrap()
}

fn challenge(res: &Response<String>) -> &str {
    res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap()
}

/// Asserts a 401 `invalid_token` with the given description, and that the
/// answer does not echo the token.
fn assert_invalid_token(res: &Response<String>, description: &str, token: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(res),
        format!(
            r#"Bearer realm="{REALM}", error="invalid_token", error_description="{description}""#
        )
    );
    let all = format!("{:?}{}", res.headers(), res.body());
    assert!(!all.contains(token), "token echoed");
}

const INVALID: &str = "The access token is invalid";

#[tokio::test]
async fn valid_token_reaches_the_service_with_its_claims() {
    let res = call(gate(RevocationCache::default()), bearer(&token("t-1"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice:t-1");
}

#[tokio::test]
async fn no_credentials_get_a_bare_challenge() {
    let gate = gate(RevocationCache::default());
    let res = call(gate.clone(), Request::new(String::new())).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), r#"Bearer realm="orders""#);

    // Another scheme is not bearer credentials: the same answer.
    let basic = Request::builder()
        .header(header::AUTHORIZATION, "Basic YWxpY2U6cHc=")
        .body(String::new())
        .unwrap();
    let res = call(gate, basic).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), r#"Bearer realm="orders""#);
}

#[tokio::test]
async fn malformed_authorization_is_invalid_request() {
    for value in ["Bearer", "Bearer a b", "Bearer a\"b", "Bearer a=b"] {
        let req = Request::builder()
            .header(header::AUTHORIZATION, value)
            .body(String::new())
            .unwrap();
        let res = call(gate(RevocationCache::default()), req).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{value}");
        assert!(
            challenge(&res).contains(r#"error="invalid_request""#),
            "{value}"
        );
    }
    let mut twice = bearer(&token("a"));
    twice
        .headers_mut()
        .append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    let res = call(gate(RevocationCache::default()), twice).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_authorization_is_refused_before_parsing() {
    let huge = "a".repeat(20_000);
    let res = call(gate(RevocationCache::default()), bearer(&huge)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!challenge(&res).contains("aaaa"));
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let mut c = serde_json::to_value(claims("t-none")).unwrap();
    c["sub"] = json!("mallory");
    for alg in ["none", "None", "NONE"] {
        let t = raw_jwt(&json!({"alg": alg, "typ": "at+jwt", "kid": "hs-1"}), &c, "");
        let res = call(gate(RevocationCache::default()), bearer(&t)).await;
        assert_invalid_token(&res, INVALID, &t);
    }
}

#[tokio::test]
async fn hmac_signed_with_the_rsa_public_key_is_rejected() {
    // The gate trusts an RSA key and, separately, HS256 keys: a token that
    // names the RSA key but is HMAC-signed with the public key's bytes must
    // not verify.
    let rsa = SigningKey::from_pem("rsa-1", Algorithm::RS256, RSA_PEM).unwrap();
    let gate = AccessTokenLayer::builder()
        .keys(
            KeySet::builder()
                .signing_key(rsa.clone())
                .verifying_key(hs256().verifying_key())
                .build()
                .unwrap(),
        )
        .issuer(ISS)
        .audience(AUD)
        .realm(REALM)
        .build()
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("rsa-1".into());
    for secret in [RSA_PUB_PEM.to_vec(), pem_body_der(RSA_PUB_PEM)] {
        let forged = jsonwebtoken::encode(
            &header,
            &claims("forged"),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let res = call(gate.clone(), bearer(&forged)).await;
        assert_invalid_token(&res, INVALID, &forged);
    }
    // The real RS256 token passes, so the rejection above is the algorithm.
    let real = rsa.sign(&claims("real")).unwrap();
    assert_eq!(call(gate, bearer(&real)).await.status(), StatusCode::OK);
}

fn pem_body_der(pem: &[u8]) -> Vec<u8> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

#[tokio::test]
async fn tampered_payload_is_rejected() {
    let good = token("t-1");
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut c = serde_json::to_value(claims("t-1")).unwrap();
    c["scope"] = json!("admin");
    let forged_payload = raw_jwt(&json!({}), &c, "x");
    parts[1] = forged_payload.split('.').nth(1).unwrap();
    let forged = parts.join(".");
    let res = call(gate(RevocationCache::default()), bearer(&forged)).await;
    assert_invalid_token(&res, INVALID, &forged);
}

#[tokio::test]
async fn unknown_kid_and_other_keys_are_rejected() {
    let other = SigningKey::hmac("hs-2", Algorithm::HS256, &[9; 32]).unwrap();
    let t = other.sign(&claims("t")).unwrap();
    let res = call(gate(RevocationCache::default()), bearer(&t)).await;
    assert_invalid_token(&res, INVALID, &t);
    // Right kid, wrong secret.
    let imposter = SigningKey::hmac("hs-1", Algorithm::HS256, &[9; 32]).unwrap();
    let t = imposter.sign(&claims("t")).unwrap();
    let res = call(gate(RevocationCache::default()), bearer(&t)).await;
    assert_invalid_token(&res, INVALID, &t);
}

/// Signs claims changed by `edit` with the gate's key.
fn signed_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut c = serde_json::to_value(claims("t-x")).unwrap();
    edit(&mut c);
    hs256().sign(&c).unwrap()
}

#[tokio::test]
async fn time_claims_are_enforced_with_the_documented_leeway() {
    let g = || gate(RevocationCache::default());
    let expired = signed_with(|c| {
        c["iat"] = json!(now() - 300);
        c["exp"] = json!(now() - 31);
    });
    assert_invalid_token(
        &call(g(), bearer(&expired)).await,
        "The access token expired",
        &expired,
    );
    let within_leeway = signed_with(|c| {
        c["iat"] = json!(now() - 300);
        c["exp"] = json!(now() - 5);
    });
    assert_eq!(
        call(g(), bearer(&within_leeway)).await.status(),
        StatusCode::OK
    );

    let not_yet = signed_with(|c| c["nbf"] = json!(now() + 120));
    assert_invalid_token(
        &call(g(), bearer(&not_yet)).await,
        "The access token is not valid yet",
        &not_yet,
    );
    let future_iat = signed_with(|c| c["iat"] = json!(now() + 120));
    assert_invalid_token(
        &call(g(), bearer(&future_iat)).await,
        "The access token is not valid yet",
        &future_iat,
    );
    let backwards = signed_with(|c| c["exp"] = json!(now() - 1));
    assert_invalid_token(
        &call(g(), bearer(&backwards)).await,
        "The access token expires before it was issued",
        &backwards,
    );
    // Longer-lived than a subject watermark can cover.
    let too_long = signed_with(|c| c["exp"] = json!(now() + 3 * 86_400));
    assert_invalid_token(
        &call(g(), bearer(&too_long)).await,
        "The access token's lifetime is longer than this resource accepts",
        &too_long,
    );
}

#[tokio::test]
async fn issuer_audience_and_type_are_enforced() {
    let g = || gate(RevocationCache::default());
    let iss = signed_with(|c| c["iss"] = json!("https://evil.example"));
    assert_invalid_token(
        &call(g(), bearer(&iss)).await,
        "The access token was issued by an untrusted issuer",
        &iss,
    );
    let aud = signed_with(|c| c["aud"] = json!("billing-api"));
    assert_invalid_token(
        &call(g(), bearer(&aud)).await,
        "The access token is not meant for this resource",
        &aud,
    );
    let many_aud = signed_with(|c| c["aud"] = json!(["billing-api", AUD]));
    assert_eq!(call(g(), bearer(&many_aud)).await.status(), StatusCode::OK);

    // An ID token or any other JWT signed by the same key is not an access token.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs-1".into());
    for typ in [Some("JWT"), None] {
        header.typ = typ.map(Into::into);
        let t = jsonwebtoken::encode(&header, &claims("t"), &EncodingKey::from_secret(&[42; 32]))
            .unwrap();
        assert_invalid_token(
            &call(g(), bearer(&t)).await,
            "The token is not an access token",
            &t,
        );
    }
    header.typ = Some("application/AT+JWT".into());
    let t =
        jsonwebtoken::encode(&header, &claims("t"), &EncodingKey::from_secret(&[42; 32])).unwrap();
    assert_eq!(call(g(), bearer(&t)).await.status(), StatusCode::OK);

    // Legacy issuers: explicitly configured.
    let legacy = gate_builder(&hs256()).token_types(["JWT"]).build().unwrap();
    header.typ = Some("JWT".into());
    let t =
        jsonwebtoken::encode(&header, &claims("t"), &EncodingKey::from_secret(&[42; 32])).unwrap();
    assert_eq!(call(legacy, bearer(&t)).await.status(), StatusCode::OK);
}

/// Tokens tollgate signs skip header parsing (their header is known byte
/// for byte); the type and algorithm rules still apply to them.
#[tokio::test]
async fn our_own_header_is_held_to_the_same_rules() {
    let ours = hs256().sign(&claims("t")).unwrap();
    let g = gate(RevocationCache::default());
    assert_eq!(call(g, bearer(&ours)).await.status(), StatusCode::OK);

    // A gate that accepts only legacy `JWT` tokens refuses `at+jwt`.
    let legacy = gate_builder(&hs256())
        .realm(REALM)
        .token_types(["JWT"])
        .build()
        .unwrap();
    assert_invalid_token(
        &call(legacy, bearer(&ours)).await,
        "The token is not an access token",
        &ours,
    );

    // A key rotated in outside the allow-list verifies nothing.
    let keys = Keys::new(keyset(&hs256()));
    let hs_only = AccessTokenLayer::builder()
        .keys(keys.clone())
        .issuer(ISS)
        .audience(AUD)
        .realm(REALM)
        .build()
        .unwrap();
    let ed = SigningKey::from_pem("ed-1", Algorithm::EdDSA, ED25519_PEM).unwrap();
    keys.rotate(keyset(&ed));
    let t = ed.sign(&claims("t")).unwrap();
    assert_invalid_token(&call(hs_only, bearer(&t)).await, INVALID, &t);

    // The same header fields in another order or spacing take the parsing
    // path and are accepted alike.
    let c = claims("t");
    for header in [
        json!({"kid": "hs-1", "typ": "at+jwt", "alg": "HS256"}),
        json!({"alg": "HS256", "kid": "hs-1", "typ": "AT+JWT"}),
    ] {
        let unsigned = raw_jwt(&header, &json!(c), "");
        let message = unsigned.trim_end_matches('.');
        let key = EncodingKey::from_secret(&[42; 32]);
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
        let t = format!("{message}.{sig}");
        assert_eq!(
            call(gate(RevocationCache::default()), bearer(&t))
                .await
                .status(),
            StatusCode::OK
        );
    }
    // Our header naming one key, signed with another: a bad signature.
    let other = SigningKey::hmac("hs-1", Algorithm::HS256, &[7; 32]).unwrap();
    let forged = other.sign(&claims("t")).unwrap();
    assert_eq!(forged.split('.').next(), ours.split('.').next());
    assert_invalid_token(
        &call(gate(RevocationCache::default()), bearer(&forged)).await,
        INVALID,
        &forged,
    );
}

/// A correctly signed token whose header or payload bytes are not UTF-8
/// JSON is refused with the exact reason, on both header paths.
#[test]
fn signed_parts_that_are_not_utf8_are_refused() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let sign = |header: &[u8], payload: &[u8]| {
        let message = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let key = EncodingKey::from_secret(&[42; 32]);
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{message}.{sig}")
    };
    let ours = hs256().sign(&claims("t")).unwrap();
    let our_header = B64.decode(ours.split('.').next().unwrap()).unwrap();
    let payload = serde_json::to_vec(&claims("t")).unwrap();
    // One byte of the subject's name replaced by 0xFF: the JSON is intact,
    // the text is not UTF-8.
    let mut not_utf8 = payload.clone();
    let at = payload.windows(5).position(|w| w == b"alice").unwrap();
    not_utf8[at + 2] = 0xff;
    let g = gate(RevocationCache::default());
    assert!(g.verify(&sign(&our_header, &payload)).is_ok());
    assert_eq!(
        g.verify(&sign(&our_header, &not_utf8)),
        Err(AuthError::InvalidToken(InvalidToken::BadClaims))
    );

    // A header we did not write goes through parsing; a non-UTF-8 byte
    // in it is malformed.
    let mut header = br#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","x":"_"}"#.to_vec();
    assert!(g.verify(&sign(&header, &payload)).is_ok());
    let at = header.iter().position(|&b| b == b'_').unwrap();
    header[at] = 0xff;
    assert_eq!(
        g.verify(&sign(&header, &payload)),
        Err(AuthError::InvalidToken(InvalidToken::Malformed))
    );
}

#[tokio::test]
async fn required_claims_are_required() {
    for claim in ["jti", "sub", "exp", "iat", "iss", "aud", "client_id"] {
        let t = signed_with(|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        let res = call(gate(RevocationCache::default()), bearer(&t)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "without {claim}");
        assert!(challenge(&res).contains("invalid_token"), "without {claim}");
    }
    let empty_jti = signed_with(|c| c["jti"] = json!(""));
    let res = call(gate(RevocationCache::default()), bearer(&empty_jti)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn critical_header_extensions_are_rejected() {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("hs-1".into());
    header.crit = Some(vec!["exp".into()]);
    let t =
        jsonwebtoken::encode(&header, &claims("t"), &EncodingKey::from_secret(&[42; 32])).unwrap();
    let res = call(gate(RevocationCache::default()), bearer(&t)).await;
    assert_invalid_token(&res, INVALID, &t);
}

/// Signs `header` and `claims` as they are, with `key` under `alg`.
fn signed_raw(header: &serde_json::Value, key: &EncodingKey, alg: Algorithm) -> String {
    let unsigned = raw_jwt(header, &json!(claims("t")), "");
    let message = unsigned.trim_end_matches('.');
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{sig}")
}

/// RFC 7515 §4.1.11: `crit` is a non-empty array or absent; `null` is
/// neither, and is not read as absent.
#[tokio::test]
async fn a_null_crit_is_rejected_like_any_other() {
    let key = EncodingKey::from_secret(&[42; 32]);
    for crit in [json!(null), json!([]), json!(["exp"])] {
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1", "crit": crit});
        let t = signed_raw(&header, &key, Algorithm::HS256);
        let res = call(gate(RevocationCache::default()), bearer(&t)).await;
        assert_invalid_token(&res, INVALID, &t);
    }
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1"});
    let t = signed_raw(&header, &key, Algorithm::HS256);
    let res = call(gate(RevocationCache::default()), bearer(&t)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// RFC 9864: `Ed25519` is the fully-specified name of EdDSA with an
/// Ed25519 key; a token whose header says so verifies with the same key
/// as one saying `EdDSA`, and a key of another type is still refused.
#[tokio::test]
async fn the_fully_specified_ed25519_name_is_accepted_for_an_ed25519_key() {
    let ed = SigningKey::from_pem("ed-1", Algorithm::EdDSA, ED25519_PEM).unwrap();
    let g = AccessTokenLayer::builder()
        .keys(keyset(&ed))
        .issuer(ISS)
        .audience(AUD)
        .realm(REALM)
        .build()
        .unwrap();
    let key = EncodingKey::from_ed_pem(ED25519_PEM).unwrap();
    for alg in ["Ed25519", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "ed-1"});
        let t = signed_raw(&header, &key, Algorithm::EdDSA);
        assert_eq!(
            call(g.clone(), bearer(&t)).await.status(),
            StatusCode::OK,
            "{alg}"
        );
    }
    // The HMAC gate has no Ed25519 key: refused whatever the name.
    let header = json!({"alg": "Ed25519", "typ": "at+jwt", "kid": "hs-1"});
    let t = signed_raw(&header, &key, Algorithm::EdDSA);
    assert_invalid_token(
        &call(gate(RevocationCache::default()), bearer(&t)).await,
        INVALID,
        &t,
    );
}

#[tokio::test]
async fn revoked_jti_is_rejected_on_the_very_next_request() {
    let deny = RevocationCache::default();
    let g = gate(deny.clone());
    let (t1, t2) = (token("t-1"), token("t-2"));
    assert_eq!(call(g.clone(), bearer(&t1)).await.status(), StatusCode::OK);
    deny.revoke_token("t-1", SystemTime::now() + Duration::from_secs(300));
    let res = call(g.clone(), bearer(&t1)).await;
    assert_invalid_token(&res, "The access token has been revoked", &t1);
    assert_eq!(call(g, bearer(&t2)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_session_kills_all_its_tokens_only() {
    let deny = RevocationCache::default();
    let g = gate(deny.clone());
    let same_a = token("a");
    let same_b = token("b");
    let other = signed_with(|c| c["sid"] = json!("fam-2"));
    deny.revoke_session("fam-1", SystemTime::now() + Duration::from_secs(600));
    for t in [&same_a, &same_b] {
        assert_invalid_token(
            &call(g.clone(), bearer(t)).await,
            "The access token has been revoked",
            t,
        );
    }
    assert_eq!(call(g, bearer(&other)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn subject_watermark_kills_earlier_tokens_of_that_subject_only() {
    let deny = RevocationCache::default();
    let g = gate(deny.clone());
    let alice_old = token("a");
    let bob = signed_with(|c| c["sub"] = json!("bob"));
    deny.revoke_subject_before("alice", SystemTime::now());
    assert_invalid_token(
        &call(g.clone(), bearer(&alice_old)).await,
        "The access token has been revoked",
        &alice_old,
    );
    assert_eq!(call(g.clone(), bearer(&bob)).await.status(), StatusCode::OK);
    // A token issued after the watermark's second passes.
    let alice_new = signed_with(|c| c["iat"] = json!(now() + 2));
    assert_eq!(call(g, bearer(&alice_new)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revocation_lapses_when_its_entry_expires() {
    let clock = crate::common::manual_clock();
    let deny = RevocationCache::builder()
        .clock(clock.clone())
        .margin(Duration::from_secs(30))
        .build();
    let g = gate(deny.clone());
    let t = token("t-1");
    deny.revoke_token("t-1", SystemTime::now() + Duration::from_secs(60));
    assert_eq!(
        call(g.clone(), bearer(&t)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    clock.advance(Duration::from_secs(89));
    assert_eq!(
        call(g.clone(), bearer(&t)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    clock.advance(Duration::from_secs(2));
    // The entry has expired on the cache's clock (the token itself is valid
    // for real time, which the test cannot move).
    assert_eq!(call(g, bearer(&t)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_scope_is_403_with_the_scope_in_the_challenge() {
    let admin_gate = gate_builder(&hs256())
        .realm(REALM)
        .require_scope("admin")
        .build()
        .unwrap();
    let res = call(admin_gate.clone(), bearer(&token("t"))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        r#"Bearer realm="orders", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token", scope="admin""#
    );
    let admin = signed_with(|c| c["scope"] = json!("orders:read admin"));
    assert_eq!(
        call(admin_gate.clone(), bearer(&admin)).await.status(),
        StatusCode::OK
    );
    // Prefixes and case do not count.
    let almost = signed_with(|c| c["scope"] = json!("administrator Admin"));
    assert_eq!(
        call(admin_gate, bearer(&almost)).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn grpc_requests_get_grpc_status() {
    let grpc = |token: Option<&str>| {
        let mut b = Request::builder().header(header::CONTENT_TYPE, "application/grpc+proto");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(String::new()).unwrap()
    };
    let res = call(gate(RevocationCache::default()), grpc(None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "16");
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/grpc");
    assert!(!res.headers()["grpc-message"].is_empty());

    let scoped = gate_builder(&hs256())
        .require_scope("admin")
        .build()
        .unwrap();
    let res = call(scoped, grpc(Some(&token("t")))).await;
    assert_eq!(res.headers()["grpc-status"], "7");
}

#[tokio::test]
async fn cookie_source_is_opt_in_and_exclusive() {
    let t = token("t-c");
    let cookie_req = |t: &str| {
        Request::builder()
            .header(header::COOKIE, format!("theme=dark; at={t}"))
            .body(String::new())
            .unwrap()
    };
    let plain = gate(RevocationCache::default());
    assert_eq!(
        call(plain, cookie_req(&t)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let with_cookie = gate_builder(&hs256()).cookie("at").build().unwrap();
    assert_eq!(
        call(with_cookie.clone(), cookie_req(&t)).await.status(),
        StatusCode::OK
    );
    let mut both = cookie_req(&t);
    both.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {t}").parse().unwrap(),
    );
    assert_eq!(
        call(with_cookie, both).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn query_string_tokens_are_never_read() {
    let req = Request::builder()
        .uri(format!("/orders?access_token={}", token("t")))
        .body(String::new())
        .unwrap();
    let res = call(gate(RevocationCache::default()), req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), r#"Bearer realm="orders""#);
}

#[tokio::test]
async fn every_supported_algorithm_verifies_with_our_crypto_backend() {
    let keys = [
        SigningKey::hmac("k", Algorithm::HS256, &[1; 32]),
        SigningKey::hmac("k", Algorithm::HS384, &[1; 48]),
        SigningKey::hmac("k", Algorithm::HS512, &[1; 64]),
        SigningKey::from_pem("k", Algorithm::RS256, RSA_PEM),
        SigningKey::from_pem("k", Algorithm::PS256, RSA_PEM),
        SigningKey::from_pem("k", Algorithm::ES256, ES256_PEM),
        SigningKey::from_pem("k", Algorithm::EdDSA, ED25519_PEM),
    ];
    for key in keys {
        let key = key.unwrap();
        let g = gate_builder(&key).build().unwrap();
        let t = key.sign(&claims("t")).unwrap();
        let res = call(g.clone(), bearer(&t)).await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", key.algorithm());
        // And a flipped signature bit fails.
        let mut bad = t.into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            call(g, bearer(&bad)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn keys_rotate_at_run_time() {
    let old = hs256();
    let new = SigningKey::from_pem("ed-1", Algorithm::EdDSA, ED25519_PEM).unwrap();
    let keys = Keys::new(keyset(&old));
    let g = AccessTokenLayer::builder()
        .keys(keys.clone())
        .issuer(ISS)
        .audience(AUD)
        .algorithms([Algorithm::HS256, Algorithm::EdDSA])
        .build()
        .unwrap();
    let (old_t, new_t) = (
        old.sign(&claims("o")).unwrap(),
        new.sign(&claims("n")).unwrap(),
    );
    assert_eq!(
        call(g.clone(), bearer(&new_t)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Sign with the new key, still accept the old one.
    keys.rotate(
        KeySet::builder()
            .signing_key(new.clone())
            .verifying_key(old.verifying_key())
            .build()
            .unwrap(),
    );
    assert_eq!(
        call(g.clone(), bearer(&new_t)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(g.clone(), bearer(&old_t)).await.status(),
        StatusCode::OK
    );

    // Retire the old key.
    keys.rotate(keyset(&new));
    assert_eq!(
        call(g.clone(), bearer(&old_t)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(g, bearer(&new_t)).await.status(), StatusCode::OK);
}
