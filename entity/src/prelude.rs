//! Every entity, re-exported for `use entity::prelude::*`.

pub use crate::client::Entity as Client;
pub use crate::refresh_token::Entity as RefreshToken;
pub use crate::token_family::Entity as TokenFamily;
