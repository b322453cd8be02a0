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
    TokenEndpointBuilder, TokenError,
    client_auth::{self, unavailable},
    cookie::{RefreshCookie, body_or_cookie},
    dpop::{DPOP_NONCE, EndpointDpop},
    form::Form,
    grant::{self, ClientGrants, Grant, GrantType},
    limits::Limiters,
    metadata::MetadataEndpoint,
    password::{CheckError, Passwords},
    response::json,
};
use crate::{
    access_token::Verifier,
    binding::{TrustedProxies, peer_addr},
    dpop::DpopError,
    events::SecurityEvent,
    issuer::{ClientMeta, IssueError, Issuer, Requested, TokenResponse},
    refresh::RefreshError,
    store::clients::Client,
    telemetry,
};

/// Default cap on a token request body: 16 KiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;

/// Default time a client row is cached: 5 seconds.
pub const DEFAULT_CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

pub(crate) struct Inner {
    pub(crate) issuer: Issuer,
    pub(super) clients: client_auth::ClientCache,
    pub(super) passwords: Option<Passwords>,
    pub(super) proxies: TrustedProxies,
    pub(super) max_body: usize,
    pub(super) limits: Limiters,
    pub(crate) realm: String,
    pub(super) metadata: MetadataEndpoint,
    /// Verifies access tokens presented to `/revoke` and `/introspect`
    /// as the issuer's own gate would: its keys, `iss` and `aud`, and its
    /// deny list.
    pub(crate) access_tokens: Verifier,
    /// Browser clients by id: their refresh cookie and origins.
    pub(super) browser: HashMap<String, RefreshCookie>,
    /// DPoP, when on.
    pub(super) dpop: Option<EndpointDpop>,
}

/// A request to one of the endpoints, read and checked up to client
/// authentication.
pub(crate) struct Incoming {
    pub(crate) form: Form,
    pub(crate) basic: Option<client_auth::Presented>,
    pub(crate) meta: ClientMeta,
    /// The request's headers, for the checks that can run only once the
    /// client is known (a browser client's Origin and cookie, DPoP).
    pub(crate) headers: HeaderMap,
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
        let (parts, body) = req.into_parts();
        let body = Limited::new(body, self.max_body)
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
            headers: parts.headers,
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
        Ok(client)
    }

    /// A browser client's cookie settings, once its request has passed
    /// the CSRF checks; `None` for every other client. A refusal is
    /// counted and reported, and happens before any token is looked at.
    /// Then the request counts against the client's rate limit: a forged
    /// request spends nothing of it.
    pub(crate) fn admit(
        &self,
        client: &Client,
        headers: &HeaderMap,
        meta: &ClientMeta,
    ) -> Result<Option<&RefreshCookie>, TokenError> {
        let cookie = self.browser.get(&client.client_id);
        if let Some(cookie) = cookie {
            cookie.check(headers).map_err(|refusal| {
                telemetry::csrf_refused(refusal.as_str());
                self.issuer.events().emit(SecurityEvent::CsrfRefused {
                    client_id: client.client_id.clone(),
                    reason: refusal.as_str(),
                    ip: meta.ip,
                });
                refusal.error()
            })?;
        }
        self.limited(
            self.limits
                .client(&client.client_id, client.is_confidential(), meta.ip),
            "requests_per_client",
            meta,
        )?;
        Ok(cookie)
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
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("issuer", &self.inner.issuer)
            .field("password_grant", &self.inner.passwords.is_some())
            .field("proxies", &self.inner.proxies)
            .field("max_body", &self.inner.max_body)
            .finish()
    }
}

impl TokenEndpoint {
    /// Starts a builder over an [`Issuer`].
    pub fn builder(issuer: Issuer) -> TokenEndpointBuilder {
        TokenEndpointBuilder::new(issuer)
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
            headers,
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
        let cookie = inner.admit(&client, &headers, &meta)?;
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
            inner.passwords.is_some(),
        )?;
        let grant = Grant::read(grant_type, &form)?;
        let proof = inner.dpop_proof(&client, &headers)?;
        inner.claim_dpop(proof.as_ref()).await?;
        let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let result = match grant {
            Grant::RefreshToken {
                refresh_token,
                scope,
                resources,
            } => {
                let from_cookie = cookie.map(|c| c.read(&headers)).transpose()?.flatten();
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
    /// limits and the bound on checks at once. The attempt counts against
    /// the lockouts before the password is checked; a right password, or
    /// one that could not be checked, gives it back.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        meta: &ClientMeta,
    ) -> Result<String, TokenError> {
        // `permit` refused the grant when no verifier is configured.
        let passwords = self
            .passwords
            .as_ref()
            .ok_or(TokenError::UnsupportedGrantType)?;
        let attempt = self
            .limits
            .password_attempt(username, meta.ip)
            .inspect_err(|_| {
                telemetry::lockout();
                self.issuer.events().emit(SecurityEvent::UserLockedOut {
                    username: username.to_owned(),
                    ip: meta.ip,
                });
            })?;
        match passwords.check(username, password).await {
            Ok(Some(subject)) => {
                self.limits.password_forgiven(attempt);
                Ok(subject)
            }
            Ok(None) => Err(TokenError::InvalidGrant(
                "The username or password is incorrect",
            )),
            Err(e) => {
                self.limits.password_forgiven(attempt);
                match e {
                    CheckError::Busy => {
                        telemetry::rate_limited("password_checks");
                        self.issuer.events().emit(SecurityEvent::RateLimited {
                            limit: "password_checks",
                            ip: meta.ip,
                        });
                    }
                    CheckError::Verifier(e) => {
                        tracing::error!(error = %e, "password verifier failed");
                    }
                }
                Err(TokenError::Unavailable)
            }
        }
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
        IssueError::ReservedSubject => {
            // The verifier named a subject no user may have: the
            // application's bug, told to its log, not to the client.
            tracing::error!("the password verifier returned an empty or reserved subject");
            TokenError::InvalidGrant("The user cannot be signed in")
        }
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
        // A fresh nonce for the next proof, to a client that sent one (its
        // token is bound); computed for no one else.
        let nonce = (tokens.token_type == "DPoP")
            .then(|| self.inner.dpop_nonce())
            .flatten()
            .map(|n| (DPOP_NONCE, n));
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
