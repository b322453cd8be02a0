//! Sessions (refresh-token families in the tables): start one, revoke one
//! or all of a user's, list them. Each revocation is one transaction that
//! also records the deny-list row.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use entity::{client, refresh_token, token_family};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, sea_query::Expr,
};

use super::{
    StoreError, db_time,
    refresh_tokens::{device, unused_token},
    revocations::{self, NewRevocation, session_until},
    system_time,
    transaction::{begin, retrying},
};
use crate::{
    audience,
    revocation::{Revocation, RevocationKind, RevokedReason},
    secret::random_string,
};

/// A login to record: a new family and its first refresh token.
#[derive(Debug, Clone)]
pub(crate) struct NewSession<'a> {
    /// The client.
    pub(crate) client_id: &'a str,
    /// The subject.
    pub(crate) user_id: &'a str,
    /// Tenant.
    pub(crate) tenant: Option<&'a str>,
    /// The scope granted.
    pub(crate) scope: &'a str,
    /// The RFC 8707 resources granted; empty: the issuer's audience.
    pub(crate) resources: &'a [String],
    /// SHA-256 of the first refresh token.
    pub(crate) token_hash: [u8; 32],
    /// Client IP.
    pub(crate) ip: Option<IpAddr>,
    /// User-Agent.
    pub(crate) user_agent: Option<&'a str>,
    /// Device fingerprint, if the application has one.
    pub(crate) device_fingerprint: Option<&'a str>,
    /// Now.
    pub(crate) now: SystemTime,
    /// End of the first token's idle lifetime.
    pub(crate) token_expires_at: SystemTime,
    /// End of the session.
    pub(crate) session_expires_at: SystemTime,
    /// The DPoP key (RFC 7638 thumbprint) the session is bound to, if
    /// any.
    pub(crate) dpop_jkt: Option<&'a str>,
    /// When the user signed in, the class and the methods (space-separated).
    pub(crate) auth_time: Option<SystemTime>,
    pub(crate) acr: Option<&'a str>,
    pub(crate) amr: Option<String>,
}

/// Records a login; returns the family id (the `sid`), or `None` when the
/// client is disabled or gone.
///
/// The client's row is read under a shared lock (after the inserts):
/// disabling a client
/// updates that row and then revokes its families, so a login either
/// commits first (and its family is revoked with the others) or waits and
/// sees the client disabled. Logins of one client do not wait for each
/// other. (SQLite has one writer at a time, which orders them as well.)
pub(crate) async fn start(
    db: &DatabaseConnection,
    s: &NewSession<'_>,
) -> Result<Option<String>, StoreError> {
    let family_id = &random_string(16);
    retrying(|| async move {
        let txn = begin(db).await?;
        if !start_in(&txn, s, family_id).await? {
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(family_id.clone()))
    })
    .await
}

/// Records a login as `family_id` inside the caller's transaction; whether
/// the client is enabled (if not, the caller rolls back). The lock order
/// is [`start`]'s.
pub(super) async fn start_in(
    txn: &impl ConnectionTrait,
    s: &NewSession<'_>,
    family_id: &str,
) -> Result<bool, StoreError> {
    use sea_orm::QuerySelect;
    let now = db_time(s.now);
    let (ip, ua) = device(s.ip, s.user_agent);
    token_family::ActiveModel {
        id: Set(family_id.to_owned()),
        client_id: Set(s.client_id.to_owned()),
        user_id: Set(s.user_id.to_owned()),
        tenant: Set(s.tenant.map(str::to_owned)),
        scope: Set(s.scope.to_owned()),
        generation: Set(0),
        created_at: Set(now),
        expires_at: Set(db_time(s.session_expires_at)),
        last_used_at: Set(now),
        last_ip: Set(ip.clone()),
        last_user_agent: Set(ua.clone()),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        resources: Set(audience::join(s.resources)),
        dpop_jkt: Set(s.dpop_jkt.map(str::to_owned)),
        auth_time: Set(s.auth_time.map(db_time)),
        acr: Set(s.acr.map(str::to_owned)),
        amr: Set(s.amr.clone()),
    }
    .insert(txn)
    .await?;
    refresh_token::ActiveModel {
        family_id: Set(family_id.to_owned()),
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
        expires_at: Set(db_time(s.token_expires_at.min(s.session_expires_at))),
        ..unused_token(now)
    }
    .insert(txn)
    .await?;
    // After the writes, so SQLite's transaction holds its write lock
    // before it reads (a read first could not upgrade under contention).
    Ok(client::Entity::find_by_id(s.client_id.to_owned())
        .lock_shared()
        .one(txn)
        .await?
        .is_some_and(|c| c.disabled_at.is_none()))
}

