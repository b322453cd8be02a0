//! An OpenID Connect Back-Channel Logout 1.0 receiver: the identity
//! provider's logouts in the gate's deny list.
//!
//! When a user logs out at the provider (Keycloak, Auth0, Entra ID, Okta,
//! …), it POSTs a signed `logout_token` to every client of that session.
//! [`BackChannelLogout`] is that endpoint as a Tower service: it verifies
//! the token with the issuer's keys (§2.6), refuses a replay, and denies
//! the session (`sid`) or, without one, every token of the subject
//! (`sub`) issued up to the logout, in the [`RevocationCache`] the gates
//! share, so every access token of that session dies at once. With a
//! store it is recorded like tollgate's own revocations and reaches every
//! instance (NOTIFY on PostgreSQL, polling elsewhere).
//!
//! ```
//! use std::time::Duration;
//! use tollgate::{
//!     RevocationCache,
//!     backchannel::BackChannelLogout,
//!     keys::{KeySet, Keys},
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let revocations = RevocationCache::default();
//! // The provider's keys, the same the gate verifies its tokens with.
//! let keys = Keys::new(KeySet::from_jwks(
//!     r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#
//!         .as_bytes(),
//!     &[tollgate::Algorithm::EdDSA],
//! )?);
//! let logout = BackChannelLogout::builder()
//!     .issuer("https://login.example.com/realms/shop")
//!     .client_id("orders-api") // this app's client id at the provider: the token's `aud`
//!     .keys(keys)
//!     .revocations(revocations.clone()) // the gate's deny list
//!     .build()?;
//! // axum: Router::new().route_service("/backchannel-logout", logout)
//! # let _ = logout;
//! # Ok(())
//! # }
//! ```

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    mem::MaybeUninit,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;

use crate::{
    access_token::{
        InvalidToken,
        verify::{Compact, header_key},
    },
    b64url,
    error::BoxError,
    keys::{AlgorithmFamily, Keys},
    revocation::{RevocationCache, RevocationKind, Subject},
    time::{from_unix_secs, unix_secs},
};

/// The `events` member that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The `typ` a logout token may carry (§2.4, RFC 8725 §3.11).
const LOGOUT_TYP: &str = "logout+jwt";

/// Default bound on a logout token's age (`iat` to now): a logout is sent
/// when it happens, and a token older than this is refused as a replay
/// whatever the replay cache remembers.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(120);

/// Clock skew allowed between the provider and us.
const LEEWAY: u64 = 30;

/// The largest request body read: a form holding one signed JWT.
const MAX_BODY: usize = 16 * 1024;

/// Logout token ids remembered for replay detection.
const REPLAY_CAPACITY: u64 = 100_000;

/// Why a logout token was refused; `400` with `error: invalid_request`
/// and a description naming the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// Not a POST of a form with one `logout_token`.
    #[error("the request is not a POST of one logout_token")]
    BadRequest,
    /// The JWS does not verify with the issuer's keys under the
    /// allow-list, or its header is refused.
    #[error("the logout token does not verify: {0}")]
    Token(InvalidToken),
    /// Not a logout token: no `events` member for back-channel logout, a
    /// `nonce` (an ID token's), neither `sid` nor `sub`, or a claim of
    /// the wrong type.
    #[error("not a logout token")]
    NotALogoutToken,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name this client.
    #[error("wrong audience")]
    WrongAudience,
    /// `iat` is in the future, or older than the configured maximum age;
    /// or `exp` has passed.
    #[error("the logout token is too old or not valid yet")]
    Stale,
    /// The same `jti` was seen before.
    #[error("the logout token was replayed")]
    Replayed,
    /// The store could not record the revocation; nothing was denied
    /// anywhere (the provider may retry).
    #[error("the revocation could not be recorded")]
    Unavailable,
}

