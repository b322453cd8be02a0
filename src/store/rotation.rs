//! The rotation of a refresh token, exactly once, in one transaction: lock
//! the session and consume the presented token, ask
//! [`refresh::decide`](crate::refresh::decide) what to do, and apply the
//! decision.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use entity::{refresh_token, token_family};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{
    StoreError, db_time,
    refresh_tokens::{device, session_state, token_state, unused_token},
    sessions::revoke_in,
    system_time,
    transaction::{begin, retrying},
};
use crate::{
    refresh::{Decision, Outcome, RefreshError, RefreshPolicy, RefreshRequest, decide},
    revocation::Revocation,
};

/// A refresh, ready for the store: the request as presented, and what
/// the issuer derived for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotation<'a> {
    /// The request.
    pub(crate) request: RefreshRequest<'a>,
    /// SHA-256 of the presented token.
    pub(crate) presented_hash: [u8; 32],
    /// SHA-256 of its child (derived from the presented token).
    pub(crate) child_hash: [u8; 32],
    /// Idle lifetime of the child.
    pub(crate) idle_ttl: Duration,
    /// Grace and binding.
    pub(crate) policy: &'a RefreshPolicy,
    /// The longest access-token lifetime: how long a revoked session stays
    /// on the deny list.
    pub(crate) max_token_lifetime: Duration,
}

/// The session a successful refresh continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContinuedSession {
    /// The session id (`sid`).
    pub(crate) sid: String,
    /// The subject.
    pub(crate) user_id: String,
    /// The client.
    pub(crate) client_id: String,
    /// Tenant.
    pub(crate) tenant: Option<String>,
    /// Scope for the new access token.
    pub(crate) access_scope: String,
    /// RFC 8707 resources (`aud`) for the new access token; empty: the
    /// issuer's audience.
    pub(crate) resources: Vec<String>,
    /// End of the session: no token may outlive it.
    pub(crate) expires_at: SystemTime,
    /// End of the idle lifetime of the refresh token the answer carries
    /// (the child, or the session's current token for a replay): the same
    /// instant for every holder it is handed to.
    pub(crate) refresh_expires_at: SystemTime,
    /// How the user signed in to start the session.
    pub(crate) auth_time: Option<SystemTime>,
    pub(crate) acr: Option<String>,
    pub(crate) amr: Vec<String>,
}

/// The session a refused refresh token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefusedSession {
    /// The session id (`sid`).
    pub(crate) sid: String,
    /// The subject.
    pub(crate) user_id: String,
    /// The client it was issued to.
    pub(crate) client_id: String,
}

/// The outcome of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// The token was consumed and its child stored.
    Rotated(ContinuedSession),
    /// A spent token within its window: the session's current refresh
    /// token is the answer, `behind` generations after the presented one
    /// (re-derive it from the presented token that many times).
    Replayed {
        /// The session.
        session: ContinuedSession,
        /// How far ahead the head is.
        behind: u32,
        /// A race, a lost response or a stale generation.
        outcome: Outcome,
    },
    /// Refused; any revocation the decision asked for is committed and
    /// returned, for the caller's deny list.
    Rejected {
        /// Why.
        error: RefreshError,
        /// The session's revocation, if the decision revoked it.
        revoked: Option<Revocation>,
        /// Whose session the presented token belongs to.
        session: RefusedSession,
    },
    /// No such token.
    Unknown,
}

/// Rotates a refresh token, exactly once, in one transaction.
pub(crate) async fn rotate(
    db: &DatabaseConnection,
    r: &Rotation<'_>,
) -> Result<RefreshOutcome, StoreError> {
    retrying(|| rotate_once(db, r)).await
}

async fn rotate_once(
    db: &DatabaseConnection,
    r: &Rotation<'_>,
) -> Result<RefreshOutcome, StoreError> {
    let txn = begin(db).await?;
    let Some(locked) = lock_and_consume(&txn, r).await? else {
        txn.rollback().await?;
        return Ok(RefreshOutcome::Unknown);
    };
    let decision = decide(
        &token_state(&locked.token),
        &session_state(&locked.family),
        &r.request,
        locked.won,
        r.policy,
    );
    apply(txn, r, &locked, decision).await
}

/// The presented token, consumed by this request or not, and its session.
struct Locked {
    /// Whether this request's conditional update consumed the token.
    won: bool,
    token: refresh_token::Model,
    family: token_family::Model,
}

/// Locks the session of the presented token and consumes the token if it
/// is unconsumed and unrevoked; `None` if there is no such token.
async fn lock_and_consume(
    txn: &DatabaseTransaction,
    r: &Rotation<'_>,
) -> Result<Option<Locked>, StoreError> {
    use refresh_token::Column as T;
    use token_family::Column as F;
    let now = db_time(r.request.now);
    let row_locks = txn.get_database_backend() != DbBackend::Sqlite;
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
            .one(txn)
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
        let mut rows = consume.exec_with_returning(txn).await?;
        (rows.len() == 1, rows.pop())
    } else {
        (consume.exec(txn).await?.rows_affected == 1, None)
    };
    let token = match consumed {
        Some(token) => token,
        None => match refresh_token::Entity::find()
            .filter(T::TokenHash.eq(r.presented_hash.to_vec()))
            .one(txn)
            .await?
        {
            Some(token) => token,
            None => return Ok(None),
        },
    };
    let family = match locked_family {
        Some(f) if f.id == token.family_id => Some(f),
        _ => {
            token_family::Entity::find_by_id(token.family_id.clone())
                .one(txn)
                .await?
        }
    };
    Ok(family.map(|family| Locked { won, token, family }))
}

