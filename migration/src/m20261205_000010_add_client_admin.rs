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
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            crate::instant(manager, Client::DisabledAt, true),
            binary_len_null(Client::PreviousSecretHash, 32),
            crate::instant(manager, Client::PreviousSecretUntil, true),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Client::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Client::PreviousSecretUntil,
            Client::PreviousSecretHash,
            Client::DisabledAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Client::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
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