/// Revokes a family and all its tokens and denies its `sid`, in one
/// transaction. Idempotent: a family already revoked keeps its first
/// reason and yields `None`.
pub(crate) async fn revoke(
    db: &DatabaseConnection,
    family_id: &str,
    reason: RevokedReason,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<Option<Revocation>, StoreError> {
    retrying(|| async move {
        let txn = begin(db).await?;
        let revoked = revoke_in(&txn, family_id, reason, now, max_token_lifetime).await?;
        txn.commit().await?;
        Ok(revoked)
    })
    .await
}

/// Revokes a family inside the caller's transaction; returns the `sid`
/// revocation recorded, or `None` if the family was revoked already (or is
/// unknown).
pub(super) async fn revoke_in(
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
            tenant: None,
            expires_at: session_until(now, expires_at, max_token_lifetime),
            reason,
        }],
    )
    .await?;
    Ok(recorded.pop())
}

/// A user's session as listed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRow {
    /// The session id (`sid`).
    pub(crate) sid: String,
    /// The client.
    pub(crate) client_id: String,
    /// Login time.
    pub(crate) created_at: SystemTime,
    /// Last refresh (or the login).
    pub(crate) last_used_at: SystemTime,
    /// End of the session.
    pub(crate) expires_at: SystemTime,
    /// Client IP of the last use.
    pub(crate) last_ip: Option<String>,
    /// User-Agent of the last use.
    pub(crate) last_user_agent: Option<String>,
}

/// `column` holds this tenant (`None`: no tenant).
fn in_tenant(column: impl ColumnTrait, tenant: Option<&str>) -> sea_orm::sea_query::SimpleExpr {
    match tenant {
        Some(t) => column.eq(t),
        None => column.is_null(),
    }
}

/// The live (unrevoked, unexpired) sessions of a user of `tenant`, newest
/// first.
pub(crate) async fn live_sessions(
    db: &impl ConnectionTrait,
    tenant: Option<&str>,
    user_id: &str,
    now: SystemTime,
) -> Result<Vec<SessionRow>, StoreError> {
    use sea_orm::QueryOrder;
    use token_family::Column as F;
    Ok(token_family::Entity::find()
        .filter(F::UserId.eq(user_id))
        .filter(in_tenant(F::Tenant, tenant))
        .filter(F::RevokedAt.is_null())
        .filter(F::ExpiresAt.gt(db_time(now)))
        .order_by_desc(F::LastUsedAt)
        .order_by_asc(F::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|f| SessionRow {
            sid: f.id,
            client_id: f.client_id,
            created_at: system_time(f.created_at),
            last_used_at: system_time(f.last_used_at),
            expires_at: system_time(f.expires_at),
            last_ip: f.last_ip,
            last_user_agent: f.last_user_agent,
        })
        .collect())
}

/// The owner of a family (its tenant and user), if it exists.
pub(crate) async fn owner(
    db: &impl ConnectionTrait,
    family_id: &str,
) -> Result<Option<(Option<String>, String)>, StoreError> {
    Ok(token_family::Entity::find_by_id(family_id)
        .one(db)
        .await?
        .map(|f| (f.tenant, f.user_id)))
}

/// Which of a user's sessions [`revoke_user`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserRevocation<'a> {
    /// Every session, and every access token issued to the user up to now
    /// (a not-before watermark on the subject).
    Everywhere,
    /// Every session but this one; each revoked session's `sid` is denied.
    AllBut(&'a str),
}

/// Revokes the sessions of a user of `tenant` in one transaction; returns
/// the deny-list entries recorded and how many sessions were revoked.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn revoke_user(
    db: &DatabaseConnection,
    tenant: Option<&str>,
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
        let txn = begin(db).await?;
        let mut families = token_family::Entity::update_many()
            .col_expr(F::RevokedAt, Expr::value(at))
            .col_expr(F::RevokedReason, Expr::value(reason.as_str()))
            .filter(F::UserId.eq(user_id))
            .filter(in_tenant(F::Tenant, tenant))
            .filter(F::RevokedAt.is_null());
        let mut tokens = refresh_token::Entity::update_many()
            .col_expr(T::RevokedAt, Expr::value(at))
            .col_expr(T::RevokedReason, Expr::value(reason.as_str()))
            .col_expr(T::UpdatedAt, Expr::value(at))
            .filter(T::UserId.eq(user_id))
            .filter(in_tenant(T::Tenant, tenant))
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
            Some(keep) => {
                let mine = sea_orm::Condition::all()
                    .add(F::UserId.eq(user_id))
                    .add(in_tenant(F::Tenant, tenant))
                    .add(F::Id.ne(keep));
                revoked_by(&txn, mine, at, now, max_token_lifetime).await?
            }
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
                // A subject is keyed within its tenant; a session by its id.
                tenant: tenant.filter(|_| kind == RevocationKind::Subject),
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

