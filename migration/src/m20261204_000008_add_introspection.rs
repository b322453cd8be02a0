//! Adds the permission to introspect (RFC 7662 §2.1, §4): only the
//! clients an operator marks (`client.allow_introspection`, off by
//! default) may ask `/introspect` about tokens.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `client.allow_introspection`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            Client::Table,
            boolean(Client::AllowIntrospection).default(false),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, Client::Table, Client::AllowIntrospection).await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    AllowIntrospection,
}
