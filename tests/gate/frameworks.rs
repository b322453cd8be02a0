//! One `AccessTokenLayer` value mounted, unchanged, in axum, bare hyper and
//! tonic.

use std::convert::Infallible;

use crate::common::*;
use axum::{Json, Router, routing::get};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tollgate::{AccessClaims, AccessTokenLayer, RevocationCache};
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::{ServiceBuilder, ServiceExt};

async fn body_string(body: axum::body::Body) -> String {
    String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn axum_app(gate: AccessTokenLayer) -> Router {
    Router::new()
        .route(
            "/me",
            get(|claims: AccessClaims| async move { Json(claims) }),
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

    // A route the layer does not cover: the extractor refuses with 401.
    let res = app
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
    assert_eq!(body, "alice");
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
    let server = tokio::spawn(
        Server::builder()
            .layer(gate)
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

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
