//! OAuth clients: registration, lookup and secret checks.
//!
//! Client secrets are generated high-entropy values, so a SHA-256 of them is
//! as safe at rest as a password hash and costs nothing per request; they
//! are compared in constant time.
//!
//! ```
//! use std::time::SystemTime;
//! use tollgate::store::{self, clients::{NewClient, Registration}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! store::migrate(&db).await.unwrap();
//! let mut app = NewClient::public("native-app", "read");
//! app.redirect_uris = vec!["http://127.0.0.1/callback".into()];
//! assert_eq!(store::clients::register(&db, app, SystemTime::now()).await.unwrap(), None);
//! let secret = store::clients::register(
//!     &db,
//!     NewClient::confidential("billing", "invoices:read"),
//!     SystemTime::now(),
//! )
//! .await
//! .unwrap()
//! .expect("a confidential client gets a secret, shown once");
//!
//! let billing = store::clients::find(&db, "billing").await.unwrap().unwrap();
//! assert!(billing.secret_matches(Some(&secret), SystemTime::now()));
//! assert!(!billing.secret_matches(Some("guess"), SystemTime::now()));
//! assert_eq!(billing.registration, Registration::Registered);
//! # });
//! ```

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use entity::client;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use subtle::ConstantTimeEq;

use super::{StoreError, db_time};
use crate::{
    audience,
    identifier::{is_absolute_uri, is_https_link},
    redirect,
    scope::is_scope_token,
    secret::{hash_token, random_token},
};

/// A client to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    /// The `client_id`.
    pub client_id: String,
    /// A display name.
    pub name: String,
    /// The scopes it may be granted, space-separated.
    pub scope: String,
    /// Confidential (has a secret) or public.
    pub confidential: bool,
    /// Allow the password grant (first-party apps only, RFC 9700 §2.4).
    pub allow_password: bool,
    /// Allow client_credentials (confidential clients only).
    pub allow_client_credentials: bool,
    /// Access-token lifetime override.
    pub access_ttl: Option<Duration>,
    /// Refresh-token idle lifetime override.
    pub refresh_idle_ttl: Option<Duration>,
    /// Session absolute lifetime override.
    pub session_ttl: Option<Duration>,
    /// The RFC 8707 resources it may ask tokens for (absolute URIs without
    /// fragment). A token request naming any other is `invalid_target`.
    pub resources: Vec<String>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2), so
    /// every access token it gets is bound to a key.
    pub dpop_bound_access_tokens: bool,
    /// May call `/introspect` (RFC 7662 §2.1): set it for the resource
    /// servers that introspect tokens, and no other client. Confidential
    /// clients only.
    pub allow_introspection: bool,
    /// Its own window for stale refresh tokens of sessions bound to it
    /// ([`RefreshPolicy::bound_grace`](crate::refresh::RefreshPolicy::bound_grace));
    /// `None`: the issuer's; zero: the short rule only.
    pub bound_reuse_grace: Option<Duration>,
    /// The redirect URIs of the authorization code grant: each `https`, or
    /// `http` on a loopback host (`127.0.0.1`, `[::1]`, `localhost`),
    /// without fragment. A request's `redirect_uri` must equal one of them
    /// exactly, except that a loopback one matches with any port (RFC
    /// 8252 §7.3). Empty: the client cannot use `/authorize`.
    pub redirect_uris: Vec<String>,
    /// A registered `http://localhost` redirect matches with any port, as
    /// the loopback IPs do (what native clients send, though RFC 8252 §8.3
    /// prefers the IP). Default on.
    pub allow_localhost_redirect: bool,
    /// The logo the consent page shows (`https`).
    pub logo_uri: Option<String>,
    /// The client's home page (`https`).
    pub client_uri: Option<String>,
}

