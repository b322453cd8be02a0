//! The janitor: deletes dead sessions, their tokens and spent revocation
//! rows after the retention period, keeps everything live — in batches,
//! and safely with several janitors at once. SQLite and PostgreSQL.

use std::time::{Duration, SystemTime};

use crate::common::store::{Backend, Harness, harness_with, per_backend};
use entity::{refresh_token, revocation, token_family};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tollgate::{
    issuer::Lifetimes,
    refresh::RefreshPolicy,
    revocation::RevokedReason,
    store::cleanup::{CleanupReport, Janitor},
};

const DAY: Duration = Duration::from_secs(86_400);
const RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// Builds the history the janitor works on; returns the live session's
/// refresh token.
///
/// - t0: session 1 logs in and logs out (revoked at t0);
/// - t0: session 2 logs in and refreshes twice, then expires at t0 + 1 day;
/// - t0 + 10 days: session 3 logs in (live), and one of its access tokens
///   is revoked (a revocation row that still matters).
async fn history(h: &Harness) -> String {
    let s1 = h.login().await;
    let c1 = h.gate.verify(&s1.access_token()).unwrap();
    h.issuer.sessions().logout(&c1).await.unwrap();
    let s2 = h.login().await;
    let r = h.refresh(&s2.refresh_token()).await;
    h.refresh(&r.refresh_token()).await;
    h.clock.advance(10 * DAY);
    let s3 = h.login().await;
    let now = tollgate::time::Clock::now(&h.clock);
    h.issuer
        .sessions()
        .revoke_token(
            "s3-access",
            now + Duration::from_secs(900),
            RevokedReason::Logout,
        )
        .await
        .unwrap();
    s3.refresh_token()
}

async fn counts(h: &Harness) -> (u64, u64, u64) {
    (
        token_family::Entity::find().count(&h.db).await.unwrap(),
        refresh_token::Entity::find().count(&h.db).await.unwrap(),
        revocation::Entity::find().count(&h.db).await.unwrap(),
    )
}

fn sum(a: CleanupReport, b: CleanupReport) -> CleanupReport {
    CleanupReport {
        sessions: a.sessions + b.sessions,
        tokens: a.tokens + b.tokens,
        revocations: a.revocations + b.revocations,
        dpop_proofs: a.dpop_proofs + b.dpop_proofs,
        authorizations: a.authorizations + b.authorizations,
        clients: a.clients + b.clients,
    }
}

async fn each(b: Backend, test: impl AsyncFn(Harness)) {
    let lifetimes = Lifetimes {
        access: Duration::from_secs(900),
        refresh_idle: Duration::from_secs(3600),
        session: DAY,
    };
    test(harness_with(b, RefreshPolicy::default(), lifetimes).await).await;
}

per_backend! {
    #[tokio::test]
    async fn the_janitor_deletes_only_what_is_past_retention(b) {
        each(b, async |h| {
            let live = history(&h).await;
            let now = h.clock.clone();
            let now = || tollgate::time::Clock::now(&now);
            assert_eq!(counts(&h).await, (3, 5, 2), "{}", h.backend);

            // At t0 + 3 days the sessions are within retention; session 1's
            // revocation row, whose tokens all expired at t0 + 1 day, is not.
            let janitor = Janitor::builder(h.db.clone()).retention(RETENTION).build();
            let early = janitor.run_once(now() - 7 * DAY).await.unwrap();
            assert_eq!(
                early,
                CleanupReport {
                    sessions: 0,
                    tokens: 0,
                    revocations: 1,
                    dpop_proofs: 0,
                    authorizations: 0,
                    clients: 0,
                },
                "{}",
                h.backend
            );

            let report = janitor.run_once(now()).await.unwrap();
            assert_eq!(
                report,
                CleanupReport {
                    sessions: 2,
                    tokens: 4,
                    revocations: 0,
                    dpop_proofs: 0,
                    authorizations: 0,
                    clients: 0,
                },
                "{}",
                h.backend
            );
            // What is left is exactly the live session and the live revocation.
            assert_eq!(counts(&h).await, (1, 1, 1));
            let kept = revocation::Entity::find()
                .one(&h.db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(kept.kind, "token");
            let refreshed = h.refresh(&live).await;
            assert_eq!(refreshed.status, http::StatusCode::OK, "{}", h.backend);
            // Nothing more to do.
            assert_eq!(
                janitor.run_once(now()).await.unwrap(),
                CleanupReport::default()
            );
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn consumed_tokens_of_a_live_session_are_kept_for_reuse_detection(b) {
        each(b, async |h| {
            let login = h.login().await;
            let r1 = login.refresh_token();
            let r2 = h.refresh(&r1).await.refresh_token();
            h.clock.advance(Duration::from_secs(30 * 60));
            let janitor = Janitor::builder(h.db.clone())
                .retention(Duration::ZERO)
                .build();
            let report = janitor
                .run_once(tollgate::time::Clock::now(&h.clock))
                .await
                .unwrap();
            assert_eq!(report.tokens, 0, "{}", h.backend);
            // The replay of the consumed token is still caught.
            assert_eq!(h.refresh(&r1).await.error(), "invalid_grant");
            assert_eq!(h.refresh(&r2).await.error(), "invalid_grant");
            let family = token_family::Entity::find()
                .filter(token_family::Column::RevokedReason.eq("reuse_detected"))
                .count(&h.db)
                .await
                .unwrap();
            assert_eq!(family, 1);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn janitors_in_small_batches_and_in_parallel_do_the_work_once(b) {
        each(b, async |h| {
            history(&h).await;
            let now: SystemTime = tollgate::time::Clock::now(&h.clock);
            let janitor = || {
                Janitor::builder(h.db.clone())
                    .retention(RETENTION)
                    .batch(1)
                    .build()
            };
            let (j1, j2) = (janitor(), janitor());
            let (a, b) = tokio::join!(j1.run_once(now), j2.run_once(now));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(
                sum(a, b),
                CleanupReport {
                    sessions: 2,
                    tokens: 4,
                    revocations: 1,
                    dpop_proofs: 0,
                    authorizations: 0,
                    clients: 0,
                },
                "{}: {a:?} + {b:?}",
                h.backend
            );
            assert_eq!(counts(&h).await, (1, 1, 1));
        })
        .await;
    }
}

/// The issuer's janitor reads now from the issuer's clock and keeps a
/// revocation row for the issuer's deny-list margin past its expiry, so a
/// restarted instance still finds every revocation a gate could need.
#[tokio::test]
async fn the_issuers_janitor_uses_its_clock_and_its_deny_list_margin() {
    let db = crate::common::store::sqlite_memory().await;
    let clock = crate::common::manual_clock();
    let margin = Duration::from_secs(600);
    let deny = tollgate::revocation::RevocationCache::builder()
        .clock(clock.clone())
        .margin(margin)
        .build();
    let issuer = crate::common::store::issuer_on(&db, deny);
    let now = tollgate::time::Clock::now(&clock);
    issuer
        .sessions()
        .revoke_token("t", now, RevokedReason::Logout)
        .await
        .unwrap();
    let janitor = issuer.janitor().build();
    // Past its expiry by less than the margin: kept.
    clock.advance(margin - Duration::from_secs(1));
    assert_eq!(janitor.run().await.unwrap().revocations, 0);
    // (With the default margin, 60 s, it would have gone by now; by the
    // system clock, which has not moved ten minutes, it would not.)
    clock.advance(Duration::from_secs(2));
    assert_eq!(janitor.run().await.unwrap().revocations, 1);
}
