//! Refresh races with real concurrency: 32 tasks present the same refresh
//! token at once, round after round, on SQLite (memory and a WAL file with
//! several connections), PostgreSQL, MariaDB, and PostgreSQL with every
//! transaction SERIALIZABLE (how CockroachDB-like engines run: a racer's
//! conflict aborts with 40001 and is retried inside, never answered 503).

use std::{collections::HashSet, sync::Arc, time::Duration};

use crate::common::store::{Harness, harness, per_backend};
use entity::{refresh_token, token_family};
use http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tollgate::refresh::RefreshPolicy;

const RACERS: usize = 32;
const ROUNDS: usize = 10;

/// Fires `RACERS` refreshes of `token` at once; returns (status, body).
async fn race(h: &Arc<Harness>, token: &str) -> Vec<(StatusCode, serde_json::Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (h, token, barrier) = (Arc::clone(h), token.to_owned(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let r = h.refresh(&token).await;
                (r.status, r.json)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn family_of(
    h: &Harness,
    refresh_token: &str,
) -> (token_family::Model, Vec<refresh_token::Model>) {
    let hash = tollgate::secret::hash_token(refresh_token).to_vec();
    let t = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(&h.db)
        .await
        .unwrap()
        .unwrap();
    let f = token_family::Entity::find_by_id(t.family_id.clone())
        .one(&h.db)
        .await
        .unwrap()
        .unwrap();
    let all = refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.eq(t.family_id))
        .all(&h.db)
        .await
        .unwrap();
    (f, all)
}

per_backend! {
    serializable;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_refreshes_within_grace_never_fork_the_family(b) {
        let policy = RefreshPolicy {
            grace: Duration::from_secs(60),
            ..RefreshPolicy::default()
        };
        let h = Arc::new(harness(b, policy.clone()).await);
        let first = h.login().await.refresh_token();
        let mut current = first.clone();
        for round in 0..ROUNDS {
            let results = race(&h, &current).await;
            for (status, body) in &results {
                assert_eq!(
                    *status,
                    StatusCode::OK,
                    "{} round {round}: {body}",
                    h.backend
                );
            }
            let children: HashSet<&str> = results
                .iter()
                .map(|(_, b)| b["refresh_token"].as_str().unwrap())
                .collect();
            assert_eq!(
                children.len(),
                1,
                "{} round {round}: the family forked",
                h.backend
            );
            current = children.into_iter().next().unwrap().to_owned();
        }
        let (family, tokens) = family_of(&h, &current).await;
        assert_eq!(family.generation, ROUNDS as i64, "{}", h.backend);
        assert_eq!(
            tokens.len(),
            ROUNDS + 1,
            "{}: one row per generation",
            h.backend
        );
        let generations: HashSet<i64> = tokens.iter().map(|t| t.generation).collect();
        assert_eq!(generations.len(), ROUNDS + 1);
        assert_eq!(tokens.iter().filter(|t| t.consumed_at.is_none()).count(), 1);

        // Long after (past even the window of a confidential client), the
        // first token comes back: reuse kills every descendant, including
        // the live head.
        h.clock.advance(policy.bound_grace + Duration::from_secs(1));
        assert_eq!(h.refresh(&first).await.error(), "invalid_grant");
        let (family, tokens) = family_of(&h, &current).await;
        assert_eq!(
            family.revoked_reason.as_deref(),
            Some("reuse_detected"),
            "{}",
            h.backend
        );
        assert!(
            tokens.iter().all(|t| t.revoked_at.is_some()),
            "{}",
            h.backend
        );
        assert_eq!(
            h.refresh(&current).await.error(),
            "invalid_grant",
            "{}",
            h.backend
        );
    }
}

per_backend! {
    serializable;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn without_grace_exactly_one_racer_wins_and_reuse_kills_the_family(b) {
        let policy = RefreshPolicy {
            grace: Duration::ZERO,
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        };
        let h = Arc::new(harness(b, policy.clone()).await);
        for round in 0..ROUNDS {
            let token = h.login().await.refresh_token();
            let results = race(&h, &token).await;
            let ok: Vec<_> = results
                .iter()
                .filter(|(s, _)| *s == StatusCode::OK)
                .collect();
            assert_eq!(ok.len(), 1, "{} round {round}: {results:?}", h.backend);
            for (status, body) in &results {
                assert!(!status.is_server_error(), "{}: {body}", h.backend);
                if *status != StatusCode::OK {
                    assert_eq!(body["error"], "invalid_grant");
                }
            }
            // The losers were replays outside any grace: the family is dead,
            // so the winner's child is worthless too.
            let child = ok[0].1["refresh_token"].as_str().unwrap();
            let (family, tokens) = family_of(&h, child).await;
            assert_eq!(family.revoked_reason.as_deref(), Some("reuse_detected"));
            assert_eq!(tokens.len(), 2, "{}: exactly one child", h.backend);
            assert_eq!(h.refresh(child).await.error(), "invalid_grant");
        }
    }
}

per_backend! {
    #[tokio::test]
    async fn a_stale_generation_of_a_confidential_client_is_answered_with_the_head(b) {
        let policy = RefreshPolicy::default();
        let h = harness(b, policy.clone()).await;
        // Two processes share one credential store: one keeps up, the
        // other still holds the login's token.
        let stale = h.login().await.refresh_token();
        let mut head = stale.clone();
        for _ in 0..3 {
            head = h.refresh(&head).await.refresh_token();
        }
        h.clock.advance(Duration::from_secs(8));
        let late = h.refresh(&stale).await;
        assert_eq!(late.status, StatusCode::OK, "{}: {}", h.backend, late.raw);
        assert_eq!(
            late.refresh_token(),
            head,
            "{}: the stale process gets the token the session already has",
            h.backend
        );
        assert!(h.accepts(&late.access_token()));
        let (family, tokens) = family_of(&h, &head).await;
        assert_eq!(family.generation, 3, "{}: nothing was minted", h.backend);
        assert_eq!(tokens.len(), 4, "{}", h.backend);
        assert!(family.revoked_at.is_none());
        // The process that kept up carries on.
        let next = h.refresh(&head).await;
        assert_eq!(next.status, StatusCode::OK, "{}: {}", h.backend, next.raw);

        // Past the window the same replay is theft: the session ends.
        h.clock.advance(policy.bound_grace);
        assert_eq!(h.refresh(&stale).await.error(), "invalid_grant");
        assert_eq!(
            h.refresh(&next.refresh_token()).await.error(),
            "invalid_grant",
            "{}: reuse ends the session",
            h.backend
        );
    }
}

per_backend! {
    #[tokio::test]
    async fn a_stale_generation_of_an_unbound_public_client_is_reuse(b) {
        let h = harness(b, RefreshPolicy::default()).await;
        let spa = |body: String| {
            let h = &h;
            async move { h.post(&format!("{body}&client_id=spa")).await }
        };
        let login = spa("grant_type=password&username=alice&password=wonderland".into()).await;
        let first = login.refresh_token();
        let second = spa(format!("grant_type=refresh_token&refresh_token={first}"))
            .await
            .refresh_token();
        let third = spa(format!("grant_type=refresh_token&refresh_token={second}"))
            .await
            .refresh_token();
        // Two generations behind, a second later: anyone could be
        // presenting it, so it is reuse, and the session ends.
        h.clock.advance(Duration::from_secs(1));
        let r = spa(format!("grant_type=refresh_token&refresh_token={first}")).await;
        assert_eq!(r.error(), "invalid_grant", "{}: {}", h.backend, r.raw);
        let r = spa(format!("grant_type=refresh_token&refresh_token={third}")).await;
        assert_eq!(r.error(), "invalid_grant", "{}: the session survived", h.backend);
    }
}

per_backend! {
    #[tokio::test]
    async fn a_client_can_have_the_short_rule_only(b) {
        let h = harness(b, RefreshPolicy::default()).await;
        let mut web = h.issuer.clients().find("web").await.unwrap().unwrap().settings();
        web.bound_reuse_grace = Some(Duration::ZERO);
        assert!(h.issuer.clients().update(web).await.unwrap());
        let stale = h.login().await.refresh_token();
        let child = h.refresh(&stale).await.refresh_token();
        let head = h.refresh(&child).await.refresh_token();
        h.clock.advance(Duration::from_secs(8));
        // Without its own setting this is answered with `head` (see above).
        assert_eq!(h.refresh(&stale).await.error(), "invalid_grant");
        assert_eq!(h.refresh(&head).await.error(), "invalid_grant", "{}", h.backend);
    }
}

per_backend! {
    serializable;
    /// Rule: a family kill is final and beats issuance in flight. Chains of
    /// refreshes race a logout of their session; whatever each rotation
    /// got before the kill, nothing minted is usable after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_logout_racing_rotations_leaves_nothing_usable(b) {
        let h = Arc::new(harness(b, RefreshPolicy::default()).await);
        for round in 0..5 {
            let login = h.login().await;
            let sid = h.gate.verify(&login.access_token()).unwrap().sid.unwrap();
            let barrier = Arc::new(tokio::sync::Barrier::new(5));
            // Four holders, each rotating its own copy of the chain.
            let chains: Vec<_> = (0..4)
                .map(|_| {
                    let (h, barrier) = (Arc::clone(&h), Arc::clone(&barrier));
                    let mut token = login.refresh_token();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let mut minted = Vec::new();
                        for _ in 0..6 {
                            let r = h.refresh(&token).await;
                            if r.status != StatusCode::OK {
                                break;
                            }
                            token = r.refresh_token();
                            minted.push((r.access_token(), token.clone()));
                        }
                        minted
                    })
                })
                .collect();
            let logout = {
                let (h, barrier) = (Arc::clone(&h), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    h.issuer
                        .sessions()
                        .revoke_session(&sid, tollgate::RevokedReason::Logout)
                        .await
                        .unwrap()
                })
            };
            let mut minted = Vec::new();
            for chain in chains {
                minted.extend(chain.await.unwrap());
            }
            assert!(logout.await.unwrap(), "{} round {round}", h.backend);
            for (access, refresh) in &minted {
                assert!(!h.accepts(access), "{} round {round}: an access token outlived the kill", h.backend);
                assert_eq!(
                    h.refresh(refresh).await.error(),
                    "invalid_grant",
                    "{} round {round}: a refresh token outlived the kill",
                    h.backend
                );
            }
        }
    }
}
