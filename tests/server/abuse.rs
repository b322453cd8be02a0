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

/// A verifier that holds every check until the test opens its gate,
/// counting the checks running at once (the most ever, too).
#[derive(Clone)]
struct HeldChecks {
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for HeldChecks {
    fn default() -> Self {
        Self {
            running: Arc::default(),
            most: Arc::default(),
            started: Arc::default(),
            // Closed until the test opens it.
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl HeldChecks {
    fn endpoint(&self, h: &Harness, permits: usize, queue: usize) -> TokenEndpoint {
        let held = self.clone();
        TokenEndpoint::builder(h.issuer.clone())
            .password_concurrency(permits, queue)
            .password_verifier(move |user: String, password: String| {
                let held = held.clone();
                async move {
                    let now = held.running.fetch_add(1, Ordering::SeqCst) + 1;
                    held.most.fetch_max(now, Ordering::SeqCst);
                    held.started.fetch_add(1, Ordering::SeqCst);
                    // Stands for the memory-hard hash: held until released.
                    let _pass = held.gate.acquire().await.unwrap();
                    held.running.fetch_sub(1, Ordering::SeqCst);
                    Ok((user == "alice" && password == "wonderland").then_some(user))
                }
            })
            .build()
            .unwrap()
    }
}

/// The attack of issue 22: 100 concurrent wrong passwords for the public
/// client from five addresses with fresh usernames. At most `permits`
/// checks ever run (so memory is bounded by permits × one hash), the
/// queue waits, everything beyond is a 503 at once, and no answer is
/// anything but a 4xx or a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_passwords_runs_at_most_the_permitted_checks_at_once() {
    let h = in_memory().await;
    let held = HeldChecks::default();
    let e = held.endpoint(&h, 2, 4);
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..100 {
        let e = e.clone();
        let peer = format!("127.0.0.{}:{}", 2 + i % 5, 40000 + i);
        burst
            .spawn(async move { token(&e, &password(&format!("fresh{i}"), "guess"), &peer).await });
    }
    // 94 are refused at once while six wait or run.
    for _ in 0..94 {
        let r = burst.join_next().await.unwrap().unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
        assert_eq!(r.error(), "temporarily_unavailable");
        assert_eq!(r.headers[header::RETRY_AFTER], "1");
    }
    assert_eq!(held.started.load(Ordering::SeqCst), 2);
    held.gate.add_permits(1000);
    while let Some(r) = burst.join_next().await {
        let r = r.unwrap();
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
    }
    assert_eq!(held.started.load(Ordering::SeqCst), 6);
    assert_eq!(held.most.load(Ordering::SeqCst), 2);
}

/// A client that hangs up mid-check does not free its place: the check
/// goes on to its end holding its permit, so dropped requests cannot pile
/// up work behind the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_password_requests_keep_their_place_until_the_check_ends() {
    let h = in_memory().await;
    let held = HeldChecks::default();
    let e = held.endpoint(&h, 2, 2);
    let mut dropped = tokio::task::JoinSet::new();
    for i in 0..2 {
        let e = e.clone();
        dropped.spawn(async move { token(&e, &password(&format!("u{i}"), "x"), A).await });
    }
    while held.started.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    // The clients hang up; their checks are still running.
    dropped.abort_all();
    while dropped.join_next().await.is_some() {}
    assert_eq!(held.running.load(Ordering::SeqCst), 2);
    // Two places remain (the queue), not four.
    let mut next = tokio::task::JoinSet::new();
    for i in 0..3 {
        let e = e.clone();
        next.spawn(async move { token(&e, &password(&format!("v{i}"), "x"), A).await });
    }
    let refused = next.join_next().await.unwrap().unwrap();
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.raw
    );
    held.gate.add_permits(1000);
    while let Some(r) = next.join_next().await {
        assert_eq!(r.unwrap().error(), "invalid_grant");
    }
    assert_eq!(held.most.load(Ordering::SeqCst), 2);
}

/// Concurrent guesses for one username count against its lockout as they
/// start: of 20 at once with a limit of 5, exactly 5 are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_for_one_user_are_checked_only_up_to_the_limit() {
    let h = in_memory().await;
    let held = HeldChecks::default();
    let e = {
        let held = held.clone();
        TokenEndpoint::builder(h.issuer.clone())
            .password_concurrency(32, 32)
            .rate_limits(
                RateLimits::none()
                    .failed_passwords_per_user(Limit::new(5, Duration::from_secs(15 * 60))),
            )
            .password_verifier(move |_user: String, _password: String| {
                let held = held.clone();
                async move {
                    held.started.fetch_add(1, Ordering::SeqCst);
                    let _pass = held.gate.acquire().await.unwrap();
                    Ok(None)
                }
            })
            .build()
            .unwrap()
    };
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..20 {
        let e = e.clone();
        let peer = format!("127.0.0.{}:4000{}", 2 + i % 5, i % 10);
        guesses
            .spawn(async move { token(&e, &password("alice", &format!("guess{i}")), &peer).await });
    }
    // The 15 over the limit are refused without waiting for the checks.
    for _ in 0..15 {
        let r = guesses.join_next().await.unwrap().unwrap();
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    }
    held.gate.add_permits(1000);
    while let Some(r) = guesses.join_next().await {
        assert_eq!(r.unwrap().error(), "invalid_grant");
    }
    assert_eq!(held.started.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn an_overlong_username_is_an_invalid_request_and_never_checked() {
    let (_h, e, checks) = limited(RateLimits::recommended()).await;
    let r = token(&e, &password(&"a".repeat(257), "x"), A).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(checks.load(Ordering::SeqCst), 0);
    let r = token(&e, &password(&"a".repeat(256), "x"), A).await;
    assert_eq!(r.error(), "invalid_grant");
    assert_eq!(checks.load(Ordering::SeqCst), 1);
}

/// Issue 22's attack on a public client: anyone can name it, so a limit
/// per client alone lets 14 addresses, each under its own limit, switch
/// it off for everybody. Counted per (client, address), the real user's
/// login still goes through.
#[tokio::test]
async fn a_public_client_cannot_be_switched_off_from_many_addresses() {
    let (_h, e, _) = limited(
        RateLimits::none()
            .requests_per_ip(Limit::per_minute(10))
            .requests_per_client(Limit::per_minute(5)),
    )
    .await;
    for attacker in 0..14 {
        let peer = format!("198.51.100.{}:4000", 10 + attacker);
        for _ in 0..5 {
            let r = token(&e, &password("alice", "guess"), &peer).await;
            assert_eq!(r.error(), "invalid_grant", "{}", r.raw);
        }
        // Each address is at its own limit now.
        assert_too_many(&token(&e, &password("alice", "guess"), &peer).await, "12");
    }
    for user in 0..10 {
        let peer = format!("192.0.2.{}:5000", 100 + user);
        let r = token(&e, &password("alice", "wonderland"), &peer).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }
}

/// A browser client's requests that fail the CSRF checks spend nothing of
/// its rate limit: forged requests from the user's own address cannot
/// lock the user out of the page.
#[tokio::test]
async fn forged_browser_requests_do_not_count_against_the_client_limit() {
    let h = in_memory().await;
    let e = TokenEndpoint::builder(h.issuer.clone())
        .rate_limits(RateLimits::none().requests_per_client(Limit::per_minute(3)))
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .browser_client(
            "spa",
            tollgate::token_endpoint::BrowserClient::new(["https://app.example"]),
        )
        .build()
        .unwrap();
    for _ in 0..10 {
        let r = token(&e, &password("alice", "wonderland"), A).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{}",
            r.raw
        );
    }
    for _ in 0..3 {
        let mut req = request(&password("alice", "wonderland"), A);
        req.headers_mut()
            .insert("origin", "https://app.example".parse().unwrap());
        req.headers_mut()
            .insert("x-requested-with", "fetch".parse().unwrap());
        let r = call(e.clone(), req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }
}
