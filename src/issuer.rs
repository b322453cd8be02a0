//! The one place that mints tokens: RFC 9068 access tokens and opaque,
//! rotating refresh tokens.
//!
//! An application's own login handler (after checking the password, a
//! passkey, an SSO assertion…) calls [`Issuer::issue`] to start a session;
//! the token endpoint uses the same issuer for its grants.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::{
//!     issuer::{ClientMeta, Issuer},
//!     Algorithm, SigningKey,
//!     secret::RefreshSecret,
//!     store::{self, clients::NewClient},
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! store::clients::register(&db, NewClient::public("spa", "read write")).await.unwrap();
//!
//! let key = SigningKey::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
//! let issuer = Issuer::builder()
//!     .db(db)
//!     .keys(key)
//!     .issuer("https://auth.example")
//!     .audience("https://api.example")
//!     .refresh_secret(RefreshSecret::new(&[9; 32]).unwrap())
//!     .build()
//!     .unwrap();
//!
//! // In your login handler, once the user is authenticated:
//! let tokens = issuer.issue("alice", "spa", Some("read"), &ClientMeta::default()).await.unwrap();
//! assert_eq!(tokens.token_type, "Bearer");
//! assert_eq!(tokens.scope, "read");
//! assert!(tokens.refresh_token.is_some());
//! # });
//! ```

use std::{
    fmt,
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::{
    access_token::{AccessTokenLayer, AccessTokenLayerBuilder},
    audience,
    claims::{AccessClaims, CLIENT_SUBJECT_PREFIX, Confirmation},
    events::{DEFAULT_EVENT_QUEUE, EventSink, Events, SecurityEvent},
    keys::{KeyError, Keys},
    refresh::{RefreshError, RefreshPolicy, RefreshRequest},
    revocation::{RevocationCache, Revoker},
    scope,
    secret::{RefreshSecret, hash_token, random_string, random_token},
    store::{
        self, StoreError,
        cleanup::{Janitor, JanitorBuilder},
        clients::Client,
        rotation::{RefreshOutcome, RefusedSession, Rotation},
        sessions::NewSession,
    },
    telemetry,
    time::{Clock, unix_secs},
};

/// Token lifetimes. Clients may override each (see
/// [`NewClient`](crate::store::clients::NewClient)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens. Default 15 minutes.
    pub access: Duration,
    /// Refresh tokens, idle: each must be used within this. Default 14 days.
    pub refresh_idle: Duration,
    /// Sessions, absolute: no refresh extends a session past this.
    /// Default 90 days.
    pub session: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(15 * 60),
            refresh_idle: Duration::from_secs(14 * 86_400),
            session: Duration::from_secs(90 * 86_400),
        }
    }
}

impl Lifetimes {
    fn for_client(&self, c: &Client) -> Self {
        Self {
            access: c.access_ttl.unwrap_or(self.access),
            refresh_idle: c.refresh_idle_ttl.unwrap_or(self.refresh_idle),
            session: c.session_ttl.unwrap_or(self.session),
        }
    }
}

/// Where a request came from: what refresh tokens are bound to and what
/// sessions show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMeta {
    /// The client's IP.
    pub ip: Option<IpAddr>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// A device fingerprint, if the application computes one.
    pub device_fingerprint: Option<String>,
    /// Tenant, for multi-tenant deployments.
    pub tenant: Option<String>,
}

/// What a token request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested<'a> {
    /// The scope; `None`: everything the client (or session) was granted.
    pub scope: Option<&'a str>,
    /// RFC 8707 resources (the tokens' `aud`); empty: the issuer's
    /// configured audience on a new session, the session's own on a
    /// refresh.
    pub resources: &'a [&'a str],
    /// The RFC 7638 thumbprint of the DPoP key the request proved: the
    /// access token is bound to it (`cnf.jkt`, `token_type` `DPoP`), and
    /// so is a public client's new session, whose refreshes must then
    /// prove it too.
    pub dpop_jkt: Option<&'a str>,
}

