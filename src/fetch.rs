//! One GET of a document from a server the configuration (or a client)
//! names: hyper with rustls (aws-lc-rs, the crate's one crypto provider;
//! the webpki roots and any extra roots), no redirect followed, `200`
//! only, a body cap, one deadline over connect, headers and body (a
//! slow-drip server is cut off), and optionally public addresses only
//! (RFC 6890), checked in the resolver hyper connects through so that the
//! addresses checked are the ones connected to. Hyper rather than reqwest
//! because every fetch here is one GET whose resolver, redirects, cap and
//! deadline we decide ourselves, with less to build. Used by
//! [`remote_keys`](crate::remote_keys) (an issuer's JWKS) and the client
//! metadata document resolver.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{
        Client,
        connect::{
            HttpConnector,
            dns::{GaiResolver, Name},
        },
    },
    rt::TokioExecutor,
};

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// No complete answer within the deadline.
    Timeout(Duration),
    /// Connecting or reading failed.
    Http(String),
    /// The answer was not `200` (a redirect is never followed).
    Status(StatusCode),
    /// The body is larger than the cap.
    TooLarge(usize),
    /// The host is, or resolves to, a special-use address.
    Address,
    /// An extra root certificate could not be added.
    BadRootCertificate,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout(t) => write!(f, "no complete answer within {t:?}"),
            Self::Http(e) => write!(f, "fetch failed: {e}"),
            Self::Status(s) => write!(f, "answered {s}"),
            Self::TooLarge(n) => write!(f, "the document is larger than {n} bytes"),
            Self::Address => f.write_str("the host is or resolves to a special-use address"),
            Self::BadRootCertificate => f.write_str("a root certificate is not valid"),
        }
    }
}

/// The certificates of `pem`; `None` if it holds none or a bad one.
pub(crate) fn parse_roots(pem: &[u8]) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .ok()?;
    (!certs.is_empty()).then_some(certs)
}

/// One GET at a time under the rules of the module.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Empty<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
    public_only: bool,
}

impl Fetcher {
    pub(crate) fn new(
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
        timeout: Duration,
        max_bytes: usize,
        public_only: bool,
    ) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in extra_roots {
            roots
                .add(root.clone())
                .map_err(|_| FetchError::BadRootCertificate)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(Resolver {
            public_only,
            gai: GaiResolver::new(),
        });
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            client,
            timeout,
            max_bytes,
            public_only,
        })
    }

    /// The body of a `200` answer to a GET of `uri`, and its
    /// `Cache-Control: max-age`.
    pub(crate) async fn get(&self, uri: &Uri) -> Result<(Bytes, Option<Duration>), FetchError> {
        // An address in the URL is connected to without the resolver.
        let host = uri.host().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        if self.public_only && literal.is_ok_and(is_special_use) {
            return Err(FetchError::Address);
        }
        let req = Request::get(uri.clone())
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
            )
            .body(Empty::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let max = self.max_bytes;
        let fetch = async {
            let res = self.client.request(req).await.map_err(|e| {
                if caused_by::<SpecialUse>(&e) {
                    FetchError::Address
                } else {
                    FetchError::Http(e.to_string())
                }
            })?;
            if res.status() != StatusCode::OK {
                return Err(FetchError::Status(res.status()));
            }
            let declared = res
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(FetchError::TooLarge(max));
            }
            let max_age = res
                .headers()
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(cache_max_age);
            let body = Limited::new(res.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge(max)
                    } else {
                        FetchError::Http(e.to_string())
                    }
                })?
                .to_bytes();
            Ok((body, max_age))
        };
        tokio::time::timeout(self.timeout, fetch)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }
}

/// Resolves names with the system resolver and, under the public-only
/// policy, refuses a name with any special-use address: hyper connects
/// to exactly the addresses returned here, so what was checked is what
/// is connected to.
#[derive(Clone)]
struct Resolver {
    public_only: bool,
    gai: GaiResolver,
}

/// A name resolved to a special-use address.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves to a special-use address")]
struct SpecialUse;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.gai.call(name);
        let public_only = self.public_only;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            // Any special-use address fails the whole name: a name that
            // resolves to a public and a private address is an attack.
            if public_only && addrs.iter().any(|a| is_special_use(a.ip())) {
                return Err(Box::new(SpecialUse) as BoxError);
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Whether `e` or any error under it is a `T`.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The special-use blocks of RFC 6890 (and its updates) that a fetch on
/// behalf of untrusted configuration must never reach; IPv6 forms that
/// embed an IPv4 address count as special-use whatever they embed (fail
/// closed), except IPv4-mapped, which is judged by the address it maps.
pub(crate) fn is_special_use(ip: IpAddr) -> bool {
    const V4: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ];
    const V6: &[&str] = &[
        "::/127",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let within = |nets: &[&str], ip: IpAddr| {
        nets.iter()
            .any(|n| n.parse::<ipnet::IpNet>().is_ok_and(|net| net.contains(&ip)))
    };
    match ip {
        IpAddr::V4(v4) => within(V4, IpAddr::V4(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => within(V4, IpAddr::V4(v4)),
            None => within(V6, IpAddr::V6(v6)),
        },
    }
}

/// `max-age` of one `Cache-Control` value; `no-store` and `no-cache`
/// count as 0 (refresh as soon as the lower bound allows).
fn cache_max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|d| {
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        let (name, secs) = d.split_once('=')?;
        name.trim().eq_ignore_ascii_case("max-age").then(|| {
            secs.trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs)
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001::1",
        ] {
            assert!(is_special_use(special.parse().unwrap()), "{special}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "172.32.0.1",
        ] {
            assert!(!is_special_use(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            cache_max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(cache_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("public"), None);
        assert_eq!(cache_max_age("max-age=x"), None);
    }
}
