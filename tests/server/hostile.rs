//! The quickstart server under hostile HTTP: oversized and slow requests,
//! wrong media types, malformed forms, forged and misplaced tokens, and
//! brute force. Every answer is a registered RFC error with the right
//! status, and no body carries SQL, a stack trace, a secret or the token.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::common::quickstart::Server;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Client, StatusCode, header};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const CLIENT: (&str, &str) = ("demo-client", "demo-secret");
const PASSWORD: &str = "wonderland";

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn addr(s: &Server) -> SocketAddr {
    s.base.strip_prefix("http://").unwrap().parse().unwrap()
}

/// One answer, as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends raw bytes (the request must ask for `Connection: close`) and
/// reads the answer until the server closes, within `within`.
async fn raw(to: SocketAddr, request: &[u8], within: Duration) -> Answer {
    let mut stream = TcpStream::connect(to).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within {within:?}");
    parse(&buf)
}

fn parse(buf: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    // Undo chunked framing, if any, well enough for JSON bodies.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n").skip(1).step_by(2).collect::<String>()
    } else {
        body.to_owned()
    };
    Answer {
        status,
        head: head.to_owned(),
        body,
    }
}

fn post_token(body: &[u8], content_type: &str) -> Vec<u8> {
    let mut req = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// What no answer may contain.
fn assert_clean(what: &str, a: &Answer, secrets: &[&str]) {
    let lower = a.body.to_ascii_lowercase();
    for leak in [
        "select ",
        "insert ",
        "sqlx",
        "sqlite",
        "postgres",
        "panicked",
        "backtrace",
        "src/",
        ".rs:",
    ] {
        assert!(!lower.contains(leak), "{what}: `{leak}` in {}", a.body);
    }
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(!a.body.contains(secret), "{what}: a secret in {}", a.body);
        assert!(!a.head.contains(secret), "{what}: a secret in {}", a.head);
    }
}

