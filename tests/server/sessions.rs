//! Sessions: list, logout, revoke one, all, all but the current one — on
//! SQLite and PostgreSQL.

use std::{net::SocketAddr, time::Duration};

use crate::common::store::{Backend, Harness, Reply, harness, per_backend};
use entity::{refresh_token, revocation, token_family};
use http::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use tollgate::{AuthError, refresh::RefreshPolicy, revocation::RevokedBy};

async fn each(b: Backend, test: impl AsyncFn(Harness)) {
    test(harness(b, RefreshPolicy::default()).await).await;
}

/// alice logs in on `web` from a device.
async fn login_from(h: &Harness, ip: &str, user_agent: &str) -> Reply {
    let peer = SocketAddr::new(ip.parse().unwrap(), 4000);
    let r = h
        .post_from(
            &format!(
                "grant_type=password&username=alice&password=wonderland&{}",
                h.web_auth()
            ),
            &[("user-agent", user_agent)],
            Some(peer),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
    r
}

fn sid(h: &Harness, r: &Reply) -> String {
    h.gate.verify(&r.access_token()).unwrap().sid.unwrap()
}

per_backend! {
    #[tokio::test]
    async fn sessions_are_listed_with_their_device_and_the_current_one_marked(b) {
        each(b, async |h| {
            let phone = login_from(&h, "203.0.113.7", "Phone/1.0").await;
            h.clock.advance(Duration::from_secs(5));
            let laptop = login_from(&h, "2001:db8::1", "Laptop/2.0").await;
            let sessions = h.issuer.sessions();
            let list = sessions
                .list("alice", Some(&sid(&h, &laptop)))
                .await
                .unwrap();
            assert_eq!(list.len(), 2, "{}", h.backend);
            // Most recently used first.
            assert_eq!(list[0].sid, sid(&h, &laptop));
            assert!(list[0].current && !list[1].current);
            assert_eq!(list[0].last_ip.as_deref(), Some("2001:db8::1"));
            assert_eq!(list[0].last_user_agent.as_deref(), Some("Laptop/2.0"));
            assert_eq!(list[1].last_ip.as_deref(), Some("203.0.113.7"));
            assert_eq!(list[1].client_id, "web");
            assert!(list[0].created_at > list[1].created_at);
            assert!(list[0].expires_at > list[0].last_used_at);
            let json = serde_json::to_value(&list[0]).unwrap();
            assert!(json["created_at"].is_u64(), "{json}");

            // A refresh from the phone moves its "last used".
            h.clock.advance(Duration::from_secs(5));
            let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
            let r = h
                .post_from(
                    &format!(
                        "grant_type=refresh_token&refresh_token={}&{}",
                        phone.refresh_token(),
                        h.web_auth()
                    ),
                    &[("user-agent", "Phone/1.1")],
                    Some(peer),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            let list = sessions.list("alice", None).await.unwrap();
            assert_eq!(list[0].sid, sid(&h, &phone));
            assert_eq!(list[0].last_ip.as_deref(), Some("203.0.113.9"));
            assert_eq!(list[0].last_user_agent.as_deref(), Some("Phone/1.1"));
            assert!(sessions.list("bob", None).await.unwrap().is_empty());

            // Sessions past their absolute end are not listed.
            h.clock.advance(Duration::from_secs(91 * 86_400));
            assert!(sessions.list("alice", None).await.unwrap().is_empty());
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn logout_ends_the_current_session_and_every_access_token_of_it(b) {
        each(b, async |h| {
            let first = h.login().await;
            let next = h.refresh(&first.refresh_token()).await;
            let other = h.login().await;
            let claims = h.gate.verify(&next.access_token()).unwrap();

            assert!(h.issuer.sessions().logout(&claims).await.unwrap());
            for a in [first.access_token(), next.access_token()] {
                assert_eq!(
                    h.gate.verify(&a).unwrap_err(),
                    AuthError::Revoked(RevokedBy::Session),
                    "{}",
                    h.backend
                );
            }
            assert_eq!(
                h.refresh(&next.refresh_token()).await.error(),
                "invalid_grant"
            );
            assert!(h.accepts(&other.access_token()));
            assert_eq!(
                h.issuer.sessions().list("alice", None).await.unwrap().len(),
                1
            );
            // Logging out twice is harmless.
            assert!(!h.issuer.sessions().logout(&claims).await.unwrap());

            // Audit: nothing was deleted.
            assert_eq!(token_family::Entity::find().count(&h.db).await.unwrap(), 2);
            assert_eq!(refresh_token::Entity::find().count(&h.db).await.unwrap(), 3);
            let fam = token_family::Entity::find_by_id(claims.sid.clone().unwrap())
                .one(&h.db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(fam.revoked_reason.as_deref(), Some("logout"));
            assert!(fam.revoked_at.is_some());
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn logout_of_a_sessionless_token_revokes_that_token(b) {
        each(b, async |h| {
            let r = h
                .post(&format!("grant_type=client_credentials&{}", h.svc_auth()))
                .await;
            let claims = h.gate.verify(&r.access_token()).unwrap();
            assert!(claims.sid.is_none());
            assert!(h.issuer.sessions().logout(&claims).await.unwrap());
            assert_eq!(
                h.gate.verify(&r.access_token()).unwrap_err(),
                AuthError::Revoked(RevokedBy::Token)
            );
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn revoke_one_session_only_for_its_owner(b) {
        each(b, async |h| {
            let phone = h.login().await;
            let laptop = h.login().await;
            let sessions = h.issuer.sessions();
            // Not bob's to end, and unknown ids change nothing.
            assert!(!sessions.revoke("bob", &sid(&h, &phone)).await.unwrap());
            assert!(!sessions.revoke("alice", "no-such-session").await.unwrap());
            assert!(h.accepts(&phone.access_token()));
            assert_eq!(revocation::Entity::find().count(&h.db).await.unwrap(), 0);

            assert!(sessions.revoke("alice", &sid(&h, &phone)).await.unwrap());
            assert!(!h.accepts(&phone.access_token()));
            assert!(h.accepts(&laptop.access_token()));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn revoke_all_but_the_current_session(b) {
        each(b, async |h| {
            let current = h.login().await;
            let others = [h.login().await, h.login().await, h.login().await];
            let n = h
                .issuer
                .sessions()
                .revoke_others("alice", &sid(&h, &current))
                .await
                .unwrap();
            assert_eq!(n, 3, "{}", h.backend);
            assert!(h.accepts(&current.access_token()));
            assert_eq!(
                h.refresh(&current.refresh_token()).await.status,
                StatusCode::OK
            );
            for o in &others {
                assert_eq!(
                    h.gate.verify(&o.access_token()).unwrap_err(),
                    AuthError::Revoked(RevokedBy::Session)
                );
                assert_eq!(h.refresh(&o.refresh_token()).await.error(), "invalid_grant");
            }
            let list = h.issuer.sessions().list("alice", None).await.unwrap();
            assert_eq!(list.len(), 1);
            // One deny-list row per revoked session, persisted.
            assert_eq!(revocation::Entity::find().count(&h.db).await.unwrap(), 3);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn logout_everywhere_revokes_every_session_and_token_of_the_user(b) {
        each(b, async |h| {
            let a = h.login().await;
            let b = h.login().await;
            let spa = h
                .post("grant_type=password&username=alice&password=wonderland&client_id=spa")
                .await;
            let svc = h
                .post(&format!("grant_type=client_credentials&{}", h.svc_auth()))
                .await;
            let n = h.issuer.sessions().revoke_all("alice").await.unwrap();
            assert_eq!(n, 3, "{}", h.backend);
            for t in [&a, &b, &spa] {
                assert_eq!(
                    h.gate.verify(&t.access_token()).unwrap_err(),
                    AuthError::Revoked(RevokedBy::Subject),
                    "{}",
                    h.backend
                );
            }
            // Someone else's token is untouched.
            assert!(h.accepts(&svc.access_token()));
            assert!(
                h.issuer
                    .sessions()
                    .list("alice", None)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let rows = revocation::Entity::find().all(&h.db).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(
                (rows[0].kind.as_str(), rows[0].target.as_str()),
                ("subject", "alice")
            );
            assert_eq!(
                token_family::Entity::find().count(&h.db).await.unwrap(),
                3,
                "revoked, not deleted"
            );
        })
        .await;
    }
}

per_backend! {
    /// Two tenants' users of one id are two users: their tokens say their
    /// tenant, one's sessions are never listed or ended through the
    /// other's, and one logging out everywhere leaves the other signed in,
    /// in this process and in another that warms its deny list from the
    /// store.
    #[tokio::test]
    async fn tenants_keep_users_of_one_id_apart(b) {
        each(b, async |h| {
            let meta = |t: &str| tollgate::issuer::RequestContext {
                tenant: Some(t.to_owned()),
                ..Default::default()
            };
            let a = h.issuer.issue("alice", "web", None, &meta("acme")).await.unwrap();
            let g = h.issuer.issue("alice", "web", None, &meta("globex")).await.unwrap();
            let acme_claims = h.gate.verify(&a.access_token).unwrap();
            assert_eq!(acme_claims.tenant.as_deref(), Some("acme"), "{}", h.backend);
            let acme = h.issuer.sessions().in_tenant(Some("acme"));
            let globex = h.issuer.sessions().in_tenant(Some("globex"));
            assert_eq!(acme.list("alice", None).await.unwrap().len(), 1);
            assert!(h.issuer.sessions().list("alice", None).await.unwrap().is_empty());
            let globex_sid = globex.list("alice", None).await.unwrap()[0].sid.clone();
            assert!(!acme.revoke("alice", &globex_sid).await.unwrap(), "{}", h.backend);

            assert_eq!(acme.revoke_all("alice").await.unwrap(), 1, "{}", h.backend);
            assert!(!h.accepts(&a.access_token));
            assert!(h.accepts(&g.access_token), "{}", h.backend);
            // globex's alice refreshes on; the new token keeps its tenant.
            let r = h.refresh(g.refresh_token.as_deref().unwrap()).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            let refreshed = h.gate.verify(&r.access_token()).unwrap();
            assert_eq!(refreshed.tenant.as_deref(), Some("globex"));
            assert_eq!(h.refresh(a.refresh_token.as_deref().unwrap()).await.error(), "invalid_grant");

            // Another instance, warmed from the store, denies acme's alice
            // by the subject row alone (no sid), and not globex's.
            let other = tollgate::RevocationCache::builder().clock(h.clock.clone()).build();
            tollgate::RevocationSync::builder(h.db.clone(), other.clone())
                .build()
                .sync()
                .await
                .unwrap();
            let subject_only = |c: &tollgate::AccessClaims| other.check(c.jti.as_deref(), None, c.subject(), c.iat);
            assert_eq!(subject_only(&acme_claims), Some(RevokedBy::Subject), "{}", h.backend);
            assert_eq!(subject_only(&refreshed), None, "{}", h.backend);
            let untenanted = tollgate::AccessClaims { tenant: None, ..acme_claims.clone() };
            assert_eq!(subject_only(&untenanted), None, "{}", h.backend);
        })
        .await;
    }
}