/// Carries out the decision and ends the transaction: commits a rotation
/// or a revocation, rolls back everything else (a refused request changes
/// nothing, a replay has nothing to write).
async fn apply(
    txn: DatabaseTransaction,
    r: &Rotation<'_>,
    locked: &Locked,
    decision: Decision,
) -> Result<RefreshOutcome, StoreError> {
    let Locked { token, family, .. } = locked;
    let outcome = decision.outcome();
    let continued =
        |access_scope: String, resources: Vec<String>, refresh_expires_at| ContinuedSession {
            sid: family.id.clone(),
            user_id: family.user_id.clone(),
            client_id: family.client_id.clone(),
            tenant: family.tenant.clone(),
            access_scope,
            resources,
            expires_at: system_time(family.expires_at),
            refresh_expires_at: system_time(refresh_expires_at),
            auth_time: family.auth_time.map(system_time),
            acr: family.acr.clone(),
            amr: crate::audience::split(family.amr.as_deref()),
        };
    let refused = || RefusedSession {
        sid: family.id.clone(),
        user_id: family.user_id.clone(),
        client_id: family.client_id.clone(),
    };
    match decision {
        Decision::Rotate { scope, resources } => {
            let child_expires = store_child(&txn, r, token, family).await?;
            txn.commit().await?;
            Ok(RefreshOutcome::Rotated(continued(
                scope,
                resources,
                child_expires,
            )))
        }
        Decision::Replay {
            scope,
            resources,
            behind,
            ..
        } => {
            let head_expires = head_expiry(&txn, family).await?;
            txn.rollback().await?;
            Ok(RefreshOutcome::Replayed {
                session: continued(scope, resources, head_expires),
                behind,
                outcome,
            })
        }
        Decision::Reject {
            error,
            revoke: Some(reason),
        } => {
            let revoked = revoke_in(
                &txn,
                &family.id,
                reason,
                r.request.now,
                r.max_token_lifetime,
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(
                session = %family.id,
                reason = reason.as_str(),
                error = %error,
                "refresh token session revoked"
            );
            Ok(RefreshOutcome::Rejected {
                error,
                revoked,
                session: refused(),
            })
        }
        Decision::Reject {
            error,
            revoke: None,
        } => {
            txn.rollback().await?;
            Ok(RefreshOutcome::Rejected {
                error,
                revoked: None,
                session: refused(),
            })
        }
    }
}

/// When the session's current refresh token ends its idle lifetime. The
/// session row is locked (or, on SQLite, the database), so the head cannot
/// move under this read.
async fn head_expiry(
    txn: &DatabaseTransaction,
    family: &token_family::Model,
) -> Result<DateTime<Utc>, StoreError> {
    use refresh_token::Column as T;
    let head = refresh_token::Entity::find()
        .select_only()
        .column(T::ExpiresAt)
        .filter(T::FamilyId.eq(family.id.clone()))
        .filter(T::Generation.eq(family.generation))
        .into_tuple::<DateTime<Utc>>()
        .one(txn)
        .await?;
    // A session always has its head; were it missing, the session's own
    // end is the bound no token passes.
    Ok(head.unwrap_or(family.expires_at))
}

/// Stores the child of the consumed token and moves the session's head to
/// it; a session that moved or was revoked meanwhile is a conflict. Returns
/// the end of the child's idle lifetime.
async fn store_child(
    txn: &DatabaseTransaction,
    r: &Rotation<'_>,
    token: &refresh_token::Model,
    family: &token_family::Model,
) -> Result<DateTime<Utc>, StoreError> {
    use token_family::Column as F;
    let now = db_time(r.request.now);
    let (ip, ua) = device(r.request.ip, r.request.user_agent);
    let child_expires = db_time(r.request.now + r.idle_ttl).min(family.expires_at);
    refresh_token::ActiveModel {
        family_id: Set(family.id.clone()),
        parent_id: Set(Some(token.id)),
        generation: Set(token.generation + 1),
        token_hash: Set(r.child_hash.to_vec()),
        user_id: Set(token.user_id.clone()),
        client_id: Set(token.client_id.clone()),
        tenant: Set(token.tenant.clone()),
        // RFC 6749 §6: the new refresh token has the scope of the old one;
        // only the access token narrows.
        scope: Set(token.scope.clone()),
        client_ip: Set(ip.clone()),
        user_agent: Set(ua.clone()),
        device_fingerprint: Set(token.device_fingerprint.clone()),
        expires_at: Set(child_expires),
        ..unused_token(now)
    }
    .insert(txn)
    .await?;
    let moved = token_family::Entity::update_many()
        .col_expr(F::Generation, Expr::value(token.generation + 1))
        .col_expr(F::LastUsedAt, Expr::value(now))
        .col_expr(F::LastIp, Expr::value(ip))
        .col_expr(F::LastUserAgent, Expr::value(ua))
        .filter(F::Id.eq(family.id.clone()))
        .filter(F::Generation.eq(token.generation))
        .filter(F::RevokedAt.is_null())
        .exec(txn)
        .await?
        .rows_affected;
    if moved != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(child_expires)
}
