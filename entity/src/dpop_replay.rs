//! `dpop_replay`: the DPoP proofs accepted by any instance, so each is
//! accepted once across all of them (RFC 9449 §11.1).

use sea_orm::entity::prelude::*;

/// One accepted proof.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_dpop_replay")]
pub struct Model {
    /// Hex of a 128-bit hash of the key thumbprint and the proof's `jti`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub replay_key: String,
    /// When the proof stops being acceptable anyway; the janitor deletes
    /// the row after.
    pub expires_at: DateTimeUtc,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
