//! The migration CLI: `cargo run -p migration -- --help`.

use sea_orm_migration::prelude::cli;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
