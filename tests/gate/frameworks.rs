//! One `AccessTokenLayer` value mounted, unchanged, in axum, bare hyper and
//! tonic.

use std::convert::Infallible;

use crate::common::*;
use axum::{Json, Router, routing::get};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tollgate::{
    AccessClaims, AccessTokenLayer, RevocationCache,
    claims::{Claims, RawClaims},
};
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::{ServiceBuilder, ServiceExt};

async fn body_string(body: axum::body::Body) -> String {
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The claims a handler wants, in its own type.
#[derive(serde::Deserialize)]
struct Session {
    sid: String,
    client_id: String,
}

/// Claims these tokens do not carry.
#[derive(serde::Deserialize)]
struct Keycloak {
    #[allow(dead_code)]
    realm_access: serde_json::Value,
}

fn axum_app(gate: AccessTokenLayer) -> Router {
    Router::new()
        .route(
            "/me",
            get(|claims: AccessClaims| async move { Json(claims) }),
        )
        .route(
            "/session",
            get(|Claims(s): Claims<Session>| async move { format!("{} {}", s.sid, s.client_id) }),
        )
        .route(
            "/roles",
            get(
                |roles: Option<Claims<Keycloak>>, Claims(s): Claims<Session>| async move {
                    format!("{} {}", roles.is_some(), s.sid)
                },
            ),
        )
        .route(
            "/keycloak",
            get(|_: Claims<Keycloak>| async move { "unreachable" }),
        )
        .layer(gate)
        // Outside the gate: the extractor alone must not let anyone in.
        .route(
            "/open",
            get(|claims: AccessClaims| async move { claims.sub }),
        )
}

#[tokio::test]
async fn axum_router_layer_and_claims_extractor() {
    let app = axum_app(gate(RevocationCache::default()));
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/me")
                .header(header::AUTHORIZATION, format!("Bearer {}", token("t-1")))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let json: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(json["sub"], "alice");
    assert_eq!(json["jti"], "t-1");

    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/me")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="orders""#
    );

    // The handler's own type, from the same token: a fit, an optional
    // misfit, and a required misfit (the gate's 401, not a 500).
    let get_with_token = |uri: &'static str| {
        Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", token("t-1")))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let res = app
        .clone()
        .oneshot(get_with_token("/session"))
        .await
        .unwrap();
    assert_eq!(body_string(res.into_body()).await, "fam-1 web");
    let res = app.clone().oneshot(get_with_token("/roles")).await.unwrap();
    assert_eq!(body_string(res.into_body()).await, "false fam-1");
    let res = app
        .clone()
        .oneshot(get_with_token("/keycloak"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let json: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(json["error"], "invalid_token");
    assert_eq!(
        json["error_description"],
        "The access token lacks claims this resource needs"
    );

    // A route the layer does not cover: the extractor refuses with 401.
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/open")
                .header(header::AUTHORIZATION, format!("Bearer {}", token("t-1")))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let outside = Router::new().route(
        "/session",
        get(|Claims(s): Claims<Session>| async move { s.sid }),
    );
    let res = outside.oneshot(get_with_token("/session")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn auth_error_into_response_carries_a_json_body_with_the_same_error() {
    use axum::response::IntoResponse;
    let err = gate(RevocationCache::default())
        .authenticate(&bearer("not.a.jwt").headers().clone())
        .unwrap_err();
    let res = err.into_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let challenge = res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    let json: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(json["error"], "invalid_token");
    assert!(challenge.contains(json["error_description"].as_str().unwrap()));
}

/// An application's own handler can return a `TokenError` and answer as
/// the token endpoint does.
#[cfg(feature = "store")]
#[tokio::test]
async fn token_error_into_response_is_the_endpoints_rfc_6749_answer() {
    use axum::response::IntoResponse;
    use tollgate::TokenError;
    let res = TokenError::InvalidClient { basic: true }.into_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        r#"Basic realm="tollgate""#
    );
    let json: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(json["error"], "invalid_client");

    let res = TokenError::InvalidScope.into_response();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let json: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(json["error"], "invalid_scope");
}

#[tokio::test]
async fn bare_hyper_server_over_a_socket() {
    let gate = gate(RevocationCache::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // Two connections: one per request below.
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = ServiceBuilder::new().layer(gate.clone()).service_fn(
                |req: Request<Incoming>| async move {
                    let sub = req
                        .extensions()
                        .get::<AccessClaims>()
                        .map(|c| c.sub.clone());
                    // Every claim as signed, for the issuer's own.
                    let session: Option<Session> = req
                        .extensions()
                        .get::<RawClaims>()
                        .and_then(|raw| raw.deserialize().ok());
                    let sub = sub.zip(session).map(|(sub, s)| format!("{sub} {}", s.sid));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                        sub.unwrap_or_default(),
                    ))))
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });

    let request = |auth: Option<String>| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .uri("/")
            .header(header::HOST, "localhost");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let res = sender
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    };

    let (parts, body) = request(Some(format!("Bearer {}", token("t-h")))).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "alice fam-1");
    let (parts, _) = request(Some("Bearer not.a.jwt".into())).await;
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
    assert!(
        parts.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    server.await.unwrap();
}

#[tokio::test]
async fn tonic_server_answers_unauthenticated_then_serves() {
    let gate = gate(RevocationCache::default());
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // What reaches the service behind the gate: the raw claims among the
    // request's extensions, as in axum and hyper.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let server = tokio::spawn(
        Server::builder()
            .layer(gate)
            .layer(tower::layer::layer_fn(move |inner| {
                let record = record.clone();
                tower::util::MapRequest::new(inner, move |req: http::Request<_>| {
                    if let Some(raw) = req.extensions().get::<RawClaims>() {
                        record
                            .lock()
                            .unwrap()
                            .push(raw.get("sid").unwrap().to_string());
                    }
                    req
                })
            }))
            .add_service(health)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );

    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);

    let denied = client
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let mut req = tonic::Request::new(HealthCheckRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token("t-g")).parse().unwrap(),
    );
    let ok = client.check(req).await.unwrap().into_inner();
    assert_eq!(
        ok.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut bad = tonic::Request::new(HealthCheckRequest::default());
    bad.metadata_mut()
        .insert("authorization", "Bearer x.y.z".parse().unwrap());
    let denied = client.check(bad).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    assert_eq!(denied.message(), "The access token is invalid");

    assert_eq!(*seen.lock().unwrap(), [r#""fam-1""#]);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
