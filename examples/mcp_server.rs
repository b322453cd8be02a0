//! An MCP server (rmcp, streamable HTTP) behind tollgate's gate, with
//! tollgate as its authorization server:
//! `cargo run --example mcp_server --features client-metadata`.
//!
//! An MCP client that is refused with `401` follows the challenge's
//! `resource_metadata` to the RFC 9728 document, from there to the
//! authorization server's RFC 8414 metadata, and signs its user in with
//! the authorization code grant and PKCE (S256): it registers by a Client
//! ID Metadata Document (its `client_id` is the document's `https` URL)
//! when the metadata says `client_id_metadata_document_supported`, or by
//! dynamic registration (RFC 7591, `/register`) otherwise; the user signs
//! in and consents on this server's own pages (the quickstart's, which
//! show the client's kind, its host and the redirect host); the client
//! redeems the code, calls the tools, and refreshes with rotation.
//! The tools read the verified claims the gate put into the request (rmcp
//! hands the HTTP request parts to each tool), so each answers for its
//! caller. `/mcp/admin` holds a tool that needs scope `admin`: without it
//! the gate answers `403 insufficient_scope` naming the scope. Revoking a
//! token (`POST /revoke`) cuts the client off at its next request.
//!
//! Settings (environment):
//!
//! | variable | default | |
//! |---|---|---|
//! | `TOLLGATE_ADDR` | `127.0.0.1:8080` | where to listen |
//! | `TOLLGATE_MCP_USER`, `TOLLGATE_MCP_PASSWORD` | `alice`, `wonderland` | the demo user of the login page |
//! | `TOLLGATE_MCP_SECRET` | `mcp-agent-secret` | the secret of `mcp-agent`, a machine client allowed `client_credentials` |
//! | `TOLLGATE_CIMD` | `on` | accept Client ID Metadata Documents |
//! | `TOLLGATE_DCR` | `open` | dynamic registration: `open`, `off`, or `token` (needs `TOLLGATE_DCR_TOKEN`) |
//! | `TOLLGATE_REGISTERED_SCOPE` | `tools:read` | what those clients may be granted |
//!
//! and the documents' fetch settings (`examples/quickstart/registration.rs`
//! lists them): trusted hosts, a CA file, the loopback allowance for
//! tests.
//!
//! Everything lives in memory.

use std::net::SocketAddr;

use axum::Router;
use http::request::Parts;
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::Extension},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tollgate::{
    AccessClaims, Issuer, RefreshSecret, SigningKey, TokenEndpoint,
    keys::Algorithm,
    secret::random_token,
    store::{self, clients::NewClient},
    token_endpoint::Authorization,
};
use tower::ServiceBuilder;

