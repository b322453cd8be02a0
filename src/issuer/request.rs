//! What a token request asks for and gets: the request's context
//! (`RequestContext`, `Requested`), the lifetimes, the answer, and the errors.

use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    keys::KeyError,
    refresh::RefreshError,
    store::{StoreError, clients::Client},
};
use std::fmt;

/// Token lifetimes. Clients may override each (see
/// [`NewClient`](crate::store::clients::NewClient)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens. Default 15 minutes.
    pub access: Duration,
    /// Refresh tokens, idle: each must be used within this. Default 14 days.
    pub refresh_idle: Duration,
    /// Sessions, absolute: no refresh extends a session past this.
    /// Default 90 days.
    pub session: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(15 * 60),
            refresh_idle: Duration::from_secs(14 * 86_400),
            session: Duration::from_secs(90 * 86_400),
        }
    }
}

impl Lifetimes {
    pub(super) fn for_client(&self, c: &Client) -> Self {
        Self {
            access: c.access_ttl.unwrap_or(self.access),
            refresh_idle: c.refresh_idle_ttl.unwrap_or(self.refresh_idle),
            session: c.session_ttl.unwrap_or(self.session),
        }
    }
}

/// Where a request came from: what refresh tokens are bound to and what
/// sessions show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The client's IP.
    pub ip: Option<IpAddr>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// A device fingerprint, if the application computes one.
    pub device_fingerprint: Option<String>,
    /// Tenant, for multi-tenant deployments.
    pub tenant: Option<String>,
    /// How the user signed in, for a new session: stamped into it and into
    /// every access token minted from it, refreshes included (RFC 9068
    /// §2.2.1), where the gate's step-up requirements read it.
    pub authentication: Authentication,
}

/// How a user authenticated: what RFC 9068 §2.2.1 access tokens carry as
/// `auth_time`, `acr` and `amr`, and RFC 9470 step-up checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authentication {
    /// When the user authenticated (not when the token was minted).
    pub auth_time: Option<SystemTime>,
    /// The authentication context class reached.
    pub acr: Option<String>,
    /// The authentication methods (RFC 8176 values such as `pwd`, `otp`,
    /// `hwk`).
    pub amr: Vec<String>,
}

/// What a token request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested<'a> {
    /// The scope; `None`: everything the client (or session) was granted.
    pub scope: Option<&'a str>,
    /// RFC 8707 resources (the tokens' `aud`); empty: the issuer's
    /// configured audience on a new session, the session's own on a
    /// refresh.
    pub resources: &'a [&'a str],
    /// The RFC 7638 thumbprint of the DPoP key the request proved: the
    /// access token is bound to it (`cnf.jkt`, `token_type` `DPoP`), and
    /// so is a public client's new session, whose refreshes must then
    /// prove it too.
    pub dpop_jkt: Option<&'a str>,
}

/// A successful token response (RFC 6749 §5.1). Its `Debug` output shows
/// no token.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token, when the grant issues one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope of the access token.
    pub scope: String,
    /// When the refresh token stops being usable if it is not used (its
    /// idle lifetime, capped by the session's end); not part of the JSON.
    /// A browser client's cookie gets it as `Expires`: a spent token
    /// answered with the session's current one gets that token's own
    /// expiry, so two tabs are handed the identical `Set-Cookie`.
    #[serde(skip)]
    pub refresh_token_expires_at: Option<SystemTime>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print tokens: responses end up in logs.
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why tokens could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// No such client.
    #[error("unknown client")]
    UnknownClient,
    /// The scope is not allowed for the client (or the grant).
    #[error("scope not allowed")]
    InvalidScope,
    /// A requested resource is not one the client may ask for (RFC 8707).
    #[error("resource not allowed")]
    InvalidTarget,
    /// The user id is empty, or starts with
    /// [`crate::claims::CLIENT_SUBJECT_PREFIX`],
    /// which names clients (RFC 9068 §5).
    #[error("user id is empty or reserved for clients")]
    ReservedSubject,
    /// The refresh token is unknown.
    #[error("unknown refresh token")]
    UnknownToken,
    /// The refresh was refused by the rotation rules.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The authorization code was refused.
    #[error(transparent)]
    Code(#[from] super::CodeError),
    /// The store failed; nothing was half-written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No signing key, or signing failed.
    #[error("cannot sign access tokens")]
    Signing(#[source] Option<KeyError>),
}

/// A configuration the issuer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerConfigError {
    /// No database.
    #[error("no database configured")]
    MissingDb,
    /// No keys, or no signing key among them.
    #[error("no signing key configured")]
    MissingSigningKey,
    /// No issuer.
    #[error("no issuer configured")]
    MissingIssuer,
    /// No audience.
    #[error("no audience configured")]
    MissingAudience,
    /// No refresh secret (every instance must share one, so it is never
    /// made up).
    #[error("no refresh secret configured")]
    MissingRefreshSecret,
    /// A lifetime is zero, access tokens outlive sessions, or they outlive
    /// the deny list's `max_token_lifetime`.
    #[error("invalid lifetimes")]
    InvalidLifetimes,
}
