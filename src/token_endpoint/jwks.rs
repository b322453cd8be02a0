//! `/.well-known/jwks.json`: the public verification keys (RFC 7517).

use std::{
    convert::Infallible,
    future::{Ready, ready},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use tower_service::Service;

use crate::{document::Document, keys::Keys};

/// Default `max-age` of the JWKS response: 5 minutes.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// Serves the current public keys as a JWK set, so other services can
/// verify the access tokens (asymmetric algorithms only; HMAC secrets are
/// never published).
///
/// Answers GET and HEAD with `Cache-Control: public, max-age=…` and a
/// strong `ETag`, and `304 Not Modified` to a matching `If-None-Match`.
/// The set is read on every request, so a key rotation shows at once;
/// publish a new key at least `max-age` before signing with it.
///
/// ```
/// use http::{Request, StatusCode};
/// use tollgate::{keys::{Algorithm, KeySet, SigningKey}, token_endpoint::JwksEndpoint};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let key = SigningKey::from_pem("2026-11", Algorithm::EdDSA, include_bytes!("../../tests/keys/ed25519.pem")).unwrap();
/// let jwks = JwksEndpoint::new(KeySet::builder().signing_key(key).build().unwrap());
/// let res = jwks.oneshot(Request::get("/.well-known/jwks.json").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// assert_eq!(res.headers()["cache-control"], "public, max-age=300");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct JwksEndpoint {
    keys: Keys,
    max_age: Duration,
}

impl JwksEndpoint {
    /// Serves these keys (a [`Keys`] handle follows its rotations).
    pub fn new(keys: impl Into<Keys>) -> Self {
        Self {
            keys: keys.into(),
            max_age: DEFAULT_JWKS_MAX_AGE,
        }
    }

    /// How long clients and caches may reuse the answer. Default
    /// [`DEFAULT_JWKS_MAX_AGE`].
    #[must_use]
    pub fn max_age(self, max_age: Duration) -> Self {
        Self { max_age, ..self }
    }

    fn answer(&self, method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
        // Read on every request, so a rotation shows at once.
        Document::json(&self.keys.jwks(), self.max_age)
            .answer(method, headers)
            .map(Full::from)
    }
}

impl<B> Service<Request<B>> for JwksEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.answer(req.method(), req.headers())))
    }
}
