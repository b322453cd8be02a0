//! The gate without a database: its public API one `oneshot` at a time,
//! and the same layer value mounted in axum, bare hyper and tonic.
//!
//! One test binary (the files beside this one are its modules), so the
//! test build links once for the whole group.

#[path = "../common/mod.rs"]
mod common;

mod access_token;
mod architecture;
#[cfg(feature = "backchannel-logout")]
mod backchannel;
mod dpop;
#[cfg(feature = "axum")]
mod frameworks;
mod multi_issuer;
mod profiles;
#[cfg(feature = "remote-keys")]
mod remote_keys;
mod resource;
mod route_scope;
mod step_up;
mod verified_cache;
