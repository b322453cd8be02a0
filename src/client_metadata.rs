//! OAuth Client ID Metadata Documents (the CIMD draft, MCP's preferred
//! registration): the `client_id` is an `https` URL, and the JSON document
//! served there describes the client. This module is the part without
//! I/O: which URLs may be client ids, and what a fetched document must say
//! — with the named tolerance rules real clients need; and (feature
//! `client-metadata`) the [`Resolver`] that fetches them with the HTTP
//! client of `remote_keys` under its public-address policy. The token
//! endpoint accepts such client ids at `/authorize` with
//! [`MetadataDocuments`](crate::token_endpoint::MetadataDocuments).
//!
//! ```
//! use tollgate::client_metadata::{Tolerance, check_client_id_url, parse_document};
//!
//! let url = "https://cli.example/oauth/client.json";
//! assert!(check_client_id_url(url).is_ok());
//! assert!(check_client_id_url("https://cli.example/").is_err()); // no path
//!
//! // A CLI's document: a port-less localhost redirect, no auth method.
//! let doc = parse_document(
//!     url,
//!     br#"{"client_id":"https://cli.example/oauth/client.json",
//!          "client_name":"A CLI","redirect_uris":["http://localhost/callback"]}"#,
//! )
//! .unwrap();
//! assert!(doc.redirect_uri_matches("http://localhost:49152/callback"));
//! assert_eq!(doc.tolerated, [Tolerance::AuthMethodAssumedNone]);
//! // The document must name itself byte for byte.
//! assert!(parse_document("https://cli.example/oauth/client.json?x", b"{}").is_err());
//! ```

use http::Uri;
use serde::Deserialize;

use crate::{identifier::is_https_link, redirect};

#[cfg(feature = "client-metadata")]
mod resolver;
#[cfg(feature = "client-metadata")]
pub use resolver::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_AGE, DEFAULT_MIN_AGE, ResolveError, Resolver,
    ResolverBuilder,
};

/// Default cap on a client metadata document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Grant types a client that registers itself (by metadata document or
/// RFC 7591) may use here.
pub(crate) const SUPPORTED_GRANTS: [&str; 2] = ["authorization_code", "refresh_token"];

/// Why a URL cannot be a client id, or a document cannot describe one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientMetadataError {
    /// The client id is not an `https` URL with a path, without fragment,
    /// userinfo or dot segments.
    #[error("the client id is not a client metadata document URL: {0}")]
    ClientIdUrl(&'static str),
    /// The document is larger than the cap.
    #[error("the client metadata document is too large")]
    TooLarge,
    /// The document is not a JSON object of the registered member types.
    #[error("the client metadata document is not valid JSON metadata")]
    Malformed,
    /// The document's `client_id` is not its URL, byte for byte.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// The document holds a client secret, or asks for a shared-secret
    /// authentication method: a public document cannot hold a secret.
    #[error("a client metadata document cannot use a shared secret")]
    SharedSecret,
    /// The document lists no grant type this server offers it
    /// (`authorization_code`).
    #[error("the document lists no usable grant type")]
    NoUsableGrant,
    /// No redirect URI, or one that could never be matched safely.
    #[error("redirect URI refused: {0}")]
    RedirectUri(&'static str),
}

/// A rule that accepted a document as real clients write them, where a
/// strict reading would have refused it; each is reported so an operator
/// sees which clients lean on which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tolerance {
    /// Grant types this server does not support were listed (a public
    /// client listing `jwt-bearer`): ignored, the client gets only what it
    /// may use.
    UnsupportedGrantTypesIgnored,
    /// No `token_endpoint_auth_method`: read from
    /// `token_endpoint_auth_methods_supported`.
    AuthMethodFromSupportedList,
    /// Neither member: `none` assumed (a public client).
    AuthMethodAssumedNone,
    /// `logo_uri` or `client_uri` on another host than the client id:
    /// allowed, and shown as such on the consent page.
    ForeignLinks,
}

/// How a client registered by metadata document authenticates at `/token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentAuth {
    /// A public client: PKCE only.
    None,
    /// `private_key_jwt` (RFC 7523) with keys from the document.
    PrivateKeyJwt,
}

/// A checked client metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// The URL, which is the client id.
    pub client_id: String,
    /// The host of the client id (what the consent page names).
    pub client_id_host: String,
    /// `client_name`, if given.
    pub client_name: Option<String>,
    /// The redirect URIs, each registrable.
    pub redirect_uris: Vec<String>,
    /// The supported grant types the document lists (`authorization_code`
    /// when it lists none).
    pub grant_types: Vec<String>,
    /// How it authenticates.
    pub auth: DocumentAuth,
    /// `logo_uri`, if an `https` URL.
    pub logo_uri: Option<String>,
    /// `client_uri`, if an `https` URL.
    pub client_uri: Option<String>,
    /// The tolerance rules this document needed.
    pub tolerated: Vec<Tolerance>,
}

