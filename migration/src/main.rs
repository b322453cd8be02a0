//! The migration CLI: `cargo run -p tollgate-migration -- --help`.

use sea_orm_migration::prelude::cli;

#[tokio::main]
async fn main() {
    cli::run_cli(tollgate_migration::Migrator).await;
}
