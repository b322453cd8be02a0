//! RFC 8707 resource indicators at `/token`: `resource` selects the
//! audience of the access token among the resources the client is
//! registered for, refreshes narrow it and never widen it, and anything
//! else is `invalid_target` — on every backend, since the granted
//! resources live in the session row.

use http::StatusCode;
use tollgate::{AccessTokenLayer, store::clients::NewClient};

use crate::common::{
    AUD, ISS, hs256,
    store::{Harness, Reply, harness, per_backend},
};

const API: &str = "https://api.example/orders";
const MCP: &str = "https://mcp.example";

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Registers `rs`: confidential, password and client_credentials, allowed
/// to ask for API and MCP. Returns its secret.
async fn register(h: &Harness) -> String {
    let mut c = NewClient::confidential("rs", "read write");
    c.allow_password = true;
    c.allow_client_credentials = true;
    c.resources = vec![API.into(), MCP.into()];
    tollgate::store::clients::register(&h.db, c, std::time::SystemTime::now())
        .await
        .unwrap()
        .unwrap()
}

async fn post(h: &Harness, secret: &str, form: &str) -> Reply {
    h.post(&format!("{form}&client_id=rs&client_secret={secret}"))
        .await
}

async fn login(h: &Harness, secret: &str, resources: &[&str]) -> Reply {
    let mut form = "grant_type=password&username=alice&password=wonderland".to_owned();
    for r in resources {
        form.push_str(&format!("&resource={}", enc(r)));
    }
    post(h, secret, &form).await
}

/// The `aud` claim as signed, read without any gate.
fn aud(access_token: &str) -> serde_json::Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["aud"].clone()
}

/// A gate for the resource `resource`, on the harness's deny list.
fn gate_for(h: &Harness, resource: &str) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(hs256())
        .issuer(ISS)
        .resource(resource)
        .revocations(h.deny.clone())
        .build()
        .unwrap()
}

per_backend! {
    #[tokio::test]
    async fn the_resource_is_the_audience_and_refreshes_never_widen_it(b) {
        let h = harness(b, Default::default()).await;
        let secret = register(&h).await;

        // One resource: the token is for it alone.
        let r = login(&h, &secret, &[MCP]).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
        assert_eq!(aud(&r.access_token()), MCP);
        assert!(gate_for(&h, MCP).verify(&r.access_token()).is_ok());
        assert!(gate_for(&h, API).verify(&r.access_token()).is_err());
        assert!(h.gate.verify(&r.access_token()).is_err(), "not for {AUD}");

        // A refresh keeps the session's resource without asking.
        let form = |token: &str, extra: &str| {
            format!("grant_type=refresh_token&refresh_token={token}{extra}")
        };
        let r2 = post(&h, &secret, &form(&r.refresh_token(), "")).await;
        assert_eq!(r2.status, StatusCode::OK, "{}", r2.raw);
        assert_eq!(aud(&r2.access_token()), MCP);

        // Asking for a resource the session was not granted: invalid_target,
        // and the refresh token is not spent.
        let wide = post(
            &h,
            &secret,
            &form(&r2.refresh_token(), &format!("&resource={}", enc(API))),
        )
        .await;
        assert_eq!(wide.status, StatusCode::BAD_REQUEST);
        assert_eq!(wide.error(), "invalid_target", "{}", wide.raw);
        let r3 = post(
            &h,
            &secret,
            &form(&r2.refresh_token(), &format!("&resource={}", enc(MCP))),
        )
        .await;
        assert_eq!(r3.status, StatusCode::OK, "{}", r3.raw);
        assert_eq!(aud(&r3.access_token()), MCP);

        // Two resources granted; a refresh narrows to one, the next widens
        // back to the grant.
        let both = login(&h, &secret, &[API, MCP]).await;
        assert_eq!(aud(&both.access_token()), serde_json::json!([API, MCP]));
        let narrow = post(
            &h,
            &secret,
            &form(&both.refresh_token(), &format!("&resource={}", enc(API))),
        )
        .await;
        assert_eq!(aud(&narrow.access_token()), API);
        let again = post(&h, &secret, &form(&narrow.refresh_token(), "")).await;
        assert_eq!(aud(&again.access_token()), serde_json::json!([API, MCP]));

        // No resource at login: the issuer's audience, and no resource may
        // be added later.
        let plain = login(&h, &secret, &[]).await;
        assert_eq!(aud(&plain.access_token()), AUD);
        let add = post(
            &h,
            &secret,
            &form(&plain.refresh_token(), &format!("&resource={}", enc(MCP))),
        )
        .await;
        assert_eq!(add.error(), "invalid_target");
    }
}

#[tokio::test]
async fn bad_resources_are_invalid_target_and_nothing_is_issued() {
    let h = harness(
        crate::common::store::Backend::sqlite_memory().await,
        Default::default(),
    )
    .await;
    let secret = register(&h).await;
    for bad in [
        "https://mcp.example#fragment",
        "/relative",
        "mcp.example",
        "https://unknown.example",
        "https://MCP.example",
    ] {
        let r = login(&h, &secret, &[bad]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.raw);
        assert_eq!(r.error(), "invalid_target", "{bad}");
        assert!(!r.raw.contains(bad), "echoed {bad}");
    }
    // A client registered for no resource may ask for none.
    let r = h
        .post(&format!(
            "grant_type=client_credentials&{}&resource={}",
            h.svc_auth(),
            enc(MCP)
        ))
        .await;
    assert_eq!(r.error(), "invalid_target");
    // Every other parameter is still refused when repeated.
    let r = post(
        &h,
        &secret,
        "grant_type=client_credentials&scope=read&scope=write",
    )
    .await;
    assert_eq!(r.error(), "invalid_request");
    // No session was started by any of it.
    let sessions = h.issuer.sessions().list("alice", None).await.unwrap();
    assert!(sessions.is_empty());
}

#[tokio::test]
async fn client_credentials_name_their_resources() {
    let h = harness(
        crate::common::store::Backend::sqlite_memory().await,
        Default::default(),
    )
    .await;
    let secret = register(&h).await;
    let r = post(
        &h,
        &secret,
        &format!(
            "grant_type=client_credentials&resource={}&resource={}",
            enc(API),
            enc(MCP)
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(aud(&r.access_token()), serde_json::json!([API, MCP]));
    let r = post(&h, &secret, "grant_type=client_credentials").await;
    assert_eq!(aud(&r.access_token()), AUD);
    // A repeated resource is one audience, as it is for a session.
    let twice = format!("resource={}&resource={}", enc(API), enc(API));
    let r = post(
        &h,
        &secret,
        &format!("grant_type=client_credentials&{twice}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(aud(&r.access_token()), API);
    let r = login(&h, &secret, &[API, API]).await;
    assert_eq!(aud(&r.access_token()), API);
}

#[tokio::test]
async fn a_client_resource_must_be_an_absolute_uri() {
    let h = harness(
        crate::common::store::Backend::sqlite_memory().await,
        Default::default(),
    )
    .await;
    let mut c = NewClient::public("bad", "read");
    c.resources = vec!["https://a.example#frag".into()];
    assert!(
        tollgate::store::clients::register(&h.db, c, std::time::SystemTime::now())
            .await
            .is_err()
    );
}
