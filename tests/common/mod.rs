//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::{
    convert::Infallible,
    time::{Duration, UNIX_EPOCH},
};

pub mod dpop;
pub mod quickstart;
#[cfg(feature = "remote-keys")]
pub mod scripted;
#[cfg(feature = "store")]
pub mod store;

use http::{Request, Response, header};
use tollgate::{
    AccessClaims, AccessTokenLayer, AccessTokenLayerBuilder, RevocationCache,
    keys::{Algorithm, KeySet, SigningKey},
};

pub const ISS: &str = "https://auth.example";
pub const AUD: &str = "orders-api";
pub const REALM: &str = "orders";

pub const ES256_PEM: &[u8] = include_bytes!("../keys/es256.pem");
pub const ED25519_PEM: &[u8] = include_bytes!("../keys/ed25519.pem");
pub const RSA_PEM: &[u8] = include_bytes!("../keys/rsa.pem");
pub const RSA_PUB_PEM: &[u8] = include_bytes!("../keys/rsa.pub.pem");

/// The `Expires` attribute of a `Set-Cookie` value, read as the browser
/// reads it (an RFC 9110 date in GMT); `None` without one.
pub fn cookie_expires(set_cookie: &str) -> Option<std::time::SystemTime> {
    let date = set_cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Expires="))?;
    let at = chrono::DateTime::parse_from_rfc2822(date).expect("an RFC 9110 date");
    Some(at.with_timezone(&chrono::Utc).into())
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn hs256() -> SigningKey {
    SigningKey::hmac("hs-1", Algorithm::HS256, &[42; 32]).unwrap()
}

/// A valid claim set for `jti`, issued now, expiring in five minutes.
pub fn claims(jti: &str) -> AccessClaims {
    let now = now();
    AccessClaims {
        iss: ISS.into(),
        sub: "alice".into(),
        aud: vec![AUD.into()],
        exp: now + 300,
        iat: Some(now),
        nbf: None,
        jti: Some(jti.into()),
        client_id: Some("web".into()),
        scope: Some("orders:read orders:write".into()),
        sid: Some("fam-1".into()),
        tenant: None,
        cnf: None,
        auth_time: None,
        acr: None,
        amr: None,
    }
}

pub fn keyset(key: &SigningKey) -> KeySet {
    KeySet::builder().signing_key(key.clone()).build().unwrap()
}

/// A gate builder trusting `key` for the test issuer and audience.
pub fn gate_builder(key: &SigningKey) -> AccessTokenLayerBuilder {
    AccessTokenLayer::builder()
        .keys(keyset(key))
        .issuer(ISS)
        .audience(AUD)
}

/// The gate most tests use: HS256 key `hs-1`, realm, the given deny list.
pub fn gate(revocations: RevocationCache) -> AccessTokenLayer {
    gate_builder(&hs256())
        .realm(REALM)
        .revocations(revocations)
        .build()
        .unwrap()
}

pub fn token(jti: &str) -> String {
    hs256().sign(&claims(jti)).unwrap()
}

pub fn bearer(token: &str) -> Request<String> {
    Request::builder()
        .uri("/orders")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap()
}

/// An inner service that answers 200 with the verified subject, or 500 if
/// the gate let a request through without claims.
pub async fn echo_sub(req: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(match req.extensions().get::<AccessClaims>() {
        Some(c) => Response::new(format!("{}:{}", c.sub, c.jti.as_deref().unwrap_or("-"))),
        None => Response::builder()
            .status(500)
            .body("no claims".into())
            .unwrap(),
    })
}

pub use tollgate::time::ManualClock;

/// A manual clock standing at the current whole second.
pub fn manual_clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(now()))
}

/// A JWT with arbitrary header and payload JSON, and a given signature part.
pub fn raw_jwt(header: &serde_json::Value, payload: &serde_json::Value, sig: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Everything a tracing subscriber writes, to search the logs.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// Serves `app` on a fresh loopback port, with each connection's peer
/// address (what the endpoints bind refresh tokens to), until the test
/// ends.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Signs each `[header, claims]` with joserfc (`scripts/idp-token`);
/// `None` (skip) when joserfc is missing, except under CI.
#[allow(dead_code)]
pub fn joserfc(
    pem: &str,
    tokens: &[(serde_json::Value, serde_json::Value)],
) -> Option<Vec<String>> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/idp-token");
    let pem = format!("{}/tests/keys/{pem}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .args([script, &pem])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let input: Vec<_> = tokens
        .iter()
        .map(|(h, c)| serde_json::json!([h, c]))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            std::env::var_os("CI").is_none() && err.contains("No module named"),
            "idp-token failed: {err}"
        );
        eprintln!("skipped: joserfc is not installed (pip install joserfc)");
        return None;
    }
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}
