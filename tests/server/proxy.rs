//! The client IP behind a real reverse proxy: a small one in the test that
//! writes one forwarding header (appends the peer, as nginx's
//! `$proxy_add_x_forwarded_for` does) and passes the other through as the
//! client sent it. tollgate reads only the header configured, so a client
//! naming a victim's address in the other one is still seen at its own.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tollgate::{
    binding::{ForwardedHeader, TrustedProxies},
    refresh::RefreshPolicy,
    token_endpoint::TokenEndpoint,
};

use crate::common::store::{Backend, harness};

const VICTIM: &str = "203.0.113.66";

/// Serves `endpoint` at `/token` over a socket, with the peer address.
async fn serve(endpoint: TokenEndpoint) -> SocketAddr {
    crate::common::serve(axum::Router::new().route_service("/token", endpoint)).await
}

/// A reverse proxy to `upstream` that appends each client's address to
/// `writes` and leaves every other header alone.
async fn proxy(upstream: SocketAddr, writes: ForwardedHeader) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                forward(upstream, writes, peer.ip(), req)
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

async fn forward(
    upstream: SocketAddr,
    writes: ForwardedHeader,
    client: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let (name, hop) = match writes {
        ForwardedHeader::XForwardedFor => ("x-forwarded-for", client.to_string()),
        ForwardedHeader::Forwarded => ("forwarded", format!("for={client}")),
    };
    let value = match parts.headers.get(name).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {hop}"),
        None => hop,
    };
    parts
        .headers
        .insert(name, HeaderValue::from_str(&value).unwrap());
    let stream = TcpStream::connect(upstream).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let res = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = res.into_parts();
    Ok(Response::from_parts(
        parts,
        Full::new(body.collect().await?.to_bytes()),
    ))
}

/// Logs alice in through a proxy writing `writes`, from 127.0.0.`last`,
/// with a forged victim's address in both headers; the session's IP.
async fn session_ip_through_proxy(writes: ForwardedHeader, last: u8) -> String {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = TokenEndpoint::builder(h.issuer.clone())
        .trusted_proxies(TrustedProxies::new(writes, "127.0.0.1").unwrap())
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .build()
        .unwrap();
    let front = proxy(serve(endpoint).await, writes).await;
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap();
    let res = client
        .post(format!("http://{front}/token"))
        .header("forwarded", format!("for={VICTIM}"))
        .header("x-forwarded-for", VICTIM)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", "alice"),
            ("password", "wonderland"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let sessions = h.issuer.sessions().list("alice", None).await.unwrap();
    sessions[0].last_ip.clone().unwrap()
}

#[tokio::test]
async fn behind_a_proxy_writing_x_forwarded_for_a_forged_forwarded_is_ignored() {
    assert_eq!(
        session_ip_through_proxy(ForwardedHeader::XForwardedFor, 7).await,
        "127.0.0.7"
    );
}

#[tokio::test]
async fn behind_a_proxy_writing_forwarded_a_forged_x_forwarded_for_is_ignored() {
    assert_eq!(
        session_ip_through_proxy(ForwardedHeader::Forwarded, 8).await,
        "127.0.0.8"
    );
}
