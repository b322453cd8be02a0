//! Administering clients: register, list, change, rotate secrets,
//! disable, enable, delete. What ends sessions goes through the issuer's
//! one revocation path, so the deny list learns of it at once here and,
//! through the store, on every other instance.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::store::{self, clients::NewClient};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = tollgate::sea_orm::Database::connect("sqlite::memory:").await?;
//! store::migrate(&db).await?;
//! let admin = tollgate::admin::ClientAdmin::new(db, tollgate::RevocationCache::default());
//! let secret = admin.register(NewClient::confidential("billing", "invoices:read")).await?;
//! assert!(secret.is_some());
//! // Deploy the new secret; the old one works for another day.
//! let rotated = admin.rotate_secret("billing", Duration::from_secs(86_400)).await?;
//! assert!(rotated.is_some());
//! // A compromised client: its sessions and tokens end, it authenticates no more.
//! admin.disable("billing").await?;
//! assert!(admin.find("billing").await?.unwrap().disabled);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Token endpoints cache client rows for
//! [`client_cache_ttl`](crate::token_endpoint::TokenEndpointBuilder::client_cache_ttl)
//! (5 s by default): for that long after a change another instance may
//! still see the client as it was. A disabled client's refresh tokens and
//! new logins are refused at once everywhere (the store decides those);
//! only a `client_credentials` token could still be minted in that window.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::{
    events::Events,
    issuer::{Issuer, Revoker},
    revocation::{RevocationCache, RevokedReason},
    store::{
        StoreError, cleanup,
        clients::{self, Client, NewClient},
        sessions,
    },
};

/// Rows per statement when a deleted client's sessions are removed.
const DELETE_BATCH: u64 = cleanup::DEFAULT_DELETE_BATCH;

/// Client administration over one store; see the [module](self).
#[derive(Debug, Clone)]
pub struct ClientAdmin {
    db: DatabaseConnection,
    revoker: Revoker,
    deny: RevocationCache,
}

impl Issuer {
    /// Client administration with this issuer's store, clock and deny
    /// list.
    pub fn clients(&self) -> ClientAdmin {
        ClientAdmin {
            db: self.db().clone(),
            revoker: self.revoker().clone(),
            deny: self.revocations().clone(),
        }
    }
}

impl ClientAdmin {
    /// Administration outside a serving process (a CLI, a job): `deny` is
    /// this process's deny list (any will do when no gate runs here; the
    /// serving instances learn of revocations from the store).
    pub fn new(db: DatabaseConnection, deny: RevocationCache) -> Self {
        Self {
            revoker: Revoker::new(db.clone(), deny.clone(), Events::default()),
            db,
            deny,
        }
    }

    /// Registers a client; returns its secret (shown once) if it is
    /// confidential. See [`clients::register`].
    pub async fn register(&self, new: NewClient) -> Result<Option<String>, StoreError> {
        clients::register(&self.db, new, self.deny.now()).await
    }

    /// Registers a confidential client with a secret of the operator's.
    pub async fn register_with_secret(
        &self,
        new: NewClient,
        secret: &str,
    ) -> Result<(), StoreError> {
        clients::register_with_secret(&self.db, new, secret, self.deny.now()).await
    }

    /// The client with this id, disabled or not.
    pub async fn find(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        clients::find(&self.db, client_id).await
    }

    /// Every client, by id.
    pub async fn list(&self) -> Result<Vec<Client>, StoreError> {
        clients::list(&self.db).await
    }

    /// Replaces a client's settings; see [`clients::update`]. Whether it
    /// exists.
    pub async fn update(&self, settings: NewClient) -> Result<bool, StoreError> {
        clients::update(&self.db, settings).await
    }

    /// A new secret for a confidential client, the old one valid for
    /// `overlap` more; see [`clients::rotate_secret`].
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        overlap: Duration,
    ) -> Result<Option<String>, StoreError> {
        clients::rotate_secret(&self.db, client_id, overlap, self.deny.now()).await
    }

    /// Disables a client: it authenticates no more, every session it
    /// holds is revoked, and every token issued to it or its sessions is
    /// denied. How many sessions were live; `None` for an unknown client.
    /// Idempotent.
    pub async fn disable(&self, client_id: &str) -> Result<Option<u64>, StoreError> {
        self.revoker.client(client_id, RevokedReason::Admin).await
    }

    /// Enables a disabled client again; its revoked sessions stay revoked.
    /// Whether it exists.
    pub async fn enable(&self, client_id: &str) -> Result<bool, StoreError> {
        clients::enable(&self.db, client_id).await
    }

    /// Deletes a client: disables it (ending its sessions and tokens as
    /// [`disable`](Self::disable) does), removes its sessions' rows, then
    /// its own. The deny-list rows stay until its tokens have expired. If
    /// this fails half-way the client stays disabled, and running it again
    /// finishes. Whether it existed.
    pub async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        if self.disable(client_id).await?.is_none() {
            return Ok(false);
        }
        loop {
            let families = sessions::families_of_client(&self.db, client_id, DELETE_BATCH).await?;
            if families.is_empty() {
                break;
            }
            cleanup::delete_families(&self.db, &families, DELETE_BATCH).await?;
        }
        clients::delete_disabled(&self.db, client_id).await
    }
}
