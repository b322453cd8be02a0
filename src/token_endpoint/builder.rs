//! Building a [`TokenEndpoint`]: every setting checked once, at `build`.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::Arc,
    time::Duration,
};

use super::{
    PasswordVerifier, RateLimits,
    authorize::Authorization,
    cookie::{BrowserClient, BrowserConfigError},
    dpop::EndpointDpop,
    limits::Limiters,
    metadata::{
        DEFAULT_METADATA_MAX_AGE, EndpointPaths, MetadataConfig, MetadataConfigError,
        MetadataEndpoint,
    },
    password::{Passwords, default_permits},
    pipeline::{DEFAULT_CLIENT_CACHE_TTL, DEFAULT_MAX_BODY, Inner},
    service::TokenEndpoint,
};
use crate::{
    binding::TrustedProxies,
    dpop::{Dpop, Htu},
    header::is_quotable,
    issuer::Issuer,
};

/// Builds a [`TokenEndpoint`].
#[must_use]
pub struct TokenEndpointBuilder {
    issuer: Issuer,
    verifier: Option<Arc<dyn PasswordVerifier>>,
    password_permits: usize,
    password_queue: usize,
    proxies: TrustedProxies,
    max_body: usize,
    realm: String,
    client_cache_ttl: Duration,
    limits: RateLimits,
    public_base_url: Option<String>,
    paths: EndpointPaths,
    scopes_supported: Vec<String>,
    acr_values_supported: Vec<String>,
    metadata_max_age: Duration,
    browser: Vec<(String, BrowserClient)>,
    dpop: Option<Dpop>,
    dpop_nonce_required: bool,
    dpop_nonce_required_for: HashSet<String>,
    janitor_elsewhere: bool,
    authorization: Option<Authorization>,
    #[cfg(feature = "client-metadata")]
    documents: Option<super::documents::MetadataDocuments>,
    registration: Option<super::registration::DynamicRegistration>,
}

