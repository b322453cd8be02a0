//! Token families (sessions) and the rotation of their refresh tokens.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use chrono::{DateTime, Utc};
use entity::{refresh_token, token_family};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, RuntimeErr, sea_query::Expr,
};

use super::{
    StoreError, db_time,
    revocations::{self, NewRevocation, Revocation, RevocationKind, session_until},
    system_time,
};
use crate::{
    binding::{canonical, truncate_user_agent},
    refresh::{
        Decision, FamilyState, Presentation, RefreshError, RefreshPolicy, RevokedReason,
        TokenState, decide, random_string,
    },
};

/// A login to record: a new family and its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The client.
    pub client_id: &'a str,
    /// The subject.
    pub user_id: &'a str,
    /// Tenant.
    pub tenant: Option<&'a str>,
    /// The scope granted.
    pub scope: &'a str,
    /// SHA-256 of the first refresh token.
    pub token_hash: [u8; 32],
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// User-Agent.
    pub user_agent: Option<&'a str>,
    /// Device fingerprint, if the application has one.
    pub device_fingerprint: Option<&'a str>,
    /// Now.
    pub now: SystemTime,
    /// End of the first token's idle lifetime.
    pub token_expires_at: SystemTime,
    /// End of the session.
    pub family_expires_at: SystemTime,
}

/// Records a login; returns the family id (the `sid`).
pub async fn start(db: &DatabaseConnection, s: &NewSession<'_>) -> Result<String, StoreError> {
    let family_id = random_string(16);
    let now = db_time(s.now);
    let (ip, ua) = device(s.ip, s.user_agent);
    let txn = super::begin(db).await?;
    token_family::ActiveModel {
        id: Set(family_id.clone()),
        client_id: Set(s.client_id.to_owned()),
        user_id: Set(s.user_id.to_owned()),
        tenant: Set(s.tenant.map(str::to_owned)),
        scope: Set(s.scope.to_owned()),
        generation: Set(0),
        created_at: Set(now),
        expires_at: Set(db_time(s.family_expires_at)),
        last_used_at: Set(now),
        last_ip: Set(ip.clone()),
        last_user_agent: Set(ua.clone()),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(&txn)
    .await?;
    refresh_token::ActiveModel {
        family_id: Set(family_id.clone()),
        parent_id: Set(None),
        generation: Set(0),
        token_hash: Set(s.token_hash.to_vec()),
        user_id: Set(s.user_id.to_owned()),
        client_id: Set(s.client_id.to_owned()),
        tenant: Set(s.tenant.map(str::to_owned)),
        scope: Set(s.scope.to_owned()),
        client_ip: Set(ip),
        user_agent: Set(ua),
        device_fingerprint: Set(s.device_fingerprint.map(str::to_owned)),
        expires_at: Set(db_time(s.token_expires_at.min(s.family_expires_at))),
        ..unused_token(now)
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(family_id)
}

/// The columns every new refresh token shares: issued now, never used,
/// consumed or revoked.
fn unused_token(now: DateTime<Utc>) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        issued_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        last_used_at: Set(None),
        consumed_at: Set(None),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        ..Default::default()
    }
}

/// The client IP and User-Agent as stored.
fn device(ip: Option<IpAddr>, user_agent: Option<&str>) -> (Option<String>, Option<String>) {
    (
        ip.map(|ip| canonical(ip).to_string()),
        user_agent.map(|ua| truncate_user_agent(ua).to_owned()),
    )
}

/// A refresh request, ready for the store.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// SHA-256 of the presented token.
    pub presented_hash: [u8; 32],
    /// SHA-256 of its child (derived from the presented token).
    pub child_hash: [u8; 32],
    /// The authenticated client.
    pub client_id: &'a str,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// User-Agent.
    pub user_agent: Option<&'a str>,
    /// The `scope` parameter.
    pub scope: Option<&'a str>,
    /// Now.
    pub now: SystemTime,
    /// Idle lifetime of the child.
    pub idle_ttl: Duration,
    /// Grace and binding.
    pub policy: &'a RefreshPolicy,
    /// The longest access-token lifetime: how long a revoked session stays
    /// on the deny list.
    pub max_token_lifetime: Duration,
}

