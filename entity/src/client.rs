//! `client`: an OAuth client registered with the token endpoint.

use sea_orm::entity::prelude::*;

/// A registered OAuth client.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_client")]
pub struct Model {
    /// The `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// A display name.
    pub name: String,
    /// Scopes this client may be granted, space-separated.
    pub scope: String,
    /// Whether the password grant is allowed (first-party apps only).
    pub allow_password: bool,
    /// Whether the client_credentials grant is allowed (confidential only).
    pub allow_client_credentials: bool,
    /// Access-token lifetime override, seconds.
    pub access_ttl_secs: Option<i64>,
    /// Refresh-token idle lifetime override, seconds.
    pub refresh_idle_ttl_secs: Option<i64>,
    /// Family (session) absolute lifetime override, seconds.
    pub family_ttl_secs: Option<i64>,
    /// When the client was registered.
    pub created_at: DateTimeUtc,
    /// RFC 8707 resources it may ask tokens for, space-separated absolute
    /// URIs; `None` for none.
    pub resources: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// May call `/introspect` (RFC 7662 §2.1): a resource server.
    pub allow_introspection: bool,
    /// When the client was disabled (it authenticates no more); `None`:
    /// enabled.
    pub disabled_at: Option<DateTimeUtc>,
    /// SHA-256 of the secret before the last rotation, accepted until
    /// `previous_secret_until`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// End of the rotation overlap.
    pub previous_secret_until: Option<DateTimeUtc>,
    /// The window for this client's stale refresh tokens, seconds; `None`:
    /// the issuer's.
    pub bound_reuse_grace_secs: Option<i64>,
    /// The redirect URIs registered for the authorization code grant,
    /// space-separated; `None`: the client cannot use `/authorize`.
    pub redirect_uris: Option<String>,
    /// A registered `http://localhost/…` redirect matches any port, as
    /// loopback IP redirects do (RFC 8252 §7.3).
    pub allow_localhost_redirect: bool,
    /// How the client came to be known: `registered` (by an operator),
    /// `metadata_document` (a Client ID Metadata Document), `dynamic`
    /// (RFC 7591).
    pub registration: String,
    /// The logo its consent page shows, an `https` URL.
    pub logo_uri: Option<String>,
    /// Its home page, an `https` URL.
    pub client_uri: Option<String>,
    /// When it last started an authorization request.
    pub last_authorized_at: Option<DateTimeUtc>,
}

/// No navigable relations; foreign keys live in the migrations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
