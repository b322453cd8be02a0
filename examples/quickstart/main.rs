//! A complete token service in one command: `cargo run --example quickstart`.
//!
//! An axum server with tollgate's `/token`, `/revoke`, `/introspect` and
//! JWKS endpoints, protected routes behind the gate, and session routes.
//! SQLite (a file, created and migrated at start) unless `DATABASE_URL`
//! names PostgreSQL. Every setting comes from the environment; README.md
//! lists them with their defaults.
//!
//! The demo user signs in with the authorization code flow and PKCE:
//! `/authorize` sends the browser to the app's own login and consent
//! pages (`signin.rs`), which hand the decision back to tollgate. The
//! password grant (RFC 9700 §2.4 deprecates it) is off unless
//! `TOLLGATE_DEMO_PASSWORD_GRANT=on`, for `curl`.
//!
//! This file wires the service together; `setup.rs` reads the settings
//! and keeps the keys, `routes.rs` holds the app's own routes, `page.rs`
//! the browser app, `signin.rs` the login and consent pages,
//! `registration.rs` the settings for clients that register themselves. With
//! `--features postgres`, `DATABASE_URL` may name PostgreSQL.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    http::{Method, StatusCode},
    middleware,
    routing::{delete, get, post},
};
use metrics_exporter_prometheus::PrometheusBuilder;
use sea_orm::{ConnectOptions, Database};
use tollgate::{
    AccessTokenLayer,
    dpop::Dpop,
    issuer::Issuer,
    store,
    sync::RevocationSync,
    token_endpoint::{Authorization, BrowserClient, TokenEndpoint},
};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

mod page;
mod registration;
mod routes;
mod setup;
mod signin;

use routes::{
    Auth, healthz, list_consents, list_sessions, logout, me, revoke_consent, revoke_session,
    revoke_sessions,
};
use setup::{
    Config, demo_clients, demo_password_verifier, print_event, refresh_secret, signing_key,
};
use signin::origin_of;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request body the server reads.
const BODY_LIMIT: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Structured logs (the security events among them) on stderr; stdout
    // stays for the lines a user reads.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
    let cfg = Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(&cfg.addr).await?;
    let addr = listener.local_addr()?;
    // Where clients reach the endpoints: configured, or this listener.
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let app = App::start(&cfg, &public_url).await?;
    // The first line is read by the end-to-end test: keep its shape.
    println!("tollgate quickstart listening on http://{addr}");
    println!("{}", curl_lines(&cfg, addr));
    axum::serve(
        listener,
        app.router
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    })
    .await?;
    app.background
        .iter()
        .for_each(tokio::task::JoinHandle::abort);
    Ok(())
}

