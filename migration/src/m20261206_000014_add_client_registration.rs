//! How a client came to be known (`client.registration`: `registered` by
//! an operator, `metadata_document` for a Client ID Metadata Document
//! fetched at `/authorize`, `dynamic` for RFC 7591 registration), the
//! links its consent page shows (`client.logo_uri`, `client.client_uri`),
//! and when it last started an authorization (`client.last_authorized_at`),
//! so dynamically registered clients that are never used can expire.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.registration`, `client.logo_uri`, `client.client_uri` and
/// `client.last_authorized_at`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Client::Table,
            string_len(Client::Registration, 24).default("registered"),
        )
        .await?;
        crate::add_column(manager, Client::Table, text_null(Client::LogoUri)).await?;
        crate::add_column(manager, Client::Table, text_null(Client::ClientUri)).await?;
        crate::add_column(
            manager,
            Client::Table,
            crate::instant(manager, Client::LastAuthorizedAt, true),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, Client::Table, Client::LastAuthorizedAt).await?;
        crate::drop_column(manager, Client::Table, Client::ClientUri).await?;
        crate::drop_column(manager, Client::Table, Client::LogoUri).await?;
        crate::drop_column(manager, Client::Table, Client::Registration).await
    }
}

// The column is `client_uri`, as RFC 7591 names it.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    Registration,
    LogoUri,
    ClientUri,
    LastAuthorizedAt,
}
