//! `consent`: what a user allowed a client through the authorization
//! endpoint, remembered when the application asked (`Approve::remember`),
//! one row per (client, subject): the scope and resources granted and the
//! redirect URI they were granted for, so a request for more, or to
//! another redirect URI, asks again. Deleted with its client; revoked by
//! deleting the row.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_client::Client as ClientTable;

/// Creates `consent`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Consent::Table;
        manager
            .create_table(
                Table::create()
                    .table(c)
                    .if_not_exists()
                    .col(string_len(Consent::ClientId, 128))
                    .col(string_len(Consent::Subject, 255))
                    .col(text(Consent::Scope))
                    .col(text_null(Consent::Resources))
                    .col(text(Consent::RedirectUri))
                    .col(crate::instant(manager, Consent::GrantedAt, false))
                    .primary_key(
                        Index::create()
                            .name("tollgate_pk_consent")
                            .col(Consent::ClientId)
                            .col(Consent::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tollgate_fk_consent_client")
                            .from(c, Consent::ClientId)
                            .to(ClientTable::Table, ClientTable::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's consents, for a "connected apps" page.
        crate::create_index(
            manager,
            "tollgate_consent_subject",
            c,
            &[Consent::Subject],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Consent::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Consent {
    #[sea_orm(iden = "tollgate_consent")]
    Table,
    ClientId,
    Subject,
    Scope,
    Resources,
    RedirectUri,
    GrantedAt,
}
