//! axum integration: [`AccessClaims`] as an extractor and [`AuthError`] as a
//! response.

use axum_core::{
    body::Body,
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, header, request::Parts};

use serde::de::DeserializeOwned;

use super::{AuthError, InvalidToken};
use crate::claims::{AccessClaims, Claims, RawClaims};

/// Reads the claims the [`AccessTokenLayer`](super::AccessTokenLayer) put
/// into the request. Without them (the route is not behind the layer) the
/// request is refused with the same RFC 6750 401, never let through.
impl<S: Send + Sync> FromRequestParts<S> for AccessClaims {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AccessClaims>() {
            Some(claims) => Ok(claims.clone()),
            None => {
                tracing::warn!("AccessClaims extracted on a route without AccessTokenLayer");
                Err(AuthError::MissingToken)
            }
        }
    }
}

/// `Option<AccessClaims>`: `None` when the request was not authenticated.
impl<S: Send + Sync> OptionalFromRequestParts<S> for AccessClaims {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AccessClaims>().cloned())
    }
}

/// Deserializes the verified token's claims into `T`. Without them (the
/// route is not behind the layer) the same RFC 6750 401 as
/// [`AccessClaims`]; claims that do not fit `T` are 401 `invalid_token`
/// (the token cannot serve this route), never a 500.
impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.extensions.get::<RawClaims>() else {
            tracing::warn!("Claims extracted on a route without AccessTokenLayer");
            return Err(AuthError::MissingToken);
        };
        raw.deserialize().map(Claims).map_err(|_| {
            // The serde message may quote claim values: not logged.
            tracing::debug!(
                into = std::any::type_name::<T>(),
                "the token's claims do not fit the handler's type"
            );
            AuthError::InvalidToken(InvalidToken::UnfitClaims)
        })
    }
}

/// `Option<Claims<T>>`: `None` when the request was not authenticated or
/// its claims do not fit `T`.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequestParts<S> for Claims<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RawClaims>()
            .and_then(|raw| raw.deserialize().ok())
            .map(Claims))
    }
}

/// The RFC 6750 response, with a JSON body carrying the same `error` and
/// `error_description` as the challenge.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = match (self.error_code(), self.description()) {
            (Some(code), Some(desc)) => {
                serde_json::json!({ "error": code, "error_description": desc }).to_string()
            }
            _ => String::new(),
        };
        let json = !body.is_empty();
        let mut res = self.into_http_response::<Body>(None);
        *res.body_mut() = Body::from(body);
        if json {
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        res
    }
}
