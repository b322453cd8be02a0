//! A token service for your own integration tests (feature `testing`).
//!
//! [`TestServer::start`] runs tollgate's `/token`, `/revoke`,
//! `/introspect` and JWKS endpoints in-process, on in-memory SQLite and a
//! random loopback port, in one call. Mount [`TestServer::access_token_layer`] on the
//! router under test, mint tokens for any subject and scope with
//! [`TestServer::mint`], revoke them, and drop the server when done — no
//! identity server to run.
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use http::{Request, StatusCode, header};
//! use tollgate::{AccessClaims, testing::TestServer};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = TestServer::start().await;
//! let app = Router::new()
//!     .route("/me", get(|c: AccessClaims| async move { c.sub }))
//!     .layer(server.access_token_layer());
//!
//! let tokens = server.mint("alice", "read").await;
//! let call = |token: String| {
//!     let app = app.clone();
//!     async move {
//!         let req = Request::get("/me")
//!             .header(header::AUTHORIZATION, format!("Bearer {token}"))
//!             .body(Body::empty())
//!             .unwrap();
//!         app.oneshot(req).await.unwrap().status()
//!     }
//! };
//! assert_eq!(call(tokens.access_token.clone()).await, StatusCode::OK);
//!
//! server.revoke(&tokens.access_token).await;
//! assert_eq!(call(tokens.access_token).await, StatusCode::UNAUTHORIZED);
//! # });
//! ```

use std::net::SocketAddr;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use sea_orm::{Database, DatabaseConnection};
use tokio::{net::TcpListener, sync::Mutex, task::JoinHandle};

use crate::{
    AccessTokenLayer, RevocationCache,
    issuer::{Issuer, RequestContext, TokenResponse},
    keys::{Algorithm, SigningKey},
    secret::RefreshSecret,
    store::{self, clients::NewClient},
    token_endpoint::TokenEndpoint,
};

/// The issuer (`iss`) of the test server's tokens.
pub const ISSUER: &str = "https://tollgate.test";
/// The audience (`aud`) of the test server's tokens.
pub const AUDIENCE: &str = "tollgate-test-api";
/// A public client that may use the password grant, registered with scope
/// `read write`.
pub const PUBLIC_CLIENT: &str = "test-public";
/// The password grant accepts any username with this password.
pub const TEST_PASSWORD: &str = "test-password";

/// An in-process token service on in-memory SQLite and a random port.
/// Dropping it stops the server.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    db: DatabaseConnection,
    issuer: Issuer,
    endpoint: TokenEndpoint,
    /// Clients registered so far for a scope (the client of a token is
    /// registered with exactly the scope asked for).
    scopes: Mutex<Vec<String>>,
    server: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestServer {
    /// Starts the server. Panics if it cannot (this is test code).
    pub async fn start() -> Self {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        store::migrate(&db).await.expect("migrations");
        let mut public = NewClient::public(PUBLIC_CLIENT, "read write");
        public.allow_password = true;
        store::clients::register(&db, public, std::time::SystemTime::now())
            .await
            .expect("register the test client");
        let mut secret = [0u8; 32];
        let rng = SystemRandom::new();
        rng.fill(&mut secret).expect("randomness");
        let key = SigningKey::hmac("test", Algorithm::HS256, &secret).expect("a test key");
        rng.fill(&mut secret).expect("randomness");
        let issuer = Issuer::builder()
            .db(db.clone())
            .keys(key)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .refresh_secret(RefreshSecret::new(&secret).expect("a refresh secret"))
            .build()
            .expect("an issuer");
        // Warm the deny list from the store before any gate serves.
        crate::sync::RevocationSync::builder(db.clone(), issuer.revocations().clone())
            .build()
            .sync()
            .await
            .expect("warm the deny list");
        // A test database lives as long as the test: nothing to clean up.
        let endpoint = TokenEndpoint::builder(issuer.clone())
            .janitor_elsewhere()
            .password_verifier(|user: String, password: String| async move {
                Ok((password == TEST_PASSWORD).then_some(user))
            })
            .build()
            .expect("an endpoint");
        let router = axum::Router::new()
            .route_service("/token", endpoint.clone())
            .route_service("/revoke", endpoint.revocation())
            .route_service("/introspect", endpoint.introspection())
            .route_service("/.well-known/jwks.json", endpoint.jwks());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let server = tokio::spawn(async move {
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            db,
            issuer,
            endpoint,
            scopes: Mutex::new(Vec::new()),
            server,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`, e.g. `url("/token")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The gate that trusts this server's tokens and shares its deny list:
    /// mount it on the routes under test.
    pub fn access_token_layer(&self) -> AccessTokenLayer {
        self.issuer
            .access_token_layer()
            .build()
            .expect("a gate over the test keys")
    }

    /// Starts a session for `subject` with exactly `scope` (space-separated,
    /// may be empty): an access and a refresh token.
    pub async fn mint(&self, subject: &str, scope: &str) -> TokenResponse {
        let client = self.client_for(scope).await;
        self.issuer
            .issue(subject, &client, Some(scope), &RequestContext::default())
            .await
            .expect("minting a test token")
    }

    /// Revokes a token as `/revoke` would: an access token's `jti`, or a
    /// refresh token's whole session. Unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) {
        self.endpoint
            .revocation()
            .revoke(None, token)
            .await
            .expect("revoking a test token");
    }

    /// The issuer, for anything else (sessions, logout everywhere…).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The token endpoint service, to call in-process without the socket.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The shared deny list.
    pub fn revocations(&self) -> &RevocationCache {
        self.issuer.revocations()
    }

    async fn client_for(&self, scope: &str) -> String {
        let mut scopes = self.scopes.lock().await;
        let index = scopes
            .iter()
            .position(|s| s == scope)
            .unwrap_or(scopes.len());
        let id = format!("test-client-{index}");
        if index == scopes.len() {
            store::clients::register(
                &self.db,
                NewClient::public(id.clone(), scope),
                std::time::SystemTime::now(),
            )
            .await
            .expect("registering a test client");
            scopes.push(scope.to_owned());
        }
        id
    }
}
