//! Every instance's deny list in step with the store: [`RevocationSync`]
//! warms a [`RevocationCache`] from the persisted revocations before the
//! gate serves, then follows new rows by their sequence (polling, and on
//! PostgreSQL a `LISTEN` woken by the `NOTIFY` each revocation commit
//! sends), reports staleness, and can make the gate fail closed.
//!
//! It lives beside the store and the deny list, not in either: the deny
//! list stays a leaf the gate can use without a database, and the store
//! never touches memory.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sea_orm::{DatabaseConnection, DbBackend};

use crate::{
    events::{Events, SecurityEvent},
    revocation::{Revocation, RevocationCache},
    store::{StoreError, revocations},
    telemetry,
    time::{from_unix_millis, unix_millis},
};

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Default time between two polls of the revocation table: 1 second.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Default number of rows read per query while catching up: 1000.
pub const DEFAULT_SYNC_BATCH: u64 = 1000;

/// No cursor yet: the cache has not been warmed up.
const COLD: i64 = i64::MIN;

struct Inner {
    db: DatabaseConnection,
    /// Listen for PostgreSQL notifications (on PostgreSQL only).
    notifications: bool,
    /// Where the listener connects; `None`: the pool's own options.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    listen_url: Option<String>,
    cache: RevocationCache,
    interval: Duration,
    batch: u64,
    fail_closed_after: Option<Duration>,
    /// The last `seq` applied, or [`COLD`].
    cursor: AtomicI64,
    /// Whether the last sync failed.
    failing: AtomicBool,
    /// Where stale / recovered events go.
    events: Events,
    /// The cursor's row as read from the store (`None`: none there).
    anchor: Mutex<(i64, Option<Revocation>)>,
    /// Unix milliseconds (cache clock) of the last successful sync; 0 =
    /// never.
    synced_at: AtomicU64,
}

/// Keeps a [`RevocationCache`] in step with the store's revocation table,
/// so that a revocation made on any instance reaches this one — on
/// PostgreSQL at once, woken by the `NOTIFY` each revocation commit sends
/// (see [`spawn`](RevocationSync::spawn)), elsewhere within the poll
/// interval — and a restarted process starts with every revocation that
/// still matters.
///
/// The first [`sync`](RevocationSync::sync) warms the cache with every
/// live row; later ones read the rows after the cursor. Rows commit in
/// sequence order (see [`store::revocations`](crate::store::revocations)),
/// so polling by cursor never skips one, on SQLite, PostgreSQL or MySQL.
///
/// When syncing fails the cache keeps its entries and the gate keeps
/// serving from them; [`staleness`](RevocationSync::staleness) says for
/// how long, and each failed poll logs a warning. With
/// [`fail_closed_after`](RevocationSyncBuilder::fail_closed_after) the gate
/// refuses every token (503) once the list is older than that — and until
/// the first sync has succeeded.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tollgate::{RevocationCache, sync::RevocationSync, store};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// store::migrate(&db).await.unwrap();
/// let deny = RevocationCache::default();
/// let sync = RevocationSync::builder(db, deny.clone())
///     .interval(Duration::from_millis(500))
///     .fail_closed_after(Duration::from_secs(30))
///     .build();
/// assert!(deny.is_stale()); // nothing loaded yet: fail closed
/// sync.sync().await.unwrap(); // warm up before serving
/// assert!(!deny.is_stale());
/// let poller = sync.spawn(); // then poll in the background
/// # poller.abort();
/// # });
/// ```
#[derive(Clone)]
pub struct RevocationSync {
    inner: Arc<Inner>,
}

impl fmt::Debug for RevocationSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSync")
            .field("interval", &self.inner.interval)
            .field("cursor", &self.cursor())
            .field("staleness", &self.staleness())
            .finish_non_exhaustive()
    }
}

