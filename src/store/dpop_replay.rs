//! DPoP replay protection shared by every instance on one database: a
//! table with a unique key, where each accepted proof is recorded once
//! (RFC 9449 §11.1). The janitor deletes rows whose proofs have expired.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tollgate::{dpop::Dpop, store::{self, dpop_replay::StoreReplay}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! // Give the same `Dpop` (or one over the same database) to every
//! // instance's gates and token endpoint.
//! let dpop = Dpop::builder().shared_replay(StoreReplay::new(db)).build().unwrap();
//! # let _ = dpop;
//! # });
//! ```

use std::{future::Future, pin::Pin, time::SystemTime};

use entity::dpop_replay;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr,
};

use super::{StoreError, db_time};
use crate::dpop::{BoxError, SharedReplay};

/// The `dpop_replay` table as a [`SharedReplay`].
#[derive(Debug, Clone)]
pub struct StoreReplay {
    db: DatabaseConnection,
}

impl StoreReplay {
    /// Replay protection in `db` (migrated).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl SharedReplay for StoreReplay {
    fn claim(
        &self,
        key: u128,
        expires_at: SystemTime,
    ) -> Pin<Box<dyn Future<Output = Result<bool, BoxError>> + Send + '_>> {
        Box::pin(async move {
            let row = dpop_replay::ActiveModel {
                replay_key: Set(format!("{key:032x}")),
                expires_at: Set(db_time(expires_at)),
            };
            // The unique key decides between racing instances: exactly
            // one insert of a key succeeds.
            match dpop_replay::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    Ok(false)
                }
                Err(e) => Err(Box::new(e) as BoxError),
            }
        })
    }
}

/// Deletes up to `limit` rows of proofs that expired before `before`;
/// returns how many.
pub(crate) async fn purge(
    db: &impl ConnectionTrait,
    before: SystemTime,
    limit: u64,
) -> Result<u64, StoreError> {
    let keys: Vec<String> = dpop_replay::Entity::find()
        .select_only()
        .column(dpop_replay::Column::ReplayKey)
        .filter(dpop_replay::Column::ExpiresAt.lt(db_time(before)))
        .order_by_asc(dpop_replay::Column::ExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(dpop_replay::Entity::delete_many()
        .filter(dpop_replay::Column::ReplayKey.is_in(keys))
        .exec(db)
        .await?
        .rows_affected)
}
