use http::{HeaderValue, Response, StatusCode, header};

use super::extract::Scheme;
use crate::{claims::Claim, dpop::DpopError, revocation::RevokedBy, telemetry::GateOutcome};

/// What a gate's challenges say besides the error.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChallengeParams<'a> {
    pub(crate) realm: Option<&'a str>,
    /// The route's required scopes, space-separated.
    pub(crate) scope: Option<&'a str>,
    /// The URL of the RFC 9728 metadata (§5.1).
    pub(crate) resource_metadata: Option<&'a str>,
    /// With DPoP on: the accepted proof algorithms (the `DPoP`
    /// challenge's `algs`).
    pub(crate) dpop_algs: Option<&'a str>,
    /// The scheme the request used, when it sent credentials.
    pub(crate) scheme: Option<Scheme>,
    /// A fresh server nonce, sent in `DPoP-Nonce`.
    pub(crate) dpop_nonce: Option<&'a str>,
}

/// Why a request was refused by the gate (RFC 6750 §3.1).
///
/// Each variant maps to one status code and `error` attribute; the
/// description sent to the client is a fixed sentence that never contains
/// the token or a decoder's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials (none sent, or another scheme): 401 with a bare
    /// challenge, no error code.
    #[error("request has no bearer token")]
    MissingToken,
    /// Bearer credentials that do not parse, or credentials sent more than
    /// one way: 400 `invalid_request`.
    #[error("malformed bearer credentials: {0}")]
    InvalidRequest(&'static str),
    /// A token that fails verification: 401 `invalid_token`.
    #[error("invalid access token: {0}")]
    InvalidToken(InvalidToken),
    /// A valid token that has been revoked: 401 `invalid_token`.
    #[error("access token has been revoked ({0:?})")]
    Revoked(RevokedBy),
    /// The deny list is too stale to trust and the gate is configured to
    /// fail closed: 503 with `Retry-After` (gRPC: 14 UNAVAILABLE). The
    /// token itself may be fine, so no `invalid_token`.
    #[error("the deny list is stale")]
    Unavailable,
    /// A valid token without a required scope: 403 `insufficient_scope`.
    #[error("access token lacks scope `{required}`")]
    InsufficientScope {
        /// The scopes the resource requires, space-separated.
        required: String,
    },
    /// A valid token whose sign-in does not meet the route's step-up
    /// requirement (RFC 9470 §3): 401 `insufficient_user_authentication`
    /// with the `acr_values` and `max_age` to ask `/authorize` for.
    #[error("the user's authentication is insufficient")]
    InsufficientUserAuthentication {
        /// Acceptable `acr` values, space-separated.
        acr_values: Option<String>,
        /// The longest since `auth_time` accepted, seconds.
        max_age: Option<u64>,
        /// The `acr` was fine: only the sign-in is too old.
        recent_only: bool,
    },
    /// The DPoP proof failed a check (RFC 9449 §7.1): 401
    /// `invalid_dpop_proof`, or `use_dpop_nonce` with a fresh nonce; 503
    /// when the replay cache cannot take it.
    #[error("DPoP proof refused: {0}")]
    Dpop(DpopError),
}

/// What exactly was wrong with a token (kept for logs and metrics; the
/// client only sees a fixed sentence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// Not a JWS compact serialization, or undecodable parts.
    #[error("malformed token")]
    Malformed,
    /// The `typ` header is not an accepted access-token type.
    #[error("wrong token type")]
    WrongType,
    /// The header lists critical extensions we do not understand.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// No configured key has the token's `kid`.
    #[error("unknown key id")]
    UnknownKey,
    /// The token's `alg` is not allowed, or not the algorithm of its key.
    #[error("algorithm not allowed")]
    DisallowedAlgorithm,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name this resource.
    #[error("wrong audience")]
    WrongAudience,
    /// The payload is not a JSON object of claims with their registered
    /// types (a string `exp`, a duplicated claim, …).
    #[error("malformed claims")]
    BadClaims,
    /// A claim the issuer's profile (or the gate) requires is absent.
    #[error("no `{}` claim", .0.name())]
    MissingClaim(Claim),
    /// A claim is present with a value the gate cannot accept (`exp`
    /// before `iat`; an `scp` item with a space).
    #[error("invalid `{}` claim", .0.name())]
    InvalidClaim(Claim),
    /// The claims do not have the shape a handler asked for
    /// ([`Claims<T>`](crate::claims::Claims)).
    #[error("claims unfit for the handler")]
    UnfitClaims,
    /// `exp - iat` is longer than the gate accepts.
    #[error("lifetime too long")]
    LifetimeTooLong,
    /// A DPoP-bound token (`cnf`) presented as a bearer token: a stolen
    /// bound token must not work without the key.
    #[error("DPoP-bound token used as a bearer token")]
    BoundToKey,
    /// A token without `cnf` presented with the `DPoP` scheme.
    #[error("token not bound to a key")]
    NotBound,
}