// The quickstart's login and consent pages, and its settings for clients
// that register themselves, as they are.
#[path = "quickstart/registration.rs"]
mod registration;
#[path = "quickstart/signin.rs"]
mod signin;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The tools every holder of `tools:read` may call.
#[derive(Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Who is calling, as the verified access token says.
    #[tool(name = "whoami")]
    async fn whoami(&self, Extension(parts): Extension<Parts>) -> Result<String, String> {
        let claims = caller(&parts)?;
        Ok(format!(
            "{} via {} with scope {}",
            claims.sub,
            claims.client_id.as_deref().unwrap_or("an unknown client"),
            claims.scope.as_deref().unwrap_or("")
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {}

/// The tools that need scope `admin` (served on `/mcp/admin`).
#[derive(Clone)]
struct AdminTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl AdminTools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Only reachable with scope `admin`.
    #[tool(name = "audit")]
    async fn audit(&self, Extension(parts): Extension<Parts>) -> Result<String, String> {
        Ok(format!("audit log opened by {}", caller(&parts)?.sub))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AdminTools {}

/// The claims the gate verified for this request.
fn caller(parts: &Parts) -> Result<&AccessClaims, String> {
    parts
        .extensions
        .get::<AccessClaims>()
        .ok_or_else(|| "not behind the gate".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(var("TOLLGATE_ADDR", "127.0.0.1:8080")).await?;
    let addr = listener.local_addr()?;
    let router = app(addr).await?;
    // The first line is read by the end-to-end test: keep its shape.
    println!("tollgate MCP server listening on http://{addr}");
    println!("resource http://{addr}/mcp; token endpoint http://{addr}/token");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// A setting from the environment, or its default.
fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The authorization server and the MCP server it protects, on one origin.
async fn app(addr: SocketAddr) -> Result<Router, BoxError> {
    let origin = format!("http://{addr}");
    let resource = format!("{origin}/mcp");

    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    store::migrate(&db).await?;
    let mut agent = NewClient::confidential("mcp-agent", "tools:read");
    agent.allow_client_credentials = true;
    agent.resources = vec![resource.clone(), format!("{resource}/admin")];
    let secret = var("TOLLGATE_MCP_SECRET", "mcp-agent-secret");
    store::clients::register_with_secret(&db, agent, &secret, std::time::SystemTime::now()).await?;

    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(SigningKey::hmac(
            "mcp",
            Algorithm::HS256,
            random_token().as_bytes(),
        )?)
        .issuer(origin.clone())
        .audience(resource.clone())
        .refresh_secret(RefreshSecret::new(random_token().as_bytes())?)
        .build()?;
    // The deny list is loaded from the store before the gates serve.
    tollgate::RevocationSync::builder(db, issuer.revocations().clone())
        .build()
        .sync()
        .await?;
    // Deletes expired and revoked sessions, and registered clients never
    // used, hourly.
    issuer.janitor().build().spawn();

    // What a client that registers itself may have: the tools, here.
    let endpoint = registration::configure(
        TokenEndpoint::builder(issuer.clone())
            .scopes_supported(["tools:read", "admin"])
            .authorization(Authorization::new("/login")),
        ("on", "open"),
        "tools:read",
        std::slice::from_ref(&resource),
    )?;
    let endpoint = endpoint.build()?;

    let (user, password) = (
        var("TOLLGATE_MCP_USER", "alice"),
        var("TOLLGATE_MCP_PASSWORD", "wonderland"),
    );
    let pages = signin::SignIn::new(
        endpoint
            .authorizer()
            .ok_or("the authorization endpoint is on")?,
        move |name: String, given: String| {
            let ok = name == user
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    given.as_bytes(),
                    password.as_bytes(),
                )
                .is_ok();
            async move { Ok(ok.then_some(name)) }
        },
        origin.clone(),
    )?;

    let gate = issuer
        .access_token_layer()
        .resource(resource.clone())
        .require_scope("tools:read")
        .build()?;
    let admin_gate = issuer
        .access_token_layer()
        .resource(format!("{resource}/admin"))
        .require_scope("admin")
        .build()?;
    let metadata = gate.resource_metadata().ok_or("the gate has a resource")?;
    let admin_metadata = admin_gate
        .resource_metadata()
        .ok_or("the gate has a resource")?;

    let tools = StreamableHttpService::new(
        || Ok(Tools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let admin_tools = StreamableHttpService::new(
        || Ok(AdminTools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );

    // What a client running in a web page (MCP Inspector) calls from the
    // browser: readable from any origin, never with credentials.
    let mut for_browsers = Router::new()
        .route_service("/token", endpoint.clone())
        .route_service("/revoke", endpoint.revocation())
        .route_service("/.well-known/jwks.json", endpoint.jwks())
        .route_service(endpoint.metadata().well_known_path(), endpoint.metadata())
        .route_service(metadata.well_known_path(), metadata.clone())
        .route_service(admin_metadata.well_known_path(), admin_metadata.clone());
    if let Some(register) = endpoint.registration_endpoint() {
        for_browsers = for_browsers.route_service("/register", register);
    }
    let router = Router::new()
        .merge(for_browsers.layer(endpoint.public_cors_layer()))
        .route_service(
            "/authorize",
            endpoint
                .authorization_endpoint()
                .ok_or("the authorization endpoint is on")?,
        )
        .route_service("/introspect", endpoint.introspection())
        .route_service("/mcp", ServiceBuilder::new().layer(gate).service(tools))
        .route_service(
            "/mcp/admin",
            ServiceBuilder::new().layer(admin_gate).service(admin_tools),
        )
        .merge(pages.routes());
    Ok(router)
}
