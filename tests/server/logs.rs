//! Secrets never reach the logs: a full flow, failures included, with
//! every tracing event at TRACE (sqlx's and sea-orm's as well) captured and
//! searched for every secret that passed through.

use crate::common::{
    Captured,
    store::{Backend, call, harness, new_sqlite_file},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use http::{Request, StatusCode, header};
use tollgate::refresh::RefreshPolicy;
use tower::{Layer, ServiceExt, service_fn};

#[tokio::test]
async fn no_token_secret_or_password_appears_in_trace_output() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // Global, not thread-local: sqlx runs SQLite statements on a worker
    // thread. This binary holds this one test (and nextest runs each test
    // in a process of its own).
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // A SQLite file with sqlx's statement logging on, at every level.
    let mut opts = sea_orm::ConnectOptions::new(new_sqlite_file());
    opts.sqlx_logging(true)
        .sqlx_logging_level(tracing::log::LevelFilter::Trace);
    let db = sea_orm::Database::connect(opts).await.unwrap();
    tollgate::store::migrate(&db).await.unwrap();
    let h = harness(
        Backend {
            name: "sqlite-file",
            db,
        },
        // No grace: the replay below is reuse, not a racing retry.
        RefreshPolicy {
            grace: std::time::Duration::ZERO,
            bound_grace: std::time::Duration::ZERO,
            ..RefreshPolicy::default()
        },
    )
    .await;
    tracing::info!("flow starts");
    let mut secrets = vec![
        h.web_secret.clone(),
        h.svc_secret.clone(),
        "wonderland".to_owned(),
    ];

    // Password grant with client_secret_post, then with Basic.
    let login = h.login().await;
    let basic = format!("Basic {}", STANDARD.encode(format!("web:{}", h.web_secret)));
    let login2 = h
        .post_from(
            "grant_type=password&username=alice&password=wonderland",
            &[("authorization", &basic)],
            None,
        )
        .await;
    assert_eq!(login2.status, StatusCode::OK);
    // Refresh, then replay the consumed token (reuse detection).
    let rotated = h.refresh(&login.refresh_token()).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let replayed = h.refresh(&login.refresh_token()).await;
    assert_eq!(replayed.error(), "invalid_grant");
    // Failures carrying secrets: a wrong password, a wrong client secret.
    let guess = "correct-horse-battery-staple-guess";
    let wrong = h
        .post(&format!(
            "grant_type=password&username=alice&password={guess}&{}",
            h.web_auth()
        ))
        .await;
    assert_eq!(wrong.error(), "invalid_grant");
    let wrong_secret = "not-the-secret-of-web-0123456789";
    let r = h
        .post(&format!(
            "grant_type=password&username=alice&password=wonderland&client_id=web&client_secret={wrong_secret}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // client_credentials, introspection, revocation.
    let cc = h
        .post(&format!("grant_type=client_credentials&{}", h.svc_auth()))
        .await;
    assert_eq!(cc.status, StatusCode::OK);
    let active = h
        .introspect(&format!("token={}&{}", login2.access_token(), h.svc_auth()))
        .await;
    assert_eq!(active.json["active"], true);
    let revoked = h
        .revoke(&format!(
            "token={}&{}",
            login2.refresh_token(),
            h.web_auth()
        ))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    // The gate: accepted, then refused as revoked, then a forged token.
    let svc = h.gate.clone().layer(service_fn(crate::common::echo_sub));
    for token in [
        rotated.access_token(),
        login2.access_token(),
        format!("{}x", rotated.access_token()),
    ] {
        let req = Request::builder()
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    // A browser client: sign in, refresh through the cookie, a forged
    // request carrying the cookie, sign out by cookie.
    let browser = tollgate::TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .browser_client(
            "spa",
            tollgate::token_endpoint::BrowserClient::new(["https://app.example"]),
        )
        .build()
        .unwrap();
    let browser_post = |body: &str, headers: &[(&str, &str)]| {
        let mut req = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap()
    };
    let page = [
        ("origin", "https://app.example"),
        ("x-requested-with", "fetch"),
    ];
    let signed_in = call(
        browser.clone(),
        browser_post(
            "grant_type=password&client_id=spa&username=alice&password=wonderland",
            &page,
        ),
    )
    .await;
    let cookie = signed_in.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split_once(';')
        .unwrap()
        .0
        .to_owned();
    let mut with_cookie = page.to_vec();
    with_cookie.push(("cookie", &cookie));
    let forged = call(
        browser.clone(),
        browser_post(
            "grant_type=refresh_token&client_id=spa",
            &[("origin", "https://evil.example"), ("cookie", &cookie)],
        ),
    )
    .await;
    assert_eq!(forged.error(), "invalid_request");
    let refreshed = call(
        browser.clone(),
        browser_post("grant_type=refresh_token&client_id=spa", &with_cookie),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let next_cookie = refreshed.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split_once(';')
        .unwrap()
        .0
        .to_owned();
    let mut out = page.to_vec();
    out.push(("cookie", &next_cookie));
    let signed_out = call(browser.revocation(), browser_post("client_id=spa", &out)).await;
    assert_eq!(signed_out.status, StatusCode::OK);
    for c in [&cookie, &next_cookie] {
        secrets.push(c.split_once('=').unwrap().1.to_owned());
    }
    secrets.extend([signed_in.access_token(), refreshed.access_token()]);
    tracing::info!("flow ends");

    secrets.extend([guess.to_owned(), wrong_secret.to_owned()]);
    for r in [&login, &login2, &rotated, &cc] {
        let access = r.access_token();
        // Any part of a JWT would do: the signature alone is a credential's
        // proof, the payload its content.
        secrets.extend(access.split('.').skip(1).map(str::to_owned));
        secrets.push(access);
        if r.json.get("refresh_token").is_some() {
            secrets.push(r.refresh_token());
        }
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("flow starts") && logs.contains("flow ends"),
        "nothing captured"
    );
    // The capture saw the store's statements and the refusals, the events
    // most likely to carry a secret.
    for expected in [
        "sqlx::query",
        "request refused",
        "session revoked",
        "access token rejected",
        // The token request span and its closing event, with stable fields.
        "token_request{grant=\"password\" client_id=\"web\"}",
        "token request outcome=\"ok\" duration_ms=",
        "outcome=\"invalid_client\"",
        "reason=\"invalid\"",
    ] {
        assert!(logs.contains(expected), "no `{expected}` in {logs}");
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret ({} bytes) is in the logs",
            secret.len()
        );
    }
}
