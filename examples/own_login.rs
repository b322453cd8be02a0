//! An orders API that signs its users in with its own login handler, the
//! path the README recommends for production: `cargo run --example
//! own_login`.
//!
//! - `POST /login` (form `username`, `password`, `client_id`, optional
//!   `scope`): the app checks the password its own way, then asks the
//!   issuer for tokens and answers exactly as `/token` would — RFC 6749
//!   JSON with `no-store`, RFC 6749 errors (`invalid_scope`, not a 503),
//!   and for the browser client `web` the refresh token in its `HttpOnly`
//!   cookie.
//! - `/token` (refresh), `/revoke`, `/introspect`, the JWKS and the RFC 8414
//!   metadata: tollgate's routes.
//! - `GET /orders`: behind the gate, scope `orders:read`.
//! - `POST /logout`: behind the gate; ends the session (its refresh token
//!   and every access token of it, at once) and clears the cookie.
//!
//! Clients: `cli` (a public native app: its refresh token comes in the
//! body) and `web` (a browser app on `http://127.0.0.1:3000`). The user is
//! `alice` / `wonderland`. Signing key: an Ed25519 PEM at
//! `TOLLGATE_KEY_FILE` (`openssl genpkey -algorithm ed25519`), or a random
//! HS256 key for this process. Everything else lives in an in-memory
//! SQLite database.

use std::net::SocketAddr;

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::{PasswordHasher, SaltString, rand_core::OsRng},
};
use axum::{
    Form, Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use tollgate::{
    AccessClaims, Issuer, RefreshSecret, SigningKey, TokenError, Tollgate, keys::Algorithm,
    sea_orm::Database, secret::random_token, store::clients::NewClient,
    token_endpoint::BrowserClient,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct App {
    tollgate: std::sync::Arc<Tollgate>,
    /// The one user's argon2 hash (your user table, in a real app).
    alice: std::sync::Arc<String>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(
        std::env::var("TOLLGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into()),
    )
    .await?;
    let addr = listener.local_addr()?;
    let router = app(&format!("http://{addr}")).await?;
    // The first line is read by the end-to-end test: keep its shape.
    println!("orders API listening on http://{addr}");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn app(origin: &str) -> Result<Router, BoxError> {
    let key = match std::env::var("TOLLGATE_KEY_FILE") {
        Ok(path) => SigningKey::from_pem("orders-1", Algorithm::EdDSA, &std::fs::read(path)?)?,
        // One process only: another instance could not verify its tokens.
        Err(_) => SigningKey::hmac("orders-1", Algorithm::HS256, random_token().as_bytes())?,
    };
    let db = Database::connect("sqlite::memory:").await?;
    let tollgate = Tollgate::builder(db)
        .issuer(
            Issuer::builder()
                .keys(key)
                .issuer(origin)
                .audience(format!("{origin}/orders"))
                // From your secret store in production, the same on every
                // instance.
                .refresh_secret(RefreshSecret::new(random_token().as_bytes())?),
        )
        .client(NewClient::public("cli", "orders:read orders:write"))
        .client(NewClient::public("web", "orders:read"))
        .endpoint(|e| {
            e.scopes_supported(["orders:read", "orders:write"])
                .browser_client("web", BrowserClient::new(["http://127.0.0.1:3000"]))
        })
        .start()
        .await?;
    let gate = tollgate.gate().require_scope("orders:read").build()?;
    let salt = SaltString::generate(&mut OsRng);
    let alice = Argon2::default()
        .hash_password(b"wonderland", &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let state = App {
        tollgate: std::sync::Arc::new(tollgate),
        alice: std::sync::Arc::new(alice),
    };
    Ok(Router::new()
        .route("/orders", get(orders))
        .route("/logout", post(logout))
        .layer(gate)
        .route("/login", post(login))
        .merge(state.tollgate.routes())
        .with_state(state))
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
    client_id: String,
    scope: Option<String>,
}

/// The app's own sign-in: its password check, then tollgate's tokens.
async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    if !password_ok(&app, &form.username, form.password).await {
        return TokenError::InvalidGrant("The username or password is incorrect").into_response();
    }
    let endpoint = app.tollgate.endpoint();
    // The session is bound to the IP and User-Agent its refreshes will show.
    let context = endpoint.request_context(Some(peer.ip()), &headers);
    match app
        .tollgate
        .issuer()
        .issue(
            &form.username,
            &form.client_id,
            form.scope.as_deref(),
            &context,
        )
        .await
    {
        Ok(tokens) => endpoint
            .token_response(&form.client_id, tokens)
            .into_response(),
        Err(e) => TokenError::from(e).into_response(),
    }
}

/// alice's password, checked off the async threads (argon2 is slow on
/// purpose). Any other user name fails.
async fn password_ok(app: &App, username: &str, password: String) -> bool {
    if username != "alice" {
        return false;
    }
    let hash = std::sync::Arc::clone(&app.alice);
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The caller's orders: the gate has verified the token and put its claims
/// in the request.
async fn orders(claims: AccessClaims) -> String {
    format!("orders of {}", claims.sub)
}

/// Ends the caller's session everywhere at once, and clears the browser
/// client's cookie.
async fn logout(State(app): State<App>, claims: AccessClaims) -> Response {
    match app.tollgate.sessions().logout(&claims).await {
        Ok(_) => {
            let clear = claims
                .client_id
                .as_deref()
                .and_then(|client| app.tollgate.endpoint().clear_refresh_cookie(client));
            let mut response = StatusCode::NO_CONTENT.into_response();
            response
                .headers_mut()
                .extend(clear.map(|v| (header::SET_COOKIE, v)));
            response
        }
        Err(_) => TokenError::Unavailable.into_response(),
    }
}
