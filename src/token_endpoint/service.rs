use std::{
    collections::HashMap,
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use tower_service::Service;
use tracing::Instrument;

use super::{
    PasswordVerifier, RateLimits, TokenError,
    client_auth::{self, unavailable},
    cookie::{BrowserClient, BrowserConfigError, BrowserHeaders, RefreshCookie, body_or_cookie},
    form::Form,
    grant::{self, ClientGrants, Grant, GrantType},
    limits::Limiters,
    metadata::{
        DEFAULT_METADATA_MAX_AGE, EndpointPaths, MetadataConfig, MetadataConfigError,
        MetadataEndpoint,
    },
    response::json,
};
use crate::{
    access_token::Verifier,
    binding::{TrustedProxies, peer_addr},
    dpop::{CheckedProof, Dpop, DpopError, Expected, Htu, proof_header},
    events::SecurityEvent,
    header::is_quotable,
    issuer::{ClientMeta, IssueError, Issuer, Requested, TokenResponse},
    refresh::RefreshError,
    store::clients::Client,
    telemetry,
};

const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Default cap on a token request body: 16 KiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;

/// Default time a client row is cached: 5 seconds.
pub const DEFAULT_CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

pub(crate) struct Inner {
    pub(crate) issuer: Issuer,
    clients: client_auth::ClientCache,
    password_verifier: Option<Arc<dyn PasswordVerifier>>,
    proxies: TrustedProxies,
    max_body: usize,
    limits: Limiters,
    pub(crate) realm: String,
    metadata: MetadataEndpoint,
    /// Verifies access tokens presented to `/revoke` and `/introspect`
    /// as the issuer's own gate would: its keys, `iss` and `aud`, and its
    /// deny list.
    pub(crate) access_tokens: Verifier,
    /// Browser clients by id: their refresh cookie and origins.
    browser: HashMap<String, RefreshCookie>,
    /// DPoP, when on.
    dpop: Option<EndpointDpop>,
}

/// The token endpoint's DPoP settings.
struct EndpointDpop {
    dpop: Dpop,
    /// The token endpoint's public URL: every proof's `htu`.
    url: Htu,
    /// A nonce is required of every client...
    nonce_required: bool,
    /// ...or of these.
    nonce_required_for: std::collections::HashSet<String>,
}

/// A request to one of the endpoints, read and checked up to client
/// authentication.
pub(crate) struct Incoming {
    pub(crate) form: Form,
    pub(crate) basic: Option<client_auth::Presented>,
    pub(crate) meta: ClientMeta,
    /// What a browser client's checks read: Origin, the CSRF header,
    /// `Sec-Fetch-Site`, cookies.
    pub(crate) browser: BrowserHeaders,
    /// The `DPoP` header: none, one proof, or a refusal (two headers).
    pub(crate) dpop: Option<Result<String, DpopError>>,
}

impl Inner {
    /// POST, form-encoded, within the size limit, parsed strictly.
    pub(crate) async fn read<B>(&self, req: Request<B>) -> Result<Incoming, TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if req.method() != Method::POST {
            return Err(TokenError::MethodNotAllowed);
        }
        let meta = ClientMeta {
            ip: peer_addr(&req).map(|peer| self.proxies.client_ip(peer, req.headers())),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..ClientMeta::default()
        };
        self.limited(self.limits.request(meta.ip), "requests_per_ip", &meta)?;
        check_content_type(req.headers())?;
        if content_length(req.headers()).is_some_and(|n| n > self.max_body as u64) {
            return Err(TokenError::PayloadTooLarge);
        }
        let basic = client_auth::basic_credentials(req.headers())?;
        let browser = BrowserHeaders::from_headers(req.headers());
        let dpop = match proof_header(req.headers()) {
            Ok(proof) => Some(Ok(proof.to_owned())),
            Err(DpopError::Missing) => None,
            Err(e) => Some(Err(e)),
        };
        let body = Limited::new(req.into_body(), self.max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    TokenError::PayloadTooLarge
                } else {
                    TokenError::InvalidRequest("The request body could not be read")
                }
            })?
            .to_bytes();
        Ok(Incoming {
            form: Form::parse(&body)?,
            basic,
            meta,
            browser,
            dpop,
        })
    }

    /// Authenticates the calling client (RFC 6749 §2.3), within the rate
    /// limits.
    pub(crate) async fn client(
        &self,
        basic: Option<client_auth::Presented>,
        form: &Form,
        meta: &ClientMeta,
    ) -> Result<Arc<Client>, TokenError> {
        self.limited(
            self.limits.client_auth_allowed(meta.ip),
            "failed_client_auth_per_ip",
            meta,
        )?;
        let presented = client_auth::presented(basic, form)?;
        let client = client_auth::authenticate(self.issuer.db(), &self.clients, &presented)
            .await
            .inspect_err(|e| {
                if matches!(e, TokenError::InvalidClient { .. }) {
                    self.limits.client_auth_failed(meta.ip);
                    self.issuer
                        .events()
                        .emit(SecurityEvent::ClientAuthenticationFailed {
                            client_id: Some(presented.client_id.clone()),
                            ip: meta.ip,
                        });
                }
            })?;
        self.limited(
            self.limits.client(&client.client_id),
            "requests_per_client",
            meta,
        )?;
        Ok(client)
    }

    /// A browser client's cookie settings, once its request has passed
    /// the CSRF checks; `None` for every other client. A refusal is
    /// counted and reported, and happens before any token is looked at.
    pub(crate) fn browser_client(
        &self,
        client: &Client,
        headers: &BrowserHeaders,
        meta: &ClientMeta,
    ) -> Result<Option<&RefreshCookie>, TokenError> {
        let Some(cookie) = self.browser.get(&client.client_id) else {
            return Ok(None);
        };
        cookie.check(headers).map_err(|refusal| {
            telemetry::csrf_refused(refusal.as_str());
            self.issuer.events().emit(SecurityEvent::CsrfRefused {
                client_id: client.client_id.clone(),
                reason: refusal.as_str(),
                ip: meta.ip,
            });
            refusal.error()
        })?;
        Ok(Some(cookie))
    }

    /// The request's DPoP proof, checked (all but its replay), when it has
    /// one; a client registered with `dpop_bound_access_tokens` must send
    /// one. Without DPoP configured the header is ignored (RFC 9449 §5),
    /// unless the client needs it.
    fn dpop_proof(
        &self,
        client: &Client,
        proof: Option<Result<String, DpopError>>,
    ) -> Result<Option<CheckedProof>, TokenError> {
        let refused = |e: DpopError| {
            telemetry::dpop_refused(e.reason());
            TokenError::Dpop(e)
        };
        let (Some(cfg), Some(proof)) = (&self.dpop, proof) else {
            return if client.dpop_bound_access_tokens {
                Err(refused(DpopError::Missing))
            } else {
                Ok(None)
            };
        };
        let proof = proof.map_err(refused)?;
        cfg.dpop
            .checker
            .check(
                &proof,
                &Expected {
                    method: "POST",
                    url: &cfg.url,
                    path: "",
                    access_token: None,
                    nonce_required: cfg.nonce_required
                        || cfg.nonce_required_for.contains(&client.client_id),
                },
                self.issuer.now(),
            )
            .map(Some)
            .map_err(refused)
    }

    /// Claims a checked proof in the replay cache (and the shared store,
    /// if any): right before the grant runs, after everything else passed.
    async fn claim_dpop(&self, proof: Option<&CheckedProof>) -> Result<(), TokenError> {
        let (Some(cfg), Some(proof)) = (&self.dpop, proof) else {
            return Ok(());
        };
        let refused = |e: DpopError| {
            telemetry::dpop_refused(e.reason());
            TokenError::Dpop(e)
        };
        if let Some(shared) = cfg
            .dpop
            .checker
            .claim(proof, self.issuer.now())
            .map_err(refused)?
        {
            shared.await.map_err(refused)?;
        }
        Ok(())
    }

    /// A fresh `DPoP-Nonce`, when nonces are on.
    fn dpop_nonce(&self) -> Option<http::HeaderValue> {
        let cfg = self.dpop.as_ref()?;
        cfg.dpop
            .nonce(self.issuer.now())
            .and_then(|n| http::HeaderValue::try_from(n).ok())
    }

    /// Passes a rate-limit verdict on, reporting a refusal.
    fn limited(
        &self,
        verdict: Result<(), TokenError>,
        limit: &'static str,
        meta: &ClientMeta,
    ) -> Result<(), TokenError> {
        verdict.inspect_err(|_| {
            telemetry::rate_limited(limit);
            self.issuer
                .events()
                .emit(SecurityEvent::RateLimited { limit, ip: meta.ip });
        })
    }
}

