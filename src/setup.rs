//! Everything a production app wires, in the one order that is safe:
//! [`Tollgate::builder`] migrates the store, registers (or updates) the
//! clients you declare, builds the issuer, warms its deny list from the
//! store and keeps it in sync, starts the janitor, and builds the token
//! endpoint; then it hands out gates that trust the issuer. Nothing can be
//! left out: a gate cannot exist before its deny list is warm, and the
//! tables cannot grow forever for want of a janitor.
//!
//! ```
//! use tollgate::{Issuer, RefreshSecret, SigningKey, Tollgate, keys::Algorithm};
//! use tollgate::store::clients::NewClient;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = tollgate::sea_orm::Database::connect("sqlite::memory:").await?;
//! let tollgate = Tollgate::builder(db)
//!     .issuer(
//!         Issuer::builder()
//!             .keys(SigningKey::from_pem(
//!                 "2026-12",
//!                 Algorithm::EdDSA,
//!                 include_bytes!("../tests/keys/ed25519.pem"),
//!             )?)
//!             .issuer("https://auth.example")
//!             .audience("https://api.example")
//!             .refresh_secret(RefreshSecret::new(&[7; 32])?),
//!     )
//!     .client(NewClient::public("web", "orders:read orders:write"))
//!     .start()
//!     .await?;
//! let gate = tollgate.gate().require_scope("orders:read").build()?;
//! // Mount `tollgate.endpoint()` at /token, `.revocation()` at /revoke,
//! // and `gate` on the routes it protects.
//! # let _ = gate;
//! tollgate.shutdown();
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The pieces stay public for a wiring of your own; then keep the order:
//! a gate over an issuer's deny list answers 503 until a
//! [`RevocationSync`] has warmed it, and the token endpoint logs a warning
//! at its first request when no janitor from
//! [`Issuer::janitor`] runs (see
//! [`TokenEndpointBuilder::janitor_elsewhere`]).

use std::fmt;

use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;

use crate::{
    access_token::AccessTokenLayerBuilder,
    issuer::{Issuer, IssuerBuilder, IssuerConfigError},
    sessions::Sessions,
    store::{
        self, StoreError,
        cleanup::JanitorBuilder,
        clients::{self, NewClient},
    },
    sync::{RevocationSync, RevocationSyncBuilder},
    token_endpoint::{EndpointConfigError, TokenEndpoint, TokenEndpointBuilder},
};

type Configure<B> = Box<dyn FnOnce(B) -> B + Send>;

/// Builds a [`Tollgate`]; [`start`](Self::start) does the work.
#[must_use]
pub struct TollgateBuilder {
    db: DatabaseConnection,
    migrate: bool,
    issuer: Option<IssuerBuilder>,
    clients: Vec<(NewClient, Option<String>)>,
    endpoint: Configure<TokenEndpointBuilder>,
    sync: Configure<RevocationSyncBuilder>,
    janitor: Option<Configure<JanitorBuilder>>,
}

impl fmt::Debug for TollgateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TollgateBuilder")
            .field("migrate", &self.migrate)
            .field("issuer", &self.issuer)
            .field(
                "clients",
                &self
                    .clients
                    .iter()
                    .map(|(c, _)| &c.client_id)
                    .collect::<Vec<_>>(),
            )
            .field("janitor", &self.janitor.is_some())
            .finish_non_exhaustive()
    }
}

impl TollgateBuilder {
    /// Whether [`start`](Self::start) runs tollgate's migrations (default
    /// yes). Turn it off when they are merged into your own `Migrator`
    /// (see [`store::migrate`]) and it has run them.
    pub fn migrate(self, yes: bool) -> Self {
        Self {
            migrate: yes,
            ..self
        }
    }

    /// The issuer's settings: keys, `iss`, audience, refresh secret,
    /// lifetimes, policy, events, and its deny list if you give it one (a
    /// clock of your own, a margin) (required). Its database is this
    /// builder's; one given here is replaced.
    pub fn issuer(self, issuer: IssuerBuilder) -> Self {
        Self {
            issuer: Some(issuer),
            ..self
        }
    }

