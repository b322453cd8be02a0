//! Checking one DPoP proof (RFC 9449 §4.3): a JWS whose header carries the
//! client's public key, signed by its private key, naming the request's
//! method and URL, fresh, and used once.

use std::{
    borrow::Cow,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{Jwk, ThumbprintHash},
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Htu, Nonces, ReplayCache,
    replay::{Claim, replay_key},
};
use crate::{b64url, keys::parse_algorithm, time::unix_millis};

/// Longest proof read: room for an RSA-4096 key in the header.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused. The reason names the failed check for logs
/// and metrics; the client sees a fixed sentence without the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// No `DPoP` header where one is needed.
    #[error("no DPoP proof")]
    Missing,
    /// More than one `DPoP` header.
    #[error("more than one DPoP proof")]
    Multiple,
    /// Not a JWS, too long, or undecodable header or claims.
    #[error("malformed proof")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("wrong typ")]
    Type,
    /// `alg` is not on the allow-list (never `none`, never HMAC).
    #[error("algorithm not allowed")]
    Algorithm,
    /// The `jwk` is missing, private, of the wrong type for `alg`, or
    /// malformed.
    #[error("bad jwk")]
    Key,
    /// The signature does not verify with the `jwk`.
    #[error("bad signature")]
    Signature,
    /// `htm` is not the request's method.
    #[error("htm mismatch")]
    Method,
    /// `htu` is not the URL the request was sent to.
    #[error("htu mismatch")]
    Url,
    /// `iat` is older than the window.
    #[error("stale iat")]
    Stale,
    /// `iat` is further in the future than the allowed skew.
    #[error("iat in the future")]
    Future,
    /// `jti` missing, empty or too long.
    #[error("bad jti")]
    Jti,
    /// `ath` missing, or not the hash of the presented access token.
    #[error("ath mismatch")]
    AccessTokenHash,
    /// The proof's key is not the one the token is bound to.
    #[error("key mismatch")]
    KeyMismatch,
    /// The proof was used before.
    #[error("replayed proof")]
    Replay,
    /// A nonce is required and missing, or not a current one: answered
    /// `use_dpop_nonce` with a fresh one.
    #[error("nonce required")]
    Nonce,
    /// The replay cache is full, or this key holds its quota: refused
    /// rather than risk a replay; 503, retry shortly.
    #[error("replay cache full")]
    ReplayCacheFull,
    /// The shared replay store did not answer: refused rather than risk a
    /// replay at another instance; 503, retry shortly.
    #[error("replay store unavailable")]
    ReplayStoreUnavailable,
}

impl DpopError {
    /// A label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Multiple => "multiple",
            Self::Malformed => "malformed",
            Self::Type => "typ",
            Self::Algorithm => "alg",
            Self::Key => "jwk",
            Self::Signature => "signature",
            Self::Method => "htm",
            Self::Url => "htu",
            Self::Stale => "stale_iat",
            Self::Future => "future_iat",
            Self::Jti => "jti",
            Self::AccessTokenHash => "ath",
            Self::KeyMismatch => "key_mismatch",
            Self::Replay => "replay",
            Self::Nonce => "nonce",
            Self::ReplayCacheFull => "replay_cache_full",
            Self::ReplayStoreUnavailable => "replay_store_unavailable",
        }
    }

    /// The `error_description` sent: names the check, never the proof.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "A DPoP proof is required",
            Self::Multiple => "The request carries more than one DPoP proof",
            Self::Malformed => "The DPoP proof is malformed",
            Self::Type => "The DPoP proof's typ must be dpop+jwt",
            Self::Algorithm => "The DPoP proof's algorithm is not supported",
            Self::Key => "The DPoP proof's jwk is not an acceptable public key",
            Self::Signature => "The DPoP proof's signature is invalid",
            Self::Method => "The DPoP proof's htm does not match the request method",
            Self::Url => "The DPoP proof's htu does not match the request URL",
            Self::Stale => "The DPoP proof's iat is too old",
            Self::Future => "The DPoP proof's iat is in the future",
            Self::Jti => "The DPoP proof's jti is missing or too long",
            Self::AccessTokenHash => "The DPoP proof's ath does not match the access token",
            Self::KeyMismatch => "The DPoP proof's key is not the key the token is bound to",
            Self::Replay => "The DPoP proof has been used before",
            Self::Nonce => "Authorization server requires nonce in DPoP proof",
            Self::ReplayCacheFull | Self::ReplayStoreUnavailable => {
                "DPoP proofs cannot be checked now, retry later"
            }
        }
    }

    /// The OAuth error code: `use_dpop_nonce` for a nonce, else
    /// `invalid_dpop_proof`.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Nonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// A proof that passed every check but the replay cache.
#[derive(Debug, Clone)]
pub(crate) struct CheckedProof {
    /// The key's RFC 7638 thumbprint.
    pub(crate) jkt: String,
    /// The replay key: a hash of the thumbprint and `jti`.
    replay_key: u128,
    /// When the proof stops being acceptable (Unix ms).
    expires_ms: u64,
}

