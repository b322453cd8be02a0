//! SeaORM migrations of tollgate's store.
//!
//! Every migration has `up` and `down` and runs on SQLite, PostgreSQL and
//! MySQL. Apply them with [`Migrator::up`] or the `tollgate-migration` CLI
//! (`cargo run -p tollgate-migration -- up`).
//!
//! ```
//! use tollgate_migration::{Migrator, MigratorTrait};
//! use sea_orm_migration::sea_orm::Database;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = Database::connect("sqlite::memory:").await.unwrap();
//! Migrator::up(&db, None).await.unwrap();
//! assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
//! Migrator::down(&db, None).await.unwrap();
//! assert_eq!(Migrator::get_pending_migrations(&db).await.unwrap().len(), 14);
//! # });
//! ```

// `MigrationTrait` is an `async_trait`, whose expansion rejects the
// `SchemaManager<'_>` spelling that this lint asks for.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_client;
mod m20261122_000002_create_token_family;
mod m20261122_000003_create_refresh_token;
mod m20261122_000004_create_revocation;
mod m20261130_000005_add_resources;
mod m20261130_000006_add_dpop;
mod m20261130_000007_create_dpop_replay;
mod m20261204_000008_add_introspection;
mod m20261204_000009_add_revocation_tenant;
mod m20261205_000010_add_client_admin;
mod m20261205_000011_add_bound_reuse_grace;
mod m20261205_000012_create_authorization;
mod m20261206_000013_create_consent;
mod m20261206_000014_add_client_registration;

/// A UTC instant with microseconds: `timestamp with time zone` as
/// sea-query writes it for PostgreSQL and SQLite, but `DATETIME(6)` on
/// MySQL/MariaDB, whose `TIMESTAMP` keeps whole seconds and ends in 2038.
/// (Connections run in UTC, which sqlx sets for MySQL.)
pub(crate) fn instant(manager: &SchemaManager, col: impl IntoIden, null: bool) -> ColumnDef {
    let mut def = if null {
        sea_orm_migration::schema::timestamp_with_time_zone_null(col)
    } else {
        sea_orm_migration::schema::timestamp_with_time_zone(col)
    };
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::MySql {
        def.custom(Alias::new("DATETIME(6)"));
    }
    def
}

/// Adds one column to `table`: one statement per column, since SQLite's
/// `ALTER TABLE` adds one at a time.
pub(crate) async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

/// Drops one column of `table`.
pub(crate) async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

/// Creates the index `name` on `table(cols)`, unique or not.
pub(crate) async fn create_index<T>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[T],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + Copy + 'static,
{
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(*col);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

/// The table that records which of tollgate's migrations ran: its own, so
/// that tollgate's migrator and the application's (`seaql_migrations`)
/// share a database without taking each other's rows for missing files.
pub const MIGRATION_TABLE: &str = "tollgate_migrations";

/// The ordered list of tollgate's migrations, recorded in
/// [`MIGRATION_TABLE`]. Every table, index and constraint it creates is
/// named `tollgate_…`, so none collides with the application's.
///
/// Two ways to run them beside an application's own SeaORM migrations:
/// side by side (the application's migrator, then this one, on one
/// database: each keeps its own record), or merged (the application's
/// `Migrator::migrations()` appends [`Migrator::migrations`], and the
/// application's table records them all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new(MIGRATION_TABLE).into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_client::Migration),
            Box::new(m20261122_000002_create_token_family::Migration),
            Box::new(m20261122_000003_create_refresh_token::Migration),
            Box::new(m20261122_000004_create_revocation::Migration),
            Box::new(m20261130_000005_add_resources::Migration),
            Box::new(m20261130_000006_add_dpop::Migration),
            Box::new(m20261130_000007_create_dpop_replay::Migration),
            Box::new(m20261204_000008_add_introspection::Migration),
            Box::new(m20261204_000009_add_revocation_tenant::Migration),
            Box::new(m20261205_000010_add_client_admin::Migration),
            Box::new(m20261205_000011_add_bound_reuse_grace::Migration),
            Box::new(m20261205_000012_create_authorization::Migration),
            Box::new(m20261206_000013_create_consent::Migration),
            Box::new(m20261206_000014_add_client_registration::Migration),
        ]
    }
}
