//! The same hello-world as tollgate's bench server, behind jwt-authorizer
//! with the same HS256 secret, issuer and audience. Prints its address on
//! the first line; the secret comes from `BENCH_HS256_SECRET`.

use axum::{routing::get, Router};
use jwt_authorizer::{
    layer::JwtSource, Authorizer, IntoLayer, JwtAuthorizer, JwtClaims, RegisteredClaims,
    Validation,
};

async fn hello(JwtClaims(_claims): JwtClaims<RegisteredClaims>) -> &'static str {
    "hello"
}

#[tokio::main]
async fn main() {
    let secret = std::env::var("BENCH_HS256_SECRET").expect("BENCH_HS256_SECRET");
    let issuer = std::env::var("BENCH_ISSUER").expect("BENCH_ISSUER");
    let audience = std::env::var("BENCH_AUDIENCE").expect("BENCH_AUDIENCE");
    let auth: Authorizer<RegisteredClaims> = JwtAuthorizer::from_secret(&secret)
        .validation(Validation::new().iss(&[issuer]).aud(&[audience]))
        .jwt_source(JwtSource::AuthorizationHeader)
        .build()
        .await
        .expect("authorizer");
    let app = Router::new()
        .route("/", get(hello))
        .layer(auth.into_layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