/// What the request a proof comes with is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub(crate) method: &'a str,
    /// The public URL (the gate's base, or the token endpoint's)...
    pub(crate) url: &'a Htu,
    /// ...and the path under it (the request's, at the gate; empty at the
    /// token endpoint).
    pub(crate) path: &'a str,
    /// The access token presented with the proof (its hash is `ath`).
    pub(crate) access_token: Option<&'a str>,
    /// Whether this route or client requires a server nonce.
    pub(crate) nonce_required: bool,
}

/// The settings every check reads; see [`DpopBuilder`](super::DpopBuilder).
#[derive(Debug, Clone)]
pub(crate) struct Checker {
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) max_age: Duration,
    pub(crate) future_skew: Duration,
    pub(crate) replay: ReplayCache,
    pub(crate) nonces: Option<Nonces>,
    /// Headers seen before, by their encoded form: a client's library
    /// writes the same header on every proof, so its key is parsed,
    /// checked and thumbprinted once. Only accepted headers are kept, and
    /// the same bytes always parse the same way, so evicting one only
    /// costs a re-parse.
    pub(crate) headers: moka::sync::Cache<Box<str>, Arc<ProofHeader>, foldhash::fast::RandomState>,
    /// Replay protection shared with other instances, if any.
    pub(crate) shared: Option<Arc<dyn SharedReplay>>,
}

/// The shared store's verdict on a proof, still to come.
pub(crate) type SharedClaim = Pin<Box<dyn Future<Output = Result<(), DpopError>> + Send>>;

/// Replay protection shared by several instances (RFC 9449 §11.1): a store
/// where each accepted proof is recorded once. tollgate's store implements
/// it (`tollgate::store::dpop_replay::StoreReplay`, a table with a unique
/// key that the janitor keeps short).
pub trait SharedReplay: Send + Sync + 'static {
    /// Records the proof `key` (a 128-bit hash of the key thumbprint and
    /// `jti`) until `expires_at`: `Ok(true)` if no instance had it,
    /// `Ok(false)` if one had.
    fn claim(
        &self,
        key: u128,
        expires_at: SystemTime,
    ) -> Pin<Box<dyn Future<Output = Result<bool, BoxError>> + Send + '_>>;
}

pub use crate::error::BoxError;

impl std::fmt::Debug for dyn SharedReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedReplay")
    }
}

/// Bound on [`Checker::headers`]: one entry per active client key.
pub(crate) const HEADER_CACHE: u64 = 10_000;

/// A proof header that passed its checks: the algorithm, the key, and the
/// key's thumbprint.
pub(crate) struct ProofHeader {
    alg: Algorithm,
    key: DecodingKey,
    jkt: String,
}

impl std::fmt::Debug for ProofHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofHeader")
            .field("alg", &self.alg)
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    /// Refused whenever present, `null` too (RFC 7515 §4.1.11).
    #[serde(default, deserialize_with = "crate::keys::present")]
    crit: bool,
}

/// The claims, borrowed from the decoded payload where they need no
/// unescaping.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow)]
    htm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    htu: Option<Cow<'a, str>>,
    iat: Option<serde_json::Number>,
    #[serde(borrow)]
    ath: Option<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Option<Cow<'a, str>>,
}

