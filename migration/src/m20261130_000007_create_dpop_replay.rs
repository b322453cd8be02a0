//! Creates `dpop_replay`: the DPoP proofs (RFC 9449 §11.1) every instance
//! has accepted, so that a proof used at one instance is refused at all.
//! The key is a 128-bit hash of the key thumbprint and the proof's `jti`
//! (hex), unique; the janitor deletes rows past `expires_at`.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `dpop_replay`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DpopReplay::Table)
                    .if_not_exists()
                    .col(string_len(DpopReplay::ReplayKey, 32).primary_key())
                    .col(crate::instant(manager, DpopReplay::ExpiresAt, false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tollgate_dpop_replay_expires_at")
                    .table(DpopReplay::Table)
                    .col(DpopReplay::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DpopReplay::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DpopReplay {
    #[sea_orm(iden = "tollgate_dpop_replay")]
    Table,
    ReplayKey,
    ExpiresAt,
}
