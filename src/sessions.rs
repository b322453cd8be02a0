//! A user's sessions (devices): list them, log out of one, of all, or of
//! all but the current one.
//!
//! A session is a refresh-token family; its id is the `sid` claim of every
//! access token minted in it. Ending a session revokes the family in the
//! store (its refresh tokens stop working), records the `sid` on the
//! persisted deny list (every instance learns of it by polling), and puts
//! it on this process's deny list at once (see
//! [`IssuerBuilder::revocations`](crate::issuer::IssuerBuilder::revocations)).
//! Nothing is deleted: revoked rows keep `revoked_at` and `revoked_reason`.
//!
//! ```
//! use tollgate::{
//!     RevocationCache,
//!     issuer::{RequestContext, Issuer},
//!     Algorithm, SigningKey,
//!     secret::RefreshSecret,
//!     store::{self, clients::NewClient},
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! store::clients::register(&db, NewClient::public("spa", "read"), std::time::SystemTime::now()).await.unwrap();
//! let deny = RevocationCache::default();
//! let key = SigningKey::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
//! let issuer = Issuer::builder()
//!     .db(db)
//!     .keys(key)
//!     .issuer("https://auth.example")
//!     .audience("https://api.example")
//!     .refresh_secret(RefreshSecret::new(&[9; 32]).unwrap())
//!     .revocations(deny.clone())
//!     .build()
//!     .unwrap();
//!
//! let phone = RequestContext { user_agent: Some("phone".into()), ..RequestContext::default() };
//! let laptop = RequestContext { user_agent: Some("laptop".into()), ..RequestContext::default() };
//! issuer.issue("alice", "spa", None, &phone).await.unwrap();
//! issuer.issue("alice", "spa", None, &laptop).await.unwrap();
//!
//! let sessions = issuer.sessions();
//! let listed = sessions.list("alice", None).await.unwrap();
//! assert_eq!(listed.len(), 2);
//!
//! // Log out the phone from the laptop.
//! let phone_sid = &listed.iter().find(|s| s.last_user_agent.as_deref() == Some("phone")).unwrap().sid;
//! assert!(sessions.revoke("alice", phone_sid).await.unwrap());
//! assert!(deny.is_session_revoked(phone_sid));
//! assert_eq!(sessions.list("alice", None).await.unwrap().len(), 1);
//! # });
//! ```

use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::{
    claims::AccessClaims,
    issuer::Issuer,
    revocation::RevokedReason,
    store::{
        StoreError,
        sessions::{self, UserRevocation},
    },
    time::{from_unix_secs, unix_secs},
};

/// A session as shown to its user. Serializes with times as Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session id (`sid`).
    pub sid: String,
    /// The client (application) it was started on.
    pub client_id: String,
    /// Login time.
    #[serde(serialize_with = "as_unix_secs")]
    pub created_at: SystemTime,
    /// Last refresh, or the login.
    #[serde(serialize_with = "as_unix_secs")]
    pub last_used_at: SystemTime,
    /// When the session ends at the latest.
    #[serde(serialize_with = "as_unix_secs")]
    pub expires_at: SystemTime,
    /// Client IP of the last use.
    pub last_ip: Option<String>,
    /// User-Agent of the last use.
    pub last_user_agent: Option<String>,
    /// Whether this is the session the request came from.
    pub current: bool,
}

fn as_unix_secs<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(unix_secs(*t))
}

/// Session management over an [`Issuer`]'s store and deny list.
#[derive(Debug, Clone)]
pub struct Sessions {
    issuer: Issuer,
    tenant: Option<String>,
}

impl Issuer {
    /// Session management with this issuer's store, clock and deny list,
    /// for users of no tenant; [`Sessions::in_tenant`] for one tenant's.
    pub fn sessions(&self) -> Sessions {
        Sessions {
            issuer: self.clone(),
            tenant: None,
        }
    }
}

impl Sessions {
    /// The same, for the users of `tenant` (as [`RequestContext::tenant`]
    /// started their sessions, and as the `tenant` claim of their tokens
    /// says): a user id names one user within one tenant, so another
    /// tenant's user of the same id is never listed, ended or logged out.
    ///
    /// [`RequestContext::tenant`]: crate::issuer::RequestContext::tenant
    pub fn in_tenant(self, tenant: Option<&str>) -> Self {
        Self {
            tenant: tenant.map(str::to_owned),
            ..self
        }
    }