/// What one access token says.
#[derive(Clone, Copy)]
struct Mint<'a> {
    sub: &'a str,
    client_id: &'a str,
    scope: &'a str,
    resources: &'a [String],
    sid: Option<&'a str>,
    tenant: Option<&'a str>,
    now: SystemTime,
    ttl: Duration,
    cap: Option<SystemTime>,
    dpop_jkt: Option<&'a str>,
}

/// A successful token response (RFC 6749 §5.1). Its `Debug` output shows
/// no token.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token, when the grant issues one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope of the access token.
    pub scope: String,
    /// Seconds the refresh token stays usable if it is not used (its idle
    /// lifetime, capped by the session's end); not part of the JSON (a
    /// browser client's cookie gets it as `Max-Age`).
    #[serde(skip)]
    pub refresh_token_expires_in: Option<u64>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print tokens: responses end up in logs.
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why tokens could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// No such client.
    #[error("unknown client")]
    UnknownClient,
    /// The scope is not allowed for the client (or the grant).
    #[error("scope not allowed")]
    InvalidScope,
    /// A requested resource is not one the client may ask for (RFC 8707).
    #[error("resource not allowed")]
    InvalidTarget,
    /// The user id is empty, or starts with
    /// [`crate::claims::CLIENT_SUBJECT_PREFIX`],
    /// which names clients (RFC 9068 §5).
    #[error("user id is empty or reserved for clients")]
    ReservedSubject,
    /// The refresh token is unknown.
    #[error("unknown refresh token")]
    UnknownToken,
    /// The refresh was refused by the rotation rules.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The store failed; nothing was half-written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No signing key, or signing failed.
    #[error("cannot sign access tokens")]
    Signing(#[source] Option<KeyError>),
}

/// A configuration the issuer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerConfigError {
    /// No database.
    #[error("no database configured")]
    MissingDb,
    /// No keys, or no signing key among them.
    #[error("no signing key configured")]
    MissingSigningKey,
    /// No issuer.
    #[error("no issuer configured")]
    MissingIssuer,
    /// No audience.
    #[error("no audience configured")]
    MissingAudience,
    /// No refresh secret (every instance must share one, so it is never
    /// made up).
    #[error("no refresh secret configured")]
    MissingRefreshSecret,
    /// A lifetime is zero, access tokens outlive sessions, or they outlive
    /// the deny list's `max_token_lifetime`.
    #[error("invalid lifetimes")]
    InvalidLifetimes,
}

struct Inner {
    db: DatabaseConnection,
    keys: Keys,
    issuer: String,
    audience: Vec<String>,
    lifetimes: Lifetimes,
    refresh_secret: RefreshSecret,
    policy: RefreshPolicy,
    clock: Arc<dyn Clock>,
    revocations: RevocationCache,
    revoker: Revoker,
    events: Events,
}

