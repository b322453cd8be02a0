//! Browser clients over plain HTTP: the refresh cookie's exact
//! attributes, reading and replacing it, the CSRF checks (refusals consume
//! nothing), CORS, logout clearing the cookie, binding and reuse detection
//! through the cookie. The real browser drives the quickstart's page in
//! `quickstart_browser.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use tollgate::{
    binding::{BindingPolicy, UserAgentBinding},
    issuer::Lifetimes,
    refresh::RefreshPolicy,
    time::Clock,
    token_endpoint::{BrowserClient, TokenEndpoint},
};
use tower::{Layer, ServiceExt};

use crate::common::{
    cookie_expires,
    store::{Backend, Harness, Reply, call, harness, harness_with, per_backend},
};

/// A time as a cookie's `Expires` can say it: to the second.
fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

const APP: &str = "https://app.example";
const COOKIE: &str = "__Host-tollgate_refresh";

/// The harness's endpoint with `spa` as a browser client of [`APP`].
fn browser_endpoint(h: &Harness) -> TokenEndpoint {
    TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .browser_client("spa", BrowserClient::new([APP]))
        .build()
        .unwrap()
}

/// What a page of [`APP`] sends with `fetch`.
const FROM_APP: &[(&str, &str)] = &[("origin", APP), ("x-requested-with", "fetch")];

fn post(path: &str, body: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

async fn sign_in(endpoint: &TokenEndpoint) -> Reply {
    let r = call(
        endpoint.clone(),
        post(
            "/token",
            "grant_type=password&client_id=spa&username=alice&password=wonderland",
            FROM_APP,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r
}

/// The refresh token a `Set-Cookie` of ours carries.
fn cookie_value(r: &Reply) -> String {
    let set: Vec<_> = r.headers.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(set.len(), 1, "one Set-Cookie: {set:?}");
    let text = set[0].to_str().unwrap();
    let (pair, _) = text.split_once(';').unwrap();
    pair.strip_prefix(&format!("{COOKIE}="))
        .unwrap_or_else(|| panic!("not our cookie: {text}"))
        .to_owned()
}

async fn refresh_with_cookie(
    endpoint: &TokenEndpoint,
    token: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let cookie = format!("{COOKIE}={token}");
    let mut headers = vec![("cookie", cookie.as_str())];
    headers.extend_from_slice(extra);
    call(
        endpoint.clone(),
        post("/token", "grant_type=refresh_token&client_id=spa", &headers),
    )
    .await
}

#[tokio::test]
async fn sign_in_sets_an_http_only_cookie_and_keeps_the_token_out_of_the_body() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let r = sign_in(&endpoint).await;
    assert!(r.json.get("refresh_token").is_none(), "{}", r.raw);
    let access = r.access_token();
    let token = cookie_value(&r);
    let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    let expires = cookie_expires(set_cookie).expect("Expires");
    let (name_value, rest) = set_cookie.split_once("; Expires=").unwrap();
    assert_eq!(name_value, format!("{COOKIE}={token}"));
    assert_eq!(
        rest.split_once(';').unwrap().1,
        " Path=/; HttpOnly; Secure; SameSite=Strict"
    );
    // The refresh token's idle lifetime, to the second.
    let idle = Lifetimes::default().refresh_idle;
    assert_eq!(expires, whole_seconds(h.clock.now() + idle));
    assert!(
        !r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains(&access)
    );
    assert!(
        !r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Domain")
    );
    assert!(h.accepts(&access));

    // The token in the cookie is a real refresh token of the session.
    let next = refresh_with_cookie(&endpoint, &token, FROM_APP).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.raw);
    let rotated = cookie_value(&next);
    assert_ne!(rotated, token, "every rotation replaces the cookie");
    assert!(next.json.get("refresh_token").is_none());

    // By setting, also in the body.
    let both = TokenEndpoint::builder(h.issuer.clone())
        .browser_client("spa", BrowserClient::new([APP]).refresh_token_in_body(true))
        .build()
        .unwrap();
    let r = refresh_with_cookie(&both, &rotated, FROM_APP).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.refresh_token(), cookie_value(&r));
}

