//! Signing and verification keys, key rotation, and JWKS export.
//!
//! A [`KeySet`] is an immutable snapshot: at most one [`SigningKey`] (the one
//! new tokens are signed with) and any number of [`VerifyingKey`]s, each
//! with its own `kid` and exactly one algorithm. A token is verified only by
//! the key its `kid` names and only with that key's algorithm, so neither
//! `alg: none` nor HMAC-with-a-public-key can ever be accepted.
//!
//! [`Keys`] is the shared, swappable handle: readers load the current
//! snapshot without a lock, [`Keys::rotate`] swaps in a new one.
//!
//! ```
//! use tollgate::keys::{Algorithm, KeySet, Keys, SigningKey};
//!
//! let old = SigningKey::hmac("2026-10", Algorithm::HS256, &[7; 32]).unwrap();
//! let new = SigningKey::hmac("2026-11", Algorithm::HS256, &[8; 32]).unwrap();
//! let keys = Keys::new(KeySet::builder().signing_key(old.clone()).build().unwrap());
//!
//! // Rotate: sign with the new key, keep verifying tokens signed with the old one.
//! keys.rotate(
//!     KeySet::builder()
//!         .signing_key(new)
//!         .verifying_key(old.verifying_key())
//!         .build()
//!         .unwrap(),
//! );
//! let current = keys.current();
//! assert_eq!(current.signing_key().unwrap().kid(), "2026-11");
//! assert!(current.find(Some("2026-10")).is_some());
//! // HMAC secrets are never published.
//! assert!(keys.jwks().keys.is_empty());
//! ```

use std::{fmt, sync::Arc};

use arc_swap::{ArcSwap, Guard};
use jsonwebtoken::{
    DecodingKey, EncodingKey, Header,
    jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, KeyOperations, PublicKeyUse},
};
use serde::{Deserialize, Serialize};

/// JWKs (RFC 7517) as jsonwebtoken models them: what
/// [`VerifyingKey::from_jwk`] takes, [`KeySet::jwks`] gives, and
/// [`jwk_from_json`] parses.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use jsonwebtoken::{Algorithm, AlgorithmFamily};

/// The algorithm a JOSE `alg` value names: RFC 7518's names, and RFC
/// 9864's fully-specified `Ed25519`, which deprecates the polymorphic
/// `EdDSA` for Ed25519 keys (the only EdDSA keys tollgate takes, so both
/// name one algorithm). `none` and unknown names are `None`.
///
/// ```
/// use tollgate::keys::{Algorithm, parse_algorithm};
///
/// assert_eq!(parse_algorithm("Ed25519"), Some(Algorithm::EdDSA));
/// assert_eq!(parse_algorithm("EdDSA"), Some(Algorithm::EdDSA));
/// assert_eq!(parse_algorithm("ES256"), Some(Algorithm::ES256));
/// assert_eq!(parse_algorithm("none"), None);
/// ```
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "Ed25519" => Some(Algorithm::EdDSA),
        other => other.parse().ok(),
    }
}

/// The JOSE names an algorithm goes by, for metadata lists
/// (`*_alg_values_supported`): `EdDSA` and RFC 9864's `Ed25519` for EdDSA,
/// the one RFC 7518 name for every other. Tokens tollgate signs carry the
/// first (`EdDSA`, what every verifier understands today).
pub fn algorithm_names(alg: Algorithm) -> &'static [&'static str] {
    match alg {
        Algorithm::HS256 => &["HS256"],
        Algorithm::HS384 => &["HS384"],
        Algorithm::HS512 => &["HS512"],
        Algorithm::ES256 => &["ES256"],
        Algorithm::ES384 => &["ES384"],
        Algorithm::RS256 => &["RS256"],
        Algorithm::RS384 => &["RS384"],
        Algorithm::RS512 => &["RS512"],
        Algorithm::PS256 => &["PS256"],
        Algorithm::PS384 => &["PS384"],
        Algorithm::PS512 => &["PS512"],
        Algorithm::EdDSA => &["EdDSA", "Ed25519"],
        // jsonwebtoken's list is non-exhaustive: a future name is listed
        // by none until tollgate knows it.
        _ => &[],
    }
}

/// A JWK as JSON, with an RFC 9864 `alg` of `Ed25519` read as `EdDSA`
/// (jsonwebtoken knows only the latter and reads the former as an unknown
/// algorithm), so a key published either way is the same key for
/// [`VerifyingKey::from_jwk`].
pub fn jwk_from_json(json: &str) -> Result<Jwk, KeyError> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|_| KeyError::IncompleteJwk)?;
    if let Some(alg) = value.get_mut("alg")
        && alg.as_str() == Some("Ed25519")
    {
        *alg = "EdDSA".into();
    }
    serde_json::from_value(value).map_err(|_| KeyError::IncompleteJwk)
}

