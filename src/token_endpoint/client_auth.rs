//! Client authentication (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, and public clients by `client_id` alone.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD};
use entity::client;
use http::{HeaderMap, header};
use sea_orm::DatabaseConnection;

use super::{TokenError, form::Form, form::decode_component};
use crate::store::{self, clients};

/// Client lookups, kept briefly so a token request does not read the client
/// row every time. "No such client" is cached too: otherwise a known id
/// would be answered from memory and an unknown one from the database, and
/// the timing would tell them apart. Losing an entry only costs a read, so
/// the cache is bounded; a changed, added or removed client applies within
/// its TTL.
pub(crate) type ClientCache = moka::sync::Cache<String, Option<Arc<client::Model>>>;

/// Credentials as presented. No `Debug`: it holds the secret.
pub(crate) struct Presented {
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
    /// HTTP Basic was used (so a failure answers with a Basic challenge).
    pub(crate) basic: bool,
}

/// Longest client id or secret accepted.
const MAX_CREDENTIAL_LEN: usize = 512;

/// The `Authorization: Basic` credentials, if that scheme is used. The id
/// and secret are form-urlencoded inside the Basic value (§2.3.1).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<Presented>, TokenError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = TokenError::InvalidClient { basic: true };
    if values.next().is_some() {
        return Err(TokenError::InvalidRequest(
            "More than one Authorization header",
        ));
    }
    let value = value.to_str().map_err(|_| bad.clone())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad);
    };
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(TokenError::InvalidRequest(
            "The token endpoint accepts Basic client authentication only",
        ));
    }
    let rest = rest.trim();
    if rest.len() > 2 * MAX_CREDENTIAL_LEN {
        return Err(bad);
    }
    let decoded = STANDARD.decode(rest).map_err(|_| bad.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| bad.clone())?;
    let (id, secret) = text.split_once(':').ok_or(bad.clone())?;
    let id = decode_component(id).ok_or(bad.clone())?;
    let secret = decode_component(secret).ok_or(bad.clone())?;
    if id.is_empty() {
        return Err(bad);
    }
    Ok(Some(Presented {
        client_id: id,
        secret: Some(secret),
        basic: true,
    }))
}

/// Who is calling, from Basic or the body; two methods at once are
/// `invalid_request`.
pub(crate) fn presented(basic: Option<Presented>, form: &Form) -> Result<Presented, TokenError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let p = match basic {
        Some(basic) => {
            if body_secret.is_some() {
                return Err(TokenError::InvalidRequest(
                    "The client used more than one authentication method",
                ));
            }
            if body_id.is_some_and(|id| id != basic.client_id) {
                return Err(TokenError::InvalidRequest(
                    "client_id differs from the authenticated client",
                ));
            }
            basic
        }
        None => Presented {
            client_id: body_id
                .ok_or(TokenError::InvalidClient { basic: false })?
                .to_owned(),
            secret: body_secret.map(str::to_owned),
            basic: false,
        },
    };
    if p.client_id.len() > MAX_CREDENTIAL_LEN
        || p.secret
            .as_ref()
            .is_some_and(|s| s.len() > MAX_CREDENTIAL_LEN)
    {
        return Err(TokenError::InvalidClient { basic: p.basic });
    }
    Ok(p)
}

/// Looks the client up and checks its secret in constant time. An unknown
/// client costs the same hash and comparison as a wrong secret, and gets
/// the same answer.
pub(crate) async fn authenticate(
    db: &DatabaseConnection,
    cache: &ClientCache,
    p: &Presented,
) -> Result<Arc<client::Model>, TokenError> {
    let failed = TokenError::InvalidClient { basic: p.basic };
    let found = match cache.get(&p.client_id) {
        Some(cached) => cached,
        None => {
            let found = store::clients::find(db, &p.client_id)
                .await
                .map_err(|e| unavailable(&e))?
                .map(Arc::new);
            cache.insert(p.client_id.clone(), found.clone());
            found
        }
    };
    match found {
        Some(client) if clients::secret_matches(&client, p.secret.as_deref()) => Ok(client),
        Some(_) => Err(failed),
        None => {
            clients::dummy_secret_check(p.secret.as_deref());
            Err(failed)
        }
    }
}

pub(crate) fn unavailable(e: &store::StoreError) -> TokenError {
    tracing::error!(error = %e, source = ?std::error::Error::source(e), "store failure at the token endpoint");
    TokenError::Unavailable
}
