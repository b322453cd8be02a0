//! Creates `revocation` (the persisted deny list) and `revocation_counter`
//! (the sequence its rows are numbered by).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000002_create_token_family::REVOKED_REASONS;

/// Creates `revocation` and `revocation_counter`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row, whose lock orders every revocation: `seq` is taken from
        // it inside the revoking transaction, so rows commit in `seq` order
        // and a poller's cursor never skips a row committed late.
        manager
            .create_table(
                Table::create()
                    .table(RevocationCounter::Table)
                    .if_not_exists()
                    .col(integer(RevocationCounter::Id).primary_key())
                    .col(big_integer(RevocationCounter::Last))
                    .check((
                        "tollgate_revocation_counter_single_row",
                        Expr::cust("id = 1"),
                    ))
                    .check((
                        "tollgate_revocation_counter_non_negative",
                        Expr::cust("last >= 0"),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(RevocationCounter::Table)
                    .columns([RevocationCounter::Id, RevocationCounter::Last])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Revocation::Table)
                    .if_not_exists()
                    .col(big_integer(Revocation::Seq).primary_key())
                    .col(string_len(Revocation::Kind, 16))
                    .col(string_len(Revocation::Target, 255))
                    .col(crate::instant(manager, Revocation::RevokedAt, false))
                    .col(crate::instant(manager, Revocation::ExpiresAt, false))
                    .col(string_len(Revocation::RevokedReason, 32))
                    .check((
                        "tollgate_revocation_kind",
                        Expr::cust("kind IN ('token', 'session', 'subject')"),
                    ))
                    .check((
                        "tollgate_revocation_expiry_not_before_revocation",
                        Expr::cust("expires_at >= revoked_at"),
                    ))
                    .check(("tollgate_revocation_reason", Expr::cust(REVOKED_REASONS)))
                    .to_owned(),
            )
            .await?;
        crate::create_index(
            manager,
            "tollgate_idx_revocation_expires_at",
            Revocation::Table,
            &[Revocation::ExpiresAt],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Revocation::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RevocationCounter::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RevocationCounter {
    #[sea_orm(iden = "tollgate_revocation_counter")]
    Table,
    Id,
    Last,
}

#[derive(DeriveIden, Clone, Copy)]
enum Revocation {
    #[sea_orm(iden = "tollgate_revocation")]
    Table,
    Seq,
    Kind,
    Target,
    RevokedAt,
    ExpiresAt,
    RevokedReason,
}