impl AuthError {
    /// What the gate counts and logs for this rejection.
    pub(crate) fn gate_outcome(&self) -> GateOutcome {
        match self {
            Self::MissingToken => GateOutcome::Missing,
            Self::InvalidRequest(_) => GateOutcome::InvalidRequest,
            Self::InvalidToken(InvalidToken::Expired) => GateOutcome::Expired,
            Self::InvalidToken(_) => GateOutcome::Invalid,
            Self::Revoked(_) => GateOutcome::Revoked,
            Self::InsufficientScope { .. } => GateOutcome::InsufficientScope,
            Self::InsufficientUserAuthentication { .. } => {
                GateOutcome::InsufficientUserAuthentication
            }
            Self::Unavailable
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => {
                GateOutcome::Unavailable
            }
            Self::Dpop(_) => GateOutcome::InvalidDpopProof,
        }
    }

    /// The HTTP status of the rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::MissingToken
            | Self::InvalidToken(_)
            | Self::Revoked(_)
            | Self::Dpop(_)
            | Self::InsufficientUserAuthentication { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The RFC 6750 `error` attribute; `None` when no credentials were sent
    /// (RFC 6750 §3.1).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken
            | Self::Unavailable
            | Self::Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) | Self::Revoked(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::InsufficientUserAuthentication { .. } => Some("insufficient_user_authentication"),
            Self::Dpop(e) => Some(e.error_code()),
        }
    }

    /// The human-readable `error_description`: a fixed sentence, safe to
    /// send (printable ASCII without `"` or `\`, as RFC 6750 §3 requires).
    pub fn description(&self) -> Option<&'static str> {
        Some(match self {
            Self::MissingToken => return None,
            Self::InvalidRequest(why) => why,
            Self::InvalidToken(InvalidToken::Expired) => "The access token expired",
            Self::InvalidToken(InvalidToken::NotYetValid) => "The access token is not valid yet",
            Self::InvalidToken(InvalidToken::WrongIssuer) => {
                "The access token was issued by an untrusted issuer"
            }
            Self::InvalidToken(InvalidToken::WrongAudience) => {
                "The access token is not meant for this resource"
            }
            Self::InvalidToken(InvalidToken::WrongType) => "The token is not an access token",
            Self::InvalidToken(InvalidToken::BoundToKey) => {
                "The access token is bound to a key: present it with a DPoP proof"
            }
            Self::InvalidToken(InvalidToken::NotBound) => {
                "The access token is not bound to a key: present it as a Bearer token"
            }
            Self::InvalidToken(InvalidToken::MissingClaim(claim)) => missing_claim(*claim),
            Self::InvalidToken(InvalidToken::InvalidClaim(Claim::Exp)) => {
                "The access token expires before it was issued"
            }
            Self::InvalidToken(InvalidToken::InvalidClaim(Claim::Scope)) => {
                "The access token has a malformed `scp` claim"
            }
            Self::InvalidToken(InvalidToken::UnfitClaims) => {
                "The access token lacks claims this resource needs"
            }
            Self::InvalidToken(InvalidToken::BadClaims) => {
                "The access token's claims are not a valid claim set"
            }
            Self::InvalidToken(InvalidToken::LifetimeTooLong) => {
                "The access token's lifetime is longer than this resource accepts"
            }
            Self::Dpop(e) => e.description(),
            Self::InvalidToken(_) => "The access token is invalid",
            Self::Revoked(_) => "The access token has been revoked",
            Self::Unavailable => "Token revocation status is unavailable, retry later",
            Self::InsufficientScope { .. } => {
                "The request requires higher privileges than provided by the access token"
            }
            // RFC 9470 §3's sentences.
            Self::InsufficientUserAuthentication {
                recent_only: true, ..
            } => "More recent authentication is required",
            Self::InsufficientUserAuthentication { .. } => {
                "A different authentication level is required"
            }
        })
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self, realm: Option<&str>) -> String {
        self.challenge_with(&ChallengeParams {
            realm,
            ..ChallengeParams::default()
        })
    }

    /// The challenge with the gate's parameters: the realm, the scope the
    /// route needs (on a 401, so a client knows what to ask for: the MCP
    /// "scope challenge"), and where the resource's RFC 9728 metadata is.
    /// Every value is checked when the gate is built (a quotable realm,
    /// scope tokens, a URI), so none needs escaping.
    pub(crate) fn challenge_with(&self, p: &ChallengeParams<'_>) -> String {
        let mut params = Vec::with_capacity(5);
        if let Some(realm) = p.realm {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(code) = self.error_code() {
            params.push(format!("error=\"{code}\""));
        }
        if let Some(desc) = self.description() {
            params.push(format!("error_description=\"{desc}\""));
        }
        match self {
            Self::InsufficientScope { required } => params.push(format!("scope=\"{required}\"")),
            Self::InsufficientUserAuthentication {
                acr_values,
                max_age,
                ..
            } => {
                if let Some(acr) = acr_values {
                    params.push(format!("acr_values=\"{acr}\""));
                }
                if let Some(max) = max_age {
                    params.push(format!("max_age=\"{max}\""));
                }
            }
            _ if self.status() == StatusCode::UNAUTHORIZED => {
                if let Some(scope) = p.scope {
                    params.push(format!("scope=\"{scope}\""));
                }
            }
            _ => {}
        }
        if let Some(url) = p.resource_metadata {
            params.push(format!("resource_metadata=\"{url}\""));
        }
        let scheme = match (self.scheme(p), p.dpop_algs) {
            (Scheme::Dpop, Some(algs)) => {
                params.insert(0, format!("algs=\"{algs}\""));
                "DPoP"
            }
            _ => "Bearer",
        };
        if params.is_empty() {
            scheme.to_owned()
        } else {
            format!("{scheme} {}", params.join(", "))
        }
    }

    /// The scheme a challenge for this error speaks: DPoP for a proof's
    /// failure and for requests made with the DPoP scheme, else Bearer.
    fn scheme(&self, p: &ChallengeParams<'_>) -> Scheme {
        match self {
            Self::Dpop(_) | Self::InvalidToken(InvalidToken::BoundToKey) => Scheme::Dpop,
            _ => p.scheme.unwrap_or(Scheme::Bearer),
        }
    }

    /// The challenges to send: the error's own and, with DPoP on and no
    /// credentials sent, the DPoP one beside the Bearer one (a client may
    /// use either, RFC 9449 §7.1).
    fn challenges(&self, p: &ChallengeParams<'_>) -> Vec<String> {
        let mut all = vec![self.challenge_with(p)];
        if p.dpop_algs.is_some() && *self == Self::MissingToken {
            all.push(self.challenge_with(&ChallengeParams {
                scheme: Some(Scheme::Dpop),
                ..*p
            }));
        }
        all
    }

    /// The rejection as an HTTP response with an empty body, so it fits any
    /// framework's body type.
    pub fn into_http_response<B: Default>(self, realm: Option<&str>) -> Response<B> {
        self.into_http_response_with(&ChallengeParams {
            realm,
            ..ChallengeParams::default()
        })
    }

    /// [`into_http_response`](Self::into_http_response) with the gate's
    /// challenge parameters.
    pub(crate) fn into_http_response_with<B: Default>(
        self,
        p: &ChallengeParams<'_>,
    ) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = self.status();
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return res;
        }
        // Built from validated parts only (realm checked at build time, the
        // rest fixed strings or validated scope tokens), so it is a valid
        // header value; fall back to a bare challenge if it ever is not.
        for challenge in self.challenges(p) {
            let challenge = HeaderValue::try_from(challenge)
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
            res.headers_mut()
                .append(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(nonce) = p
            .dpop_nonce
            .filter(|_| matches!(self, Self::Dpop(DpopError::Nonce)))
            .and_then(|n| HeaderValue::try_from(n).ok())
        {
            res.headers_mut().insert(crate::dpop::NONCE_HEADER, nonce);
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    /// The gRPC status code: 16 UNAUTHENTICATED, 7 PERMISSION_DENIED for a
    /// missing scope, 14 UNAVAILABLE for a stale deny list.
    pub fn grpc_status(&self) -> u16 {
        match self {
            Self::InsufficientScope { .. } => 7,
            Self::Unavailable => 14,
            _ => 16,
        }
    }

    /// The rejection as a gRPC trailers-only response: HTTP 200 with
    /// `grpc-status` and `grpc-message` in the headers.
    pub fn into_grpc_response<B: Default>(self) -> Response<B> {
        let mut res = Response::new(B::default());
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(self.grpc_status()));
        let message = self.description().unwrap_or("Missing bearer token");
        // The descriptions are printable ASCII without `%`, which the gRPC
        // spec's percent-encoding leaves as they are.
        headers.insert("grpc-message", HeaderValue::from_static(message));
        res
    }
}

/// The `error_description` of a token without `claim`: names the claim,
/// which tells a client nothing it could not read in its own token.
fn missing_claim(claim: Claim) -> &'static str {
    match claim {
        Claim::Iss => "The access token has no `iss` claim",
        Claim::Sub => "The access token has no `sub` claim",
        Claim::Aud => "The access token has no `aud` claim",
        Claim::Exp => "The access token has no `exp` claim",
        Claim::Iat => "The access token has no `iat` claim",
        Claim::Jti => "The access token has no `jti` claim",
        Claim::ClientId => "The access token has no `client_id` claim",
        Claim::Scope => "The access token has no `scope` claim",
        Claim::Sid => "The access token has no `sid` claim",
        Claim::AuthTime => "The access token has no `auth_time` claim",
        Claim::Acr => "The access token has no `acr` claim",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc6750() {
        assert_eq!(
            AuthError::MissingToken.challenge(Some("api")),
            r#"Bearer realm="api""#
        );
        assert_eq!(AuthError::MissingToken.challenge(None), "Bearer");
        assert_eq!(
            AuthError::InvalidToken(InvalidToken::Expired).challenge(None),
            r#"Bearer error="invalid_token", error_description="The access token expired""#
        );
        let scope = AuthError::InsufficientScope {
            required: "admin".into(),
        };
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert!(scope.challenge(Some("r")).ends_with(r#"scope="admin""#));
    }

    /// RFC 9470 §3, in the scheme the request used (RFC 9449 §7.1 for DPoP).
    #[test]
    fn step_up_challenges_name_what_to_ask_for() {
        let e = AuthError::InsufficientUserAuthentication {
            acr_values: Some("urn:mfa".into()),
            max_age: Some(60),
            recent_only: false,
        };
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            e.challenge(None),
            r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:mfa", max_age="60""#
        );
        let dpop = e.challenge_with(&ChallengeParams {
            scheme: Some(Scheme::Dpop),
            dpop_algs: Some("ES256"),
            ..ChallengeParams::default()
        });
        assert!(
            dpop.starts_with(r#"DPoP algs="ES256", error="insufficient_user_authentication""#),
            "{dpop}"
        );
        assert!(
            dpop.ends_with(r#"acr_values="urn:mfa", max_age="60""#),
            "{dpop}"
        );
        assert_eq!(e.grpc_status(), 16);
    }

    #[test]
    fn descriptions_are_valid_rfc6750_attribute_values() {
        use InvalidToken::*;
        let all = [
            Malformed,
            WrongType,
            UnsupportedCritical,
            UnknownKey,
            DisallowedAlgorithm,
            BadSignature,
            Expired,
            NotYetValid,
            WrongIssuer,
            WrongAudience,
            BadClaims,
            LifetimeTooLong,
        ];
        for e in all.map(AuthError::InvalidToken).into_iter().chain([
            AuthError::Revoked(RevokedBy::Token),
            AuthError::Unavailable,
            AuthError::InsufficientScope {
                required: "x".into(),
            },
        ]) {
            let d = e.description().unwrap();
            assert!(
                d.bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{d}"
            );
            assert!(!d.contains('%'));
        }
    }
}
