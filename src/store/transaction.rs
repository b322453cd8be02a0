//! Transactions: how every store transaction begins, and the retry of one
//! the database rolled back for a deadlock or a serialization failure.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use sea_orm::RuntimeErr;
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
/// a deadlock or a serialization failure (it was rolled back whole).
const TRANSACTION_ATTEMPTS: usize = 4;

/// Runs a transaction again when the database rolled it back for a
/// deadlock or a serialization failure.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(StoreError::Database(e)) if attempt < TRANSACTION_ATTEMPTS && is_transient(&e) => {
                tracing::debug!(attempt, error = %e, "transaction rolled back by the database; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// PostgreSQL's deadlock (40P01) and serialization failure (40001): the
/// transaction was rolled back and can simply run again.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn is_transient(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = e
    else {
        return false;
    };
    match &**e {
        sea_orm::sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Without a database driver there is no connection, so nothing to retry.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn is_transient(_: &DbErr) -> bool {
    false
}
