//! `refresh_token`: one refresh token of a family. Only its SHA-256 is
//! stored. Consumed rows stay until the family expires, so a replay is
//! still recognised long after rotation.

use sea_orm::entity::prelude::*;

/// A refresh token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_refresh_token")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The family (session).
    pub family_id: String,
    /// The token this one replaced.
    pub parent_id: Option<i64>,
    /// Position in the family: 0 at login, +1 per rotation.
    pub generation: i64,
    /// SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: Vec<u8>,
    /// The subject.
    pub user_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Tenant.
    pub tenant: Option<String>,
    /// Scope it grants.
    pub scope: String,
    /// IP it was issued to (IPv6 fits: 45 characters).
    pub client_ip: Option<String>,
    /// User-Agent it was issued to.
    pub user_agent: Option<String>,
    /// Device fingerprint, if the application sends one.
    pub device_fingerprint: Option<String>,
    /// Issue time.
    pub issued_at: DateTimeUtc,
    /// End of its idle lifetime.
    pub expires_at: DateTimeUtc,
    /// Last presentation.
    pub last_used_at: Option<DateTimeUtc>,
    /// When it was exchanged for its child.
    pub consumed_at: Option<DateTimeUtc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Why: logout, reuse_detected, security, admin or expired.
    pub revoked_reason: Option<String>,
    /// Row creation.
    pub created_at: DateTimeUtc,
    /// Last row change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; foreign keys live in the migrations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
