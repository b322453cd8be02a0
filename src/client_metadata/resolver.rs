//! Fetching client metadata documents: the `remote_keys` client under a
//! public-address policy, one fetch per client id at a time, a bounded
//! cache honouring `Cache-Control` within bounds, errors never cached.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

use super::{
    ClientMetadata, ClientMetadataError, DEFAULT_MAX_DOCUMENT_BYTES, check_client_id_url,
    parse_document,
};
use crate::fetch::{FetchError, Fetcher, parse_roots};

/// Default deadline of one document fetch.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Default bounds on how long a document is kept.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(60);
/// See [`DEFAULT_MIN_AGE`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Documents kept at most.
const CAPACITY: u64 = 10_000;

type Outcome = Result<Arc<ClientMetadata>, ResolveError>;

/// Why a client id could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The URL or the document was refused.
    #[error(transparent)]
    Document(#[from] ClientMetadataError),
    /// The host policy refused the host.
    #[error("the host may not serve client metadata documents here")]
    HostRefused,
    /// The host is or resolves to a special-use address.
    #[error("the host is or resolves to a special-use address")]
    Address,
    /// A root certificate given is not PEM.
    #[error("a root certificate is not valid")]
    BadRootCertificate,
    /// The fetch failed: timeout, connection, a status other than 200 (a
    /// redirect is never followed).
    #[error("the document could not be fetched: {0}")]
    Fetch(String),
}

/// Resolves client ids that are metadata document URLs. Cloning is cheap.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    fetcher: Fetcher,
    allow_host: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    min_age: Duration,
    max_age: Duration,
    cache: moka::sync::Cache<String, (Arc<ClientMetadata>, Instant)>,
    inflight: Mutex<HashMap<String, Arc<OnceCell<Outcome>>>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("cached", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Resolver`].
#[must_use]
pub struct ResolverBuilder {
    timeout: Duration,
    min_age: Duration,
    max_age: Duration,
    allow_host: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    loopback_for_tests: bool,
    roots: Vec<u8>,
}

impl fmt::Debug for ResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverBuilder")
            .field("timeout", &self.timeout)
            .field("loopback_for_tests", &self.loopback_for_tests)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Starts a builder: public addresses only, every host allowed.
    pub fn builder() -> ResolverBuilder {
        ResolverBuilder {
            timeout: DEFAULT_FETCH_TIMEOUT,
            min_age: DEFAULT_MIN_AGE,
            max_age: DEFAULT_MAX_AGE,
            allow_host: Arc::new(|_| true),
            loopback_for_tests: false,
            roots: Vec::new(),
        }
    }

    /// The checked document of `client_id`, from the cache or fetched
    /// (one fetch per client id at a time; concurrent callers share it).
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<ClientMetadata>, ResolveError> {
        let s = &*self.inner;
        let uri = check_client_id_url(client_id)?;
        if !(s.allow_host)(uri.host().unwrap_or_default()) {
            return Err(ResolveError::HostRefused);
        }
        if let Some((doc, until)) = s.cache.get(client_id) {
            if Instant::now() < until {
                return Ok(doc);
            }
            s.cache.invalidate(client_id);
        }
        let cell = Arc::clone(
            s.inflight
                .lock()
                .unwrap()
                .entry(client_id.to_owned())
                .or_default(),
        );
        let outcome = cell
            .get_or_init(|| async {
                let outcome = self.fetch(client_id, &uri).await;
                if let Ok((doc, age)) = &outcome {
                    s.cache.insert(
                        client_id.to_owned(),
                        (Arc::clone(doc), Instant::now() + *age),
                    );
                }
                outcome.map(|(doc, _)| doc)
            })
            .await
            .clone();
        // The next caller after this flight reads the cache, or (after an
        // error, which is never cached) fetches again.
        let mut inflight = s.inflight.lock().unwrap();
        if inflight
            .get(client_id)
            .is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            inflight.remove(client_id);
        }
        outcome
    }

    async fn fetch(
        &self,
        client_id: &str,
        uri: &http::Uri,
    ) -> Result<(Arc<ClientMetadata>, Duration), ResolveError> {
        let s = &*self.inner;
        let (body, max_age) = s.fetcher.get(uri).await.map_err(|e| match e {
            FetchError::Address => ResolveError::Address,
            FetchError::TooLarge(_) => ResolveError::Document(ClientMetadataError::TooLarge),
            other => ResolveError::Fetch(other.to_string()),
        })?;
        let doc = parse_document(client_id, &body)?;
        let age = max_age.unwrap_or(s.min_age).clamp(s.min_age, s.max_age);
        Ok((Arc::new(doc), age))
    }

    /// Documents in the cache (approximate).
    pub fn cached(&self) -> u64 {
        self.inner.cache.run_pending_tasks();
        self.inner.cache.entry_count()
    }
}

impl ResolverBuilder {
    /// The deadline of one fetch, body included ([`DEFAULT_FETCH_TIMEOUT`]).
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// How long a document is kept: its `Cache-Control: max-age` clamped
    /// to these ([`DEFAULT_MIN_AGE`], [`DEFAULT_MAX_AGE`]); `min` without one.
    pub fn cache_between(self, min: Duration, max: Duration) -> Self {
        Self {
            min_age: min.min(max),
            max_age: max,
            ..self
        }
    }

    /// Which hosts may serve documents (trusted domains, a deny list);
    /// checked before anything is fetched.
    pub fn allow_host(self, allow: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self {
            allow_host: Arc::new(allow),
            ..self
        }
    }

    /// For tests only: loopback and private addresses may be fetched
    /// (still over https). Logged as a warning when built.
    pub fn allow_special_use_addresses_for_tests(self) -> Self {
        Self {
            loopback_for_tests: true,
            ..self
        }
    }

    /// Trusts `pem` as a root besides the webpki roots (a test CA).
    pub fn root_certificates(mut self, pem: &[u8]) -> Self {
        self.roots.extend_from_slice(pem);
        self.roots.push(b'\n');
        self
    }

    /// Builds the resolver.
    pub fn build(self) -> Result<Resolver, ResolveError> {
        let roots = if self.roots.is_empty() {
            Vec::new()
        } else {
            parse_roots(&self.roots).ok_or(ResolveError::BadRootCertificate)?
        };
        if self.loopback_for_tests {
            tracing::warn!(
                "client metadata documents may be fetched from loopback and private addresses: for tests only"
            );
        }
        let fetcher = Fetcher::new(
            &roots,
            self.timeout,
            DEFAULT_MAX_DOCUMENT_BYTES,
            !self.loopback_for_tests,
        )
        .map_err(|e| ResolveError::Fetch(e.to_string()))?;
        Ok(Resolver {
            inner: Arc::new(Inner {
                fetcher,
                allow_host: self.allow_host,
                min_age: self.min_age,
                max_age: self.max_age,
                cache: moka::sync::Cache::builder()
                    .max_capacity(CAPACITY)
                    .time_to_live(self.max_age)
                    .build(),
                inflight: Mutex::default(),
            }),
        })
    }
}
