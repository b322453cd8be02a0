//! tollgate in front of a tonic gRPC server: `cargo run --example
//! tonic_server` serves the standard health service (no protoc needed) on
//! 127.0.0.1:50051 behind the gate, and prints an access token to call it
//! with.
//!
//! `cargo run --example tonic_server -- --self-test` starts it on a free
//! port and shows a call refused with UNAUTHENTICATED, then accepted with
//! the token; the example's smoke test runs that.

use std::net::SocketAddr;

use tollgate::{
    RevocationSync,
    issuer::{Issuer, RequestContext},
    keys::{Algorithm, SigningKey},
    secret::{RefreshSecret, random_token},
    store::{self, clients::NewClient},
};
use tonic::transport::{Channel, Server};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let addr = if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:50051"
    };

    // Mint a token in-process, as an application's login handler would.
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    store::migrate(&db).await?;
    store::clients::register(
        &db,
        NewClient::public("grpc-cli", "health"),
        std::time::SystemTime::now(),
    )
    .await?;
    let key = SigningKey::hmac("tonic-example", Algorithm::HS256, random_token().as_bytes())?;
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(key)
        .issuer("https://tonic.example")
        .audience("grpc-api")
        .refresh_secret(RefreshSecret::new(random_token().as_bytes())?)
        .build()?;
    // The deny list is loaded from the store before the gate serves.
    RevocationSync::builder(db, issuer.revocations().clone())
        .build()
        .sync()
        .await?;
    let token = issuer
        .issue("alice", "grpc-cli", None, &RequestContext::default())
        .await?
        .access_token;

    let gate = issuer.access_token_layer().build()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    println!("tonic_server listening on http://{addr}");
    // The same layer value as for axum or hyper: rejections are gRPC
    // trailers-only responses (grpc-status 16 or 7).
    let server = tokio::spawn(
        Server::builder()
            .layer(gate)
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    if self_test {
        client(addr, &token).await?;
        server.abort();
        println!("self-test passed");
        return Ok(());
    }
    println!("call it with: authorization: Bearer {token}");
    server.await??;
    Ok(())
}

async fn client(addr: SocketAddr, token: &str) -> Result<(), BoxError> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);

    let denied = health
        .check(HealthCheckRequest::default())
        .await
        .expect_err("no token, no service");
    println!("Check without a token: {:?}", denied.code());
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let mut req = tonic::Request::new(HealthCheckRequest::default());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let status = health.check(req).await?.into_inner().status();
    println!("Check with the token: {status:?}");
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    Ok(())
}
