use std::{sync::Arc, time::Duration};

use super::{
    Verifier,
    cache::{DEFAULT_VERIFIED_CACHE_BYTES, VerifiedCache},
    resource::{DEFAULT_RESOURCE_METADATA_MAX_AGE, ProtectedResource},
    service::{AccessTokenLayer, GateDpop, Shared, StepUp},
};
use crate::{
    claims::{Claim, ClaimRules, TokenProfile},
    dpop::{Dpop, Htu},
    header::is_quotable,
    identifier::{HttpsIdentifier, IdentifierError},
    keys::{ACCESS_TOKEN_TYP, Algorithm, Keys},
    revocation::RevocationCache,
    scope,
};

/// Default clock-skew leeway for `exp`, `nbf` and `iat`: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Default cap on the `Authorization` header (or token cookie): 8 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// A configuration the gate refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenConfigError {
    /// No keys were given.
    #[error("no verification keys configured")]
    MissingKeys,
    /// No issuer was given.
    #[error("no issuer configured")]
    MissingIssuer,
    /// No audience was given (RFC 9068 §4 requires checking `aud`).
    #[error("no audience configured")]
    MissingAudience,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    EmptyAlgorithms,
    /// A key uses an algorithm outside the allow-list.
    #[error("key `{kid}` uses {alg:?}, which is not in the allow-list")]
    KeyAlgorithmNotAllowed {
        /// The key id.
        kid: String,
        /// Its algorithm.
        alg: Algorithm,
    },
    /// The realm contains characters a quoted-string cannot carry.
    #[error("the realm must be printable ASCII without `\"` or `\\`")]
    InvalidRealm,
    /// A required `acr` value is empty or has a space, quote, backslash or
    /// control character.
    #[error("`{0}` is not an acr value a challenge can carry")]
    InvalidAcr(String),
    /// A required scope is not a valid scope token (RFC 6749 §3.3).
    #[error("`{0}` is not a valid scope token")]
    InvalidScope(String),
    /// The cookie name is not a valid cookie name.
    #[error("`{0}` is not a valid cookie name")]
    InvalidCookieName(String),
    /// DPoP is on but the public URL (each proof's `htu` base) is missing
    /// or not an absolute http(s) URL.
    #[error("DPoP needs the public URL the routes are reached at (`dpop_public_url`)")]
    DpopPublicUrl,
    /// A server nonce is required but the [`Dpop`](crate::dpop::Dpop) has
    /// no nonces.
    #[error("a DPoP nonce is required but no nonces are configured")]
    DpopNoNonces,
    /// The accepted token types are empty.
    #[error("no accepted token type (use `allow_any_token_type` for legacy issuers)")]
    EmptyTokenTypes,
    /// The resource identifier is not a canonical `https` URL without query
    /// or fragment (RFC 9728 §1.2).
    #[error("the resource identifier is not an identifier URL: {0}")]
    InvalidResource(#[source] IdentifierError),
    /// An authorization server (default: the issuer) is not an issuer
    /// identifier URL, so the resource metadata cannot name it.
    #[error("`{0}` is not an authorization server identifier (an https URL)")]
    InvalidAuthorizationServer(String),
    /// A multi-issuer gate was given two gates for one issuer.
    #[error("a multi-issuer gate needs one gate per issuer (`{0}` twice)")]
    DuplicateIssuer(String),
    /// A multi-issuer gate was given no gate.
    #[error("a multi-issuer gate needs at least one gate")]
    NoIssuers,
    /// The leeway is longer than the revocation cache's margin, so a revoked
    /// token could outlive its deny-list entry.
    #[error("leeway {leeway:?} exceeds the revocation margin {margin:?}")]
    LeewayExceedsRevocationMargin {
        /// The configured leeway.
        leeway: Duration,
        /// The cache's margin.
        margin: Duration,
    },
}

