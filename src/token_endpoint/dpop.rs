//! DPoP at the token endpoint (RFC 9449 §5): the proof of a token
//! request checked against the endpoint's public URL, claimed right before
//! the grant runs, and the nonces handed out.

use std::collections::HashSet;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{TokenError, service::Inner};
use crate::{
    dpop::{CheckedProof, Dpop, DpopError, Expected, Htu, proof_header},
    store::clients::Client,
    telemetry,
};

/// A refused proof, counted by reason.
fn refused(e: DpopError) -> TokenError {
    telemetry::dpop_refused(e.reason());
    TokenError::Dpop(e)
}

/// The header a fresh server nonce travels in.
pub(super) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The token endpoint's DPoP settings.
pub(super) struct EndpointDpop {
    pub(super) dpop: Dpop,
    /// The token endpoint's public URL: every proof's `htu`.
    pub(super) url: Htu,
    /// A nonce is required of every client...
    pub(super) nonce_required: bool,
    /// ...or of these.
    pub(super) nonce_required_for: HashSet<String>,
}

impl Inner {
    /// The request's DPoP proof, checked (all but its replay), when it has
    /// one; a client registered with `dpop_bound_access_tokens` must send
    /// one. Without DPoP configured the header is ignored (RFC 9449 §5),
    /// unless the client needs it.
    pub(super) fn dpop_proof(
        &self,
        client: &Client,
        headers: &HeaderMap,
    ) -> Result<Option<CheckedProof>, TokenError> {
        let proof = match proof_header(headers) {
            Ok(proof) => Some(proof),
            Err(DpopError::Missing) => None,
            Err(e) => return Err(refused(e)),
        };
        let (Some(cfg), Some(proof)) = (&self.dpop, proof) else {
            return if client.dpop_bound_access_tokens {
                Err(refused(DpopError::Missing))
            } else {
                Ok(None)
            };
        };
        cfg.dpop
            .checker
            .check(
                proof,
                &Expected {
                    method: "POST",
                    url: &cfg.url,
                    path: "",
                    access_token: None,
                    nonce_required: cfg.nonce_required
                        || cfg.nonce_required_for.contains(&client.client_id),
                },
                self.issuer.now(),
            )
            .map(Some)
            .map_err(refused)
    }

    /// Claims a checked proof in the replay cache (and the shared store,
    /// if any): right before the grant runs, after everything else passed.
    pub(super) async fn claim_dpop(&self, proof: Option<&CheckedProof>) -> Result<(), TokenError> {
        let (Some(cfg), Some(proof)) = (&self.dpop, proof) else {
            return Ok(());
        };
        if let Some(shared) = cfg
            .dpop
            .checker
            .claim(proof, self.issuer.now())
            .map_err(refused)?
        {
            shared.await.map_err(refused)?;
        }
        Ok(())
    }

    /// A fresh `DPoP-Nonce`, when nonces are on.
    pub(super) fn dpop_nonce(&self) -> Option<HeaderValue> {
        let cfg = self.dpop.as_ref()?;
        cfg.dpop
            .nonce(self.issuer.now())
            .and_then(|n| HeaderValue::try_from(n).ok())
    }
}
