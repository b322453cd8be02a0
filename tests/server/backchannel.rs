//! Back-Channel Logout with a store: the logout is recorded like
//! tollgate's own revocations, so a second instance's deny list (synced
//! from the same database) refuses the session's tokens too; a subject is
//! recorded at the logout's `iat`; and a store that cannot record it
//! answers 503, denies nothing and leaves the provider's retry welcome.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tollgate::{
    AccessClaims, AccessTokenLayer, Algorithm, KeySet, RevocationCache,
    backchannel::{BackChannelLogout, LoggedOut, LogoutError},
    claims::TokenProfile,
    keys::SigningKey,
    sync::RevocationSync,
};

use crate::common::{ES256_PEM, now, store::per_backend};

const ISS: &str = "https://sso.example/realms/shop";
const CLIENT: &str = "shop-api";

fn key() -> SigningKey {
    SigningKey::from_pem("kc-ec", Algorithm::ES256, ES256_PEM).unwrap()
}

fn keys() -> KeySet {
    KeySet::builder()
        .verifying_key(key().verifying_key())
        .build()
        .unwrap()
}

fn sign(typ: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = typ.map(str::to_owned);
    h.kid = Some("kc-ec".into());
    encode(&h, claims, &EncodingKey::from_ec_pem(ES256_PEM).unwrap()).unwrap()
}

fn logout_token(jti: &str, sid: Option<&str>, iat: u64) -> String {
    let mut c = json!({
        "iss": ISS, "aud": CLIENT, "iat": iat, "jti": jti, "sub": "alice",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    if let Some(sid) = sid {
        c["sid"] = json!(sid);
    }
    sign(Some("logout+jwt"), &c)
}

fn access_token(jti: &str, sid: &str, iat: u64) -> String {
    sign(
        Some("JWT"),
        &json!({
            "iss": ISS, "aud": CLIENT, "iat": iat, "exp": iat + 300, "jti": jti,
            "sub": "alice", "sid": sid, "azp": "shop-web",
        }),
    )
}

fn gate(deny: &RevocationCache) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(keys())
        .issuer(ISS)
        .audience(CLIENT)
        .profile(TokenProfile::Oidc)
        .revocations(deny.clone())
        .build()
        .unwrap()
}

fn accepts(g: &AccessTokenLayer, token: &str) -> bool {
    g.verify(token).map(|c: AccessClaims| c.sub).is_ok()
}

per_backend! {
    #[tokio::test]
    async fn a_logout_reaches_every_instance_through_the_store(b) {
        let (deny_a, deny_b) = (RevocationCache::default(), RevocationCache::default());
        let receiver = BackChannelLogout::builder()
            .issuer(ISS)
            .client_id(CLIENT)
            .keys(keys())
            .revocations(deny_a.clone())
            .store(b.db.clone())
            .build()
            .unwrap();
        let sync_b = RevocationSync::builder(b.db.clone(), deny_b.clone()).build();
        sync_b.sync().await.unwrap();
        let (gate_a, gate_b) = (gate(&deny_a), gate(&deny_b));
        let now = now();
        let session = access_token("at-1", "kc-session-1", now - 30);
        assert!(accepts(&gate_a, &session) && accepts(&gate_b, &session));

        assert_eq!(
            receiver.logout(&logout_token("lo-1", Some("kc-session-1"), now)).await,
            Ok(LoggedOut::Session("kc-session-1".into()))
        );
        assert!(!accepts(&gate_a, &session), "at once where it arrived");
        assert!(accepts(&gate_b, &session), "not synced yet");
        sync_b.sync().await.unwrap();
        assert!(!accepts(&gate_b, &session), "and on the other instance");

        // A subject, up to the logout's `iat` and no later, on both.
        let before = access_token("at-2", "kc-session-2", now - 20);
        let after = access_token("at-3", "kc-session-3", now - 9);
        receiver.logout(&logout_token("lo-2", None, now - 10)).await.unwrap();
        sync_b.sync().await.unwrap();
        for g in [&gate_a, &gate_b] {
            assert!(!accepts(g, &before));
            assert!(accepts(g, &after));
        }
        // A fresh instance warming up from the store sees both.
        let deny_c = RevocationCache::default();
        RevocationSync::builder(b.db.clone(), deny_c.clone()).build().sync().await.unwrap();
        let gate_c = gate(&deny_c);
        assert!(!accepts(&gate_c, &session) && !accepts(&gate_c, &before));
        assert!(accepts(&gate_c, &after));
    }
}

#[tokio::test]
async fn a_store_that_cannot_record_it_answers_503_and_denies_nothing() {
    let db = crate::common::store::sqlite_memory().await;
    sea_orm::ConnectionTrait::execute_unprepared(&db, "DROP TABLE tollgate_revocation")
        .await
        .unwrap();
    let deny = RevocationCache::default();
    let receiver = BackChannelLogout::builder()
        .issuer(ISS)
        .client_id(CLIENT)
        .keys(keys())
        .revocations(deny.clone())
        .store(db)
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let now = now();
    let session = access_token("at-4", "kc-session-4", now - 5);
    let token = logout_token("lo-3", Some("kc-session-4"), now);
    for _ in 0..2 {
        // The retry is not taken for a replay.
        assert_eq!(receiver.logout(&token).await, Err(LogoutError::Unavailable));
    }
    assert!(accepts(&gate(&deny), &session));
    let res = tower::ServiceExt::oneshot(
        receiver,
        http::Request::post("/logout")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("logout_token={token}"))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["cache-control"], "no-store");
}
