//! The token endpoint (RFC 6749 §3.2, §5) and its companions as Tower
//! services.
//!
//! - [`TokenEndpoint`] (`/token`). Grants: `refresh_token` (rotating,
//!   reuse-detecting, see [`refresh`](crate::refresh)), `password` (opt-in,
//!   through a [`PasswordVerifier`]), and `client_credentials`. Clients
//!   authenticate with `client_secret_basic`, `client_secret_post`, or by
//!   `client_id` alone when public.
//! - [`RevocationEndpoint`] (`/revoke`, RFC 7009) and
//!   [`IntrospectionEndpoint`] (`/introspect`, RFC 7662), from
//!   [`TokenEndpoint::revocation`] and [`TokenEndpoint::introspection`]:
//!   same clients, same request rules.
//! - [`JwksEndpoint`] (`/.well-known/jwks.json`): the public keys.
//!
//! Browser clients ([`TokenEndpointBuilder::browser_client`]): the refresh
//! token travels in an `HttpOnly`, `Secure`, `SameSite` cookie with a
//! `__Host-` name, every request of such a client needs one of its
//! origins and [`CSRF_HEADER`] (or `Sec-Fetch-Site: same-origin`),
//! `/revoke` reads and clears the cookie, and
//! [`TokenEndpoint::cors_layer`] answers CORS for the listed origins.
//!
//! Abuse: [`RateLimits`] caps requests per source IP and per client, and
//! blocks sources and usernames after repeated failed client
//! authentications or passwords (429 with `Retry-After`). Off by default.
//!
//! ```
//! use http::{Request, StatusCode, header};
//! use http_body_util::{BodyExt, Full};
//! use bytes::Bytes;
//! use tollgate::{
//!     issuer::Issuer, keys::{Algorithm, KeySet, SigningKey}, secret::RefreshSecret,
//!     store::{self, clients::NewClient}, token_endpoint::TokenEndpoint,
//! };
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! let mut client = NewClient::public("cli", "read");
//! client.allow_password = true;
//! store::clients::register(&db, client, std::time::SystemTime::now()).await.unwrap();
//! let issuer = Issuer::builder()
//!     .db(db)
//!     .keys(SigningKey::hmac("k", Algorithm::HS256, &[1; 32]).unwrap())
//!     .issuer("https://auth.example")
//!     .audience("api")
//!     .refresh_secret(RefreshSecret::new(&[2; 32]).unwrap())
//!     .build()
//!     .unwrap();
//! let endpoint = TokenEndpoint::builder(issuer)
//!     .password_verifier(|user: String, password: String| async move {
//!         Ok((user == "alice" && password == "wonderland").then_some(user))
//!     })
//!     .build()
//!     .unwrap();
//!
//! let req = Request::post("/token")
//!     .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
//!     .body(Full::new(Bytes::from("grant_type=password&client_id=cli&username=alice&password=wonderland")))
//!     .unwrap();
//! let res = endpoint.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
//! let json: serde_json::Value =
//!     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert_eq!(json["token_type"], "Bearer");
//! # });
//! ```

mod authorize;
mod builder;
pub(crate) mod client_auth;
mod consent;
mod cookie;
#[cfg(feature = "client-metadata")]
mod documents;
mod dpop;
pub(crate) mod form;
mod grant;
mod introspect;
mod jwks;
mod limits;
mod metadata;
mod password;
mod pipeline;
mod registration;
mod response;
mod revoke;
mod service;

pub use authorize::{
    Approve, Authorization, AuthorizationEndpoint, AuthorizeError, Authorizer, DEFAULT_CODE_TTL,
    DEFAULT_PENDING_TTL, PENDING_PARAMETER, PendingAuthorization,
};
pub use builder::{EndpointConfigError, TokenEndpointBuilder};
pub use consent::Consent;
pub use cookie::{BrowserClient, BrowserConfigError, CSRF_HEADER, SameSite};
#[cfg(feature = "client-metadata")]
pub use documents::MetadataDocuments;
pub use introspect::IntrospectionEndpoint;
pub use jwks::{DEFAULT_JWKS_MAX_AGE, JwksEndpoint};
pub use limits::{Limit, RateLimits};
pub use metadata::{
    DEFAULT_METADATA_MAX_AGE, EndpointPaths, MetadataConfigError, MetadataEndpoint,
};
pub use password::{PasswordVerifier, VerifyError};
pub use pipeline::{DEFAULT_CLIENT_CACHE_TTL, DEFAULT_MAX_BODY, EndpointFuture};
pub use registration::{DEFAULT_REGISTRATIONS_PER_IP, DynamicRegistration, RegistrationEndpoint};
pub use response::TokenError;
pub use revoke::RevocationEndpoint;
pub use service::TokenEndpoint;