/// The `/token` endpoint (RFC 6749 §3.2) as a Tower service: POST,
/// form-encoded, answering RFC 6749 §5 JSON. Mount it on a route of any
/// framework; it never answers 500.
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("issuer", &self.inner.issuer)
            .field("password_grant", &self.inner.password_verifier.is_some())
            .field("proxies", &self.inner.proxies)
            .field("max_body", &self.inner.max_body)
            .finish()
    }
}

impl TokenEndpoint {
    /// Starts a builder over an [`Issuer`].
    pub fn builder(issuer: Issuer) -> TokenEndpointBuilder {
        TokenEndpointBuilder {
            issuer,
            verifier: None,
            proxies: TrustedProxies::none(),
            max_body: DEFAULT_MAX_BODY,
            realm: "tollgate".to_owned(),
            client_cache_ttl: DEFAULT_CLIENT_CACHE_TTL,
            limits: RateLimits::none(),
            public_base_url: None,
            paths: EndpointPaths::default(),
            scopes_supported: Vec::new(),
            metadata_max_age: DEFAULT_METADATA_MAX_AGE,
            browser: Vec::new(),
            dpop: None,
            dpop_nonce_required: false,
            dpop_nonce_required_for: std::collections::HashSet::new(),
        }
    }

    /// Reads the request, authenticates the client, checks what it may
    /// do, and runs the grant.
    async fn handle<B>(
        &self,
        req: Request<B>,
        grant_label: &mut &'static str,
    ) -> Result<(TokenResponse, Option<&RefreshCookie>), TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let Incoming {
            form,
            basic,
            meta,
            browser,
            dpop,
        } = inner.read(req).await?;
        let grant_type = form.require("grant_type", "The grant_type parameter is missing")?;
        // Only a supported name becomes a label: the metric's cardinality
        // stays fixed whatever clients send.
        let grant_type = GrantType::parse(grant_type);
        if let Ok(g) = grant_type {
            *grant_label = g.as_str();
            tracing::Span::current().record("grant", g.as_str());
        }
        let client = inner.client(basic, &form, &meta).await?;
        tracing::Span::current().record("client_id", client.client_id.as_str());
        let cookie = inner.browser_client(&client, &browser, &meta)?;
        // An unsupported grant is refused only after client authentication:
        // an unauthenticated caller learns nothing about the grants.
        let grant_type = grant_type?;
        grant::permit(
            grant_type,
            ClientGrants {
                confidential: client.is_confidential(),
                password: client.allow_password,
                client_credentials: client.allow_client_credentials,
            },
            inner.password_verifier.is_some(),
        )?;
        let grant = Grant::read(grant_type, &form)?;
        let proof = inner.dpop_proof(&client, dpop)?;
        inner.claim_dpop(proof.as_ref()).await?;
        let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let result = match grant {
            Grant::RefreshToken {
                refresh_token,
                scope,
                resources,
            } => {
                let from_cookie = cookie.map(|c| c.read(&browser)).transpose()?.flatten();
                let token = body_or_cookie(
                    refresh_token,
                    from_cookie.as_deref(),
                    "The refresh_token parameter is missing",
                )?;
                let requested = Requested {
                    scope,
                    resources: &resources,
                    dpop_jkt,
                };
                inner
                    .issuer
                    .refresh(&client, token, &requested, &meta)
                    .await
            }
            Grant::Password {
                username,
                password,
                scope,
                resources,
            } => {
                let subject = inner.check_password(username, password, &meta).await?;
                let requested = Requested {
                    scope,
                    resources: &resources,
                    dpop_jkt,
                };
                inner
                    .issuer
                    .issue_for(&client, &subject, &requested, &meta)
                    .await
            }
            Grant::ClientCredentials { scope, resources } => {
                let requested = Requested {
                    scope,
                    resources: &resources,
                    dpop_jkt,
                };
                inner.issuer.client_credentials(&client, &requested)
            }
        };
        result.map(|t| (t, cookie)).map_err(|e| grant_error(&e))
    }
}