/// The session a successful refresh continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The family id (`sid`).
    pub family_id: String,
    /// The subject.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Tenant.
    pub tenant: Option<String>,
    /// Scope for the new access token.
    pub access_scope: String,
    /// End of the session: no token may outlive it.
    pub expires_at: SystemTime,
}

/// The outcome of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The token was consumed and its child stored.
    Rotated(Session),
    /// A racer within the grace period: the child already stored is the
    /// answer (re-derive it from the presented token).
    Replayed(Session),
    /// Refused; any revocation the decision asked for is committed and
    /// returned, for the caller's deny list.
    Rejected(RefreshError, Option<Revocation>),
    /// No such token.
    Unknown,
}

/// How many times a transaction is tried when the database aborts it for
/// a deadlock or a serialization failure (it was rolled back whole).
const TRANSACTION_ATTEMPTS: usize = 4;

/// Rotates a refresh token, exactly once, in one transaction.
pub async fn rotate(db: &DatabaseConnection, r: &Rotation<'_>) -> Result<Rotated, StoreError> {
    retrying(|| rotate_once(db, r)).await
}

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

async fn rotate_once(db: &DatabaseConnection, r: &Rotation<'_>) -> Result<Rotated, StoreError> {
    use refresh_token::Column as T;
    use token_family::Column as F;
    let now = db_time(r.now);
    let row_locks = db.get_database_backend() != DbBackend::Sqlite;
    let txn = super::begin(db).await?;
    // Lock order: the family row first, then its tokens. Every writer of a
    // family (rotation, replay, revocation) queues on that one row lock.
    // (Locking the token first deadlocks: PostgreSQL's re-check of a losing
    // UPDATE keeps the row locked although it no longer matches, while the
    // loser then waits for the family.) SQLite has no row locks: there the
    // consume below is the first statement, which takes the database write
    // lock at once, so racers queue on it and never upgrade a read lock.
    let locked_family = if row_locks {
        token_family::Entity::find()
            .filter(
                F::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(T::FamilyId)
                        .from(refresh_token::Entity)
                        .and_where(T::TokenHash.eq(r.presented_hash.to_vec()))
                        .to_owned(),
                ),
            )
            .lock_exclusive()
            .one(&txn)
            .await?
    } else {
        None
    };
    // The conditional consume: exactly one request gets the row back (or
    // sees rows_affected == 1 where RETURNING is not available).
    // A clock stepped back may read earlier than the token's issue: the
    // consumption is then recorded at the issue instant, never before it
    // (and the refresh still succeeds rather than tripping the CHECK).
    let consumed_at =
        Expr::case(T::IssuedAt.gt(now), Expr::col(T::IssuedAt)).finally(Expr::value(now));
    let consume = refresh_token::Entity::update_many()
        .col_expr(T::ConsumedAt, consumed_at.into())
        .col_expr(T::LastUsedAt, Expr::value(now))
        .col_expr(T::UpdatedAt, Expr::value(now))
        .filter(T::TokenHash.eq(r.presented_hash.to_vec()))
        .filter(T::ConsumedAt.is_null())
        .filter(T::RevokedAt.is_null());
    let (won, consumed) = if txn.support_returning() {
        let mut rows = consume.exec_with_returning(&txn).await?;
        (rows.len() == 1, rows.pop())
    } else {
        (consume.exec(&txn).await?.rows_affected == 1, None)
    };
    let token = match consumed {
        Some(token) => token,
        None => match refresh_token::Entity::find()
            .filter(T::TokenHash.eq(r.presented_hash.to_vec()))
            .one(&txn)
            .await?
        {
            Some(token) => token,
            None => {
                txn.rollback().await?;
                return Ok(Rotated::Unknown);
            }
        },
    };
    let family = match locked_family {
        Some(f) if f.id == token.family_id => f,
        _ => match token_family::Entity::find_by_id(token.family_id.clone())
            .one(&txn)
            .await?
        {
            Some(f) => f,
            None => {
                txn.rollback().await?;
                return Ok(Rotated::Unknown);
            }
        },
    };
    let presentation = Presentation {
        client_id: r.client_id,
        ip: r.ip,
        user_agent: r.user_agent,
        scope: r.scope,
        now: r.now,
        won_consume: won,
    };
    let decision = decide(
        &token_state(&token),
        &family_state(&family),
        &presentation,
        r.policy,
    );
    let session = |access_scope: String| Session {
        family_id: family.id.clone(),
        user_id: family.user_id.clone(),
        client_id: family.client_id.clone(),
        tenant: family.tenant.clone(),
        access_scope,
        expires_at: system_time(family.expires_at),
    };
    match decision {
        Decision::Rotate { scope } => {
            let (ip, ua) = device(r.ip, r.user_agent);
            let child_expires = db_time(r.now + r.idle_ttl).min(family.expires_at);
            refresh_token::ActiveModel {
                family_id: Set(family.id.clone()),
                parent_id: Set(Some(token.id)),
                generation: Set(token.generation + 1),
                token_hash: Set(r.child_hash.to_vec()),
                user_id: Set(token.user_id.clone()),
                client_id: Set(token.client_id.clone()),
                tenant: Set(token.tenant.clone()),
                // RFC 6749 §6: the new refresh token has the scope of the
                // old one; only the access token narrows.
                scope: Set(token.scope.clone()),
                client_ip: Set(ip.clone()),
                user_agent: Set(ua.clone()),
                device_fingerprint: Set(token.device_fingerprint.clone()),
                expires_at: Set(child_expires),
                ..unused_token(now)
            }
            .insert(&txn)
            .await?;
            let moved = token_family::Entity::update_many()
                .col_expr(F::Generation, Expr::value(token.generation + 1))
                .col_expr(F::LastUsedAt, Expr::value(now))
                .col_expr(F::LastIp, Expr::value(ip))
                .col_expr(F::LastUserAgent, Expr::value(ua))
                .filter(F::Id.eq(family.id.clone()))
                .filter(F::Generation.eq(token.generation))
                .filter(F::RevokedAt.is_null())
                .exec(&txn)
                .await?
                .rows_affected;
            if moved != 1 {
                txn.rollback().await?;
                return Err(StoreError::Conflict);
            }
            txn.commit().await?;
            Ok(Rotated::Rotated(session(scope)))
        }
        Decision::Replay { scope } => {
            // Nothing to write: the child is stored already.
            txn.rollback().await?;
            Ok(Rotated::Replayed(session(scope)))
        }
        Decision::Reject {
            error,
            revoke: Some(reason),
        } => {
            let revoked = revoke_in(&txn, &family.id, reason, r.now, r.max_token_lifetime).await?;
            txn.commit().await?;
            tracing::warn!(
                family = %family.id,
                reason = reason.as_str(),
                error = %error,
                "refresh token family revoked"
            );
            Ok(Rotated::Rejected(error, revoked))
        }
        Decision::Reject {
            error,
            revoke: None,
        } => {
            // Undo our consume, if any: a refused request changes nothing.
            txn.rollback().await?;
            Ok(Rotated::Rejected(error, None))
        }
    }
}

