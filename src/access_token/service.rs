use std::{
    borrow::Cow,
    fmt,
    mem::MaybeUninit,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response, header};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    AccessTokenLayerBuilder, AuthError, InvalidToken, ResponseFuture, extract::find_token,
};
use crate::{
    b64url,
    claims::AccessClaims,
    keys::{ACCESS_TOKEN_TYP, Algorithm, KeySet, Keys, VerifyingKey},
    revocation::RevocationCache,
    time::unix_secs,
};

/// Everything a request needs, built once and shared read-only.
pub(crate) struct Shared {
    pub(crate) keys: Keys,
    /// The algorithm allow-list.
    pub(crate) algorithms: Vec<Algorithm>,
    /// The one trusted issuer.
    pub(crate) issuer: String,
    /// The audiences this resource answers to.
    pub(crate) audiences: Vec<String>,
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
            .field("algorithms", &s.algorithms)
            .field("issuer", &s.issuer)
            .field("audiences", &s.audiences)
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
        let invalid = AuthError::InvalidToken;
        if token.len() > s.max_token_len {
            return Err(invalid(InvalidToken::Malformed));
        }
        // JWS compact serialization: exactly three base64url parts.
        let (message, signature) = token
            .rsplit_once('.')
            .ok_or(invalid(InvalidToken::Malformed))?;
        let (header_b64, payload_b64) = message
            .split_once('.')
            .ok_or(invalid(InvalidToken::Malformed))?;
        if payload_b64.contains('.') {
            return Err(invalid(InvalidToken::Malformed));
        }
        let mut buf = [MaybeUninit::uninit(); 1024];
        let keys = s.keys.load();
        let key = match keys.find_issued_header(header_b64) {
            // Byte for byte the header tollgate signs with under this key:
            // its `alg` and `kid`, `typ: at+jwt`, no `crit`.
            Some(key) => {
                check_type(s, Some(ACCESS_TOKEN_TYP))?;
                key
            }
            None => parsed_header_key(s, &keys, header_b64, &mut buf)?,
        };
        if !s.algorithms.contains(&key.algorithm()) {
            return Err(invalid(InvalidToken::DisallowedAlgorithm));
        }
        if !key.verify_signature(message.as_bytes(), signature) {
            return Err(invalid(InvalidToken::BadSignature));
        }

        // Only now, with the signature checked, are the claims read.
        let payload =
            b64url::decode(payload_b64, &mut buf).ok_or(invalid(InvalidToken::Malformed))?;
        // One UTF-8 check of the whole payload, then the `str` reader:
        // `from_slice` would validate every string it reads on its own.
        let claims: AccessClaims = std::str::from_utf8(&payload)
            .ok()
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or(invalid(InvalidToken::BadClaims))?;
        check_claims(s, &claims, unix_secs(s.revocations.now()))?;
        if let Some(by) =
            s.revocations
                .check(&claims.jti, claims.sid.as_deref(), &claims.sub, claims.iat)
        {
            return Err(AuthError::Revoked(by));
        }
        if s.revocations.is_stale() {
            return Err(AuthError::Unavailable);
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

/// The JOSE header fields the gate reads; any others are ignored, and a
/// duplicated field is an error (serde), so no two parsers can disagree.
#[derive(serde::Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The key for a header tollgate did not write itself: decoded, parsed
/// and checked field by field.
fn parsed_header_key<'k>(
    s: &Shared,
    keys: &'k KeySet,
    header_b64: &str,
    buf: &mut [MaybeUninit<u8>],
) -> Result<&'k VerifyingKey, AuthError> {
    let invalid = AuthError::InvalidToken;
    let header_json = b64url::decode(header_b64, buf).ok_or(invalid(InvalidToken::Malformed))?;
    let header: JoseHeader<'_> = std::str::from_utf8(&header_json)
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or(invalid(InvalidToken::Malformed))?;
    // Unknown names (`none` among them) do not parse.
    let alg: Algorithm = header
        .alg
        .parse()
        .map_err(|_| invalid(InvalidToken::DisallowedAlgorithm))?;
    check_type(s, header.typ.as_deref())?;
    // We understand no JWS extensions (RFC 7515 §4.1.11). `jku`, `x5u`,
    // `jwk` and `x5c` are never looked at: keys come only from our set.
    if header.crit.is_some() {
        return Err(invalid(InvalidToken::UnsupportedCritical));
    }
    let key = keys
        .find(header.kid.as_deref())
        .ok_or(invalid(InvalidToken::UnknownKey))?;
    // The key decides the algorithm; the header only has to agree.
    if key.algorithm() != alg {
        return Err(invalid(InvalidToken::DisallowedAlgorithm));
    }
    Ok(key)
}

/// The header's `typ` is one the gate accepts (if it is configured to
/// check).
fn check_type(s: &Shared, typ: Option<&str>) -> Result<(), AuthError> {
    match &s.token_types {
        Some(accepted) if !typ.is_some_and(|typ| accepted.iter().any(|a| typ_matches(a, typ))) => {
            Err(AuthError::InvalidToken(InvalidToken::WrongType))
        }
        _ => Ok(()),
    }
}

/// The registered-claim rules of RFC 7519 §4.1 and RFC 9068 §4, with the
/// configured leeway on every time comparison.
fn check_claims(s: &Shared, claims: &AccessClaims, now: u64) -> Result<(), AuthError> {
    let invalid = AuthError::InvalidToken;
    if now > claims.exp.saturating_add(s.leeway) {
        return Err(invalid(InvalidToken::Expired));
    }
    let early = |t: u64| t > now.saturating_add(s.leeway);
    if claims.nbf.is_some_and(early) || early(claims.iat) {
        return Err(invalid(InvalidToken::NotYetValid));
    }
    if claims.iss != s.issuer {
        return Err(invalid(InvalidToken::WrongIssuer));
    }
    if !claims.aud.iter().any(|a| s.audiences.contains(a)) {
        return Err(invalid(InvalidToken::WrongAudience));
    }
    if claims.jti.is_empty() || claims.sub.is_empty() || claims.exp < claims.iat {
        return Err(invalid(InvalidToken::BadClaims));
    }
    if claims.exp - claims.iat > s.revocations.max_token_lifetime().as_secs() {
        return Err(invalid(InvalidToken::LifetimeTooLong));
    }
    Ok(())
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
