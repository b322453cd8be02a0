//! The quickstart's own routes: the claims, logout, the session list, and
//! a health check.

use axum::{
    Json,
    extract::{Path as UrlPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use sea_orm::DatabaseConnection;
use tollgate::{
    AccessClaims,
    sessions::Sessions,
    store::{self},
    token_endpoint::{Authorizer, TokenEndpoint},
};

/// What the session routes need: the sessions, and the endpoint that
/// knows the browser client's refresh cookie.
#[derive(Clone)]
pub(crate) struct Auth {
    pub(crate) sessions: Sessions,
    pub(crate) endpoint: TokenEndpoint,
    /// The consents users remembered on the consent page.
    pub(crate) authorizer: Authorizer,
}

impl Auth {
    /// A `Set-Cookie` that clears the refresh cookie of `claims`' client,
    /// when it is a browser client: its session just ended.
    fn clear_cookie(&self, claims: &AccessClaims) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(clear) = claims
            .client_id
            .as_deref()
            .and_then(|client| self.endpoint.clear_refresh_cookie(client))
        {
            headers.insert(header::SET_COOKIE, clear);
        }
        headers
    }
}

pub(crate) async fn me(claims: AccessClaims) -> Json<AccessClaims> {
    Json(claims)
}

/// Maps a store failure to 503: the client may retry.
pub(crate) fn unavailable(e: &store::StoreError) -> StatusCode {
    eprintln!("store failure: {e}");
    StatusCode::SERVICE_UNAVAILABLE
}

pub(crate) async fn logout(
    State(auth): State<Auth>,
    claims: AccessClaims,
) -> Result<impl IntoResponse, StatusCode> {
    auth.sessions
        .logout(&claims)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok((StatusCode::NO_CONTENT, auth.clear_cookie(&claims)))
}

pub(crate) async fn list_sessions(
    State(auth): State<Auth>,
    claims: AccessClaims,
) -> Result<impl IntoResponse, StatusCode> {
    let list = auth
        .sessions
        .list(&claims.sub, claims.sid.as_deref())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(list))
}

/// `DELETE /sessions/{id}`: one session; the current one clears the
/// cookie too.
pub(crate) async fn revoke_session(
    State(auth): State<Auth>,
    claims: AccessClaims,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, StatusCode> {
    match auth.sessions.revoke(&claims.sub, &id).await {
        Ok(true) if claims.sid.as_deref() == Some(id.as_str()) => {
            Ok((StatusCode::NO_CONTENT, auth.clear_cookie(&claims)))
        }
        Ok(true) => Ok((StatusCode::NO_CONTENT, HeaderMap::new())),
        Ok(false) => Err(StatusCode::NOT_FOUND),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `DELETE /sessions`: every session but the current one; with `?all=true`
/// every session, the current one included (logout everywhere).
pub(crate) async fn revoke_sessions(
    State(auth): State<Auth>,
    claims: AccessClaims,
    req: Request,
) -> Result<impl IntoResponse, StatusCode> {
    let all = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "all=true"));
    let (revoked, headers) = match (&claims.sid, all) {
        (Some(current), false) => (
            auth.sessions.revoke_others(&claims.sub, current).await,
            HeaderMap::new(),
        ),
        _ => (
            auth.sessions.revoke_all(&claims.sub).await,
            auth.clear_cookie(&claims),
        ),
    };
    let revoked = revoked.map_err(|e| unavailable(&e))?;
    Ok((headers, Json(serde_json::json!({ "revoked": revoked }))))
}

/// `GET /consents`: the apps the user allowed and asked to remember.
pub(crate) async fn list_consents(
    State(auth): State<Auth>,
    claims: AccessClaims,
) -> Result<impl IntoResponse, StatusCode> {
    let consents = auth
        .authorizer
        .consents(&claims.sub)
        .await
        .map_err(|e| unavailable(&e))?;
    let list: Vec<_> = consents
        .into_iter()
        .map(|c| {
            serde_json::json!({
                "client_id": c.client_id,
                "scopes": c.scopes,
                "redirect_uri": c.redirect_uri,
            })
        })
        .collect();
    Ok(Json(list))
}

/// `DELETE /consents/{client_id}`: forgets it, and ends the user's
/// sessions with that app.
pub(crate) async fn revoke_consent(
    State(auth): State<Auth>,
    claims: AccessClaims,
    UrlPath(client_id): UrlPath<String>,
) -> Result<impl IntoResponse, StatusCode> {
    match auth
        .authorizer
        .revoke_consent(&claims.sub, &client_id)
        .await
    {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(StatusCode::NOT_FOUND),
        Err(e) => Err(unavailable(&e)),
    }
}

pub(crate) async fn healthz(db: DatabaseConnection) -> StatusCode {
    match db.ping().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