impl Inner {
    /// The subject a username and password belong to, within the lockout
    /// limits.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        meta: &ClientMeta,
    ) -> Result<String, TokenError> {
        // `permit` refused the grant when no verifier is configured.
        let verifier = self
            .password_verifier
            .as_ref()
            .ok_or(TokenError::UnsupportedGrantType)?;
        self.limits
            .password_allowed(username, meta.ip)
            .inspect_err(|_| {
                telemetry::lockout();
                self.issuer.events().emit(SecurityEvent::UserLockedOut {
                    username: username.to_owned(),
                    ip: meta.ip,
                });
            })?;
        verifier
            .verify(username, password)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password verifier failed");
                TokenError::Unavailable
            })?
            .ok_or_else(|| {
                self.limits.password_failed(username, meta.ip);
                TokenError::InvalidGrant("The username or password is incorrect")
            })
    }
}

fn grant_error(e: &IssueError) -> TokenError {
    match e {
        IssueError::InvalidScope | IssueError::Refresh(RefreshError::InvalidScope) => {
            TokenError::InvalidScope
        }
        IssueError::InvalidTarget | IssueError::Refresh(RefreshError::InvalidTarget) => {
            TokenError::InvalidTarget("The requested resource is not allowed for this client")
        }
        IssueError::Refresh(_) | IssueError::UnknownToken => {
            // One answer for unknown, revoked, reused, expired or bound
            // elsewhere: the client cannot tell which (RFC 6749 §5.2).
            TokenError::InvalidGrant("The refresh token is invalid, expired or revoked")
        }
        IssueError::UnknownClient => TokenError::InvalidClient { basic: false },
        IssueError::Store(s) => unavailable(s),
        IssueError::Signing(_) => {
            tracing::error!(error = %e, "cannot sign access tokens");
            TokenError::Unavailable
        }
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), TokenError> {
    let bad = TokenError::InvalidRequest("The body must be application/x-www-form-urlencoded");
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(bad.clone())?;
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(bad);
    }
    for param in parts {
        let (k, v) = param.split_once('=').ok_or(bad.clone())?;
        if k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(TokenError::InvalidRequest("Only UTF-8 is accepted"));
        }
    }
    Ok(())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An endpoint's request handling: every failure is an RFC-shaped
