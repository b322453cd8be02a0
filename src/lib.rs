//! # tollgate
//!
//! Token auth for Tower services, done right:
//!
//! - **The gate** ([`AccessTokenLayer`]): a Tower layer that enforces JWT
//!   access tokens (RFC 9068) on any hyper, axum or tonic stack and rejects
//!   revoked tokens at once from an in-memory deny list
//!   ([`RevocationCache`]), with RFC 6750 error responses.
//! - **Keys** ([`keys`]): HMAC, RSA, ECDSA and EdDSA keys chosen by `kid`,
//!   lock-free rotation, JWKS export.
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
//! - `axum` (default): [`AccessClaims`] as an axum extractor, [`AuthError`]
//!   and `TokenError` as responses.
//! - `sqlite` (default), `postgres`, `mysql`: the store on that database;
//!   each turns on `store`.
//! - `store`: the token endpoint on SeaORM — `/token`, `/revoke`,
//!   `/introspect`, JWKS (`token_endpoint`), the `issuer`, `sessions`, the
//!   persisted deny list and its `RevocationSync`, and the janitor
//!   (`store::cleanup`) — with no driver of its own.
//! - `metrics`: domain counters and histograms through the `metrics`
//!   facade (the table is in the crate's `telemetry` module docs and
//!   README); no recorder is installed by the library.
//! - `testing`: `testing::TestServer`, an in-process token service on
//!   in-memory SQLite for your own integration tests.
//!
//! The gate alone, with no database and no axum:
//! `tollgate = { version = "0.1", default-features = false, features = ["grpc"] }`.
//!
//! Items that need a feature say so in these docs.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(unsafe_code, unreachable_pub)]

pub mod access_token;
#[cfg(feature = "store")]
pub mod admin;
mod audience;
mod b64url;
pub mod binding;
pub mod claims;
mod document;
pub mod dpop;
mod error;
#[cfg(feature = "store")]
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod identifier;
#[cfg(feature = "store")]
pub mod issuer;
pub mod keys;
pub mod refresh;
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
