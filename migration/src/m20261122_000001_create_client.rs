//! Creates `client`.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `client`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Client::Table)
                    .if_not_exists()
                    .col(string_len(Client::ClientId, 128).primary_key())
                    .col(binary_len_null(Client::SecretHash, 32))
                    .col(string_len(Client::Name, 200))
                    .col(text(Client::Scope))
                    .col(boolean(Client::AllowPassword).default(false))
                    .col(boolean(Client::AllowClientCredentials).default(false))
                    .col(big_integer_null(Client::AccessTtlSecs))
                    .col(big_integer_null(Client::RefreshIdleTtlSecs))
                    .col(big_integer_null(Client::FamilyTtlSecs))
                    .col(crate::instant(manager, Client::CreatedAt, false))
                    .check((
                        "tollgate_client_id_not_empty",
                        Expr::cust("length(client_id) > 0"),
                    ))
                    // Only a client that can authenticate gets tokens for itself.
                    .check((
                        "tollgate_client_credentials_need_secret",
                        Expr::cust("NOT allow_client_credentials OR secret_hash IS NOT NULL"),
                    ))
                    .check((
                        "tollgate_client_ttls_positive",
                        Expr::cust(
                            "(access_ttl_secs IS NULL OR access_ttl_secs > 0) \
                             AND (refresh_idle_ttl_secs IS NULL OR refresh_idle_ttl_secs > 0) \
                             AND (family_ttl_secs IS NULL OR family_ttl_secs > 0)",
                        ),
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Client::Table).to_owned())
            .await
    }
}

// The column is `client_id`, as OAuth names it.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
pub(crate) enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    ClientId,
    SecretHash,
    Name,
    Scope,
    AllowPassword,
    AllowClientCredentials,
    AccessTtlSecs,
    RefreshIdleTtlSecs,
    FamilyTtlSecs,
    CreatedAt,
}
