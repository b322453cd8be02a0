//! Client administration (`ClientAdmin`): update, secret rotation with an
//! overlap, disable (its sessions and tokens end through the revocation
//! path), enable, delete, list — and logins racing a disable — on SQLite,
//! PostgreSQL and MariaDB.

use std::time::Duration;

use crate::common::store::{Backend, Harness, harness, per_backend};
use entity::token_family;
use http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tollgate::{StoreError, refresh::RefreshPolicy, store::clients::NewClient};

async fn each(b: Backend, test: impl AsyncFn(Harness)) {
    test(harness(b, RefreshPolicy::default()).await).await;
}

/// `web` as the harness registers it.
fn web() -> NewClient {
    let mut web = NewClient::confidential("web", "read write");
    web.allow_password = true;
    web
}

async fn client_credentials(h: &Harness, secret: &str) -> StatusCode {
    h.post(&format!(
        "grant_type=client_credentials&client_id=svc&client_secret={secret}"
    ))
    .await
    .status
}

per_backend! {
    #[tokio::test]
    async fn an_update_changes_what_new_requests_get_and_keeps_the_secret(b) {
        each(b, async |h| {
            let admin = h.issuer.clients();
            let mut narrower = web();
            narrower.scope = "read".into();
            assert!(admin.update(narrower).await.unwrap(), "{}", h.backend);
            let login = h
                .post(&format!(
                    "grant_type=password&username=alice&password=wonderland&scope=write&{}",
                    h.web_auth()
                ))
                .await;
            // The client row is read afresh (the endpoint has not cached it).
            assert_eq!(login.status, StatusCode::BAD_REQUEST, "{}", login.raw);
            assert_eq!(login.error(), "invalid_scope");
            let login = h.login().await;
            assert_eq!(login.json["scope"], "read", "{}", h.backend);

            // The type cannot change, and an unknown client is no update.
            let mut public = web();
            public.confidential = false;
            assert!(matches!(admin.update(public).await, Err(StoreError::Invalid(_))));
            let mut nobody = web();
            nobody.client_id = "nobody".into();
            assert!(!admin.update(nobody).await.unwrap());
            let ids: Vec<String> = admin
                .list()
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.client_id)
                .collect();
            assert_eq!(ids, ["spa", "svc", "web"], "{}", h.backend);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn a_rotated_secret_overlaps_with_the_old_one_then_replaces_it(b) {
        each(b, async |h| {
            let admin = h.issuer.clients();
            let new = admin
                .rotate_secret("svc", Duration::from_secs(3600))
                .await
                .unwrap()
                .unwrap();
            assert_ne!(new, h.svc_secret);
            assert_eq!(client_credentials(&h, &h.svc_secret).await, StatusCode::OK);
            assert_eq!(client_credentials(&h, &new).await, StatusCode::OK);
            assert_eq!(client_credentials(&h, "guess").await, StatusCode::UNAUTHORIZED);
            h.clock.advance(Duration::from_secs(3601));
            assert_eq!(
                client_credentials(&h, &h.svc_secret).await,
                StatusCode::UNAUTHORIZED,
                "{}: the old secret outlived its overlap",
                h.backend
            );
            assert_eq!(client_credentials(&h, &new).await, StatusCode::OK);
            // Public clients have no secret to rotate.
            assert!(admin.rotate_secret("spa", Duration::ZERO).await.unwrap().is_none());
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn disabling_a_client_ends_its_sessions_and_tokens_and_its_logins(b) {
        each(b, async |h| {
            let login = h.login().await;
            let access = login.access_token();
            let refresh = login.refresh_token();
            let svc = h
                .post(&format!("grant_type=client_credentials&{}", h.svc_auth()))
                .await
                .access_token();
            assert!(h.accepts(&access) && h.accepts(&svc));

            let admin = h.issuer.clients();
            assert_eq!(admin.disable("web").await.unwrap(), Some(1), "{}", h.backend);
            assert_eq!(admin.disable("svc").await.unwrap(), Some(0));
            // At once, in this instance's deny list.
            assert!(!h.accepts(&access), "{}: the session's token", h.backend);
            assert!(!h.accepts(&svc), "{}: the client's own token", h.backend);
            let r = h.refresh(&refresh).await;
            assert_eq!(r.error(), "invalid_grant", "{}: {}", h.backend, r.raw);
            // The endpoint still holds the client row it cached: the store
            // refuses the session all the same.
            let again = h
                .post(&format!(
                    "grant_type=password&username=alice&password=wonderland&{}",
                    h.web_auth()
                ))
                .await;
            assert_eq!(again.error(), "invalid_client", "{}: {}", h.backend, again.raw);
            let ctx = tollgate::RequestContext {
                user_agent: Some("app".into()),
                ..Default::default()
            };
            let own_login = h.issuer.issue("alice", "web", Some("read"), &ctx).await;
            assert!(matches!(own_login, Err(tollgate::IssueError::UnknownClient)));
            assert!(admin.find("web").await.unwrap().unwrap().disabled);
            // Idempotent; unknown clients are no error.
            assert_eq!(admin.disable("web").await.unwrap(), Some(0));
            assert_eq!(admin.disable("nobody").await.unwrap(), None);

            // Enabled again, it logs in afresh; the old session stays dead.
            assert!(admin.enable("web").await.unwrap());
            let fresh = h
                .issuer
                .issue("alice", "web", Some("read"), &ctx)
                .await
                .unwrap();
            assert!(h.accepts(&fresh.access_token));
            assert!(!h.accepts(&access));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn a_deleted_client_leaves_no_rows_and_its_tokens_stay_denied(b) {
        each(b, async |h| {
            let first = h.login().await;
            h.login().await;
            let admin = h.issuer.clients();
            assert!(admin.delete("web").await.unwrap(), "{}", h.backend);
            assert!(admin.find("web").await.unwrap().is_none());
            let left = token_family::Entity::find()
                .filter(token_family::Column::ClientId.eq("web"))
                .count(&h.db)
                .await
                .unwrap();
            assert_eq!(left, 0, "{}", h.backend);
            assert!(!h.accepts(&first.access_token()));
            assert!(!admin.delete("web").await.unwrap());
            // The id is free again.
            assert!(admin.register(web()).await.unwrap().is_some());
        })
        .await;
    }
}

per_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_login_racing_a_disable_outlives_it(b) {
        each(b, async |h| {
            let ctx = tollgate::RequestContext::default();
            let logins: Vec<_> = (0..24)
                .map(|_| {
                    let issuer = h.issuer.clone();
                    let ctx = ctx.clone();
                    tokio::spawn(async move { issuer.issue("alice", "web", None, &ctx).await })
                })
                .collect();
            let admin = h.issuer.clients();
            let disable = tokio::spawn(async move { admin.disable("web").await });
            let mut issued = Vec::new();
            for login in logins {
                match login.await.unwrap() {
                    Ok(tokens) => issued.push(tokens),
                    Err(tollgate::IssueError::UnknownClient) => {}
                    Err(e) => panic!("{}: {e}", h.backend),
                }
            }
            disable.await.unwrap().unwrap().unwrap();
            // Whichever side each login was on, none is alive now.
            let live = token_family::Entity::find()
                .filter(token_family::Column::ClientId.eq("web"))
                .filter(token_family::Column::RevokedAt.is_null())
                .count(&h.db)
                .await
                .unwrap();
            assert_eq!(live, 0, "{}: a session outlived the disable", h.backend);
            for tokens in &issued {
                assert!(!h.accepts(&tokens.access_token), "{}", h.backend);
            }
        })
        .await;
    }
}
