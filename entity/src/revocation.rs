//! `revocation`: the persisted deny list. Every revocation the gate must
//! honour is a row, numbered by a gap-free sequence; instances warm their
//! cache from the live rows and poll for rows after their cursor.

use sea_orm::entity::prelude::*;

/// A revocation of an access token (`kind = "token"`, target = `jti`), a
/// session (`"session"`, target = `sid`) or everything a subject was issued
/// up to `revoked_at` (`"subject"`, target = `sub`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_revocation")]
pub struct Model {
    /// Position in the revocation sequence (from `revocation_counter`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// `token`, `session` or `subject`.
    pub kind: String,
    /// The `jti`, `sid` or `sub` revoked.
    pub target: String,
    /// When it was revoked (for `subject`: the not-before watermark).
    pub revoked_at: DateTimeUtc,
    /// When the last token it can match expires; the row matters until then.
    pub expires_at: DateTimeUtc,
    /// logout, reuse_detected, security, admin or expired.
    pub revoked_reason: String,
    /// For `subject`: the tenant the `sub` belongs to; `None` for none.
    pub tenant: Option<String>,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