    /// A public client to have: registered if it is not, its settings
    /// updated to these if they differ ([`clients::update`]). For a
    /// confidential client use [`client_with_secret`](Self::client_with_secret).
    pub fn client(mut self, client: NewClient) -> Self {
        self.clients.push((client, None));
        self
    }

    /// A confidential client to have, with its secret (from your secret
    /// store, never from source). Registered with it if the client is not;
    /// otherwise its settings are updated and its secret left alone —
    /// rotate it with [`ClientAdmin::rotate_secret`](crate::admin::ClientAdmin::rotate_secret)
    /// (a warning is logged when the stored one differs).
    pub fn client_with_secret(mut self, client: NewClient, secret: impl Into<String>) -> Self {
        self.clients.push((client, Some(secret.into())));
        self
    }

    /// Configures the token endpoint (scopes, browser clients, DPoP, rate
    /// limits, trusted proxies, a password verifier).
    pub fn endpoint(
        self,
        configure: impl FnOnce(TokenEndpointBuilder) -> TokenEndpointBuilder + Send + 'static,
    ) -> Self {
        Self {
            endpoint: Box::new(configure),
            ..self
        }
    }

    /// Configures the revocation sync (poll interval, fail-closed limit,
    /// PostgreSQL notifications).
    pub fn sync(
        self,
        configure: impl FnOnce(RevocationSyncBuilder) -> RevocationSyncBuilder + Send + 'static,
    ) -> Self {
        Self {
            sync: Box::new(configure),
            ..self
        }
    }

    /// Configures the janitor (retention, interval, batch).
    pub fn janitor(
        self,
        configure: impl FnOnce(JanitorBuilder) -> JanitorBuilder + Send + 'static,
    ) -> Self {
        Self {
            janitor: Some(Box::new(configure)),
            ..self
        }
    }

    /// Runs no janitor in this process: one instance of several runs it
    /// (it is safe on several at once too).
    pub fn janitor_elsewhere(self) -> Self {
        Self {
            janitor: None,
            ..self
        }
    }

    /// Migrates, registers the clients, builds the issuer, syncs its deny
    /// list from the store (returning only once it is warm) and keeps it
    /// syncing, starts the janitor, and builds the endpoint. Must run on a
    /// tokio runtime; the background tasks stop at
    /// [`Tollgate::shutdown`].
    pub async fn start(self) -> Result<Tollgate, StartError> {
        let db = self.db;
        if self.migrate {
            store::migrate(&db).await.map_err(StoreError::from)?;
        }
        let issuer = self
            .issuer
            .ok_or(StartError::Issuer(IssuerConfigError::MissingIssuer))?
            .db(db.clone())
            .build()?;
        for (client, secret) in self.clients {
            have_client(&db, client, secret.as_deref(), issuer.now()).await?;
        }
        let sync = (self.sync)(
            RevocationSync::builder(db.clone(), issuer.revocations().clone())
                .events(issuer.events().clone()),
        )
        .build();
        sync.sync().await?;
        let janitor_elsewhere = self.janitor.is_none();
        let endpoint = (self.endpoint)(TokenEndpoint::builder(issuer.clone()));
        let endpoint = if janitor_elsewhere {
            endpoint.janitor_elsewhere()
        } else {
            endpoint
        }
        .build()?;
        let mut tasks = vec![sync.spawn()];
        if let Some(configure) = self.janitor {
            tasks.push(configure(issuer.janitor()).build().spawn());
        }
        Ok(Tollgate {
            issuer,
            endpoint,
            sync,
            tasks,
        })
    }
}

