//! What administering a client needs: `client.disabled_at` (a disabled
//! client authenticates no more; its sessions were revoked with it) and
//! the previous secret with the end of its overlap
//! (`client.previous_secret_hash`, `client.previous_secret_until`), so a
//! secret can be rotated without a moment in which neither works.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.disabled_at`, `client.previous_secret_hash` and
/// `client.previous_secret_until`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Client::Table,
            crate::instant(manager, Client::DisabledAt, true),
        )
        .await?;
        crate::add_column(
            manager,
            Client::Table,
            binary_len_null(Client::PreviousSecretHash, 32),
        )
        .await?;
        crate::add_column(
            manager,
            Client::Table,
            crate::instant(manager, Client::PreviousSecretUntil, true),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, Client::Table, Client::PreviousSecretUntil).await?;
        crate::drop_column(manager, Client::Table, Client::PreviousSecretHash).await?;
        crate::drop_column(manager, Client::Table, Client::DisabledAt).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    DisabledAt,
    PreviousSecretHash,
    PreviousSecretUntil,
}