impl fmt::Debug for TokenEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpointBuilder")
            .field("max_body", &self.max_body)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl TokenEndpointBuilder {
    /// The defaults over `issuer`; see [`TokenEndpoint::builder`].
    pub(super) fn new(issuer: Issuer) -> Self {
        Self {
            issuer,
            verifier: None,
            password_permits: default_permits(),
            password_queue: 2 * default_permits(),
            proxies: TrustedProxies::none(),
            max_body: DEFAULT_MAX_BODY,
            realm: "tollgate".to_owned(),
            client_cache_ttl: DEFAULT_CLIENT_CACHE_TTL,
            limits: RateLimits::none(),
            public_base_url: None,
            paths: EndpointPaths::default(),
            scopes_supported: Vec::new(),
            acr_values_supported: Vec::new(),
            metadata_max_age: DEFAULT_METADATA_MAX_AGE,
            browser: Vec::new(),
            dpop: None,
            dpop_nonce_required: false,
            janitor_elsewhere: false,
            dpop_nonce_required_for: HashSet::new(),
            authorization: None,
            #[cfg(feature = "client-metadata")]
            documents: None,
            registration: None,
        }
    }

    /// Enables the password grant with this verifier. Only clients with
    /// `allow_password` may use it; it is meant for first-party apps only
    /// (RFC 9700 §2.4): prefer your own login handler and
    /// [`Issuer::issue`].
    pub fn password_verifier(self, verifier: impl PasswordVerifier) -> Self {
        Self {
            verifier: Some(Arc::new(verifier)),
            ..self
        }
    }

    /// At most `permits` password checks at once, and `queue` more
    /// waiting for one; beyond that a password request is answered `503
    /// temporarily_unavailable` with `Retry-After` at once. A memory-hard
    /// hash holds its memory per check (argon2 with OWASP's parameters
    /// about 19 MiB), so this bounds what a burst of guesses can take:
    /// `permits` times that. Default: one permit per core and a queue of
    /// twice that. Zero permits is refused by `build`.
    pub fn password_concurrency(self, permits: usize, queue: usize) -> Self {
        Self {
            password_permits: permits,
            password_queue: queue,
            ..self
        }
    }

    /// Proxies whose `Forwarded` / `X-Forwarded-For` are believed.
    pub fn trusted_proxies(self, proxies: TrustedProxies) -> Self {
        Self { proxies, ..self }
    }

    /// Largest request body. Default [`DEFAULT_MAX_BODY`].
    pub fn max_body(self, max_body: usize) -> Self {
        Self { max_body, ..self }
    }

    /// The realm of the `WWW-Authenticate: Basic` challenge: printable
    /// ASCII without `"` or `\` (checked by `build`).
    pub fn realm(self, realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            ..self
        }
    }

    /// How long a client lookup is cached, found or not (a changed secret
    /// or permission, or a newly registered client, takes effect within it). Zero disables the cache. Default
    /// [`DEFAULT_CLIENT_CACHE_TTL`].
    pub fn client_cache_ttl(self, client_cache_ttl: Duration) -> Self {
        Self {
            client_cache_ttl,
            ..self
        }
    }

    /// Rate limits and lockouts for this endpoint and its `/revoke` and
    /// `/introspect`. Default [`RateLimits::none`].
    pub fn rate_limits(self, limits: RateLimits) -> Self {
        Self { limits, ..self }
    }

    /// The URL the endpoints are served under, as clients reach it (behind
    /// a proxy, the public one). Default: the issuer. The metadata's
    /// endpoint URLs are this plus [`paths`](Self::paths); never the
    /// request's `Host`.
    pub fn public_base_url(self, url: impl Into<String>) -> Self {
        Self {
            public_base_url: Some(url.into()),
            ..self
        }
    }

    /// Says that the janitor runs in another process (one instance of
    /// several runs it), so the endpoint does not warn, at its first
    /// request, that none runs in this one and the tables only grow.
    pub fn janitor_elsewhere(self) -> Self {
        Self {
            janitor_elsewhere: true,
            ..self
        }
    }

    /// Where the application mounts `/token`, `/revoke`, `/introspect` and
    /// the JWKS, as the metadata advertises them. Default
    /// [`EndpointPaths::default`].
    pub fn paths(self, paths: EndpointPaths) -> Self {
        Self { paths, ..self }
    }

    /// The scopes the metadata lists in `scopes_supported`. Default none
    /// (the member is left out).
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            scopes_supported: scopes.into_iter().map(Into::into).collect(),
            ..self
        }
    }

    /// The authentication context classes (`acr` values) the metadata lists
    /// in `acr_values_supported`: what the app's login can reach, so a
    /// client answered with an RFC 9470 step-up challenge knows which
    /// `acr_values` it may ask for. Default none (the member is left out).
    /// Each must be made of a scope token's characters (RFC 6749 §3.3:
    /// printable ASCII, no space, `"` or `\`), since `acr_values` is a
    /// space-separated list and step-up challenges quote it.
    pub fn acr_values_supported<I, S>(self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            acr_values_supported: values.into_iter().map(Into::into).collect(),
            ..self
        }
    }

    /// How long clients may cache the metadata. Default
    /// [`DEFAULT_METADATA_MAX_AGE`].
    pub fn metadata_max_age(self, max_age: Duration) -> Self {
        Self {
            metadata_max_age: max_age,
            ..self
        }
    }

    /// Makes `client_id` a browser client: its refresh token travels in an
    /// `HttpOnly` cookie, and each of its requests must come from one of
    /// its origins ([`cookie`](super::BrowserClient) has the rules). Meant
    /// for public clients.
    pub fn browser_client(mut self, client_id: impl Into<String>, client: BrowserClient) -> Self {
        self.browser.push((client_id.into(), client));
        self
    }

    /// Accepts DPoP proofs (RFC 9449 §5) at `/token`: a request with a
    /// valid proof gets an access token bound to its key (`cnf.jkt`,
    /// `token_type` `DPoP`), and a public client's new session is bound to
    /// it, so its refreshes need a proof by the same key. Clients
    /// registered with `dpop_bound_access_tokens` must send one. The
    /// proof's `htu` is the token endpoint's public URL
    /// ([`public_base_url`](Self::public_base_url) +
    /// [`paths`](Self::paths)); the metadata lists the algorithms.
    pub fn dpop(self, dpop: Dpop) -> Self {
        Self {
            dpop: Some(dpop),
            ..self
        }
    }

    /// Requires a server nonce in every DPoP proof (RFC 9449 §8):
    /// `use_dpop_nonce` with a fresh `DPoP-Nonce` without one.
    pub fn require_dpop_nonce(self) -> Self {
        Self {
            dpop_nonce_required: true,
            ..self
        }
    }

    /// Requires a server nonce in the DPoP proofs of `client_id` only
    /// (repeatable).
    pub fn require_dpop_nonce_for(mut self, client_id: impl Into<String>) -> Self {
        self.dpop_nonce_required_for.insert(client_id.into());
        self
    }

    /// Turns on the authorization code grant (RFC 6749 §4.1) with PKCE:
    /// [`TokenEndpoint::authorization_endpoint`] is `/authorize` (mount it
    /// at [`EndpointPaths::authorization`]), which sends the browser to the
    /// application's login page; the application finishes through
    /// [`TokenEndpoint::authorizer`]. `/token` then accepts
    /// `grant_type=authorization_code`, and the metadata announces it all.
    pub fn authorization(self, settings: Authorization) -> Self {
        Self {
            authorization: Some(settings),
            ..self
        }
    }

    /// Accepts Client ID Metadata Documents at `/authorize` (MCP's
    /// preferred registration): a `client_id` that is an `https` URL names
    /// the JSON document describing a public client, fetched by the
    /// documents' [`Resolver`](crate::client_metadata::Resolver) and
    /// recorded in the store as a client of its own kind. The metadata
    /// announces `client_id_metadata_document_supported`. Needs
    /// [`authorization`](Self::authorization).
    #[cfg(feature = "client-metadata")]
    pub fn metadata_documents(self, documents: super::documents::MetadataDocuments) -> Self {
        Self {
            documents: Some(documents),
            ..self
        }
    }

    /// Turns on dynamic client registration (RFC 7591):
    /// [`TokenEndpoint::registration_endpoint`] (mount it at
    /// [`EndpointPaths::registration`]), announced as the metadata's
    /// `registration_endpoint`. Needs [`authorization`](Self::authorization).
    pub fn dynamic_registration(
        self,
        registration: super::registration::DynamicRegistration,
    ) -> Self {
        Self {
            registration: Some(registration),
            ..self
        }
    }

    /// Checks the settings and builds the endpoint.
    pub fn build(self) -> Result<TokenEndpoint, EndpointConfigError> {
        if !is_quotable(&self.realm) {
            return Err(EndpointConfigError::InvalidRealm);
        }
        if self.max_body == 0 {
            return Err(EndpointConfigError::ZeroBodyLimit);
        }
        if self.password_permits == 0 {
            return Err(EndpointConfigError::ZeroPasswordPermits);
        }
        if self.authorization.as_ref().is_some_and(|a| !a.is_valid()) {
            return Err(EndpointConfigError::Authorization);
        }
        #[cfg(feature = "client-metadata")]
        let documents_on = self.documents.is_some();
        #[cfg(not(feature = "client-metadata"))]
        let documents_on = false;
        #[cfg(feature = "client-metadata")]
        if self.documents.as_ref().is_some_and(|d| !d.is_valid()) {
            return Err(EndpointConfigError::Registration);
        }
        if self.registration.as_ref().is_some_and(|r| !r.is_valid()) {
            return Err(EndpointConfigError::Registration);
        }
        if (documents_on || self.registration.is_some()) && self.authorization.is_none() {
            return Err(EndpointConfigError::RegistrationWithoutAuthorization);
        }
        let access_tokens = self
            .issuer
            .access_token_layer()
            .build()
            .map_err(EndpointConfigError::AccessTokens)?
            .verifier()
            .clone();
        let limits = Limiters::new(
            &self.limits,
            self.registration.as_ref().map(|r| r.per_ip),
            self.issuer.revocations().clock(),
        )?;
        if let Some(bad) = self
            .scopes_supported
            .iter()
            .find(|s| !crate::scope::is_scope_token(s))
        {
            return Err(EndpointConfigError::InvalidScope(bad.clone()));
        }
        if let Some(bad) = self
            .acr_values_supported
            .iter()
            .find(|a| !crate::scope::is_scope_token(a))
        {
            return Err(EndpointConfigError::InvalidAcr(bad.clone()));
        }
        let metadata = MetadataEndpoint::build(
            &MetadataConfig {
                issuer: self.issuer.issuer(),
                public_base_url: self.public_base_url.as_deref(),
                paths: &self.paths,
                scopes_supported: &self.scopes_supported,
                acr_values_supported: &self.acr_values_supported,
                password_grant: self.verifier.is_some(),
                dpop_algs: self.dpop.as_ref().map(Dpop::algorithms_supported),
                authorization_code: self.authorization.is_some(),
                metadata_documents: documents_on,
                registration: self.registration.is_some(),
            },
            self.metadata_max_age,
        )?;
        let browser = self
            .browser
            .into_iter()
            .map(|(id, client)| match client.into_cookie() {
                Ok(cookie) => Ok((id, cookie)),
                Err(e) => Err(EndpointConfigError::BrowserClient(id, e)),
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let dpop = match self.dpop {
            Some(dpop) => {
                let nonces_needed =
                    self.dpop_nonce_required || !self.dpop_nonce_required_for.is_empty();
                if nonces_needed && !dpop.has_nonces() {
                    return Err(EndpointConfigError::DpopNoNonces);
                }
                Some(EndpointDpop {
                    url: Htu::parse(metadata.token_endpoint())
                        .ok_or(EndpointConfigError::DpopUrl)?,
                    dpop,
                    nonce_required: self.dpop_nonce_required,
                    nonce_required_for: self.dpop_nonce_required_for,
                })
            }
            None => None,
        };
        let capacity = if self.client_cache_ttl.is_zero() {
            0
        } else {
            10_000
        };
        Ok(TokenEndpoint {
            inner: Arc::new(Inner {
                clients: moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(self.client_cache_ttl.max(Duration::from_millis(1)))
                    .build(),
                issuer: self.issuer,
                paths: self.paths.clone(),
                janitor_unchecked: std::sync::atomic::AtomicBool::new(!self.janitor_elsewhere),
                passwords: self
                    .verifier
                    .map(|v| Passwords::new(v, self.password_permits, self.password_queue)),
                proxies: self.proxies,
                max_body: self.max_body,
                limits,
                realm: self.realm,
                metadata,
                access_tokens,
                browser,
                dpop,
                authorization: self.authorization.map(Arc::new),
                #[cfg(feature = "client-metadata")]
                documents: self.documents,
                registration: self.registration,
            }),
        })
    }
}

/// A setting the token endpoint refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointConfigError {
    /// The realm has characters a quoted-string cannot carry.
    #[error("the realm must be printable ASCII without `\"` or `\\`")]
    InvalidRealm,
    /// A zero body limit would refuse every request.
    #[error("the body limit must be above zero")]
    ZeroBodyLimit,
    /// [`password_concurrency`](TokenEndpointBuilder::password_concurrency)
    /// with no permit: no password could ever be checked.
    #[error("password checks need at least one permit")]
    ZeroPasswordPermits,
    /// A rate limit with a zero count or period.
    #[error("a rate limit needs a count and a period above zero")]
    ZeroLimit,
    /// `/revoke` and `/introspect` cannot verify the issuer's access tokens
    /// with its keys and deny list (e.g. the deny list's margin is shorter
    /// than the verification leeway).
    #[error("cannot verify the issuer's access tokens: {0}")]
    AccessTokens(#[source] crate::access_token::AccessTokenConfigError),
    /// The issuer, public base URL or paths cannot make RFC 8414 metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataConfigError),
    /// A scope in `scopes_supported` is not a valid scope token.
    #[error("`{0}` is not a valid scope token")]
    InvalidScope(String),
    /// A value in `acr_values_supported` is empty or has a space, `"` or
    /// `\\`.
    #[error("`{0}` is not a valid acr value")]
    InvalidAcr(String),
    /// A browser client's settings cannot work.
    #[error("browser client `{0}`: {1}")]
    BrowserClient(String, #[source] BrowserConfigError),
    /// A DPoP nonce is required but the [`Dpop`] has no nonces.
    #[error("a DPoP nonce is required but no nonces are configured")]
    DpopNoNonces,
    /// The authorization endpoint's login URL is neither a path on this
    /// host nor an `https` URL (`http` on loopback), or a lifetime is under
    /// a second.
    #[error("the login URL must be a path or an https URL, and lifetimes at least a second")]
    Authorization,
    /// The settings of metadata-document or dynamically registered
    /// clients cannot make a client (a scope or resource that is not
    /// valid).
    #[error("the settings for registered clients are not valid (scope or resources)")]
    Registration,
    /// Metadata documents or dynamic registration without the
    /// authorization endpoint, the only grant such clients may use.
    #[error("client registration needs the authorization endpoint")]
    RegistrationWithoutAuthorization,
    /// The token endpoint's public URL is no http(s) URL a proof's `htu`
    /// can name.
    #[error("the token endpoint's public URL cannot be a DPoP htu")]
    DpopUrl,
}