/// Revokes a family and all its tokens and denies its `sid`, in one
/// transaction. Idempotent: a family already revoked keeps its first
/// reason and yields `None`.
pub async fn revoke(
    db: &DatabaseConnection,
    family_id: &str,
    reason: RevokedReason,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<Option<Revocation>, StoreError> {
    retrying(|| async move {
        let txn = super::begin(db).await?;
        let revoked = revoke_in(&txn, family_id, reason, now, max_token_lifetime).await?;
        txn.commit().await?;
        Ok(revoked)
    })
    .await
}

/// Revokes a family inside the caller's transaction; returns the `sid`
/// revocation recorded, or `None` if the family was revoked already (or is
/// unknown).
async fn revoke_in(
    txn: &impl ConnectionTrait,
    family_id: &str,
    reason: RevokedReason,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<Option<Revocation>, StoreError> {
    let at = db_time(now);
    use refresh_token::Column as T;
    use token_family::Column as F;
    // A write first: SQLite takes its write lock here, PostgreSQL the row.
    let families = token_family::Entity::update_many()
        .col_expr(F::RevokedAt, Expr::value(at))
        .col_expr(F::RevokedReason, Expr::value(reason.as_str()))
        .filter(F::Id.eq(family_id))
        .filter(F::RevokedAt.is_null())
        .exec(txn)
        .await?
        .rows_affected;
    if families != 1 {
        return Ok(None);
    }
    refresh_token::Entity::update_many()
        .col_expr(T::RevokedAt, Expr::value(at))
        .col_expr(T::RevokedReason, Expr::value(reason.as_str()))
        .col_expr(T::UpdatedAt, Expr::value(at))
        .filter(T::FamilyId.eq(family_id))
        .filter(T::RevokedAt.is_null())
        .exec(txn)
        .await?;
    let expires_at = token_family::Entity::find_by_id(family_id)
        .one(txn)
        .await?
        .map_or(now, |f| system_time(f.expires_at));
    let mut recorded = revocations::record(
        txn,
        now,
        &[NewRevocation {
            kind: RevocationKind::Session,
            target: family_id,
            expires_at: session_until(now, expires_at, max_token_lifetime),
            reason,
        }],
    )
    .await?;
    Ok(recorded.pop())
}

/// A user's session as listed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The family id (`sid`).
    pub family_id: String,
    /// The client.
    pub client_id: String,
    /// Login time.
    pub created_at: SystemTime,
    /// Last refresh (or the login).
    pub last_used_at: SystemTime,
    /// End of the session.
    pub expires_at: SystemTime,
    /// Client IP of the last use.
    pub last_ip: Option<String>,
    /// User-Agent of the last use.
    pub last_user_agent: Option<String>,
}

/// The live (unrevoked, unexpired) sessions of a user, newest first.
pub async fn live_sessions(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: SystemTime,
) -> Result<Vec<SessionRow>, StoreError> {
    use sea_orm::QueryOrder;
    use token_family::Column as F;
    Ok(token_family::Entity::find()
        .filter(F::UserId.eq(user_id))
        .filter(F::RevokedAt.is_null())
        .filter(F::ExpiresAt.gt(db_time(now)))
        .order_by_desc(F::LastUsedAt)
        .order_by_asc(F::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|f| SessionRow {
            family_id: f.id,
            client_id: f.client_id,
            created_at: system_time(f.created_at),
            last_used_at: system_time(f.last_used_at),
            expires_at: system_time(f.expires_at),
            last_ip: f.last_ip,
            last_user_agent: f.last_user_agent,
        })
        .collect())
}

/// The owner of a family, if it exists.
pub async fn owner(
    db: &impl ConnectionTrait,
    family_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(token_family::Entity::find_by_id(family_id)
        .one(db)
        .await?
        .map(|f| f.user_id))
}

/// Which of a user's sessions [`revoke_user`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRevocation<'a> {
    /// Every session, and every access token issued to the user up to now
    /// (a not-before watermark on the subject).
    Everywhere,
    /// Every session but this one; each revoked session's `sid` is denied.
    AllBut(&'a str),
}

/// Revokes a user's sessions in one transaction; returns the deny-list
/// entries recorded and how many sessions were revoked.
pub async fn revoke_user(
    db: &DatabaseConnection,
    user_id: &str,
    which: UserRevocation<'_>,
    reason: RevokedReason,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<(Vec<Revocation>, u64), StoreError> {
    use refresh_token::Column as T;
    use token_family::Column as F;
    let at = db_time(now);
    let keep = match which {
        UserRevocation::Everywhere => None,
        UserRevocation::AllBut(current) => Some(current),
    };
    retrying(|| async move {
        let txn = super::begin(db).await?;
        let mut families = token_family::Entity::update_many()
            .col_expr(F::RevokedAt, Expr::value(at))
            .col_expr(F::RevokedReason, Expr::value(reason.as_str()))
            .filter(F::UserId.eq(user_id))
            .filter(F::RevokedAt.is_null());
        let mut tokens = refresh_token::Entity::update_many()
            .col_expr(T::RevokedAt, Expr::value(at))
            .col_expr(T::RevokedReason, Expr::value(reason.as_str()))
            .col_expr(T::UpdatedAt, Expr::value(at))
            .filter(T::UserId.eq(user_id))
            .filter(T::RevokedAt.is_null());
        if let Some(keep) = keep {
            families = families.filter(F::Id.ne(keep));
            tokens = tokens.filter(T::FamilyId.ne(keep));
        }
        let revoked = families.exec(&txn).await?.rows_affected;
        tokens.exec(&txn).await?;
        let new: Vec<(String, SystemTime)> = match keep {
            None => vec![(user_id.to_owned(), now + max_token_lifetime)],
            // The families this transaction revoked: it holds their locks,
            // and `at` is its own timestamp.
            Some(keep) => token_family::Entity::find()
                .filter(F::UserId.eq(user_id))
                .filter(F::RevokedAt.eq(at))
                .filter(F::Id.ne(keep))
                .all(&txn)
                .await?
                .into_iter()
                .map(|f| {
                    let until = session_until(now, system_time(f.expires_at), max_token_lifetime);
                    (f.id, until)
                })
                .collect(),
        };
        let kind = match keep {
            None => RevocationKind::Subject,
            Some(_) => RevocationKind::Session,
        };
        let new: Vec<NewRevocation<'_>> = new
            .iter()
            .map(|(target, expires_at)| NewRevocation {
                kind,
                target,
                expires_at: *expires_at,
                reason,
            })
            .collect();
        let recorded = revocations::record(&txn, now, &new).await?;
        txn.commit().await?;
        Ok((recorded, revoked))
    })
    .await
}

/// Records the revocation of one access token (`jti`) until its `exp`.
pub async fn revoke_access_token(
    db: &DatabaseConnection,
    jti: &str,
    expires_at: SystemTime,
    reason: RevokedReason,
    now: SystemTime,
) -> Result<Option<Revocation>, StoreError> {
    retrying(|| async move {
        let txn = super::begin(db).await?;
        let mut recorded = revocations::record(
            &txn,
            now,
            &[NewRevocation {
                kind: RevocationKind::Token,
                target: jti,
                expires_at,
                reason,
            }],
        )
        .await?;
        txn.commit().await?;
        Ok(recorded.pop())
    })
    .await
}

/// A stored refresh token and its family, as `/revoke` and `/introspect`
/// see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The family id (`sid`).
    pub family_id: String,
    /// The subject.
    pub user_id: String,
    /// Scope of the refresh token.
    pub scope: String,
    /// When this token was issued.
    pub issued_at: SystemTime,
    /// The token's state (client, expiry, consumed, revoked).
    pub token: TokenState,
    /// Its family's state.
    pub family: FamilyState,
}

/// Looks a refresh token up by its SHA-256.
pub async fn find_token(
    db: &impl ConnectionTrait,
    token_hash: [u8; 32],
) -> Result<Option<StoredToken>, StoreError> {
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let family = token_family::Entity::find_by_id(token.family_id.clone())
        .one(db)
        .await?;
    Ok(family.map(|family| StoredToken {
        family_id: family.id.clone(),
        user_id: token.user_id.clone(),
        scope: token.scope.clone(),
        issued_at: system_time(token.issued_at),
        token: token_state(&token),
        family: family_state(&family),
    }))
}

fn token_state(t: &refresh_token::Model) -> TokenState {
    TokenState {
        generation: t.generation,
        consumed_at: t.consumed_at.map(system_time),
        revoked: t.revoked_at.is_some(),
        expires_at: system_time(t.expires_at),
        client_id: t.client_id.clone(),
        client_ip: t.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
        user_agent: t.user_agent.clone(),
    }
}

fn family_state(f: &token_family::Model) -> FamilyState {
    FamilyState {
        generation: f.generation,
        revoked: f.revoked_at.is_some(),
        expires_at: system_time(f.expires_at),
        scope: f.scope.clone(),
    }
}
