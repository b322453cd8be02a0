use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response, header};
use jsonwebtoken::{Validation, errors::ErrorKind};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenLayerBuilder, AuthError, InvalidToken, ResponseFuture, extract::find_token,
};
use crate::{
    claims::AccessClaims,
    keys::{Algorithm, Keys},
    revocation::RevocationCache,
};

/// Everything a request needs, built once and shared read-only.
pub(crate) struct Shared {
    pub(crate) keys: Keys,
    /// One precomputed validation per allowed algorithm, each allowing only
    /// that algorithm.
    pub(crate) validations: Vec<(Algorithm, Validation)>,
    pub(crate) leeway: u64,
    /// Normalized accepted `typ` values; `None` accepts any.
    pub(crate) token_types: Option<Vec<String>>,
    pub(crate) realm: Option<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) cookie: Option<String>,
    pub(crate) revocations: RevocationCache,
    pub(crate) max_token_len: usize,
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
            .field("keys", &s.keys)
            .field(
                "algorithms",
                &s.validations.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("leeway", &s.leeway)
            .field("token_types", &s.token_types)
            .field("realm", &s.realm)
            .field("required_scopes", &s.required_scopes)
            .field("cookie", &s.cookie)
            .field("revocations", &s.revocations)
            .finish()
    }
}

impl AccessTokenLayer {
    /// Starts a builder.
    pub fn builder() -> AccessTokenLayerBuilder {
        AccessTokenLayerBuilder::default()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        crate::keys::install_crypto_provider();
        Self { shared }
    }

    /// The deny list this gate consults.
    pub fn revocations(&self) -> &RevocationCache {
        &self.shared.revocations
    }

    /// The key handle this gate verifies with.
    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// Finds the token in `headers`, verifies it and checks the required
    /// scopes: exactly what the middleware does for each request.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, AuthError> {
        let s = &*self.shared;
        let token = find_token(headers, s.cookie.as_deref(), s.max_token_len)?;
        let claims = self.verify(token)?;
        if let Some(missing) = s.required_scopes.iter().find(|r| !claims.has_scope(r)) {
            return Err(AuthError::InsufficientScope {
                required: missing.clone(),
            });
        }
        Ok(claims)
    }

    /// Verifies a token: header, key by `kid`, signature, `exp`/`nbf`/`iat`,
    /// `iss`, `aud`, `typ`, `jti`, then the deny list.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let s = &*self.shared;
        let invalid = |why| AuthError::InvalidToken(why);
        if token.len() > s.max_token_len {
            return Err(invalid(InvalidToken::Malformed));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid(InvalidToken::Malformed))?;
        if let Some(accepted) = &s.token_types {
            let ok = header
                .typ
                .as_deref()
                .is_some_and(|typ| accepted.iter().any(|a| typ_matches(a, typ)));
            if !ok {
                return Err(invalid(InvalidToken::WrongType));
            }
        }
        // We understand no JWS extensions (RFC 7515 §4.1.11). `jku`, `x5u`,
        // `jwk` and `x5c` are never looked at: keys come only from our set.
        if header.crit.is_some() {
            return Err(invalid(InvalidToken::UnsupportedCritical));
        }
        let keys = s.keys.load();
        let key = keys
            .find(header.kid.as_deref())
            .ok_or(invalid(InvalidToken::UnknownKey))?;
        if key.algorithm() != header.alg {
            return Err(invalid(InvalidToken::DisallowedAlgorithm));
        }
        let (_, validation) = s
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .ok_or(invalid(InvalidToken::DisallowedAlgorithm))?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), validation)
            .map_err(|e| invalid(classify(e.kind())))?
            .claims;

        if claims.jti.is_empty() || claims.sub.is_empty() {
            return Err(invalid(InvalidToken::BadClaims));
        }
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat > now.saturating_add(s.leeway) {
            return Err(invalid(InvalidToken::NotYetValid));
        }
        if claims.exp.saturating_sub(claims.iat) > s.revocations.max_token_lifetime().as_secs() {
            return Err(invalid(InvalidToken::LifetimeTooLong));
        }
        if let Some(by) =
            s.revocations
                .check(&claims.jti, claims.sid.as_deref(), &claims.sub, claims.iat)
        {
            return Err(AuthError::Revoked(by));
        }
        Ok(claims)
    }

    fn reject<B: Default>(&self, error: AuthError, headers: &HeaderMap) -> Response<B> {
        tracing::debug!(%error, "access token rejected");
        if cfg!(feature = "grpc") && is_grpc(headers) {
            error.into_grpc_response()
        } else {
            error.into_http_response(self.shared.realm.as_deref())
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
                req.extensions_mut().insert(claims);
                ResponseFuture::authorized(self.inner.call(req))
            }
            Err(error) => ResponseFuture::rejected(self.layer.reject(error, req.headers())),
        }
    }
}

/// `typ` matches an accepted (normalized) value: case-insensitive, with an
/// optional `application/` prefix (RFC 7515 §4.1.9). No allocation.
fn typ_matches(accepted: &str, typ: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(accepted)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// Maps a jsonwebtoken error to our reason; its message is never sent.
fn classify(kind: &ErrorKind) -> InvalidToken {
    match kind {
        ErrorKind::ExpiredSignature => InvalidToken::Expired,
        ErrorKind::ImmatureSignature => InvalidToken::NotYetValid,
        ErrorKind::InvalidIssuer => InvalidToken::WrongIssuer,
        ErrorKind::InvalidAudience => InvalidToken::WrongAudience,
        ErrorKind::InvalidSignature => InvalidToken::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            InvalidToken::DisallowedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            InvalidToken::BadClaims
        }
        // The claims set failed to deserialize (a required claim missing or
        // of the wrong type); the header was parsed before.
        ErrorKind::Json(_) => InvalidToken::BadClaims,
        _ => InvalidToken::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_matching() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("at+jwt", "AT+JWT"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(typ_matches("at+jwt", "Application/At+Jwt"));
        assert!(!typ_matches("at+jwt", "JWT"));
        assert!(!typ_matches("at+jwt", "application/"));
        assert!(!typ_matches("at+jwt", "xat+jwt"));
        assert!(!typ_matches("at+jwt", "é"));
    }
}
