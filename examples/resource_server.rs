//! The gate alone, no database, in front of an identity provider
//! (Keycloak, Auth0, Entra ID, Okta, or any OpenID Connect / RFC 8414
//! issuer), configured by environment:
//!
//! ```text
//! TOLLGATE_UPSTREAM_ISSUER=https://sso.example/realms/shop \
//! TOLLGATE_AUDIENCE=shop-api \
//! cargo run --example resource_server --features remote-keys
//! ```
//!
//! - `TOLLGATE_ADDR`: where to listen (default `127.0.0.1:8081`).
//! - `TOLLGATE_UPSTREAM_ISSUER`: the issuer, exactly as its tokens' `iss`;
//!   its keys come from its discovery document, or from
//!   `TOLLGATE_JWKS_URL` when that is set. `https` only (`http` only to a
//!   loopback host).
//! - `TOLLGATE_AUDIENCE`: this API, as the tokens' `aud` names it.
//! - `TOLLGATE_TOKEN_PROFILE`: `oidc` (default: Keycloak, Auth0, Entra ID,
//!   Okta) or `rfc9068` (strict JWT access tokens).
//! - `TOLLGATE_BACKCHANNEL_CLIENT_ID`: this app's client id at the
//!   provider; when set, `POST /backchannel-logout` receives its logouts.
//! - `TOLLGATE_UNKNOWN_KID_INTERVAL_SECS`: the shortest time between key
//!   fetches an unknown `kid` causes (default 10).
//!
//! Routes: `GET /healthz`; `GET /me`, the verified claims as JSON (the
//! provider's own included); `GET /orders`, which needs scope
//! `orders:read`; `POST /backchannel-logout`.

use std::{net::SocketAddr, time::Duration};

use axum::{Json, Router, routing::get};
use tollgate::{
    AccessTokenLayer, Algorithm, RevocationCache,
    backchannel::BackChannelLogout,
    claims::{Claims, TokenProfile},
    remote_keys::RemoteKeys,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every asymmetric algorithm the providers sign with.
const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String, BoxError> {
    env(name).ok_or_else(|| format!("{name} must be set").into())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run().await {
        eprintln!("resource_server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let issuer = required("TOLLGATE_UPSTREAM_ISSUER")?;
    let audience = required("TOLLGATE_AUDIENCE")?;
    let profile = match env("TOLLGATE_TOKEN_PROFILE").as_deref() {
        None | Some("oidc") => TokenProfile::Oidc,
        Some("rfc9068") => TokenProfile::Rfc9068,
        Some(other) => {
            return Err(format!("TOLLGATE_TOKEN_PROFILE: {other:?} is not oidc or rfc9068").into());
        }
    };
    let interval = match env("TOLLGATE_UNKNOWN_KID_INTERVAL_SECS") {
        Some(secs) => Duration::from_secs(secs.parse()?),
        None => tollgate::remote_keys::DEFAULT_UNKNOWN_KID_INTERVAL,
    };
    let remote = match env("TOLLGATE_JWKS_URL") {
        Some(url) => RemoteKeys::jwks(&issuer, &url),
        None => RemoteKeys::discover(&issuer),
    };
    let keys = remote
        .algorithms(ALGORITHMS)
        .unknown_kid_interval(interval)
        .build()
        .await?;
    // Kept fresh for as long as the server runs.
    let _refresher = keys.spawn();

    let revocations = RevocationCache::default();
    let gate = AccessTokenLayer::builder()
        .keys(keys.keys())
        .algorithms(ALGORITHMS)
        .issuer(&issuer)
        .audience(&audience)
        .profile(profile)
        .revocations(revocations.clone())
        .build()?;
    let mut app = Router::new()
        .route("/me", get(me))
        .route(
            "/orders",
            get(orders).route_layer(gate.require_scope_layer(["orders:read"])?),
        )
        .layer(gate)
        .route("/healthz", get(|| async { "ok" }));
    if let Some(client_id) = env("TOLLGATE_BACKCHANNEL_CLIENT_ID") {
        let logout = BackChannelLogout::builder()
            .issuer(&issuer)
            .client_id(client_id)
            .keys(keys.keys())
            .revocations(revocations)
            .build()?;
        app = app.route_service("/backchannel-logout", logout);
    }

    let addr = env("TOLLGATE_ADDR").unwrap_or_else(|| "127.0.0.1:8081".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr: SocketAddr = listener.local_addr()?;
    println!(
        "tollgate resource server on http://{addr}, keys from {}",
        keys.jwks_uri()
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Every claim of the token as its issuer signed it.
async fn me(Claims(claims): Claims<serde_json::Value>) -> Json<serde_json::Value> {
    Json(claims)
}

async fn orders(claims: tollgate::AccessClaims) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "orders": [], "for": claims.sub }))
}
