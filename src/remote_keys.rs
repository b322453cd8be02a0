//! Keys from an issuer: its discovery document (OpenID Connect or RFC
//! 8414) or a JWKS URL, fetched at build, kept in a [`Keys`] handle the
//! gate reads lock-free, refreshed in the background as the server's
//! `Cache-Control` allows within configured bounds, and refetched when a
//! token names a `kid` the set lacks — at most once per interval, by one
//! task, however many tokens ask.
//!
//! The client is the crate's one fetcher (`fetch.rs`): hyper with rustls
//! (aws-lc-rs, the webpki roots).
//!
//! Every fetch: `https` (plain `http` only to a loopback host, for tests
//! and local issuers), no userinfo, no redirect followed, `200` only, a
//! body cap, one deadline over connect, headers and body (a slow-drip
//! server is cut off). On failure the last good set keeps serving,
//! reported by a warning, `tollgate_remote_keys_fetches_total{outcome}`
//! and [`RemoteKeys::last_refresh`]; the set is never emptied.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use http::{StatusCode, Uri};
use tokio::sync::Notify;

use crate::{
    fetch::{FetchError, Fetcher, parse_roots},
    keys::{Algorithm, KeyError, KeySet, Keys},
    telemetry,
};

/// Default deadline of one fetch, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on a fetched document.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// Default shortest time between background refreshes, whatever
/// `Cache-Control` says.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(5 * 60);
/// Default longest time between background refreshes, and the interval
/// when the server says nothing.
pub const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(60 * 60);
/// Default shortest time between fetches an unknown `kid` causes.
pub const DEFAULT_UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);
/// How soon a failed refresh is tried again (at most).
const RETRY: Duration = Duration::from_secs(30);

/// Why keys could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteKeysError {
    /// The URL is not `https` (or `http` to a loopback host), or has
    /// userinfo or a fragment.
    #[error("refused URL {0}: https only (http only to a loopback host), no userinfo")]
    Url(String),
    /// No answer within the deadline.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or reading failed.
    #[error("fetch failed: {0}")]
    Http(String),
    /// The answer was not `200` (a redirect is never followed).
    #[error("answered {0}")]
    Status(StatusCode),
    /// The body is larger than the cap.
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The discovery document is not JSON with `issuer` and `jwks_uri`.
    #[error("the discovery document is malformed")]
    BadDiscovery,
    /// The discovery document's `issuer` is not the configured one, byte
    /// for byte (OpenID Connect Discovery §4.3, RFC 8414 §3.3).
    #[error("the discovery document names issuer {0:?}")]
    IssuerMismatch(String),
    /// The JWK set is malformed or has no usable key.
    #[error("the key set is unusable: {0}")]
    Keys(#[from] KeyError),
    /// The host is, or resolves to, a special-use address (RFC 6890:
    /// loopback, private, link-local, …) under
    /// [`public_addresses_only`](RemoteKeysBuilder::public_addresses_only).
    #[error("the host is or resolves to a special-use address")]
    Address,
    /// A root certificate given is not PEM or DER.
    #[error("a root certificate is not valid")]
    BadRootCertificate,
}

impl From<FetchError> for RemoteKeysError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Timeout(t) => Self::Timeout(t),
            FetchError::Http(e) => Self::Http(e),
            FetchError::Status(s) => Self::Status(s),
            FetchError::TooLarge(n) => Self::TooLarge(n),
            FetchError::Address => Self::Address,
            FetchError::BadRootCertificate => Self::BadRootCertificate,
        }
    }
}

impl RemoteKeysError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Url(_) | Self::BadRootCertificate | Self::Address => "refused",
            Self::Timeout(_) => "timeout",
            Self::Http(_) => "http_error",
            Self::Status(_) => "status",
            Self::TooLarge(_) => "too_large",
            Self::BadDiscovery | Self::IssuerMismatch(_) => "bad_discovery",
            Self::Keys(_) => "bad_keys",
        }
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Source {
    Discovery,
    Jwks(Uri),
}

