use std::{
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

use super::{
    PasswordVerifier, TokenError,
    client_auth::{self, unavailable},
    form::Form,
    response::json,
};
use crate::{
    access_token::is_quotable,
    binding::{TrustedProxies, peer_addr},
    issuer::{ClientMeta, IssueError, Issuer, TokenResponse},
    refresh::RefreshError,
};

/// Default cap on a token request body: 16 KiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;

/// Default time a client row is cached: 5 seconds.
pub const DEFAULT_CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

struct Inner {
    issuer: Issuer,
    clients: client_auth::ClientCache,
    verifier: Option<Arc<dyn PasswordVerifier>>,
    proxies: TrustedProxies,
    max_body: usize,
    realm: String,
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
            .field("password_grant", &self.inner.verifier.is_some())
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
        }
    }

    async fn handle<B>(&self, req: Request<B>) -> Result<TokenResponse, TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        if req.method() != Method::POST {
            return Err(TokenError::MethodNotAllowed);
        }
        check_content_type(req.headers())?;
        if content_length(req.headers()).is_some_and(|n| n > inner.max_body as u64) {
            return Err(TokenError::PayloadTooLarge);
        }
        let meta = ClientMeta {
            ip: peer_addr(&req).map(|peer| inner.proxies.client_ip(peer, req.headers())),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..ClientMeta::default()
        };
        let basic = client_auth::basic_credentials(req.headers())?;
        let body = Limited::new(req.into_body(), inner.max_body)
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
        let form = Form::parse(&body)?;
        let grant_type = form.require("grant_type", "The grant_type parameter is missing")?;
        let presented = client_auth::presented(basic, &form)?;
        let client =
            client_auth::authenticate(inner.issuer.db(), &inner.clients, &presented).await?;
        let confidential = client.secret_hash.is_some();
        let scope = form.get("scope");
        let result = match grant_type {
            "refresh_token" => {
                let token =
                    form.require("refresh_token", "The refresh_token parameter is missing")?;
                inner.issuer.refresh(&client, token, scope, &meta).await
            }
            "password" => {
                let Some(verifier) = &inner.verifier else {
                    return Err(TokenError::UnsupportedGrantType);
                };
                if !client.allow_password {
                    return Err(TokenError::UnauthorizedClient(
                        "The client may not use the password grant",
                    ));
                }
                let username = form.require("username", "The username parameter is missing")?;
                let password = form.require("password", "The password parameter is missing")?;
                let subject = verifier
                    .verify(username, password)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "password verifier failed");
                        TokenError::Unavailable
                    })?
                    .ok_or(TokenError::InvalidGrant(
                        "The username or password is incorrect",
                    ))?;
                inner
                    .issuer
                    .issue_for(&client, &subject, scope, &meta)
                    .await
            }
            "client_credentials" => {
                if !confidential || !client.allow_client_credentials {
                    return Err(TokenError::UnauthorizedClient(
                        "The client may not use the client_credentials grant",
                    ));
                }
                inner.issuer.client_credentials(&client, scope)
            }
            _ => return Err(TokenError::UnsupportedGrantType),
        };
        result.map_err(|e| grant_error(&e))
    }
}

fn grant_error(e: &IssueError) -> TokenError {
    match e {
        IssueError::InvalidScope | IssueError::Refresh(RefreshError::InvalidScope) => {
            TokenError::InvalidScope
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Service<Request<B>> for TokenEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            Ok(match this.handle(req).await {
                Ok(tokens) => match serde_json::to_vec(&tokens) {
                    Ok(body) => json(StatusCode::OK, body),
                    Err(_) => TokenError::Unavailable.into_response(&this.inner.realm),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "token request refused");
                    e.into_response(&this.inner.realm)
                }
            })
        })
    }
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
}

impl fmt::Debug for TokenEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpointBuilder")
            .field("max_body", &self.max_body)
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

    /// Checks the settings and builds the endpoint.
    pub fn build(self) -> Result<TokenEndpoint, EndpointConfigError> {
        if !is_quotable(&self.realm) {
            return Err(EndpointConfigError::InvalidRealm);
        }
        if self.max_body == 0 {
            return Err(EndpointConfigError::ZeroBodyLimit);
        }
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
                verifier: self.verifier,
                proxies: self.proxies,
                max_body: self.max_body,
                realm: self.realm,
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
}