/// The cookie expires with the refresh token: its idle lifetime, capped by
/// the session's end.
#[tokio::test]
async fn the_cookie_lives_as_long_as_the_refresh_token() {
    let lifetimes = Lifetimes {
        access: Duration::from_secs(60),
        refresh_idle: Duration::from_secs(600),
        session: Duration::from_secs(1000),
    };
    let h = harness_with(
        Backend::sqlite_memory().await,
        RefreshPolicy::default(),
        lifetimes,
    )
    .await;
    let endpoint = browser_endpoint(&h);
    let start = h.clock.now();
    let r = sign_in(&endpoint).await;
    let expires = |r: &Reply| cookie_expires(r.headers[header::SET_COOKIE].to_str().unwrap());
    assert_eq!(
        expires(&r),
        Some(whole_seconds(start + Duration::from_secs(600)))
    );
    h.clock.advance(Duration::from_secs(500));
    let r = refresh_with_cookie(&endpoint, &cookie_value(&r), FROM_APP).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // The session ends 1000 s after it began, before the idle 600 s end.
    assert_eq!(
        expires(&r),
        Some(whole_seconds(start + Duration::from_secs(1000)))
    );
}

/// Two tabs share one cookie jar and refresh at once, the second a few
/// seconds late: both are answered with the identical `Set-Cookie`, so
/// whichever the browser keeps last, the jar holds the session's one
/// current token (nothing forks), and it keeps working.
#[tokio::test]
async fn two_tabs_refreshing_at_once_get_the_identical_cookie() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let token = cookie_value(&sign_in(&endpoint).await);
    h.clock.advance(Duration::from_millis(300));
    let first = refresh_with_cookie(&endpoint, &token, FROM_APP).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.raw);
    // Seconds later, across a second boundary, still within the window.
    h.clock.advance(Duration::from_millis(2_900));
    let second = refresh_with_cookie(&endpoint, &token, FROM_APP).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.raw);
    assert_eq!(
        first.headers[header::SET_COOKIE],
        second.headers[header::SET_COOKIE]
    );
    assert_ne!(first.access_token(), second.access_token());
    assert!(h.accepts(&first.access_token()) && h.accepts(&second.access_token()));
    let next = refresh_with_cookie(&endpoint, &cookie_value(&second), FROM_APP).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.raw);
}

/// Each CSRF refusal is `invalid_request` and consumes nothing: the token
/// still rotates afterwards.
#[tokio::test]
async fn forged_requests_are_refused_before_the_token_is_touched() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let token = cookie_value(&sign_in(&endpoint).await);
    for (why, headers) in [
        (
            "foreign origin",
            vec![
                ("origin", "https://evil.example"),
                ("x-requested-with", "fetch"),
            ],
        ),
        ("missing origin", vec![("x-requested-with", "fetch")]),
        (
            "null origin",
            vec![("origin", "null"), ("x-requested-with", "fetch")],
        ),
        (
            "a look-alike origin",
            vec![
                ("origin", "https://app.example.evil.example"),
                ("x-requested-with", "fetch"),
            ],
        ),
        ("no CSRF header (a cross-site form)", vec![("origin", APP)]),
        (
            "cross-site fetch metadata",
            vec![("origin", APP), ("sec-fetch-site", "cross-site")],
        ),
    ] {
        let r = refresh_with_cookie(&endpoint, &token, &headers).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.raw);
        assert_eq!(r.error(), "invalid_request", "{why}");
        assert!(r.headers.get(header::SET_COOKIE).is_none(), "{why}");
        assert!(
            !r.raw.contains(&token),
            "{why}: the answer echoes the token"
        );
    }
    // The sign-in itself is held to the same rules (no login CSRF).
    let r = call(
        endpoint.clone(),
        post(
            "/token",
            "grant_type=password&client_id=spa&username=alice&password=wonderland",
            &[
                ("origin", "https://evil.example"),
                ("x-requested-with", "x"),
            ],
        ),
    )
    .await;
    assert_eq!(r.error(), "invalid_request");
    // Same-origin fetch metadata stands in for the header.
    let r = refresh_with_cookie(
        &endpoint,
        &token,
        &[("origin", APP), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the token was consumed by a refusal: {}",
        r.raw
    );
}