/// Builds [`RemoteKeys`]; from [`RemoteKeys::discover`] or
/// [`RemoteKeys::jwks`].
#[derive(Debug)]
pub struct RemoteKeysBuilder {
    issuer: String,
    source: Result<Source, RemoteKeysError>,
    allowed: Vec<Algorithm>,
    timeout: Duration,
    max_bytes: usize,
    min_refresh: Duration,
    max_refresh: Duration,
    unknown_kid_interval: Duration,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    bad_root: bool,
    public_only: bool,
}

impl RemoteKeysBuilder {
    fn new(issuer: String, source: Result<Source, RemoteKeysError>) -> Self {
        Self {
            issuer,
            source,
            allowed: vec![
                Algorithm::RS256,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::PS256,
                Algorithm::EdDSA,
            ],
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            min_refresh: DEFAULT_MIN_REFRESH,
            max_refresh: DEFAULT_MAX_REFRESH,
            unknown_kid_interval: DEFAULT_UNKNOWN_KID_INTERVAL,
            roots: Vec::new(),
            bad_root: false,
            public_only: false,
        }
    }

    /// The algorithms a key may have (default RS256, ES256, ES384, PS256,
    /// EdDSA; never HMAC, which a published set cannot hold). A key of
    /// another is left out.
    pub fn algorithms(self, allowed: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
            ..self
        }
    }

    /// The deadline of one fetch ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The cap on a fetched document ([`DEFAULT_MAX_BYTES`]).
    pub fn max_bytes(self, max_bytes: usize) -> Self {
        Self { max_bytes, ..self }
    }

    /// The bounds `Cache-Control: max-age` is clamped to
    /// ([`DEFAULT_MIN_REFRESH`], [`DEFAULT_MAX_REFRESH`]); without one the
    /// set is refreshed every `max`.
    pub fn refresh_between(self, min: Duration, max: Duration) -> Self {
        Self {
            min_refresh: min.min(max),
            max_refresh: max,
            ..self
        }
    }

    /// The shortest time between fetches caused by unknown `kid`s
    /// ([`DEFAULT_UNKNOWN_KID_INTERVAL`]).
    pub fn unknown_kid_interval(self, interval: Duration) -> Self {
        Self {
            unknown_kid_interval: interval,
            ..self
        }
    }

    /// Connects only to public addresses: a host that is, or whose name
    /// resolves to, any special-use address (RFC 6890: loopback, private,
    /// link-local and cloud metadata, shared, documentation, multicast,
    /// IPv4-mapped and NAT64/6to4/Teredo forms of them) is refused. The
    /// addresses checked are the ones connected to, so a name rebinding
    /// between check and connect cannot slip through. For issuer URLs that
    /// come from tenants or other untrusted configuration.
    pub fn public_addresses_only(self) -> Self {
        Self {
            public_only: true,
            ..self
        }
    }

    /// Trusts `pem` (one or more PEM certificates) as a root besides the
    /// webpki roots: a private CA, or a test one.
    pub fn root_certificates(mut self, pem: &[u8]) -> Self {
        match parse_roots(pem) {
            Some(c) => self.roots.extend(c),
            None => self.bad_root = true,
        }
        self
    }

    /// Fetches the keys once (failing if there are none usable) and
    /// returns the handle; call [`RemoteKeys::spawn`] to keep them fresh.
    pub async fn build(self) -> Result<RemoteKeys, RemoteKeysError> {
        let source = self.source?;
        if self.bad_root {
            return Err(RemoteKeysError::BadRootCertificate);
        }
        let fetcher = Fetcher::new(&self.roots, self.timeout, self.max_bytes, self.public_only)?;
        let jwks_uri = match &source {
            Source::Jwks(uri) => uri.clone(),
            Source::Discovery => discover(&fetcher, &self.issuer).await?,
        };
        let (set, max_age) = key_set(&fetcher, &jwks_uri, &self.allowed).await?;
        let wake = Arc::new(Notify::new());
        let hook_wake = Arc::clone(&wake);
        let keys = Keys::with_unknown_kid_hook(set, Arc::new(move || hook_wake.notify_one()));
        let inner = Inner {
            issuer: self.issuer,
            jwks_uri,
            allowed: self.allowed,
            fetcher,
            min_refresh: self.min_refresh,
            max_refresh: self.max_refresh,
            unknown_kid_interval: self.unknown_kid_interval,
            wake,
            state: Mutex::new(State {
                last_fetch: Instant::now(),
                last_success: SystemTime::now(),
                next: max_age,
            }),
            failing: AtomicBool::new(false),
        };
        telemetry::remote_keys_fetch("ok");
        Ok(RemoteKeys {
            keys,
            inner: Arc::new(inner),
        })
    }
}

