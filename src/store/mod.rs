//! SeaORM persistence: clients, token families and refresh tokens.
//!
//! Database functions are plain `async fn`s over a connection. A rotation
//! runs in one transaction whose first statement is the conditional update
//! that consumes the presented token, so of N concurrent refreshes exactly
//! one wins, on SQLite (which takes its write lock at that statement) as on
//! PostgreSQL (row lock); any failure rolls the whole rotation back.
//!
//! ```
//! use tollgate::store::{self, clients::NewClient};
//! use sea_orm::Database;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! let secret = store::clients::register(&db, NewClient::confidential("svc", "read"))
//!     .await
//!     .unwrap()
//!     .expect("a confidential client gets a secret");
//! let client = store::clients::find(&db, "svc").await.unwrap().unwrap();
//! assert!(store::clients::secret_matches(&client, Some(&secret)));
//! assert!(!store::clients::secret_matches(&client, Some("guess")));
//! # });
//! ```

pub mod cleanup;
pub mod clients;
pub mod families;
pub mod revocations;

use std::time::SystemTime;

use chrono::{DateTime, SubsecRound, Utc};
use migration::MigratorTrait;
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, TransactionTrait,
};

/// A store operation that failed. Every variant means "try again later"
/// to a client (503); nothing was half-written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database unavailable")]
    Database(#[from] DbErr),
    /// A concurrent change won; the transaction was rolled back.
    #[error("concurrent update")]
    Conflict,
    /// Stored data that cannot be used (e.g. an unknown client).
    #[error("{0}")]
    Invalid(&'static str),
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

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

/// A time as stored: UTC, microsecond precision (what PostgreSQL keeps), so
/// that what is read back equals what was written.
pub(crate) fn db_time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t).trunc_subsecs(6)
}

pub(crate) fn system_time(t: DateTime<Utc>) -> SystemTime {
    t.into()
}