/// For a JOSE header member that must be refused whenever it is there
/// (`crit`): `true` for any value, `null` included, so that serde's
/// `Option` cannot read `null` as absent.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The JOSE `typ` of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm does not fit the kind of key given.
    #[error("algorithm {alg:?} cannot be used with {kind} key material")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The kind of key material given.
        kind: &'static str,
    },
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    #[error("an {alg:?} secret must be at least {min} bytes")]
    WeakSecret {
        /// The HMAC algorithm.
        alg: Algorithm,
        /// The minimum length in bytes.
        min: usize,
    },
    /// The key id is empty.
    #[error("a key id must not be empty")]
    EmptyKid,
    /// Two keys of one set share a key id.
    #[error("duplicate key id `{0}`")]
    DuplicateKid(String),
    /// The key material could not be parsed (the parser's message is kept
    /// for the operator; it never reaches a client).
    #[error("invalid key material")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// A JWK without `kid`, or whose algorithm neither its `alg` names nor
    /// its key type implies, or JSON that is not a JWK.
    #[error("a JWK needs a `kid` and an algorithm (its `alg`, or one its key implies)")]
    IncompleteJwk,
    /// A JWK set with no key this gate can verify with: none for
    /// signatures, of an allowed algorithm, with a `kid`.
    #[error("the JWK set has no usable signature key")]
    NoUsableKey,
    /// Signing a token failed.
    #[error("signing failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Installs jsonwebtoken's aws-lc-rs crypto provider for this process unless
/// one is installed already. Every key constructor that jsonwebtoken's
/// provider will later serve calls it, so signing and verifying need not. With the provider chosen explicitly, a
/// dependency graph that also enables jsonwebtoken's `rust_crypto` feature
/// cannot turn verification into a run-time panic.
pub(crate) fn install_crypto_provider() {
    // An error only means a provider is installed already, which is fine.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// The key that signs new access tokens.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    /// The public half (or the same secret), derived once when the key is
    /// made: deriving it proves the key fits its algorithm.
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key (`HS256`, `HS384`, `HS512`). The secret must be at least as
    /// long as the hash output (32, 48 or 64 bytes).
    pub fn hmac(kid: impl Into<String>, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        check_hmac(alg, secret)?;
        install_crypto_provider();
        let kid = non_empty(kid.into())?;
        Ok(Self {
            verifying: VerifyingKey::hmac(kid.clone(), alg, secret)?,
            kid,
            alg,
            key: EncodingKey::from_secret(secret),
        })
    }

    /// A private key in PEM (PKCS#8, or PKCS#1 for RSA): RSA for `RS*`/`PS*`,
    /// P-256/P-384 for `ES256`/`ES384`, Ed25519 for `EdDSA`.
    pub fn from_pem(kid: impl Into<String>, alg: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => return Err(mismatch(alg, "PEM")),
        }
        .map_err(KeyError::Invalid)?;
        let kid = non_empty(kid.into())?;
        // Deriving the public half proves the key fits the algorithm (curve
        // and size), at build time rather than at the first request.
        let jwk = Jwk::from_encoding_key(&key, alg).map_err(KeyError::Invalid)?;
        let public = DecodingKey::from_jwk(&jwk).map_err(KeyError::Invalid)?;
        Ok(Self {
            verifying: VerifyingKey::public(kid.clone(), alg, public, jwk),
            kid,
            alg,
            key,
        })
    }

    /// The key id put in the `kid` header of every token signed.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The matching verification key (the public half, or the same secret
    /// for HMAC).
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying.clone()
    }

    /// Signs `claims` as a JWT with `typ: at+jwt` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        jsonwebtoken::encode(&token_header(&self.kid, self.alg), claims, &self.key)
            .map_err(KeyError::Signing)
    }
}

/// The JOSE header of every token tollgate signs: `alg`, `kid` and `typ`.
fn token_header(kid: &str, alg: Algorithm) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(kid.to_owned());
    header
}

/// [`token_header`] as it appears in a signed token (base64url of its JSON,
/// as `jsonwebtoken::encode` writes it).
fn encoded_token_header(kid: &str, alg: Algorithm) -> String {
    let json = serde_json::to_vec(&token_header(kid, alg)).expect("a header always serializes");
    crate::b64url::encode(json)
}