impl RevocationSync {
    /// Starts a builder feeding `cache` from `db`.
    pub fn builder(db: DatabaseConnection, cache: RevocationCache) -> RevocationSyncBuilder {
        RevocationSyncBuilder {
            db,
            cache,
            interval: DEFAULT_POLL_INTERVAL,
            batch: DEFAULT_SYNC_BATCH,
            fail_closed_after: None,
            notifications: true,
            listen_url: None,
            events: Events::default(),
        }
    }

    /// One round: warm up if this is the first success, else read every row
    /// after the cursor. Returns how many revocations were applied.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        let stale_before = self.staleness().unwrap_or_default();
        let result = self.sync_once().await;
        let was_failing = self.inner.failing.swap(result.is_err(), Ordering::AcqRel);
        match (&result, was_failing) {
            (Err(_), false) => self.inner.events.emit(SecurityEvent::RevocationSyncStale {
                stale_for: self.staleness().unwrap_or_default(),
            }),
            (Ok(_), true) => self
                .inner
                .events
                .emit(SecurityEvent::RevocationSyncRecovered {
                    was_stale_for: stale_before,
                }),
            _ => {}
        }
        result
    }

    async fn sync_once(&self) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let started = inner.cache.now();
        let applied = loop {
            match inner.cursor.load(Ordering::Acquire) {
                COLD => break self.warm(started).await?,
                cursor => match self.follow(cursor).await? {
                    Some(applied) => break applied,
                    None => {
                        // The store lost commits and reissues their
                        // numbers. Start over from every live row, so none
                        // of the reissued ones is skipped.
                        tracing::warn!(
                            cursor,
                            "the revocation sequence went back; reloading the deny list"
                        );
                        inner.cursor.store(COLD, Ordering::Release);
                    }
                },
            }
        };
        // Fresh as of when this round started: anything committed before
        // that is now applied.
        // At least 1 ms: 0 means "never".
        let started = unix_millis(started).max(1);
        let synced = inner
            .synced_at
            .fetch_max(started, Ordering::AcqRel)
            .max(started);
        match inner.fail_closed_after {
            Some(limit) => inner
                .cache
                .set_fresh_until(Some(from_unix_millis(synced) + limit)),
            // Warm now, and never stale for lack of a sync again.
            None => inner.cache.set_fresh_until(None),
        }
        inner.cache.mark_warm();
        let (tokens, sessions, subjects) = inner.cache.entry_counts();
        telemetry::deny_list(tokens, sessions, subjects);
        telemetry::sync_lag(self.staleness().unwrap_or_default());
        Ok(applied)
    }

    /// Loads every revocation that still matters; sets the cursor.
    async fn warm(&self, started: SystemTime) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let since = started
            .checked_sub(inner.cache.margin())
            .unwrap_or(UNIX_EPOCH);
        let (cursor, rows) = revocations::live(&inner.db, since).await?;
        for r in &rows {
            inner.cache.apply(r);
        }
        let anchor = revocations::at(&inner.db, cursor).await?;
        inner.cursor.fetch_max(cursor, Ordering::AcqRel);
        // A warm-up starts the numbering over: replace the anchor whatever
        // it was.
        *inner
            .anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (cursor, anchor);
        Ok(rows.len())
    }

    /// Remembers the row at `seq` (the cursor) as it was read.
    fn set_anchor(&self, seq: i64, row: Option<Revocation>) {
        let mut anchor = self
            .inner
            .anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seq >= anchor.0 {
            *anchor = (seq, row);
        }
    }

    /// Applies the rows after `cursor`, in batches; `None` when the store's
    /// sequence is behind the cursor.
    async fn follow(&self, mut cursor: i64) -> Result<Option<usize>, StoreError> {
        let inner = &*self.inner;
        // The row at the cursor must still be the one read there: a store
        // that lost commits (a crash with synchronous_commit off) hands
        // their numbers out again, and reading "after" the cursor would
        // skip the reissued ones.
        let anchor = inner
            .anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if anchor.0 == cursor && revocations::at(&inner.db, cursor).await? != anchor.1 {
            return Ok(None);
        }
        let mut applied = 0;
        loop {
            let rows = revocations::after(&inner.db, cursor, inner.batch).await?;
            for r in &rows {
                inner.cache.apply(r);
            }
            applied += rows.len();
            let Some(last) = rows.last() else { break };
            cursor = last.seq;
            inner.cursor.fetch_max(cursor, Ordering::AcqRel);
            self.set_anchor(cursor, Some(last.clone()));
            if (rows.len() as u64) < inner.batch {
                break;
            }
        }
        Ok(Some(applied))
    }

    /// Follows the store forever on the current tokio runtime: a
    /// [`sync`](Self::sync) every interval, and on PostgreSQL (with
    /// [`notifications`](RevocationSyncBuilder::notifications), the default)
    /// one as soon as another instance commits a revocation. A failed sync
    /// logs a warning with the staleness. Abort the handle to stop both.
    /// Await one `sync` first if the process must not serve before its deny
    /// list is loaded.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            // The listener lives as long as this task: aborting the handle
            // drops the guard, which aborts the listener.
            let _listener = this.listens().then(|| {
                let listening = this.clone();
                AbortOnDrop(tokio::spawn(async move { listening.listen().await }))
            });
            this.poll().await;
        })
    }

    /// Whether [`spawn`](Self::spawn) listens for notifications.
    fn listens(&self) -> bool {
        let wanted =
            self.inner.notifications && self.inner.db.get_database_backend() == DbBackend::Postgres;
        if wanted && !cfg!(feature = "postgres") {
            tracing::warn!(
                "tollgate was built without its `postgres` feature: revocations are polled, not listened for"
            );
        }
        wanted && cfg!(feature = "postgres")
    }

    /// The periodic poll: the fallback, and the guard against lost
    /// notifications.
    async fn poll(&self) {
        let mut ticks = tokio::time::interval(self.inner.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sync_logged().await;
        }
    }

    async fn sync_logged(&self) {
        if let Err(e) = self.sync().await {
            tracing::warn!(
                error = %e,
                stale_ms = self.staleness().map(|d| d.as_millis()),
                "revocation sync failed; serving from the last known deny list"
            );
            // Growing while syncs fail.
            if let Some(lag) = self.staleness() {
                telemetry::sync_lag(lag);
            }
        }
    }

    /// Listens on PostgreSQL's revocation channel on a connection of its
    /// own, and syncs from the cursor on every notification (several
    /// pending ones coalesce into one sync). When the connection drops it
    /// reconnects with backoff and syncs right after `LISTEN` succeeds, so
    /// nothing committed while it was away waits for the poll.
    #[cfg(feature = "postgres")]
    async fn listen(&self) {
        const FIRST_BACKOFF: Duration = Duration::from_millis(50);
        const MAX_BACKOFF: Duration = Duration::from_secs(5);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut listener = match self.listener().await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis(), "cannot listen for revocations; polling meanwhile");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            tracing::debug!("listening for revocations");
            // Whatever committed while we were not listening.
            self.sync_logged().await;
            // `Ok(None)`: the connection was lost.
            while let Ok(Some(_)) = listener.try_recv().await {
                while listener.next_buffered().is_some() {}
                self.sync_logged().await;
            }
            tracing::debug!("revocation listener disconnected; reconnecting");
        }
    }

    #[cfg(not(feature = "postgres"))]
    async fn listen(&self) {}

    /// A listener on a dedicated connection (a pool of one, so the shared
    /// pool loses no connection), made from the listen URL or the pool's
    /// own connect options.
    #[cfg(feature = "postgres")]
    async fn listener(&self) -> Result<sea_orm::sqlx::postgres::PgListener, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
        let dedicated = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(5));
        let pool = match &self.inner.listen_url {
            Some(url) => dedicated.connect(url).await?,
            None => {
                let options = self
                    .inner
                    .db
                    .get_postgres_connection_pool()
                    .connect_options();
                dedicated.connect_with((*options).clone()).await?
            }
        };
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(revocations::CHANNEL).await?;
        Ok(listener)
    }

    /// How long ago (on the cache's clock) the last successful sync
    /// started; `None` before the first.
    pub fn staleness(&self) -> Option<Duration> {
        let synced = self.last_synced()?;
        Some(
            self.inner
                .cache
                .now()
                .duration_since(synced)
                .unwrap_or_default(),
        )
    }

    /// When the last successful sync started; `None` before the first.
    pub fn last_synced(&self) -> Option<SystemTime> {
        match self.inner.synced_at.load(Ordering::Acquire) {
            0 => None,
            ms => Some(from_unix_millis(ms)),
        }
    }

    /// The last revocation `seq` applied; `None` before the warm-up.
    pub fn cursor(&self) -> Option<i64> {
        match self.inner.cursor.load(Ordering::Acquire) {
            COLD => None,
            c => Some(c),
        }
    }
}

