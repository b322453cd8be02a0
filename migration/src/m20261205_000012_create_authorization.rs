//! The authorization code grant (RFC 6749 §4.1): a client's registered
//! redirect URIs (`client.redirect_uris`, space-separated, and
//! `client.allow_localhost_redirect`, RFC 8252 §7.3 for `localhost`), and
//! `token_family.auth_time`, `acr`, `amr` (how the session's user signed
//! in), and `authorization`, one row per authorization request from `/authorize`
//! to the code's redemption. Every secret in it is a SHA-256: the pending
//! request's id (`request_hash`), the browser that started it
//! (`browser_hash`), the code (`code_hash`, unique). The janitor deletes
//! rows past `expires_at` that were never redeemed, and redeemed rows once
//! their code has expired.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_client::Client as ClientTable;

/// Adds the redirect URIs and creates `authorization`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(manager, Client::Table, text_null(Client::RedirectUris)).await?;
        crate::add_column(
            manager,
            Client::Table,
            boolean(Client::AllowLocalhostRedirect).default(true),
        )
        .await?;
        // How the session's user signed in (RFC 9068 §2.2.1), for every
        // access token of it.
        crate::add_column(
            manager,
            TokenFamily::Table,
            crate::instant(manager, TokenFamily::AuthTime, true),
        )
        .await?;
        crate::add_column(
            manager,
            TokenFamily::Table,
            string_len_null(TokenFamily::Acr, 255),
        )
        .await?;
        crate::add_column(
            manager,
            TokenFamily::Table,
            string_len_null(TokenFamily::Amr, 255),
        )
        .await?;
        let a = Authorization::Table;
        manager
            .create_table(
                Table::create()
                    .table(a)
                    .if_not_exists()
                    .col(binary_len(Authorization::RequestHash, 32).primary_key())
                    .col(binary_len(Authorization::BrowserHash, 32))
                    .col(string_len(Authorization::ClientId, 128))
                    .col(text(Authorization::RedirectUri))
                    .col(boolean(Authorization::RedirectUriSent))
                    .col(text(Authorization::Scope))
                    .col(text_null(Authorization::Resources))
                    .col(text_null(Authorization::State))
                    .col(string_len(Authorization::CodeChallenge, 128))
                    .col(string_len_null(Authorization::DpopJkt, 64))
                    .col(string_len_null(Authorization::Prompt, 64))
                    .col(big_integer_null(Authorization::MaxAgeSecs))
                    .col(text_null(Authorization::AcrValues))
                    .col(string_len_null(Authorization::LoginHint, 255))
                    .col(crate::instant(manager, Authorization::CreatedAt, false))
                    .col(crate::instant(manager, Authorization::ExpiresAt, false))
                    .col(crate::instant(manager, Authorization::DecidedAt, true))
                    .col(binary_len_null(Authorization::CodeHash, 32))
                    .col(crate::instant(manager, Authorization::CodeExpiresAt, true))
                    .col(string_len_null(Authorization::Subject, 255))
                    .col(crate::instant(manager, Authorization::AuthTime, true))
                    .col(string_len_null(Authorization::Acr, 255))
                    .col(string_len_null(Authorization::Amr, 255))
                    .col(text_null(Authorization::GrantedScope))
                    .col(crate::instant(manager, Authorization::RedeemedAt, true))
                    .col(string_len_null(Authorization::FamilyId, 64))
                    .foreign_key(
                        ForeignKey::create()
                            .name("tollgate_fk_authorization_client")
                            .from(a, Authorization::ClientId)
                            .to(ClientTable::Table, ClientTable::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check((
                        "tollgate_authorization_code_after_decision",
                        Expr::cust("code_hash IS NULL OR decided_at IS NOT NULL"),
                    ))
                    .check((
                        "tollgate_authorization_redeemed_has_code",
                        Expr::cust("redeemed_at IS NULL OR code_hash IS NOT NULL"),
                    ))
                    .to_owned(),
            )
            .await?;
        crate::create_index(
            manager,
            "tollgate_authorization_code_hash",
            a,
            &[Authorization::CodeHash],
            true,
        )
        .await?;
        crate::create_index(
            manager,
            "tollgate_authorization_expires_at",
            a,
            &[Authorization::ExpiresAt],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Authorization::Table).to_owned())
            .await?;
        for col in [TokenFamily::Amr, TokenFamily::Acr, TokenFamily::AuthTime] {
            crate::drop_column(manager, TokenFamily::Table, col).await?;
        }
        crate::drop_column(manager, Client::Table, Client::AllowLocalhostRedirect).await?;
        crate::drop_column(manager, Client::Table, Client::RedirectUris).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    RedirectUris,
    AllowLocalhostRedirect,
}

#[derive(DeriveIden, Clone, Copy)]
enum TokenFamily {
    #[sea_orm(iden = "tollgate_token_family")]
    Table,
    AuthTime,
    Acr,
    Amr,
}

#[derive(DeriveIden, Clone, Copy)]
enum Authorization {
    #[sea_orm(iden = "tollgate_authorization")]
    Table,
    RequestHash,
    BrowserHash,
    ClientId,
    RedirectUri,
    RedirectUriSent,
    Scope,
    Resources,
    State,
    CodeChallenge,
    DpopJkt,
    Prompt,
    MaxAgeSecs,
    AcrValues,
    LoginHint,
    CreatedAt,
    ExpiresAt,
    DecidedAt,
    CodeHash,
    CodeExpiresAt,
    Subject,
    AuthTime,
    Acr,
    Amr,
    GrantedScope,
    RedeemedAt,
    FamilyId,
}
