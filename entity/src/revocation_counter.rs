//! `revocation_counter`: one row holding the last revocation `seq` handed
//! out. Taking the next value locks the row until the revoking transaction
//! ends, so revocations commit in `seq` order.

use sea_orm::entity::prelude::*;

/// The single counter row (`id = 1`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_revocation_counter")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The last `seq` handed out.
    pub last: i64,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
