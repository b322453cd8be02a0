//! End to end: the quickstart binary, started as a user would start it,
//! driven over a real socket with reqwest through every flow — and
//! restarted, to show that neither its key nor its deny list is lost. And
//! the smoke tests of the hyper and tonic examples.

use std::process::Command;

use crate::common::quickstart::{Server, bench_server, binary};

use reqwest::{Client, StatusCode, header};
use serde_json::Value;

const CLIENT: (&str, &str) = ("demo-client", "demo-secret");

struct Session {
    access: String,
    refresh: String,
}

async fn token(s: &Server, ua: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = Client::new()
        .post(s.url("/token"))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .header(header::USER_AGENT, ua)
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn login(s: &Server, ua: &str) -> Session {
    let (status, j) = token(
        s,
        ua,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "read write"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{j}");
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["scope"], "read write");
    Session {
        access: j["access_token"].as_str().unwrap().to_owned(),
        refresh: j["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn refresh(s: &Server, ua: &str, token_: &str) -> (StatusCode, Value) {
    token(
        s,
        ua,
        &[("grant_type", "refresh_token"), ("refresh_token", token_)],
    )
    .await
}

async fn get(s: &Server, path: &str, access: &str) -> reqwest::Response {
    Client::new()
        .get(s.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn me(s: &Server, access: &str) -> StatusCode {
    get(s, "/me", access).await.status()
}

#[tokio::test]
async fn every_flow_of_the_quickstart_over_a_real_socket() {
    let dir = std::env::temp_dir().join(format!("tollgate-qs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = [
        ("TOLLGATE_REUSE_GRACE_SECS", "0"),
        ("TOLLGATE_BOUND_REUSE_GRACE_SECS", "0"),
        ("TOLLGATE_BIND_UA", "exact"),
    ];
    let s = Server::start(&dir, &env);
    let ua = "e2e/1.0";

    // Password grant, then a protected route.
    let first = login(&s, ua).await;
    // The login is a new device for alice, and the quickstart says so.
    let line = s.wait_for_line("new device signed in for alice");
    assert!(line.contains("e2e/1.0"), "{line}");
    let res = get(&s, "/me", &first.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let claims: Value = res.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "demo-client");
    // No token: a challenge with no error, naming the resource's
    // metadata (RFC 9728 §5.1). Not enough scope: 403.
    let res = Client::new().get(s.url("/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        format!(
            "Bearer realm=\"quickstart\", resource_metadata=\"{}\"",
            s.url("/.well-known/oauth-protected-resource")
        )
        .as_str()
    );
    let res = get(&s, "/admin", &first.access).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // Unknown paths are a plain 404, with or without a token: only the
    // routes behind the gate are challenged.
    for access in [None, Some(first.access.as_str())] {
        let mut req = Client::new().get(s.url("/no-such-route"));
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
    // The confidential demo client may use client_credentials.
    let (status, j) = token(&s, ua, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{j}");
    assert!(j.get("refresh_token").is_none());

    // RFC 8414 metadata: the configured issuer, the endpoints where this
    // server listens, valid to authlib.
    let meta: Value = Client::new()
        .get(s.url("/.well-known/oauth-authorization-server"))
        .header(header::HOST, "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], "http://127.0.0.1:3000");
    assert_eq!(meta["token_endpoint"], s.url("/token"));
    assert_eq!(meta["jwks_uri"], s.url("/.well-known/jwks.json"));
    crate::metadata::validate_with_authlib(&meta);

    // The JWKS names the key the tokens are signed with.
    let jwks: Value = Client::new()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&first.access).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header.kid.unwrap().as_str());

    // Rotation: the new pair works, the old refresh token is spent.
    let (status, j) = refresh(&s, ua, &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "{j}");
    let second = Session {
        access: j["access_token"].as_str().unwrap().to_owned(),
        refresh: j["refresh_token"].as_str().unwrap().to_owned(),
    };
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(me(&s, &second.access).await, StatusCode::OK);
    // A refresh from another User-Agent is refused (bound by policy).
    let (status, j) = refresh(&s, "thief/0.1", &second.refresh).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Another client cannot use demo-client's refresh token.
    let res = Client::new()
        .post(s.url("/token"))
        .header(header::USER_AGENT, ua)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", second.refresh.as_str()),
            ("client_id", "demo-spa"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Reuse of the spent token kills the family and its access tokens.
    let (status, j) = refresh(&s, ua, &first.refresh).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(me(&s, &second.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&s, &first.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&s, ua, &second.refresh).await.0,
        StatusCode::BAD_REQUEST
    );

    // /revoke of an access token is honoured on the next request; the
    // session itself goes on.
    let third = login(&s, ua).await;
    let res = Client::new()
        .post(s.url("/revoke"))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .form(&[
            ("token", third.access.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // RFC 7009 §2.2: the body is empty, so it carries no JSON content type.
    assert!(res.headers().get(header::CONTENT_TYPE).is_none());
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert!(res.bytes().await.unwrap().is_empty());
    assert_eq!(me(&s, &third.access).await, StatusCode::UNAUTHORIZED);
    let (status, j) = refresh(&s, ua, &third.refresh).await;
    assert_eq!(status, StatusCode::OK, "{j}");
    let third = Session {
        access: j["access_token"].as_str().unwrap().to_owned(),
        refresh: j["refresh_token"].as_str().unwrap().to_owned(),
    };

    // Sessions: list, end another one, end all but the current one.
    let phone = login(&s, "phone/2").await;
    let laptop = login(&s, "laptop/3").await;
    let list: Value = get(&s, "/sessions", &third.access)
        .await
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list.iter().filter(|x| x["current"] == true).count(), 1);
    let phone_sid = list
        .iter()
        .find(|x| x["last_user_agent"] == "phone/2")
        .unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = Client::new()
        .delete(s.url(&format!("/sessions/{phone_sid}")))
        .bearer_auth(&third.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&s, &phone.access).await, StatusCode::UNAUTHORIZED);
    let res = Client::new()
        .delete(s.url("/sessions"))
        .bearer_auth(&third.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(me(&s, &laptop.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&s, &third.access).await, StatusCode::OK);

    // Logout: the current session's access token dies at once.
    let res = Client::new()
        .post(s.url("/logout"))
        .bearer_auth(&third.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&s, &third.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&s, ua, &third.refresh).await.0,
        StatusCode::BAD_REQUEST
    );

    // A restart keeps the key (tokens stay valid) and the deny list
    // (revoked tokens stay dead).
    let fourth = login(&s, ua).await;
    drop(s);
    let s = Server::start(&dir, &env);
    assert_eq!(me(&s, &fourth.access).await, StatusCode::OK);
    assert_eq!(me(&s, &third.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&s, &phone.access).await, StatusCode::UNAUTHORIZED);
    let health = Client::new().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs an example's `--self-test` (it serves on a free port, calls itself
/// as a client would, and asserts what it sees).
fn self_test(name: &str, expect: &[&str]) {
    let out = Command::new(binary(name))
        .arg("--self-test")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in expect {
        assert!(stdout.contains(line), "{name}: no `{line}` in {stdout}");
    }
}

/// The load harness's server in its modes that need no load generator:
/// the gate called in-process, a minted token, and the memory probe.
#[test]
fn the_bench_server_runs_its_offline_modes() {
    for alg in ["HS256", "EdDSA", "ES256"] {
        let out = Command::new(bench_server())
            .args(["calls", alg, "100", "20"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{alg}: {out:?}");
        let token = Command::new(bench_server())
            .args(["token", alg])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(token.stdout)
                .unwrap()
                .matches('.')
                .count(),
            2
        );
    }
    let out = Command::new(bench_server())
        .args(["memory", "tollgate", "1000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("tollgate 1000 entries:"), "{stdout}");
    let bad = Command::new(bench_server())
        .arg("nonsense")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("usage"));
}

#[test]
fn the_hyper_example_refuses_then_serves() {
    self_test(
        "hyper_server",
        &[
            "GET /me without a token: 401",
            "POST /token: 200",
            "GET /me with the token: 200",
            "self-test passed",
        ],
    );
}

#[test]
fn the_tonic_example_answers_unauthenticated_then_serves() {
    self_test(
        "tonic_server",
        &[
            "Check without a token: Unauthenticated",
            "Check with the token: Serving",
            "self-test passed",
        ],
    );
}

#[tokio::test]
async fn the_oauth2_crate_against_the_quickstart_on_sqlite_and_postgres() {
    oauth2_flows(None).await;
    if let Some(url) = crate::common::store::new_postgres_database().await {
        oauth2_flows(Some(&url)).await;
    }
}

async fn oauth2_flows(database_url: Option<&str>) {
    use oauth2::{
        ClientId, ClientSecret, IntrospectionUrl, RequestTokenError, ResourceOwnerPassword,
        ResourceOwnerUsername, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
        basic::{BasicClient, BasicErrorResponseType},
    };
    let dir = std::env::temp_dir().join(format!(
        "tollgate-qs-oauth2-{}-{}",
        std::process::id(),
        database_url.is_some()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut env = vec![
        ("TOLLGATE_REUSE_GRACE_SECS", "0"),
        ("TOLLGATE_BOUND_REUSE_GRACE_SECS", "0"),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    let s = Server::start(&dir, &env);
    let client = BasicClient::new(ClientId::new(CLIENT.0.into()))
        .set_client_secret(ClientSecret::new(CLIENT.1.into()))
        .set_token_uri(TokenUrl::new(s.url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(s.url("/introspect")).unwrap());
    // oauth2 wants a client that does not follow redirects (SSRF).
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let login = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("wonderland".into()),
        )
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(login.scopes().unwrap()[0].as_str(), "read");
    assert_eq!(me(&s, login.access_token().secret()).await, StatusCode::OK);

    let first = login.refresh_token().unwrap().clone();
    let next = client
        .exchange_refresh_token(&first)
        .request_async(&http)
        .await
        .unwrap();
    let info = client
        .introspect(next.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.sub(), Some("alice"));

    match client
        .exchange_refresh_token(&first)
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    // The replay killed the session: its access token is now inactive.
    let info = client
        .introspect(next.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!info.active());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /metrics` (TOLLGATE_METRICS=on) after a login, a refresh and a
/// replay, read with a Prometheus text-format parser.
#[tokio::test]
async fn the_quickstart_serves_its_metrics_to_prometheus() {
    let dir = std::env::temp_dir().join(format!("tollgate-qs-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Server::start(
        &dir,
        &[
            ("TOLLGATE_METRICS", "on"),
            ("TOLLGATE_REUSE_GRACE_SECS", "0"),
            ("TOLLGATE_BOUND_REUSE_GRACE_SECS", "0"),
        ],
    );
    let ua = "metrics/1.0";
    let first = login(&s, ua).await;
    assert_eq!(refresh(&s, ua, &first.refresh).await.0, StatusCode::OK);
    assert_eq!(
        refresh(&s, ua, &first.refresh).await.0,
        StatusCode::BAD_REQUEST
    );
    let text = Client::new()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let outcome = |o| [("outcome", o)];
    assert_eq!(
        value("tollgate_refresh_outcomes_total", &outcome("rotated")),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            "tollgate_refresh_outcomes_total",
            &outcome("reuse_detected")
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            "tollgate_token_requests_total",
            &[("grant", "password"), ("outcome", "ok")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            "tollgate_sessions_revoked_total",
            &[("reason", "reuse_detected")]
        ),
        1.0,
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The memory attack of issue 22 on the real quickstart (argon2 with
/// OWASP's parameters, about 19 MiB a check, rate limits on): 100
/// concurrent wrong passwords for the public client from five loopback
/// addresses with fresh usernames. Unbounded, the server grew from 16 MB
/// to 1.8 GB; bounded to a permit per core, its peak stays under 300 MB
/// (a bound on memory, read from the kernel after the burst, not a time),
/// and every answer is a 4xx or a 503.
#[tokio::test]
async fn a_burst_of_wrong_passwords_keeps_the_quickstart_under_300_mb() {
    let dir = std::env::temp_dir().join(format!("tollgate-qs-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Server::start(&dir, &[]);
    let clients: Vec<Client> = (2..7)
        .map(|last| {
            Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, last]))
                .build()
                .unwrap()
        })
        .collect();
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (client, url) = (clients[i % 5].clone(), s.url("/token"));
        burst.spawn(async move {
            let username = format!("fresh-{i}");
            client
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "demo-spa"),
                    ("username", username.as_str()),
                    ("password", "not-the-password"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(status) = burst.join_next().await {
        let status = status.unwrap();
        assert!(
            status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        *answers.entry(status.as_u16()).or_default() += 1;
    }
    // Some were checked (and wrong), the rest turned away.
    assert!(answers.contains_key(&400), "{answers:?}");
    let peak = s.peak_rss();
    eprintln!(
        "quickstart peak RSS after the burst: {} MiB, answers {answers:?}",
        peak >> 20
    );
    assert!(peak < 300 << 20, "peak RSS {} MiB, {answers:?}", peak >> 20);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The quickstart's API is an RFC 9728 protected resource, as the README
/// promises: a 401 from a gated route names its metadata, the metadata is
/// served and names the resource and its authorization server; and what a
/// gated route answers (claims, IPs, User-Agents) is marked no-store.
#[tokio::test]
async fn the_quickstart_publishes_its_resource_metadata_and_no_store_answers() {
    let dir = std::env::temp_dir().join(format!("tollgate-qs-rs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Server::start(&dir, &[]);
    let res = Client::new().get(s.url("/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = s.url("/.well-known/oauth-protected-resource");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let doc: Value = Client::new()
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], s.base, "{doc}");
    assert!(
        doc["authorization_servers"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{doc}"
    );
    let session = login(&s, "qs-test").await;
    for path in ["/me", "/sessions"] {
        let res = get(&s, path, &session.access).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store", "{path}");
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
