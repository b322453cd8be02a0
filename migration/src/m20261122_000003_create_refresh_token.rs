//! Creates `refresh_token`: every token of every family, by hash only.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000002_create_token_family::{
    REVOKED_CONSISTENT, REVOKED_REASONS, TokenFamily,
};

/// Creates `refresh_token`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RefreshToken::Id))
                    .col(string_len(RefreshToken::FamilyId, 64))
                    .col(big_integer_null(RefreshToken::ParentId))
                    .col(big_integer(RefreshToken::Generation))
                    .col(binary_len(RefreshToken::TokenHash, 32))
                    .col(string_len(RefreshToken::UserId, 255))
                    .col(string_len(RefreshToken::ClientId, 128))
                    .col(string_len_null(RefreshToken::Tenant, 255))
                    .col(text(RefreshToken::Scope))
                    .col(string_len_null(RefreshToken::ClientIp, 45))
                    .col(string_len_null(RefreshToken::UserAgent, 512))
                    .col(string_len_null(RefreshToken::DeviceFingerprint, 128))
                    .col(crate::instant(manager, RefreshToken::IssuedAt, false))
                    .col(crate::instant(manager, RefreshToken::ExpiresAt, false))
                    .col(crate::instant(manager, RefreshToken::LastUsedAt, true))
                    .col(crate::instant(manager, RefreshToken::ConsumedAt, true))
                    .col(crate::instant(manager, RefreshToken::RevokedAt, true))
                    .col(string_len_null(RefreshToken::RevokedReason, 32))
                    .col(crate::instant(manager, RefreshToken::CreatedAt, false))
                    .col(crate::instant(manager, RefreshToken::UpdatedAt, false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("tollgate_fk_refresh_token_family")
                            .from(RefreshToken::Table, RefreshToken::FamilyId)
                            .to(TokenFamily::Table, TokenFamily::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tollgate_fk_refresh_token_parent")
                            .from(RefreshToken::Table, RefreshToken::ParentId)
                            .to(RefreshToken::Table, RefreshToken::Id)
                            // Not CASCADE: deleting an old token must never
                            // take its chain of successors with it in one
                            // unbounded statement (InnoDB also caps cascades
                            // at depth 15). The janitor deletes newest first.
                            .on_delete(ForeignKeyAction::NoAction),
                    )
                    .check((
                        "tollgate_refresh_token_expiry_after_issue",
                        Expr::cust("expires_at > issued_at"),
                    ))
                    .check((
                        "tollgate_refresh_token_consumed_after_issue",
                        Expr::cust("consumed_at IS NULL OR consumed_at >= issued_at"),
                    ))
                    .check((
                        "tollgate_refresh_token_generation_non_negative",
                        Expr::cust("generation >= 0"),
                    ))
                    .check((
                        "tollgate_refresh_token_parent_iff_rotated",
                        Expr::cust("(generation = 0) = (parent_id IS NULL)"),
                    ))
                    .check((
                        "tollgate_refresh_token_revoked_consistent",
                        Expr::cust(REVOKED_CONSISTENT),
                    ))
                    .check((
                        "tollgate_refresh_token_revoked_reason",
                        Expr::cust(REVOKED_REASONS),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "tollgate_idx_refresh_token_hash",
                &[RefreshToken::TokenHash][..],
                true,
            ),
            // One token per generation: the family can never fork, whatever
            // the application code does.
            (
                "tollgate_idx_refresh_token_family_generation",
                &[RefreshToken::FamilyId, RefreshToken::Generation][..],
                true,
            ),
            (
                "tollgate_idx_refresh_token_user_client",
                &[RefreshToken::UserId, RefreshToken::ClientId][..],
                false,
            ),
            (
                "tollgate_idx_refresh_token_expires_at",
                &[RefreshToken::ExpiresAt][..],
                false,
            ),
            (
                "tollgate_idx_refresh_token_parent",
                &[RefreshToken::ParentId][..],
                false,
            ),
        ] {
            crate::create_index(manager, name, RefreshToken::Table, cols, unique).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshToken::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RefreshToken {
    #[sea_orm(iden = "tollgate_refresh_token")]
    Table,
    Id,
    FamilyId,
    ParentId,
    Generation,
    TokenHash,
    UserId,
    ClientId,
    Tenant,
    Scope,
    ClientIp,
    UserAgent,
    DeviceFingerprint,
    IssuedAt,
    ExpiresAt,
    LastUsedAt,
    ConsumedAt,
    RevokedAt,
    RevokedReason,
    CreatedAt,
    UpdatedAt,
}