#[tokio::test]
async fn a_token_in_both_the_body_and_the_cookie_is_refused() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let token = cookie_value(&sign_in(&endpoint).await);
    let cookie = format!("{COOKIE}={token}");
    let mut headers = FROM_APP.to_vec();
    headers.push(("cookie", &cookie));
    let r = call(
        endpoint.clone(),
        post(
            "/token",
            &format!("grant_type=refresh_token&client_id=spa&refresh_token={token}"),
            &headers,
        ),
    )
    .await;
    assert_eq!(r.error(), "invalid_request", "{}", r.raw);
    // Not consumed.
    assert_eq!(
        refresh_with_cookie(&endpoint, &token, FROM_APP)
            .await
            .status,
        StatusCode::OK
    );
}

/// Another client's requests never read the cookie.
#[tokio::test]
async fn only_browser_clients_read_the_cookie() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let token = cookie_value(&sign_in(&endpoint).await);
    let cookie = format!("{COOKIE}={token}");
    let r = call(
        endpoint.clone(),
        post(
            "/token",
            &format!("grant_type=refresh_token&{}", h.web_auth()),
            &[("cookie", &cookie)],
        ),
    )
    .await;
    assert_eq!(r.error(), "invalid_request", "{}", r.raw);
    assert_eq!(
        r.json["error_description"],
        "The refresh_token parameter is missing"
    );
}

per_backend! {
    /// A stolen cookie value replayed after its rotation kills the whole
    /// session: the thief's and the user's tokens alike.
    #[tokio::test]
    async fn a_replayed_cookie_kills_the_session(b) {
        let h = harness(b, RefreshPolicy { grace: Duration::ZERO, bound_grace: Duration::ZERO, ..RefreshPolicy::default() }).await;
        let endpoint = browser_endpoint(&h);
        let first = cookie_value(&sign_in(&endpoint).await);
        let rotated = refresh_with_cookie(&endpoint, &first, FROM_APP).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.raw);
        let current = cookie_value(&rotated);
        let access = rotated.access_token();

        let replay = refresh_with_cookie(&endpoint, &first, FROM_APP).await;
        assert_eq!(replay.error(), "invalid_grant", "{}", replay.raw);
        assert!(!h.accepts(&access), "{}: the session's access token lives", h.backend);
        let r = refresh_with_cookie(&endpoint, &current, FROM_APP).await;
        assert_eq!(r.error(), "invalid_grant", "{}: the current cookie still works", h.backend);
    }
}

#[tokio::test]
async fn binding_still_applies_through_the_cookie() {
    let policy = RefreshPolicy {
        binding: BindingPolicy {
            user_agent: UserAgentBinding::Exact,
            ..BindingPolicy::default()
        },
        ..RefreshPolicy::default()
    };
    let h = harness(Backend::sqlite_memory().await, policy).await;
    let endpoint = browser_endpoint(&h);
    let mut headers = FROM_APP.to_vec();
    headers.push(("user-agent", "Firefox/1"));
    let r = call(
        endpoint.clone(),
        post(
            "/token",
            "grant_type=password&client_id=spa&username=alice&password=wonderland",
            &headers,
        ),
    )
    .await;
    let token = cookie_value(&r);
    let mut other = FROM_APP.to_vec();
    other.push(("user-agent", "curl/8"));
    let r = refresh_with_cookie(&endpoint, &token, &other).await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.raw);
    let r = refresh_with_cookie(&endpoint, &token, &headers).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

