//! Creates `token_family`: one row per login (session / device).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_client::Client;

/// Creates `token_family`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The SQL of the revocation CHECKs shared by families and tokens.
pub(crate) const REVOKED_CONSISTENT: &str = "(revoked_at IS NULL AND revoked_reason IS NULL) \
     OR (revoked_at IS NOT NULL AND revoked_reason IS NOT NULL)";
pub(crate) const REVOKED_REASONS: &str = "revoked_reason IS NULL OR revoked_reason IN \
     ('logout', 'reuse_detected', 'security', 'admin', 'expired')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TokenFamily::Table)
                    .if_not_exists()
                    .col(string_len(TokenFamily::Id, 64).primary_key())
                    .col(string_len(TokenFamily::ClientId, 128))
                    .col(string_len(TokenFamily::UserId, 255))
                    .col(string_len_null(TokenFamily::Tenant, 255))
                    .col(text(TokenFamily::Scope))
                    .col(big_integer(TokenFamily::Generation))
                    .col(crate::instant(manager, TokenFamily::CreatedAt, false))
                    .col(crate::instant(manager, TokenFamily::ExpiresAt, false))
                    .col(crate::instant(manager, TokenFamily::LastUsedAt, false))
                    .col(string_len_null(TokenFamily::LastIp, 45))
                    .col(string_len_null(TokenFamily::LastUserAgent, 512))
                    .col(crate::instant(manager, TokenFamily::RevokedAt, true))
                    .col(string_len_null(TokenFamily::RevokedReason, 32))
                    .foreign_key(
                        ForeignKey::create()
                            .name("tollgate_fk_token_family_client")
                            .from(TokenFamily::Table, TokenFamily::ClientId)
                            .to(Client::Table, Client::ClientId)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .check((
                        "tollgate_token_family_expiry_after_creation",
                        Expr::cust("expires_at > created_at"),
                    ))
                    .check((
                        "tollgate_token_family_generation_non_negative",
                        Expr::cust("generation >= 0"),
                    ))
                    .check((
                        "tollgate_token_family_revoked_consistent",
                        Expr::cust(REVOKED_CONSISTENT),
                    ))
                    .check((
                        "tollgate_token_family_revoked_reason",
                        Expr::cust(REVOKED_REASONS),
                    ))
                    .to_owned(),
            )
            .await?;
        let table = TokenFamily::Table;
        crate::create_index(
            manager,
            "tollgate_idx_token_family_user_client",
            table,
            &[TokenFamily::UserId, TokenFamily::ClientId],
            false,
        )
        .await?;
        crate::create_index(
            manager,
            "tollgate_idx_token_family_expires_at",
            table,
            &[TokenFamily::ExpiresAt],
            false,
        )
        .await?;
        // For the janitor, which deletes families revoked long ago.
        crate::create_index(
            manager,
            "tollgate_idx_token_family_revoked_at",
            table,
            &[TokenFamily::RevokedAt],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TokenFamily::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum TokenFamily {
    #[sea_orm(iden = "tollgate_token_family")]
    Table,
    Id,
    ClientId,
    UserId,
    Tenant,
    Scope,
    Generation,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    LastIp,
    LastUserAgent,
    RevokedAt,
    RevokedReason,
}
