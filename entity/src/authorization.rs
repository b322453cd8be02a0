//! `authorization`: one authorization request (RFC 6749 §4.1), from
//! `/authorize` through the application's decision to the code's
//! redemption. Only hashes of its secrets are kept.

use sea_orm::entity::prelude::*;

/// One authorization request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tollgate_authorization")]
pub struct Model {
    /// SHA-256 of the pending request's id (what the login page gets).
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_hash: Vec<u8>,
    /// SHA-256 of the browser cookie the request was started with.
    pub browser_hash: Vec<u8>,
    /// The client.
    pub client_id: String,
    /// Where the answer goes: the `redirect_uri` sent, or the client's
    /// only registered one.
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (then `/token` must get
    /// the same, RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    /// The scope requested (within the client's).
    pub scope: String,
    /// RFC 8707 resources requested, space-separated.
    pub resources: Option<String>,
    /// The client's `state`, returned as sent.
    pub state: Option<String>,
    /// The PKCE S256 `code_challenge` (RFC 7636).
    pub code_challenge: String,
    /// RFC 9449 §10 `dpop_jkt`: the code is bound to this key.
    pub dpop_jkt: Option<String>,
    /// OpenID `prompt`, passed on to the application.
    pub prompt: Option<String>,
    /// `max_age`, seconds.
    pub max_age_secs: Option<i64>,
    /// `acr_values`, space-separated.
    pub acr_values: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// When `/authorize` accepted it.
    pub created_at: DateTimeUtc,
    /// The end of the pending request: decided before, or never.
    pub expires_at: DateTimeUtc,
    /// When the application approved or denied it.
    pub decided_at: Option<DateTimeUtc>,
    /// SHA-256 of the authorization code, once approved.
    pub code_hash: Option<Vec<u8>>,
    /// The end of the code's life.
    pub code_expires_at: Option<DateTimeUtc>,
    /// The user the application signed in.
    pub subject: Option<String>,
    /// When the user authenticated.
    pub auth_time: Option<DateTimeUtc>,
    /// The authentication context class reached.
    pub acr: Option<String>,
    /// The authentication methods, space-separated.
    pub amr: Option<String>,
    /// The scope the user granted (at most `scope`).
    pub granted_scope: Option<String>,
    /// When the code was redeemed.
    pub redeemed_at: Option<DateTimeUtc>,
    /// The session (refresh family) the redemption started.
    pub family_id: Option<String>,
}

/// No navigable relations; the foreign key lives in the migration.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
