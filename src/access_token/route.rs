//! A route's own scope requirement, behind the gate: the claims the gate
//! put into the extensions are checked, and a refusal is the gate's own
//! answer with the route's scopes.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenConfigError, AccessTokenLayer, AuthError, ResponseFuture, extract::Scheme,
    service::is_grpc,
};
use crate::{claims::AccessClaims, dpop::DpopKey, scope};

/// Requires scopes of one route, or only a token; from
/// [`AccessTokenLayer::require_scope_layer`] and
/// [`AccessTokenLayer::require_token_layer`]. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    gate: AccessTokenLayer,
    scopes: Arc<[String]>,
    /// The gate's and the route's scopes, space-separated, for the
    /// challenge; `None` when neither needs one.
    challenge: Option<Arc<str>>,
}

impl RequireScopeLayer {
    pub(super) fn new<I, S>(
        gate: AccessTokenLayer,
        scopes: I,
    ) -> Result<Self, AccessTokenConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Arc<[String]> = scopes.into_iter().map(Into::into).collect();
        if scopes.is_empty() {
            return Err(AccessTokenConfigError::InvalidScope(String::new()));
        }
        Self::checked(gate, scopes)
    }

    /// Only a token, no scope beyond the gate's.
    pub(super) fn token_only(gate: AccessTokenLayer) -> Self {
        Self::checked(gate, Arc::from([])).expect("no scope to refuse")
    }

    fn checked(
        gate: AccessTokenLayer,
        scopes: Arc<[String]>,
    ) -> Result<Self, AccessTokenConfigError> {
        if let Some(bad) = scopes.iter().find(|s| !scope::is_scope_token(s)) {
            return Err(AccessTokenConfigError::InvalidScope(bad.clone()));
        }
        // The gate's own requirements hold anyway; the challenge names
        // everything the route needs.
        let mut all: Vec<&str> = gate.required_scopes().iter().map(String::as_str).collect();
        for s in scopes.iter() {
            if !all.contains(&s.as_str()) {
                all.push(s);
            }
        }
        let challenge = (!all.is_empty()).then(|| all.join(" ").into());
        Ok(Self {
            gate,
            scopes,
            challenge,
        })
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`RequireScopeLayer`].
#[derive(Clone, Debug)]
pub struct RequireScope<S> {
    inner: S,
    layer: RequireScopeLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
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

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let l = &self.layer;
        let error = match req.extensions().get::<AccessClaims>() {
            Some(claims) if l.scopes.iter().all(|s| claims.has_scope(s)) => {
                return ResponseFuture::authorized(self.inner.call(req), None);
            }
            Some(_) => AuthError::InsufficientScope {
                required: l.challenge.as_deref().unwrap_or_default().to_owned(),
            },
            // Anonymous (an optional gate let it through), or a route not
            // behind the gate at all: never let through.
            None => AuthError::MissingToken,
        };
        let scheme = match (&error, req.extensions().get::<DpopKey>()) {
            (AuthError::MissingToken, _) => None,
            (_, Some(_)) => Some(Scheme::Dpop),
            (_, None) => Some(Scheme::Bearer),
        };
        let grpc = is_grpc(req.headers());
        ResponseFuture::rejected(
            l.gate
                .reject_for(error, scheme, grpc, l.challenge.as_deref()),
        )
    }
}