impl LogoutError {
    fn description(self) -> &'static str {
        match self {
            Self::BadRequest => "The request must be a POST of a form with one logout_token",
            Self::Token(InvalidToken::BadSignature) => {
                "The logout token's signature does not verify"
            }
            Self::Token(InvalidToken::UnknownKey) => "The logout token's key is unknown",
            Self::Token(InvalidToken::WrongType) => "The token is not a logout token (typ)",
            Self::Token(_) => "The logout token is malformed or its algorithm is not allowed",
            Self::NotALogoutToken => "The token is not a logout token",
            Self::WrongIssuer => "The logout token is from another issuer",
            Self::WrongAudience => "The logout token is for another client",
            Self::Stale => "The logout token is too old or not valid yet",
            Self::Replayed => "The logout token was already used",
            Self::Unavailable => "The logout could not be recorded",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            // §2.8: 400 for a refused token; a store that did not record
            // it is ours to fix, and the provider may retry.
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Token(_) => "invalid_token",
            Self::NotALogoutToken => "not_a_logout_token",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::Unavailable => "unavailable",
        }
    }
}

/// What a logout token denied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoggedOut {
    /// Every access token with this `sid`.
    Session(String),
    /// Every token of this `sub` issued up to the logout (`iat`).
    Subject(String),
}

/// A setting [`BackChannelLogoutBuilder::build`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackChannelConfigError {
    /// A required setting is missing.
    #[error("back-channel logout needs {0}")]
    Missing(&'static str),
    /// The key set holds an HMAC key: logout tokens are verified with the
    /// provider's public keys only.
    #[error("logout tokens are verified with public keys, not HMAC secrets")]
    HmacKey,
}

/// Builds a [`BackChannelLogout`].
#[derive(Default)]
pub struct BackChannelLogoutBuilder {
    issuer: Option<String>,
    client_id: Option<String>,
    keys: Option<Keys>,
    revocations: Option<RevocationCache>,
    max_age: Option<Duration>,
    #[cfg(feature = "store")]
    store: Option<sea_orm::DatabaseConnection>,
}

impl fmt::Debug for BackChannelLogoutBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackChannelLogoutBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl BackChannelLogoutBuilder {
    /// The provider's issuer identifier, compared byte for byte with `iss`.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            ..self
        }
    }

    /// This app's client id at the provider: the logout token's `aud` must
    /// contain it.
    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        Self {
            client_id: Some(client_id.into()),
            ..self
        }
    }

    /// The provider's public keys (a [`Keys`] handle follows rotation).
    pub fn keys(self, keys: impl Into<Keys>) -> Self {
        Self {
            keys: Some(keys.into()),
            ..self
        }
    }

    /// The deny list the gates check.
    pub fn revocations(self, revocations: RevocationCache) -> Self {
        Self {
            revocations: Some(revocations),
            ..self
        }
    }

    /// The oldest logout token accepted, by `iat` ([`DEFAULT_MAX_AGE`]).
    pub fn max_age(self, max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            ..self
        }
    }

    /// Records each logout in the store, as tollgate's own revocations
    /// are, so that every instance's [`RevocationSync`](crate::sync::RevocationSync)
    /// applies it; the local deny list only after the commit.
    #[cfg(feature = "store")]
    pub fn store(self, db: sea_orm::DatabaseConnection) -> Self {
        Self {
            store: Some(db),
            ..self
        }
    }

    /// Checks the settings.
    pub fn build(self) -> Result<BackChannelLogout, BackChannelConfigError> {
        let keys = self.keys.ok_or(BackChannelConfigError::Missing("keys"))?;
        if keys
            .current()
            .verifying_keys()
            .iter()
            .any(|k| k.algorithm().family() == AlgorithmFamily::Hmac)
        {
            return Err(BackChannelConfigError::HmacKey);
        }
        let max_age = self.max_age.unwrap_or(DEFAULT_MAX_AGE);
        Ok(BackChannelLogout {
            inner: Arc::new(Inner {
                issuer: self
                    .issuer
                    .ok_or(BackChannelConfigError::Missing("an issuer"))?,
                client_id: self
                    .client_id
                    .ok_or(BackChannelConfigError::Missing("a client id"))?,
                keys,
                revocations: self
                    .revocations
                    .ok_or(BackChannelConfigError::Missing("a deny list"))?,
                max_age: max_age.as_secs(),
                // Longer than any token is accepted: a replay inside the
                // age bound is always remembered (unless evicted, and then
                // applying it again changes nothing, see `apply`).
                seen: moka::sync::Cache::builder()
                    .max_capacity(REPLAY_CAPACITY)
                    .time_to_live(max_age + Duration::from_secs(2 * LEEWAY))
                    .build(),
                #[cfg(feature = "store")]
                store: self.store,
            }),
        })
    }
}

