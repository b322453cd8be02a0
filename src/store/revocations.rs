//! The persisted deny list: every revocation the gate must honour, as rows
//! numbered by a sequence that commits in order.
//!
//! A revoking transaction takes its `seq` values from the single
//! `revocation_counter` row, whose lock it holds until it commits. So rows
//! become visible in `seq` order on every backend, and a poller that has
//! seen `seq = n` has seen every row below `n` — unlike an auto-increment
//! column, whose values are handed out at insert and may commit out of
//! order (a poller would then skip the late one for good). The price is
//! that revocations, which are rare next to refreshes, commit one at a time.

use std::time::{Duration, SystemTime};

use entity::{revocation, revocation_counter};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use sea_orm::DatabaseConnection;

use super::{StoreError, db_time, system_time, transaction::retrying};
use crate::revocation::{Revocation, RevocationKind, RevokedReason};

/// A revocation as read back from its row.
fn from_row(row: revocation::Model) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        seq: row.seq,
        kind: RevocationKind::parse(&row.kind)
            .ok_or(StoreError::Invalid("unknown revocation kind"))?,
        target: row.target,
        tenant: row.tenant,
        revoked_at: system_time(row.revoked_at),
        expires_at: system_time(row.expires_at),
        reason: RevokedReason::parse(&row.revoked_reason)
            .ok_or(StoreError::Invalid("unknown revocation reason"))?,
    })
}

/// A revocation to record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRevocation<'a> {
    pub(crate) kind: RevocationKind,
    pub(crate) target: &'a str,
    /// A subject's tenant.
    pub(crate) tenant: Option<&'a str>,
    pub(crate) expires_at: SystemTime,
    pub(crate) reason: RevokedReason,
}

/// Records revocations inside the caller's transaction. Call it last in
/// that transaction: it locks the counter row until commit, and taking
/// that lock last keeps the lock order (family rows, then the counter)
/// the same everywhere.
pub(crate) async fn record(
    txn: &impl ConnectionTrait,
    now: SystemTime,
    new: &[NewRevocation<'_>],
) -> Result<Vec<Revocation>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let n = i64::try_from(new.len()).map_err(|_| StoreError::Invalid("too many revocations"))?;
    use revocation_counter::Column as C;
    // The UPDATE comes first so that SQLite takes its write lock at once
    // and PostgreSQL the row lock, before the value is read back.
    revocation_counter::Entity::update_many()
        .col_expr(C::Last, Expr::col(C::Last).add(n))
        .filter(C::Id.eq(1))
        .exec(txn)
        .await?;
    let last = revocation_counter::Entity::find_by_id(1)
        .one(txn)
        .await?
        .ok_or(StoreError::Invalid("the revocation counter row is missing"))?
        .last;
    // As stored (microseconds), so what the caller applies equals what
    // every other instance will read back.
    let revoked_at = db_time(now);
    let recorded: Vec<Revocation> = (last - n + 1..)
        .zip(new)
        .map(|(seq, r)| Revocation {
            seq,
            kind: r.kind,
            target: r.target.to_owned(),
            tenant: r.tenant.map(str::to_owned),
            revoked_at: system_time(revoked_at),
            expires_at: system_time(Ord::max(db_time(r.expires_at), revoked_at)),
            reason: r.reason,
        })
        .collect();
    revocation::Entity::insert_many(recorded.iter().map(|r| revocation::ActiveModel {
        seq: Set(r.seq),
        kind: Set(r.kind.as_str().to_owned()),
        target: Set(r.target.clone()),
        revoked_at: Set(db_time(r.revoked_at)),
        expires_at: Set(db_time(r.expires_at)),
        revoked_reason: Set(r.reason.as_str().to_owned()),
        tenant: Set(r.tenant.clone()),
    }))
    .exec_without_returning(txn)
    .await?;
    // A wake-up hint for every instance's listener, delivered by
    // PostgreSQL only if this transaction commits. Revocations are rare,
    // so the brief commit-time lock NOTIFY takes is paid rarely; rotations
    // never send one. The rows and their cursor stay the truth.
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(NOTIFY).await?;
    }
    Ok(recorded)
}

/// The PostgreSQL channel revocation commits notify.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const CHANNEL: &str = "tollgate_revocations";

/// `NOTIFY` on [`CHANNEL`], with no payload: the listener reads from its
/// cursor, so several commits may coalesce into one notification.
const NOTIFY: &str = "NOTIFY tollgate_revocations";