/// The families matching `which` that this transaction revoked (it holds
/// their locks, and `at` is its own timestamp), each with the time its
/// `sid` must stay denied.
async fn revoked_by(
    txn: &impl ConnectionTrait,
    which: sea_orm::Condition,
    at: chrono::DateTime<chrono::Utc>,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<Vec<(String, SystemTime)>, StoreError> {
    Ok(token_family::Entity::find()
        .filter(which)
        .filter(token_family::Column::RevokedAt.eq(at))
        .all(txn)
        .await?
        .into_iter()
        .map(|f| {
            let until = session_until(now, system_time(f.expires_at), max_token_lifetime);
            (f.id, until)
        })
        .collect())
}

/// Whether any refresh token of `user_id` (live or ended, until the janitor
/// deletes it) was used from this IP and User-Agent: what makes a login a
/// known device rather than a new one.
pub(crate) async fn known_device(
    db: &impl ConnectionTrait,
    user_id: &str,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<bool, StoreError> {
    use refresh_token::Column as T;
    let (ip, ua) = device(ip, user_agent);
    let mut q = refresh_token::Entity::find().filter(T::UserId.eq(user_id));
    q = match ip {
        Some(ip) => q.filter(T::ClientIp.eq(ip)),
        None => q.filter(T::ClientIp.is_null()),
    };
    q = match ua {
        Some(ua) => q.filter(T::UserAgent.eq(ua)),
        None => q.filter(T::UserAgent.is_null()),
    };
    Ok(q.one(db).await?.is_some())
}

/// Disables a client and revokes every session it holds, in one
/// transaction: the client's row is updated first (so a login holding its
/// shared lock commits before, and is revoked here, or waits and sees it
/// disabled), then its families and their tokens, each `sid` denied, and
/// every token issued to the client itself (`subject`: `client:<id>`, what
/// client_credentials mints) denied up to now. Returns the deny-list rows
/// and how many sessions were live; `None` for an unknown client.
pub(crate) async fn disable_client(
    db: &DatabaseConnection,
    client_id: &str,
    subject: &str,
    reason: RevokedReason,
    now: SystemTime,
    max_token_lifetime: Duration,
) -> Result<Option<(Vec<Revocation>, u64)>, StoreError> {
    use refresh_token::Column as T;
    use token_family::Column as F;
    let at = db_time(now);
    retrying(|| async move {
        let txn = begin(db).await?;
        let disabled_now = client::Entity::update_many()
            .col_expr(client::Column::DisabledAt, Expr::value(at))
            .filter(client::Column::ClientId.eq(client_id))
            .filter(client::Column::DisabledAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        // Disabled before (no login can start since; what is left is
        // revoked again below) or unknown.
        if disabled_now != 1
            && client::Entity::find_by_id(client_id.to_owned())
                .one(&txn)
                .await?
                .is_none()
        {
            return Ok(None);
        }
        let revoked = token_family::Entity::update_many()
            .col_expr(F::RevokedAt, Expr::value(at))
            .col_expr(F::RevokedReason, Expr::value(reason.as_str()))
            .filter(F::ClientId.eq(client_id))
            .filter(F::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        refresh_token::Entity::update_many()
            .col_expr(T::RevokedAt, Expr::value(at))
            .col_expr(T::RevokedReason, Expr::value(reason.as_str()))
            .col_expr(T::UpdatedAt, Expr::value(at))
            .filter(T::ClientId.eq(client_id))
            .filter(T::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        let mine = sea_orm::Condition::all().add(F::ClientId.eq(client_id));
        let families = revoked_by(&txn, mine, at, now, max_token_lifetime).await?;
        let mut new: Vec<NewRevocation<'_>> = families
            .iter()
            .map(|(sid, until)| NewRevocation {
                kind: RevocationKind::Session,
                target: sid,
                tenant: None,
                expires_at: *until,
                reason,
            })
            .collect();
        new.push(NewRevocation {
            kind: RevocationKind::Subject,
            target: subject,
            tenant: None,
            expires_at: now + max_token_lifetime,
            reason,
        });
        let recorded = revocations::record(&txn, now, &new).await?;
        txn.commit().await?;
        Ok(Some((recorded, revoked)))
    })
    .await
}

/// The families of a client, at most `limit` (what deleting it removes,
/// batch by batch, once it is disabled).
pub(crate) async fn families_of_client(
    db: &impl ConnectionTrait,
    client_id: &str,
    limit: u64,
) -> Result<Vec<String>, StoreError> {
    use sea_orm::QuerySelect;
    Ok(token_family::Entity::find()
        .select_only()
        .column(token_family::Column::Id)
        .filter(token_family::Column::ClientId.eq(client_id))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}