/// Mints access and refresh tokens and rotates refresh tokens. Cloning is
/// cheap.
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("lifetimes", &self.inner.lifetimes)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Starts a builder.
    pub fn builder() -> IssuerBuilder {
        IssuerBuilder::default()
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The `aud` of every token.
    pub fn audience(&self) -> &[String] {
        &self.inner.audience
    }

    /// The keys tokens are signed with.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The deny list this issuer's revocations go to at once (before any
    /// other instance learns of them from the store), and that
    /// `/introspect` consults.
    pub fn revocations(&self) -> &RevocationCache {
        &self.inner.revocations
    }

    /// A gate builder that trusts this issuer's access tokens: its keys
    /// (rotations included), its `iss`, every `aud`, and its deny list, so
    /// a revocation made through this issuer applies at once. Add a realm,
    /// required scopes or a leeway, then build.
    pub fn access_token_layer(&self) -> AccessTokenLayerBuilder {
        self.inner.audience.iter().fold(
            AccessTokenLayer::builder()
                .keys(self.inner.keys.clone())
                .issuer(self.inner.issuer.clone())
                .revocations(self.inner.revocations.clone()),
            |gate, aud| gate.audience(aud.clone()),
        )
    }

    /// The issuer's clock.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// How long a revoked session or subject stays denied: the longest
    /// access-token lifetime the gate accepts.
    pub(crate) fn max_token_lifetime(&self) -> Duration {
        self.inner.revocations.max_token_lifetime()
    }

    /// A janitor for this issuer's store ([`Janitor`]): its database, its
    /// clock, and its deny list's margin, so no revocation row goes while
    /// a gate could still need it. Set retention and interval, build, and
    /// [`spawn`](Janitor::spawn) it.
    pub fn janitor(&self) -> JanitorBuilder {
        Janitor::builder(self.inner.db.clone())
            .clock(Arc::clone(&self.inner.clock))
            .revocation_margin(self.inner.revocations.margin())
    }

    /// Where this issuer's security events go.
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The one path revocations take: commit, then apply locally.
    pub(crate) fn revoker(&self) -> &Revoker {
        &self.inner.revoker
    }

    /// Starts a session for `user_id` on `client_id`: a new refresh-token
    /// family and an access token. `scope` defaults to everything the client
    /// may have; asking for more is [`IssueError::InvalidScope`].
    pub async fn issue(
        &self,
        user_id: &str,
        client_id: &str,
        scope: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<TokenResponse, IssueError> {
        let client = store::clients::find(&self.inner.db, client_id)
            .await?
            .ok_or(IssueError::UnknownClient)?;
        self.issue_for(
            &client,
            user_id,
            &Requested {
                scope,
                resources: &[],
                dpop_jkt: None,
            },
            meta,
        )
        .await
    }

    /// [`issue`](Self::issue) with RFC 8707 resources: the access tokens of
    /// the session carry them as `aud` (instead of the issuer's configured
    /// audience), and its refreshes may narrow them, never widen. Each must
    /// be one the client is registered for ([`IssueError::InvalidTarget`]).
    pub async fn issue_with(
        &self,
        user_id: &str,
        client_id: &str,
        requested: &Requested<'_>,
        meta: &ClientMeta,
    ) -> Result<TokenResponse, IssueError> {
        let client = store::clients::find(&self.inner.db, client_id)
            .await?
            .ok_or(IssueError::UnknownClient)?;
        self.issue_for(&client, user_id, requested, meta).await
    }

    pub(crate) async fn issue_for(
        &self,
        client: &Client,
        user_id: &str,
        requested: &Requested<'_>,
        meta: &ClientMeta,
    ) -> Result<TokenResponse, IssueError> {
        if user_id.starts_with(CLIENT_SUBJECT_PREFIX) || user_id.is_empty() {
            return Err(IssueError::ReservedSubject);
        }
        let scope =
            scope::narrow(&client.scope, requested.scope).ok_or(IssueError::InvalidScope)?;
        let resources = resources_for(client, requested)?;
        let lifetimes = self.inner.lifetimes.for_client(client);
        let now = self.inner.clock.now();
        let refresh_token = random_token();
        let session_expires_at = now + lifetimes.session;
        // Before the session is recorded, or it would know itself.
        let new_device = if self.inner.events.enabled() {
            !store::sessions::known_device(
                &self.inner.db,
                user_id,
                meta.ip,
                meta.user_agent.as_deref(),
            )
            .await?
        } else {
            false
        };
        let family_id = store::sessions::start(
            &self.inner.db,
            &NewSession {
                client_id: &client.client_id,
                user_id,
                tenant: meta.tenant.as_deref(),
                scope: &scope,
                resources: &resources,
                token_hash: hash_token(&refresh_token),
                ip: meta.ip,
                user_agent: meta.user_agent.as_deref(),
                device_fingerprint: meta.device_fingerprint.as_deref(),
                now,
                token_expires_at: now + lifetimes.refresh_idle,
                session_expires_at,
                // RFC 9449 §5: a public client's refresh tokens are bound
                // to its key; a confidential client's need not be (its
                // secret already binds them).
                dpop_jkt: requested.dpop_jkt.filter(|_| !client.is_confidential()),
            },
        )
        .await?;
        self.inner.events.emit(SecurityEvent::SessionStarted {
            sid: family_id.clone(),
            subject: user_id.to_owned(),
            client_id: client.client_id.clone(),
            ip: meta.ip,
            user_agent: meta.user_agent.clone(),
            new_device,
        });
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: user_id,
            client_id: &client.client_id,
            scope: &scope,
            resources: &resources,
            sid: Some(&family_id),
            tenant: meta.tenant.as_deref(),
            now,
            ttl: lifetimes.access,
            cap: Some(session_expires_at),
            dpop_jkt: requested.dpop_jkt,
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: Some(refresh_token),
            scope,
            refresh_token_expires_in: Some(secs_between(
                now,
                (now + lifetimes.refresh_idle).min(session_expires_at),
            )),
        })
    }

    /// The client_credentials grant: an access token whose subject is the
    /// client itself (`client:<id>`, never a user's: RFC 9068 §5), no
    /// refresh token (RFC 6749 §4.4.3).
    pub(crate) fn client_credentials(
        &self,
        client: &Client,
        requested: &Requested<'_>,
    ) -> Result<TokenResponse, IssueError> {
        let scope =
            scope::narrow(&client.scope, requested.scope).ok_or(IssueError::InvalidScope)?;
        let resources = resources_for(client, requested)?;
        let lifetimes = self.inner.lifetimes.for_client(client);
        let now = self.inner.clock.now();
        let subject = format!("{CLIENT_SUBJECT_PREFIX}{}", client.client_id);
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: &subject,
            client_id: &client.client_id,
            scope: &scope,
            resources: &resources,
            sid: None,
            tenant: None,
            now,
            ttl: lifetimes.access,
            cap: None,
            dpop_jkt: requested.dpop_jkt,
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: None,
            scope,
            refresh_token_expires_in: None,
        })
    }

    /// The refresh_token grant: rotate `token` exactly once.
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        token: &str,
        requested: &Requested<'_>,
        meta: &ClientMeta,
    ) -> Result<TokenResponse, IssueError> {
        let lifetimes = self.inner.lifetimes.for_client(client);
        let now = self.inner.clock.now();
        let child = self.inner.refresh_secret.child_of(token);
        let outcome = store::rotation::rotate(
            &self.inner.db,
            &Rotation {
                request: RefreshRequest {
                    client_id: &client.client_id,
                    ip: meta.ip,
                    user_agent: meta.user_agent.as_deref(),
                    scope: requested.scope,
                    resources: requested.resources,
                    dpop_jkt: requested.dpop_jkt,
                    now,
                },
                presented_hash: hash_token(token),
                child_hash: hash_token(&child),
                idle_ttl: lifetimes.refresh_idle,
                policy: &self.inner.policy,
                max_token_lifetime: self.max_token_lifetime(),
            },
        )
        .await?;
        let session = match outcome {
            RefreshOutcome::Rotated(s) => {
                telemetry::rotation();
                self.inner.events.emit(SecurityEvent::RefreshRotated {
                    sid: s.sid.clone(),
                    subject: s.user_id.clone(),
                    client_id: s.client_id.clone(),
                });
                s
            }
            RefreshOutcome::Replayed(s) => s,
            RefreshOutcome::Rejected {
                error,
                revoked,
                session,
            } => {
                // Reuse detection or a binding mismatch revoked the session
                // inside the rotation's transaction.
                self.inner.revoker.applied_by_refresh(revoked.as_ref());
                self.report_refusal(error, revoked.is_some(), session, meta);
                return Err(error.into());
            }
            RefreshOutcome::Unknown => return Err(IssueError::UnknownToken),
        };
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: &session.user_id,
            client_id: &session.client_id,
            scope: &session.access_scope,
            resources: &session.resources,
            sid: Some(&session.sid),
            tenant: session.tenant.as_deref(),
            now,
            ttl: lifetimes.access,
            cap: Some(session.expires_at),
            dpop_jkt: requested.dpop_jkt,
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: Some(child),
            scope: session.access_scope,
            refresh_token_expires_in: Some(secs_between(
                now,
                (now + lifetimes.refresh_idle).min(session.expires_at),
            )),
        })
    }

    /// Reports a refused refresh that says something about the token's
    /// holder: a replay, or a binding mismatch.
    fn report_refusal(
        &self,
        error: RefreshError,
        session_revoked: bool,
        s: RefusedSession,
        meta: &ClientMeta,
    ) {
        if error == RefreshError::Reused && session_revoked {
            telemetry::replay();
        }
        let event = match error {
            RefreshError::Reused if session_revoked => SecurityEvent::ReplayDetected {
                sid: s.sid,
                subject: s.user_id,
                client_id: s.client_id,
                ip: meta.ip,
            },
            RefreshError::BindingMismatch | RefreshError::ClientMismatch => {
                SecurityEvent::BindingMismatch {
                    sid: s.sid,
                    subject: s.user_id,
                    client_id: s.client_id,
                    ip: meta.ip,
                    session_revoked,
                }
            }
            _ => return,
        };
        self.inner.events.emit(event);
    }

    /// Signs an access token; it never outlives `cap` (its session).
    /// Returns the token, its lifetime in seconds, and its `token_type`.
    fn mint(&self, m: &Mint<'_>) -> Result<(String, u64, &'static str), IssueError> {
        let Mint {
            sub,
            client_id,
            scope,
            resources,
            sid,
            tenant,
            now,
            ttl,
            cap,
            dpop_jkt,
        } = *m;
        let keys = self.inner.keys.load();
        let key = keys.signing_key().ok_or(IssueError::Signing(None))?;
        let iat = unix_secs(now);
        let exp = unix_secs(cap.map_or(now + ttl, |cap| cap.min(now + ttl))).max(iat + 1);
        let claims = AccessClaims {
            iss: self.inner.issuer.clone(),
            sub: sub.to_owned(),
            aud: if resources.is_empty() {
                self.inner.audience.clone()
            } else {
                resources.to_vec()
            },
            exp,
            iat,
            nbf: None,
            jti: random_string(16),
            client_id: client_id.to_owned(),
            scope: (!scope.is_empty()).then(|| scope.to_owned()),
            sid: sid.map(str::to_owned),
            tenant: tenant.map(str::to_owned),
            cnf: dpop_jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        let token = key
            .sign(&claims)
            .map_err(|e| IssueError::Signing(Some(e)))?;
        // RFC 9449 §5: a bound token is of type DPoP.
        let token_type = if dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
        Ok((token, exp - iat, token_type))
    }
}

