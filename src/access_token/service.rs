use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response, header};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenLayerBuilder, AuthError, ResponseFuture, Verifier,
    error::ChallengeParams,
    extract::find_token,
    resource::{ProtectedResource, ResourceMetadataEndpoint},
};
use crate::{
    claims::AccessClaims,
    keys::Keys,
    revocation::RevocationCache,
    telemetry::{self, GateOutcome},
};

/// Everything a request needs, built once and shared read-only.
pub(crate) struct Shared {
    /// Checks the token itself.
    pub(crate) verifier: Verifier,
    pub(crate) realm: Option<String>,
    pub(crate) required_scopes: Vec<String>,
    /// The required scopes, space-separated, for 401 challenges.
    pub(crate) challenge_scope: Option<String>,
    /// The RFC 9728 resource, when configured.
    pub(crate) resource: Option<ProtectedResource>,
    /// `tollgate_gate_requests_total`, registered when built.
    pub(crate) counters: telemetry::GateCounters,
    pub(crate) cookie: Option<String>,
}

/// A Tower [`Layer`] that admits only requests carrying a valid, unrevoked
/// access token, and puts its [`AccessClaims`] into the request extensions.
///
/// Build it with [`AccessTokenLayer::builder`]. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct AccessTokenLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for AccessTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("AccessTokenLayer")
            .field("verifier", &s.verifier)
            .field("realm", &s.realm)
            .field("required_scopes", &s.required_scopes)
            .field("cookie", &s.cookie)
            .finish()
    }
}

impl AccessTokenLayer {
    /// Starts a builder.
    pub fn builder() -> AccessTokenLayerBuilder {
        AccessTokenLayerBuilder::default()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The deny list this gate consults.
    pub fn revocations(&self) -> &RevocationCache {
        self.shared.verifier.revocations()
    }

    /// The key handle this gate verifies with.
    pub fn keys(&self) -> &Keys {
        self.shared.verifier.keys()
    }

    /// The RFC 9728 protected-resource metadata of this gate, when it was
    /// built with a [`resource`](AccessTokenLayerBuilder::resource); mount
    /// it at [`ResourceMetadataEndpoint::well_known_path`], outside the gate.
    pub fn resource_metadata(&self) -> Option<ResourceMetadataEndpoint> {
        self.shared.resource.as_ref().map(|r| r.endpoint.clone())
    }

    /// The verifier this gate checks tokens with.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    /// Finds the token in `headers`, verifies it and checks the required
    /// scopes: exactly what the middleware does for each request.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, AuthError> {
        let s = &*self.shared;
        let token = find_token(headers, s.cookie.as_deref(), s.verifier.max_token_len)?;
        let claims = s.verifier.verify(token)?;
        if s.required_scopes.iter().any(|r| !claims.has_scope(r)) {
            // Every scope the route needs, so the client can ask for all
            // of them at once.
            return Err(AuthError::InsufficientScope {
                required: s.required_scopes.join(" "),
            });
        }
        Ok(claims)
    }

    /// Verifies a token: header, key by `kid`, signature, `exp`/`nbf`/`iat`,
    /// `iss`, `aud`, `typ`, `jti`, then the deny list.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.shared.verifier.verify(token)
    }

    fn reject<B: Default>(&self, error: AuthError, headers: &HeaderMap) -> Response<B> {
        // Debug: every unauthenticated request would otherwise fill an
        // info log. `reason` is the metric's outcome label.
        tracing::debug!(reason = error.gate_outcome().as_str(), %error, "access token rejected");
        if cfg!(feature = "grpc") && is_grpc(headers) {
            error.into_grpc_response()
        } else {
            let s = &*self.shared;
            error.into_http_response_with(&ChallengeParams {
                realm: s.realm.as_deref(),
                scope: s.challenge_scope.as_deref(),
                resource_metadata: s.resource.as_ref().map(|r| r.metadata_url.as_str()),
            })
        }
    }
}

impl<S> Layer<S> for AccessTokenLayer {
    type Service = AccessToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessToken {
            inner,
            layer: self.clone(),
        }
    }
}

/// The middleware service produced by [`AccessTokenLayer`].
#[derive(Clone, Debug)]
pub struct AccessToken<S> {
    inner: S,
    layer: AccessTokenLayer,
}

impl<S> AccessToken<S> {
    /// Wraps `inner` with the gate.
    pub fn new(inner: S, layer: AccessTokenLayer) -> Self {
        Self { inner, layer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AccessToken<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.layer.authenticate(req.headers()) {
            Ok(claims) => {
                self.layer.shared.counters.count(GateOutcome::Accepted);
                req.extensions_mut().insert(claims);
                ResponseFuture::authorized(self.inner.call(req))
            }
            Err(error) => {
                self.layer.shared.counters.count(error.gate_outcome());
                ResponseFuture::rejected(self.layer.reject(error, req.headers()))
            }
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}
