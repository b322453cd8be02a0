//! `/revoke` (RFC 7009), and reading the `token` parameter that it and
//! `/introspect` share.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;

use super::{
    TokenError,
    client_auth::unavailable,
    cookie::{RefreshCookie, body_or_cookie},
    pipeline::{Answer, BoxError, Incoming, Inner},
    response::empty,
};
use crate::{
    claims::AccessClaims,
    revocation::RevokedReason,
    secret::hash_token,
    store::{StoreError, clients::Client, refresh_tokens},
};

/// Whether a token is one of our access tokens rather than a refresh
/// token. The two cannot be confused: a JWS compact serialization has two
/// dots, a refresh token (base64url) none. So `token_type_hint` can only
/// change the order of lookups, never the answer, and is not consulted.
pub(super) fn is_jwt(token: &str) -> bool {
    token.contains('.')
}

/// A request to `/revoke` or `/introspect`, read and its client
/// authenticated.
pub(super) struct AboutToken<'a> {
    pub(super) client: Arc<Client>,
    /// The `token` parameter, or a browser client's refresh cookie.
    pub(super) token: String,
    /// The client's refresh cookie, when it is a browser client.
    pub(super) cookie: Option<&'a RefreshCookie>,
}

/// Reads the request and authenticates the client; finds the token in
/// the `token` parameter or, for a browser client, its cookie (never
/// both).
pub(super) async fn token_request<B>(
    inner: &Inner,
    req: Request<B>,
) -> Result<AboutToken<'_>, TokenError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let Incoming {
        form,
        basic,
        meta,
        headers,
    } = inner.read(req).await?;
    let client = inner.client(basic, &form, &meta).await?;
    let cookie = inner.admit(&client, &headers, &meta)?;
    let from_cookie = cookie.map(|c| c.read(&headers)).transpose()?.flatten();
    let token = body_or_cookie(
        form.get("token"),
        from_cookie.as_deref(),
        "The token parameter is missing",
    )?
    .to_owned();
    Ok(AboutToken {
        client,
        token,
        cookie,
    })
}

/// The claims of one of our access tokens that is valid now, if `token`
/// is one.
pub(super) fn verified_access_token(inner: &Inner, token: &str) -> Option<AccessClaims> {
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

impl Answer for RevocationEndpoint {
    const NAME: &'static str = "RevocationEndpoint";

    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let AboutToken {
            client,
            token,
            cookie,
        } = token_request(&self.inner, req).await?;
        let revoked = self
            .revoke(Some(&client.client_id), &token)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::debug!(revoked, "revocation request handled");
        // RFC 7009 §2.2: 200, and the body is ignored.
        let mut response = empty(http::StatusCode::OK);
        // Logging a browser out ends its cookie too, whether or not the
        // session still existed.
        if let Some(cookie) = cookie.filter(|_| !is_jwt(&token)) {
            response
                .headers_mut()
                .insert(http::header::SET_COOKIE, cookie.clear());
        }
        Ok(response)
    }

    fn realm(&self) -> &str {
        &self.inner.realm
    }
}

impl RevocationEndpoint {
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
        let claims_owned = |owner: Option<&str>| client_id.is_none_or(|c| Some(c) == owner);
        let sessions = issuer.sessions();
        if is_jwt(token) {
            return match verified_access_token(&self.inner, token) {
                Some(claims) if claims_owned(claims.client_id.as_deref()) => {
                    sessions
                        .revoke_access_token(&claims, RevokedReason::Logout)
                        .await
                }
                _ => Ok(false),
            };
        }
        match refresh_tokens::find(issuer.db(), hash_token(token)).await? {
            // Any token of the family, consumed or not, ends the session: a
            // client logging out may hold a predecessor after a lost
            // response.
            Some(stored)
                if owned_by_caller(&stored.token.client_id)
                    && stored.session.expires_at > issuer.now() =>
            {
                sessions
                    .revoke_session(&stored.sid, RevokedReason::Logout)
                    .await
            }
            _ => Ok(false),
        }
    }
}

super::pipeline::endpoint_service!(RevocationEndpoint: respond);
