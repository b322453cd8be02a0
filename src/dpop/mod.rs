//! DPoP (RFC 9449): tokens bound to a key the client holds, so a stolen
//! token alone is useless.
//!
//! A [`Dpop`] holds what every proof is checked against: the algorithm
//! allow-list (asymmetric only), the `iat` window, the replay cache and,
//! optionally, server nonces. Give one to the gate
//! ([`AccessTokenLayerBuilder::dpop`](crate::access_token::AccessTokenLayerBuilder::dpop))
//! and to the token endpoint, which then binds access tokens (`cnf.jkt`)
//! and public clients' refresh tokens to the proof's key.
//!
//! Each proof is checked for: one `DPoP` header; `typ: dpop+jwt`; an
//! allowed `alg`; a public `jwk` of the type `alg` needs (a private member
//! is refused); the signature; `htm` = the method; `htu` = the URL built
//! from the configured public URL (never the request's `Host`), compared
//! after RFC 3986 normalisation; `iat` no older than [`DEFAULT_MAX_AGE`]
//! and no further ahead than [`DEFAULT_FUTURE_SKEW`]; a `jti` of at most
//! 256 bytes; `ath` = the hash of the access token (at the gate); the
//! nonce, where required. Only then is the (thumbprint, `jti`) pair claimed
//! in the replay cache.
//!
//! **Replay across instances.** The replay cache is in memory: one
//! instance accepts each proof once. Behind a load balancer a proof could
//! be replayed once at each other instance within its window (at most
//! [`DEFAULT_MAX_AGE`] plus the skew). Server nonces narrow that window to
//! the nonce's lifetime but do not close it.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::{dpop::{Dpop, Nonces}, keys::Algorithm};
//!
//! let dpop = Dpop::builder()
//!     .algorithms([Algorithm::ES256, Algorithm::EdDSA])
//!     .nonces(Nonces::new(&[7; 32], Duration::from_secs(60)).unwrap())
//!     .build()
//!     .unwrap();
//! // EdDSA under both its names: RFC 8037's and RFC 9864's.
//! assert_eq!(dpop.algorithms_supported(), ["ES256", "EdDSA", "Ed25519"]);
//! ```

mod htu;
mod nonce;
mod proof;
mod replay;

use std::{sync::Arc, time::Duration};

use http::HeaderMap;

use jsonwebtoken::Algorithm;

pub(crate) use htu::Htu;
pub use nonce::{NonceConfigError, Nonces};
#[cfg(feature = "store")]
pub(crate) use proof::CheckedProof;
pub use proof::{BoxError, DpopError, SharedReplay};
pub(crate) use proof::{Expected, MAX_PROOF_LEN, SharedClaim};
pub use replay::{DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_PER_KEY, ReplayCache};

/// The one `DPoP` header's proof (RFC 9449 §4.3: exactly one).
pub(crate) fn proof_header(headers: &HeaderMap) -> Result<&str, DpopError> {
    let mut values = headers.get_all("dpop").iter();
    let proof = values.next().ok_or(DpopError::Missing)?;
    if values.next().is_some() {
        return Err(DpopError::Multiple);
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    proof.to_str().map_err(|_| DpopError::Malformed)
}

/// The header a fresh server nonce travels in (RFC 9449 §8), at the gate
/// and at `/token`.
pub const NONCE_HEADER: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Default age past which a proof's `iat` is stale: 60 seconds.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// Default allowance for a client clock ahead of ours: 5 seconds.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(5);

/// The algorithms accepted by default: ES256, EdDSA (Ed25519), PS256,
/// RS256.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// The facts of a verified DPoP request, put into the request extensions
/// beside the [`AccessClaims`](crate::AccessClaims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopKey {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (the token's
    /// `cnf.jkt`).
    pub thumbprint: String,
}

/// DPoP proof checking, shared by gates and the token endpoint. Cloning is
/// cheap.
#[derive(Debug, Clone)]
pub struct Dpop {
    pub(crate) checker: Arc<proof::Checker>,
    /// `ES256 EdDSA ...`: the challenges' `algs`.
    algs: Arc<str>,
}

impl Dpop {
    /// Starts a builder with the defaults.
    pub fn builder() -> DpopBuilder {
        DpopBuilder {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            future_skew: DEFAULT_FUTURE_SKEW,
            replay: None,
            nonces: None,
            shared: None,
        }
    }

