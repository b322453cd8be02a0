//! The authorization code grant's redemption (RFC 6749 §4.1.3, RFC 7636
//! §4.6): the checks against the stored request, then the session started
//! in the transaction that spends the code. A second redemption revokes
//! the session the first one started (RFC 6749 §4.1.2, RFC 9700 §4.2.4)
//! through the one revocation path, deny list included.

use std::time::SystemTime;

use super::{Authentication, IssueError, Issuer, RequestContext, Requested, TokenResponse};
use crate::{
    audience,
    revocation::RevokedReason,
    secret::{hash_token, pkce_s256_matches},
    store::{self, authorizations::Redeemed, clients::Client, sessions::NewSession},
};

/// How a session starts: a login, or a code's redemption (the hash of the
/// code it spends).
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    Login,
    Code(&'a [u8; 32]),
}

/// Why an authorization code was refused: each is `invalid_grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// No such code, or issued to another client (which may not learn
    /// that it exists).
    #[error("unknown authorization code")]
    Unknown,
    /// Past its lifetime.
    #[error("authorization code expired")]
    Expired,
    /// Already redeemed: the session it started is revoked.
    #[error("authorization code already used")]
    Used,
    /// `redirect_uri` differs from the authorization request's.
    #[error("redirect_uri does not match the authorization request")]
    RedirectUri,
    /// The `code_verifier` does not match the `code_challenge`.
    #[error("code_verifier does not match")]
    Verifier,
    /// The code is bound to a DPoP key (`dpop_jkt`) the request did not
    /// prove.
    #[error("authorization code is bound to another DPoP key")]
    DpopKey,
}

/// A code redemption as the token request presents it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeRedemption<'a> {
    pub(crate) code: &'a str,
    pub(crate) redirect_uri: Option<&'a str>,
    pub(crate) code_verifier: &'a str,
}

impl Issuer {
    /// Exchanges an authorization code for a session (RFC 6749 §4.1.3).
    pub(crate) async fn redeem_code(
        &self,
        client: &Client,
        presented: &CodeRedemption<'_>,
        requested: &Requested<'_>,
        meta: &RequestContext,
    ) -> Result<TokenResponse, IssueError> {
        let code_hash = hash_token(presented.code);
        let stored = store::authorizations::by_code(&self.inner.db, &code_hash)
            .await?
            .filter(|a| a.client_id == client.client_id)
            .ok_or(IssueError::Code(CodeError::Unknown))?;
        if stored.redeemed {
            self.revoke_redeemed(stored.family_id.as_deref()).await?;
            return Err(IssueError::Code(CodeError::Used));
        }
        let now = self.inner.clock.now();
        if stored.code_expires_at.is_none_or(|end| now >= end) {
            return Err(IssueError::Code(CodeError::Expired));
        }
        // RFC 6749 §4.1.3: required and identical when the authorization
        // request carried it; when it did not, a different one is still
        // not the same request.
        let redirect_ok = match presented.redirect_uri {
            Some(uri) => uri == stored.redirect_uri,
            None => !stored.redirect_uri_sent,
        };
        if !redirect_ok {
            return Err(IssueError::Code(CodeError::RedirectUri));
        }
        if !pkce_s256_matches(presented.code_verifier, &stored.code_challenge) {
            return Err(IssueError::Code(CodeError::Verifier));
        }
        // RFC 9449 §10: a code bound by `dpop_jkt` needs a proof by that key.
        if let Some(bound) = &stored.dpop_jkt
            && requested.dpop_jkt != Some(bound.as_str())
        {
            return Err(IssueError::Code(CodeError::DpopKey));
        }
        // RFC 8707 §2.2: the token request may narrow the resources the
        // user authorized, never widen them.
        let narrowed = if requested.resources.is_empty() {
            stored.resources.clone()
        } else {
            audience::narrow(&stored.resources, requested.resources)
                .ok_or(IssueError::InvalidTarget)?
        };
        let resources: Vec<&str> = narrowed.iter().map(String::as_str).collect();
        let subject = stored
            .subject
            .as_deref()
            .ok_or(IssueError::Code(CodeError::Unknown))?;
        let granted = Requested {
            scope: Some(stored.granted_scope.as_deref().unwrap_or(&stored.scope)),
            resources: &resources,
            dpop_jkt: requested.dpop_jkt,
        };
        // The sign-in the application approved with, for every token of
        // the session (RFC 9068 §2.2.1).
        let meta = RequestContext {
            authentication: Authentication {
                auth_time: stored.auth_time,
                acr: stored.acr.clone(),
                amr: stored.amr.clone(),
            },
            ..meta.clone()
        };
        self.begin_session(client, subject, &granted, &meta, Origin::Code(&code_hash))
            .await
    }

    /// Spends the code and records the session in one transaction; the
    /// session's id.
    pub(super) async fn spend_code(
        &self,
        code_hash: &[u8; 32],
        now: SystemTime,
        session: &NewSession<'_>,
    ) -> Result<String, IssueError> {
        match store::authorizations::redeem(&self.inner.db, code_hash, now, session).await? {
            Redeemed::Started(family_id) => Ok(family_id),
            Redeemed::Again(family_id) => {
                self.revoke_redeemed(family_id.as_deref()).await?;
                Err(IssueError::Code(CodeError::Used))
            }
            Redeemed::Gone => Err(IssueError::Code(CodeError::Expired)),
        }
    }

    /// A code came back after its redemption: whoever holds it is not the
    /// client that redeemed it, or is replaying it; the session it started
    /// ends, with every access token of it.
    async fn revoke_redeemed(&self, family_id: Option<&str>) -> Result<(), IssueError> {
        if let Some(sid) = family_id {
            self.inner
                .revoker
                .session(sid, RevokedReason::ReuseDetected)
                .await?;
        }
        Ok(())
    }
}