struct App {
    router: Router,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    async fn start(cfg: &Config, public_url: &str) -> Result<Self, BoxError> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        let mut opts = ConnectOptions::new(cfg.database_url.clone());
        opts.sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(5));
        let db = Database::connect(opts).await?;
        store::migrate(&db).await?;
        demo_clients(&db, cfg, public_url).await?;

        let issuer = Issuer::builder()
            .db(db.clone())
            .keys(signing_key(cfg)?)
            .issuer(cfg.issuer.clone())
            .audience(cfg.audience.clone())
            .lifetimes(cfg.lifetimes)
            .policy(cfg.policy.clone())
            .refresh_secret(refresh_secret(&cfg.data_dir)?)
            .events(print_event)
            .build()?;
        // Load every revocation that still matters into the issuer's deny
        // list (which its gates share) before serving, then follow the
        // other instances' revocations.
        let sync = RevocationSync::builder(db.clone(), issuer.revocations().clone()).build();
        sync.sync().await?;
        let janitor = issuer.janitor().build();

        // DPoP (RFC 9449), optional: a client that sends proofs gets
        // tokens bound to its key; one that does not gets bearer tokens.
        let dpop = Dpop::builder().build()?;
        let mut endpoint = TokenEndpoint::builder(issuer.clone())
            .dpop(dpop.clone())
            .public_base_url(public_url)
            .trusted_proxies(cfg.proxies.clone())
            .rate_limits(cfg.limits.clone())
            // The code flow: /authorize sends the browser to /login.
            .authorization(Authorization::new("/login"))
            // The page at `/` (this origin) and any configured elsewhere.
            .browser_client(
                cfg.browser_client_id.clone(),
                BrowserClient::new(
                    std::iter::once(origin_of(public_url)).chain(cfg.browser_origins.clone()),
                ),
            );
        if cfg.password_grant {
            endpoint = endpoint.password_verifier(demo_password_verifier(cfg)?);
        }
        // Off unless asked for: clients that register themselves, as an
        // MCP authorization server needs (registration.rs).
        let endpoint =
            registration::configure(endpoint, ("off", "off"), "read", &[public_url.to_owned()])?
                .build()?;
        let authorizer = endpoint
            .authorizer()
            .ok_or("the authorization endpoint is on")?;
        let sign_in = signin::SignIn::new(
            authorizer.clone(),
            demo_password_verifier(cfg)?,
            origin_of(public_url),
        )?;

        // The API is one protected resource (RFC 9728): the public URL.
        // Its metadata is served at the well-known path, and every
        // challenge of its gates points there (`resource_metadata`).
        let gate = |scope: Option<&str>| -> Result<AccessTokenLayer, BoxError> {
            let mut b = issuer
                .access_token_layer()
                .resource(public_url)
                .realm("quickstart")
                .leeway(cfg.leeway)
                .dpop(dpop.clone())
                .dpop_public_url(public_url);
            if let Some(scope) = scope {
                b = b.require_scope(scope);
            }
            Ok(b.build()?)
        };
        let resource_metadata = gate(None)?
            .resource_metadata()
            .ok_or("the gate has a resource")?;
        let sessions = issuer.sessions();
        let protected = Router::new()
            .route("/me", get(me))
            .route("/logout", post(logout))
            .route("/sessions", get(list_sessions).delete(revoke_sessions))
            .route("/sessions/{id}", delete(revoke_session))
            .route("/consents", get(list_consents))
            .route("/consents/{client_id}", delete(revoke_consent))
            .with_state(Auth {
                sessions,
                endpoint: endpoint.clone(),
                authorizer,
            })
            // route_layer: only these routes are challenged; an unknown
            // path falls through to a plain 404.
            .route_layer(gate(None)?)
            // What they answer (claims, IPs, User-Agents) is the caller's
            // alone: no cache may keep it.
            .layer(middleware::map_response(no_store))
            // A browser app on another listed origin may call these too.
            .layer(endpoint.cors_layer().allow_methods([
                Method::GET,
                Method::POST,
                Method::DELETE,
            ]));
        let admin = Router::new()
            .route("/admin", get(|| async { "welcome, administrator\n" }))
            .route_layer(gate(Some("admin"))?);
        let mut router = Router::new();
        if cfg.metrics {
            // Prometheus text format of every tollgate metric (the library
            // records through the `metrics` facade; this installs the
            // recorder). Unauthenticated: expose it to your scraper only.
            let prometheus = PrometheusBuilder::new().install_recorder()?;
            router = router.route(
                "/metrics",
                get(move || std::future::ready(prometheus.render())),
            );
        }
        let router = router
            .merge(page::routes(&cfg.browser_client_id))
            .route_service(
                "/authorize",
                endpoint
                    .authorization_endpoint()
                    .ok_or("the authorization endpoint is on")?,
            )
            .merge(match endpoint.registration_endpoint() {
                Some(register) => Router::new().route_service("/register", register),
                None => Router::new(),
            })
            .merge(
                Router::new()
                    .route_service("/token", endpoint.clone())
                    .route_service("/revoke", endpoint.revocation())
                    .layer(endpoint.cors_layer()),
            )
            .route_service("/introspect", endpoint.introspection())
            .route_service("/.well-known/jwks.json", endpoint.jwks())
            .route_service(endpoint.metadata().well_known_path(), endpoint.metadata())
            .route_service(
                resource_metadata.well_known_path(),
                resource_metadata.clone(),
            )
            .route("/healthz", get(move || healthz(db.clone())))
            // The token endpoints cap their own bodies (16 KiB) and answer
            // in RFC 6749's JSON; the rest of the app gets tower-http's cap.
            .merge(
                protected
                    .merge(admin)
                    .merge(sign_in.routes())
                    .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
            )
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                cfg.request_timeout,
            ));
        Ok(Self {
            router,
            background: vec![sync.spawn(), janitor.spawn()],
        })
    }
}

/// `Cache-Control: no-store` on a protected route's answer.
async fn no_store(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

fn curl_lines(cfg: &Config, addr: SocketAddr) -> String {
    format!(
        "\nTry it:\n\
         \x20 # sign in as {user} / {pw} in a browser (authorization code + PKCE)\n\
         \x20 open http://{addr}/\n\
         \x20 # or, with TOLLGATE_DEMO_PASSWORD_GRANT=on, log in with curl (the deprecated password grant)\n\
         \x20 curl -s -u {id}:{secret} -d grant_type=password -d username={user} -d password={pw} -d scope='read write' http://{addr}/token\n\
         \x20 # call a protected route with the access_token from the answer\n\
         \x20 curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/me\n\
         \x20 # rotate the refresh token (each one works once)\n\
         \x20 curl -s -u {id}:{secret} -d grant_type=refresh_token -d refresh_token=$REFRESH_TOKEN http://{addr}/token\n\
         \x20 # your sessions, then log out\n\
         \x20 curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/sessions\n\
         \x20 curl -s -X POST -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/logout\n\
         \x20 # the public keys\n\
         \x20 curl -s http://{addr}/.well-known/jwks.json\n",
        id = cfg.client_id,
        secret = cfg.client_secret,
        user = cfg.user,
        pw = cfg.password,
    )
}