/// How a client came to be known, which the consent page shows: an
/// operator registered it, it is named by its metadata document's URL, or
/// it registered itself (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Registration {
    /// Registered by an operator ([`register`], the `tollgate` command,
    /// the setup's declared clients).
    Registered,
    /// A Client ID Metadata Document: the `client_id` is the URL of the
    /// document that describes it, fetched at `/authorize`.
    MetadataDocument,
    /// Dynamic client registration (RFC 7591): anyone who could reach
    /// the registration endpoint.
    Dynamic,
}

impl Registration {
    /// Its name, as stored: `registered`, `metadata_document`,
    /// `dynamic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::MetadataDocument => "metadata_document",
            Self::Dynamic => "dynamic",
        }
    }

    /// From the stored form; an unknown value is the most trusted kind
    /// only if it says so, anything else the least.
    fn parse(stored: &str) -> Self {
        match stored {
            "registered" => Self::Registered,
            "metadata_document" => Self::MetadataDocument,
            _ => Self::Dynamic,
        }
    }
}

impl NewClient {
    /// A confidential client with only the refresh grant enabled.
    pub fn confidential(client_id: impl Into<String>, scope: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self {
            name: client_id.clone(),
            client_id,
            scope: scope.into(),
            confidential: true,
            allow_password: false,
            allow_client_credentials: false,
            access_ttl: None,
            refresh_idle_ttl: None,
            session_ttl: None,
            resources: Vec::new(),
            dpop_bound_access_tokens: false,
            allow_introspection: false,
            bound_reuse_grace: None,
            redirect_uris: Vec::new(),
            allow_localhost_redirect: true,
            logo_uri: None,
            client_uri: None,
        }
    }

    /// A public client (no secret), e.g. a single-page or mobile app.
    pub fn public(client_id: impl Into<String>, scope: impl Into<String>) -> Self {
        Self {
            confidential: false,
            ..Self::confidential(client_id, scope)
        }
    }
}

/// Registers a client at `now` (the process clock's, as every store
/// function takes it); returns its new secret (shown once, stored only as
/// a hash) if it is confidential.
pub async fn register(
    db: &impl ConnectionTrait,
    new: NewClient,
    now: SystemTime,
) -> Result<Option<String>, StoreError> {
    let secret = new.confidential.then(random_token);
    insert(db, new, secret.as_deref(), Registration::Registered, now).await?;
    Ok(secret)
}

/// Registers a client that registered itself (RFC 7591) at `now`; returns
/// its secret if it is confidential. The janitor deletes it once it has
/// started no authorization for its unused lifetime and has no session.
pub(crate) async fn register_dynamic(
    db: &impl ConnectionTrait,
    new: NewClient,
    now: SystemTime,
) -> Result<Option<String>, StoreError> {
    let secret = new.confidential.then(random_token);
    insert(db, new, secret.as_deref(), Registration::Dynamic, now).await?;
    Ok(secret)
}

/// What [`save_metadata_document`] did.
#[cfg(feature = "client-metadata")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Saved {
    /// The stored row already says what the document says.
    Unchanged,
    /// The document changed (or another request inserted the row first):
    /// read it again.
    Updated,
    /// The first time: this call inserted the row.
    Inserted,
}

/// Records the client a metadata document describes, as fetched at `now`,
/// against `stored`, the row read for its id (never one of another kind:
/// an operator's registration wins, and the caller does not come here).
#[cfg(feature = "client-metadata")]
pub(crate) async fn save_metadata_document(
    db: &impl ConnectionTrait,
    stored: Option<&Client>,
    new: NewClient,
    now: SystemTime,
) -> Result<Saved, StoreError> {
    validate(&new)?;
    match stored {
        Some(stored) if stored.settings() == new => Ok(Saved::Unchanged),
        Some(_) => {
            client::Entity::update(settings(new)).exec(db).await?;
            Ok(Saved::Updated)
        }
        None => match insert(db, new, None, Registration::MetadataDocument, now).await {
            Ok(()) => Ok(Saved::Inserted),
            // Another request inserted it first: it holds the same
            // document, or the next fetch replaces it.
            Err(StoreError::Database(_)) => Ok(Saved::Updated),
            Err(e) => Err(e),
        },
    }
}