/// Builds an [`AccessTokenLayer`]; every setting is checked by
/// [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct AccessTokenLayerBuilder {
    keys: Option<Keys>,
    issuer: Option<String>,
    audience: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Duration,
    profile: TokenProfile,
    required_claims: Option<Vec<Claim>>,
    extra_claims: Vec<Claim>,
    /// `None`: the profile's; `Some(None)`: any type.
    token_types: Option<Option<Vec<String>>>,
    realm: Option<String>,
    scopes: Vec<String>,
    acr_values: Vec<String>,
    max_age: Option<Duration>,
    cookie: Option<String>,
    revocations: Option<RevocationCache>,
    max_token_len: usize,
    resource: Option<String>,
    authorization_servers: Vec<String>,
    scopes_supported: Option<Vec<String>>,
    resource_metadata_max_age: Duration,
    dpop: Option<Dpop>,
    dpop_public_url: Option<String>,
    dpop_nonce_required: bool,
    /// Bytes for the cache of verified asymmetric tokens; 0: off.
    verified_cache_bytes: u64,
    optional: bool,
}

impl Default for AccessTokenLayerBuilder {
    fn default() -> Self {
        Self {
            keys: None,
            issuer: None,
            audience: Vec::new(),
            algorithms: None,
            leeway: DEFAULT_LEEWAY,
            profile: TokenProfile::Rfc9068,
            required_claims: None,
            extra_claims: Vec::new(),
            token_types: None,
            realm: None,
            scopes: Vec::new(),
            acr_values: Vec::new(),
            max_age: None,
            cookie: None,
            revocations: None,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            resource: None,
            authorization_servers: Vec::new(),
            scopes_supported: None,
            resource_metadata_max_age: DEFAULT_RESOURCE_METADATA_MAX_AGE,
            dpop: None,
            dpop_public_url: None,
            dpop_nonce_required: false,
            verified_cache_bytes: DEFAULT_VERIFIED_CACHE_BYTES,
            optional: false,
        }
    }
}

impl AccessTokenLayerBuilder {
    /// The verification keys (required). Pass a [`Keys`] handle to rotate
    /// keys later, or a [`KeySet`](crate::keys::KeySet).
    pub fn keys(self, keys: impl Into<Keys>) -> Self {
        Self {
            keys: Some(keys.into()),
            ..self
        }
    }

