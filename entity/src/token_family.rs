//! `token_family`: one login on one device, i.e. a session. Its id is the
//! `sid` claim of every access token of the session.

use sea_orm::entity::prelude::*;

/// A refresh-token family.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_token_family")]
pub struct Model {
    /// The session id (`sid`), random.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The client the session belongs to.
    pub client_id: String,
    /// The subject (user).
    pub user_id: String,
    /// Tenant, for multi-tenant deployments.
    pub tenant: Option<String>,
    /// Scope granted at login; refreshes may narrow it, never widen it.
    pub scope: String,
    /// Generation of the current (unconsumed) refresh token.
    pub generation: i64,
    /// Login time.
    pub created_at: DateTimeUtc,
    /// Absolute end of the session, whatever the refreshes.
    pub expires_at: DateTimeUtc,
    /// Last successful refresh (or login).
    pub last_used_at: DateTimeUtc,
    /// Client IP of the last use.
    pub last_ip: Option<String>,
    /// User-Agent of the last use.
    pub last_user_agent: Option<String>,
    /// When the family was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Why: logout, reuse_detected, security, admin or expired.
    pub revoked_reason: Option<String>,
    /// RFC 8707 resources granted at login, space-separated; `None`: the
    /// issuer's configured audience. Refreshes may narrow them, never widen.
    pub resources: Option<String>,
    /// The RFC 7638 thumbprint of the DPoP key a public client's session
    /// is bound to; `None`: not bound.
    pub dpop_jkt: Option<String>,
    /// When the user signed in to start the session.
    pub auth_time: Option<DateTimeUtc>,
    /// The authentication context class of that sign-in.
    pub acr: Option<String>,
    /// Its authentication methods, space-separated.
    pub amr: Option<String>,
}

/// No navigable relations; foreign keys live in the migrations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