/// Notes that `client_id` started an authorization request at `now`.
pub(crate) async fn touch_authorized(
    db: &impl ConnectionTrait,
    client_id: &str,
    now: SystemTime,
) -> Result<(), StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    client::Entity::update_many()
        .col_expr(
            client::Column::LastAuthorizedAt,
            Expr::value(Some(db_time(now))),
        )
        .filter(client::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Registers a confidential client with a secret chosen by the operator
/// (e.g. from configuration). Prefer [`register`], which generates one.
pub async fn register_with_secret(
    db: &impl ConnectionTrait,
    new: NewClient,
    secret: &str,
    now: SystemTime,
) -> Result<(), StoreError> {
    if !new.confidential || secret.is_empty() {
        return Err(StoreError::Invalid(
            "a client secret needs a confidential client",
        ));
    }
    insert(db, new, Some(secret), Registration::Registered, now).await
}

async fn insert(
    db: &impl ConnectionTrait,
    new: NewClient,
    secret: Option<&str>,
    registration: Registration,
    now: SystemTime,
) -> Result<(), StoreError> {
    validate(&new)?;
    let mut row = settings(new);
    row.secret_hash = Set(secret.map(|s| hash_token(s).to_vec()));
    row.created_at = Set(db_time(now));
    row.registration = Set(registration.as_str().to_owned());
    row.insert(db).await?;
    Ok(())
}

/// Replaces a client's settings with `settings` (found by its
/// `client_id`): name, scope, resources, grants, lifetimes, DPoP and
/// introspection. Its secret stays, and so does its type: a public client
/// cannot become confidential or the reverse (register a new one).
/// Sessions already started keep the scope and resources they were
/// granted; new ones and refreshes narrow to the new settings. Whether the
/// client exists.
pub async fn update(db: &impl ConnectionTrait, settings: NewClient) -> Result<bool, StoreError> {
    validate(&settings)?;
    let Some(stored) = find(db, &settings.client_id).await? else {
        return Ok(false);
    };
    if stored.is_confidential() != settings.confidential {
        return Err(StoreError::Invalid(
            "a client cannot change between confidential and public",
        ));
    }
    let row = self::settings(settings);
    client::Entity::update(row).exec(db).await?;
    Ok(true)
}

/// What `register` and `update` both refuse.
fn validate(new: &NewClient) -> Result<(), StoreError> {
    // The columns' sizes, refused here rather than by the database.
    if new.client_id.is_empty() || new.client_id.len() > MAX_CLIENT_ID {
        return Err(StoreError::Invalid("a client id must be 1 to 128 bytes"));
    }
    if new.name.len() > MAX_NAME {
        return Err(StoreError::Invalid(
            "a client name must be at most 200 bytes",
        ));
    }
    if [new.access_ttl, new.refresh_idle_ttl, new.session_ttl]
        .iter()
        .any(|ttl| ttl.is_some_and(|t| t.as_secs() == 0))
    {
        return Err(StoreError::Invalid(
            "a client lifetime must be at least a second",
        ));
    }
    if new.allow_introspection && !new.confidential {
        return Err(StoreError::Invalid(
            "only a confidential client may introspect",
        ));
    }
    if new.allow_client_credentials && !new.confidential {
        return Err(StoreError::Invalid(
            "only a confidential client may use client_credentials",
        ));
    }
    // RFC 6749 §3.3 scope tokens, since they end up in responses and tokens.
    if !new
        .scope
        .split(' ')
        .filter(|t| !t.is_empty())
        .all(is_scope_token)
    {
        return Err(StoreError::Invalid(
            "a client scope is not a valid scope token",
        ));
    }
    if let Some(why) = new
        .redirect_uris
        .iter()
        .find_map(|r| redirect::check_registrable(r).err())
    {
        return Err(StoreError::Invalid(why.describe()));
    }
    if [&new.logo_uri, &new.client_uri]
        .into_iter()
        .flatten()
        .any(|u| !is_https_link(u))
    {
        return Err(StoreError::Invalid(
            "a logo or client URI must be an https URL of at most 2048 bytes",
        ));
    }
    if !new.resources.iter().all(|r| is_absolute_uri(r)) {
        return Err(StoreError::Invalid(
            "a client resource is not an absolute URI without fragment",
        ));
    }
    Ok(())
}

/// The settings columns of a client row (not its secret or creation time).
fn settings(new: NewClient) -> client::ActiveModel {
    let secs = |d: Option<Duration>| d.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    client::ActiveModel {
        client_id: Set(new.client_id),
        name: Set(new.name),
        scope: Set(new.scope),
        allow_password: Set(new.allow_password),
        allow_client_credentials: Set(new.allow_client_credentials),
        access_ttl_secs: Set(secs(new.access_ttl)),
        refresh_idle_ttl_secs: Set(secs(new.refresh_idle_ttl)),
        family_ttl_secs: Set(secs(new.session_ttl)),
        resources: Set(audience::join(&new.resources)),
        dpop_bound_access_tokens: Set(new.dpop_bound_access_tokens),
        allow_introspection: Set(new.allow_introspection),
        bound_reuse_grace_secs: Set(secs(new.bound_reuse_grace)),
        redirect_uris: Set(audience::join(&new.redirect_uris)),
        allow_localhost_redirect: Set(new.allow_localhost_redirect),
        logo_uri: Set(new.logo_uri),
        client_uri: Set(new.client_uri),
        ..Default::default()
    }
}

/// Whether `template` — the settings this server gives clients that
/// register themselves, before they have an id — could make a client.
pub(crate) fn template_is_valid(template: &NewClient) -> bool {
    let mut probe = template.clone();
    probe.client_id = "probe".into();
    validate(&probe).is_ok()
}

/// `name` cut to the longest client name stored, on a character
/// boundary: what a client's own claim to a name becomes.
pub(crate) fn cut_name(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Longest client id and name stored (the columns' sizes).
const MAX_CLIENT_ID: usize = 128;
const MAX_NAME: usize = 200;

/// A registered client, as tollgate uses it. Its secret is held only as a
/// hash and never shown.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// The `client_id`.
    pub client_id: String,
    /// A display name.
    pub name: String,
    /// Scopes it may be granted, space-separated.
    pub scope: String,
    /// Whether the password grant is allowed.
    pub allow_password: bool,
    /// Whether the client_credentials grant is allowed.
    pub allow_client_credentials: bool,
    /// Access-token lifetime override.
    pub access_ttl: Option<Duration>,
    /// Refresh-token idle lifetime override.
    pub refresh_idle_ttl: Option<Duration>,
    /// Session absolute lifetime override.
    pub session_ttl: Option<Duration>,
    /// The RFC 8707 resources it may ask tokens for.
    pub resources: Vec<String>,
    /// Whether every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// Whether it may call `/introspect`.
    pub allow_introspection: bool,
    /// Its own window for stale refresh tokens, if it has one.
    pub bound_reuse_grace: Option<Duration>,
    /// Its redirect URIs for the authorization code grant.
    pub redirect_uris: Vec<String>,
    /// Whether a `localhost` redirect matches with any port.
    pub allow_localhost_redirect: bool,
    /// Disabled: it authenticates no more and gets no tokens.
    pub disabled: bool,
    /// How it came to be known.
    pub registration: Registration,
    /// The logo its consent page shows.
    pub logo_uri: Option<String>,
    /// Its home page.
    pub client_uri: Option<String>,
    /// When it last started an authorization request.
    pub last_authorized_at: Option<SystemTime>,
    /// SHA-256 of the secret; `None` for a public client.
    secret_hash: Option<Vec<u8>>,
    /// SHA-256 of the secret before the last rotation, and until when it
    /// still works.
    previous_secret: Option<(Vec<u8>, SystemTime)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("confidential", &self.is_confidential())
            .field("allow_password", &self.allow_password)
            .field("allow_client_credentials", &self.allow_client_credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Its settings, to change and hand to [`update`].
    pub fn settings(&self) -> NewClient {
        NewClient {
            client_id: self.client_id.clone(),
            name: self.name.clone(),
            scope: self.scope.clone(),
            confidential: self.is_confidential(),
            allow_password: self.allow_password,
            allow_client_credentials: self.allow_client_credentials,
            access_ttl: self.access_ttl,
            refresh_idle_ttl: self.refresh_idle_ttl,
            session_ttl: self.session_ttl,
            resources: self.resources.clone(),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            allow_introspection: self.allow_introspection,
            bound_reuse_grace: self.bound_reuse_grace,
            redirect_uris: self.redirect_uris.clone(),
            allow_localhost_redirect: self.allow_localhost_redirect,
            logo_uri: self.logo_uri.clone(),
            client_uri: self.client_uri.clone(),
        }
    }

    /// Whether it authenticates with a secret.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// Whether `presented` authenticates this client at `now`: the right
    /// secret for a confidential client (its current one, or the one
    /// before the last rotation until the overlap ends), none for a public
    /// one. Constant-time, and both secrets are always compared.
    pub fn secret_matches(&self, presented: Option<&str>, now: SystemTime) -> bool {
        match (&self.secret_hash, presented) {
            (Some(stored), Some(secret)) => {
                let presented = hash_token(secret);
                let current = stored.as_slice().ct_eq(&presented);
                let previous = match &self.previous_secret {
                    Some((hash, until)) => {
                        hash.as_slice().ct_eq(&presented)
                            & subtle::Choice::from(u8::from(now < *until))
                    }
                    None => [0u8; 32].ct_eq(&presented) & subtle::Choice::from(0),
                };
                bool::from(current | previous)
            }
            (None, None) => true,
            _ => false,
        }
    }

    /// A client as the store would return it, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(confidential: bool, scope: &str, resources: &[&str]) -> Self {
        Self {
            client_id: "c".into(),
            name: "c".into(),
            scope: scope.into(),
            allow_password: false,
            allow_client_credentials: false,
            access_ttl: None,
            refresh_idle_ttl: None,
            session_ttl: None,
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            dpop_bound_access_tokens: false,
            allow_introspection: false,
            bound_reuse_grace: None,
            redirect_uris: Vec::new(),
            allow_localhost_redirect: true,
            disabled: false,
            registration: Registration::Registered,
            logo_uri: None,
            client_uri: None,
            last_authorized_at: None,
            secret_hash: confidential.then(|| vec![0; 32]),
            previous_secret: None,
        }
    }

    fn from_row(row: client::Model) -> Self {
        let ttl = |secs: Option<i64>| {
            secs.and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
        };
        Self {
            client_id: row.client_id,
            name: row.name,
            scope: row.scope,
            allow_password: row.allow_password,
            allow_client_credentials: row.allow_client_credentials,
            access_ttl: ttl(row.access_ttl_secs),
            refresh_idle_ttl: ttl(row.refresh_idle_ttl_secs),
            session_ttl: ttl(row.family_ttl_secs),
            resources: audience::split(row.resources.as_deref()),
            dpop_bound_access_tokens: row.dpop_bound_access_tokens,
            allow_introspection: row.allow_introspection,
            bound_reuse_grace: ttl(row.bound_reuse_grace_secs),
            redirect_uris: audience::split(row.redirect_uris.as_deref()),
            allow_localhost_redirect: row.allow_localhost_redirect,
            disabled: row.disabled_at.is_some(),
            registration: Registration::parse(&row.registration),
            logo_uri: row.logo_uri,
            client_uri: row.client_uri,
            last_authorized_at: row.last_authorized_at.map(super::system_time),
            secret_hash: row.secret_hash,
            previous_secret: row
                .previous_secret_hash
                .zip(row.previous_secret_until.map(super::system_time)),
        }
    }
}

/// The client with this id.
pub async fn find(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    Ok(client::Entity::find_by_id(client_id.to_owned())
        .one(db)
        .await?
        .map(Client::from_row))
}

/// Every client, by id.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Client>, StoreError> {
    use sea_orm::QueryOrder;
    Ok(client::Entity::find()
        .order_by_asc(client::Column::ClientId)
        .all(db)
        .await?
        .into_iter()
        .map(Client::from_row)
        .collect())
}

/// Gives a confidential client a new secret, returned (shown once, stored
/// as a hash); the one it had keeps working until `now + overlap`, so its
/// deployments can switch without a moment in which neither works. A
/// secret rotated before and still in its overlap is replaced: only the
/// last two are ever valid. `None` for an unknown or public client.
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    client_id: &str,
    overlap: Duration,
    now: SystemTime,
) -> Result<Option<String>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let secret = random_token();
    let rotated = client::Entity::update_many()
        .col_expr(
            client::Column::PreviousSecretHash,
            Expr::col(client::Column::SecretHash),
        )
        .col_expr(
            client::Column::PreviousSecretUntil,
            Expr::value(db_time(now + overlap)),
        )
        .col_expr(
            client::Column::SecretHash,
            Expr::value(hash_token(&secret).to_vec()),
        )
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::SecretHash.is_not_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok((rotated == 1).then_some(secret))
}

