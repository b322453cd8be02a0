//! Authorization requests (RFC 6749 §4.1) from `/authorize` to the code's
//! redemption: one row each, keyed by the SHA-256 of the pending id the
//! login page gets. Deciding is one conditional update (once, in the
//! browser that started it, within its lifetime); so is redeeming the
//! code, in the same transaction as the session it starts, so a code is
//! exchanged exactly once and a second redemption finds the session to
//! revoke.

use std::time::SystemTime;

use entity::authorization;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::Expr,
};

use super::{
    StoreError,
    consents::{ConsentRow, remember_in},
    db_time,
    sessions::{NewSession, start_in},
    system_time,
    transaction::{begin, retrying},
};
use crate::{audience, secret::random_string};

/// A validated authorization request to remember.
#[derive(Debug, Clone)]
pub(crate) struct NewAuthorization<'a> {
    pub(crate) request_hash: [u8; 32],
    pub(crate) browser_hash: [u8; 32],
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) redirect_uri_sent: bool,
    pub(crate) scope: &'a str,
    pub(crate) resources: &'a [String],
    pub(crate) state: Option<&'a str>,
    pub(crate) code_challenge: &'a str,
    pub(crate) dpop_jkt: Option<&'a str>,
    pub(crate) prompt: Option<&'a str>,
    pub(crate) max_age: Option<u64>,
    pub(crate) acr_values: Option<&'a str>,
    pub(crate) login_hint: Option<&'a str>,
    pub(crate) now: SystemTime,
    pub(crate) expires_at: SystemTime,
}

/// An authorization request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_sent: bool,
    pub(crate) scope: String,
    pub(crate) resources: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) dpop_jkt: Option<String>,
    pub(crate) prompt: Option<String>,
    pub(crate) max_age: Option<u64>,
    pub(crate) acr_values: Option<String>,
    pub(crate) login_hint: Option<String>,
    pub(crate) expires_at: SystemTime,
    pub(crate) decided: bool,
    pub(crate) code_expires_at: Option<SystemTime>,
    pub(crate) subject: Option<String>,
    pub(crate) auth_time: Option<SystemTime>,
    pub(crate) acr: Option<String>,
    pub(crate) amr: Vec<String>,
    pub(crate) granted_scope: Option<String>,
    pub(crate) redeemed: bool,
    pub(crate) family_id: Option<String>,
}

impl Stored {
    fn from_row(r: authorization::Model) -> Self {
        Self {
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            redirect_uri_sent: r.redirect_uri_sent,
            scope: r.scope,
            resources: audience::split(r.resources.as_deref()),
            state: r.state,
            code_challenge: r.code_challenge,
            dpop_jkt: r.dpop_jkt,
            prompt: r.prompt,
            max_age: r.max_age_secs.and_then(|s| u64::try_from(s).ok()),
            acr_values: r.acr_values,
            login_hint: r.login_hint,
            expires_at: system_time(r.expires_at),
            decided: r.decided_at.is_some(),
            code_expires_at: r.code_expires_at.map(system_time),
            subject: r.subject,
            auth_time: r.auth_time.map(system_time),
            acr: r.acr,
            amr: audience::split(r.amr.as_deref()),
            granted_scope: r.granted_scope,
            redeemed: r.redeemed_at.is_some(),
            family_id: r.family_id,
        }
    }
}

