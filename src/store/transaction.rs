//! Transactions: how every store transaction begins, and the retry of one
//! the database rolled back for a deadlock or a serialization failure.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use sea_orm::RuntimeErr;
use std::time::Duration;

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, TransactionTrait,
};

use super::StoreError;

/// Begins a transaction at READ COMMITTED, which PostgreSQL uses by
/// default and MySQL/MariaDB do not (REPEATABLE READ). Our transactions
/// lock a row, then read what the lock protects; under REPEATABLE READ such
/// a read can still see the snapshot taken before the lock wait, so a
/// refresh that lost a race would not see the winner's consumption.
pub(crate) async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DbBackend::MySql {
        db.begin_with_config(Some(IsolationLevel::ReadCommitted), None)
            .await
    } else {
        db.begin().await
    }
}

/// How many times a transaction is tried when the database aborts it for
/// a deadlock, a serialization failure or a busy database (it was rolled
/// back whole, so it can simply run again).
const TRANSACTION_ATTEMPTS: u32 = 8;

/// The first retry waits up to this long; each further one up to twice
/// as long as the one before, to at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

/// The longest wait between two attempts. Eight attempts wait at most
/// 2+4+8+16+32+50+50 ms in all: a client sees a slower answer, never a
/// transient error.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// No new attempt starts this long after the first began. The aborts worth
/// retrying come at once (a serialization failure, a deadlock broken, a
/// stale SQLite snapshot); an attempt that waited out a lock timeout
/// already took the time the application allowed, and the store is then
/// unavailable, not contended.
const RETRY_BUDGET: Duration = Duration::from_secs(1);

/// Runs a transaction again when the database rolled it back for a
/// deadlock, a serialization failure (SQLSTATE 40001: PostgreSQL at
/// SERIALIZABLE, CockroachDB and YugabyteDB by default, MySQL's deadlock),
/// SQLite's busy or locked database, or a concurrent change of the row it
/// meant to move ([`StoreError::Conflict`]), after a short randomized
/// backoff, so racers that collided do not collide again in step. Only
/// when every attempt failed, or [`RETRY_BUDGET`] is spent, does the error
/// reach the caller (a 503).
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let started = std::time::Instant::now();
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e)
                if attempt < TRANSACTION_ATTEMPTS
                    && started.elapsed() < RETRY_BUDGET
                    && is_retryable(&e) =>
            {
                tracing::debug!(attempt, error = %e, "transaction rolled back; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A random wait in `[0, cap]`, `cap` doubling with each attempt (the
/// "full jitter" backoff). The randomness needs no secrecy, only to differ
/// between racers: std's per-instance random hasher keys give that without
/// a generator.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let cap = FIRST_BACKOFF
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(MAX_BACKOFF);
    let random = RandomState::new().hash_one(attempt);
    let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(random % (micros + 1))
}

fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Conflict => true,
        StoreError::Database(e) => is_transient(e),
        StoreError::Invalid(_) => false,
    }
}

/// A deadlock (PostgreSQL 40P01), a serialization failure (40001, also
/// MySQL's and MariaDB's deadlock), or SQLite's busy (5) or locked (6)
/// database, by primary result code, whatever the extended one: the
/// transaction was rolled back and can run again.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn is_transient(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = e
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = &**e else {
        return false;
    };
    #[cfg(feature = "sqlite")]
    if db
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
        return db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6));
    }
    matches!(db.code().as_deref(), Some("40P01" | "40001"))
}

/// Without a database driver there is no connection, so nothing to retry.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn is_transient(_: &DbErr) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_random_within_a_doubling_cap() {
        for attempt in 1..TRANSACTION_ATTEMPTS {
            let cap = (FIRST_BACKOFF * (1 << (attempt - 1))).min(MAX_BACKOFF);
            let waits: Vec<Duration> = (0..64).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "{attempt}: {waits:?}");
            // Racers do not wait in step.
            assert!(waits.iter().any(|w| *w != waits[0]), "{attempt}: {waits:?}");
        }
        let total: Duration = (1..TRANSACTION_ATTEMPTS)
            .map(|a| (FIRST_BACKOFF * (1 << (a - 1))).min(MAX_BACKOFF))
            .sum();
        assert!(total < Duration::from_millis(200), "{total:?}");
    }

    #[tokio::test]
    async fn only_a_transient_failure_runs_again_and_only_a_bounded_number_of_times() {
        let mut runs = 0;
        let r: Result<(), _> = retrying(|| {
            runs += 1;
            async { Err(StoreError::Conflict) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Conflict)));
        assert_eq!(runs, TRANSACTION_ATTEMPTS);

        let mut runs = 0;
        let r: Result<(), _> = retrying(|| {
            runs += 1;
            async { Err(StoreError::Invalid("no such client")) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))));
        assert_eq!(runs, 1);

        let mut runs = 0;
        let r = retrying(|| {
            runs += 1;
            let n = runs;
            async move {
                if n < 3 {
                    Err(StoreError::Conflict)
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }
}