/// An issuer's keys, fetched and kept fresh. Hand [`keys`](Self::keys) to
/// the gate (and to a [`BackChannelLogout`](crate::backchannel)); run
/// [`spawn`](Self::spawn) once on a Tokio runtime. Cloning is cheap.
///
/// ```no_run
/// use tollgate::{AccessTokenLayer, claims::TokenProfile, remote_keys::RemoteKeys};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = "https://sso.example/realms/shop";
/// let keys = RemoteKeys::discover(issuer).build().await?;
/// keys.spawn();
/// let gate = AccessTokenLayer::builder()
///     .keys(keys.keys())
///     .issuer(issuer)
///     .audience("shop-api")
///     .profile(TokenProfile::Oidc)
///     .build()?;
/// # let _ = gate;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RemoteKeys {
    keys: Keys,
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    jwks_uri: Uri,
    allowed: Vec<Algorithm>,
    fetcher: Fetcher,
    min_refresh: Duration,
    max_refresh: Duration,
    unknown_kid_interval: Duration,
    /// Woken (one permit, so a flood coalesces) by unknown `kid`s.
    wake: Arc<Notify>,
    state: Mutex<State>,
    failing: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    last_fetch: Instant,
    last_success: SystemTime,
    /// What the server's `Cache-Control` asked for, if anything.
    next: Option<Duration>,
}

impl RemoteKeys {
    /// Keys by discovery: `{issuer}/.well-known/openid-configuration`,
    /// then RFC 8414's `/.well-known/oauth-authorization-server{path}`;
    /// its `issuer` must equal `issuer` byte for byte, and its `jwks_uri`
    /// is fetched under the same rules.
    pub fn discover(issuer: impl Into<String>) -> RemoteKeysBuilder {
        let issuer = issuer.into();
        let checked = checked_uri(&issuer).map(|_| Source::Discovery);
        RemoteKeysBuilder::new(issuer, checked)
    }

    /// Keys from a JWKS URL, for tokens of `issuer`.
    pub fn jwks(issuer: impl Into<String>, jwks_uri: &str) -> RemoteKeysBuilder {
        RemoteKeysBuilder::new(issuer.into(), checked_uri(jwks_uri).map(Source::Jwks))
    }

    /// The handle the gate reads; every refresh rotates it.
    pub fn keys(&self) -> Keys {
        self.keys.clone()
    }

    /// The issuer these keys are for.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The JWKS URL in use (from discovery, or as given).
    pub fn jwks_uri(&self) -> &Uri {
        &self.inner.jwks_uri
    }

    /// When the keys were last fetched successfully.
    pub fn last_refresh(&self) -> SystemTime {
        self.inner.state.lock().unwrap().last_success
    }

    /// Whether the last fetch failed (the last good set still serves).
    pub fn is_failing(&self) -> bool {
        self.inner.failing.load(Ordering::Relaxed)
    }

    /// Fetches the set now and rotates it in; on failure the current set
    /// stays. Returns the number of keys.
    pub async fn refresh(&self) -> Result<usize, RemoteKeysError> {
        let s = &*self.inner;
        s.state.lock().unwrap().last_fetch = Instant::now();
        match key_set(&s.fetcher, &s.jwks_uri, &s.allowed).await {
            Ok((set, max_age)) => {
                let n = set.verifying_keys().len();
                // The same keys again (the common case, and what a flood
                // of unknown kids fetches): no rotation, so the gate's
                // cache of verified tokens is kept.
                if !same_keys(&self.keys.current(), &set) {
                    self.keys.rotate(set);
                }
                let mut st = s.state.lock().unwrap();
                st.last_success = SystemTime::now();
                st.next = max_age;
                s.failing.store(false, Ordering::Relaxed);
                telemetry::remote_keys_fetch("ok");
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(issuer = %s.issuer, error = %e, "the issuer's keys could not be refreshed; the last good set still serves");
                s.failing.store(true, Ordering::Relaxed);
                telemetry::remote_keys_fetch(e.outcome());
                Err(e)
            }
        }
    }

