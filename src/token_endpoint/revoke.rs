//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use std::{fmt, sync::Arc};

use bytes::Bytes;
use entity::client;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde::Serialize;

use super::{
    TokenError,
    client_auth::unavailable,
    response::json,
    service::{BoxError, Incoming, Inner, endpoint_service, ok_json},
};
use crate::{
    claims::AccessClaims,
    refresh::{RevokedReason, hash_token, is_live},
    store::{StoreError, families},
    time::unix_secs,
};

/// Whether a token is one of our access tokens rather than a refresh
/// token. The two cannot be confused: a JWS compact serialization has two
/// dots, a refresh token (base64url) none. So `token_type_hint` can only
/// change the order of lookups, never the answer, and is not consulted.
fn is_jwt(token: &str) -> bool {
    token.contains('.')
}

/// Reads the request and authenticates the client; returns the `token`
/// parameter.
async fn token_request<B>(
    inner: &Inner,
    req: Request<B>,
) -> Result<(Arc<client::Model>, String), TokenError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let Incoming { form, basic, meta } = inner.read(req).await?;
    let client = inner.client(basic, &form, &meta).await?;
    let token = form.require("token", "The token parameter is missing")?;
    Ok((client, token.to_owned()))
}

/// The claims of one of our access tokens that is valid now, if `token`
/// is one.
fn verified_access_token(inner: &Inner, token: &str) -> Option<AccessClaims> {
    inner.access_tokens.verify(token).ok()
}

/// `/revoke` (RFC 7009), from [`TokenEndpoint::revocation`](super::TokenEndpoint::revocation).
///
/// Clients authenticate as at `/token`. A refresh token revokes its whole
/// session (the family, reason `logout`, and the session's `sid` on the
/// deny list, so its access tokens die too); an access token has its `jti`
/// denied until it expires. A token that is unknown, expired, or was
/// issued to another client is answered 200 like any other and changes
/// nothing, so the endpoint tells nobody which tokens exist.
#[derive(Clone)]
pub struct RevocationEndpoint {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for RevocationEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpoint").finish_non_exhaustive()
    }
}

impl RevocationEndpoint {
    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (client, token) = token_request(&self.inner, req).await?;
        let revoked = self
            .revoke(Some(&client.client_id), &token)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::debug!(revoked, "revocation request handled");
        // RFC 7009 §2.2: 200, and the body is ignored.
        Ok(json(http::StatusCode::OK, Vec::new()))
    }

    /// Revokes `token` as this endpoint does, on behalf of `client_id`
    /// (`None`: whichever client it was issued to). Returns whether
    /// anything was revoked now.
    pub(crate) async fn revoke(
        &self,
        client_id: Option<&str>,
        token: &str,
    ) -> Result<bool, StoreError> {
        let issuer = &self.inner.issuer;
        let owned_by_caller = |owner: &str| client_id.is_none_or(|c| c == owner);
        let sessions = issuer.sessions();
        if is_jwt(token) {
            return match verified_access_token(&self.inner, token) {
                Some(claims) if owned_by_caller(&claims.client_id) => {
                    sessions
                        .revoke_access_token(&claims, RevokedReason::Logout)
                        .await
                }
                _ => Ok(false),
            };
        }
        match families::find_token(issuer.db(), hash_token(token)).await? {
            // Any token of the family, consumed or not, ends the session: a
            // client logging out may hold a predecessor after a lost
            // response.
            Some(stored)
                if owned_by_caller(&stored.token.client_id)
                    && stored.family.expires_at > issuer.now() =>
            {
                sessions
                    .revoke_as(&stored.family_id, RevokedReason::Logout)
                    .await
            }
            _ => Ok(false),
        }
    }
}

endpoint_service!(RevocationEndpoint);

/// An RFC 7662 §2.2 answer. Inactive tokens get `{"active":false}` and
/// nothing else.
#[derive(Debug, Default, Serialize)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// `/introspect` (RFC 7662), from [`TokenEndpoint::introspection`](super::TokenEndpoint::introspection).
///
/// Only confidential clients may call it (a public client is
/// `invalid_client`). An access token is active when the gate would accept
/// it now — signature, `iss`, `aud`, expiry and this process's deny list
/// (keep that in step with [`RevocationSync`](crate::revocation::RevocationSync)).
/// A refresh token is active when it is unconsumed, unrevoked and
/// unexpired in a live session, and only to the client it was issued to.
/// Everything else is `{"active": false}` with no other field.
#[derive(Clone)]
pub struct IntrospectionEndpoint {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionEndpoint")
            .finish_non_exhaustive()
    }
}

impl IntrospectionEndpoint {
    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let (client, token) = token_request(inner, req).await?;
        if client.secret_hash.is_none() {
            // RFC 7662 §2.1: the caller must be authenticated; a public
            // client cannot be.
            return Err(TokenError::InvalidClient { basic: false });
        }
        let answer = if is_jwt(&token) {
            verified_access_token(inner, &token).map_or_else(Introspection::default, |c| {
                Introspection {
                    active: true,
                    scope: c.scope,
                    client_id: Some(c.client_id),
                    token_type: Some("Bearer"),
                    exp: Some(c.exp),
                    iat: Some(c.iat),
                    nbf: c.nbf,
                    sub: Some(c.sub),
                    aud: Some(c.aud),
                    iss: Some(c.iss),
                    jti: Some(c.jti),
                    sid: c.sid,
                }
            })
        } else {
            self.refresh_token(&client, &token)
                .await
                .map_err(|e| unavailable(&e))?
        };
        ok_json(&answer)
    }

    async fn refresh_token(
        &self,
        client: &client::Model,
        token: &str,
    ) -> Result<Introspection, StoreError> {
        let issuer = &self.inner.issuer;
        // Another client's refresh token is as good as unknown.
        let stored = families::find_token(issuer.db(), hash_token(token)).await?;
        let Some(stored) = stored.filter(|s| {
            s.token.client_id == client.client_id && is_live(&s.token, &s.family, issuer.now())
        }) else {
            return Ok(Introspection::default());
        };
        Ok(Introspection {
            active: true,
            scope: (!stored.scope.is_empty()).then_some(stored.scope),
            client_id: Some(stored.token.client_id),
            exp: Some(unix_secs(
                stored.token.expires_at.min(stored.family.expires_at),
            )),
            iat: Some(unix_secs(stored.issued_at)),
            sub: Some(stored.user_id),
            iss: Some(issuer.issuer().to_owned()),
            sid: Some(stored.family_id),
            ..Introspection::default()
        })
    }
}

endpoint_service!(IntrospectionEndpoint);
