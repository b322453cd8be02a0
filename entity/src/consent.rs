//! `consent`: what a user allowed a client, remembered at the
//! application's request, one row per (client, subject).

use sea_orm::entity::prelude::*;

/// One remembered consent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_consent")]
pub struct Model {
    /// The client.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// The user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    /// The scope granted, space-separated.
    pub scope: String,
    /// RFC 8707 resources granted, space-separated.
    pub resources: Option<String>,
    /// The redirect URI it was granted for.
    pub redirect_uri: String,
    /// When the user last granted it.
    pub granted_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
