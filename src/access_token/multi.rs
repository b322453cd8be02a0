//! One gate for several issuers (multi-tenant): each token goes to the
//! gate of the issuer its payload names, which verifies it with that
//! issuer's keys, audience and claim profile alone.

use std::{
    mem::MaybeUninit,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenConfigError, AccessTokenLayer, RequireAccessToken, ResponseFuture,
    extract::find_token, verify::Compact,
};
use crate::b64url;

/// Several [`AccessTokenLayer`]s, one per issuer, as one layer. The
/// issuer a token claims (its `iss`, read before anything is verified)
/// only picks the gate; that gate then checks everything, its signature
/// with that issuer's keys only and `iss` again, so a token can never be
/// judged by another issuer's rules. A request without a token, or whose
/// `iss` names no gate here, is answered by the first gate (a token of an
/// unknown issuer: 401 `invalid_token`). Cloning is cheap.
///
/// ```
/// use tollgate::{AccessTokenLayer, Algorithm, SigningKey, access_token::MultiIssuerLayer};
///
/// let gate = |iss: &str, secret: u8| {
///     AccessTokenLayer::builder()
///         .keys(SigningKey::hmac("k", Algorithm::HS256, &[secret; 32]).unwrap())
///         .issuer(iss)
///         .audience("orders-api")
///         .build()
///         .unwrap()
/// };
/// let gates = MultiIssuerLayer::new([
///     gate("https://login.tenant-a.example", 1),
///     gate("https://login.tenant-b.example", 2),
/// ])
/// .unwrap();
/// let app: axum::Router = axum::Router::new()
///     .route("/orders", axum::routing::get(|| async { "orders" }))
///     .layer(gates);
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct MultiIssuerLayer {
    gates: Arc<[AccessTokenLayer]>,
}

impl MultiIssuerLayer {
    /// One gate per issuer, the first answering what no other claims.
    pub fn new(
        gates: impl IntoIterator<Item = AccessTokenLayer>,
    ) -> Result<Self, AccessTokenConfigError> {
        let gates: Arc<[AccessTokenLayer]> = gates.into_iter().collect();
        if gates.is_empty() {
            return Err(AccessTokenConfigError::NoIssuers);
        }
        for (i, g) in gates.iter().enumerate() {
            let iss = &g.verifier().issuer;
            if gates[..i].iter().any(|o| o.verifier().issuer == *iss) {
                return Err(AccessTokenConfigError::DuplicateIssuer(iss.clone()));
            }
        }
        Ok(Self { gates })
    }

    /// The gates, in order.
    pub fn gates(&self) -> &[AccessTokenLayer] {
        &self.gates
    }

    /// The gate for the token in `headers`: the one of the issuer it
    /// claims, or the first.
    fn pick(&self, headers: &HeaderMap) -> usize {
        let first = &self.gates[0];
        let v = first.verifier();
        // Every way any of the gates reads a token (DPoP included); the
        // chosen gate reads it again under its own settings.
        let cookie = self.gates.iter().find_map(|g| g.cookie());
        let Ok((_, token)) = find_token(headers, cookie, v.max_token_len, true) else {
            return 0;
        };
        let Some(iss) = claimed_issuer(token) else {
            return 0;
        };
        self.gates
            .iter()
            .position(|g| g.verifier().issuer == iss)
            .unwrap_or(0)
    }
}

/// The `iss` a compact JWS's payload claims, unverified: only ever used
/// to pick which issuer's gate verifies it.
fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = Compact::split(token)?.payload_b64;
    let mut buf = vec![MaybeUninit::uninit(); payload.len()];
    let json = b64url::decode(payload, &mut buf)?;
    serde_json::from_slice::<Iss>(&json).ok().map(|c| c.iss)
}

impl<S: Clone> Layer<S> for MultiIssuerLayer {
    type Service = MultiIssuer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MultiIssuer {
            gates: self.gates.iter().map(|g| g.layer(inner.clone())).collect(),
            layer: self.clone(),
        }
    }
}

/// The service of a [`MultiIssuerLayer`].
#[derive(Clone, Debug)]
pub struct MultiIssuer<S> {
    gates: Vec<RequireAccessToken<S>>,
    layer: MultiIssuerLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MultiIssuer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Whichever gate the next request goes to, its service is ready.
        for g in &mut self.gates {
            if g.poll_ready(cx)?.is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let i = self.layer.pick(req.headers());
        self.gates[i].call(req)
    }
}
