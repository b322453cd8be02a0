//! Minting: the one place an access token is signed.

use std::time::{Duration, SystemTime};

use super::{Authentication, IssueError, Issuer};
use crate::{
    claims::{AccessClaims, Confirmation},
    secret::random_string,
    time::unix_secs,
};

/// What one access token says.
#[derive(Clone, Copy)]
pub(super) struct Mint<'a> {
    pub(super) sub: &'a str,
    pub(super) client_id: &'a str,
    pub(super) scope: &'a str,
    pub(super) resources: &'a [String],
    pub(super) sid: Option<&'a str>,
    pub(super) tenant: Option<&'a str>,
    pub(super) now: SystemTime,
    pub(super) ttl: Duration,
    pub(super) cap: Option<SystemTime>,
    pub(super) dpop_jkt: Option<&'a str>,
    /// How the session's user signed in.
    pub(super) authentication: &'a Authentication,
}

impl Issuer {
    /// Signs an access token; it never outlives `cap` (its session).
    /// Returns the token, its lifetime in seconds, and its `token_type`.
    pub(super) fn mint(&self, m: &Mint<'_>) -> Result<(String, u64, &'static str), IssueError> {
        let Mint {
            sub,
            client_id,
            scope,
            resources,
            sid,
            tenant,
            now,
            ttl,
            cap,
            dpop_jkt,
            authentication,
        } = *m;
        let keys = self.inner.keys.load();
        let key = keys.signing_key().ok_or(IssueError::Signing(None))?;
        let iat = unix_secs(now);
        let exp = unix_secs(cap.map_or(now + ttl, |cap| cap.min(now + ttl))).max(iat + 1);
        let claims = AccessClaims {
            iss: self.inner.issuer.clone(),
            sub: sub.to_owned(),
            aud: if resources.is_empty() {
                self.inner.audience.clone()
            } else {
                resources.to_vec()
            },
            exp,
            iat: Some(iat),
            nbf: None,
            jti: Some(random_string(16)),
            client_id: Some(client_id.to_owned()),
            scope: (!scope.is_empty()).then(|| scope.to_owned()),
            sid: sid.map(str::to_owned),
            tenant: tenant.map(str::to_owned),
            cnf: dpop_jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
            auth_time: authentication.auth_time.map(unix_secs),
            acr: authentication.acr.clone(),
            amr: (!authentication.amr.is_empty()).then(|| authentication.amr.clone()),
        };
        let token = key
            .sign(&claims)
            .map_err(|e| IssueError::Signing(Some(e)))?;
        // RFC 9449 §5: a bound token is of type DPoP.
        let token_type = if dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
        Ok((token, exp - iat, token_type))
    }
}
