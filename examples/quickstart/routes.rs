//! The quickstart's own routes: the claims, logout, the session list, and
//! a health check.

use axum::{
    Json,
    extract::{Path as UrlPath, Request},
    http::StatusCode,
    response::IntoResponse,
};
use sea_orm::DatabaseConnection;
use tollgate::{
    AccessClaims,
    sessions::Sessions,
    store::{self},
};

pub(crate) async fn me(claims: AccessClaims) -> Json<AccessClaims> {
    Json(claims)
}

/// Maps a store failure to 503: the client may retry.
pub(crate) fn unavailable(e: &store::StoreError) -> StatusCode {
    eprintln!("store failure: {e}");
    StatusCode::SERVICE_UNAVAILABLE
}

pub(crate) async fn logout(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
) -> Result<StatusCode, StatusCode> {
    sessions
        .logout(&claims)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_sessions(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
) -> Result<impl IntoResponse, StatusCode> {
    let list = sessions
        .list(&claims.sub, claims.sid.as_deref())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(list))
}

pub(crate) async fn revoke_session(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, StatusCode> {
    match sessions.revoke(&claims.sub, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(StatusCode::NOT_FOUND),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `DELETE /sessions`: every session but the current one; with `?all=true`
/// every session, the current one included (logout everywhere).
pub(crate) async fn revoke_sessions(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
    req: Request,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let all = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "all=true"));
    let revoked = match (&claims.sid, all) {
        (Some(current), false) => sessions.revoke_others(&claims.sub, current).await,
        _ => sessions.revoke_all(&claims.sub).await,
    }
    .map_err(|e| unavailable(&e))?;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

pub(crate) async fn healthz(db: DatabaseConnection) -> StatusCode {
    match db.ping().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
