//! Building an [`Issuer`]: every setting checked once, at `build`.

use std::{fmt, sync::Arc};

use sea_orm::DatabaseConnection;

use super::{Issuer, IssuerConfigError, Lifetimes, Revoker, handle::Inner};
use crate::{
    events::{DEFAULT_EVENT_QUEUE, EventSink, Events},
    keys::Keys,
    refresh::RefreshPolicy,
    revocation::RevocationCache,
    secret::RefreshSecret,
};

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
    /// The database (required; migrated with [`store::migrate`](crate::store::migrate)).
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
    /// [`RevocationSync`](crate::sync::RevocationSync) the same one.
    /// The issuer reads the time from its clock (see [`crate::time`]).
    /// Revocations made through this issuer (reuse detection, `/revoke`,
    /// logout) reach it at once; its `max_token_lifetime` sets how long
    /// revoked sessions stay denied. Default: a private, empty list.
    ///
    /// The list mirrors this issuer's store, so until a `RevocationSync`
    /// has warmed it ([`RevocationSync::sync`](crate::sync::RevocationSync::sync)
    /// before serving) it counts as stale and every gate over it answers
    /// 503: a restart wired without the sync cannot bring a logged-out
    /// token back.
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
        // The deny list mirrors this issuer's store: until a sync warms
        // it, a gate over it answers 503 (a restart must not bring a
        // revoked token back for want of a RevocationSync).
        revocations.require_warm();
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
                janitor_started: Arc::default(),
            }),
        })
    }
}
