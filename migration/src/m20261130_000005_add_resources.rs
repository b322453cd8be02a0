//! Adds RFC 8707 resource indicators: the resources each client may ask
//! tokens for (`client.resources`), and the resources a session was
//! granted (`token_family.resources`), both space-separated absolute URIs;
//! NULL means none (the client may not ask for any; the session's tokens
//! carry the issuer's configured audience).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.resources` and `token_family.resources`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(manager, Client::Table, text_null(Client::Resources)).await?;
        crate::add_column(
            manager,
            TokenFamily::Table,
            text_null(TokenFamily::Resources),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, TokenFamily::Table, TokenFamily::Resources).await?;
        crate::drop_column(manager, Client::Table, Client::Resources).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    Resources,
}

#[derive(DeriveIden)]
enum TokenFamily {
    #[sea_orm(iden = "tollgate_token_family")]
    Table,
    Resources,
}