impl Checker {
    /// Every check of the proof except replay, in an order that costs a
    /// forger the least: structure, header, key, signature, then claims.
    pub(crate) fn check(
        &self,
        proof: &str,
        expected: &Expected<'_>,
        now: SystemTime,
    ) -> Result<CheckedProof, DpopError> {
        if proof.len() > MAX_PROOF_LEN {
            return Err(DpopError::Malformed);
        }
        let mut parts = proof.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::Malformed);
        };
        let header = self.header(header)?;
        let message = &proof[..header_and_payload_len(proof)];
        match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &header.key, header.alg) {
            Ok(true) => {}
            _ => return Err(DpopError::Signature),
        }
        let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
        let payload = b64url::decode(payload, &mut buf).ok_or(DpopError::Malformed)?;
        let claims: Claims<'_> =
            serde_json::from_slice(&payload).map_err(|_| DpopError::Malformed)?;
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
            .ok_or(DpopError::Jti)?;
        if claims.htm.as_deref() != Some(expected.method) {
            return Err(DpopError::Method);
        }
        if !claims
            .htu
            .is_some_and(|u| expected.url.matches_under(expected.path, &u))
        {
            return Err(DpopError::Url);
        }
        let iat = claims
            .iat
            .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)))
            .ok_or(DpopError::Malformed)?;
        let now_s = crate::time::unix_secs(now);
        if iat > now_s + self.future_skew.as_secs() {
            return Err(DpopError::Future);
        }
        if iat + self.max_age.as_secs() < now_s {
            return Err(DpopError::Stale);
        }
        if let Some(token) = expected.access_token {
            let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            let mut got = [std::mem::MaybeUninit::uninit(); 32];
            let got = claims
                .ath
                .as_deref()
                .and_then(|ath| b64url::decode_into(ath, &mut got));
            if got != Some(want.as_ref()) {
                return Err(DpopError::AccessTokenHash);
            }
        }
        if expected.nonce_required {
            let nonces = self.nonces.as_ref().ok_or(DpopError::Nonce)?;
            if !claims.nonce.is_some_and(|n| nonces.check(&n, now)) {
                return Err(DpopError::Nonce);
            }
        }
        Ok(CheckedProof {
            jkt: header.jkt.clone(),
            replay_key: replay_key(&header.jkt, &jti),
            expires_ms: (iat + self.max_age.as_secs() + 1).saturating_mul(1000),
        })
    }

    /// The header's algorithm, key and thumbprint: from the cache, or
    /// parsed and checked (then cached).
    fn header(&self, segment: &str) -> Result<Arc<ProofHeader>, DpopError> {
        if let Some(known) = self.headers.get(segment) {
            return Ok(known);
        }
        let header: Header = decode_json(segment)?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(DpopError::Type);
        }
        if header.crit {
            return Err(DpopError::Malformed);
        }
        let alg = parse_algorithm(&header.alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(DpopError::Algorithm)?;
        let jwk = header.jwk.ok_or(DpopError::Key)?;
        let (key, jkt) = public_key(alg, jwk)?;
        let parsed = Arc::new(ProofHeader { alg, key, jkt });
        self.headers.insert(segment.into(), Arc::clone(&parsed));
        Ok(parsed)
    }

    /// Claims the proof in the replay cache: the last step, taken only
    /// when everything else (the access token included) has passed, so a
    /// forged proof cannot burn a victim's `jti`.
    ///
    /// With a [`SharedReplay`] the in-memory claim comes first (a replay
    /// at this instance is refused without I/O) and the returned future
    /// then claims it in the shared store: the request may go on only when
    /// that future says so.
    pub(crate) fn claim(
        &self,
        proof: &CheckedProof,
        now: SystemTime,
    ) -> Result<Option<SharedClaim>, DpopError> {
        match self.replay.claim(
            &proof.jkt,
            proof.replay_key,
            proof.expires_ms,
            unix_millis(now),
        ) {
            Claim::Fresh => {}
            Claim::Replayed => return Err(DpopError::Replay),
            Claim::Full | Claim::KeyQuota => return Err(DpopError::ReplayCacheFull),
        }
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let shared = Arc::clone(shared);
        let (key, expires) = (
            proof.replay_key,
            crate::time::from_unix_millis(proof.expires_ms),
        );
        Ok(Some(Box::pin(async move {
            match shared.claim(key, expires).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(DpopError::Replay),
                Err(e) => {
                    tracing::warn!(error = %e, "the shared DPoP replay store failed");
                    Err(DpopError::ReplayStoreUnavailable)
                }
            }
        })))
    }
}

fn header_and_payload_len(proof: &str) -> usize {
    proof.rfind('.').unwrap_or(proof.len())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, DpopError> {
    let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
    let bytes = b64url::decode(part, &mut buf).ok_or(DpopError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed)
}

/// The verifying key and RFC 7638 thumbprint of a proof's `jwk`, which
/// must be a public key of the type `alg` needs.
fn public_key(alg: Algorithm, jwk: Map<String, Value>) -> Result<(DecodingKey, String), DpopError> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::Key);
    }
    // A key's own `alg`, if it names one, must be the proof's (RFC 9864's
    // `Ed25519` included); then it is dropped: jsonwebtoken knows no
    // `Ed25519`, and the thumbprint (RFC 7638) never covers `alg`.
    let mut jwk = jwk;
    if let Some(own) = jwk.remove("alg")
        && own.as_str().and_then(parse_algorithm) != Some(alg)
    {
        return Err(DpopError::Key);
    }
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    // Decoded length of a strict base64url member.
    let bytes = |name: &str| -> Option<usize> {
        let mut buf = [std::mem::MaybeUninit::uninit(); 64];
        text(name)
            .and_then(|v| b64url::decode(v, &mut buf))
            .map(|b| b.len())
    };
    let ok = match alg {
        Algorithm::ES256 => {
            text("kty") == Some("EC")
                && text("crv") == Some("P-256")
                && bytes("x") == Some(32)
                && bytes("y") == Some(32)
        }
        Algorithm::ES384 => {
            text("kty") == Some("EC")
                && text("crv") == Some("P-384")
                && bytes("x") == Some(48)
                && bytes("y") == Some(48)
        }
        Algorithm::EdDSA => {
            text("kty") == Some("OKP") && text("crv") == Some("Ed25519") && bytes("x") == Some(32)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            // 2048 to 8192 bits.
            text("kty") == Some("RSA")
                && bytes("n").is_some_and(|n| (256..=1024).contains(&n))
                && bytes("e").is_some_and(|e| (1..=8).contains(&e))
        }
        _ => false,
    };
    if !ok {
        return Err(DpopError::Key);
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk)).map_err(|_| DpopError::Key)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::Key)?;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| DpopError::Key)?;
    Ok((key, jkt))
}
