//! The one place that mints tokens: RFC 9068 access tokens and opaque,
//! rotating refresh tokens.
//!
//! An application's own login handler (after checking the password, a
//! passkey, an SSO assertion…) calls [`Issuer::issue`] to start a session;
//! the token endpoint uses the same issuer for its grants.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::{
//!     issuer::{RequestContext, Issuer},
//!     Algorithm, SigningKey,
//!     secret::RefreshSecret,
//!     store::{self, clients::NewClient},
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! store::clients::register(&db, NewClient::public("spa", "read write"), std::time::SystemTime::now()).await.unwrap();
//!
//! let key = SigningKey::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
//! let issuer = Issuer::builder()
//!     .db(db)
//!     .keys(key)
//!     .issuer("https://auth.example")
//!     .audience("https://api.example")
//!     .refresh_secret(RefreshSecret::new(&[9; 32]).unwrap())
//!     .build()
//!     .unwrap();
//!
//! // In your login handler, once the user is authenticated:
//! let tokens = issuer.issue("alice", "spa", Some("read"), &RequestContext::default()).await.unwrap();
//! assert_eq!(tokens.token_type, "Bearer");
//! assert_eq!(tokens.scope, "read");
//! assert!(tokens.refresh_token.is_some());
//! # });
//! ```

mod builder;
mod code;
mod grants;
mod handle;
mod mint;
mod request;
mod revoker;
mod session;

pub use builder::IssuerBuilder;
pub use code::CodeError;
pub(crate) use code::CodeRedemption;
pub use handle::Issuer;
pub use request::{
    Authentication, IssueError, IssuerConfigError, Lifetimes, RequestContext, Requested,
    TokenResponse,
};
pub(crate) use revoker::Revoker;