/// response, so the Tower services never fail.
pub(crate) trait Answer: Clone + Send + 'static {
    /// Names the endpoint in logs.
    const NAME: &'static str;

    /// The answer to one request, or the error to answer with.
    fn answer<B>(
        &self,
        req: Request<B>,
    ) -> impl Future<Output = Result<Response<Full<Bytes>>, TokenError>> + Send
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>;

    /// The realm of the `WWW-Authenticate: Basic` challenge.
    fn realm(&self) -> &str;
}

/// The future of every endpoint's `Service::call`.
pub type EndpointFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// What each endpoint's `Service::call` does: answer, or turn the error
/// into its response.
pub(crate) fn respond<E, B>(endpoint: E, req: Request<B>) -> EndpointFuture
where
    E: Answer,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Box::pin(async move {
        Ok(endpoint.answer(req).await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, endpoint = E::NAME, "request refused");
            e.into_http_response(endpoint.realm())
        }))
    })
}

impl Answer for TokenEndpoint {
    const NAME: &'static str = "TokenEndpoint";

    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        // Stable field names: grant, client_id (once authenticated),
        // outcome (ok or the RFC 6749 error code), duration_ms. Never a
        // token, secret or credential.
        let span = tracing::info_span!(
            "token_request",
            grant = tracing::field::Empty,
            client_id = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let mut grant = "unknown";
        let result = self.handle(req, &mut grant).instrument(span.clone()).await;
        let outcome = result.as_ref().map_or_else(TokenError::code, |_| "ok");
        let took = started.elapsed();
        telemetry::token_request(grant, outcome, took);
        span.in_scope(|| {
            tracing::info!(
                outcome,
                duration_ms = took.as_secs_f64() * 1e3,
                "token request"
            );
        });
        let (mut tokens, cookie) = match result {
            Ok(done) => done,
            // RFC 9449 §8: the nonce to use comes with the refusal.
            Err(e @ TokenError::Dpop(DpopError::Nonce)) => {
                let mut response = e.into_http_response(&self.inner.realm);
                response
                    .headers_mut()
                    .extend(self.inner.dpop_nonce().map(|n| (DPOP_NONCE, n)));
                return Ok(response);
            }
            Err(e) => return Err(e),
        };
        let nonce = self.inner.dpop_nonce().map(|n| (DPOP_NONCE, n));
        let Some(cookie) = cookie else {
            let mut response = ok_json(&tokens)?;
            response.headers_mut().extend(nonce);
            return Ok(response);
        };
        // A browser client's refresh token goes into its cookie, out of
        // the page's reach (and, by setting, also into the body).
        let set_cookie = if cookie.in_body {
            tokens.refresh_token.clone()
        } else {
            tokens.refresh_token.take()
        }
        .map(|token| cookie.set(&token, tokens.refresh_token_expires_in.unwrap_or(0)));
        let mut response = ok_json(&tokens)?;
        response
            .headers_mut()
            .extend(set_cookie.map(|v| (header::SET_COOKIE, v)));
        response.headers_mut().extend(nonce);
        Ok(response)
    }