/// A key that verifies access tokens, with its `kid` and its one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    key: DecodingKey,
    /// For HMAC: the key schedule, computed once. jsonwebtoken rebuilds it
    /// (and a boxed verifier) on every verification, which costs about as
    /// much as the MAC itself on the gate's hot path.
    mac: Option<aws_lc_rs::hmac::Key>,
    /// The public JWK; `None` for HMAC secrets, which are never published.
    jwk: Option<Jwk>,
    /// The encoded header tollgate signs with under this key: a token that
    /// carries exactly these bytes needs no header decoding or parsing.
    issued_header: String,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC verification key (the shared secret).
    pub fn hmac(kid: impl Into<String>, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        let mac_alg = check_hmac(alg, secret)?;
        let kid = non_empty(kid.into())?;
        Ok(Self {
            issued_header: encoded_token_header(&kid, alg),
            kid,
            alg,
            key: DecodingKey::from_secret(secret),
            mac: Some(aws_lc_rs::hmac::Key::new(mac_alg, secret)),
            jwk: None,
        })
    }

    /// A public key in PEM (SubjectPublicKeyInfo, or PKCS#1 for RSA).
    pub fn from_pem(kid: impl Into<String>, alg: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        install_crypto_provider();
        let key = match alg.family() {
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => return Err(mismatch(alg, "PEM")),
        }
        .map_err(KeyError::Invalid)?;
        let jwk = Jwk::from_decoding_key(&key, Some(alg)).map_err(KeyError::Invalid)?;
        check_curve(alg, &jwk)?;
        Ok(Self::public(non_empty(kid.into())?, alg, key, jwk))
    }

    /// A public key from a JWK with a `kid`. Its algorithm is its `alg`,
    /// or without one (Entra ID publishes none) the one its key implies:
    /// `OKP` Ed25519 → EdDSA, `EC` P-256 → ES256, P-384 → ES384, `RSA` →
    /// RS256 ([`from_jwk_with_rsa`](Self::from_jwk_with_rsa) picks another).
    /// Either way one key verifies with one algorithm.
    ///
    /// ```
    /// use tollgate::keys::{Algorithm, VerifyingKey, jwk_from_json};
    ///
    /// let jwk = jwk_from_json(r#"{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
    ///     "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    ///     "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#).unwrap();
    /// let key = VerifyingKey::from_jwk(&jwk).unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::ES256);
    /// ```
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        Self::from_jwk_with_rsa(jwk, Algorithm::RS256)
    }

    /// [`from_jwk`](Self::from_jwk), with `rsa` (an `RS*` or `PS*`
    /// algorithm) the algorithm of an RSA key without `alg`.
    pub fn from_jwk_with_rsa(jwk: &Jwk, rsa: Algorithm) -> Result<Self, KeyError> {
        install_crypto_provider();
        let kid = jwk.common.key_id.clone().ok_or(KeyError::IncompleteJwk)?;
        let alg = match jwk.common.key_algorithm {
            Some(named) => Algorithm::try_from(named).map_err(|_| KeyError::IncompleteJwk)?,
            None => implied_algorithm(jwk, rsa).ok_or(KeyError::IncompleteJwk)?,
        };
        if alg.family() == AlgorithmFamily::Hmac
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            // A JWK set is public material; a secret in it is a mistake.
            return Err(mismatch(alg, "JWK"));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(KeyError::Invalid)?;
        if key.family() != alg.family() {
            return Err(mismatch(alg, "JWK"));
        }
        check_curve(alg, jwk)?;
        Ok(Self::public(non_empty(kid)?, alg, key, jwk.clone()))
    }

    fn public(kid: String, alg: Algorithm, key: DecodingKey, mut jwk: Jwk) -> Self {
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            issued_header: encoded_token_header(&kid, alg),
            kid,
            alg,
            key,
            mac: None,
            jwk: Some(jwk),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (`None` for an HMAC secret).
    pub fn jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }

    /// Whether `signature` (base64url, unpadded) is this key's signature of
    /// `message` under its algorithm. MAC comparison is constant-time.
    pub(crate) fn verify_signature(&self, message: &[u8], signature: &str) -> bool {
        match &self.mac {
            Some(mac) => {
                // The longest MAC is HS512's 64 bytes: decode on the stack.
                let mut buf = [std::mem::MaybeUninit::uninit(); 64];
                crate::b64url::decode_into(signature, &mut buf)
                    .is_some_and(|tag| aws_lc_rs::hmac::verify(mac, message, tag).is_ok())
            }
            None => jsonwebtoken::crypto::verify(signature, message, &self.key, self.alg)
                .unwrap_or(false),
        }
    }
}

/// An immutable snapshot of keys: one optional signing key, several
/// verification keys. Build it with [`KeySet::builder`].
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    signing: Option<SigningKey>,
    verifying: Vec<VerifyingKey>,
    /// Which build this is (0: the empty default): what the gate's cache
    /// of verified tokens keys its entries by, so a new set empties it.
    generation: u64,
}

