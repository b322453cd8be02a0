//! `tollgate::testing::TestServer`, used the way a downstream crate would:
//! its gate on a router, tokens minted for any subject and scope, the real
//! endpoints over its socket, and revocation.

use axum::{Router, body::Body, routing::get};
use http::{Request, StatusCode, header};
use tollgate::{
    AccessClaims,
    testing::{PUBLIC_CLIENT, TEST_PASSWORD, TestServer},
};
use tower::ServiceExt;

async fn status(app: &Router, token: &str) -> StatusCode {
    let req = Request::get("/scoped")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn a_downstream_test_mints_uses_and_revokes_tokens() {
    let server = TestServer::start().await;
    let app = Router::new()
        .route("/scoped", get(|c: AccessClaims| async move { c.sub }))
        .layer(
            tollgate::AccessTokenLayer::builder()
                .keys(server.issuer().keys().clone())
                .issuer(tollgate::testing::ISSUER)
                .audience(tollgate::testing::AUDIENCE)
                .revocations(server.revocations().clone())
                .require_scope("orders:write")
                .build()
                .unwrap(),
        );
    let writer = server.mint("bob", "orders:read orders:write").await;
    let reader = server.mint("carol", "orders:read").await;
    assert_eq!(status(&app, &writer.access_token).await, StatusCode::OK);
    assert_eq!(
        status(&app, &reader.access_token).await,
        StatusCode::FORBIDDEN
    );

    // The minted refresh token works at the real endpoint over the socket.
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", writer.refresh_token.as_deref().unwrap()),
            ("client_id", "test-client-0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: serde_json::Value = res.json().await.unwrap();
    let rotated_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(status(&app, &rotated_access).await, StatusCode::OK);

    // Revoking the session's refresh token kills its access tokens.
    server
        .revoke(rotated["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        status(&app, &rotated_access).await,
        StatusCode::UNAUTHORIZED
    );

    // The password grant works for the public test client.
    let res = client
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "dave"),
            ("password", TEST_PASSWORD),
            ("client_id", PUBLIC_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let login: serde_json::Value = res.json().await.unwrap();
    let claims = server
        .access_token_layer()
        .verify(login["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_deref().unwrap()),
        ("dave", PUBLIC_CLIENT)
    );
}
