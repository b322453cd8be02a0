//! DPoP at the token endpoint (RFC 9449 §5): the proof of a token
//! request checked against the endpoint's public URL, claimed right before
//! the grant runs, and the nonces handed out.

use std::{collections::HashSet, time::SystemTime};

use http::{HeaderMap, HeaderValue};

use super::TokenError;
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

pub(super) use crate::dpop::NONCE_HEADER as DPOP_NONCE;

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

impl EndpointDpop {
    /// The request's DPoP proof, checked as of `now` (all but its replay),
    /// when it has one.
    fn check(
        &self,
        client: &Client,
        proof: &str,
        now: SystemTime,
    ) -> Result<CheckedProof, TokenError> {
        self.dpop
            .checker
            .check(
                proof,
                &Expected {
                    method: "POST",
                    url: &self.url,
                    path: "",
                    access_token: None,
                    nonce_required: self.nonce_required
                        || self.nonce_required_for.contains(&client.client_id),
                },
                now,
            )
            .map_err(refused)
    }

    /// Claims a checked proof in the replay cache (and the shared store,
    /// if any): right before the grant runs, after everything else passed.
    pub(super) async fn claim(
        &self,
        proof: &CheckedProof,
        now: SystemTime,
    ) -> Result<(), TokenError> {
        if let Some(shared) = self.dpop.checker.claim(proof, now).map_err(refused)? {
            shared.await.map_err(refused)?;
        }
        Ok(())
    }

    /// A fresh `DPoP-Nonce`, when nonces are on.
    pub(super) fn nonce(&self, now: SystemTime) -> Option<HeaderValue> {
        self.dpop
            .nonce(now)
            .and_then(|n| HeaderValue::try_from(n).ok())
    }
}

/// The DPoP proof of a token request, checked (all but its replay), when
/// it has one; a client registered with `dpop_bound_access_tokens` must
/// send one. Without DPoP configured (`dpop` is `None`) the header is
/// ignored (RFC 9449 §5), unless the client needs it.
pub(super) fn request_proof(
    dpop: Option<&EndpointDpop>,
    client: &Client,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Option<CheckedProof>, TokenError> {
    let proof = match proof_header(headers) {
        Ok(proof) => Some(proof),
        Err(DpopError::Missing) => None,
        Err(e) => return Err(refused(e)),
    };
    match (dpop, proof) {
        (Some(dpop), Some(proof)) => dpop.check(client, proof, now).map(Some),
        _ if client.dpop_bound_access_tokens => Err(refused(DpopError::Missing)),
        _ => Ok(None),
    }
}
