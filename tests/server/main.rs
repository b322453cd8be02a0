//! The token service with its store: the endpoints, rotation, revocation,
//! sessions, sync, faults, clocks and abuse, on SQLite, PostgreSQL and
//! MariaDB (one test per backend, named after it), plus the quickstart
//! binary and independent OAuth client libraries over real sockets.
//!
//! One test binary (the files beside this one are its modules), so the
//! test build links once for the whole group.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
#[cfg(feature = "axum")]
mod authorization_code;
mod backchannel;
mod browser;
#[cfg(feature = "client-metadata")]
mod cimd_resolver;
mod cleanup;
mod cli;
mod client_metadata;
mod clients;
mod clock;
mod dpop;
mod events;
mod faults;
#[cfg(feature = "axum")]
mod hostile;
mod logs;
#[cfg(all(feature = "axum", feature = "client-metadata"))]
mod mcp;
#[cfg(all(feature = "axum", feature = "client-metadata"))]
mod mcp_oauth;
mod metadata;
#[cfg(feature = "metrics")]
mod metrics;
mod migrations;
#[cfg(feature = "postgres")]
mod notify;
#[cfg(feature = "axum")]
mod oauth2_client;
mod outage;
#[cfg(feature = "axum")]
mod own_login;
mod properties;
#[cfg(feature = "axum")]
mod proxy;
#[cfg(feature = "axum")]
mod quickstart;
#[cfg(feature = "axum")]
mod quickstart_browser;
#[cfg(feature = "axum")]
mod quickstart_signin;
#[cfg(all(feature = "axum", feature = "client-metadata"))]
mod registration;
#[cfg(feature = "axum")]
mod reliability;
#[cfg(all(feature = "remote-keys", feature = "backchannel-logout"))]
mod resource_server;
mod resources;
mod revocation;
mod rotation;
mod sessions;
#[cfg(feature = "axum")]
mod setup;
mod sync;
#[cfg(feature = "testing")]
mod testing;
mod token_endpoint;
