//! The protected resource the gate guards, as RFC 9728 describes it: its
//! identifier, the authorization servers it trusts, and the metadata
//! document every challenge points to.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use serde::Serialize;
use tower_service::Service;

use crate::{document::Document, identifier::HttpsIdentifier};

/// Default `max-age` of the protected-resource metadata: one hour.
pub const DEFAULT_RESOURCE_METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

/// The well-known suffix of RFC 9728 §3.
const WELL_KNOWN: &str = "oauth-protected-resource";

/// The RFC 9728 §2 document. Field names are the registered ones.
///
/// `resource_signing_alg_values_supported` is left out on purpose: RFC 9728
/// defines it as the algorithms the resource signs its *responses* with,
/// and the gate signs none (the algorithms it verifies tokens with are the
/// authorization server's business, published in its JWKS).
#[derive(Debug, Serialize)]
struct ProtectedResourceMetadata<'a> {
    resource: &'a str,
    authorization_servers: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [String],
    /// Only the `Authorization` header (RFC 6750 §2.1): the gate never
    /// reads tokens from a form body or the query string, and a cookie is
    /// not a registered bearer method.
    bearer_methods_supported: [&'a str; 1],
    /// RFC 9728 §2: the DPoP proof algorithms, when the gate accepts DPoP.
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<Vec<&'static str>>,
}

/// The resource's identity and where its metadata lives, built once.
#[derive(Debug)]
pub(crate) struct ProtectedResource {
    pub(crate) metadata_url: String,
    pub(crate) endpoint: ResourceMetadataEndpoint,
}

impl ProtectedResource {
    pub(crate) fn new(
        resource: &HttpsIdentifier,
        authorization_servers: &[String],
        scopes_supported: &[String],
        dpop_algs: Option<Vec<&'static str>>,
        max_age: Duration,
    ) -> Self {
        let document = Document::json(
            &ProtectedResourceMetadata {
                resource: resource.as_str(),
                authorization_servers,
                scopes_supported,
                bearer_methods_supported: ["header"],
                dpop_signing_alg_values_supported: dpop_algs,
            },
            max_age,
        );
        Self {
            metadata_url: resource.well_known_url(WELL_KNOWN),
            endpoint: ResourceMetadataEndpoint {
                document: Arc::new(document),
                well_known_path: resource.well_known_path(WELL_KNOWN).into(),
            },
        }
    }
}

/// Serves the RFC 9728 protected-resource metadata of a gate, from
/// [`AccessTokenLayer::resource_metadata`](super::AccessTokenLayer::resource_metadata).
/// Mount it at [`well_known_path`](Self::well_known_path), outside the gate
/// (clients read it before they have a token).
///
/// Built from configuration only, never from the request's `Host`. GET and
/// HEAD, cacheable (`Cache-Control: public, max-age=…`, `ETag`). The body
/// is a `String`, which axum, hyper and tonic all take.
#[derive(Debug, Clone)]
pub struct ResourceMetadataEndpoint {
    document: Arc<Document>,
    well_known_path: Arc<str>,
}

impl ResourceMetadataEndpoint {
    /// `/.well-known/oauth-protected-resource`, followed by the resource's
    /// path if it has one (RFC 9728 §3.1).
    pub fn well_known_path(&self) -> &str {
        &self.well_known_path
    }
}

impl<B> Service<Request<B>> for ResourceMetadataEndpoint {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.document.answer(req.method(), req.headers())))
    }
}
