//! What a revocation is, as data: the kind, the reason and the row that
//! every instance reads back. The store writes and reads these; the deny
//! list applies them. No I/O and no cache here.

use std::time::{Duration, SystemTime};

/// Default extra life of a revocation beyond the expiry it was given, in
/// the deny list and in the store: covers the gate's leeway (tokens are
/// accepted that long past `exp`) and clock skew between instances.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// Why a family (or token) was revoked; stored in `revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevokedReason {
    /// The user logged out.
    Logout,
    /// A consumed refresh token was presented again (RFC 9700 §4.14.2).
    ReuseDetected,
    /// A binding mismatch or another security signal.
    Security,
    /// An administrator revoked it.
    Admin,
    /// Revoked because it expired (cleanup).
    Expired,
}

impl RevokedReason {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::ReuseDetected => "reuse_detected",
            Self::Security => "security",
            Self::Admin => "admin",
            Self::Expired => "expired",
        }
    }

    /// The reason a stored value names, if any.
    pub fn parse(stored: &str) -> Option<Self> {
        Some(match stored {
            "logout" => Self::Logout,
            "reuse_detected" => Self::ReuseDetected,
            "security" => Self::Security,
            "admin" => Self::Admin,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// What a revocation denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Token,
    /// Every access token of a session, by `sid`.
    Session,
    /// Every token of a subject (`sub`) issued up to the revocation.
    Subject,
}

impl RevocationKind {
    /// The value stored in `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
            Self::Subject => "subject",
        }
    }

    /// The kind a stored value names, if any.
    pub fn parse(stored: &str) -> Option<Self> {
        Some(match stored {
            "token" => Self::Token,
            "session" => Self::Session,
            "subject" => Self::Subject,
            _ => return None,
        })
    }
}

/// A subject as the deny list keys it: the `sub` within its tenant, so
/// that one tenant's `alice` logging out everywhere leaves another
/// tenant's `alice` alone. A bare `&str` is a subject of no tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subject<'a> {
    /// The tenant (the `tenant` claim); `None` for single-tenant use.
    pub tenant: Option<&'a str>,
    /// The `sub`.
    pub id: &'a str,
}

impl<'a> Subject<'a> {
    /// `id` within `tenant`.
    pub fn new(tenant: Option<&'a str>, id: &'a str) -> Self {
        Self { tenant, id }
    }
}

impl<'a> From<&'a str> for Subject<'a> {
    fn from(id: &'a str) -> Self {
        Self { tenant: None, id }
    }
}

impl<'a> From<&'a String> for Subject<'a> {
    fn from(id: &'a String) -> Self {
        Self::from(id.as_str())
    }
}

/// A stored revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Position in the sequence.
    pub seq: i64,
    /// What it denies.
    pub kind: RevocationKind,
    /// The `jti`, `sid` or `sub`.
    pub target: String,
    /// For a subject, its tenant.
    pub tenant: Option<String>,
    /// When it was revoked; for a subject, its not-before watermark.
    pub revoked_at: SystemTime,
    /// When the last token it can match expires.
    pub expires_at: SystemTime,
    /// Why.
    pub reason: RevokedReason,
}
