//! The `Issuer` handle: what it holds, and the accessors the endpoints,
//! the gates and the application use.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use sea_orm::DatabaseConnection;

use super::{IssuerBuilder, Lifetimes, Revoker};
use crate::{
    access_token::{AccessTokenLayer, AccessTokenLayerBuilder},
    events::Events,
    keys::Keys,
    refresh::RefreshPolicy,
    revocation::RevocationCache,
    secret::RefreshSecret,
    store::cleanup::{Janitor, JanitorBuilder},
    time::Clock,
};

pub(super) struct Inner {
    pub(super) db: DatabaseConnection,
    pub(super) keys: Keys,
    pub(super) issuer: String,
    pub(super) audience: Vec<String>,
    pub(super) lifetimes: Lifetimes,
    pub(super) refresh_secret: RefreshSecret,
    pub(super) policy: RefreshPolicy,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) revocations: RevocationCache,
    pub(super) revoker: Revoker,
    pub(super) events: Events,
    /// Set once a janitor built by [`Issuer::janitor`] runs.
    pub(super) janitor_started: Arc<AtomicBool>,
}

/// Mints access and refresh tokens and rotates refresh tokens. Cloning is
/// cheap.
#[derive(Clone)]
pub struct Issuer {
    pub(super) inner: Arc<Inner>,
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
            .started_flag(Arc::clone(&self.inner.janitor_started))
    }

    /// Whether a janitor from [`janitor`](Self::janitor) has run or been
    /// spawned.
    pub(crate) fn janitor_started(&self) -> bool {
        self.inner.janitor_started.load(Ordering::Relaxed)
    }

    /// Where this issuer's security events go.
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The one path revocations take: commit, then apply locally.
    pub(crate) fn revoker(&self) -> &Revoker {
        &self.inner.revoker
    }
}
