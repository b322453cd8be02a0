//! tollgate on bare hyper 1 + hyper-util, no framework:
//! `cargo run --example hyper_server` serves `POST /token` and a protected
//! `GET /me` on 127.0.0.1:3001 (in-memory SQLite, demo user
//! alice/wonderland on public client `cli`).
//!
//! `cargo run --example hyper_server -- --self-test` starts it on a free
//! port, calls it as a client would (no token → 401, log in, token → 200)
//! and exits; the example's smoke test runs that.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tollgate::{
    AccessClaims, AccessTokenLayer, RevocationSync,
    binding::PeerAddr,
    issuer::Issuer,
    keys::{Algorithm, SigningKey},
    secret::{RefreshSecret, random_token},
    store::{self, clients::NewClient},
    token_endpoint::TokenEndpoint,
};
use tower::{Layer, ServiceExt, service_fn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let addr = if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3001"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (endpoint, gate) = services().await?;
    println!("hyper_server listening on http://{addr}");
    let server = tokio::spawn(serve(listener, endpoint, gate));
    if self_test {
        client(addr).await?;
        server.abort();
        println!("self-test passed");
        return Ok(());
    }
    server.await?
}

/// The token endpoint and the gate, over one issuer and key set.
async fn services() -> Result<(TokenEndpoint, AccessTokenLayer), BoxError> {
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    store::migrate(&db).await?;
    let mut cli = NewClient::public("cli", "read");
    cli.allow_password = true;
    store::clients::register(&db, cli, std::time::SystemTime::now()).await?;
    // A fresh secret per run: this example keeps nothing.
    let key = SigningKey::hmac("hyper-example", Algorithm::HS256, random_token().as_bytes())?;
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(key)
        .issuer("https://hyper.example")
        .audience("hyper-api")
        .refresh_secret(RefreshSecret::new(random_token().as_bytes())?)
        .build()?;
    // The deny list is loaded from the store before the gate serves (until
    // then it answers 503); one instance with an in-memory store needs no
    // polling after that.
    RevocationSync::builder(db, issuer.revocations().clone())
        .build()
        .sync()
        .await?;
    let gate = issuer.access_token_layer().build()?;
    // Deletes expired and revoked sessions hourly.
    issuer.janitor().build().spawn();
    let endpoint = TokenEndpoint::builder(issuer)
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .build()?;
    Ok((endpoint, gate))
}

/// One hyper connection per accepted socket; the peer address goes into
/// the request extensions (refresh tokens may be bound to it).
async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: TokenEndpoint,
    gate: AccessTokenLayer,
) -> Result<(), BoxError> {
    let me = gate.layer(service_fn(|req: Request<Incoming>| async move {
        let claims = req.extensions().get::<AccessClaims>().cloned();
        let body = serde_json::to_vec(&claims).unwrap_or_default();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    }));
    loop {
        let (stream, peer) = listener.accept().await?;
        let (endpoint, me) = (endpoint.clone(), me.clone());
        let svc = service_fn(move |mut req: Request<Incoming>| {
            let (endpoint, me) = (endpoint.clone(), me.clone());
            req.extensions_mut().insert(PeerAddr(peer));
            async move {
                match req.uri().path() {
                    "/token" => endpoint.oneshot(req).await,
                    "/me" => me.oneshot(req).await,
                    _ => {
                        let mut res = Response::new(Full::default());
                        *res.status_mut() = StatusCode::NOT_FOUND;
                        Ok(res)
                    }
                }
            }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(
                    TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(svc),
                )
                .await;
        });
    }
}

/// What a client sees: 401 without a token, a token from `/token`, 200 with it.
async fn client(addr: SocketAddr) -> Result<(), BoxError> {
    let (status, _) = send(addr, Request::get("/me"), Empty::new()).await?;
    println!("GET /me without a token: {status}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = send(
        addr,
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
        Full::new(Bytes::from_static(
            b"grant_type=password&client_id=cli&username=alice&password=wonderland",
        )),
    )
    .await?;
    println!("POST /token: {status}");
    assert_eq!(status, StatusCode::OK);
    let tokens: serde_json::Value = serde_json::from_slice(&body)?;
    let access = tokens["access_token"].as_str().ok_or("no access token")?;

    let (status, body) = send(
        addr,
        Request::get("/me").header(header::AUTHORIZATION, format!("Bearer {access}")),
        Empty::new(),
    )
    .await?;
    println!(
        "GET /me with the token: {status} {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

async fn send<B>(
    addr: SocketAddr,
    req: http::request::Builder,
    body: B,
) -> Result<(StatusCode, Bytes), BoxError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = req.header(header::HOST, addr.to_string()).body(body)?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    Ok((status, res.into_body().collect().await?.to_bytes()))
}