/// The back-channel logout endpoint of one issuer; a Tower service
/// answering `200` (logged out), `400` with an RFC 6749-style JSON error,
/// or `503` when the store could not record it, always with
/// `Cache-Control: no-store` (§2.8). Cloning is cheap. One per issuer:
/// mount each at its own path, registered there as the client's
/// `backchannel_logout_uri`.
///
/// The deny list keys subjects by `sub` (within a tenant): gates that
/// trust several issuers whose subjects may coincide should keep one deny
/// list per issuer.
#[derive(Clone)]
pub struct BackChannelLogout {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    client_id: String,
    keys: Keys,
    revocations: RevocationCache,
    max_age: u64,
    /// `jti`s of accepted logout tokens.
    seen: moka::sync::Cache<String, ()>,
    #[cfg(feature = "store")]
    store: Option<sea_orm::DatabaseConnection>,
}

impl fmt::Debug for BackChannelLogout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackChannelLogout")
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// The claims of a logout token, as §2.4 types them; unknown claims are
/// ignored, a duplicated one is an error.
#[derive(Deserialize)]
struct LogoutClaims {
    iss: String,
    #[serde(deserialize_with = "crate::claims::deserialize_audience")]
    aud: Vec<String>,
    iat: u64,
    #[serde(default)]
    exp: Option<u64>,
    jti: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    events: serde_json::Map<String, serde_json::Value>,
    #[serde(default, deserialize_with = "crate::keys::present")]
    nonce: bool,
}

impl BackChannelLogout {
    /// Starts a builder.
    pub fn builder() -> BackChannelLogoutBuilder {
        BackChannelLogoutBuilder::default()
    }

    /// Verifies `logout_token` and denies what it names (the HTTP service
    /// calls this with the form's parameter).
    pub async fn logout(&self, logout_token: &str) -> Result<LoggedOut, LogoutError> {
        let (claims, logged_out) = self.verify(logout_token)?;
        // Remembered before anything is denied, so that two deliveries at
        // once apply one; forgotten again if the store fails, so that the
        // provider's retry is not taken for a replay.
        let fresh = self.inner.seen.entry(claims.jti.clone()).or_insert(());
        if !fresh.is_fresh() {
            return Err(LogoutError::Replayed);
        }
        let r = self.apply(&logged_out, claims.iat).await;
        if r.is_err() {
            self.inner.seen.invalidate(&claims.jti);
        }
        r.map(|()| logged_out)
    }

    /// §2.6's checks, in order: the JWS and its header, then the claims.
    fn verify(&self, token: &str) -> Result<(LogoutClaims, LoggedOut), LogoutError> {
        let s = &*self.inner;
        let bad = |e: InvalidToken| LogoutError::Token(e);
        if token.len() > MAX_BODY {
            return Err(bad(InvalidToken::Malformed));
        }
        let Compact {
            message,
            header_b64,
            payload_b64,
            signature,
        } = Compact::split(token).ok_or(bad(InvalidToken::Malformed))?;
        let keys = s.keys.load();
        let mut buf = vec![MaybeUninit::uninit(); token.len()];
        // `logout+jwt` when there is a `typ` (§2.4: a provider SHOULD
        // send it; an ID token's `JWT` is exactly what must not pass).
        let key = header_key(&keys, header_b64, &mut buf, |typ| {
            typ.is_none_or(|t| {
                t.eq_ignore_ascii_case(LOGOUT_TYP)
                    || t.eq_ignore_ascii_case("application/logout+jwt")
            })
        })
        .map_err(bad)?;
        if !key.verify_signature(message.as_bytes(), signature) {
            return Err(bad(InvalidToken::BadSignature));
        }
        let payload = b64url::decode(payload_b64, &mut buf).ok_or(bad(InvalidToken::Malformed))?;
        let claims: LogoutClaims =
            serde_json::from_slice(&payload).map_err(|_| LogoutError::NotALogoutToken)?;
        if claims.iss != s.issuer {
            return Err(LogoutError::WrongIssuer);
        }
        if !claims.aud.contains(&s.client_id) {
            return Err(LogoutError::WrongAudience);
        }
        let now = unix_secs(s.revocations.now());
        if claims.iat > now + LEEWAY
            || now.saturating_sub(claims.iat) > s.max_age
            || claims.exp.is_some_and(|exp| exp + LEEWAY < now)
        {
            return Err(LogoutError::Stale);
        }
        // The event member, whose value must be a JSON object; no nonce
        // (so an ID token cannot pass for one); a session or a subject.
        let is_logout = claims
            .events
            .get(BACKCHANNEL_LOGOUT_EVENT)
            .is_some_and(serde_json::Value::is_object);
        if !is_logout || claims.nonce || claims.jti.is_empty() {
            return Err(LogoutError::NotALogoutToken);
        }
        let logged_out = match (&claims.sid, &claims.sub) {
            (Some(sid), _) if !sid.is_empty() => LoggedOut::Session(sid.clone()),
            (_, Some(sub)) if !sub.is_empty() => LoggedOut::Subject(sub.clone()),
            _ => return Err(LogoutError::NotALogoutToken),
        };
        Ok((claims, logged_out))
    }

