//! Adds DPoP (RFC 9449): whether a client must prove possession of a key
//! on every token request (`client.dpop_bound_access_tokens`, the name
//! RFC 9449 §5.2 registers as client metadata), and the key a public
//! client's session is bound to (`token_family.dpop_jkt`, its RFC 7638
//! thumbprint; NULL: not bound).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.dpop_bound_access_tokens` and `token_family.dpop_jkt`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Client::Table,
            boolean(Client::DpopBoundAccessTokens).default(false),
        )
        .await?;
        crate::add_column(
            manager,
            TokenFamily::Table,
            string_len_null(TokenFamily::DpopJkt, 64),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, TokenFamily::Table, TokenFamily::DpopJkt).await?;
        crate::drop_column(manager, Client::Table, Client::DpopBoundAccessTokens).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    DpopBoundAccessTokens,
}

#[derive(DeriveIden)]
enum TokenFamily {
    #[sea_orm(iden = "tollgate_token_family")]
    Table,
    DpopJkt,
}
