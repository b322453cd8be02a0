//! One clock for the whole process: the issuer, the gate and the deny list
//! read the manual clock given once to the deny list, and move together.
//! Clock jumps, forward and back: the leeway is exactly as documented, and
//! no token outlives its session's absolute expiry.

use std::time::{Duration, UNIX_EPOCH};

use crate::common::store::{Backend, Harness, harness_with, per_backend};
use entity::{refresh_token, token_family};
use http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tollgate::{issuer::Lifetimes, refresh::RefreshPolicy, revocation::RevokedReason, time::Clock};

const MIN: u64 = 60;

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn jump(h: &Harness, minutes: u64) {
    h.clock.advance(Duration::from_secs(minutes * MIN));
}

/// Every refresh row of the family expires no later than the family.
async fn assert_rows_within_family(h: &Harness, family: &str) {
    let f = token_family::Entity::find_by_id(family.to_owned())
        .one(&h.db)
        .await
        .unwrap()
        .unwrap();
    let rows = refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.eq(family))
        .all(&h.db)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert!(
            r.expires_at <= f.expires_at,
            "{}: a refresh token outlives its family",
            h.backend
        );
    }
}

per_backend! {
    #[tokio::test]
    async fn jumps_forward_and_back_never_stretch_a_session_past_its_absolute_expiry(b) {
        let lifetimes = Lifetimes {
            access: Duration::from_secs(15 * MIN),
            refresh_idle: Duration::from_secs(60 * MIN),
            session: Duration::from_secs(120 * MIN),
        };
        let h = harness_with(b, RefreshPolicy::default(), lifetimes).await;
        let gate = &h.gate;
        let t0 = unix(h.clock.now());
        let end = t0 + 120 * MIN;
        let login = h.login().await;
        let family = gate.verify(&login.access_token()).unwrap().sid.unwrap();

        // Forward in big steps, each within the idle lifetime.
        jump(&h, 50);
        // The first access token expired 35 minutes ago.
        assert!(gate.verify(&login.access_token()).is_err());
        let r1 = h.refresh(&login.refresh_token()).await;
        assert_eq!(r1.status, StatusCode::OK, "{}: {}", h.backend, r1.raw);
        jump(&h, 58);
        let r2 = h.refresh(&r1.refresh_token()).await;
        assert_eq!(r2.status, StatusCode::OK, "{}: {}", h.backend, r2.raw);
        // 108 minutes in: a 15-minute access token is cut at the session's end.
        let access = gate.verify(&r2.access_token()).unwrap();
        assert_eq!(access.exp, end, "{}", h.backend);
        assert_rows_within_family(&h, &family).await;

        // At the end: refused, and the access token lives exactly the
        // documented 30 s leeway past it.
        jump(&h, 12);
        let late = h.refresh(&r2.refresh_token()).await;
        assert_eq!(late.error(), "invalid_grant", "{}", h.backend);
        h.clock.advance(Duration::from_secs(30));
        assert!(gate.verify(&r2.access_token()).is_ok(), "{}", h.backend);
        h.clock.advance(Duration::from_secs(1));
        assert!(gate.verify(&r2.access_token()).is_err(), "{}", h.backend);

        // The clock steps back 40 minutes: the head token works again (it is
        // that time again), but what it yields still ends at the same
        // instant.
        h.clock.rewind(Duration::from_secs(40 * MIN + 31));
        let back = h.refresh(&r2.refresh_token()).await;
        assert_eq!(back.status, StatusCode::OK, "{}: {}", h.backend, back.raw);
        assert_eq!(
            gate.verify(&back.access_token()).unwrap().exp,
            t0 + 95 * MIN
        );
        assert_rows_within_family(&h, &family).await;
        // And forward again past the end: all of it is dead.
        jump(&h, 50);
        assert_eq!(
            h.refresh(&back.refresh_token()).await.error(),
            "invalid_grant"
        );
        assert!(gate.verify(&back.access_token()).is_err());
    }
}

/// The clock is given once, to the deny list; the issuer (`iat`, `exp`),
/// the gate (expiry) and the deny list (when an entry lapses) all follow
/// it when it moves.
#[tokio::test]
async fn issuer_gate_and_deny_list_run_on_the_one_clock() {
    let lifetimes = Lifetimes {
        access: Duration::from_secs(10 * MIN),
        ..Lifetimes::default()
    };
    let b = Backend::sqlite_memory().await;
    let h = harness_with(b, RefreshPolicy::default(), lifetimes).await;
    // Far from the system clock, so nothing can pass by reading it.
    h.clock.advance(Duration::from_secs(400 * 86_400));
    let t0 = unix(h.clock.now());
    assert_eq!(h.issuer.now(), h.clock.now());
    assert_eq!(h.deny.now(), h.clock.now());

    let login = h.login().await;
    let claims = h.gate.verify(&login.access_token()).unwrap();
    assert_eq!((claims.iat, claims.exp), (Some(t0), t0 + 10 * MIN));

    // The deny list keeps a revoked token until exp + margin on this clock.
    let other = h.login().await;
    let revoked = h.gate.verify(&other.access_token()).unwrap();
    assert!(
        h.issuer
            .sessions()
            .revoke_access_token(&revoked, RevokedReason::Admin)
            .await
            .unwrap()
    );
    assert!(h.deny.is_token_revoked(revoked.jti.as_deref().unwrap()));
    assert!(h.gate.verify(&other.access_token()).is_err());

    // Ten minutes and the 30 s leeway later the gate still accepts the
    // first token; one second more and it has expired on the same clock.
    h.clock.advance(Duration::from_secs(10 * MIN + 30));
    assert!(h.gate.verify(&login.access_token()).is_ok());
    h.clock.advance(Duration::from_secs(1));
    assert!(h.gate.verify(&login.access_token()).is_err());
    assert!(h.deny.is_token_revoked(revoked.jti.as_deref().unwrap()));
    // Past exp + the deny list's margin, the entry has lapsed.
    h.clock.advance(h.deny.margin());
    assert!(!h.deny.is_token_revoked(revoked.jti.as_deref().unwrap()));

    // A token minted now carries the moved clock's time.
    let later = h.refresh(&login.refresh_token()).await;
    let claims = h.gate.verify(&later.access_token()).unwrap();
    assert_eq!(claims.iat, Some(unix(h.clock.now())));
}
