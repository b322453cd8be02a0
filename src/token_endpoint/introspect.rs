//! `/introspect` (RFC 7662).

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde::Serialize;

use super::{
    TokenError,
    client_auth::unavailable,
    pipeline::{Answer, BoxError, Inner, ok_json},
    revoke::{AboutToken, is_jwt, token_request, verified_access_token},
};
use crate::{
    claims::Confirmation,
    refresh::is_live,
    secret::hash_token,
    store::{StoreError, clients::Client, refresh_tokens},
    time::unix_secs,
};

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
    /// The key a DPoP-bound access token is bound to (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// `/introspect` (RFC 7662), from [`TokenEndpoint::introspection`](super::TokenEndpoint::introspection).
///
/// Only confidential clients may call it (a public client is
/// `invalid_client`), and only those registered with
/// `allow_introspection` (the resource servers) may ask about access
/// tokens (another is `unauthorized_client`); any confidential client may
/// ask about its own refresh tokens. An access token is active when the gate would accept
/// it now — signature, `iss`, `aud`, expiry and this process's deny list
/// (keep that in step with [`RevocationSync`](crate::sync::RevocationSync)).
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

impl Answer for IntrospectionEndpoint {
    const NAME: &'static str = "IntrospectionEndpoint";

    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let AboutToken { client, token, .. } = token_request(inner, req).await?;
        if !client.is_confidential() {
            // RFC 7662 §2.1: the caller must be authenticated; a public
            // client cannot be.
            return Err(TokenError::InvalidClient { basic: false });
        }
        let answer = if is_jwt(&token) {
            if !client.allow_introspection {
                // RFC 7662 §2.1, §4: only the resource servers allowed to;
                // no client may probe the access tokens of others.
                return Err(TokenError::UnauthorizedClient(
                    "The client may not introspect access tokens",
                ));
            }
            verified_access_token(inner, &token).map_or_else(Introspection::default, |c| {
                Introspection {
                    active: true,
                    scope: c.scope,
                    client_id: c.client_id,
                    // RFC 9449 §6.2: a bound token says so, with its key.
                    token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }),
                    exp: Some(c.exp),
                    iat: c.iat,
                    nbf: c.nbf,
                    sub: Some(c.sub),
                    aud: Some(c.aud),
                    iss: Some(c.iss),
                    jti: c.jti,
                    sid: c.sid,
                    cnf: c.cnf,
                }
            })
        } else {
            self.refresh_token(&client, &token)
                .await
                .map_err(|e| unavailable(&e))?
        };
        ok_json(&answer)
    }

    fn realm(&self) -> &str {
        &self.inner.realm
    }
}

impl IntrospectionEndpoint {
    async fn refresh_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Introspection, StoreError> {
        let issuer = &self.inner.issuer;
        // Another client's refresh token is as good as unknown.
        let stored = refresh_tokens::find(issuer.db(), hash_token(token)).await?;
        let Some(stored) = stored.filter(|s| {
            s.token.client_id == client.client_id && is_live(&s.token, &s.session, issuer.now())
        }) else {
            return Ok(Introspection::default());
        };
        Ok(Introspection {
            active: true,
            scope: (!stored.scope.is_empty()).then_some(stored.scope),
            client_id: Some(stored.token.client_id),
            exp: Some(unix_secs(
                stored.token.expires_at.min(stored.session.expires_at),
            )),
            iat: Some(unix_secs(stored.issued_at)),
            sub: Some(stored.user_id),
            iss: Some(issuer.issuer().to_owned()),
            sid: Some(stored.sid),
            ..Introspection::default()
        })
    }
}

super::pipeline::endpoint_service!(IntrospectionEndpoint: respond);
