//! Refresh-token rows: the columns every new token shares, the device
//! data as stored, and the lookup by hash that `/revoke` and `/introspect`
//! use.

use std::{net::IpAddr, time::SystemTime};

use chrono::{DateTime, Utc};
use entity::{refresh_token, token_family};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{StoreError, system_time};
use crate::{
    audience,
    binding::{canonical, truncate_user_agent},
    refresh::{SessionState, TokenState},
};

/// The columns every new refresh token shares: issued now, never used,
/// consumed or revoked.
pub(super) fn unused_token(now: DateTime<Utc>) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        issued_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        last_used_at: Set(None),
        consumed_at: Set(None),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        ..Default::default()
    }
}

/// The client IP and User-Agent as stored.
pub(super) fn device(
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> (Option<String>, Option<String>) {
    (
        ip.map(|ip| canonical(ip).to_string()),
        user_agent.map(|ua| truncate_user_agent(ua).to_owned()),
    )
}

/// A stored refresh token and its family, as `/revoke` and `/introspect`
/// see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredToken {
    /// The session id (`sid`).
    pub(crate) sid: String,
    /// The subject.
    pub(crate) user_id: String,
    /// Scope of the refresh token.
    pub(crate) scope: String,
    /// When this token was issued.
    pub(crate) issued_at: SystemTime,
    /// The token's state (client, expiry, consumed, revoked).
    pub(crate) token: TokenState,
    /// Its session's state.
    pub(crate) session: SessionState,
}

/// Looks a refresh token up by its SHA-256.
pub(crate) async fn find(
    db: &impl ConnectionTrait,
    token_hash: [u8; 32],
) -> Result<Option<StoredToken>, StoreError> {
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let family = token_family::Entity::find_by_id(token.family_id.clone())
        .one(db)
        .await?;
    Ok(family.map(|family| StoredToken {
        sid: family.id.clone(),
        user_id: token.user_id.clone(),
        scope: token.scope.clone(),
        issued_at: system_time(token.issued_at),
        token: token_state(&token),
        session: session_state(&family),
    }))
}

pub(super) fn token_state(t: &refresh_token::Model) -> TokenState {
    TokenState {
        generation: t.generation,
        consumed_at: t.consumed_at.map(system_time),
        revoked: t.revoked_at.is_some(),
        expires_at: system_time(t.expires_at),
        client_id: t.client_id.clone(),
        client_ip: t.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
        user_agent: t.user_agent.clone(),
    }
}

pub(super) fn session_state(f: &token_family::Model) -> SessionState {
    SessionState {
        generation: f.generation,
        revoked: f.revoked_at.is_some(),
        expires_at: system_time(f.expires_at),
        scope: f.scope.clone(),
        resources: audience::split(f.resources.as_deref()),
        dpop_jkt: f.dpop_jkt.clone(),
    }
}
