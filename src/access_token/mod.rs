//! The gate: a Tower layer that enforces JWT access tokens.
//!
//! [`AccessTokenLayer`] takes the bearer token from `Authorization` (RFC 6750
//! §2.1; optionally a cookie, never the query string), verifies it against
//! the [`Keys`](crate::keys::Keys) by `kid`, checks `exp`, `nbf`, `iat`,
//! `iss`, `aud`, `typ` (`at+jwt`, RFC 9068) and `jti`, consults the
//! [`RevocationCache`](crate::revocation::RevocationCache), and puts the
//! verified [`AccessClaims`](crate::AccessClaims) into the request
//! extensions. Rejections follow RFC 6750 §3 exactly ([`AuthError`]); gRPC
//! requests get `grpc-status` 16 or 7 instead.
//!
//! The layer is generic over request and response bodies (a rejection only
//! needs `ResBody: Default`), so one value mounts in axum, bare hyper and
//! tonic alike.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode, header};
//! use tollgate::{AccessClaims, AccessTokenLayer, Algorithm, SigningKey};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let key = SigningKey::hmac("k1", Algorithm::HS256, &[42; 32]).unwrap();
//! let gate = AccessTokenLayer::builder()
//!     .keys(key.clone())
//!     .issuer("https://auth.example")
//!     .audience("orders-api")
//!     .realm("orders")
//!     .build()
//!     .unwrap();
//!
//! let svc = ServiceBuilder::new().layer(gate).service_fn(|req: Request<String>| async move {
//!     let claims = req.extensions().get::<AccessClaims>().unwrap();
//!     Ok::<_, Infallible>(Response::new(format!("hello {}", claims.sub)))
//! });
//!
//! // No token: 401 with a bare challenge.
//! let res = svc.clone().oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()[header::WWW_AUTHENTICATE], r#"Bearer realm="orders""#);
//!
//! // A valid token: the handler sees the claims.
//! let now = jsonwebtoken::get_current_timestamp();
//! let token = key.sign(&AccessClaims {
//!     iss: "https://auth.example".into(), sub: "alice".into(), aud: vec!["orders-api".into()],
//!     exp: now + 300, iat: Some(now), nbf: None, jti: Some("t-1".into()),
//!     client_id: Some("web".into()),
//!     scope: Some("orders:read".into()), sid: Some("fam-1".into()), tenant: None, cnf: None,
//!     auth_time: None, acr: None, amr: None,
//! }).unwrap();
//! let req = Request::builder()
//!     .header(header::AUTHORIZATION, format!("Bearer {token}"))
//!     .body(String::new())
//!     .unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.into_body(), "hello alice");
//! # }) }
//! ```

mod builder;
mod cache;
mod error;
pub(crate) mod extract;
mod future;
mod multi;
mod resource;
mod route;
mod service;
pub(crate) mod verify;

#[cfg(feature = "axum")]
mod axum;

pub use builder::{
    AccessTokenConfigError, AccessTokenLayerBuilder, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN,
};
pub use cache::DEFAULT_VERIFIED_CACHE_BYTES;
pub use error::{AuthError, InvalidToken};
pub use future::ResponseFuture;
pub use multi::{MultiIssuer, MultiIssuerLayer};
pub use resource::{DEFAULT_RESOURCE_METADATA_MAX_AGE, ResourceMetadataEndpoint};
pub use route::{RequireScope, RequireScopeLayer};
pub use service::{AccessTokenLayer, RequireAccessToken};
pub use verify::Verifier;
