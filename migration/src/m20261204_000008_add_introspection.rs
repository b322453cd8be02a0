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
        manager
            .alter_table(
                Table::alter()
                    .table(Client::Table)
                    .add_column(boolean(Client::AllowIntrospection).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Client::Table)
                    .drop_column(Client::AllowIntrospection)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Client {
    #[sea_orm(iden = "tollgate_client")]
    Table,
    AllowIntrospection,
}