    /// Denies what the token named. A subject is denied up to the
    /// logout's `iat` (the provider's clock, the one its tokens' `iat`
    /// come from), never up to our receipt of it, so that applying one
    /// logout twice denies nothing more.
    async fn apply(&self, logged_out: &LoggedOut, iat: u64) -> Result<(), LogoutError> {
        let s = &*self.inner;
        let at = from_unix_secs(iat);
        let until = s.revocations.now() + s.revocations.max_token_lifetime();
        let (kind, target) = match logged_out {
            LoggedOut::Session(sid) => (RevocationKind::Session, sid.as_str()),
            LoggedOut::Subject(sub) => (RevocationKind::Subject, sub.as_str()),
        };
        #[cfg(feature = "store")]
        if let Some(db) = &s.store {
            // A session is revoked now, a subject at the logout's time.
            let recorded_at = match kind {
                RevocationKind::Subject => at,
                _ => s.revocations.now(),
            };
            let committed =
                crate::store::revocations::revoke_external(db, kind, target, until, recorded_at)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "a back-channel logout could not be recorded");
                        LogoutError::Unavailable
                    })?;
            if let Some(r) = &committed {
                s.revocations.apply(r);
            }
            return Ok(());
        }
        match kind {
            RevocationKind::Session => s.revocations.revoke_session(target, until),
            _ => s
                .revocations
                .revoke_subject_before(Subject::new(None, target), at),
        }
        Ok(())
    }

    async fn answer<B>(self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let result = match read_token(req).await {
            Ok(token) => self.logout(&token).await,
            Err(e) => Err(e),
        };
        let (status, body) = match result {
            Ok(what) => {
                tracing::info!(
                    issuer = %self.inner.issuer,
                    kind = match what {
                        LoggedOut::Session(_) => "session",
                        LoggedOut::Subject(_) => "subject",
                    },
                    "back-channel logout applied"
                );
                (StatusCode::OK, Bytes::new())
            }
            Err(e) => {
                tracing::debug!(issuer = %self.inner.issuer, reason = e.reason(), "back-channel logout refused");
                let body = serde_json::json!({
                    "error": "invalid_request",
                    "error_description": e.description(),
                });
                (e.status(), Bytes::from(body.to_string()))
            }
        };
        let mut res = Response::new(Full::new(body.clone()));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if !body.is_empty() {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        res
    }
}

/// The `logout_token` of a POSTed form (§2.5): the only parameter read,
/// present once, made only of the JWS alphabet (which form encoding never
/// escapes), in a body of at most [`MAX_BODY`] bytes.
async fn read_token<B>(req: Request<B>) -> Result<String, LogoutError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if req.method() != Method::POST {
        return Err(LogoutError::BadRequest);
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(LogoutError::BadRequest);
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| LogoutError::BadRequest)?
        .to_bytes();
    let mut token = None;
    for pair in body.split(|&b| b == b'&') {
        if let Some(value) = pair.strip_prefix(b"logout_token=") {
            if token.is_some() {
                return Err(LogoutError::BadRequest);
            }
            token = Some(value);
        } else if pair == b"logout_token" {
            return Err(LogoutError::BadRequest);
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(LogoutError::BadRequest)?;
    if !token
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(LogoutError::BadRequest);
    }
    // Checked ASCII above.
    Ok(String::from_utf8_lossy(token).into_owned())
}

impl<B> tower_service::Service<Request<B>> for BackChannelLogout
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(req).await) })
    }
}
