//! A scripted HTTP/1.1 server on 127.0.0.1, plain or TLS (the test CA in
//! tests/keys), for the code that fetches: each path answers as told,
//! hostile answers included, and every request is counted.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};

pub const CA: &[u8] = include_bytes!("../keys/test-ca.pem");
const CERT: &[u8] = include_bytes!("../keys/localhost.pem");
const CERT_KEY: &[u8] = include_bytes!("../keys/localhost.key");

/// What a path answers.
#[derive(Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: String,
        cache_control: Option<&'static str>,
    },
    /// 302 to another path.
    Redirect(String),
    /// A JSON 200 after a pause.
    Slow(Duration, String),
    /// Headers at once, then one byte of body every 100 ms.
    Drip,
    /// A chunked body without end.
    Endless,
}

pub fn json(body: impl Into<String>) -> Reply {
    Reply::Json {
        status: 200,
        body: body.into(),
        cache_control: None,
    }
}

/// A scripted HTTP/1.1 server on 127.0.0.1, plain or TLS, counting the
/// requests of each path.
pub struct Server {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(tls: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let acceptor = tls.then(|| {
            use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
            let certs = CertificateDer::pem_slice_iter(CERT)
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(CERT_KEY).unwrap();
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let (r, h) = (Arc::clone(&routes), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (r, h, acceptor) = (Arc::clone(&r), Arc::clone(&h), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                serve(tls, &r, &h).await;
                            }
                        }
                        None => serve(tcp, &r, &h).await,
                    }
                });
            }
        });
        let scheme = if tls { "https" } else { "http" };
        Self {
            base: format!(
                "{scheme}://{}",
                if tls {
                    format!("localhost:{}", addr.port())
                } else {
                    addr.to_string()
                }
            ),
            routes,
            hits,
            task,
        }
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    routes: &Mutex<HashMap<String, Reply>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes.lock().unwrap().get(&path).cloned();
    let out = match reply {
        None => {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        }
        Some(Reply::Json {
            status,
            body,
            cache_control,
        }) => {
            let cc = cache_control
                .map(|c| format!("cache-control: {c}\r\n"))
                .unwrap_or_default();
            format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{cc}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Some(Reply::Slow(pause, body)) => {
            tokio::time::sleep(pause).await;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Some(Reply::Redirect(to)) => format!(
            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Some(Reply::Drip) => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n")
                .await;
            for _ in 0..1000 {
                if s.write_all(b" ").await.is_err() || s.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return;
        }
        Some(Reply::Endless) => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
            return;
        }
    };
    let _ = s.write_all(out.as_bytes()).await;
    let _ = s.shutdown().await;
}
