use std::time::SystemTime;

use sea_orm::DatabaseConnection;

use crate::revocation::{Revocation, RevocationCache, RevokedReason};
use crate::store::{StoreError, sessions::UserRevocation};
use crate::{
    events::{Events, SecurityEvent},
    telemetry,
};

/// The one path a revocation takes: commit it to the store in one
/// transaction, then apply what was committed to this process's deny list
/// at once. Other instances read the same rows back through
/// [`RevocationSync`](crate::sync::RevocationSync).
///
/// Sessions, `/revoke`, logout and reuse detection all revoke through it,
/// so none of them can commit a row and forget the local deny list, or
/// deny locally what the store does not hold.
#[derive(Clone, Debug)]
pub(crate) struct Revoker {
    db: DatabaseConnection,
    deny: RevocationCache,
    events: Events,
}

impl Revoker {
    pub(crate) fn new(db: DatabaseConnection, deny: RevocationCache, events: Events) -> Self {
        Self { db, deny, events }
    }

    /// Ends a session: its refresh tokens stop working and its `sid` is
    /// denied. Whether it was live until now.
    pub(crate) async fn session(
        &self,
        sid: &str,
        reason: RevokedReason,
    ) -> Result<bool, StoreError> {
        let committed = crate::store::sessions::revoke(
            &self.db,
            sid,
            reason,
            self.deny.now(),
            self.deny.max_token_lifetime(),
        )
        .await?;
        self.apply(&committed);
        if committed.is_some() {
            telemetry::sessions_revoked(reason.as_str(), 1);
            self.events.emit(SecurityEvent::SessionRevoked {
                sid: sid.to_owned(),
                reason,
            });
        }
        Ok(committed.is_some())
    }

    /// Ends every session of a user (and, `Everywhere`, every access token
    /// issued to them up to now). How many sessions were live.
    pub(crate) async fn user(
        &self,
        tenant: Option<&str>,
        user_id: &str,
        which: UserRevocation<'_>,
        reason: RevokedReason,
    ) -> Result<u64, StoreError> {
        let (committed, sessions) = crate::store::sessions::revoke_user(
            &self.db,
            tenant,
            user_id,
            which,
            reason,
            self.deny.now(),
            self.deny.max_token_lifetime(),
        )
        .await?;
        self.apply(&committed);
        telemetry::sessions_revoked(reason.as_str(), sessions);
        match which {
            UserRevocation::Everywhere => self.events.emit(SecurityEvent::LoggedOutEverywhere {
                subject: user_id.to_owned(),
                sessions,
            }),
            UserRevocation::AllBut(_) => {
                for r in &committed {
                    self.events.emit(SecurityEvent::SessionRevoked {
                        sid: r.target.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(sessions)
    }

    /// Disables a client and ends its sessions and the tokens issued to
    /// it. How many sessions were live; `None` for an unknown client.
    pub(crate) async fn client(
        &self,
        client_id: &str,
        reason: RevokedReason,
    ) -> Result<Option<u64>, StoreError> {
        let subject = format!("{}{client_id}", crate::claims::CLIENT_SUBJECT_PREFIX);
        let Some((committed, sessions)) = crate::store::sessions::disable_client(
            &self.db,
            client_id,
            &subject,
            reason,
            self.deny.now(),
            self.deny.max_token_lifetime(),
        )
        .await?
        else {
            return Ok(None);
        };
        self.apply(&committed);
        telemetry::sessions_revoked(reason.as_str(), sessions);
        for r in committed
            .iter()
            .filter(|r| r.kind == crate::revocation::RevocationKind::Session)
        {
            self.events.emit(SecurityEvent::SessionRevoked {
                sid: r.target.clone(),
                reason,
            });
        }
        Ok(Some(sessions))
    }

    /// Denies one access token (`jti`) until it expires. Whether it was
    /// recorded now.
    pub(crate) async fn access_token(
        &self,
        jti: &str,
        expires_at: SystemTime,
        reason: RevokedReason,
    ) -> Result<bool, StoreError> {
        let committed = crate::store::revocations::revoke_access_token(
            &self.db,
            jti,
            expires_at,
            reason,
            self.deny.now(),
        )
        .await?;
        self.apply(&committed);
        Ok(committed.is_some())
    }

    /// Applies revocations another transaction committed (a rotation that
    /// detected reuse revokes its session inside its own transaction).
    pub(crate) fn apply<'a>(&self, committed: impl IntoIterator<Item = &'a Revocation>) {
        for r in committed {
            self.deny.apply(r);
        }
    }

    /// Applies and counts the session a refresh decision revoked.
    pub(crate) fn apply_committed(&self, committed: Option<&Revocation>) {
        if let Some(r) = committed {
            telemetry::sessions_revoked(r.reason.as_str(), 1);
            self.deny.apply(r);
        }
    }
}
