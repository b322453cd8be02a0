//! `/revoke` (RFC 7009), `/introspect` (RFC 7662) and the JWKS endpoint,
//! on SQLite and PostgreSQL.

use std::time::Duration;

use crate::common::{
    ED25519_PEM, claims, hs256,
    store::{Backend, Harness, Reply, harness, per_backend},
};
use entity::{refresh_token, revocation, token_family};
use http::{Request, StatusCode, header};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tollgate::{
    keys::{Algorithm, KeySet, Keys, SigningKey},
    refresh::RefreshPolicy,
    revocation::RevokedBy,
    token_endpoint::JwksEndpoint,
};

fn no_grace() -> RefreshPolicy {
    RefreshPolicy {
        grace: Duration::ZERO,
        bound_grace: Duration::ZERO,
        ..RefreshPolicy::default()
    }
}

async fn each(b: Backend, test: impl AsyncFn(Harness)) {
    test(harness(b, no_grace()).await).await;
}

fn sid(h: &Harness, access_token: &str) -> String {
    h.gate.verify(access_token).unwrap().sid.unwrap()
}

async fn revocation_rows(h: &Harness) -> u64 {
    revocation::Entity::find().count(&h.db).await.unwrap()
}

/// RFC 7009 §2.2: 200, nothing to read, not cached.
fn assert_revoke_ok(h: &Harness, r: &Reply) {
    assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
    assert_eq!(r.raw, "", "{}", h.backend);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

per_backend! {
    #[tokio::test]
    async fn revoking_a_refresh_token_ends_its_session_and_its_access_tokens(b) {
        each(b, async |h| {
            let login = h.login().await;
            let a1 = login.access_token();
            let next = h.refresh(&login.refresh_token()).await;
            let (a2, r2) = (next.access_token(), next.refresh_token());
            let other = h.login().await; // a second session of alice
            assert!(h.accepts(&a1) && h.accepts(&a2));

            let r = h
                .revoke(&format!(
                    "token={r2}&token_type_hint=refresh_token&{}",
                    h.web_auth()
                ))
                .await;
            assert_revoke_ok(&h, &r);

            // Every access token of the session dies now, not at expiry.
            for a in [&a1, &a2] {
                assert_eq!(
                    h.gate.verify(a).unwrap_err(),
                    tollgate::AuthError::Revoked(RevokedBy::Session),
                    "{}",
                    h.backend
                );
            }
            assert_eq!(h.refresh(&r2).await.error(), "invalid_grant");
            // The other session lives on.
            assert!(h.accepts(&other.access_token()), "{}", h.backend);
            assert_eq!(
                h.refresh(&other.refresh_token()).await.status,
                StatusCode::OK
            );

            // Revoked, not deleted, and the sid is on the persisted deny list.
            let family = sid(&h, &other.access_token()); // a live one, for contrast
            let revoked = token_family::Entity::find()
                .filter(token_family::Column::RevokedAt.is_not_null())
                .all(&h.db)
                .await
                .unwrap();
            assert_eq!(revoked.len(), 1, "{}", h.backend);
            assert_ne!(revoked[0].id, family);
            assert_eq!(revoked[0].revoked_reason.as_deref(), Some("logout"));
            let tokens = refresh_token::Entity::find()
                .filter(refresh_token::Column::FamilyId.eq(revoked[0].id.clone()))
                .all(&h.db)
                .await
                .unwrap();
            assert_eq!(tokens.len(), 2);
            assert!(tokens.iter().all(|t| t.revoked_at.is_some()));
            let rows = revocation::Entity::find().all(&h.db).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(
                (rows[0].kind.as_str(), rows[0].target.as_str()),
                ("session", revoked[0].id.as_str())
            );

            // Revoking again changes nothing and still answers 200.
            let again = h.revoke(&format!("token={r2}&{}", h.web_auth())).await;
            assert_revoke_ok(&h, &again);
            assert_eq!(revocation_rows(&h).await, 1, "{}", h.backend);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn a_consumed_predecessor_also_revokes_its_session(b) {
        each(b, async |h| {
            let login = h.login().await;
            let r1 = login.refresh_token();
            let next = h.refresh(&r1).await;
            let r = h.revoke(&format!("token={r1}&{}", h.web_auth())).await;
            assert_revoke_ok(&h, &r);
            assert_eq!(
                h.refresh(&next.refresh_token()).await.error(),
                "invalid_grant"
            );
            assert!(!h.accepts(&next.access_token()));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn revoking_an_access_token_denies_its_jti_only(b) {
        each(b, async |h| {
            let login = h.login().await;
            let access = login.access_token();
            // A wrong hint is only a hint.
            let r = h
                .revoke(&format!(
                    "token={access}&token_type_hint=refresh_token&{}",
                    h.web_auth()
                ))
                .await;
            assert_revoke_ok(&h, &r);
            assert_eq!(
                h.gate.verify(&access).unwrap_err(),
                tollgate::AuthError::Revoked(RevokedBy::Token)
            );
            // The session goes on: its refresh token still works and mints
            // tokens the gate accepts.
            let next = h.refresh(&login.refresh_token()).await;
            assert_eq!(next.status, StatusCode::OK, "{}", h.backend);
            assert!(h.accepts(&next.access_token()));
            let rows = revocation::Entity::find().all(&h.db).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].kind, "token");
            let revoked = payload(&access);
            assert_eq!(rows[0].target, revoked["jti"].as_str().unwrap());
            assert_eq!(
                rows[0].expires_at.timestamp(),
                revoked["exp"].as_i64().unwrap()
            );
        })
        .await;
    }
}

/// The claims of a token, read without verifying it.
fn payload(token: &str) -> serde_json::Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

per_backend! {
    #[tokio::test]
    async fn unknown_expired_or_foreign_tokens_get_200_and_change_nothing(b) {
        each(b, async |h| {
            let web = h.login().await;
            let spa = h
                .post("grant_type=password&username=alice&password=wonderland&client_id=spa")
                .await;
            let mut expired = claims("old");
            let iat = expired.iat.unwrap();
            expired.exp = iat - 120;
            expired.iat = Some(iat - 300);
            let expired = hs256().sign(&expired).unwrap();
            let before = revocation_rows(&h).await;

            let mut answers = Vec::new();
            for token in [
                "unknown-refresh-token".to_owned(),
                "a.b.c".to_owned(),
                expired,
                // Tokens of another client: web cannot revoke spa's.
                spa.refresh_token(),
                spa.access_token(),
            ] {
                let r = h.revoke(&format!("token={token}&{}", h.web_auth())).await;
                assert_revoke_ok(&h, &r);
                answers.push((r.status, r.raw, r.headers));
            }
            assert!(answers.windows(2).all(|w| w[0] == w[1]), "{}", h.backend);
            assert_eq!(revocation_rows(&h).await, before, "{}", h.backend);
            assert!(h.accepts(&spa.access_token()) && h.accepts(&web.access_token()));
            let refreshed = h
                .post(&format!(
                    "grant_type=refresh_token&refresh_token={}&client_id=spa",
                    spa.refresh_token()
                ))
                .await;
            assert_eq!(refreshed.status, StatusCode::OK, "{}", h.backend);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn revocation_requests_are_checked_like_token_requests(b) {
        each(b, async |h| {
            let r = h.revoke(&h.web_auth()).await;
            assert_eq!(
                (r.status, r.error()),
                (StatusCode::BAD_REQUEST, "invalid_request")
            );
            let r = h.revoke("token=x&client_id=web&client_secret=wrong").await;
            assert_eq!(
                (r.status, r.error()),
                (StatusCode::UNAUTHORIZED, "invalid_client")
            );
            let r = h.revoke("token=x&client_id=nobody").await;
            assert_eq!(r.error(), "invalid_client");
            // Unknown hint values are ignored (RFC 7009 §2.1).
            let r = h
                .revoke(&format!(
                    "token=x&token_type_hint=id_token&{}",
                    h.web_auth()
                ))
                .await;
            assert_revoke_ok(&h, &r);
            // A public client revokes its own tokens by client_id alone.
            let spa = h
                .post("grant_type=password&username=alice&password=wonderland&client_id=spa")
                .await;
            let r = h
                .revoke(&format!("token={}&client_id=spa", spa.refresh_token()))
                .await;
            assert_revoke_ok(&h, &r);
            assert!(!h.accepts(&spa.access_token()));

            let get = Request::get("/revoke")
                .body(http_body_util::Full::default())
                .unwrap();
            let r = crate::common::store::call(h.endpoint.revocation(), get).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(r.headers[header::ALLOW], "POST");
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn reuse_detection_kills_the_sessions_access_tokens_at_once(b) {
        each(b, async |h| {
            let login = h.login().await;
            let next = h.refresh(&login.refresh_token()).await;
            assert!(h.accepts(&next.access_token()));
            // The old token comes back: reuse, the family dies, and with it
            // every access token of the session.
            assert_eq!(
                h.refresh(&login.refresh_token()).await.error(),
                "invalid_grant"
            );
            for a in [login.access_token(), next.access_token()] {
                assert_eq!(
                    h.gate.verify(&a).unwrap_err(),
                    tollgate::AuthError::Revoked(RevokedBy::Session),
                    "{}",
                    h.backend
                );
            }
            let rows = revocation::Entity::find().all(&h.db).await.unwrap();
            assert_eq!(rows.len(), 1, "{}", h.backend);
            assert_eq!(rows[0].revoked_reason, "reuse_detected");
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn introspection_answers_rfc7662_for_access_tokens(b) {
        each(b, async |h| {
            let login = h.login().await;
            let access = login.access_token();
            let c = h.gate.verify(&access).unwrap();
            let r = h
                .introspect(&format!("token={access}&{}", h.svc_auth()))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
            assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
            let j = &r.json;
            assert_eq!(j["active"], true);
            assert_eq!(j["token_type"], "Bearer");
            assert_eq!(j["client_id"], "web");
            assert_eq!(j["sub"], "alice");
            assert_eq!(j["scope"], "read write");
            assert_eq!(j["exp"], c.exp);
            assert_eq!(j["iat"], c.iat.unwrap());
            assert_eq!(j["jti"], c.jti.as_deref().unwrap());
            assert_eq!(j["sid"], c.sid.as_deref().unwrap());
            assert_eq!(j["iss"], crate::common::ISS);
            assert_eq!(j["aud"], serde_json::json!([crate::common::AUD]));

            // Revoked: `active: false` and nothing else.
            h.revoke(&format!("token={access}&{}", h.web_auth())).await;
            let r = h
                .introspect(&format!("token={access}&{}", h.svc_auth()))
                .await;
            assert_eq!(
                r.json,
                serde_json::json!({"active": false}),
                "{}",
                h.backend
            );

            // Expired, forged, garbage: the same.
            let mut expired = claims("old");
            let iat = expired.iat.unwrap();
            expired.exp = iat - 120;
            expired.iat = Some(iat - 300);
            let forged = SigningKey::hmac("hs-1", Algorithm::HS256, &[9; 32])
                .unwrap()
                .sign(&claims("forged"))
                .unwrap();
            for token in [hs256().sign(&expired).unwrap(), forged, "garbage".into()] {
                let r = h
                    .introspect(&format!("token={token}&{}", h.svc_auth()))
                    .await;
                assert_eq!(r.json, serde_json::json!({"active": false}));
            }
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn introspection_of_refresh_tokens_follows_rotation_and_ownership(b) {
        each(b, async |h| {
            let login = h.login().await;
            let r1 = login.refresh_token();
            let h = &h;
            let ask = async |token: String| {
                h.introspect(&format!("token={token}&{}", h.web_auth()))
                    .await
                    .json
            };
            let j = ask(r1.clone()).await;
            assert_eq!(j["active"], true, "{}: {j}", h.backend);
            assert_eq!(j["client_id"], "web");
            assert_eq!(j["sub"], "alice");
            assert_eq!(j["scope"], "read write");
            assert_eq!(j["sid"], sid(h, &login.access_token()).as_str());
            assert!(j["exp"].as_u64().unwrap() > j["iat"].as_u64().unwrap());
            assert!(j.get("token_type").is_none());

            // Another client learns nothing about web's refresh token.
            let r = h.introspect(&format!("token={r1}&{}", h.svc_auth())).await;
            assert_eq!(r.json, serde_json::json!({"active": false}));

            let r2 = h.refresh(&r1).await.refresh_token();
            assert_eq!(ask(r1.clone()).await, serde_json::json!({"active": false}));
            assert_eq!(ask(r2.clone()).await["active"], true);
            // Reuse of r1 kills the family: r2 is no longer active either.
            h.refresh(&r1).await;
            assert_eq!(ask(r2).await, serde_json::json!({"active": false}));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn introspection_is_for_confidential_clients_only(b) {
        each(b, async |h| {
            let login = h.login().await;
            let r = h
                .introspect(&format!("token={}&client_id=spa", login.access_token()))
                .await;
            assert_eq!(
                (r.status, r.error()),
                (StatusCode::UNAUTHORIZED, "invalid_client"),
                "{}",
                h.backend
            );
            // A confidential client that is no resource server may not
            // probe access tokens (RFC 7662 §2.1, §4)...
            let r = h
                .introspect(&format!("token={}&{}", login.access_token(), h.web_auth()))
                .await;
            assert_eq!(
                (r.status, r.error()),
                (StatusCode::BAD_REQUEST, "unauthorized_client"),
                "{}: {}",
                h.backend,
                r.raw
            );
            // ...but may ask about its own refresh token.
            let r = h
                .introspect(&format!("token={}&{}", login.refresh_token(), h.web_auth()))
                .await;
            assert_eq!(r.json["active"], true, "{}", r.raw);
            let r = h.introspect(&h.svc_auth()).await;
            assert_eq!(r.error(), "invalid_request");
            let r = h
                .introspect(&format!(
                    "token={}&client_id=svc&client_secret=no",
                    login.access_token()
                ))
                .await;
            assert_eq!(r.error(), "invalid_client");
        })
        .await;
    }
}

async fn get(jwks: &JwksEndpoint, method: &str, if_none_match: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri("/.well-known/jwks.json");
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    crate::common::store::call(
        jwks.clone(),
        req.body(http_body_util::Full::default()).unwrap(),
    )
    .await
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_caching_headers() {
    let ed = SigningKey::from_pem("ed-1", Algorithm::EdDSA, ED25519_PEM).unwrap();
    let keys = Keys::new(
        KeySet::builder()
            .signing_key(ed)
            .verifying_key(hs256().verifying_key())
            .build()
            .unwrap(),
    );
    let jwks = JwksEndpoint::new(keys.clone()).max_age(Duration::from_secs(600));

    let r = get(&jwks, "GET", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CACHE_CONTROL], "public, max-age=600");
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let listed = r.json["keys"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the HMAC key is never published: {}",
        r.raw
    );
    assert_eq!(listed[0]["kid"], "ed-1");
    assert_eq!(listed[0]["kty"], "OKP");
    assert!(listed[0].get("d").is_none(), "no private part: {}", r.raw);
    // What it publishes verifies what the key signs.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(listed[0].clone()).unwrap();
    tollgate::keys::VerifyingKey::from_jwk(&jwk).unwrap();

    let etag = r.headers[header::ETAG].to_str().unwrap().to_owned();
    let again = get(&jwks, "GET", Some(&etag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.raw, "");
    let head = get(&jwks, "HEAD", None).await;
    assert_eq!((head.status, head.raw.as_str()), (StatusCode::OK, ""));
    assert_eq!(head.headers[header::ETAG], etag.as_str());
    let post = get(&jwks, "POST", None).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers[header::ALLOW], "GET, HEAD");

    // A rotation shows at once, under a new ETag.
    let es = SigningKey::from_pem("es-2", Algorithm::ES256, crate::common::ES256_PEM).unwrap();
    keys.rotate(KeySet::builder().signing_key(es).build().unwrap());
    let rotated = get(&jwks, "GET", Some(&etag)).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(rotated.json["keys"][0]["kid"], "es-2");
    assert_ne!(rotated.headers[header::ETAG], etag.as_str());
}

#[tokio::test]
async fn the_endpoints_jwks_follows_the_issuers_keys() {
    let b = Backend::sqlite_memory().await;
    let h = harness(b, no_grace()).await;
    // The harness signs with HS256: nothing to publish.
    let r = crate::common::store::call(
        h.endpoint.jwks(),
        Request::get("/")
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.json, serde_json::json!({"keys": []}));
}
