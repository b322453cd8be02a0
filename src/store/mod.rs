//! SeaORM persistence: clients, sessions, refresh tokens and revocations.
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
//! let now = std::time::SystemTime::now();
//! let secret = store::clients::register(&db, NewClient::confidential("svc", "read"), now)
//!     .await
//!     .unwrap()
//!     .expect("a confidential client gets a secret");
//! let client = store::clients::find(&db, "svc").await.unwrap().unwrap();
//! assert!(client.secret_matches(Some(&secret), now));
//! assert!(!client.secret_matches(Some("guess"), now));
//! # });
//! ```

pub(crate) mod authorizations;
pub mod cleanup;
pub mod clients;
pub(crate) mod consents;
pub mod dpop_replay;
pub(crate) mod refresh_tokens;
pub mod revocations;
pub(crate) mod rotation;
pub(crate) mod sessions;
mod transaction;

pub(crate) use transaction::begin;

use std::time::SystemTime;

use chrono::{DateTime, SubsecRound, Utc};
use migration::MigratorTrait;
use sea_orm::{DatabaseConnection, DbErr};

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

/// Applies every pending migration of tollgate's, recorded in its own
/// table (`tollgate_migrations`); every table it creates is named
/// `tollgate_…`. So it runs beside the application's own SeaORM migrator on
/// one database, before or after it; or merge
/// `tollgate_migration::Migrator::migrations()` into the application's
/// migrator instead (then the application's table records them).
///
/// Connect through [`tollgate::sea_orm`](crate::sea_orm), the SeaORM this
/// crate is built with, so the connection types match:
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = tollgate::sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// tollgate::store::migrate(&db).await.unwrap();
/// # });
/// ```
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// A time as stored: UTC, microsecond precision (what PostgreSQL keeps), so
/// that what is read back equals what was written.
pub(crate) fn db_time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t).trunc_subsecs(6)
}

pub(crate) fn system_time(t: DateTime<Utc>) -> SystemTime {
    t.into()
}
