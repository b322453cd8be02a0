//! `Tollgate::builder`: one call wires migrate → clients → issuer → warm
//! sync → janitor → endpoint, on SQLite, PostgreSQL and MariaDB; a restart
//! keeps logouts; and the lower-level path warns when no janitor runs.

use crate::common::{
    AUD, Captured, ISS, hs256, keyset,
    store::{Backend, call, form, per_backend, sqlite_memory},
};
use http::StatusCode;
use sea_orm::DatabaseConnection;
use tollgate::{
    Issuer, RefreshSecret, RequestContext, StartError, TokenEndpoint, Tollgate,
    store::clients::NewClient,
};

fn issuer() -> tollgate::issuer::IssuerBuilder {
    Issuer::builder()
        .keys(keyset(&hs256()))
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
}

fn service() -> NewClient {
    let mut svc = NewClient::confidential("svc", "reports");
    svc.allow_client_credentials = true;
    svc
}

async fn start(db: &DatabaseConnection, web_scope: &str) -> Tollgate {
    Tollgate::builder(db.clone())
        .issuer(issuer())
        .client(NewClient::public("web", web_scope))
        .client_with_secret(service(), "svc-secret")
        .start()
        .await
        .unwrap()
}

per_backend! {
    #[tokio::test]
    async fn one_start_serves_and_a_restart_keeps_the_logouts(b) {
        let Backend { name, db } = b;
        let first = start(&db, "read").await;
        let gate = first.gate().build().unwrap();
        let ctx = RequestContext::default();
        let tokens = first
            .issuer()
            .issue("alice", "web", None, &ctx)
            .await
            .unwrap();
        // Warm at once: no 503 while a sync catches up.
        let claims = gate.verify(&tokens.access_token).unwrap();
        assert!(first.revocation_sync().last_synced().is_some(), "{name}");
        assert!(first.sessions().logout(&claims).await.unwrap());
        first.shutdown();

        // The restarted process: same store, new memory, a client changed.
        let second = start(&db, "read write").await;
        let gate = second.gate().build().unwrap();
        assert!(
            gate.verify(&tokens.access_token).is_err(),
            "{name}: a restart brought a logged-out token back"
        );
        let wider = second
            .issuer()
            .issue("alice", "web", Some("write"), &ctx)
            .await
            .unwrap();
        assert_eq!(wider.scope, "write", "{name}: the client's settings were updated");
        assert!(gate.verify(&wider.access_token).is_ok());
        second.shutdown();
    }
}

async fn route(
    router: &axum::Router,
    req: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> (StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn the_routes_answer_the_oauth_requests() {
    let db = sqlite_memory().await;
    let tollgate = start(&db, "read").await;
    let router: axum::Router = tollgate.routes();
    let mut token = form("grant_type=client_credentials&client_id=svc&client_secret=svc-secret");
    *token.uri_mut() = "/token".parse().unwrap();
    let (status, _) = route(&router, token).await;
    assert_eq!(status, StatusCode::OK);
    let metadata = http::Request::get(tollgate.endpoint().metadata().well_known_path())
        .body(http_body_util::Full::default())
        .unwrap();
    let (status, json) = route(&router, metadata).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["token_endpoint"], format!("{ISS}/token"));
    tollgate.shutdown();
}

#[tokio::test]
async fn a_confidential_client_needs_its_secret_and_settings_are_checked() {
    let db = sqlite_memory().await;
    let missing_secret = Tollgate::builder(db.clone())
        .issuer(issuer())
        .client(service())
        .start()
        .await;
    assert!(matches!(missing_secret, Err(StartError::Client(_))));
    let no_issuer = Tollgate::builder(db.clone()).start().await;
    assert!(matches!(no_issuer, Err(StartError::Issuer(_))));
    let bad_scope = Tollgate::builder(db)
        .issuer(issuer())
        .client(NewClient::public("web", "bad\"scope"))
        .start()
        .await;
    assert!(matches!(bad_scope, Err(StartError::Store(_))));
}

/// How many "no janitor" warnings two requests to an endpoint over
/// log (on this thread's subscriber).
async fn janitor_warnings(endpoint: TokenEndpoint) -> usize {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for _ in 0..2 {
        call(endpoint.clone(), form("grant_type=client_credentials")).await;
    }
    let text = captured.text();
    text.matches("no janitor runs").count()
}

#[tokio::test(flavor = "current_thread")]
async fn an_endpoint_warns_once_when_no_janitor_runs() {
    let db = sqlite_memory().await;
    let issuer = issuer().db(db).build().unwrap();
    let endpoint = || TokenEndpoint::builder(issuer.clone());
    assert_eq!(janitor_warnings(endpoint().build().unwrap()).await, 1);
    assert_eq!(
        janitor_warnings(endpoint().janitor_elsewhere().build().unwrap()).await,
        0
    );
    let janitor = issuer.janitor().build().spawn();
    assert_eq!(janitor_warnings(endpoint().build().unwrap()).await, 0);
    janitor.abort();
}

#[tokio::test]
async fn a_deny_list_given_to_the_issuer_is_the_one_the_gates_use() {
    let db = sqlite_memory().await;
    let deny = tollgate::RevocationCache::default();
    let tollgate = Tollgate::builder(db)
        .issuer(issuer().revocations(deny.clone()))
        .client(NewClient::public("web", "read"))
        .start()
        .await
        .unwrap();
    let tokens = tollgate
        .issuer()
        .issue("alice", "web", None, &RequestContext::default())
        .await
        .unwrap();
    let gate = tollgate.gate().build().unwrap();
    let claims = gate.verify(&tokens.access_token).unwrap();
    deny.revoke_token(
        claims.jti.as_deref().unwrap(),
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(claims.exp),
    );
    assert!(gate.verify(&tokens.access_token).is_err());
    tollgate.shutdown();
}