    /// Keeps the keys fresh until the returned task is aborted: refreshed
    /// when the server's `Cache-Control` (within the bounds) says, sooner
    /// after a failure, and when a token names an unknown `kid`, at most
    /// once per [`unknown_kid_interval`](RemoteKeysBuilder::unknown_kid_interval).
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = this.next_wait();
                let asked = tokio::time::timeout(wait, this.inner.wake.notified())
                    .await
                    .is_ok();
                if asked {
                    // Rate limit: a flood of unknown kids (the permit
                    // coalesces them) causes one fetch per interval.
                    let since = this.inner.state.lock().unwrap().last_fetch.elapsed();
                    if let Some(rest) = this.inner.unknown_kid_interval.checked_sub(since) {
                        tokio::time::sleep(rest).await;
                    }
                }
                let _ = this.refresh().await;
            }
        })
    }

    fn next_wait(&self) -> Duration {
        let s = &*self.inner;
        if s.failing.load(Ordering::Relaxed) {
            return RETRY.min(s.min_refresh.max(Duration::from_secs(1)));
        }
        let st = s.state.lock().unwrap();
        let want = st
            .next
            .unwrap_or(s.max_refresh)
            .clamp(s.min_refresh, s.max_refresh);
        want.saturating_sub(st.last_fetch.elapsed())
    }
}

/// Whether two sets hold the same public keys under the same ids.
fn same_keys(a: &KeySet, b: &KeySet) -> bool {
    let json = |k: &KeySet| serde_json::to_string(&k.jwks()).ok();
    json(a).is_some_and(|j| Some(j) == json(b))
}

/// `https`, or `http` to a loopback host; no userinfo, no fragment.
fn checked_uri(url: &str) -> Result<Uri, RemoteKeysError> {
    let refuse = || RemoteKeysError::Url(url.to_owned());
    if url.contains('#') {
        return Err(refuse());
    }
    let uri: Uri = url.parse().map_err(|_| refuse())?;
    let authority = uri.authority().ok_or_else(refuse)?;
    if authority.as_str().contains('@') {
        return Err(refuse());
    }
    let host = authority.host();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if loopback => Ok(uri),
        _ => Err(refuse()),
    }
}

/// The `jwks_uri` of `issuer`'s discovery document.
async fn discover(fetcher: &Fetcher, issuer: &str) -> Result<Uri, RemoteKeysError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let base = issuer.trim_end_matches('/');
    let oidc = checked_uri(&format!("{base}/.well-known/openid-configuration"))?;
    let body = match fetcher.get(&oidc).await {
        Err(FetchError::Status(StatusCode::NOT_FOUND)) => {
            // RFC 8414 §3.1: the well-known segment before the path.
            let uri = checked_uri(issuer)?;
            let path = uri.path().trim_end_matches('/');
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let scheme = uri.scheme_str().unwrap_or("https");
            let rfc8414 = checked_uri(&format!(
                "{scheme}://{authority}/.well-known/oauth-authorization-server{path}"
            ))?;
            fetcher.get(&rfc8414).await?.0
        }
        other => other?.0,
    };
    let doc: Discovery =
        serde_json::from_slice(&body).map_err(|_| RemoteKeysError::BadDiscovery)?;
    if doc.issuer != issuer {
        return Err(RemoteKeysError::IssuerMismatch(doc.issuer));
    }
    checked_uri(&doc.jwks_uri)
}

async fn key_set(
    fetcher: &Fetcher,
    uri: &Uri,
    allowed: &[Algorithm],
) -> Result<(KeySet, Option<Duration>), RemoteKeysError> {
    let (body, max_age) = fetcher.get(uri).await?;
    Ok((KeySet::from_jwks(&body, allowed)?, max_age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        for ok in [
            "https://sso.example/realms/shop",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]:9/jwks",
            "http://localhost:3000/x",
        ] {
            assert!(checked_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sso.example/jwks",
            "http://10.0.0.1/jwks",
            "https://user:pw@sso.example/jwks",
            "https://sso.example/jwks#frag",
            "ftp://sso.example/jwks",
            "/jwks",
            "file:///etc/passwd",
        ] {
            assert!(checked_uri(bad).is_err(), "{bad}");
        }
    }
}
