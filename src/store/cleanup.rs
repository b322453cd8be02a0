//! The janitor: hard-deletes what no longer matters, in bounded batches.
//!
//! Revocation never deletes (rows keep `revoked_at` and `revoked_reason`
//! for audit); this does, once a retention period has passed:
//!
//! - sessions (families) that expired or were revoked more than
//!   `retention` ago, with all their refresh tokens — consumed tokens of a
//!   live family are kept, since reuse detection needs them;
//! - revocation rows whose tokens have all expired (plus the deny list's
//!   margin): no gate can match them any more;
//! - rows of DPoP proofs past their acceptance window.
//!
//! Every statement touches at most `batch` rows, so a large backlog never
//! holds long locks, and running it on several instances at once is safe:
//! a row deleted twice is simply not there the second time.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tollgate::store::{self, cleanup::Janitor};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! let janitor = Janitor::builder(db)
//!     .retention(Duration::from_secs(7 * 86_400))
//!     .interval(Duration::from_secs(3600))
//!     .build();
//! let report = janitor.run_once(SystemTime::now()).await.unwrap();
//! assert_eq!(report.sessions, 0);
//! let task = janitor.spawn(); // or run it from your own scheduler
//! # task.abort();
//! # });
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use entity::{refresh_token, token_family};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Order,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};

use super::{StoreError, authorizations, clients, db_time, dpop_replay, revocations};
use crate::{
    revocation::DEFAULT_MARGIN,
    time::{Clock, SystemClock},
};

/// Default retention of dead sessions: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Default time between two janitor runs: 1 hour.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Default rows per statement: 500.
pub const DEFAULT_DELETE_BATCH: u64 = 500;

/// Default time a client nobody registered (RFC 7591, or recorded from its
/// metadata document) may go without starting an authorization before it
/// is deleted: 30 days.
pub const DEFAULT_UNUSED_CLIENT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Sessions (token families).
    pub sessions: u64,
    /// Refresh tokens.
    pub tokens: u64,
    /// Revocation rows.
    pub revocations: u64,
    /// Rows of expired DPoP proofs ([`super::dpop_replay`]).
    pub dpop_proofs: u64,
    /// Authorization requests: never redeemed and past every lifetime, or
    /// redeemed longer ago than the retention (kept so far so that a
    /// replayed code still finds the session to revoke).
    pub authorizations: u64,
    /// Clients nobody registered (RFC 7591, metadata documents) unused for
    /// their lifetime, with no session left.
    pub clients: u64,
}

/// Deletes expired sessions, tokens and revocations; see the module docs.
#[derive(Clone)]
pub struct Janitor {
    db: DatabaseConnection,
    retention: Duration,
    interval: Duration,
    batch: u64,
    margin: Duration,
    unused_client_ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Set at the first run or spawn: the issuer's, when the janitor came
    /// from [`Issuer::janitor`](crate::issuer::Issuer::janitor), so its
    /// token endpoints know one runs.
    started: Arc<AtomicBool>,
}

impl std::fmt::Debug for Janitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janitor")
            .field("retention", &self.retention)
            .field("interval", &self.interval)
            .field("batch", &self.batch)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl Janitor {
    /// Starts a builder with the defaults: the system clock and the
    /// default margin. [`Issuer::janitor`](crate::issuer::Issuer::janitor)
    /// starts one with the issuer's clock and its deny list's margin.
    pub fn builder(db: DatabaseConnection) -> JanitorBuilder {
        JanitorBuilder {
            janitor: Self {
                db,
                retention: DEFAULT_RETENTION,
                interval: DEFAULT_INTERVAL,
                batch: DEFAULT_DELETE_BATCH,
                margin: DEFAULT_MARGIN,
                unused_client_ttl: DEFAULT_UNUSED_CLIENT_TTL,
                clock: Arc::new(SystemClock),
                started: Arc::default(),
            },
        }
    }

    fn mark_started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// One full run, as of its clock's now: what [`spawn`](Self::spawn)
    /// runs every interval.
    pub async fn run(&self) -> Result<CleanupReport, StoreError> {
        self.run_once(self.clock.now()).await
    }

    /// One full run, as of `now`.
    pub async fn run_once(&self, now: SystemTime) -> Result<CleanupReport, StoreError> {
        self.mark_started();
        let mut report = CleanupReport::default();
        let cutoff = db_time(now.checked_sub(self.retention).unwrap_or(UNIX_EPOCH));
        let dead = Condition::any()
            .add(token_family::Column::ExpiresAt.lt(cutoff))
            .add(token_family::Column::RevokedAt.lt(cutoff));
        loop {
            let families: Vec<String> = token_family::Entity::find()
                .select_only()
                .column(token_family::Column::Id)
                .filter(dead.clone())
                .order_by_asc(token_family::Column::Id)
                .limit(self.batch)
                .into_tuple()
                .all(&self.db)
                .await?;
            if families.is_empty() {
                break;
            }
            let (tokens, sessions) = delete_families(&self.db, &families, self.batch).await?;
            report.tokens += tokens;
            report.sessions += sessions;
        }
        let before = now.checked_sub(self.margin).unwrap_or(UNIX_EPOCH);
        loop {
            let n = revocations::purge(&self.db, before, self.batch).await?;
            report.revocations += n;
            if n < self.batch {
                break;
            }
        }
        loop {
            let n = dpop_replay::purge(&self.db, now, self.batch).await?;
            report.dpop_proofs += n;
            if n < self.batch {
                break;
            }
        }
        let redeemed_before = now.checked_sub(self.retention).unwrap_or(UNIX_EPOCH);
        loop {
            let n = authorizations::purge(&self.db, now, redeemed_before, self.batch).await?;
            report.authorizations += n;
            if n < self.batch {
                break;
            }
        }
        // After the sessions: a client whose last dead session went above
        // goes in the same run.
        let unused_before = now
            .checked_sub(self.unused_client_ttl)
            .unwrap_or(UNIX_EPOCH);
        report.clients = clients::purge_unused_self_registered(&self.db, unused_before).await?;
        if report != CleanupReport::default() {
            tracing::info!(?report, "janitor deleted expired rows");
        }
        Ok(report)
    }

    /// Runs every interval on the current tokio runtime (the first run at
    /// once, each as of its clock's now), logging failures. Abort the
    /// handle to stop.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        self.mark_started();
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(this.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = this.run().await {
                    tracing::warn!(error = %e, "janitor run failed; will retry");
                }
            }
        })
    }
}

