use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenConfigError, AccessTokenLayerBuilder, AuthError, InvalidToken, ResponseFuture,
    Verifier,
    error::ChallengeParams,
    extract::{Scheme, find_token},
    resource::{ProtectedResource, ResourceMetadataEndpoint},
    route::RequireScopeLayer,
};
use crate::{
    claims::{AccessClaims, RawClaims},
    dpop::{Dpop, DpopError, DpopKey, Expected, Htu, SharedClaim, proof_header},
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
    /// RFC 9470 step-up requirements, when the route has any.
    pub(crate) step_up: Option<StepUp>,
    /// The RFC 9728 resource, when configured.
    pub(crate) resource: Option<ProtectedResource>,
    /// `tollgate_gate_requests_total`, registered when built.
    pub(crate) counters: telemetry::GateCounters,
    pub(crate) cookie: Option<String>,
    /// DPoP, when on.
    pub(crate) dpop: Option<GateDpop>,
    /// A request without credentials goes through unmarked.
    pub(crate) optional: bool,
}

/// What a route asks of the user's authentication (RFC 9470).
#[derive(Debug)]
pub(crate) struct StepUp {
    /// Acceptable `acr` values; empty: any.
    pub(crate) acr_values: Vec<String>,
    /// The longest since `auth_time`, seconds.
    pub(crate) max_age: Option<u64>,
}

impl StepUp {
    /// Whether `claims` meet it at `now` (Unix seconds). A missing `acr`
    /// never satisfies an `acr` requirement, a missing `auth_time` never a
    /// `max_age` one.
    fn check(&self, claims: &AccessClaims, now: u64) -> Result<(), AuthError> {
        let acr_ok = self.acr_values.is_empty()
            || claims
                .acr
                .as_ref()
                .is_some_and(|acr| self.acr_values.contains(acr));
        let recent = self.max_age.is_none_or(|max| {
            claims
                .auth_time
                .is_some_and(|at| now.saturating_sub(at) <= max)
        });
        if acr_ok && recent {
            return Ok(());
        }
        Err(AuthError::InsufficientUserAuthentication {
            acr_values: (!self.acr_values.is_empty()).then(|| self.acr_values.join(" ")),
            max_age: self.max_age,
            recent_only: acr_ok,
        })
    }
}

/// A gate's DPoP settings.
pub(crate) struct GateDpop {
    pub(crate) dpop: Dpop,
    /// The public URL routes are reached under: `htu` = this + the path.
    pub(crate) base: Htu,
    pub(crate) nonce_required: bool,
}

/// What a request proved.
pub(crate) struct Admitted {
    pub(crate) claims: AccessClaims,
    /// Every claim as signed, for [`Claims`](crate::claims::Claims).
    pub(crate) raw: RawClaims,
    /// With the DPoP scheme: the key it proved.
    pub(crate) key: Option<DpopKey>,
    /// With a shared replay store: its verdict on the proof, still to
    /// come.
    pub(crate) pending: Option<SharedClaim>,
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

    /// The cookie the gate reads a token from, if any.
    pub(crate) fn cookie(&self) -> Option<&str> {
        self.shared.cookie.as_deref()
    }

    /// The scopes every request through this gate needs.
    pub(crate) fn required_scopes(&self) -> &[String] {
        &self.shared.required_scopes
    }

