//! The quickstart's page in a real browser: headless Chromium driven
//! through chromedriver (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs) by fantoccini, an independent WebDriver client.
//! Without them the test fails under `CI` and is skipped elsewhere, like
//! the database tests.
//!
//! Plus the page's security headers and the cookie over plain HTTP.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

use crate::common::quickstart::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const COOKIE: &str = "__Host-tollgate_refresh";

/// A chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
    profiles: std::path::PathBuf,
}

impl Driver {
    /// `None` (skip) when the browser is not installed, except under CI.
    fn start() -> Option<Self> {
        if !(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMIUM} and {CHROMEDRIVER} are required under CI (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "skipped: no {CHROMIUM} / {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it accepts connections.
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            url: format!("http://{addr}"),
            profiles: scratch("profiles"),
        })
    }

    /// A new browser (its own profile, so its own cookie jar: another
    /// device) with this User-Agent.
    async fn browser(&self, name: &str) -> Client {
        let profile = self.profiles.join(name);
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-agent=Chromium test device {name}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

/// A fresh directory of this test run.
fn scratch(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-browser-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn by_id(b: &Client, id: &str) -> Element {
    b.find(Locator::Id(id)).await.unwrap()
}

async fn click(b: &Client, id: &str) {
    by_id(b, id).await.click().await.unwrap();
}

/// The text of `#id`, or `None` while the page shown has none (a click
/// that submits a form returns before the browser has left the page).
async fn text_of(b: &Client, id: &str) -> Option<String> {
    match b.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.ok(),
        Err(e) if e.is_no_such_element() => None,
        Err(e) => panic!("#{id}: {e}"),
    }
}

/// Waits (at most 20 s) until `#status` reads `want`, on whichever page
/// the browser is navigating to.
async fn wait_status(b: &Client, want: &str) {
    let start = Instant::now();
    loop {
        let now = text_of(b, "status").await;
        if now.as_deref() == Some(want) {
            return;
        }
        let error = text_of(b, "error").await;
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "status {now:?}, waiting for {want:?} (page error: {error:?}, at {:?})",
            b.current_url().await.map(|u| u.to_string())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 20 s) until the sessions table has `n` rows.
async fn wait_sessions(b: &Client, n: usize) -> Vec<Element> {
    let start = Instant::now();
    loop {
        let rows = b.find_all(Locator::Css("tr.session")).await.unwrap();
        if rows.len() == n {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} sessions listed, waiting for {n}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 20 s) for the element `id` on the page the browser
/// navigates to.
async fn wait_for(b: &Client, id: &str) -> Element {
    b.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
}

/// From the page's Sign in button through `/authorize`, the login page
/// and the consent page; `allow` or `deny` there. Returns the consent
/// page's text.
async fn through_the_pages(b: &Client, base: &str, decision: &str) -> String {
    b.goto(&format!("{base}/")).await.unwrap();
    wait_status(b, "signed out").await;
    click(b, "sign-in-button").await;
    // The login page: the client and where the browser will be sent.
    wait_for(b, "password").await;
    assert!(b.current_url().await.unwrap().path() == "/login");
    let name = by_id(b, "client-name").await.text().await.unwrap();
    assert_eq!(name, "tollgate quickstart (the page at /)");
    assert_eq!(
        by_id(b, "redirect-host").await.text().await.unwrap(),
        "127.0.0.1"
    );
    by_id(b, "username").await.send_keys("alice").await.unwrap();
    by_id(b, "password")
        .await
        .send_keys("wonderland")
        .await
        .unwrap();
    click(b, "sign-in-button").await;
    // The consent page: who signed in and what the client gets.
    wait_for(b, decision).await;
    let text = by_id(b, "consent").await.text().await.unwrap();
    assert_eq!(by_id(b, "subject").await.text().await.unwrap(), "alice");
    let scopes = by_id(b, "scopes").await.text().await.unwrap();
    assert!(
        scopes.contains("read") && scopes.contains("write"),
        "{scopes}"
    );
    click(b, decision).await;
    text
}

async fn sign_in(b: &Client, base: &str) {
    through_the_pages(b, base, "allow").await;
    wait_status(b, "signed in as alice").await;
    // The page took the code out of its address.
    let url = b.current_url().await.unwrap();
    assert_eq!(url.as_str(), format!("{base}/"));
}

async fn claims(b: &Client) -> Value {
    serde_json::from_str(&by_id(b, "claims").await.text().await.unwrap()).unwrap()
}

/// The refresh cookie as the browser holds it (WebDriver sees HttpOnly
/// cookies; the page's script must not).
async fn refresh_cookie(b: &Client) -> Option<fantoccini::cookies::Cookie<'static>> {
    b.get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == COOKIE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_signs_in_recovers_through_the_cookie_and_logs_devices_out() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let dir = scratch("data");
    // As shipped (no password grant). Access tokens expire after 2 s with
    // no leeway, so the page meets a 401 soon; rate limits off, since
    // every request comes from one IP.
    let server = Server::as_shipped(
        &dir,
        &[
            ("TOLLGATE_ACCESS_TTL_SECS", "2"),
            ("TOLLGATE_LEEWAY_SECS", "0"),
            ("TOLLGATE_RATE_LIMITS", "off"),
        ],
    );
    let base = server.base.clone();
    let a = driver.browser("A").await;
    let b = driver.browser("B").await;

    // Sign in: the claims are shown, the refresh token is in an HttpOnly
    // cookie that the page cannot read, the access token is nowhere
    // stored.
    sign_in(&a, &base).await;
    let first = claims(&a).await;
    assert_eq!(first["sub"], "alice");
    assert_eq!(first["client_id"], "demo-browser");
    // How alice signed in, from the login page (RFC 9068 §2.2.1).
    assert_eq!(first["acr"], "urn:tollgate:quickstart:password");
    assert_eq!(first["amr"], json!(["pwd"]));
    assert!(first["auth_time"].as_u64().unwrap() <= first["iat"].as_u64().unwrap());
    let cookie = refresh_cookie(&a).await.expect("the refresh cookie");
    assert!(cookie.value().len() >= 43);
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));
    let seen_by_script = a.execute("return document.cookie", vec![]).await.unwrap();
    let seen_by_script = seen_by_script.as_str().unwrap();
    assert!(!seen_by_script.contains(cookie.value()), "{seen_by_script}");
    assert!(!seen_by_script.contains(COOKIE), "{seen_by_script}");
    let storage = a
        .execute(
            "return JSON.stringify([localStorage, sessionStorage])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(storage, "[{},{}]");

    // The access token expires; the next call gets a 401, the page
    // refreshes through the cookie once and retries.
    let exp = first["exp"].as_u64().unwrap();
    while crate::common::now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    click(&a, "call-me").await;
    let start = Instant::now();
    while by_id(&a, "refreshes")
        .await
        .attr("data-count")
        .await
        .unwrap()
        .as_deref()
        != Some("1")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the page never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_status(&a, "signed in as alice").await;
    let second = claims(&a).await;
    assert_ne!(second["jti"], first["jti"], "a new access token");
    assert_eq!(second["sid"], first["sid"], "the same session");
    let rotated = refresh_cookie(&a).await.unwrap();
    assert_ne!(rotated.value(), cookie.value(), "the cookie was rotated");

    // A second device: the user denies first (the page says so and stays
    // signed out), then allows; the first lists both, itself marked.
    through_the_pages(&b, &base, "deny").await;
    wait_status(&b, "signed out").await;
    let error = by_id(&b, "error").await.text().await.unwrap();
    assert_eq!(error, "The user denied the request");
    assert!(refresh_cookie(&b).await.is_none());
    sign_in(&b, &base).await;
    let b_claims = claims(&b).await;
    click(&a, "load-sessions").await;
    let rows = wait_sessions(&a, 2).await;
    let mut current = Vec::new();
    for row in &rows {
        if row
            .attr("class")
            .await
            .unwrap()
            .unwrap()
            .contains("current")
        {
            current.push(row.attr("data-sid").await.unwrap().unwrap());
        }
        let text = row.text().await.unwrap();
        assert!(text.contains("Chromium test device"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
    }
    assert_eq!(current, [first["sid"].as_str().unwrap()]);

    // Log out the other device: it is dead in that browser at once.
    click(&a, "log-out-others").await;
    wait_sessions(&a, 1).await;
    click(&b, "call-me").await;
    wait_status(&b, "signed out").await;
    assert_ne!(b_claims["sid"], first["sid"]);

    // B signs in again and signs out itself: /revoke ends the session
    // and the cookie is gone; a reload stays signed out.
    sign_in(&b, &base).await;
    assert!(refresh_cookie(&b).await.is_some());
    click(&b, "sign-out").await;
    wait_status(&b, "signed out").await;
    assert!(
        refresh_cookie(&b).await.is_none(),
        "sign-out left the cookie"
    );
    b.refresh().await.unwrap();
    wait_status(&b, "signed out").await;

    // A reload of A keeps its session through the cookie (the access
    // token was only in memory); then log out everywhere.
    a.refresh().await.unwrap();
    wait_status(&a, "signed in as alice").await;
    wait_sessions(&a, 1).await;
    click(&a, "log-out-everywhere").await;
    wait_status(&a, "signed out").await;
    assert!(refresh_cookie(&a).await.is_none(), "logout left the cookie");
    a.refresh().await.unwrap();
    wait_status(&a, "signed out").await;

    a.close().await.unwrap();
    b.close().await.unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same page and cookie over plain HTTP: the page's security
/// headers, the exact `Set-Cookie`, forged requests refused, a replayed
/// cookie killing the session, logout clearing the cookie.
#[tokio::test]
async fn the_page_and_its_cookie_over_plain_http() {
    let dir = scratch("http");
    let server = Server::start(
        &dir,
        &[
            ("TOLLGATE_RATE_LIMITS", "off"),
            ("TOLLGATE_REUSE_GRACE_SECS", "0"),
            ("TOLLGATE_BOUND_REUSE_GRACE_SECS", "0"),
        ],
    );
    let http = reqwest::Client::new();

    for path in ["/", "/app.js", "/app.css"] {
        let page = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let h = page.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    let html = http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>"), "inline script");
    assert!(html.contains(r#"content="demo-browser""#));

    let origin = server.base.clone();
    let token = |headers: &[(&str, &str)], body: &str| {
        let mut req = http
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let from_page = [("origin", origin.as_str()), ("x-requested-with", "fetch")];
    let res = token(
        &from_page,
        "grant_type=password&client_id=demo-browser&username=alice&password=wonderland",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let set: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = res.json().await.unwrap();
    assert_eq!(set.len(), 1, "{set:?}");
    let value = set[0]
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|rest| rest.split_once(';'))
        .map(|(v, _)| v.to_owned())
        .unwrap();
    let expires = crate::common::cookie_expires(&set[0]).expect("Expires");
    assert_eq!(
        set[0]
            .split_once("; Expires=")
            .unwrap()
            .1
            .split_once(';')
            .unwrap()
            .1,
        " Path=/; HttpOnly; Secure; SameSite=Strict"
    );
    // The quickstart's refresh tokens live 14 days unused.
    let idle = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((1_209_590..=1_209_600).contains(&idle), "{idle}");
    assert!(body.get("refresh_token").is_none());
    assert!(!set[0].contains(body["access_token"].as_str().unwrap()));
    let cookie = format!("{COOKIE}={value}");
    let refresh = "grant_type=refresh_token&client_id=demo-browser";

    // A cross-site POST carrying the cookie, and one with no Origin.
    for headers in [
        vec![
            ("origin", "https://evil.example"),
            ("x-requested-with", "x"),
            ("cookie", &cookie),
        ],
        vec![("x-requested-with", "x"), ("cookie", &cookie)],
        vec![("origin", origin.as_str()), ("cookie", &cookie)],
    ] {
        let res = token(&headers, refresh).await.unwrap();
        assert_eq!(res.status(), 400, "{headers:?}");
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"], "invalid_request");
    }

    // Rotate, then replay the old value: the whole session dies.
    let mut with_cookie = from_page.to_vec();
    with_cookie.push(("cookie", &cookie));
    let res = token(&with_cookie, refresh).await.unwrap();
    assert_eq!(res.status(), 200);
    let next = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let next_cookie = next.split_once(';').unwrap().0.to_owned();
    let access: Value = res.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    let me = |token: String| {
        http.get(server.url("/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    assert_eq!(me(access.clone()).await.unwrap().status(), 200);
    // No reuse grace here: the replay is reuse, and the whole session
    // dies, the current cookie and access token with it.
    let replay = token(&with_cookie, refresh).await.unwrap();
    assert_eq!(replay.status(), 400);
    let e: Value = replay.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(me(access).await.unwrap().status(), 401);
    let mut next_headers = from_page.to_vec();
    next_headers.push(("cookie", &next_cookie));
    let res = token(&next_headers, refresh).await.unwrap();
    assert_eq!(res.status(), 400);

    // Logout clears the cookie.
    let res = token(
        &from_page,
        "grant_type=password&client_id=demo-browser&username=alice&password=wonderland",
    )
    .await
    .unwrap();
    let access: Value = res.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    let res = http
        .post(server.url("/logout"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        res.headers()["set-cookie"],
        format!("{COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict").as_str()
    );
    assert_eq!(me(access).await.unwrap().status(), 401);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
