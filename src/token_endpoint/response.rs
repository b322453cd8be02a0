//! RFC 6749 §5 responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::{
    dpop::DpopError,
    issuer::{CodeError, IssueError, TokenResponse},
    refresh::RefreshError,
};

/// An error answer of the token endpoint (RFC 6749 §5.2). The description
/// is a fixed sentence: never SQL, a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// 400 `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 401 `invalid_client`; `basic` when the client used HTTP Basic.
    #[error("invalid_client")]
    InvalidClient {
        /// Whether HTTP Basic was used.
        basic: bool,
    },
    /// 400 `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400 `unauthorized_client`.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// 400 `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// 400 `invalid_scope`.
    #[error("invalid_scope")]
    InvalidScope,
    /// 400 `invalid_target` (RFC 8707 §2): a `resource` that is malformed,
    /// unknown, or not one the client (or session) may ask for.
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// 413 `invalid_request`: the body is over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 405 `invalid_request`: not POST.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503 `temporarily_unavailable`: the store failed; retry.
    #[error("temporarily unavailable")]
    Unavailable,
    /// 400 `invalid_dpop_proof`, or `use_dpop_nonce` (RFC 9449 §5, §8):
    /// the DPoP proof failed a check; 503 when the replay cache cannot
    /// take it.
    #[error("DPoP proof refused: {0}")]
    Dpop(DpopError),
    /// 429 `temporarily_unavailable`: a rate limit or lockout of
    /// [`RateLimits`](super::RateLimits); retry after `retry_after`
    /// seconds.
    #[error("too many requests, retry after {retry_after} s")]
    TooManyRequests {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after: u64,
    },
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl TokenError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::PayloadTooLarge | Self::MethodNotAllowed => {
                "invalid_request"
            }
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::Unavailable
            | Self::TooManyRequests { .. }
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => {
                "temporarily_unavailable"
            }
            Self::Dpop(e) => e.error_code(),
        }
    }

    /// The `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::InvalidTarget(d) => d,
            Self::InvalidClient { .. } => "Client authentication failed",
            Self::UnsupportedGrantType => "The grant type is not supported",
            Self::InvalidScope => "The requested scope is invalid or exceeds the grant",
            Self::PayloadTooLarge => "The request body is too large",
            Self::MethodNotAllowed => "This endpoint accepts POST only",
            Self::Unavailable => "The service is temporarily unavailable, retry later",
            Self::TooManyRequests { .. } => "Too many requests, retry later",
            Self::Dpop(e) => e.description(),
        }
    }

    /// The JSON error response, with the headers RFC 6749 asks for.
    pub fn into_http_response(self, realm: &str) -> Response<Full<Bytes>> {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.code(),
            error_description: self.description(),
        })
        .unwrap_or_default();
        let mut res = json(self.status(), body);
        let h = res.headers_mut();
        match self {
            Self::InvalidClient { .. } => {
                // RFC 9110 §15.5.2: a 401 carries a challenge.
                if let Ok(v) = HeaderValue::try_from(format!("Basic realm=\"{realm}\"")) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Self::Unavailable
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::TooManyRequests { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        res
    }
}

/// A JSON response with `Cache-Control: no-store` and `Pragma: no-cache`
/// (RFC 6749 §5.1).
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut res = empty(status);
    *res.body_mut() = Full::new(Bytes::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A response with no body (so no content type), with RFC 6749's no-store
/// headers: what `/revoke` answers (RFC 7009 §2.2).
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// The RFC 6749 §5.2 response an application's own handler can return
/// (from a login route built on [`Issuer::issue`](crate::issuer::Issuer::issue),
/// say), answered as the endpoint would: JSON, no-store, and for
/// `invalid_client` a `WWW-Authenticate: Basic` challenge with realm
/// `tollgate`.
#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for TokenError {
    fn into_response(self) -> axum_core::response::Response {
        self.into_http_response("tollgate")
            .map(axum_core::body::Body::new)
    }
}

/// How an [`IssueError`] answers a client, as `/token` answers it: what
/// the client asked wrongly as its RFC 6749 §5.2 error (`invalid_scope`,
/// `invalid_target`, `invalid_grant`, `invalid_client`), what failed on
/// the server as `503 temporarily_unavailable` (logged, never described
/// to the client). An application's own login handler returns it as is.
impl From<IssueError> for TokenError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::InvalidScope | IssueError::Refresh(RefreshError::InvalidScope) => {
                Self::InvalidScope
            }
            IssueError::InvalidTarget | IssueError::Refresh(RefreshError::InvalidTarget) => {
                Self::InvalidTarget("The requested resource is not allowed for this client")
            }
            IssueError::Refresh(_) | IssueError::UnknownToken => {
                // One answer for unknown, revoked, reused, expired or bound
                // elsewhere: the client cannot tell which (RFC 6749 §5.2).
                Self::InvalidGrant("The refresh token is invalid, expired or revoked")
            }
            IssueError::Code(e) => Self::InvalidGrant(match e {
                CodeError::Verifier => "The code_verifier does not match the code_challenge",
                CodeError::RedirectUri => {
                    "The redirect_uri differs from the authorization request's"
                }
                CodeError::DpopKey => "The authorization code is bound to another DPoP key",
                // Unknown, expired, used or another client's: one answer,
                // as for refresh tokens.
                _ => "The authorization code is invalid, expired or used",
            }),
            IssueError::UnknownClient => Self::InvalidClient { basic: false },
            IssueError::ReservedSubject => {
                // The password verifier or the login handler named a
                // subject no user may have: the application's bug, told
                // to its log, not to the client.
                tracing::error!("tokens were asked for an empty or reserved subject");
                Self::InvalidGrant("The user cannot be signed in")
            }
            IssueError::Store(s) => super::client_auth::unavailable(&s),
            IssueError::Signing(_) => {
                tracing::error!(error = %e, "cannot sign access tokens");
                Self::Unavailable
            }
        }
    }
}

impl TokenResponse {
    /// The RFC 6749 §5.1 answer: JSON with `Cache-Control: no-store` and
    /// `Pragma: no-cache`. For a browser client, answer through
    /// [`TokenEndpoint::token_response`](super::TokenEndpoint::token_response)
    /// instead, which puts the refresh token in its cookie.
    pub fn into_http_response(self) -> Response<Full<Bytes>> {
        super::pipeline::ok_json(&self).unwrap_or_else(|e| e.into_http_response("tollgate"))
    }
}

/// [`TokenResponse::into_http_response`], for an axum handler.
#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for TokenResponse {
    fn into_response(self) -> axum_core::response::Response {
        self.into_http_response().map(axum_core::body::Body::new)
    }
}