    fn realm(&self) -> &str {
        &self.inner.realm
    }
}

impl<B> Service<Request<B>> for TokenEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> EndpointFuture {
        respond(self.clone(), req)
    }
}

impl TokenEndpoint {
    /// The `/revoke` endpoint (RFC 7009) over the same issuer, clients and
    /// settings.
    pub fn revocation(&self) -> super::RevocationEndpoint {
        super::RevocationEndpoint {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The RFC 8414 authorization-server metadata, to mount at
    /// [`MetadataEndpoint::well_known_path`].
    pub fn metadata(&self) -> MetadataEndpoint {
        self.inner.metadata.clone()
    }

    /// The JWKS of the issuer's public keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> super::JwksEndpoint {
        super::JwksEndpoint::new(self.inner.issuer.keys().clone())
    }

    /// The `Set-Cookie` value that removes `client_id`'s refresh cookie
    /// (`None` unless it is a browser client), for the application's own
    /// logout routes: `/revoke` clears it by itself.
    pub fn clear_refresh_cookie(&self, client_id: &str) -> Option<http::HeaderValue> {
        self.inner.browser.get(client_id).map(RefreshCookie::clear)
    }

    /// CORS for `/token`, `/revoke` and the application's logout routes
    /// when a browser client's page is on another origin: only the
    /// browser clients' origins, with credentials (so the cookie goes
    /// along), POST, and the headers a token request needs. Wrap those
    /// routes in it; add methods for other routes with
    /// [`allow_methods`](tower_http::cors::CorsLayer::allow_methods).
    pub fn cors_layer(&self) -> tower_http::cors::CorsLayer {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins = self
            .inner
            .browser
            .values()
            .flat_map(RefreshCookie::origins)
            .filter_map(|o| http::HeaderValue::from_str(o).ok());
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                super::CSRF_HEADER,
                http::HeaderName::from_static("dpop"),
            ])
            // A browser app must read the nonce to send it back.
            .expose_headers([DPOP_NONCE])
            .max_age(Duration::from_secs(600))
    }

    /// The `/introspect` endpoint (RFC 7662) over the same issuer, clients
    /// and settings.
    pub fn introspection(&self) -> super::IntrospectionEndpoint {
        super::IntrospectionEndpoint {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// A 200 JSON answer (with RFC 6749's no-store headers).
pub(crate) fn ok_json<T: serde::Serialize>(value: &T) -> Result<Response<Full<Bytes>>, TokenError> {
    serde_json::to_vec(value)
        .map(|body| json(StatusCode::OK, body))
        .map_err(|_| TokenError::Unavailable)
}

/// Builds a [`TokenEndpoint`].
#[must_use]
pub struct TokenEndpointBuilder {
    issuer: Issuer,
    verifier: Option<Arc<dyn PasswordVerifier>>,
    proxies: TrustedProxies,
    max_body: usize,
    realm: String,
    client_cache_ttl: Duration,
    limits: RateLimits,
    public_base_url: Option<String>,
    paths: EndpointPaths,
    scopes_supported: Vec<String>,
    metadata_max_age: Duration,
    browser: Vec<(String, BrowserClient)>,
    dpop: Option<Dpop>,
    dpop_nonce_required: bool,
    dpop_nonce_required_for: std::collections::HashSet<String>,
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

    /// Checks the settings and builds the endpoint.
    pub fn build(self) -> Result<TokenEndpoint, EndpointConfigError> {
        if !is_quotable(&self.realm) {
            return Err(EndpointConfigError::InvalidRealm);
        }
        if self.max_body == 0 {
            return Err(EndpointConfigError::ZeroBodyLimit);
        }
        let access_tokens = self
            .issuer
            .access_token_layer()
            .build()
            .map_err(EndpointConfigError::AccessTokens)?
            .verifier()
            .clone();
        let limits = Limiters::new(&self.limits, self.issuer.revocations().clock())?;
        if let Some(bad) = self
            .scopes_supported
            .iter()
            .find(|s| !crate::scope::is_scope_token(s))
        {
            return Err(EndpointConfigError::InvalidScope(bad.clone()));
        }
        let metadata = MetadataEndpoint::build(
            &MetadataConfig {
                issuer: self.issuer.issuer(),
                public_base_url: self.public_base_url.as_deref(),
                paths: &self.paths,
                scopes_supported: &self.scopes_supported,
                password_grant: self.verifier.is_some(),
                dpop_algs: self.dpop.as_ref().map(Dpop::algorithms_supported),
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
                password_verifier: self.verifier,
                proxies: self.proxies,
                max_body: self.max_body,
                limits,
                realm: self.realm,
                metadata,
                access_tokens,
                browser,
                dpop,
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
    /// A browser client's settings cannot work.
    #[error("browser client `{0}`: {1}")]
    BrowserClient(String, #[source] BrowserConfigError),
    /// A DPoP nonce is required but the [`Dpop`] has no nonces.
    #[error("a DPoP nonce is required but no nonces are configured")]
    DpopNoNonces,
    /// The token endpoint's public URL is no http(s) URL a proof's `htu`
    /// can name.
    #[error("the token endpoint's public URL cannot be a DPoP htu")]
    DpopUrl,
}
