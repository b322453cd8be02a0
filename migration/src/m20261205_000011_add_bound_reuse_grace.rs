//! A client's own window for its stale refresh tokens
//! (`client.bound_reuse_grace_secs`): NULL takes the issuer's default, 0
//! gives the client the short rule only.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.bound_reuse_grace_secs`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Client::Table,
            big_integer_null(Client::BoundReuseGraceSecs),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, Client::Table, Client::BoundReuseGraceSecs).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    BoundReuseGraceSecs,
}