    /// The user's live sessions, most recently used first; `current` (the
    /// `sid` of the caller's token) is marked.
    pub async fn list(
        &self,
        user_id: &str,
        current: Option<&str>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sessions::live_sessions(
            self.issuer.db(),
            self.tenant.as_deref(),
            user_id,
            self.issuer.now(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                current: current == Some(r.sid.as_str()),
                sid: r.sid,
                client_id: r.client_id,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                expires_at: r.expires_at,
                last_ip: r.last_ip,
                last_user_agent: r.last_user_agent,
            })
            .collect())
    }

    /// Logs out the session of this (verified) access token: its family is
    /// revoked and its `sid` denied, so every access token of the session
    /// dies at once. A token without a session (client_credentials) has
    /// only itself revoked. Returns whether anything was revoked now.
    pub async fn logout(&self, claims: &AccessClaims) -> Result<bool, StoreError> {
        match &claims.sid {
            Some(sid) => self.end(sid, RevokedReason::Logout).await,
            None => {
                self.revoke_access_token(claims, RevokedReason::Logout)
                    .await
            }
        }
    }

    /// Denies one (verified) access token until it expires; its session,
    /// if any, goes on. Returns whether it was revoked now. A token without
    /// `jti` (another issuer's, under a relaxed profile) cannot be denied
    /// alone: nothing is revoked and the answer is `false` — end its
    /// session or its subject instead.
    pub async fn revoke_access_token(
        &self,
        claims: &AccessClaims,
        reason: RevokedReason,
    ) -> Result<bool, StoreError> {
        match &claims.jti {
            Some(jti) => {
                self.revoke_token(jti, from_unix_secs(claims.exp), reason)
                    .await
            }
            None => Ok(false),
        }
    }

    /// Denies the access token `jti` until `expires_at`, for an admin tool
    /// that holds only its id (and expiry): committed to the store, then
    /// applied to this process's deny list at once, as every revocation
    /// is. Returns whether it was revoked now.
    pub async fn revoke_token(
        &self,
        jti: &str,
        expires_at: SystemTime,
        reason: RevokedReason,
    ) -> Result<bool, StoreError> {
        self.issuer
            .revoker()
            .access_token(jti, expires_at, reason)
            .await
    }

    /// Ends one of the user's sessions (from a device list, say). A session
    /// of another user is left alone (`false`), so a user cannot end
    /// someone else's session by guessing its id.
    pub async fn revoke(&self, user_id: &str, sid: &str) -> Result<bool, StoreError> {
        let owner = sessions::owner(self.issuer.db(), sid).await?;
        if owner.as_ref().map(|(t, u)| (t.as_deref(), u.as_str()))
            != Some((self.tenant.as_deref(), user_id))
        {
            return Ok(false);
        }
        self.end(sid, RevokedReason::Logout).await
    }

    /// Ends a session for an administrative or security reason, whoever
    /// owns it.
    pub async fn revoke_session(
        &self,
        sid: &str,
        reason: RevokedReason,
    ) -> Result<bool, StoreError> {
        self.end(sid, reason).await
    }

    /// Logs the user out everywhere: every session is revoked and every
    /// access token issued to the user up to now is denied (a not-before
    /// watermark on the subject). Returns how many sessions were revoked.
    pub async fn revoke_all(&self, user_id: &str) -> Result<u64, StoreError> {
        self.end_user(user_id, UserRevocation::Everywhere).await
    }

    /// Logs the user out of every session but `current`. Returns how many
    /// sessions were revoked.
    pub async fn revoke_others(&self, user_id: &str, current: &str) -> Result<u64, StoreError> {
        self.end_user(user_id, UserRevocation::AllBut(current))
            .await
    }

    async fn end(&self, sid: &str, reason: RevokedReason) -> Result<bool, StoreError> {
        self.issuer.revoker().session(sid, reason).await
    }

    async fn end_user(&self, user_id: &str, which: UserRevocation<'_>) -> Result<u64, StoreError> {
        self.issuer
            .revoker()
            .user(
                self.tenant.as_deref(),
                user_id,
                which,
                RevokedReason::Logout,
            )
            .await
    }
}