    /// A layer for one route (axum's `route_layer`, or any inner service
    /// of this gate) that needs every scope of `scopes` on top of what the
    /// gate requires: without one, this gate's own RFC 6750 answer — 403
    /// `insufficient_scope` with `scope="…"` naming the route's scopes
    /// (gRPC: 7 PERMISSION_DENIED); for a request the gate let through
    /// anonymously ([`optional`](AccessTokenLayerBuilder::optional)), 401
    /// with the same `scope`. No second gate, no second verification.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use tollgate::{AccessTokenLayer, Algorithm, SigningKey};
    ///
    /// let gate = AccessTokenLayer::builder()
    ///     .keys(SigningKey::hmac("k", Algorithm::HS256, &[7; 32]).unwrap())
    ///     .issuer("https://auth.example")
    ///     .audience("orders-api")
    ///     .build()
    ///     .unwrap();
    /// let app: Router = Router::new()
    ///     .route("/orders", get(|| async { "orders" }))
    ///     .route(
    ///         "/orders/export",
    ///         get(|| async { "csv" }).route_layer(gate.require_scope_layer(["orders:export"]).unwrap()),
    ///     )
    ///     .layer(gate);
    /// # let _ = app;
    /// ```
    pub fn require_scope_layer<I, S>(
        &self,
        scopes: I,
    ) -> Result<RequireScopeLayer, AccessTokenConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopeLayer::new(self.clone(), scopes)
    }

    /// A layer for routes behind an [`optional`](AccessTokenLayerBuilder::optional)
    /// gate that need a token after all: a request the gate let through
    /// anonymously gets the gate's 401 (gRPC: 16 UNAUTHENTICATED), one
    /// with verified claims goes on. Behind a gate that is not optional it
    /// changes nothing.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use tollgate::{AccessClaims, AccessTokenLayer, Algorithm, SigningKey};
    ///
    /// let gate = AccessTokenLayer::builder()
    ///     .keys(SigningKey::hmac("k", Algorithm::HS256, &[7; 32]).unwrap())
    ///     .issuer("https://auth.example")
    ///     .audience("shop")
    ///     .optional()
    ///     .build()
    ///     .unwrap();
    /// let app: Router = Router::new()
    ///     // Everyone sees the catalogue; a signed-in user, their prices.
    ///     .route(
    ///         "/catalogue",
    ///         get(|who: Option<AccessClaims>| async move {
    ///             who.map_or("list prices".to_owned(), |c| format!("prices for {}", c.sub))
    ///         }),
    ///     )
    ///     .route(
    ///         "/cart",
    ///         get(|c: AccessClaims| async move { c.sub }).route_layer(gate.require_token_layer()),
    ///     )
    ///     .layer(gate);
    /// # let _ = app;
    /// ```
    pub fn require_token_layer(&self) -> RequireScopeLayer {
        RequireScopeLayer::token_only(self.clone())
    }

    /// Finds a Bearer token in `headers`, verifies it and checks the
    /// required scopes. DPoP requests need the method and path as well:
    /// the middleware checks those.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, AuthError> {
        let s = &*self.shared;
        let (_, token) = find_token(
            headers,
            s.cookie.as_deref(),
            s.verifier.max_token_len,
            false,
        )?;
        let claims = s.verifier.verify(token)?;
        if claims.cnf.is_some() {
            return Err(AuthError::InvalidToken(InvalidToken::BoundToKey));
        }
        self.check_scopes(&claims)?;
        Ok(claims)
    }

    fn check_scopes(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let s = &*self.shared;
        if s.required_scopes.iter().any(|r| !claims.has_scope(r)) {
            // Every scope the route needs, so the client can ask for all
            // of them at once.
            return Err(AuthError::InsufficientScope {
                required: s.required_scopes.join(" "),
            });
        }
        match &s.step_up {
            Some(step_up) => step_up.check(
                claims,
                crate::time::unix_secs(s.verifier.revocations().now()),
            ),
            None => Ok(()),
        }
    }

    /// What the middleware does for each request: the token (Bearer, or
    /// DPoP with its proof), the scopes, and last the proof's replay
    /// check. Returns the scheme used alongside, for the challenge.
    pub(crate) fn admit(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> (Option<Scheme>, Result<Admitted, AuthError>) {
        let s = &*self.shared;
        let (scheme, token) = match find_token(
            headers,
            s.cookie.as_deref(),
            s.verifier.max_token_len,
            s.dpop.is_some(),
        ) {
            Ok(found) => found,
            Err(e) => return (None, Err(e)),
        };
        let result = match (scheme, &s.dpop) {
            (Scheme::Dpop, Some(dpop)) => self.admit_dpop(dpop, method, uri.path(), headers, token),
            _ => s.verifier.verify_with_raw(token).and_then(|(claims, raw)| {
                if claims.cnf.is_some() {
                    return Err(AuthError::InvalidToken(InvalidToken::BoundToKey));
                }
                self.check_scopes(&claims)?;
                Ok(Admitted {
                    claims,
                    raw,
                    key: None,
                    pending: None,
                })
            }),
        };
        (Some(scheme), result)
    }

    /// A DPoP request: the proof (but its replay), the token, the binding
    /// of one to the other, the scopes, then the replay claim.
    #[inline(never)]
    fn admit_dpop(
        &self,
        dpop: &GateDpop,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        token: &str,
    ) -> Result<Admitted, AuthError> {
        let s = &*self.shared;
        let now = s.verifier.revocations().now();
        let checker = &dpop.dpop.checker;
        let proof = proof_header(headers).map_err(AuthError::Dpop)?;
        let checked = checker
            .check(
                proof,
                &Expected {
                    method: method.as_str(),
                    url: &dpop.base,
                    path,
                    access_token: Some(token),
                    nonce_required: dpop.nonce_required,
                },
                now,
            )
            .map_err(AuthError::Dpop)?;
        let (claims, raw) = s.verifier.verify_with_raw(token)?;
        match &claims.cnf {
            None => return Err(AuthError::InvalidToken(InvalidToken::NotBound)),
            Some(cnf) if cnf.jkt != checked.jkt => {
                return Err(AuthError::Dpop(DpopError::KeyMismatch));
            }
            Some(_) => {}
        }
        self.check_scopes(&claims)?;
        let pending = checker.claim(&checked, now).map_err(AuthError::Dpop)?;
        Ok(Admitted {
            claims,
            raw,
            key: Some(DpopKey {
                thumbprint: checked.jkt,
            }),
            pending,
        })
    }

    /// A fresh `DPoP-Nonce` for a DPoP request's answer, when nonces are
    /// on.
    fn fresh_nonce(&self) -> Option<HeaderValue> {
        let s = &*self.shared;
        let dpop = s.dpop.as_ref()?;
        dpop.dpop
            .nonce(s.verifier.revocations().now())
            .and_then(|n| HeaderValue::try_from(n).ok())
    }

    /// Verifies a token: header, key by `kid`, signature, `exp`/`nbf`/`iat`,
    /// `iss`, `aud`, `typ`, `jti`, then the deny list.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.shared.verifier.verify(token)
    }

    fn reject<B: Default>(
        &self,
        error: AuthError,
        scheme: Option<Scheme>,
        headers: &HeaderMap,
    ) -> Response<B> {
        self.reject_as(error, scheme, is_grpc(headers))
    }

    /// The rejection of a gRPC (`grpc`) or HTTP request.
    fn reject_as<B: Default>(
        &self,
        error: AuthError,
        scheme: Option<Scheme>,
        grpc: bool,
    ) -> Response<B> {
        let scope = self.shared.challenge_scope.as_deref();
        self.reject_for(error, scheme, grpc, scope)
    }

    /// [`reject_as`](Self::reject_as) for a route that needs `scope`
    /// (space-separated) rather than the gate's own.
    pub(crate) fn reject_for<B: Default>(
        &self,
        error: AuthError,
        scheme: Option<Scheme>,
        grpc: bool,
        scope: Option<&str>,
    ) -> Response<B> {
        // Debug: every unauthenticated request would otherwise fill an
        // info log. `reason` is the metric's outcome label.
        tracing::debug!(reason = error.gate_outcome().as_str(), %error, "access token rejected");
        if let AuthError::Dpop(e) = &error {
            telemetry::dpop_refused(e.reason());
        }
        if cfg!(feature = "grpc") && grpc {
            error.into_grpc_response()
        } else {
            let s = &*self.shared;
            let nonce = match &error {
                AuthError::Dpop(DpopError::Nonce) => self.fresh_nonce(),
                _ => None,
            };
            error.into_http_response_with(&ChallengeParams {
                realm: s.realm.as_deref(),
                scope,
                resource_metadata: s.resource.as_ref().map(|r| r.metadata_url.as_str()),
                dpop_algs: s.dpop.as_ref().map(|d| d.dpop.algs()),
                scheme,
                dpop_nonce: nonce.as_ref().and_then(|n| n.to_str().ok()),
            })
        }
    }
}

