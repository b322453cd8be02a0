//! SeaORM migrations of tollgate's store.
//!
//! Every migration has `up` and `down` and runs on SQLite, PostgreSQL and
//! MySQL. Apply them with [`Migrator::up`] or the `migration` CLI
//! (`cargo run -p migration -- up`).
//!
//! ```
//! use migration::{Migrator, MigratorTrait};
//! use sea_orm_migration::sea_orm::Database;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = Database::connect("sqlite::memory:").await.unwrap();
//! Migrator::up(&db, None).await.unwrap();
//! assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
//! # });
//! ```

pub use sea_orm_migration::prelude::*;

/// The ordered list of tollgate's migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}
