//! RFC 9470 step-up at the gate: a route's acceptable `acr` values and
//! maximum authentication age, refused with a challenge a strict RFC 9110
//! parser (`http-auth`) reads back, and tokens that meet them admitted.

use std::time::Duration;

use http::StatusCode;
use tollgate::{AccessTokenConfigError, AccessTokenLayer, RevocationCache};
use tower::{Layer, ServiceExt, service_fn};

use crate::{
    common::*,
    resource::{challenge, param},
};

fn gate(acr: &[&str], max_age: Option<u64>) -> AccessTokenLayer {
    let mut b = gate_builder(&hs256())
        .realm(REALM)
        .revocations(RevocationCache::default());
    if !acr.is_empty() {
        b = b.require_acr(acr.iter().copied());
    }
    if let Some(secs) = max_age {
        b = b.require_max_age(Duration::from_secs(secs));
    }
    b.build().unwrap()
}

fn signed_in(acr: Option<&str>, secs_ago: Option<u64>) -> String {
    let mut c = claims("t-step");
    c.acr = acr.map(str::to_owned);
    c.auth_time = secs_ago.map(|ago| now() - ago);
    c.amr = Some(vec!["pwd".into()]);
    hs256().sign(&c).unwrap()
}

async fn admitted(g: AccessTokenLayer, token: &str) -> bool {
    let res = g
        .layer(service_fn(echo_sub))
        .oneshot(bearer(token))
        .await
        .unwrap();
    res.status() == StatusCode::OK
}

#[tokio::test]
async fn an_acr_requirement_is_met_only_by_a_listed_acr() {
    let g = || gate(&["urn:example:mfa", "urn:example:hwk"], None);
    assert!(admitted(g(), &signed_in(Some("urn:example:hwk"), None)).await);
    for token in [
        signed_in(Some("urn:example:pwd"), Some(1)),
        // No acr never satisfies a requirement.
        signed_in(None, Some(1)),
    ] {
        let (status, p) = challenge(g(), bearer(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(param(&p, "error"), Some("insufficient_user_authentication"));
        assert_eq!(
            param(&p, "error_description"),
            Some("A different authentication level is required")
        );
        assert_eq!(
            param(&p, "acr_values"),
            Some("urn:example:mfa urn:example:hwk")
        );
        assert_eq!(param(&p, "max_age"), None);
    }
}

#[tokio::test]
async fn a_max_age_requirement_needs_a_recent_auth_time() {
    let g = || gate(&[], Some(300));
    assert!(admitted(g(), &signed_in(None, Some(10))).await);
    for token in [signed_in(None, Some(1000)), signed_in(Some("urn:x"), None)] {
        let (status, p) = challenge(g(), bearer(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(param(&p, "error"), Some("insufficient_user_authentication"));
        assert_eq!(
            param(&p, "error_description"),
            Some("More recent authentication is required")
        );
        assert_eq!(param(&p, "max_age"), Some("300"));
        assert_eq!(param(&p, "acr_values"), None);
    }
    // Both: each must hold.
    let both = || gate(&["urn:example:mfa"], Some(300));
    assert!(admitted(both(), &signed_in(Some("urn:example:mfa"), Some(5))).await);
    assert!(!admitted(both(), &signed_in(Some("urn:example:mfa"), Some(301))).await);
    assert!(!admitted(both(), &signed_in(Some("urn:example:pwd"), Some(5))).await);
    let (_, p) = challenge(both(), bearer(&signed_in(Some("urn:example:pwd"), Some(5)))).await;
    assert_eq!(
        (param(&p, "acr_values"), param(&p, "max_age")),
        (Some("urn:example:mfa"), Some("300"))
    );
}

#[test]
fn acr_values_a_challenge_cannot_carry_are_refused() {
    for bad in ["", "a b", "a\"b", "a\\b", "é"] {
        let built = gate_builder(&hs256()).require_acr([bad]).build();
        assert!(
            matches!(built, Err(AccessTokenConfigError::InvalidAcr(_))),
            "{bad:?}"
        );
    }
}
