//! `/.well-known/jwks.json`: the public verification keys (RFC 7517).

use std::{
    convert::Infallible,
    future::{Ready, ready},
    task::{Context, Poll},
    time::Duration,
};

use aws_lc_rs::digest;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tower_service::Service;

use crate::keys::Keys;

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
    cache_control: HeaderValue,
}

impl JwksEndpoint {
    /// Serves these keys (a [`Keys`] handle follows its rotations).
    pub fn new(keys: impl Into<Keys>) -> Self {
        Self {
            keys: keys.into(),
            cache_control: cache_control(DEFAULT_JWKS_MAX_AGE),
        }
    }

    /// How long clients and caches may reuse the answer. Default
    /// [`DEFAULT_JWKS_MAX_AGE`].
    #[must_use]
    pub fn max_age(self, max_age: Duration) -> Self {
        Self {
            cache_control: cache_control(max_age),
            ..self
        }
    }

    fn answer(&self, method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let body = serde_json::to_vec(&self.keys.jwks()).unwrap_or_default();
        let hash = digest::digest(&digest::SHA256, &body);
        let etag = format!("\"{}\"", crate::b64url::encode(&hash.as_ref()[..18]));
        let not_modified = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == etag || tag == "*");
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, Bytes::new())
        } else if method == Method::HEAD {
            (StatusCode::OK, Bytes::new())
        } else {
            (StatusCode::OK, Bytes::from(body))
        };
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, self.cache_control.clone());
        if let Ok(etag) = HeaderValue::try_from(etag) {
            h.insert(header::ETAG, etag);
        }
        res
    }
}

fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
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