/// The last `seq` handed out, and every revocation that still matters at
/// `since` (its tokens expire after it). Everything up to the returned
/// cursor is included: the counter is read first, and a counter value is
/// only visible once the rows it numbers are.
pub async fn live(
    db: &impl ConnectionTrait,
    since: SystemTime,
) -> Result<(i64, Vec<Revocation>), StoreError> {
    let cursor = last_seq(db).await?;
    let rows = revocation::Entity::find()
        .filter(revocation::Column::ExpiresAt.gt(db_time(since)))
        .filter(revocation::Column::Seq.lte(cursor))
        .order_by_asc(revocation::Column::Seq)
        .all(db)
        .await?;
    let rows = rows.into_iter().map(from_row).collect::<Result<_, _>>()?;
    Ok((cursor, rows))
}

/// The last `seq` handed out.
pub async fn last_seq(db: &impl ConnectionTrait) -> Result<i64, StoreError> {
    Ok(revocation_counter::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or(StoreError::Invalid("the revocation counter row is missing"))?
        .last)
}

/// The revocation numbered `seq`, if there is one.
pub async fn at(db: &impl ConnectionTrait, seq: i64) -> Result<Option<Revocation>, StoreError> {
    revocation::Entity::find_by_id(seq)
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

/// Up to `limit` revocations after `cursor`, in order.
pub async fn after(
    db: &impl ConnectionTrait,
    cursor: i64,
    limit: u64,
) -> Result<Vec<Revocation>, StoreError> {
    revocation::Entity::find()
        .filter(revocation::Column::Seq.gt(cursor))
        .order_by_asc(revocation::Column::Seq)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Deletes up to `limit` revocations whose tokens all expired before
/// `before`; returns how many went.
pub(crate) async fn purge(
    db: &impl ConnectionTrait,
    before: SystemTime,
    limit: u64,
) -> Result<u64, StoreError> {
    let seqs: Vec<i64> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Seq)
        .filter(revocation::Column::ExpiresAt.lt(db_time(before)))
        .order_by_asc(revocation::Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if seqs.is_empty() {
        return Ok(0);
    }
    Ok(revocation::Entity::delete_many()
        .filter(revocation::Column::Seq.is_in(seqs))
        .exec(db)
        .await?
        .rows_affected)
}

/// How long a session revocation must last: until the last access token
/// issued in the session so far expires — at most `max_token_lifetime`
/// from now, and never past the session's own end.
pub(crate) fn session_until(
    now: SystemTime,
    session_expires_at: SystemTime,
    max_token_lifetime: Duration,
) -> SystemTime {
    (now + max_token_lifetime).min(session_expires_at).max(now)
}

/// Records the revocation of one access token (`jti`) until its `exp`.
pub(crate) async fn revoke_access_token(
    db: &DatabaseConnection,
    jti: &str,
    expires_at: SystemTime,
    reason: RevokedReason,
    now: SystemTime,
) -> Result<Option<Revocation>, StoreError> {
    revoke_one(
        db,
        NewRevocation {
            kind: RevocationKind::Token,
            target: jti,
            tenant: None,
            expires_at,
            reason,
        },
        now,
    )
    .await
}

/// Records a logout another issuer told us of (back-channel logout): a
/// session, or a subject up to `at` (the logout's own time), until
/// `expires_at`.
#[cfg(feature = "backchannel-logout")]
pub(crate) async fn revoke_external(
    db: &DatabaseConnection,
    kind: RevocationKind,
    target: &str,
    expires_at: SystemTime,
    at: SystemTime,
) -> Result<Option<Revocation>, StoreError> {
    let new = NewRevocation {
        kind,
        target,
        tenant: None,
        expires_at,
        reason: RevokedReason::Logout,
    };
    revoke_one(db, new, at).await
}

/// One revocation in a transaction of its own, recorded at `now`.
async fn revoke_one(
    db: &DatabaseConnection,
    new: NewRevocation<'_>,
    now: SystemTime,
) -> Result<Option<Revocation>, StoreError> {
    retrying(|| async move {
        let txn = super::begin(db).await?;
        let mut recorded = record(&txn, now, &[new]).await?;
        txn.commit().await?;
        Ok(recorded.pop())
    })
    .await
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// What the committing instance applies to its own deny list is, to
    /// the microsecond, what every other instance reads back.
    #[tokio::test]
    async fn what_is_recorded_is_what_is_read_back() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        let now = SystemTime::now();
        let recorded = revoke_access_token(
            &db,
            "j-1",
            now + Duration::from_nanos(600_000_000_789),
            RevokedReason::Admin,
            now,
        )
        .await
        .unwrap()
        .unwrap();
        let read = after(&db, recorded.seq - 1, 10).await.unwrap();
        assert_eq!(read, vec![recorded]);
    }
}
