//! SeaORM entities of tollgate's store, one module per table.
//!
//! The tables (clients, token families, refresh tokens, revocations) are
//! added together with the migrations that create them; this crate holds
//! only what the `migration` crate has created.
//!
//! ```
//! // The prelude re-exports every entity under its table name.
//! use entity::prelude::*;
//! ```

pub mod prelude;
