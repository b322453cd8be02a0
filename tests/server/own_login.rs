//! `examples/own_login.rs` end to end over a real socket: the app's own
//! login handler issues the tokens and answers as `/token` would (RFC 6749
//! errors, no-store, the browser client's cookie), the gate guards
//! `/orders`, `/token` refreshes, `/logout` ends the session at once.

use crate::common::quickstart::Server;
use http::{StatusCode, header};
use serde_json::Value;

async fn login(s: &Server, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.url("/login"))
        .header(header::USER_AGENT, "orders-cli/1.0")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn orders(s: &Server, access_token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(s.url("/orders"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn refresh(s: &Server, refresh_token: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(s.url("/token"))
        .header(header::USER_AGENT, "orders-cli/1.0")
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "cli"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn the_own_login_example_signs_in_refreshes_and_logs_out() {
    let s = Server::example("own_login");
    let alice = [
        ("username", "alice"),
        ("password", "wonderland"),
        ("client_id", "cli"),
    ];

    let res = login(&s, &alice).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[header::PRAGMA], "no-cache");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "orders:read orders:write");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(orders(&s, &access).await, StatusCode::OK);
    assert_eq!(orders(&s, "not-a-token").await, StatusCode::UNAUTHORIZED);

    // Refreshed by tollgate's /token, bound to what the login saw.
    let (status, rotated) = refresh(&s, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh_token = rotated["refresh_token"].as_str().unwrap().to_owned();

    // Logout ends the session: its access token and refresh token at once.
    let res = reqwest::Client::new()
        .post(s.url("/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(orders(&s, &access).await, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&s, &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_own_login_answers_rfc_6749_errors_and_sets_the_browser_cookie() {
    let s = Server::example("own_login");
    let error = async |form: &[(&str, &str)]| {
        let res = login(&s, form).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        (status, body["error"].as_str().unwrap().to_owned())
    };
    // A scope beyond the client's: the issuer's error, mapped as /token maps it.
    assert_eq!(
        error(&[
            ("username", "alice"),
            ("password", "wonderland"),
            ("client_id", "web"),
            ("scope", "orders:write"),
        ])
        .await,
        (StatusCode::BAD_REQUEST, "invalid_scope".to_owned())
    );
    assert_eq!(
        error(&[
            ("username", "alice"),
            ("password", "guess"),
            ("client_id", "web")
        ])
        .await,
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    assert_eq!(
        error(&[
            ("username", "alice"),
            ("password", "wonderland"),
            ("client_id", "nobody")
        ])
        .await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_owned())
    );

    // The browser client's refresh token goes into its HttpOnly cookie only.
    let res = login(
        &s,
        &[
            ("username", "alice"),
            ("password", "wonderland"),
            ("client_id", "web"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-tollgate_refresh="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");

    // Logout clears it.
    let res = reqwest::Client::new()
        .post(s.url("/logout"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("__Host-tollgate_refresh=; Max-Age=0"),
        "{cleared}"
    );
}