/// Enables a disabled client again: it authenticates and gets tokens
/// again (its revoked sessions stay revoked). Whether it exists.
pub async fn enable(db: &impl ConnectionTrait, client_id: &str) -> Result<bool, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let found = client::Entity::update_many()
        .col_expr(
            client::Column::DisabledAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(client::Column::ClientId.eq(client_id))
        .exec(db)
        .await?
        .rows_affected;
    Ok(found == 1)
}

/// Deletes a disabled client's row, once none of its sessions is left.
pub(crate) async fn delete_disabled(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<bool, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(client::Entity::delete_many()
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::DisabledAt.is_not_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Deletes the clients nobody registered — dynamically registered ones
/// (RFC 7591) and those recorded from a metadata document (fetched again
/// at their next `/authorize`) — known before `unused_before` that started
/// no authorization since and have no session left (the janitor deletes a
/// client's dead sessions first, after their retention); one statement,
/// so a session started meanwhile keeps its client. How many went.
pub(crate) async fn purge_unused_self_registered(
    db: &impl ConnectionTrait,
    unused_before: SystemTime,
) -> Result<u64, StoreError> {
    use entity::token_family;
    use sea_orm::{ColumnTrait, Condition, QueryFilter, sea_query::Query};
    let cutoff = db_time(unused_before);
    Ok(client::Entity::delete_many()
        .filter(client::Column::Registration.is_in([
            Registration::Dynamic.as_str(),
            Registration::MetadataDocument.as_str(),
        ]))
        .filter(client::Column::CreatedAt.lt(cutoff))
        .filter(
            Condition::any()
                .add(client::Column::LastAuthorizedAt.is_null())
                .add(client::Column::LastAuthorizedAt.lt(cutoff)),
        )
        .filter(
            client::Column::ClientId.not_in_subquery(
                Query::select()
                    .column(token_family::Column::ClientId)
                    .from(token_family::Entity)
                    .to_owned(),
            ),
        )
        .exec(db)
        .await?
        .rows_affected)
}

/// Spends the time of a secret check when there is no client to check
/// against, so an unknown `client_id` and a wrong secret cost the same.
pub fn dummy_secret_check(presented: Option<&str>) {
    let h = hash_token(presented.unwrap_or_default());
    let _ = std::hint::black_box([0u8; 32].ct_eq(&h));
}