/// The next [`KeySet`] generation.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl KeySet {
    /// Starts a key set.
    pub fn builder() -> KeySetBuilder {
        KeySetBuilder::default()
    }

    /// The key new tokens are signed with, if this process signs.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    /// All verification keys.
    pub fn verifying_keys(&self) -> &[VerifyingKey] {
        &self.verifying
    }

    /// Which build of a key set this is: every [`KeySetBuilder::build`]
    /// and [`KeySet::from_jwks`] makes a new one (clones share it).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The key for a token's `kid`. A token without `kid` is matched only
    /// when the set holds exactly one key, so it can never pick among keys.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.verifying.iter().find(|k| k.kid == kid),
            None => match self.verifying.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// The key whose tokens, as tollgate signs them, carry exactly the
    /// encoded header `header_b64` (`typ: at+jwt`, this key's `alg` and
    /// `kid`, nothing else). The gate's fast path: most tokens it sees were
    /// signed by tollgate, and their header need not be decoded and parsed.
    pub(crate) fn find_issued_header(&self, header_b64: &str) -> Option<&VerifyingKey> {
        self.verifying
            .iter()
            .find(|k| k.issued_header == header_b64)
    }

    /// The verification keys of a JWK set as an identity provider
    /// publishes it (RFC 7517 JSON), under the algorithm allow-list
    /// `allowed`. Keys that cannot verify this issuer's tokens are left
    /// out, one by one, so that one odd key never takes the set down:
    /// `use` other than `sig`, `key_ops` without `verify`, no `kid`, an
    /// algorithm that is not allowed (for an RSA key without `alg`: the
    /// first RSA algorithm of `allowed`), a key type or curve tollgate does
    /// not know, a secret (`oct`), a `kid` already taken. An error only
    /// when nothing usable is left, or the JSON is no JWK set.
    ///
    /// ```
    /// use tollgate::keys::{Algorithm, KeySet};
    ///
    /// let jwks = r#"{"keys":[
    ///   {"kty":"RSA","use":"enc","kid":"enc-1","n":"sXch","e":"AQAB"},
    ///   {"kty":"EC","crv":"P-256","kid":"sig-1",
    ///    "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    ///    "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    ///   {"kty":"AKP","alg":"ML-DSA-44","kid":"pq-1","pub":"AAAA"}]}"#;
    /// let set = KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::ES256, Algorithm::RS256]).unwrap();
    /// let kids: Vec<_> = set.verifying_keys().iter().map(|k| k.kid()).collect();
    /// assert_eq!(kids, ["sig-1"]);
    /// ```
    pub fn from_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<Self, KeyError> {
        #[derive(Deserialize)]
        struct Keys {
            keys: Vec<serde_json::Value>,
        }
        let set: Keys = serde_json::from_slice(json).map_err(|_| KeyError::IncompleteJwk)?;
        let rsa = allowed
            .iter()
            .copied()
            .find(|a| a.family() == AlgorithmFamily::Rsa)
            .unwrap_or(Algorithm::RS256);
        let mut verifying: Vec<VerifyingKey> = Vec::new();
        for value in set.keys {
            match usable_jwk(&value, rsa, allowed) {
                Ok(key) if verifying.iter().any(|k| k.kid == key.kid) => {
                    tracing::debug!(kid = key.kid, "JWK left out: its kid is taken");
                }
                Ok(key) => verifying.push(key),
                Err(why) => {
                    let kid = value.get("kid").and_then(|k| k.as_str());
                    tracing::debug!(kid, why, "JWK left out");
                }
            }
        }
        if verifying.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        Ok(Self {
            signing: None,
            verifying,
            generation: next_generation(),
        })
    }

    /// The public keys as a JWK set (RFC 7517). HMAC secrets are left out.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .verifying
                .iter()
                .filter_map(|k| k.jwk.clone())
                .collect(),
        }
    }
}

/// Builds a [`KeySet`]; `build` rejects duplicate key ids.
#[derive(Debug, Default)]
#[must_use]
pub struct KeySetBuilder {
    signing: Option<SigningKey>,
    verifying: Vec<VerifyingKey>,
}

impl KeySetBuilder {
    /// The signing key; its verification key joins the set too.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.verifying.push(key.verifying_key());
        self.signing = Some(key);
        self
    }

    /// Another verification key (e.g. the previous signing key during a
    /// rotation, or another issuer's public key).
    pub fn verifying_key(mut self, key: VerifyingKey) -> Self {
        self.verifying.push(key);
        self
    }

    /// Checks and freezes the set.
    pub fn build(self) -> Result<KeySet, KeyError> {
        for (i, k) in self.verifying.iter().enumerate() {
            if self.verifying[..i].iter().any(|o| o.kid == k.kid) {
                return Err(KeyError::DuplicateKid(k.kid.clone()));
            }
        }
        Ok(KeySet {
            signing: self.signing,
            verifying: self.verifying,
            generation: next_generation(),
        })
    }
}