/// Registers `new`, or brings a registered client's settings to it.
async fn have_client(
    db: &DatabaseConnection,
    new: NewClient,
    secret: Option<&str>,
    now: std::time::SystemTime,
) -> Result<(), StartError> {
    let id = new.client_id.clone();
    if let Some(stored) = clients::find(db, &id).await? {
        if secret.is_some_and(|s| !stored.secret_matches(Some(s), now)) {
            tracing::warn!(
                client_id = %id,
                "the configured secret is not the stored one; rotate it to change it"
            );
        }
        clients::update(db, new).await?;
        return Ok(());
    }
    let registered = match secret {
        Some(secret) => clients::register_with_secret(db, new.clone(), secret, now).await,
        None if new.confidential => {
            return Err(StartError::Client(
                "a confidential client needs its secret: use client_with_secret",
            ));
        }
        None => clients::register(db, new.clone(), now).await.map(drop),
    };
    match registered {
        Ok(()) => Ok(()),
        // Another instance starting at the same moment registered it.
        Err(e) => match clients::find(db, &id).await? {
            Some(_) => Ok(clients::update(db, new).await.map(drop)?),
            None => Err(e.into()),
        },
    }
}

/// The started pieces: the issuer, the token endpoint and the deny list's
/// sync, with the sync and the janitor running in the background. Cloning
/// a piece is cheap; gates come from [`gate`](Self::gate).
pub struct Tollgate {
    issuer: Issuer,
    endpoint: TokenEndpoint,
    sync: RevocationSync,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Tollgate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tollgate")
            .field("issuer", &self.issuer)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Tollgate {
    /// Starts a builder over `db` (connect through
    /// [`tollgate::sea_orm`](crate::sea_orm)).
    pub fn builder(db: DatabaseConnection) -> TollgateBuilder {
        TollgateBuilder {
            db,
            migrate: true,
            issuer: None,
            clients: Vec::new(),
            endpoint: Box::new(|e| e),
            sync: Box::new(|s| s),
            janitor: Some(Box::new(|j| j)),
        }
    }

    /// The issuer: mint tokens from your own login handler
    /// ([`Issuer::issue`]), revoke, rotate keys.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// `/token`; [`TokenEndpoint::revocation`], `introspection`, `jwks` and
    /// `metadata` are the other routes.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// A gate that trusts the issuer's tokens, over its (warm) deny list:
    /// add required scopes or a resource, then build.
    pub fn gate(&self) -> AccessTokenLayerBuilder {
        self.issuer.access_token_layer()
    }

    /// The users' sessions: list, log out, log out everywhere.
    pub fn sessions(&self) -> Sessions {
        self.issuer.sessions()
    }

    /// The deny list's sync, for its staleness (health checks).
    pub fn revocation_sync(&self) -> &RevocationSync {
        &self.sync
    }

    /// Every route of the authorization server, for axum: `/token`,
    /// `/revoke`, `/introspect`, `/.well-known/jwks.json`, the RFC 8414
    /// metadata at its well-known path, and `/authorize` when the
    /// endpoint has [`authorization`](TokenEndpointBuilder::authorization)
    /// and `/register` when it has
    /// [`dynamic_registration`](TokenEndpointBuilder::dynamic_registration),
    /// with the paths the endpoint was configured with. The application's
    /// own login page (the authorization's login URL) is its own route.
    #[cfg(feature = "axum")]
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let e = &self.endpoint;
        let paths = e.paths().clone();
        let routes = axum::Router::new()
            .route_service(&paths.token, e.clone())
            .route_service(&paths.revocation, e.revocation())
            .route_service(&paths.introspection, e.introspection())
            .route_service(&paths.jwks, e.jwks())
            .route_service(e.metadata().well_known_path(), e.metadata());
        let routes = match e.authorization_endpoint() {
            Some(authorize) => routes.route_service(&paths.authorization, authorize),
            None => routes,
        };
        match e.registration_endpoint() {
            Some(register) => routes.route_service(&paths.registration, register),
            None => routes,
        }
    }

    /// Stops the sync and the janitor (a gate then goes stale, and with a
    /// fail-closed limit refuses tokens, as after any sync failure).
    pub fn shutdown(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Why [`TollgateBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store: migrating, registering a client, or the first sync.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The issuer's settings.
    #[error(transparent)]
    Issuer(#[from] IssuerConfigError),
    /// The endpoint's settings.
    #[error(transparent)]
    Endpoint(#[from] EndpointConfigError),
    /// A declared client cannot be registered.
    #[error("{0}")]
    Client(&'static str),
}