/// `/revoke` by cookie ends the session and clears the cookie, and clears
/// it again when the session is already gone.
#[tokio::test]
async fn revoking_by_cookie_logs_out_and_clears_the_cookie() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let r = sign_in(&endpoint).await;
    let access = r.access_token();
    let token = cookie_value(&r);
    let cookie = format!("{COOKIE}={token}");
    let mut headers = FROM_APP.to_vec();
    headers.push(("cookie", &cookie));
    let clear = format!("{COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict");
    for round in ["live session", "session already ended"] {
        let r = call(
            endpoint.revocation(),
            post("/revoke", "client_id=spa", &headers),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{round}: {}", r.raw);
        assert_eq!(r.headers[header::SET_COOKIE], clear.as_str(), "{round}");
        assert!(!h.accepts(&access), "{round}");
    }
    assert_eq!(
        refresh_with_cookie(&endpoint, &token, FROM_APP)
            .await
            .error(),
        "invalid_grant"
    );
    // The application's own logout routes get the same header.
    assert_eq!(
        endpoint.clear_refresh_cookie("spa").unwrap(),
        clear.as_str()
    );
    assert!(endpoint.clear_refresh_cookie("web").is_none());
    // And a forged logout is refused like any forged request.
    let r = call(
        endpoint.revocation(),
        post(
            "/revoke",
            "client_id=spa",
            &[
                ("origin", "https://evil.example"),
                ("x-requested-with", "1"),
                ("cookie", &cookie),
            ],
        ),
    )
    .await;
    assert_eq!(r.error(), "invalid_request");
    assert!(r.headers.get(header::SET_COOKIE).is_none());
}

/// Only listed origins get CORS answers, with credentials; no wildcard.
#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = browser_endpoint(&h);
    let svc = endpoint.cors_layer().layer(endpoint.clone());
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/token")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-requested-with",
            )
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let ok = svc.clone().oneshot(preflight(APP)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let allowed = ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("x-requested-with"), "{allowed}");
    assert!(allowed.contains("dpop"), "{allowed}");

    let evil = svc
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        evil.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let real = svc
        .clone()
        .oneshot(post(
            "/token",
            "grant_type=password&client_id=spa&username=alice&password=wonderland",
            FROM_APP,
        ))
        .await
        .unwrap();
    assert_eq!(real.status(), StatusCode::OK);
    assert_eq!(real.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
    assert_eq!(
        real.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    assert!(
        real.headers()[header::VARY]
            .to_str()
            .unwrap()
            .contains("origin")
    );
    // A browser app may read the DPoP nonce (RFC 9449 §8).
    assert_eq!(
        real.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
        "dpop-nonce"
    );
}

/// A browser client whose origins could never hold the cookie is refused
/// when the endpoint is built.
#[tokio::test]
async fn a_browser_client_needs_secure_origins() {
    use tollgate::token_endpoint::{BrowserConfigError, EndpointConfigError};
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    for (origins, why) in [
        (
            vec!["http://app.example"],
            BrowserConfigError::InvalidOrigin("http://app.example".into()),
        ),
        (
            vec!["https://app.example/"],
            BrowserConfigError::InvalidOrigin("https://app.example/".into()),
        ),
        (vec!["*"], BrowserConfigError::InvalidOrigin("*".into())),
        (vec![], BrowserConfigError::NoOrigin),
    ] {
        let built = TokenEndpoint::builder(h.issuer.clone())
            .browser_client("spa", BrowserClient::new(origins))
            .build();
        assert_eq!(
            built.unwrap_err(),
            EndpointConfigError::BrowserClient("spa".into(), why)
        );
    }
    let path = TokenEndpoint::builder(h.issuer.clone())
        .browser_client("spa", BrowserClient::new([APP]).path("auth"))
        .build();
    assert!(matches!(
        path.unwrap_err(),
        EndpointConfigError::BrowserClient(_, BrowserConfigError::InvalidPath(_))
    ));
}