/// A registered RFC 6749 error with its status.
fn assert_oauth_error(what: &str, a: &Answer, status: u16, error: &str) {
    assert_eq!(
        (a.status, a.error().as_str()),
        (status, error),
        "{what}: {a:?}"
    );
    assert!(
        a.json()["error_description"].is_string(),
        "{what}: {}",
        a.body
    );
    assert_eq!(
        a.header("cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
}

async fn login(s: &Server) -> Value {
    let res = Client::new()
        .post(s.url("/token"))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn hostile_requests_to_the_token_endpoint_get_rfc_errors() {
    let dir = data_dir("hostile-token");
    let s = Server::start(
        &dir,
        &[
            ("TOLLGATE_RATE_LIMITS", "off"),
            ("TOLLGATE_REQUEST_TIMEOUT_SECS", "1"),
        ],
    );
    let to = addr(&s);
    let tokens = login(&s).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let secrets = [CLIENT.1, PASSWORD, refresh];
    let form = "application/x-www-form-urlencoded";
    let t = Duration::from_secs(10);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "20 KiB body",
            post_token(&vec![b'a'; 20 * 1024], form),
            413,
            "invalid_request",
        ),
        (
            "JSON instead of a form",
            post_token(br#"{"grant_type":"password"}"#, "application/json"),
            400,
            "invalid_request",
        ),
        (
            "text/plain",
            post_token(b"grant_type=password", "text/plain"),
            400,
            "invalid_request",
        ),
        (
            "multipart",
            post_token(b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
            400,
            "invalid_request",
        ),
        (
            "latin1 charset",
            post_token(b"grant_type=password", &format!("{form}; charset=latin1")),
            400,
            "invalid_request",
        ),
        (
            "duplicate grant_type",
            post_token(
                b"grant_type=password&grant_type=client_credentials&client_id=demo-spa",
                form,
            ),
            400,
            "invalid_request",
        ),
        (
            "empty grant_type",
            post_token(b"grant_type=&client_id=demo-spa", form),
            400,
            "invalid_request",
        ),
        (
            "unknown grant_type",
            post_token(b"grant_type=urn:evil&client_id=demo-spa", form),
            400,
            "unsupported_grant_type",
        ),
        (
            "raw NUL byte",
            post_token(b"grant_type=password\0&client_id=demo-spa", form),
            400,
            "invalid_request",
        ),
        (
            "encoded NUL byte",
            post_token(b"grant_type=password%00&client_id=demo-spa", form),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8",
            post_token(b"grant_type=%FF%FE&client_id=demo-spa", form),
            400,
            "invalid_request",
        ),
        (
            "15 KiB refresh token",
            post_token(
                format!(
                    "grant_type=refresh_token&client_id=demo-spa&refresh_token={}",
                    "A".repeat(15 * 1024)
                )
                .as_bytes(),
                form,
            ),
            400,
            "invalid_grant",
        ),
        (
            "the secret in the wrong place",
            post_token(
                format!("grant_type=refresh_token&client_id=demo-client&client_secret=x&refresh_token={refresh}").as_bytes(),
                form,
            ),
            401,
            "invalid_client",
        ),
        (
            "GET",
            b"GET /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            405,
            "invalid_request",
        ),
    ];
    for (what, request, status, error) in &cases {
        let a = raw(to, request, t).await;
        assert_oauth_error(what, &a, *status, error);
        assert_clean(what, &a, &secrets);
    }
    let get = raw(to, &cases.last().unwrap().1, t).await;
    assert_eq!(get.header("allow").as_deref(), Some("POST"));

    // A chunked body over the cap (no Content-Length to refuse early).
    let mut chunked = b"POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend(std::iter::repeat_n(b'a', 0x400));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let a = raw(to, &chunked, t).await;
    assert_oauth_error("40 KiB chunked", &a, 413, "invalid_request");

    // A body that never finishes: the server-level timeout answers.
    let slow = b"POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=".to_vec();
    let started = Instant::now();
    let a = raw(to, &slow, t).await;
    assert_eq!(a.status, 408, "{a:?}");
    assert!(started.elapsed() < Duration::from_secs(8));

    // Headers beyond what hyper buffers: refused before any handler runs.
    let mut huge = b"POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let a = raw(to, &huge, t).await;
    assert_eq!(a.status, 431, "{a:?}");

    // Still serving afterwards.
    login(&s).await;
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn with_header(access_token: &str, header: &Value) -> String {
    let payload = access_token.split('.').nth(1).unwrap();
    let sig = access_token.rsplit('.').next().unwrap();
    format!(
        "{}.{payload}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string())
    )
}

fn get_me(extra: &str) -> Vec<u8> {
    format!("GET /me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn forged_and_misplaced_tokens_are_refused_and_never_followed() {
    let dir = data_dir("hostile-gate");
    let s = Server::start(&dir, &[("TOLLGATE_RATE_LIMITS", "off")]);
    let to = addr(&s);
    let access = login(&s).await["access_token"].as_str().unwrap().to_owned();
    let t = Duration::from_secs(10);
    let ok = raw(
        to,
        &get_me(&format!("Authorization: Bearer {access}\r\n")),
        t,
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");

    // Key URLs point at a listener of ours: nothing may ever connect.
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}/jwks.json", trap.local_addr().unwrap());
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut forged = Vec::new();
    for (name, value) in [
        ("alg", Value::from("none")),
        ("alg", Value::from("HS256")),
        ("jku", Value::from(trap_url.clone())),
        ("x5u", Value::from(trap_url.clone())),
        ("kid", Value::from("../../../../../dev/zero")),
        ("kid", Value::from(trap_url.clone())),
        ("crit", serde_json::json!(["jku"])),
        ("typ", Value::from("JWT")),
    ] {
        let mut h = header.clone();
        h[name] = value;
        forged.push((format!("{name} changed"), with_header(&access, &h)));
        if name == "jku" || name == "x5u" {
            // With a key the attacker controls, and no signature at all.
            let mut h = h.clone();
            h["kid"] = Value::from("attacker");
            forged.push((format!("{name} and kid"), with_header(&access, &h)));
        }
    }
    let unsigned = access.rsplit_once('.').unwrap().0;
    forged.push(("alg none, no signature".into(), {
        let mut h = header.clone();
        h["alg"] = Value::from("none");
        format!("{}.", with_header(unsigned, &h).rsplit_once('.').unwrap().0)
    }));
    for (what, token) in &forged {
        let a = raw(
            to,
            &get_me(&format!("Authorization: Bearer {token}\r\n")),
            t,
        )
        .await;
        assert_eq!(a.status, 401, "{what}: {a:?}");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert_clean(what, &a, &[token, &access]);
    }
    let never = tokio::time::timeout(Duration::from_millis(200), trap.accept()).await;
    assert!(never.is_err(), "the server fetched a key URL");

    // Tokens where they are not accepted: the query, a cookie, a form
    // body. No credentials, so a bare challenge without an error code.
    for (what, request) in [
        (
            "query",
            format!("GET /me?access_token={access} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        ),
        ("cookie", get_me(&format!("Cookie: access_token={access}\r\n"))),
        (
            "form body",
            format!(
                "POST /logout HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\naccess_token={access}",
                access.len() + 13
            )
            .into_bytes(),
        ),
    ] {
        let a = raw(to, &request, t).await;
        assert_eq!(a.status, 401, "{what}: {a:?}");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(!challenge.contains("error="), "{what}: {challenge}");
        assert_clean(what, &a, &[&access]);
    }

    // Malformed credentials: 400 invalid_request.
    let long = "a".repeat(20 * 1024);
    for (what, extra) in [
        ("overlong", format!("Authorization: Bearer {long}\r\n")),
        (
            "two headers",
            format!("Authorization: Bearer {access}\r\nAuthorization: Bearer {access}\r\n"),
        ),
        (
            "not a b64token",
            "Authorization: Bearer a\"b\r\n".to_owned(),
        ),
        ("empty", "Authorization: Bearer \r\n".to_owned()),
    ] {
        let a = raw(to, &get_me(&extra), t).await;
        assert_eq!(a.status, 400, "{what}: {a:?}");
        assert!(
            a.header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_request\""),
            "{what}"
        );
        assert_clean(what, &a, &[&access, &long]);
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn password_attempt(s: &Server, client: &Client, user: &str, password: &str) -> Answer {
    let res = client
        .post(s.url("/token"))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let head = res
        .headers()
        .iter()
        .filter(|(k, _)| *k != header::DATE)
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join("\r\n");
    Answer {
        status,
        head,
        body: res.text().await.unwrap(),
    }
}

#[tokio::test]
async fn the_quickstart_locks_out_password_guessing_alike_for_known_and_unknown_users() {
    let dir = data_dir("hostile-lockout");
    let s = Server::start(&dir, &[]);
    let client = Client::new();
    let mut seen = Vec::new();
    for user in ["alice", "mallory-does-not-exist"] {
        let mut answers = Vec::new();
        for _ in 0..5 {
            let a = password_attempt(&s, &client, user, "guess").await;
            assert_oauth_error(user, &a, 400, "invalid_grant");
            answers.push((a.status, a.head, a.body));
        }
        // Locked: the right password is not even checked.
        let a = password_attempt(&s, &client, user, PASSWORD).await;
        assert_oauth_error(user, &a, 429, "temporarily_unavailable");
        assert_eq!(a.header("retry-after").as_deref(), Some("180"), "{a:?}");
        answers.push((a.status, a.head, a.body));
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "a known and an unknown user differ");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_and_unknown_user_and_wrong_password_look_alike() {
    let dir = data_dir("hostile-alike");
    let s = Server::start(&dir, &[("TOLLGATE_RATE_LIMITS", "off")]);
    let client = Client::new();
    // Clients: unknown vs wrong secret, through Basic and the body.
    let mut by_basic = Vec::new();
    let mut by_post = Vec::new();
    for (id, secret) in [
        ("demo-client", "wrong-secret"),
        ("no-such-client", "wrong-secret"),
    ] {
        let form = [("grant_type", "client_credentials")];
        let res = client
            .post(s.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        by_basic.push((
            res.status(),
            res.headers().get(header::WWW_AUTHENTICATE).cloned(),
            res.text().await.unwrap(),
        ));
        let res = client
            .post(s.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        by_post.push((res.status(), res.text().await.unwrap()));
    }
    assert_eq!(by_basic[0], by_basic[1]);
    assert_eq!(by_basic[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(by_post[0], by_post[1]);

    // Users: same answer, and the unknown user costs an argon2 check too.
    // The bound is loose on purpose (a factor of 4 on the fastest of five):
    // skipping argon2 makes the unknown user about 100 times faster.
    let mut fastest = Vec::new();
    for user in ["alice", "nobody-at-all"] {
        let mut best = Duration::MAX;
        let mut bodies = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let a = password_attempt(&s, &client, user, "guess").await;
            best = best.min(started.elapsed());
            bodies.push((a.status, a.head, a.body));
        }
        fastest.push((best, bodies));
    }
    assert_eq!(fastest[0].1, fastest[1].1);
    let (known, unknown) = (fastest[0].0, fastest[1].0);
    assert!(
        unknown * 4 > known && known * 4 > unknown,
        "wrong password {known:?}, unknown user {unknown:?}"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