/// Records a validated request.
pub(crate) async fn create(
    db: &DatabaseConnection,
    a: &NewAuthorization<'_>,
) -> Result<(), StoreError> {
    let max_age = a.max_age.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    authorization::ActiveModel {
        request_hash: Set(a.request_hash.to_vec()),
        browser_hash: Set(a.browser_hash.to_vec()),
        client_id: Set(a.client_id.to_owned()),
        redirect_uri: Set(a.redirect_uri.to_owned()),
        redirect_uri_sent: Set(a.redirect_uri_sent),
        scope: Set(a.scope.to_owned()),
        resources: Set(audience::join(a.resources)),
        state: Set(a.state.map(str::to_owned)),
        code_challenge: Set(a.code_challenge.to_owned()),
        dpop_jkt: Set(a.dpop_jkt.map(str::to_owned)),
        prompt: Set(a.prompt.map(str::to_owned)),
        max_age_secs: Set(max_age),
        acr_values: Set(a.acr_values.map(str::to_owned)),
        login_hint: Set(a.login_hint.map(str::to_owned)),
        created_at: Set(db_time(a.now)),
        expires_at: Set(db_time(a.expires_at)),
        decided_at: Set(None),
        code_hash: Set(None),
        code_expires_at: Set(None),
        subject: Set(None),
        auth_time: Set(None),
        acr: Set(None),
        amr: Set(None),
        granted_scope: Set(None),
        redeemed_at: Set(None),
        family_id: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The undecided request with this id hash, started in this browser, not
/// past its lifetime.
pub(crate) async fn pending(
    db: &DatabaseConnection,
    request_hash: &[u8; 32],
    browser_hash: &[u8; 32],
    now: SystemTime,
) -> Result<Option<Stored>, StoreError> {
    use authorization::Column as A;
    Ok(authorization::Entity::find()
        .filter(A::RequestHash.eq(request_hash.to_vec()))
        .filter(A::BrowserHash.eq(browser_hash.to_vec()))
        .filter(A::DecidedAt.is_null())
        .filter(A::ExpiresAt.gt(db_time(now)))
        .one(db)
        .await?
        .map(Stored::from_row))
}

/// The application's answer to a pending request.
#[derive(Debug, Clone)]
pub(crate) enum Decision<'a> {
    /// Approved: the code (its hash) and what it grants.
    Approve {
        code_hash: [u8; 32],
        code_expires_at: SystemTime,
        subject: &'a str,
        auth_time: Option<SystemTime>,
        acr: Option<&'a str>,
        amr: Option<String>,
        granted_scope: &'a str,
        /// Remember the consent (client, subject: the granted scope, the
        /// request's resources and redirect URI), in the same
        /// transaction.
        remember: bool,
    },
    /// Denied.
    Deny,
}

/// Decides the pending request once: a conditional update that only the
/// first decision, from the browser that started it and within its
/// lifetime, wins; a remembered consent is written in the same
/// transaction. The request as it was, if this decision won.
pub(crate) async fn decide(
    db: &DatabaseConnection,
    request_hash: &[u8; 32],
    browser_hash: &[u8; 32],
    now: SystemTime,
    decision: &Decision<'_>,
) -> Result<Option<Stored>, StoreError> {
    use authorization::Column as A;
    let at = db_time(now);
    retrying(|| async move {
        let txn = begin(db).await?;
        let mut update =
            authorization::Entity::update_many().col_expr(A::DecidedAt, Expr::value(at));
        let mut remember = None;
        if let Decision::Approve {
            code_hash,
            code_expires_at,
            subject,
            auth_time,
            acr,
            amr,
            granted_scope,
            remember: wanted,
        } = decision
        {
            update = update
                .col_expr(A::CodeHash, Expr::value(code_hash.to_vec()))
                .col_expr(A::CodeExpiresAt, Expr::value(db_time(*code_expires_at)))
                .col_expr(A::Subject, Expr::value((*subject).to_owned()))
                .col_expr(A::AuthTime, Expr::value(auth_time.map(db_time)))
                .col_expr(A::Acr, Expr::value(acr.map(str::to_owned)))
                .col_expr(A::Amr, Expr::value(amr.clone()))
                .col_expr(A::GrantedScope, Expr::value((*granted_scope).to_owned()));
            remember = wanted.then_some((*subject, *granted_scope));
        }
        let won = update
            .filter(A::RequestHash.eq(request_hash.to_vec()))
            .filter(A::BrowserHash.eq(browser_hash.to_vec()))
            .filter(A::DecidedAt.is_null())
            .filter(A::ExpiresAt.gt(at))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !won {
            txn.rollback().await?;
            return Ok(None);
        }
        let stored = authorization::Entity::find_by_id(request_hash.to_vec())
            .one(&txn)
            .await?
            .map(Stored::from_row);
        if let (Some(row), Some((subject, scope))) = (&stored, remember) {
            let consent = ConsentRow {
                client_id: row.client_id.clone(),
                subject: subject.to_owned(),
                scope: scope.to_owned(),
                resources: row.resources.clone(),
                redirect_uri: row.redirect_uri.clone(),
                granted_at: now,
            };
            remember_in(&txn, &consent).await?;
        }
        txn.commit().await?;
        Ok(stored)
    })
    .await
}

/// Deletes up to `limit` requests that can no longer be used — never
/// redeemed, with the pending request and any code past their ends — and
/// those redeemed before `redeemed_before`. How many.
pub(crate) async fn purge(
    db: &DatabaseConnection,
    now: SystemTime,
    redeemed_before: SystemTime,
    limit: u64,
) -> Result<u64, StoreError> {
    use authorization::Column as A;
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let now = db_time(now);
    let unused = Condition::all()
        .add(A::RedeemedAt.is_null())
        .add(A::ExpiresAt.lt(now))
        .add(
            Condition::any()
                .add(A::CodeExpiresAt.is_null())
                .add(A::CodeExpiresAt.lt(now)),
        );
    let dead = Condition::any()
        .add(unused)
        .add(A::RedeemedAt.lt(db_time(redeemed_before)));
    let keys: Vec<Vec<u8>> = authorization::Entity::find()
        .select_only()
        .column(A::RequestHash)
        .filter(dead)
        .order_by_asc(A::ExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(authorization::Entity::delete_many()
        .filter(A::RequestHash.is_in(keys))
        .exec(db)
        .await?
        .rows_affected)
}

/// The request an authorization code was issued for.
pub(crate) async fn by_code(
    db: &DatabaseConnection,
    code_hash: &[u8; 32],
) -> Result<Option<Stored>, StoreError> {
    Ok(authorization::Entity::find()
        .filter(authorization::Column::CodeHash.eq(code_hash.to_vec()))
        .one(db)
        .await?
        .map(Stored::from_row))
}

/// How a redemption ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Redeemed {
    /// The code was exchanged and this session started.
    Started(String),
    /// The code was already redeemed, starting this session (if the
    /// redemption that won has committed it).
    Again(Option<String>),
    /// The code expired, or the client was disabled, meanwhile.
    Gone,
}

/// Exchanges the code once: marks it redeemed and starts `session` in one
/// transaction. Of concurrent redemptions exactly one starts a session;
/// the others wait for it and are told which session it started.
pub(crate) async fn redeem(
    db: &DatabaseConnection,
    code_hash: &[u8; 32],
    now: SystemTime,
    session: &NewSession<'_>,
) -> Result<Redeemed, StoreError> {
    use authorization::Column as A;
    let family_id = &random_string(16);
    let at = db_time(now);
    retrying(|| async move {
        let txn = begin(db).await?;
        // A write first: the row's lock (SQLite's write lock) orders
        // concurrent redemptions.
        let won = authorization::Entity::update_many()
            .col_expr(A::RedeemedAt, Expr::value(at))
            .col_expr(A::FamilyId, Expr::value(family_id.clone()))
            .filter(A::CodeHash.eq(code_hash.to_vec()))
            .filter(A::RedeemedAt.is_null())
            .filter(A::CodeExpiresAt.gt(at))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !won {
            txn.rollback().await?;
            let row = by_code(db, code_hash).await?;
            return Ok(match row {
                Some(r) if r.redeemed => Redeemed::Again(r.family_id),
                _ => Redeemed::Gone,
            });
        }
        if !start_in(&txn, session, family_id).await? {
            txn.rollback().await?;
            return Ok(Redeemed::Gone);
        }
        txn.commit().await?;
        Ok(Redeemed::Started(family_id.clone()))
    })
    .await
}