/// Builds a [`RevocationSync`].
#[must_use]
pub struct RevocationSyncBuilder {
    db: DatabaseConnection,
    cache: RevocationCache,
    interval: Duration,
    batch: u64,
    fail_closed_after: Option<Duration>,
    notifications: bool,
    listen_url: Option<String>,
    events: Events,
}

impl fmt::Debug for RevocationSyncBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSyncBuilder")
            .field("interval", &self.interval)
            .field("batch", &self.batch)
            .field("fail_closed_after", &self.fail_closed_after)
            .finish_non_exhaustive()
    }
}

impl RevocationSyncBuilder {
    /// Time between polls. Default [`DEFAULT_POLL_INTERVAL`]; at least 1 ms.
    pub fn interval(self, interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            ..self
        }
    }

    /// Rows per query while catching up. Default [`DEFAULT_SYNC_BATCH`]; at
    /// least 1.
    pub fn batch(self, batch: u64) -> Self {
        Self {
            batch: batch.max(1),
            ..self
        }
    }

    /// Refuse every token once the list has not been synced for this long
    /// (and before the first sync). Off by default: a failing store then
    /// only makes the list stale, never empty.
    pub fn fail_closed_after(self, limit: Duration) -> Self {
        Self {
            fail_closed_after: Some(limit),
            ..self
        }
    }

    /// On PostgreSQL, also listen for the notification every revocation
    /// commit sends, and sync at once (default on). The poll stays as the
    /// fallback. Turn it off behind a transaction-pooling PgBouncer, which
    /// does not pass notifications on, unless [`listen_url`](Self::listen_url)
    /// reaches PostgreSQL directly. Ignored on SQLite and MySQL.
    pub fn notifications(self, on: bool) -> Self {
        Self {
            notifications: on,
            ..self
        }
    }

    /// Where to report that syncing went stale and recovered (give it the
    /// issuer's: `issuer.events().clone()`). Default: nowhere.
    pub fn events(self, events: Events) -> Self {
        Self { events, ..self }
    }

    /// Where the listener connects (e.g. straight to PostgreSQL when the
    /// pool goes through PgBouncer). Default: the pool's own options.
    pub fn listen_url(self, url: impl Into<String>) -> Self {
        Self {
            listen_url: Some(url.into()),
            ..self
        }
    }

    /// Builds the sync. With a fail-closed limit, the cache counts as stale
    /// from now until the first successful sync.
    pub fn build(self) -> RevocationSync {
        if self.fail_closed_after.is_some() {
            self.cache.set_fresh_until(Some(UNIX_EPOCH));
        }
        RevocationSync {
            inner: Arc::new(Inner {
                db: self.db,
                notifications: self.notifications,
                listen_url: self.listen_url,
                cache: self.cache,
                interval: self.interval,
                batch: self.batch,
                fail_closed_after: self.fail_closed_after,
                cursor: AtomicI64::new(COLD),
                anchor: Mutex::new((COLD, None)),
                failing: AtomicBool::new(false),
                events: self.events,
                synced_at: AtomicU64::new(0),
            }),
        }
    }
}
