//! Client ID Metadata Documents at `/authorize`: a `client_id` that is an
//! `https` URL names the document describing a public client. The
//! [`Resolver`] fetches and checks it (every fetch rule is its own); this
//! file turns the document into a client row — the server's settings for
//! such clients, the document's name, redirect URIs and links — recorded
//! in the store, so `/token`, `/revoke` and the janitor find it like any
//! other client and no token request ever waits on a fetch.

use std::net::IpAddr;

use crate::{
    client_metadata::{ClientMetadata, ClientMetadataError, DocumentAuth, ResolveError, Resolver},
    events::SecurityEvent,
    issuer::Issuer,
    store::{
        self,
        clients::{Client, NewClient, Registration, Saved},
    },
};

/// Longest client id the store keeps (its column's size): a metadata
/// document URL longer than this is refused.
const MAX_CLIENT_ID: usize = 128;

/// Accepting Client ID Metadata Documents at `/authorize`, for
/// [`TokenEndpointBuilder::metadata_documents`](super::TokenEndpointBuilder::metadata_documents):
/// what such clients may ask for is this server's decision, not the
/// document's.
///
/// ```
/// use tollgate::{client_metadata::Resolver, token_endpoint::MetadataDocuments};
///
/// let resolver = Resolver::builder()
///     .allow_host(|host| host.ends_with(".example"))
///     .build()
///     .unwrap();
/// let documents = MetadataDocuments::new(resolver, "tools:read")
///     .resources(["https://mcp.example/mcp"]);
/// # let _ = documents;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MetadataDocuments {
    resolver: Resolver,
    template: NewClient,
}

impl MetadataDocuments {
    /// Clients named by a document resolved by `resolver`, each allowed
    /// `scope` (space-separated). They are public: PKCE, no secret.
    pub fn new(resolver: Resolver, scope: impl Into<String>) -> Self {
        Self {
            resolver,
            template: NewClient::public("", scope),
        }
    }

    /// The RFC 8707 resources these clients may ask tokens for.
    pub fn resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.template.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// Every token request of these clients must carry a DPoP proof.
    pub fn dpop_bound_access_tokens(mut self) -> Self {
        self.template.dpop_bound_access_tokens = true;
        self
    }

    /// Whether a document's `http://localhost` redirect matches with any
    /// port, as the loopback IPs do (RFC 8252 §7.3; what CLIs send). Default
    /// on.
    pub fn localhost_any_port(mut self, allow: bool) -> Self {
        self.template.allow_localhost_redirect = allow;
        self
    }

    /// Whether the settings can make a client row.
    pub(super) fn is_valid(&self) -> bool {
        store::clients::template_is_valid(&self.template)
    }

    /// The client `client_id` names: for a document URL, its document
    /// fetched (or cached) and recorded; otherwise `stored`, the row found
    /// for it, unchanged (an operator's registration of a URL-shaped id
    /// wins).
    pub(super) async fn client(
        &self,
        issuer: &Issuer,
        client_id: &str,
        stored: Option<Client>,
        ip: Option<IpAddr>,
    ) -> Result<Option<Client>, Refused> {
        let db = issuer.db();
        let is_document = client_id.starts_with("https://")
            && stored
                .as_ref()
                .is_none_or(|c| c.registration == Registration::MetadataDocument);
        if !is_document {
            return Ok(stored);
        }
        if client_id.len() > MAX_CLIENT_ID {
            return Err(Refused::Invalid(
                "invalid_client: the client id is longer than this server accepts (128 bytes)."
                    .into(),
            ));
        }
        let document = self.resolver.resolve(client_id).await.map_err(|e| {
            tracing::info!(client_id, error = %e, "client metadata document refused");
            Refused::Invalid(describe(&e))
        })?;
        let new = self.settings(&document)?;
        let saved = store::clients::save_metadata_document(db, stored.as_ref(), new, issuer.now())
            .await
            .map_err(|e| match e {
                store::StoreError::Invalid(why) => {
                    Refused::Invalid(format!("invalid_client: {why}."))
                }
                _ => Refused::Unavailable,
            })?;
        match saved {
            // The common case, a document as it was: no second read.
            Saved::Unchanged => Ok(stored),
            Saved::Updated => store::clients::find(db, client_id)
                .await
                .map_err(|_| Refused::Unavailable),
            Saved::Inserted => {
                tracing::info!(client_id, "client recorded from its metadata document");
                issuer.events().emit(SecurityEvent::ClientRegistered {
                    client_id: client_id.to_owned(),
                    kind: "metadata_document",
                    ip,
                });
                store::clients::find(db, client_id)
                    .await
                    .map_err(|_| Refused::Unavailable)
            }
        }
    }

    /// The row the document makes: this server's settings, the document's
    /// name, redirect URIs and links.
    fn settings(&self, doc: &ClientMetadata) -> Result<NewClient, Refused> {
        if doc.auth != DocumentAuth::None {
            return Err(Refused::Invalid(
                "invalid_client: the client's metadata document asks for private_key_jwt, which \
                 this server does not support: it must say token_endpoint_auth_method \"none\"."
                    .into(),
            ));
        }
        let mut new = self.template.clone();
        new.client_id.clone_from(&doc.client_id);
        new.name = doc
            .client_name
            .as_deref()
            .map_or_else(|| doc.client_id_host.clone(), store::clients::cut_name);
        new.redirect_uris.clone_from(&doc.redirect_uris);
        // Checked https links already (`parse_document`).
        new.logo_uri.clone_from(&doc.logo_uri);
        new.client_uri.clone_from(&doc.client_uri);
        Ok(new)
    }
}

/// What the error page says: what was wrong with the document, but
/// nothing of how a fetch failed (no probing of which hosts answer).
fn describe(e: &ResolveError) -> String {
    match e {
        ResolveError::Document(ClientMetadataError::ClientIdUrl(why)) => {
            format!("invalid_client: the client id is not a metadata document URL ({why}).")
        }
        ResolveError::Document(e) => format!("invalid_client: {e}."),
        ResolveError::HostRefused => {
            "invalid_client: this server does not accept client metadata documents from the \
             client id's host."
                .into()
        }
        _ => "invalid_client: the client's metadata document could not be fetched.".into(),
    }
}

/// Why a document's client cannot authorize.
#[derive(Debug)]
pub(super) enum Refused {
    /// A page naming the reason.
    Invalid(String),
    /// The store failed.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_failures_are_described_alike() {
        let fetch = describe(&ResolveError::Fetch("connection refused".into()));
        assert_eq!(fetch, describe(&ResolveError::Address));
        assert!(!fetch.contains("refused"));
        assert!(
            describe(&ResolveError::Document(
                ClientMetadataError::ClientIdMismatch
            ))
            .contains("client_id")
        );
    }
}