    /// The accepted algorithms' names, for metadata
    /// (`dpop_signing_alg_values_supported`).
    pub fn algorithms_supported(&self) -> Vec<&'static str> {
        self.checker
            .algorithms
            .iter()
            .filter_map(|a| asymmetric_names(*a))
            .flatten()
            .copied()
            .collect()
    }

    /// The accepted algorithms, space-separated (a challenge's `algs`).
    pub(crate) fn algs(&self) -> &str {
        &self.algs
    }

    /// A fresh server nonce, when nonces are configured.
    pub fn nonce(&self, now: std::time::SystemTime) -> Option<String> {
        self.checker.nonces.as_ref().map(|n| n.issue(now))
    }

    /// Whether server nonces are configured.
    pub fn has_nonces(&self) -> bool {
        self.checker.nonces.is_some()
    }

    /// The replay cache.
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.checker.replay
    }

    /// Checks the DPoP proof of a request the application handles itself
    /// (its own login route, say) exactly as the gate and `/token` do,
    /// replay claim included: `url` is the route's public URL (never
    /// built from `Host`), `now` the process clock. The thumbprint binds
    /// the session it starts: pass it as
    /// [`Requested::dpop_jkt`](crate::issuer::Requested) to
    /// `Issuer::issue_with`.
    ///
    /// ```
    /// # use tollgate::dpop::{Dpop, DpopError};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dpop = Dpop::builder().build().unwrap();
    /// let headers = http::HeaderMap::new();
    /// let checked = dpop
    ///     .check_request(&headers, "POST", "https://app.example/login", std::time::SystemTime::now())
    ///     .await;
    /// assert_eq!(checked.unwrap_err(), DpopError::Missing);
    /// # });
    /// ```
    pub async fn check_request(
        &self,
        headers: &HeaderMap,
        method: &str,
        url: &str,
        now: std::time::SystemTime,
    ) -> Result<DpopKey, DpopError> {
        let url = Htu::parse(url).ok_or(DpopError::Url)?;
        let proof = proof_header(headers)?;
        let checked = self.checker.check(
            proof,
            &Expected {
                method,
                url: &url,
                path: "",
                access_token: None,
                nonce_required: false,
            },
            now,
        )?;
        if let Some(shared) = self.checker.claim(&checked, now)? {
            shared.await?;
        }
        Ok(DpopKey {
            thumbprint: checked.jkt,
        })
    }
}

/// The names of an asymmetric algorithm a proof may use (for EdDSA also
/// RFC 9864's `Ed25519`); `None` for the others (HMAC: a proof must be
/// signed by a key only the client holds).
fn asymmetric_names(a: Algorithm) -> Option<&'static [&'static str]> {
    (a.family() != jsonwebtoken::AlgorithmFamily::Hmac).then(|| crate::keys::algorithm_names(a))
}

/// Builds a [`Dpop`].
#[derive(Debug)]
#[must_use]
pub struct DpopBuilder {
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    future_skew: Duration,
    replay: Option<ReplayCache>,
    nonces: Option<Nonces>,
    shared: Option<Arc<dyn SharedReplay>>,
}

/// A DPoP setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopConfigError {
    /// No algorithm, or a symmetric one (a proof must be signed by a key
    /// only the client holds).
    #[error("DPoP needs asymmetric algorithms only, at least one")]
    Algorithms,
    /// A zero `iat` window.
    #[error("the iat window must be at least a second")]
    ZeroWindow,
}

impl DpopBuilder {
    /// The accepted proof algorithms. Default [`DEFAULT_ALGORITHMS`].
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            algorithms: algorithms.into_iter().collect(),
            ..self
        }
    }

    /// How old a proof's `iat` may be. Default [`DEFAULT_MAX_AGE`].
    pub fn max_age(self, max_age: Duration) -> Self {
        Self { max_age, ..self }
    }

    /// How far ahead of ours a client's clock may be. Default
    /// [`DEFAULT_FUTURE_SKEW`].
    pub fn future_skew(self, future_skew: Duration) -> Self {
        Self {
            future_skew,
            ..self
        }
    }

    /// The replay cache. Default a new [`ReplayCache::default`].
    pub fn replay_cache(self, replay: ReplayCache) -> Self {
        Self {
            replay: Some(replay),
            ..self
        }
    }

    /// Replay protection shared with the other instances (RFC 9449
    /// §11.1): each proof is recorded in `shared` too, so one accepted by
    /// any instance is refused by all. A request then waits for the
    /// store (the gate's only I/O, on DPoP requests only); when the store
    /// fails, DPoP requests are refused with 503 (fail closed).
    pub fn shared_replay(self, shared: impl SharedReplay) -> Self {
        Self {
            shared: Some(Arc::new(shared)),
            ..self
        }
    }

    /// Server nonces, for the routes and clients that require them.
    pub fn nonces(self, nonces: Nonces) -> Self {
        Self {
            nonces: Some(nonces),
            ..self
        }
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Dpop, DpopConfigError> {
        let mut algorithms = Vec::new();
        for a in self.algorithms {
            if asymmetric_names(a).is_none() {
                return Err(DpopConfigError::Algorithms);
            }
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
        if algorithms.is_empty() {
            return Err(DpopConfigError::Algorithms);
        }
        if self.max_age.as_secs() == 0 {
            return Err(DpopConfigError::ZeroWindow);
        }
        crate::keys::install_crypto_provider();
        let algs = algorithms
            .iter()
            .filter_map(|a| asymmetric_names(*a))
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Dpop {
            checker: Arc::new(proof::Checker {
                algorithms,
                max_age: self.max_age,
                future_skew: self.future_skew,
                replay: self.replay.unwrap_or_default(),
                nonces: self.nonces,
                // foldhash rather than SipHash: the key is the whole
                // encoded header, hashed on every DPoP request; an attacker
                // flooding it with headers only evicts (costs a re-parse).
                headers: moka::sync::Cache::builder()
                    .max_capacity(proof::HEADER_CACHE)
                    .build_with_hasher(foldhash::fast::RandomState::default()),
                shared: self.shared,
            }),
            algs: algs.into(),
        })
    }
}
