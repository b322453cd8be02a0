//! Rate limits and lockouts at the token endpoints, with the clock moved
//! by hand.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::store::{Harness, Reply, call, harness, sqlite_memory};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use tollgate::{
    binding::PeerAddr,
    refresh::RefreshPolicy,
    token_endpoint::{Limit, RateLimits, TokenEndpoint},
};

const A: &str = "192.0.2.1:40000";
const B: &str = "198.51.100.7:40000";

async fn in_memory() -> Harness {
    let db = sqlite_memory().await;
    let backend = crate::common::store::Backend {
        name: "sqlite-memory",
        db,
    };
    harness(backend, RefreshPolicy::default()).await
}

/// The harness with an endpoint under `limits` (on the harness clock),
/// whose password verifier counts its calls.
async fn limited(limits: RateLimits) -> (Harness, TokenEndpoint, Arc<AtomicUsize>) {
    let h = in_memory().await;
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&checks);
    let endpoint = TokenEndpoint::builder(h.issuer.clone())
        .rate_limits(limits)
        .password_verifier(move |user: String, password: String| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok((user == "alice" && password == "wonderland").then_some(user)) }
        })
        .build()
        .unwrap();
    (h, endpoint, checks)
}

fn request(body: &str, peer: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    req.extensions_mut()
        .insert(PeerAddr(peer.parse::<SocketAddr>().unwrap()));
    req
}

async fn token(e: &TokenEndpoint, body: &str, peer: &str) -> Reply {
    call(e.clone(), request(body, peer)).await
}

fn password(user: &str, password: &str) -> String {
    format!("grant_type=password&client_id=spa&username={user}&password={password}")
}

fn assert_too_many(r: &Reply, retry_after: &str) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    assert_eq!(r.error(), "temporarily_unavailable");
    assert_eq!(r.headers[header::RETRY_AFTER], retry_after);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn wrong_passwords_lock_the_user_before_the_password_is_checked() {
    let (h, e, checks) = limited(
        RateLimits::none().failed_passwords_per_user(Limit::new(3, Duration::from_secs(60))),
    )
    .await;
    for _ in 0..3 {
        let r = token(&e, &password("alice", "guess"), A).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
    }
    assert_eq!(checks.load(Ordering::SeqCst), 3);
    // Locked: even the right password, from another address, in another
    // case, is refused without being checked.
    let r = token(&e, &password("ALICE", "wonderland"), B).await;
    assert_too_many(&r, "20");
    assert_eq!(checks.load(Ordering::SeqCst), 3);
    // Other users are not affected.
    let r = token(&e, &password("bob", "x"), A).await;
    assert_eq!(r.error(), "invalid_grant");

    // One period later, one more try is allowed.
    h.clock.advance(Duration::from_secs(20));
    let r = token(&e, &password("alice", "wonderland"), A).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

#[tokio::test]
async fn an_unknown_user_is_locked_exactly_like_a_known_one() {
    let (_h, e, _) = limited(
        RateLimits::none().failed_passwords_per_user(Limit::new(2, Duration::from_secs(60))),
    )
    .await;
    let mut answers = Vec::new();
    for user in ["alice", "nobody"] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let r = token(&e, &password(user, "guess"), A).await;
            seen.push((r.status, r.raw, r.headers.get(header::RETRY_AFTER).cloned()));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][2].0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn password_spraying_from_one_address_is_blocked_across_usernames() {
    let (_h, e, checks) =
        limited(RateLimits::none().failed_passwords_per_ip(Limit::new(4, Duration::from_secs(60))))
            .await;
    for i in 0..4 {
        let r = token(&e, &password(&format!("user{i}"), "Summer2026"), A).await;
        assert_eq!(r.error(), "invalid_grant");
    }
    assert_too_many(&token(&e, &password("user9", "Summer2026"), A).await, "15");
    assert_eq!(checks.load(Ordering::SeqCst), 4);
    let r = token(&e, &password("alice", "wonderland"), B).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

#[tokio::test]
async fn failed_client_authentication_blocks_the_address_on_every_endpoint() {
    let (h, e, _) =
        limited(RateLimits::none().failed_client_auth_per_ip(Limit::per_minute(2))).await;
    let cc = |secret: &str| {
        format!("grant_type=client_credentials&client_id=svc&client_secret={secret}")
    };
    // A wrong secret and an unknown client count alike.
    let r = token(&e, &cc("wrong"), A).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = token(
        &e,
        "grant_type=client_credentials&client_id=ghost&client_secret=x",
        A,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Blocked now: the right secret is not even looked at, on any endpoint.
    assert_too_many(&token(&e, &cc(&h.svc_secret), A).await, "30");
    let revoke = call(
        e.revocation(),
        request(&format!("token=x&{}", h.svc_auth()), A),
    )
    .await;
    assert_too_many(&revoke, "30");
    // Other addresses are not.
    let r = token(&e, &cc(&h.svc_secret), B).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    h.clock.advance(Duration::from_secs(30));
    let r = token(&e, &cc(&h.svc_secret), A).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

#[tokio::test]
async fn requests_are_limited_per_address_whatever_they_carry() {
    let (h, e, _) = limited(RateLimits::none().requests_per_ip(Limit::per_minute(3))).await;
    let cc = format!("grant_type=client_credentials&{}", h.svc_auth());
    assert_eq!(token(&e, &cc, A).await.status, StatusCode::OK);
    assert_eq!(
        token(&e, "garbage", A).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(e.introspection(), request("token=x", A)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_too_many(&token(&e, &cc, A).await, "20");
    assert_eq!(token(&e, &cc, B).await.status, StatusCode::OK);
    // Without a known peer address there is nothing to count by.
    for _ in 0..5 {
        assert_eq!(h.post(&cc).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn requests_are_limited_per_authenticated_client_across_addresses() {
    let (h, e, _) = limited(RateLimits::none().requests_per_client(Limit::per_minute(2))).await;
    let cc = format!("grant_type=client_credentials&{}", h.svc_auth());
    assert_eq!(token(&e, &cc, A).await.status, StatusCode::OK);
    assert_eq!(token(&e, &cc, B).await.status, StatusCode::OK);
    assert_too_many(&token(&e, &cc, "203.0.113.9:1").await, "30");
    // Another client has its own count, and a wrong secret spends nothing.
    let web = format!(
        "grant_type=password&username=alice&password=wonderland&{}",
        h.web_auth()
    );
    assert_eq!(token(&e, &web, A).await.status, StatusCode::OK);
    let wrong =
        "grant_type=password&username=alice&password=wonderland&client_id=web&client_secret=no";
    for _ in 0..3 {
        assert_eq!(token(&e, wrong, A).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(token(&e, &web, A).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_zero_limit_is_a_configuration_error() {
    let h = in_memory().await;
    let err = TokenEndpoint::builder(h.issuer.clone())
        .rate_limits(RateLimits::none().requests_per_client(Limit::per_second(0)))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        tollgate::token_endpoint::EndpointConfigError::ZeroLimit
    );
}