impl<S> Layer<S> for AccessTokenLayer {
    type Service = RequireAccessToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAccessToken {
            inner,
            layer: self.clone(),
        }
    }
}

/// The middleware service produced by [`AccessTokenLayer`].
#[derive(Clone, Debug)]
pub struct RequireAccessToken<S> {
    inner: S,
    layer: AccessTokenLayer,
}

impl<S> RequireAccessToken<S> {
    /// Wraps `inner` with the gate.
    pub fn new(inner: S, layer: AccessTokenLayer) -> Self {
        Self { inner, layer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireAccessToken<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.layer.admit(req.method(), req.uri(), req.headers()) {
            (
                scheme,
                Ok(Admitted {
                    claims,
                    raw,
                    key,
                    pending,
                }),
            ) => {
                req.extensions_mut().insert(claims);
                req.extensions_mut().insert(raw);
                // A DPoP answer carries a fresh nonce when nonces are on.
                let nonce = key.as_ref().and_then(|_| self.layer.fresh_nonce());
                if let Some(key) = key {
                    req.extensions_mut().insert(key);
                }
                let Some(claim) = pending else {
                    self.layer.shared.counters.count(GateOutcome::Accepted);
                    return ResponseFuture::authorized(self.inner.call(req), nonce);
                };
                // The shared replay store decides before the inner service
                // runs: take the service that was made ready, leave a clone
                // (tower-http's async authorization does the same).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let (accept, refuse) = (self.layer.clone(), self.layer.clone());
                let grpc = is_grpc(req.headers());
                ResponseFuture::claiming(
                    claim,
                    Box::new(move || {
                        accept.shared.counters.count(GateOutcome::Accepted);
                        inner.call(req)
                    }),
                    Box::new(move |e| {
                        let error = AuthError::Dpop(e);
                        refuse.shared.counters.count(error.gate_outcome());
                        refuse.reject_as(error, scheme, grpc)
                    }),
                    nonce,
                )
            }
            (scheme, Err(error)) => {
                if self.layer.shared.optional && error == AuthError::MissingToken {
                    // Anonymous, and let through as such: no claims in
                    // the extensions, so every extractor and route-level
                    // requirement still refuses.
                    self.layer.shared.counters.count(GateOutcome::Anonymous);
                    return ResponseFuture::authorized(self.inner.call(req), None);
                }
                self.layer.shared.counters.count(error.gate_outcome());
                ResponseFuture::rejected(self.layer.reject(error, scheme, req.headers()))
            }
        }
    }
}

pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}
