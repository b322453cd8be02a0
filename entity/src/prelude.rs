//! Every entity, re-exported for `use tollgate_entity::prelude::*`.

pub use crate::authorization::Entity as Authorization;
pub use crate::client::Entity as Client;
pub use crate::consent::Entity as Consent;
pub use crate::dpop_replay::Entity as DpopReplay;
pub use crate::refresh_token::Entity as RefreshToken;
pub use crate::revocation::Entity as Revocation;
pub use crate::revocation_counter::Entity as RevocationCounter;
pub use crate::token_family::Entity as TokenFamily;