/// The shared handle to the current [`KeySet`]. Cloning is cheap; every
/// clone sees a rotation at once. Reading takes no lock (`arc-swap`).
#[derive(Clone)]
pub struct Keys {
    current: Arc<ArcSwap<KeySet>>,
    /// Told when a token names a `kid` the set lacks (remote keys: a
    /// rate-limited refetch); `None` for keys handed over.
    on_unknown_kid: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Keys").field(&**self.current.load()).finish()
    }
}

impl From<KeySet> for Keys {
    fn from(set: KeySet) -> Self {
        Self::new(set)
    }
}

/// A set of one key that signs and verifies: the common case.
impl From<SigningKey> for Keys {
    fn from(key: SigningKey) -> Self {
        Self::new(KeySet {
            verifying: vec![key.verifying_key()],
            signing: Some(key),
            generation: next_generation(),
        })
    }
}

impl Keys {
    /// A handle holding `set`.
    pub fn new(set: KeySet) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(set)),
            on_unknown_kid: None,
        }
    }

    /// A handle whose holders call `hook` on a token with an unknown
    /// `kid` (it must be cheap and never block: it runs on the request).
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    pub(crate) fn with_unknown_kid_hook(set: KeySet, hook: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            on_unknown_kid: Some(hook),
            ..Self::new(set)
        }
    }

    /// A token named a `kid` the set lacks.
    pub(crate) fn unknown_kid(&self) {
        if let Some(hook) = &self.on_unknown_kid {
            hook();
        }
    }

    /// Replaces the key set for every holder of this handle. Requests in
    /// flight finish with the snapshot they loaded.
    pub fn rotate(&self, set: KeySet) {
        self.current.store(Arc::new(set));
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// A cheap, lock-free view of the current snapshot for one request.
    pub(crate) fn load(&self) -> Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// The current public keys as a JWK set.
    pub fn jwks(&self) -> JwkSet {
        self.load().jwks()
    }
}

fn non_empty(kid: String) -> Result<String, KeyError> {
    if kid.is_empty() {
        Err(KeyError::EmptyKid)
    } else {
        Ok(kid)
    }
}

fn mismatch(alg: Algorithm, kind: &'static str) -> KeyError {
    KeyError::AlgorithmMismatch { alg, kind }
}

fn check_hmac(alg: Algorithm, secret: &[u8]) -> Result<aws_lc_rs::hmac::Algorithm, KeyError> {
    use aws_lc_rs::hmac::{HMAC_SHA256, HMAC_SHA384, HMAC_SHA512};
    let (mac_alg, min) = match alg {
        Algorithm::HS256 => (HMAC_SHA256, 32),
        Algorithm::HS384 => (HMAC_SHA384, 48),
        Algorithm::HS512 => (HMAC_SHA512, 64),
        _ => return Err(mismatch(alg, "HMAC secret")),
    };
    if secret.len() < min {
        return Err(KeyError::WeakSecret { alg, min });
    }
    Ok(mac_alg)
}

/// The algorithm a JWK without `alg` is for, from its key: the curve of an
/// `EC` or `OKP` key, or `rsa` for an RSA key. `None` for anything else.
fn implied_algorithm(jwk: &Jwk, rsa: Algorithm) -> Option<Algorithm> {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) => {
            (p.curve == EllipticCurve::Ed25519).then_some(Algorithm::EdDSA)
        }
        AlgorithmParameters::RSA(_) => (rsa.family() == AlgorithmFamily::Rsa).then_some(rsa),
        // Secrets, and key types jsonwebtoken may add.
        _ => None,
    }
}

/// One member of a published JWK set as a verification key, or why not.
fn usable_jwk(
    value: &serde_json::Value,
    rsa: Algorithm,
    allowed: &[Algorithm],
) -> Result<VerifyingKey, &'static str> {
    let jwk = jwk_from_json(&value.to_string()).map_err(|_| "not a JWK tollgate knows")?;
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err("not for signatures (use)");
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err("not for verification (key_ops)");
    }
    if common.key_algorithm == Some(KeyAlgorithm::UNKNOWN_ALGORITHM) {
        return Err("an unknown alg");
    }
    let key = VerifyingKey::from_jwk_with_rsa(&jwk, rsa).map_err(|e| match e {
        KeyError::IncompleteJwk => "no kid, or no algorithm",
        _ => "key material that does not fit its algorithm",
    })?;
    if !allowed.contains(&key.alg) {
        return Err("an algorithm outside the allow-list");
    }
    Ok(key)
}

