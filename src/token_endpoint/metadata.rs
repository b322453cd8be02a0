//! `/.well-known/oauth-authorization-server`: RFC 8414 authorization-server
//! metadata, built once from the endpoint's configuration.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde::Serialize;
use tower_service::Service;

use crate::{
    document::Document,
    identifier::{HttpsIdentifier, IdentifierError},
};

/// Default `max-age` of the metadata: one hour.
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

/// The well-known suffix of RFC 8414 §3.
const WELL_KNOWN: &str = "oauth-authorization-server";

/// Where the application mounts the endpoints, relative to the public base
/// URL: what the metadata advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPaths {
    /// `/token`.
    pub token: String,
    /// `/revoke`.
    pub revocation: String,
    /// `/introspect`.
    pub introspection: String,
    /// `/.well-known/jwks.json`.
    pub jwks: String,
    /// `/authorize`, when the authorization endpoint is on.
    pub authorization: String,
    /// `/register`, when dynamic client registration is on.
    pub registration: String,
}

impl Default for EndpointPaths {
    fn default() -> Self {
        Self {
            token: "/token".into(),
            revocation: "/revoke".into(),
            introspection: "/introspect".into(),
            jwks: "/.well-known/jwks.json".into(),
            authorization: "/authorize".into(),
            registration: "/register".into(),
        }
    }
}

impl EndpointPaths {
    /// Every path starts with `/` and has no query, fragment or space.
    pub(crate) fn are_valid(&self) -> bool {
        [
            &self.token,
            &self.revocation,
            &self.introspection,
            &self.jwks,
            &self.authorization,
            &self.registration,
        ]
        .iter()
        .all(|p| {
            p.starts_with('/')
                && p.bytes()
                    .all(|b| matches!(b, 0x21..=0x7E) && !matches!(b, b'?' | b'#'))
        })
    }
}

