//! SeaORM entities of tollgate's store, one module per table.
//!
//! ```
//! use tollgate_entity::{prelude::*, refresh_token};
//! use sea_orm::{EntityTrait, QueryFilter, ColumnTrait, QueryTrait, DbBackend};
//!
//! // Lookups are by token hash, never by token value.
//! let sql = RefreshToken::find()
//!     .filter(refresh_token::Column::TokenHash.eq(vec![0u8; 32]))
//!     .build(DbBackend::Postgres)
//!     .to_string();
//! assert!(sql.contains(r#""token_hash" = "#));
//! ```

pub mod authorization;
pub mod client;
pub mod consent;
pub mod dpop_replay;
pub mod prelude;
pub mod refresh_token;
pub mod revocation;
pub mod revocation_counter;
pub mod token_family;