impl ClientMetadata {
    /// Whether `requested` is one of the document's redirect URIs: the
    /// same string, or a loopback one with any port (RFC 8252 §7.3, for
    /// `localhost` too, which native clients send; a port-less loopback
    /// entry matches it with any port).
    pub fn redirect_uri_matches(&self, requested: &str) -> bool {
        redirect::matches(&self.redirect_uris, requested, true)
    }
}

/// Whether `url` may be a client id naming a metadata document: `https`,
/// a path other than `/`, no fragment, no userinfo, no `.`/`..` segments
/// (also percent-encoded), at most 2,048 bytes of visible ASCII.
pub fn check_client_id_url(url: &str) -> Result<Uri, ClientMetadataError> {
    let bad = ClientMetadataError::ClientIdUrl;
    if url.is_empty() || url.len() > 2048 || !url.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(bad("not a URL of visible ASCII of at most 2048 bytes"));
    }
    if url.contains('#') {
        return Err(bad("it has a fragment"));
    }
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("https") || !url.starts_with("https://") {
        return Err(bad("not https"));
    }
    let authority = uri.authority().ok_or(bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("it has userinfo"));
    }
    if authority.host().is_empty() || authority.as_str().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("no lower-case host"));
    }
    let path = uri.path();
    if path.is_empty() || path == "/" || !url[8 + authority.as_str().len()..].starts_with('/') {
        return Err(bad("no path"));
    }
    let dot = |seg: &str| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    if path.split('/').any(dot) {
        return Err(bad("a dot segment in the path"));
    }
    Ok(uri)
}

/// The members of a document that are checked; unknown members are
/// ignored, a duplicated one is an error (serde).
#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::keys::present")]
    client_secret: bool,
    #[serde(default, deserialize_with = "crate::keys::present")]
    client_secret_expires_at: bool,
    #[serde(default)]
    logo_uri: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
}

/// Checks a fetched document against the URL it was fetched from.
pub fn parse_document(url: &str, body: &[u8]) -> Result<ClientMetadata, ClientMetadataError> {
    let uri = check_client_id_url(url)?;
    if body.len() > DEFAULT_MAX_DOCUMENT_BYTES {
        return Err(ClientMetadataError::TooLarge);
    }
    let doc: Document = serde_json::from_slice(body).map_err(|_| ClientMetadataError::Malformed)?;
    if doc.client_id != url {
        return Err(ClientMetadataError::ClientIdMismatch);
    }
    if doc.client_secret || doc.client_secret_expires_at {
        return Err(ClientMetadataError::SharedSecret);
    }
    let mut tolerated = Vec::new();
    let method = match (
        &doc.token_endpoint_auth_method,
        &doc.token_endpoint_auth_methods_supported,
    ) {
        (Some(m), _) => m.clone(),
        (None, Some(list)) => {
            tolerated.push(Tolerance::AuthMethodFromSupportedList);
            // The first the document lists that a document may use.
            list.iter()
                .find(|m| matches!(m.as_str(), "none" | "private_key_jwt"))
                .or_else(|| list.first())
                .cloned()
                .unwrap_or_else(|| "none".to_owned())
        }
        (None, None) => {
            tolerated.push(Tolerance::AuthMethodAssumedNone);
            "none".to_owned()
        }
    };
    let auth = match method.as_str() {
        "none" => DocumentAuth::None,
        "private_key_jwt" => DocumentAuth::PrivateKeyJwt,
        // client_secret_basic, client_secret_post, client_secret_jwt, and
        // anything unknown: fail closed.
        _ => return Err(ClientMetadataError::SharedSecret),
    };
    if doc.redirect_uris.is_empty() {
        return Err(ClientMetadataError::RedirectUri("the document lists none"));
    }
    for r in &doc.redirect_uris {
        redirect::check_registrable(r)
            .map_err(|e| ClientMetadataError::RedirectUri(e.describe()))?;
    }
    let listed = doc
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    let grant_types: Vec<String> = listed
        .iter()
        .filter(|g| SUPPORTED_GRANTS.contains(&g.as_str()))
        .cloned()
        .collect();
    if grant_types.len() != listed.len() {
        tolerated.push(Tolerance::UnsupportedGrantTypesIgnored);
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(ClientMetadataError::NoUsableGrant);
    }
    let host = uri.host().unwrap_or_default().to_owned();
    // Links: https only (anything else is dropped, never shown); another
    // host is allowed and flagged.
    let link = |u: Option<String>| u.filter(|u| is_https_link(u));
    let (logo_uri, client_uri) = (link(doc.logo_uri), link(doc.client_uri));
    let foreign = [&logo_uri, &client_uri].into_iter().flatten().any(|u| {
        u.parse::<Uri>()
            .ok()
            .and_then(|p| p.host().map(|h| h != host))
            .unwrap_or(true)
    });
    if foreign {
        tolerated.push(Tolerance::ForeignLinks);
    }
    Ok(ClientMetadata {
        client_id: doc.client_id,
        client_id_host: host,
        client_name: doc.client_name.filter(|n| !n.trim().is_empty()),
        redirect_uris: doc.redirect_uris,
        grant_types,
        auth,
        logo_uri,
        client_uri,
        tolerated,
    })
}