    /// The one trusted issuer, compared exactly with `iss` (required).
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            ..self
        }
    }

    /// An audience this resource answers to (required, repeatable): the
    /// token's `aud` must name one of them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// The algorithm allow-list. Default: the algorithms of the keys given.
    /// Set it explicitly to rotate to a key of another algorithm later.
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            algorithms: Some(algorithms.into_iter().collect()),
            ..self
        }
    }

    /// Clock-skew leeway for `exp`, `nbf` and `iat`. Default
    /// [`DEFAULT_LEEWAY`] (30 s); whole seconds count.
    pub fn leeway(self, leeway: Duration) -> Self {
        Self { leeway, ..self }
    }

    /// The shape of the issuer's tokens: which claims they must carry and
    /// where each is read from. Default [`TokenProfile::Rfc9068`], the
    /// strict profile of tollgate's own tokens; [`TokenProfile::Oidc`] for
    /// Keycloak, Auth0, Entra ID and Okta. It also sets the accepted `typ`
    /// values unless [`token_types`](Self::token_types) does.
    ///
    /// ```
    /// use tollgate::{AccessTokenLayer, Algorithm, SigningKey, claims::{Claim, TokenProfile}};
    ///
    /// let keycloak = AccessTokenLayer::builder()
    ///     .keys(SigningKey::hmac("k", Algorithm::HS256, &[7; 32]).unwrap())
    ///     .issuer("https://sso.example/realms/shop")
    ///     .audience("orders-api")
    ///     .profile(TokenProfile::Oidc)
    ///     .require_claim(Claim::Sid) // so a back-channel logout can end it
    ///     .build()
    ///     .unwrap();
    /// # let _ = keycloak;
    /// ```
    pub fn profile(self, profile: TokenProfile) -> Self {
        Self { profile, ..self }
    }

    /// A claim every token must carry, on top of what the
    /// [`profile`](Self::profile) requires (repeatable). A token without it
    /// is refused with `invalid_token` and a description naming it.
    pub fn require_claim(mut self, claim: Claim) -> Self {
        self.extra_claims.push(claim);
        self
    }

    /// The claims tokens must carry besides `iss`, `sub`, `aud` and `exp`
    /// (always required), instead of the profile's list (those of
    /// [`require_claim`](Self::require_claim) still count): e.g. to
    /// accept an RFC 9068 issuer that leaves out `jti` (such tokens can
    /// then be denied only by session or subject).
    pub fn required_claims(self, claims: impl IntoIterator<Item = Claim>) -> Self {
        Self {
            required_claims: Some(claims.into_iter().collect()),
            ..self
        }
    }

    /// The accepted JOSE `typ` values, compared without case and without an
    /// `application/` prefix (RFC 7515 §4.1.9); a token without `typ` is
    /// refused. Default: the profile's — `at+jwt` (RFC 9068), or for
    /// [`TokenProfile::Oidc`] `at+jwt`, `JWT` or none.
    pub fn token_types<I, T>(self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self {
            token_types: Some(Some(types.into_iter().map(Into::into).collect())),
            ..self
        }
    }

    /// Accepts any `typ`, or none: only for legacy issuers that do not mark
    /// access tokens (RFC 8725 §3.11 explains the risk).
    pub fn allow_any_token_type(self) -> Self {
        Self {
            token_types: Some(None),
            ..self
        }
    }

    /// The `realm` of the `WWW-Authenticate` challenge.
    pub fn realm(self, realm: impl Into<String>) -> Self {
        Self {
            realm: Some(realm.into()),
            ..self
        }
    }

    /// A scope every request must carry (repeatable: all are required).
    /// Missing → 403 `insufficient_scope`.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Step-up (RFC 9470): a token's `acr` must be one of `values`; one
    /// without `acr` never is. Otherwise 401 with `WWW-Authenticate:
    /// Bearer error="insufficient_user_authentication", acr_values="…"`,
    /// so the client sends the user back to `/authorize` with them.
    pub fn require_acr<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr_values.extend(values.into_iter().map(Into::into));
        self
    }

    /// Step-up (RFC 9470): the user must have authenticated (`auth_time`)
    /// within `max_age`; a token without `auth_time` fails. Otherwise 401
    /// with `error="insufficient_user_authentication", max_age="…"`.
    pub fn require_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Also accept the token from this cookie (for browser clients). Sending
    /// it both ways in one request is `invalid_request` (RFC 6750 §2).
    pub fn cookie(self, name: impl Into<String>) -> Self {
        Self {
            cookie: Some(name.into()),
            ..self
        }
    }

    /// The deny list to consult. Default: a fresh, empty one.
    pub fn revocations(self, revocations: RevocationCache) -> Self {
        Self {
            revocations: Some(revocations),
            ..self
        }
    }

    /// Longest `Authorization` header (or cookie value) accepted. Default
    /// [`DEFAULT_MAX_TOKEN_LEN`].
    pub fn max_token_len(self, max_token_len: usize) -> Self {
        Self {
            max_token_len,
            ..self
        }
    }

    /// The identifier of the resource this gate protects (RFC 9728 §1.2): an
    /// `https` URL (or `http` on a loopback host) with no query or fragment,
    /// with lower-case scheme and host, compared byte for byte. It is
    /// accepted as an audience, its metadata is served by
    /// [`AccessTokenLayer::resource_metadata`], and every challenge names
    /// that metadata (`resource_metadata`, RFC 9728 §5.1).
    pub fn resource(self, resource: impl Into<String>) -> Self {
        Self {
            resource: Some(resource.into()),
            ..self
        }
    }

    /// An authorization server (its issuer identifier) whose tokens this
    /// resource accepts, as the metadata lists it (repeatable). Default: the
    /// [`issuer`](Self::issuer).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes the metadata lists in `scopes_supported`. Default: the
    /// required scopes (none: the member is left out).
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            scopes_supported: Some(scopes.into_iter().map(Into::into).collect()),
            ..self
        }
    }

    /// How long clients may cache the resource metadata. Default
    /// [`DEFAULT_RESOURCE_METADATA_MAX_AGE`].
    pub fn resource_metadata_max_age(self, max_age: Duration) -> Self {
        Self {
            resource_metadata_max_age: max_age,
            ..self
        }
    }

    /// Accepts DPoP-bound tokens (RFC 9449): `Authorization: DPoP` with a
    /// proof checked by `dpop`, besides Bearer tokens (a token bound to a
    /// key is refused as a Bearer token). Needs
    /// [`dpop_public_url`](Self::dpop_public_url).
    pub fn dpop(self, dpop: Dpop) -> Self {
        Self {
            dpop: Some(dpop),
            ..self
        }
    }

    /// The URL clients reach this gate's routes under, before a proxy or a
    /// router strips any prefix: a proof's `htu` must be this plus the
    /// path the gate sees (e.g. `https://api.example/v1` for a gate nested
    /// at `/v1`, or mounted behind a proxy that strips `/v1`). Never the
    /// request's `Host`.
    pub fn dpop_public_url(self, url: impl Into<String>) -> Self {
        Self {
            dpop_public_url: Some(url.into()),
            ..self
        }
    }

    /// Requires a server nonce in every DPoP proof on these routes
    /// (RFC 9449 §9): `use_dpop_nonce` with a fresh `DPoP-Nonce` without
    /// one.
    pub fn require_dpop_nonce(self) -> Self {
        Self {
            dpop_nonce_required: true,
            ..self
        }
    }

    /// The bound of the cache of verified asymmetric tokens, in bytes
    /// (each entry weighs its token, its payload and 448 bytes; measured,
    /// about 1.1 KB for a 413-byte ES256 token). Default
    /// [`DEFAULT_VERIFIED_CACHE_BYTES`]. A token verified a second time is
    /// kept, and from then on skips its signature (ES256 ~57 µs, EdDSA
    /// ~36 µs, in BENCHMARKS.md): every hit still checks the token's times,
    /// the deny list, scopes and DPoP binding; an entry lives no longer
    /// than its token's `exp` and dies with its key set (a
    /// [`Keys::rotate`](crate::keys::Keys::rotate) empties the cache).
    pub fn verified_token_cache(self, max_bytes: u64) -> Self {
        Self {
            verified_cache_bytes: max_bytes,
            ..self
        }
    }

    /// Optional authentication: a request without credentials goes through
    /// anonymous (no [`AccessClaims`](crate::AccessClaims) in its
    /// extensions, so `Option<AccessClaims>` is `None` and the
    /// `AccessClaims` extractor and
    /// [`require_scope_layer`](super::AccessTokenLayer::require_scope_layer)
    /// still refuse), while a token that is there must be valid: a bad,
    /// expired or revoked one is refused as always, never taken for none.
    pub fn optional(self) -> Self {
        Self {
            optional: true,
            ..self
        }
    }

    /// Verifies every asymmetric token's signature on every request.
    pub fn no_verified_token_cache(self) -> Self {
        self.verified_token_cache(0)
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<AccessTokenLayer, AccessTokenConfigError> {
        let keys = self.keys.ok_or(AccessTokenConfigError::MissingKeys)?;
        let snapshot = keys.current();
        if snapshot.verifying_keys().is_empty() {
            return Err(AccessTokenConfigError::MissingKeys);
        }
        let issuer = self.issuer.ok_or(AccessTokenConfigError::MissingIssuer)?;
        let mut audience = self.audience;
        let resource = match &self.resource {
            Some(raw) => {
                let id =
                    HttpsIdentifier::parse(raw).map_err(AccessTokenConfigError::InvalidResource)?;
                if !audience.contains(raw) {
                    audience.push(raw.clone());
                }
                Some(id)
            }
            None => None,
        };
        if audience.is_empty() {
            return Err(AccessTokenConfigError::MissingAudience);
        }
        let mut algorithms: Vec<Algorithm> = Vec::new();
        let requested = self.algorithms.unwrap_or_else(|| {
            snapshot
                .verifying_keys()
                .iter()
                .map(|k| k.algorithm())
                .collect()
        });
        for alg in requested {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(AccessTokenConfigError::EmptyAlgorithms);
        }
        if let Some(k) = snapshot
            .verifying_keys()
            .iter()
            .find(|k| !algorithms.contains(&k.algorithm()))
        {
            return Err(AccessTokenConfigError::KeyAlgorithmNotAllowed {
                kid: k.kid().to_owned(),
                alg: k.algorithm(),
            });
        }
        if let Some(realm) = &self.realm
            && !is_quotable(realm)
        {
            return Err(AccessTokenConfigError::InvalidRealm);
        }
        if let Some(bad) = self.scopes.iter().find(|s| !scope::is_scope_token(s)) {
            return Err(AccessTokenConfigError::InvalidScope(bad.clone()));
        }
        if let Some(name) = &self.cookie
            && (name.is_empty() || !name.bytes().all(is_cookie_name_byte))
        {
            return Err(AccessTokenConfigError::InvalidCookieName(name.clone()));
        }
        let (token_types, typ_optional) = match self.token_types {
            Some(Some(types)) if types.is_empty() => {
                return Err(AccessTokenConfigError::EmptyTokenTypes);
            }
            Some(Some(types)) => (
                Some(types.iter().map(|t| normalize_typ(t)).collect()),
                false,
            ),
            Some(None) => (None, true),
            None => match self.profile {
                TokenProfile::Rfc9068 => (Some(vec![ACCESS_TOKEN_TYP.to_owned()]), false),
                TokenProfile::Oidc => (
                    Some(vec![ACCESS_TOKEN_TYP.to_owned(), "jwt".to_owned()]),
                    true,
                ),
            },
        };
        let rules = ClaimRules::new(
            self.profile,
            self.required_claims
                .unwrap_or_else(|| self.profile.required_claims().to_vec())
                .into_iter()
                .chain(self.extra_claims),
        );
        let revocations = self.revocations.unwrap_or_default();
        if self.leeway > revocations.margin() {
            return Err(AccessTokenConfigError::LeewayExceedsRevocationMargin {
                leeway: self.leeway,
                margin: revocations.margin(),
            });
        }

        let resource = match resource {
            Some(id) => {
                let servers = if self.authorization_servers.is_empty() {
                    vec![issuer.clone()]
                } else {
                    self.authorization_servers
                };
                if let Some(bad) = servers.iter().find(|s| HttpsIdentifier::parse(s).is_err()) {
                    return Err(AccessTokenConfigError::InvalidAuthorizationServer(
                        bad.clone(),
                    ));
                }
                let supported = self.scopes_supported.unwrap_or_else(|| self.scopes.clone());
                if let Some(bad) = supported.iter().find(|s| !scope::is_scope_token(s)) {
                    return Err(AccessTokenConfigError::InvalidScope(bad.clone()));
                }
                Some(ProtectedResource::new(
                    &id,
                    &servers,
                    &supported,
                    self.dpop.as_ref().map(Dpop::algorithms_supported),
                    self.resource_metadata_max_age,
                ))
            }
            None => None,
        };
        let challenge_scope = (!self.scopes.is_empty()).then(|| self.scopes.join(" "));
        if let Some(bad) = self.acr_values.iter().find(|v| {
            v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(AccessTokenConfigError::InvalidAcr(bad.clone()));
        }
        let step_up = (!self.acr_values.is_empty() || self.max_age.is_some()).then(|| StepUp {
            acr_values: self.acr_values.clone(),
            max_age: self.max_age.map(|d| d.as_secs()),
        });
        let dpop = match self.dpop {
            Some(dpop) => {
                let base = self
                    .dpop_public_url
                    .as_deref()
                    .and_then(Htu::parse)
                    .ok_or(AccessTokenConfigError::DpopPublicUrl)?;
                if self.dpop_nonce_required && !dpop.has_nonces() {
                    return Err(AccessTokenConfigError::DpopNoNonces);
                }
                Some(GateDpop {
                    dpop,
                    base,
                    nonce_required: self.dpop_nonce_required,
                })
            }
            None => None,
        };
        let cache = (self.verified_cache_bytes > 0
            && algorithms
                .iter()
                .any(|a| a.family() != crate::keys::AlgorithmFamily::Hmac))
        .then(|| VerifiedCache::new(self.verified_cache_bytes));
        Ok(AccessTokenLayer::from_shared(Arc::new(Shared {
            verifier: Verifier {
                keys,
                algorithms,
                issuer,
                audiences: audience,
                leeway: self.leeway.as_secs(),
                token_types,
                typ_optional,
                rules,
                revocations,
                max_token_len: self.max_token_len,
                cache,
            },
            realm: self.realm,
            required_scopes: self.scopes,
            challenge_scope,
            step_up,
            resource,
            counters: crate::telemetry::GateCounters::register(),
            cookie: self.cookie,
            dpop,
            optional: self.optional,
        })))
    }
}

/// `typ` compared case-insensitively, with an optional `application/`
/// prefix (RFC 7515 §4.1.9).
pub(crate) fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// RFC 6265 cookie-name: an RFC 2616 token.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySet, SigningKey};

    fn keys() -> KeySet {
        KeySet::builder()
            .signing_key(SigningKey::hmac("k", Algorithm::HS256, &[1; 32]).unwrap())
            .build()
            .unwrap()
    }

    fn base() -> AccessTokenLayerBuilder {
        AccessTokenLayer::builder()
            .keys(keys())
            .issuer("iss")
            .audience("api")
    }

    #[test]
    fn build_checks_required_settings() {
        assert!(base().build().is_ok());
        let no_keys = AccessTokenLayer::builder()
            .issuer("i")
            .audience("a")
            .build();
        assert_eq!(no_keys.unwrap_err(), AccessTokenConfigError::MissingKeys);
        let empty_keys = base().keys(KeySet::default()).build();
        assert_eq!(empty_keys.unwrap_err(), AccessTokenConfigError::MissingKeys);
        let no_iss = AccessTokenLayer::builder()
            .keys(keys())
            .audience("a")
            .build();
        assert_eq!(no_iss.unwrap_err(), AccessTokenConfigError::MissingIssuer);
        let no_aud = AccessTokenLayer::builder().keys(keys()).issuer("i").build();
        assert_eq!(no_aud.unwrap_err(), AccessTokenConfigError::MissingAudience);
        assert_eq!(
            base().algorithms([]).build().unwrap_err(),
            AccessTokenConfigError::EmptyAlgorithms
        );
        assert!(matches!(
            base().algorithms([Algorithm::EdDSA]).build().unwrap_err(),
            AccessTokenConfigError::KeyAlgorithmNotAllowed { .. }
        ));
    }

    #[test]
    fn build_checks_syntax_of_strings_sent_in_headers() {
        assert_eq!(
            base().realm("a\"b").build().unwrap_err(),
            AccessTokenConfigError::InvalidRealm
        );
        assert_eq!(
            base().realm("a\nb").build().unwrap_err(),
            AccessTokenConfigError::InvalidRealm
        );
        assert!(base().realm("my api").build().is_ok());
        assert!(matches!(
            base().require_scope("a b").build().unwrap_err(),
            AccessTokenConfigError::InvalidScope(_)
        ));
        assert!(matches!(
            base().cookie("a;b").build().unwrap_err(),
            AccessTokenConfigError::InvalidCookieName(_)
        ));
        assert_eq!(
            base()
                .token_types(Vec::<String>::new())
                .build()
                .unwrap_err(),
            AccessTokenConfigError::EmptyTokenTypes
        );
    }

    #[test]
    fn leeway_may_not_outlast_revocations() {
        let err = base().leeway(Duration::from_secs(120)).build().unwrap_err();
        assert!(matches!(
            err,
            AccessTokenConfigError::LeewayExceedsRevocationMargin { .. }
        ));
        let wide = RevocationCache::builder()
            .margin(Duration::from_secs(300))
            .build();
        assert!(
            base()
                .leeway(Duration::from_secs(120))
                .revocations(wide)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn typ_normalization() {
        assert_eq!(normalize_typ("application/AT+JWT"), "at+jwt");
        assert_eq!(normalize_typ("JWT"), "jwt");
    }
}