/// Deletes these families and their refresh tokens, the tokens newest
/// first: a child's id is above its parent's, so no batch deletes a parent
/// whose child is still there (the parent link does not cascade). How many
/// tokens and families went.
pub(crate) async fn delete_families(
    db: &DatabaseConnection,
    families: &[String],
    batch: u64,
) -> Result<(u64, u64), StoreError> {
    let mut tokens = 0;
    loop {
        let ids: Vec<i64> = refresh_token::Entity::find()
            .select_only()
            .column(refresh_token::Column::Id)
            .filter(refresh_token::Column::FamilyId.is_in(families.iter().cloned()))
            .order_by_desc(refresh_token::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        // MySQL checks the parent link row by row as it deletes, so
        // there the statement itself must go newest first; PostgreSQL
        // and SQLite check at the end of the statement (and have no
        // DELETE ... ORDER BY).
        let mut delete = Query::delete()
            .from_table(refresh_token::Entity)
            .and_where(refresh_token::Column::Id.is_in(ids))
            .to_owned();
        if db.get_database_backend() == DbBackend::MySql {
            delete.order_by(refresh_token::Column::Id, Order::Desc);
        }
        tokens += db.execute(&delete).await?.rows_affected();
    }
    let sessions = token_family::Entity::delete_many()
        .filter(token_family::Column::Id.is_in(families.iter().cloned()))
        .exec(db)
        .await?
        .rows_affected;
    Ok((tokens, sessions))
}

/// Builds a [`Janitor`].
#[derive(Debug)]
#[must_use]
pub struct JanitorBuilder {
    janitor: Janitor,
}

impl JanitorBuilder {
    /// How long dead sessions and their tokens are kept for audit.
    /// Default [`DEFAULT_RETENTION`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.janitor.retention = retention;
        self
    }

    /// Time between runs of [`Janitor::spawn`]. Default
    /// [`DEFAULT_INTERVAL`]; at least 1 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.janitor.interval = interval.max(Duration::from_secs(1));
        self
    }

    /// Rows per statement. Default [`DEFAULT_DELETE_BATCH`]; at least 1.
    pub fn batch(mut self, batch: u64) -> Self {
        self.janitor.batch = batch.max(1);
        self
    }

    /// How long a revocation row outlives its tokens' expiry: the deny
    /// list's margin (default [`DEFAULT_MARGIN`]), which
    /// [`Issuer::janitor`](crate::issuer::Issuer::janitor) sets. Shorter,
    /// a restarted instance could miss a revocation a gate still needs.
    pub fn revocation_margin(mut self, margin: Duration) -> Self {
        self.janitor.margin = margin;
        self
    }

    /// How long a client nobody registered (RFC 7591, or recorded from its
    /// metadata document, which is fetched again at its next `/authorize`)
    /// may go without starting an authorization before it is deleted, once
    /// it has no session left. Default [`DEFAULT_UNUSED_CLIENT_TTL`].
    pub fn unused_client_ttl(mut self, ttl: Duration) -> Self {
        self.janitor.unused_client_ttl = ttl;
        self
    }

    /// The clock [`Janitor::spawn`]'s runs read now from: the process's
    /// one clock (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.janitor.clock = clock;
        self
    }

    /// The flag the janitor sets when it first runs or is spawned.
    pub(crate) fn started_flag(mut self, started: Arc<AtomicBool>) -> Self {
        self.janitor.started = started;
        self
    }

    /// Builds the janitor.
    pub fn build(self) -> Janitor {
        self.janitor
    }
}