/// The RFC 8414 §2 document. Field names are the registered ones.
#[derive(Debug, Serialize)]
struct AuthorizationServerMetadata<'a> {
    issuer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    /// RFC 7591 §3, when dynamic registration is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [String],
    /// The authentication context classes the app's login can reach
    /// (OpenID Connect Discovery's member, which RFC 9470 §6 points
    /// clients to for step-up).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    acr_values_supported: &'a [String],
    /// REQUIRED by RFC 8414 §2, and the values are `response_type`s of the
    /// authorization endpoint: `["code"]` with one, else an empty array
    /// (not omitted, which RFC 8414 does not allow, and not `["code"]`,
    /// which would send clients to an endpoint that does not exist).
    response_types_supported: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_modes_supported: Option<[&'a str; 1]>,
    /// RFC 7636 §6.2 / RFC 8414: only S256; MCP clients refuse an
    /// authorization server without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    code_challenge_methods_supported: Option<[&'a str; 1]>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_response_iss_parameter_supported: Option<bool>,
    grant_types_supported: Vec<&'a str>,
    token_endpoint_auth_methods_supported: [&'a str; 3],
    revocation_endpoint_auth_methods_supported: [&'a str; 3],
    /// Only confidential clients may introspect (RFC 7662 §2.1).
    introspection_endpoint_auth_methods_supported: [&'a str; 2],
    /// RFC 9449 §5.1: present when the endpoint accepts DPoP proofs.
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<Vec<&'static str>>,
    /// The CIMD draft: a `client_id` may be a metadata document's URL
    /// (MCP clients look for it, and for `none` among the token
    /// endpoint's methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id_metadata_document_supported: Option<bool>,
}

/// What the metadata is built from.
pub(crate) struct MetadataConfig<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) public_base_url: Option<&'a str>,
    pub(crate) paths: &'a EndpointPaths,
    pub(crate) scopes_supported: &'a [String],
    pub(crate) acr_values_supported: &'a [String],
    pub(crate) password_grant: bool,
    /// The DPoP proof algorithms, when DPoP is on.
    pub(crate) dpop_algs: Option<Vec<&'static str>>,
    /// The authorization endpoint is on.
    pub(crate) authorization_code: bool,
    /// Client ID Metadata Documents are accepted.
    pub(crate) metadata_documents: bool,
    /// Dynamic client registration is on.
    pub(crate) registration: bool,
}

/// Serves RFC 8414 authorization-server metadata, from
/// [`TokenEndpoint::metadata`](super::TokenEndpoint::metadata). Mount it at
/// [`well_known_path`](Self::well_known_path).
///
/// Every URL in it comes from configuration — the issuer, and the public
/// base URL the endpoints are served under — never from the request: a
/// spoofed `Host` header cannot change it. GET and HEAD, cacheable
/// (`Cache-Control: public, max-age=…`, `ETag`).
#[derive(Debug, Clone)]
pub struct MetadataEndpoint {
    document: Arc<Document>,
    well_known_path: Arc<str>,
    token_endpoint: Arc<str>,
}

impl MetadataEndpoint {
    pub(crate) fn build(
        config: &MetadataConfig<'_>,
        max_age: Duration,
    ) -> Result<Self, MetadataConfigError> {
        let issuer = HttpsIdentifier::parse(config.issuer).map_err(MetadataConfigError::Issuer)?;
        let base = match config.public_base_url {
            Some(url) => HttpsIdentifier::parse(url).map_err(MetadataConfigError::PublicBaseUrl)?,
            None => issuer.clone(),
        };
        if !config.paths.are_valid() {
            return Err(MetadataConfigError::Paths);
        }
        let code = config.authorization_code;
        let mut grant_types_supported = vec!["refresh_token", "client_credentials"];
        if code {
            grant_types_supported.insert(0, "authorization_code");
        }
        if config.password_grant {
            grant_types_supported.push("password");
        }
        let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
        let token_endpoint = base.join(&config.paths.token);
        let metadata = AuthorizationServerMetadata {
            issuer: issuer.as_str(),
            authorization_endpoint: code.then(|| base.join(&config.paths.authorization)),
            token_endpoint: token_endpoint.clone(),
            jwks_uri: base.join(&config.paths.jwks),
            revocation_endpoint: base.join(&config.paths.revocation),
            introspection_endpoint: base.join(&config.paths.introspection),
            registration_endpoint: config
                .registration
                .then(|| base.join(&config.paths.registration)),
            scopes_supported: config.scopes_supported,
            acr_values_supported: config.acr_values_supported,
            response_types_supported: if code { &["code"] } else { &[] },
            response_modes_supported: code.then_some(["query"]),
            code_challenge_methods_supported: code.then_some(["S256"]),
            authorization_response_iss_parameter_supported: code.then_some(true),
            grant_types_supported,
            token_endpoint_auth_methods_supported: auth_methods,
            revocation_endpoint_auth_methods_supported: auth_methods,
            introspection_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
            ],
            dpop_signing_alg_values_supported: config.dpop_algs.clone(),
            client_id_metadata_document_supported: config.metadata_documents.then_some(true),
        };
        Ok(Self {
            document: Arc::new(Document::json(&metadata, max_age)),
            well_known_path: issuer.well_known_path(WELL_KNOWN).into(),
            token_endpoint: token_endpoint.into(),
        })
    }

    /// The token endpoint's public URL, as the metadata states it.
    pub(crate) fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The path to mount this at: `/.well-known/oauth-authorization-server`,
    /// followed by the issuer's path if it has one (RFC 8414 §3.1).
    pub fn well_known_path(&self) -> &str {
        &self.well_known_path
    }
}

impl<B> Service<Request<B>> for MetadataEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self
            .document
            .answer(req.method(), req.headers())
            .map(Full::from)))
    }
}

/// Why the metadata cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataConfigError {
    /// The issuer is not an `https` URL without query or fragment in
    /// canonical form (RFC 8414 §2; `http` is accepted on loopback hosts).
    #[error("the issuer is not an identifier URL: {0}")]
    Issuer(#[source] IdentifierError),
    /// The public base URL is not one either.
    #[error("the public base URL is not an identifier URL: {0}")]
    PublicBaseUrl(#[source] IdentifierError),
    /// An endpoint path does not start with `/` or has a query, fragment or
    /// space.
    #[error("endpoint paths must start with `/` and have no query or fragment")]
    Paths,
}
