//! What `/token`, `/revoke` and `/introspect` share, up to the point
//! where each does its own work: the settings they run on (`Inner`),
//! reading a request (POST, form-encoded, size-limited, parsed strictly),
//! the rate limits, client authentication, and a browser client's CSRF
//! checks; then the one way each answers (`Answer`, `respond`).

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use super::{
    TokenError, client_auth,
    cookie::RefreshCookie,
    dpop::EndpointDpop,
    form::Form,
    limits::Limiters,
    metadata::{EndpointPaths, MetadataEndpoint},
    password::Passwords,
    response::json,
};
use crate::{
    access_token::Verifier,
    binding::{TrustedProxies, peer_addr},
    events::SecurityEvent,
    issuer::{Issuer, RequestContext},
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
    /// Where the routes are mounted.
    pub(super) paths: EndpointPaths,
    /// Whether the first request is still to check that a janitor runs.
    pub(super) janitor_unchecked: AtomicBool,
    /// The authorization endpoint's settings, when it is on.
    pub(super) authorization: Option<Arc<super::authorize::Authorization>>,
    /// Client ID Metadata Documents, when they are accepted.
    #[cfg(feature = "client-metadata")]
    pub(super) documents: Option<super::documents::MetadataDocuments>,
    /// Dynamic client registration, when it is on.
    pub(super) registration: Option<super::registration::DynamicRegistration>,
}

/// A request to one of the endpoints, read and checked up to client
/// authentication.
pub(crate) struct Incoming {
    pub(crate) form: Form,
    pub(crate) basic: Option<client_auth::Presented>,
    pub(crate) meta: RequestContext,
    /// The request's headers, for the checks that can run only once the
    /// client is known (a browser client's Origin and cookie, DPoP).
    pub(crate) headers: HeaderMap,
}

impl Inner {
    /// At the first request, warns when no janitor from the issuer's
    /// `janitor()` runs (and none was said to run elsewhere): without one
    /// the tables only grow.
    pub(crate) fn check_janitor(&self) {
        if self.janitor_unchecked.load(Ordering::Relaxed)
            && self.janitor_unchecked.swap(false, Ordering::Relaxed)
            && !self.issuer.janitor_started()
        {
            tracing::warn!(
                "no janitor runs in this process: expired and revoked sessions are never \
                 deleted; spawn `issuer.janitor().build().spawn()`, or say \
                 `janitor_elsewhere()` on the endpoint builder if another instance runs it"
            );
        }
    }

    /// The client's IP (through the trusted proxies) and User-Agent.
    pub(crate) fn request_context(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> RequestContext {
        RequestContext {
            ip: peer.map(|peer| self.proxies.client_ip(peer, headers)),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..RequestContext::default()
        }
    }

    /// POST, form-encoded, within the size limit, parsed strictly.
    pub(crate) async fn read<B>(&self, req: Request<B>) -> Result<Incoming, TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if req.method() != Method::POST {
            return Err(TokenError::MethodNotAllowed);
        }
        let meta = self.request_context(peer_addr(&req), req.headers());
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
        meta: &RequestContext,
    ) -> Result<Arc<Client>, TokenError> {
        self.limited(
            self.limits.client_auth_allowed(meta.ip),
            "failed_client_auth_per_ip",
            meta,
        )?;
        let presented = client_auth::presented(basic, form)?;
        let client = client_auth::authenticate(
            self.issuer.db(),
            &self.clients,
            &presented,
            self.issuer.now(),
        )
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
        meta: &RequestContext,
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
    pub(super) fn limited(
        &self,
        verdict: Result<(), TokenError>,
        limit: &'static str,
        meta: &RequestContext,
    ) -> Result<(), TokenError> {
        verdict.inspect_err(|_| {
            telemetry::rate_limited(limit);
            self.issuer
                .events()
                .emit(SecurityEvent::RateLimited { limit, ip: meta.ip });
        })
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

pub(crate) use crate::error::BoxError;

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

/// The one `Service` every endpoint is: always ready, never failing, its
/// answer a boxed future. `$ty: respond` for an [`Answer`] (whose errors
/// become RFC 6749 responses); `$ty: answer` for a type with its own
/// `async fn answer(&self, req) -> Response<Full<Bytes>>`.
macro_rules! endpoint_service {
    ($ty:ty: $how:ident) => {
        impl<B> tower_service::Service<http::Request<B>> for $ty
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<crate::token_endpoint::pipeline::BoxError>,
        {
            type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
            type Error = std::convert::Infallible;
            type Future = crate::token_endpoint::pipeline::EndpointFuture;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                crate::token_endpoint::pipeline::endpoint_service!(@call $how, self.clone(), req)
            }
        }
    };
    (@call respond, $this:expr, $req:ident) => {
        crate::token_endpoint::pipeline::respond($this, $req)
    };
    (@call answer, $this:expr, $req:ident) => {{
        let this = $this;
        Box::pin(async move { Ok(this.answer($req).await) })
    }};
}
pub(super) use endpoint_service;

/// A 200 JSON answer (with RFC 6749's no-store headers).
pub(crate) fn ok_json<T: serde::Serialize>(value: &T) -> Result<Response<Full<Bytes>>, TokenError> {
    serde_json::to_vec(value)
        .map(|body| json(StatusCode::OK, body))
        .map_err(|_| TokenError::Unavailable)
}