fn check_curve(alg: Algorithm, jwk: &Jwk) -> Result<(), KeyError> {
    let curve = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => Some(&p.curve),
        AlgorithmParameters::OctetKeyPair(p) => Some(&p.curve),
        _ => None,
    };
    let ok = match alg {
        Algorithm::ES256 => curve == Some(&EllipticCurve::P256),
        Algorithm::ES384 => curve == Some(&EllipticCurve::P384),
        Algorithm::EdDSA => curve == Some(&EllipticCurve::Ed25519),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(mismatch(alg, "curve"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ES256: &[u8] = include_bytes!("../tests/keys/es256.pem");
    const ED25519: &[u8] = include_bytes!("../tests/keys/ed25519.pem");
    const RSA: &[u8] = include_bytes!("../tests/keys/rsa.pem");
    const RSA_PUB: &[u8] = include_bytes!("../tests/keys/rsa.pub.pem");

    #[test]
    fn a_jwk_naming_ed25519_is_the_same_eddsa_key() {
        let ours = SigningKey::from_pem("ed", Algorithm::EdDSA, ED25519).unwrap();
        let mut published = serde_json::to_value(ours.verifying_key().jwk().unwrap()).unwrap();
        published["alg"] = "Ed25519".into();
        let key = VerifyingKey::from_jwk(&jwk_from_json(&published.to_string()).unwrap()).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        // Parsed by jsonwebtoken alone, its `alg` is unknown: no key.
        let unknown: Jwk = serde_json::from_value(published).unwrap();
        assert!(VerifyingKey::from_jwk(&unknown).is_err());
        // An RSA key that claims Ed25519 is a mismatch, not an EdDSA key.
        let rsa = VerifyingKey::from_pem("r", Algorithm::RS256, RSA_PUB).unwrap();
        let mut lying = serde_json::to_value(rsa.jwk().unwrap()).unwrap();
        lying["alg"] = "Ed25519".into();
        assert!(VerifyingKey::from_jwk(&jwk_from_json(&lying.to_string()).unwrap()).is_err());
        assert!(jwk_from_json("not json").is_err());
    }

    /// The published JWK of `key` as JSON, with `edit` applied.
    fn published(
        key: &VerifyingKey,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> serde_json::Value {
        let mut v = serde_json::to_value(key.jwk().unwrap()).unwrap();
        edit(&mut v);
        v
    }

    fn public_keys() -> [VerifyingKey; 3] {
        [
            SigningKey::from_pem("ec", Algorithm::ES256, ES256)
                .unwrap()
                .verifying_key(),
            SigningKey::from_pem("ed", Algorithm::EdDSA, ED25519)
                .unwrap()
                .verifying_key(),
            VerifyingKey::from_pem("rsa", Algorithm::RS256, RSA_PUB).unwrap(),
        ]
    }

    #[test]
    fn a_jwk_without_alg_takes_the_algorithm_its_key_implies() {
        let no_alg = |k: &VerifyingKey| {
            let v = published(k, |v| {
                v.as_object_mut().unwrap().remove("alg");
            });
            jwk_from_json(&v.to_string()).unwrap()
        };
        let [ec, ed, rsa] = public_keys();
        assert_eq!(
            VerifyingKey::from_jwk(&no_alg(&ec)).unwrap().algorithm(),
            Algorithm::ES256
        );
        assert_eq!(
            VerifyingKey::from_jwk(&no_alg(&ed)).unwrap().algorithm(),
            Algorithm::EdDSA
        );
        assert_eq!(
            VerifyingKey::from_jwk(&no_alg(&rsa)).unwrap().algorithm(),
            Algorithm::RS256
        );
        assert_eq!(
            VerifyingKey::from_jwk_with_rsa(&no_alg(&rsa), Algorithm::PS256)
                .unwrap()
                .algorithm(),
            Algorithm::PS256
        );
        // `rsa` must be an RSA algorithm; an EC key is not made RSA by it.
        assert!(VerifyingKey::from_jwk_with_rsa(&no_alg(&rsa), Algorithm::ES256).is_err());
        assert_eq!(
            VerifyingKey::from_jwk_with_rsa(&no_alg(&ec), Algorithm::PS256)
                .unwrap()
                .algorithm(),
            Algorithm::ES256
        );
        // A stated `alg` still has to fit the key.
        let lying = published(&ec, |v| v["alg"] = "ES384".into());
        assert!(VerifyingKey::from_jwk(&jwk_from_json(&lying.to_string()).unwrap()).is_err());
        // No kid: no key.
        let anonymous = published(&ec, |v| {
            v.as_object_mut().unwrap().remove("kid");
        });
        assert!(matches!(
            VerifyingKey::from_jwk(&jwk_from_json(&anonymous.to_string()).unwrap()),
            Err(KeyError::IncompleteJwk)
        ));
    }

    #[test]
    fn a_published_set_keeps_only_the_keys_that_verify_allowed_algorithms() {
        let [ec, ed, rsa] = public_keys();
        let keep_ec = published(&ec, |v| {
            v.as_object_mut().unwrap().remove("alg");
            v["x5t"] = "dGh1bWJwcmludA".into();
        });
        let keep_rsa = published(&rsa, |v| {
            v.as_object_mut().unwrap().remove("alg");
        });
        let jwks = serde_json::json!({"keys": [
            keep_ec,
            keep_rsa,
            published(&rsa, |v| { v["kid"] = "enc".into(); v["use"] = "enc".into(); v["alg"] = "RSA-OAEP".into(); }),
            published(&rsa, |v| { v["kid"] = "ops".into(); v["key_ops"] = serde_json::json!(["encrypt"]); }),
            published(&rsa, |v| { v["kid"] = "unknown-alg".into(); v["alg"] = "RS999".into(); }),
            published(&ed, |v| { v["kid"] = "not-allowed".into(); }),
            published(&ec, |v| { v.as_object_mut().unwrap().remove("kid"); }),
            published(&ec, |v| { v["crv"] = "P-521".into(); v["kid"] = "p521".into(); }),
            published(&rsa, |v| { v["kid"] = "ec".into(); }),
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "AKP", "kid": "pq", "alg": "ML-DSA-44", "pub": "AAAA"},
            "not an object",
        ]});
        let allowed = [Algorithm::ES256, Algorithm::RS256, Algorithm::HS256];
        let set = KeySet::from_jwks(jwks.to_string().as_bytes(), &allowed).unwrap();
        let kept: Vec<_> = set
            .verifying_keys()
            .iter()
            .map(|k| (k.kid(), k.algorithm()))
            .collect();
        assert_eq!(kept, [("ec", Algorithm::ES256), ("rsa", Algorithm::RS256)]);
        assert!(set.signing_key().is_none());

        // An RSA key without `alg` takes the first RSA algorithm allowed.
        let ps = KeySet::from_jwks(jwks.to_string().as_bytes(), &[Algorithm::PS256]).unwrap();
        let kept: Vec<_> = ps
            .verifying_keys()
            .iter()
            .map(|k| (k.kid(), k.algorithm()))
            .collect();
        assert_eq!(kept, [("rsa", Algorithm::PS256)]);

        for nothing in [
            r#"{"keys":[]}"#,
            r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#,
        ] {
            assert!(matches!(
                KeySet::from_jwks(nothing.as_bytes(), &allowed),
                Err(KeyError::NoUsableKey)
            ));
        }
        for garbage in ["", "[]", r#"{"keys":{}}"#, "{}"] {
            assert!(matches!(
                KeySet::from_jwks(garbage.as_bytes(), &allowed),
                Err(KeyError::IncompleteJwk)
            ));
        }
    }

    #[test]
    fn the_issued_header_is_the_one_sign_writes() {
        let keys = [
            SigningKey::hmac("hs", Algorithm::HS256, &[1; 32]).unwrap(),
            SigningKey::from_pem("es", Algorithm::ES256, ES256).unwrap(),
            SigningKey::from_pem("ed", Algorithm::EdDSA, ED25519).unwrap(),
            SigningKey::from_pem("rs", Algorithm::RS256, RSA).unwrap(),
        ];
        let mut set = KeySet::builder();
        for key in &keys {
            set = set.verifying_key(key.verifying_key());
        }
        let set = set.build().unwrap();
        for key in &keys {
            let token = key.sign(&serde_json::json!({"sub": "a"})).unwrap();
            let header = token.split('.').next().unwrap();
            let found = set.find_issued_header(header).map(VerifyingKey::kid);
            assert_eq!(found, Some(key.kid()), "{:?}", key.algorithm());
            // Any other bytes are not ours, even if they decode alike.
            assert!(set.find_issued_header(&header[1..]).is_none());
            assert!(set.find_issued_header(&format!("{header}A")).is_none());
        }
    }

    #[test]
    fn hmac_secrets_must_be_long_enough_and_hmac_only() {
        assert!(matches!(
            SigningKey::hmac("k", Algorithm::HS256, &[1; 31]),
            Err(KeyError::WeakSecret { min: 32, .. })
        ));
        assert!(SigningKey::hmac("k", Algorithm::HS512, &[1; 63]).is_err());
        assert!(SigningKey::hmac("k", Algorithm::HS512, &[1; 64]).is_ok());
        assert!(matches!(
            SigningKey::hmac("k", Algorithm::RS256, &[1; 64]),
            Err(KeyError::AlgorithmMismatch { .. })
        ));
        assert!(matches!(
            SigningKey::hmac("", Algorithm::HS256, &[1; 32]),
            Err(KeyError::EmptyKid)
        ));
    }

    #[test]
    fn pem_keys_must_fit_their_algorithm() {
        assert!(SigningKey::from_pem("k", Algorithm::ES256, ES256).is_ok());
        assert!(SigningKey::from_pem("k", Algorithm::ES384, ES256).is_err());
        assert!(SigningKey::from_pem("k", Algorithm::EdDSA, ES256).is_err());
        assert!(SigningKey::from_pem("k", Algorithm::EdDSA, ED25519).is_ok());
        assert!(SigningKey::from_pem("k", Algorithm::PS256, RSA).is_ok());
        assert!(SigningKey::from_pem("k", Algorithm::HS256, RSA).is_err());
        assert!(VerifyingKey::from_pem("k", Algorithm::RS256, RSA_PUB).is_ok());
        assert!(VerifyingKey::from_pem("k", Algorithm::ES256, RSA_PUB).is_err());
    }

    #[test]
    fn jwks_publishes_public_keys_only_with_kid_use_and_alg() {
        let set = KeySet::builder()
            .signing_key(SigningKey::from_pem("ec", Algorithm::ES256, ES256).unwrap())
            .verifying_key(VerifyingKey::hmac("mac", Algorithm::HS256, &[3; 32]).unwrap())
            .verifying_key(VerifyingKey::from_pem("rsa", Algorithm::RS256, RSA_PUB).unwrap())
            .build()
            .unwrap();
        let jwks = serde_json::to_value(set.jwks()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], "ec");
        assert_eq!(keys[0]["use"], "sig");
        assert_eq!(keys[0]["alg"], "ES256");
        assert_eq!(keys[0]["crv"], "P-256");
        assert!(keys[0].get("d").is_none(), "private part leaked");
        assert_eq!(keys[1]["kty"], "RSA");
        assert!(!jwks.to_string().contains("\"k\""), "HMAC secret leaked");

        // A published key round-trips into a verifier.
        let jwk: Jwk = serde_json::from_value(keys[0].clone()).unwrap();
        let v = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!((v.kid(), v.algorithm()), ("ec", Algorithm::ES256));
    }

    #[test]
    fn duplicate_kids_are_rejected() {
        let k = SigningKey::hmac("same", Algorithm::HS256, &[1; 32]).unwrap();
        let err = KeySet::builder()
            .signing_key(k.clone())
            .verifying_key(k.verifying_key())
            .build()
            .unwrap_err();
        assert!(matches!(err, KeyError::DuplicateKid(kid) if kid == "same"));
    }

    #[test]
    fn a_token_without_kid_matches_only_a_single_key() {
        let a = VerifyingKey::hmac("a", Algorithm::HS256, &[1; 32]).unwrap();
        let b = VerifyingKey::hmac("b", Algorithm::HS256, &[2; 32]).unwrap();
        let one = KeySet::builder().verifying_key(a.clone()).build().unwrap();
        assert_eq!(one.find(None).unwrap().kid(), "a");
        let two = KeySet::builder()
            .verifying_key(a)
            .verifying_key(b)
            .build()
            .unwrap();
        assert!(two.find(None).is_none());
        assert_eq!(two.find(Some("b")).unwrap().kid(), "b");
        assert!(two.find(Some("c")).is_none());
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let k = SigningKey::hmac(
            "k",
            Algorithm::HS256,
            b"super-secret-super-secret-super-secret",
        )
        .unwrap();
        let shown = format!("{k:?} {:?}", k.verifying_key());
        assert!(!shown.contains("super-secret"));
    }

    #[test]
    fn one_signing_key_is_a_key_set_that_signs_and_verifies() {
        let key = SigningKey::hmac("k1", Algorithm::HS256, &[3; 32]).unwrap();
        let keys = Keys::from(key.clone());
        let set = keys.current();
        assert_eq!(set.signing_key().map(SigningKey::kid), Some("k1"));
        assert_eq!(set.verifying_keys().len(), 1);
        let token = key.sign(&serde_json::json!({"sub": "a"})).unwrap();
        let (message, tag) = token.rsplit_once('.').unwrap();
        assert!(set.verifying_keys()[0].verify_signature(message.as_bytes(), tag));
    }
}
