//! Clients that register themselves, from the environment: Client ID
//! Metadata Documents (`TOLLGATE_CIMD`, needs `--features
//! client-metadata`) and dynamic registration (`TOLLGATE_DCR`, RFC 7591),
//! what an MCP authorization server needs. The quickstart has both off;
//! `examples/mcp_server.rs` (which uses this file as it is) has both on.
//! Self-contained: it needs only `crate::BoxError`.
//!
//! | variable | values |
//! |---|---|
//! | `TOLLGATE_CIMD` | `on` / `off` |
//! | `TOLLGATE_CIMD_TRUSTED_HOSTS` | comma-separated hosts (and their subdomains) that may serve documents; empty: any public host |
//! | `TOLLGATE_CIMD_CA_FILE` | PEM roots trusted besides the webpki roots (a test CA) |
//! | `TOLLGATE_CIMD_ALLOW_LOOPBACK_FOR_TESTS` | `on` lets documents come from loopback and private addresses: tests only, logged loudly |
//! | `TOLLGATE_DCR` | `open`, `token` (with `TOLLGATE_DCR_TOKEN`, the initial access token) or `off` |
//! | `TOLLGATE_REGISTERED_SCOPE` | what such clients may be granted |

use tollgate::token_endpoint::{DynamicRegistration, TokenEndpointBuilder};

use crate::BoxError;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `on` or `off`.
fn switch(name: &str, default: &str) -> Result<bool, BoxError> {
    match var(name, default).as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{name}: on or off, not `{other}`").into()),
    }
}

/// `endpoint` with the registrations the environment turns on (`cimd`,
/// `dcr`: their defaults), each client allowed `scope` at `resources`.
pub(crate) fn configure(
    mut endpoint: TokenEndpointBuilder,
    (cimd, dcr): (&str, &str),
    scope: &str,
    resources: &[String],
) -> Result<TokenEndpointBuilder, BoxError> {
    let scope = var("TOLLGATE_REGISTERED_SCOPE", scope);
    if switch("TOLLGATE_CIMD", cimd)? {
        endpoint = documents(endpoint, &scope, resources)?;
    }
    let registration = match var("TOLLGATE_DCR", dcr).as_str() {
        "open" => Some(DynamicRegistration::open(scope)),
        "token" => Some(DynamicRegistration::with_initial_access_token(
            &std::env::var("TOLLGATE_DCR_TOKEN")
                .map_err(|_| "TOLLGATE_DCR=token needs TOLLGATE_DCR_TOKEN")?,
            scope,
        )),
        "off" => None,
        other => return Err(format!("TOLLGATE_DCR: open, token or off, not `{other}`").into()),
    };
    if let Some(registration) = registration {
        endpoint = endpoint.dynamic_registration(registration.resources(resources.iter().cloned()));
    }
    Ok(endpoint)
}

#[cfg(feature = "client-metadata")]
fn documents(
    endpoint: TokenEndpointBuilder,
    scope: &str,
    resources: &[String],
) -> Result<TokenEndpointBuilder, BoxError> {
    use tollgate::{client_metadata::Resolver, token_endpoint::MetadataDocuments};
    let mut builder = Resolver::builder();
    let trusted: Vec<String> = var("TOLLGATE_CIMD_TRUSTED_HOSTS", "")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if !trusted.is_empty() {
        builder = builder.allow_host(move |host| {
            trusted.iter().any(|t| {
                host == t
                    || host
                        .strip_suffix(t.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            })
        });
    }
    if let Ok(path) = std::env::var("TOLLGATE_CIMD_CA_FILE") {
        builder = builder.root_certificates(&std::fs::read(&path)?);
    }
    if switch("TOLLGATE_CIMD_ALLOW_LOOPBACK_FOR_TESTS", "off")? {
        eprintln!(
            "WARNING: TOLLGATE_CIMD_ALLOW_LOOPBACK_FOR_TESTS=on: client metadata documents may be \
             fetched from loopback and private addresses. Never run this way in production."
        );
        builder = builder.allow_special_use_addresses_for_tests();
    }
    Ok(endpoint.metadata_documents(
        MetadataDocuments::new(builder.build()?, scope).resources(resources.iter().cloned()),
    ))
}

#[cfg(not(feature = "client-metadata"))]
fn documents(
    _: TokenEndpointBuilder,
    _: &str,
    _: &[String],
) -> Result<TokenEndpointBuilder, BoxError> {
    Err("TOLLGATE_CIMD=on needs the client-metadata feature: \
         cargo run --example quickstart --features client-metadata"
        .into())
}