/// Builds an [`Issuer`].
#[derive(Default)]
#[must_use]
pub struct IssuerBuilder {
    db: Option<DatabaseConnection>,
    keys: Option<Keys>,
    issuer: Option<String>,
    audience: Vec<String>,
    lifetimes: Lifetimes,
    refresh_secret: Option<RefreshSecret>,
    policy: RefreshPolicy,
    revocations: Option<RevocationCache>,
    events: Events,
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl IssuerBuilder {
    /// The database (required; migrated with [`store::migrate`]).
    pub fn db(self, db: DatabaseConnection) -> Self {
        Self {
            db: Some(db),
            ..self
        }
    }

    /// The keys; the current set's signing key signs (required).
    pub fn keys(self, keys: impl Into<Keys>) -> Self {
        Self {
            keys: Some(keys.into()),
            ..self
        }
    }

    /// The `iss` claim (required).
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            ..self
        }
    }

    /// An `aud` value (required, repeatable).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// Default lifetimes.
    pub fn lifetimes(self, lifetimes: Lifetimes) -> Self {
        Self { lifetimes, ..self }
    }

    /// The secret refresh-token successors are derived with (required; the
    /// same on every instance).
    pub fn refresh_secret(self, secret: RefreshSecret) -> Self {
        Self {
            refresh_secret: Some(secret),
            ..self
        }
    }

    /// Grace period and binding policy.
    pub fn policy(self, policy: RefreshPolicy) -> Self {
        Self { policy, ..self }
    }

    /// The deny list of this process — give the gate and the
    /// [`RevocationSync`](crate::revocation::RevocationSync) the same one.
    /// The issuer reads the time from its clock (see [`crate::time`]).
    /// Revocations made through this issuer (reuse detection, `/revoke`,
    /// logout) reach it at once; its `max_token_lifetime` sets how long
    /// revoked sessions stay denied. Default: a private, empty list.
    pub fn revocations(self, cache: RevocationCache) -> Self {
        Self {
            revocations: Some(cache),
            ..self
        }
    }

    /// Where security events go ([`crate::events`]): session started
    /// (with the new-device signal), refresh rotated, replay detected,
    /// binding mismatch, session revoked, logout everywhere, and from the
    /// token endpoint client-authentication failures, rate limits and
    /// lockouts. Delivered on a thread of their own through a queue of
    /// [`DEFAULT_EVENT_QUEUE`]; requests never wait for the sink.
    pub fn events(self, sink: impl EventSink) -> Self {
        self.events_with_capacity(sink, DEFAULT_EVENT_QUEUE)
    }

    /// [`events`](Self::events) with a queue of `capacity` (events that do
    /// not fit are dropped and counted).
    pub fn events_with_capacity(self, sink: impl EventSink, capacity: usize) -> Self {
        Self {
            events: Events::new(sink, capacity),
            ..self
        }
    }

    /// Checks and builds.
    pub fn build(self) -> Result<Issuer, IssuerConfigError> {
        let keys = self.keys.ok_or(IssuerConfigError::MissingSigningKey)?;
        if keys.current().signing_key().is_none() {
            return Err(IssuerConfigError::MissingSigningKey);
        }
        let revocations = self.revocations.unwrap_or_default();
        let l = self.lifetimes;
        if l.access.is_zero()
            || l.refresh_idle.is_zero()
            || l.session.is_zero()
            || l.access > l.session
            || l.access > revocations.max_token_lifetime()
        {
            return Err(IssuerConfigError::InvalidLifetimes);
        }
        if self.audience.is_empty() {
            return Err(IssuerConfigError::MissingAudience);
        }
        let db = self.db.ok_or(IssuerConfigError::MissingDb)?;
        Ok(Issuer {
            inner: Arc::new(Inner {
                revoker: Revoker::new(db.clone(), revocations.clone(), self.events.clone()),
                events: self.events,
                db,
                keys,
                issuer: self.issuer.ok_or(IssuerConfigError::MissingIssuer)?,
                audience: self.audience,
                lifetimes: l,
                refresh_secret: self
                    .refresh_secret
                    .ok_or(IssuerConfigError::MissingRefreshSecret)?,
                policy: self.policy,
                clock: revocations.clock(),
                revocations,
            }),
        })
    }
}

/// The RFC 8707 resources of new tokens for `client`, the one rule of every
/// grant that starts from the client (a session, client_credentials): the
/// requested ones, each registered for the client, duplicates dropped; or
/// none, so the tokens carry the issuer's configured audience rather than
/// every resource the client may name.
fn resources_for(client: &Client, requested: &Requested<'_>) -> Result<Vec<String>, IssueError> {
    if requested.resources.is_empty() {
        return Ok(Vec::new());
    }
    audience::narrow(&client.resources, requested.resources).ok_or(IssueError::InvalidTarget)
}

/// Whole seconds from `from` to `to`, rounded down; zero when `to` is not
/// later.
fn secs_between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map_or(0, |d| d.as_secs())
}
