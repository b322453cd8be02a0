//! Adds the tenant of a subject revocation (`revocation.tenant`): logging
//! out everywhere ends one tenant's user, not every tenant's user of the
//! same id. NULL: no tenant (and every row before this migration).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `revocation.tenant`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Revocation::Table,
            string_len_null(Revocation::Tenant, 255),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, Revocation::Table, Revocation::Tenant).await
    }
}

#[derive(DeriveIden)]
enum Revocation {
    #[sea_orm(iden = "tollgate_revocation")]
    Table,
    Tenant,
}
