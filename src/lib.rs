//! # tollgate
//!
//! Token auth for Tower services, done right: a gate that enforces JWT
//! access tokens and rejects revoked ones at once, and an embeddable token
//! service whose refresh tokens rotate exactly once and whose logouts reach
//! every instance. The README walks from zero to production; these docs
//! are the reference.
//!
//! ## Where to start
//!
//! | you want | start from |
//! |---|---|
//! | the whole service wired in the safe order: store, clients, issuer, deny list, janitor, endpoint | [`Tollgate::builder`] (feature `store`) |
//! | the gate alone, in front of tokens another issuer signs | [`AccessTokenLayer::builder`] |
//! | tokens from your own login handler | [`Issuer::issue`], answered with [`TokenEndpoint::token_response`] |
//! | `/token`, `/revoke`, `/introspect`, JWKS, RFC 8414 metadata | [`TokenEndpoint`] |
//! | a user's sessions: list, log out, log out everywhere | [`Sessions`] |
//! | clients: register, update, rotate secrets, disable, delete | [`admin::ClientAdmin`] (and the `tollgate` command, feature `cli`) |
//! | tests of your own service against a real token service | [`testing::TestServer`] (feature `testing`) |
//!
//! The other modules — keys, claims, DPoP, binding, the deny list, the
//! store, the sync, events — are the parts those are built from: reachable
//! for a wiring of your own, not needed to get going.
//!
//! ```
//! use tollgate::{AccessTokenLayer, Algorithm, RevocationCache, SigningKey};
//!
//! let key = SigningKey::from_pem(
//!     "2026-11",
//!     Algorithm::EdDSA,
//!     include_bytes!("../tests/keys/ed25519.pem"),
//! ).unwrap();
//! let revocations = RevocationCache::default();
//! let gate = AccessTokenLayer::builder()
//!     .keys(key)
//!     .issuer("https://auth.example")
//!     .audience("https://api.example")
//!     .revocations(revocations.clone())
//!     .build()
//!     .unwrap();
//! // `gate` now mounts with `Router::layer`, `ServiceBuilder::layer` or
//! // tonic's `Server::builder().layer`.
//! # let _ = gate;
//! ```
//!
//! ## Features
//! - `grpc` (default): answer gRPC requests with `grpc-status`.
//! - `axum` (default): [`AccessClaims`] as an axum extractor, [`AuthError`],
//!   `TokenError` and `TokenResponse` as responses, `Tollgate::routes`.
//! - `sqlite` (default), `postgres`, `mysql`: the store on that database;
//!   each turns on `store`.
//! - `store`: the token service on SeaORM — `setup`, `token_endpoint`,
//!   `issuer`, `sessions`, `admin`, the persisted deny list and its
//!   `RevocationSync`, and the janitor (`store::cleanup`) — with no driver
//!   of its own.
//! - `metrics`: domain counters and histograms through the `metrics`
//!   facade (the table is in the README); no recorder is installed by the
//!   library.
//! - `testing`: `testing::TestServer`, an in-process token service on
//!   in-memory SQLite for your own integration tests.
//! - `cli`: the `tollgate` binary for operators.
//!
//! The gate alone, with no database: `default-features = false` and
//! `features = ["axum"]` in an axum app, `["grpc"]` in hyper or tonic.
//! Items that need a feature say so in these docs.
//!
//! ## MSRV
//!
//! Rust 1.94 (the `rust-version` in `Cargo.toml`). Raising it is a minor
//! version change, never a patch release.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(unsafe_code, unreachable_pub)]

// Every Rust block of the README runs as a doc test, so a block that no
// longer compiles fails the build.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod access_token;
#[cfg(feature = "store")]
pub mod admin;
mod audience;
mod b64url;
#[cfg(feature = "backchannel-logout")]
pub mod backchannel;
pub mod binding;
pub mod claims;
#[cfg(feature = "store")]
pub mod client_metadata;
mod document;
pub mod dpop;
mod error;
#[cfg(feature = "store")]
pub mod events;
#[cfg(feature = "remote-keys")]
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod identifier;
#[cfg(feature = "store")]
pub mod issuer;
pub mod keys;
#[cfg(feature = "store")]
mod redirect;
pub mod refresh;
#[cfg(feature = "remote-keys")]
pub mod remote_keys;
pub mod revocation;
pub mod scope;
pub mod secret;
#[cfg(feature = "store")]
pub mod sessions;
#[cfg(feature = "store")]
pub mod setup;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
pub mod sync;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
#[cfg(feature = "store")]
pub mod token_endpoint;

pub use access_token::{
    AccessTokenConfigError, AccessTokenLayer, AccessTokenLayerBuilder, AuthError,
    RequireAccessToken, Verifier,
};
pub use claims::AccessClaims;
pub use error::BoxError;
pub use identifier::IdentifierError;
#[cfg(feature = "store")]
pub use issuer::{
    IssueError, Issuer, IssuerConfigError, Lifetimes, RequestContext, Requested, TokenResponse,
};
pub use keys::{Algorithm, KeyError, KeySet, Keys, SigningKey};
pub use refresh::RefreshPolicy;
pub use revocation::{RevocationCache, RevokedReason};
/// The SeaORM this crate is built with (2.0): connect through it, so the
/// `DatabaseConnection` you hand tollgate is the one it expects.
#[cfg(feature = "store")]
pub use sea_orm;
pub use secret::RefreshSecret;
#[cfg(feature = "store")]
pub use sessions::{SessionInfo, Sessions};
#[cfg(feature = "store")]
pub use setup::{StartError, Tollgate};
#[cfg(feature = "store")]
pub use store::StoreError;
#[cfg(feature = "store")]
pub use sync::RevocationSync;
#[cfg(feature = "store")]
pub use token_endpoint::{EndpointConfigError, TokenEndpoint, TokenError};
