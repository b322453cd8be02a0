//! Refresh grants per second over HTTP (loopback) beside a raw-SQL floor,
//! in one run, on a SQLite file (WAL) and on PostgreSQL.
//!
//! `cargo bench --bench refresh` runs 5 s per variant (`BENCH_SECS`) at 1, 16
//! and 64 clients; PostgreSQL is used
//! when `TOLLGATE_BENCH_PG_URL` (or `TOLLGATE_TEST_PG_URL`) names a server
//! (`eval "$(scripts/pg-start)"` starts one). Without `--bench` (a test
//! run) every variant runs for a fraction of a second as a smoke test.
//!
//! - `http`: N clients, each with its own session and keep-alive
//!   connection, refresh in a loop through `TokenEndpoint` mounted in axum
//!   (form parsing, client authentication with a SHA-256 secret, rotation
//!   transaction, JWT signing, JSON).
//! - `floor`: N tasks do only the database work of a rotation with sqlx
//!   directly: in one transaction select the token by hash, consume it,
//!   insert the child, advance the family.
//! - `code flow`: N clients each sign in from scratch in a loop, over the
//!   same kind of connection: `GET /authorize` (validated, stored), the
//!   application's login route calling `Authorizer::complete` (the code),
//!   `POST /token grant_type=authorization_code` with the PKCE verifier (a
//!   new session). One operation is the whole sign-in, three requests;
//!   beside it the refresh grant at the same load.

#![allow(missing_docs)]

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use tollgate::{
    issuer::{Issuer, RequestContext},
    keys::{Algorithm, SigningKey},
    refresh::RefreshPolicy,
    secret::{RefreshSecret, hash_token, random_string, random_token},
    store::{self, clients::NewClient},
    token_endpoint::{Approve, Authorization, Authorizer, TokenEndpoint},
};

const REDIRECT: &str = "http://127.0.0.1/cb";

struct Run {
    name: String,
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }
}

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

async fn connect(url: &str, conns: u32) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(conns).sqlx_logging(false);
    if url.starts_with("sqlite") {
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
    }
    let db = Database::connect(opts).await.unwrap();
    store::migrate(&db).await.unwrap();
    db
}

async fn fresh_database(kind: &str) -> Option<String> {
    match kind {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("tollgate-bench-{}", random_string(6)));
            std::fs::create_dir_all(&dir).unwrap();
            Some(format!(
                "sqlite://{}?mode=rwc",
                dir.join("db.sqlite").display()
            ))
        }
        _ => {
            let url = std::env::var("TOLLGATE_BENCH_PG_URL")
                .or_else(|_| std::env::var("TOLLGATE_TEST_PG_URL"))
                .ok()?;
            let admin = Database::connect(url.as_str()).await.unwrap();
            let name = format!(
                "bench_{}",
                random_string(6).to_lowercase().replace(['-', '_'], "x")
            );
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            Some(format!("{base}/{name}"))
        }
    }
}

struct Setup {
    db: DatabaseConnection,
    issuer: Issuer,
    secret: String,
}

async fn setup(url: &str, conns: u32) -> Setup {
    let db = connect(url, conns).await;
    let secret = store::clients::register(
        &db,
        NewClient::confidential("bench", "read write"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap()
    .unwrap();
    let mut native = NewClient::public("native", "read write");
    native.redirect_uris = vec![REDIRECT.into()];
    store::clients::register(&db, native, std::time::SystemTime::now())
        .await
        .unwrap();
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(SigningKey::hmac("k", Algorithm::HS256, &[7; 32]).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .refresh_secret(RefreshSecret::new(&[3; 32]).unwrap())
        .policy(RefreshPolicy {
            grace: Duration::ZERO,
            ..RefreshPolicy::default()
        })
        .build()
        .unwrap();
    Setup { db, issuer, secret }
}

async fn login(s: &Setup) -> String {
    s.issuer
        .issue("user", "bench", None, &RequestContext::default())
        .await
        .unwrap()
        .refresh_token
        .unwrap()
}

/// N keep-alive HTTP clients refreshing their own sessions for `dur`.
async fn http_run(name: String, s: &Setup, clients: usize, dur: Duration) -> Run {
    let app = axum::Router::new().route_service(
        "/token",
        TokenEndpoint::builder(s.issuer.clone()).build().unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let secret = Arc::new(s.secret.clone());
    let mut tokens = Vec::new();
    for _ in 0..clients {
        tokens.push(login(s).await);
    }
    let mut tasks = Vec::new();
    let start = Instant::now();
    let deadline = start + dur;
    for mut token in tokens {
        let secret = Arc::clone(&secret);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let (mut ok, mut errors, mut lat) = (0, 0, Vec::new());
            while Instant::now() < deadline {
                let body = format!(
                    "grant_type=refresh_token&refresh_token={token}&client_id=bench&client_secret={secret}"
                );
                let req = Request::post("/token")
                    .header(header::HOST, "127.0.0.1")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let t0 = Instant::now();
                let res = sender.send_request(req).await.unwrap();
                let status = res.status();
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                lat.push(t0.elapsed());
                if status == StatusCode::OK {
                    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    token = json["refresh_token"].as_str().unwrap().to_owned();
                    ok += 1;
                } else {
                    errors += 1;
                    break;
                }
            }
            (ok, errors, lat)
        }));
    }
    let run = collect(name, start, tasks).await;
    server.abort();
    run
}

/// The application's login route: the user is signed in already.
async fn approve(
    axum::extract::State(authorizer): axum::extract::State<Authorizer>,
    uri: http::Uri,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let id = uri
        .query()
        .and_then(|q| q.strip_prefix("authorization="))
        .unwrap_or_default();
    match authorizer
        .complete(&headers, id, Approve::new("user"))
        .await
    {
        Ok(redirect) => redirect.into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// One GET on `sender`: the status and the `Location` and `Set-Cookie`.
async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::get(path).header(header::HOST, "127.0.0.1");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = sender
        .send_request(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let value = |name| {
        res.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (location, set_cookie) = (value(header::LOCATION), value(header::SET_COOKIE));
    let status = res.status();
    res.into_body().collect().await.unwrap();
    (status, location.unwrap_or_default(), set_cookie)
}

/// N keep-alive clients signing in with the code flow in a loop for `dur`.
async fn code_run(name: String, s: &Setup, clients: usize, dur: Duration) -> Run {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let endpoint = TokenEndpoint::builder(s.issuer.clone())
        .authorization(Authorization::new("/login"))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route_service("/token", endpoint.clone())
        .route_service("/authorize", endpoint.authorization_endpoint().unwrap())
        .route("/login", axum::routing::get(approve))
        .with_state(endpoint.authorizer().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(hash_token(&verifier));
    let authorize = Arc::new(format!(
        "/authorize?client_id=native&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb\
         &code_challenge={challenge}&code_challenge_method=S256&state=s"
    ));
    let redeem = Arc::new(format!(
        "grant_type=authorization_code&client_id=native&code_verifier={verifier}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code="
    ));
    let mut tasks = Vec::new();
    let start = Instant::now();
    let deadline = start + dur;
    for _ in 0..clients {
        let (authorize, redeem) = (Arc::clone(&authorize), Arc::clone(&redeem));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let (mut ok, mut errors, mut lat) = (0, 0, Vec::new());
            let mut cookie: Option<String> = None;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let (status, login, set) = get(&mut sender, &authorize, cookie.as_deref()).await;
                if let Some(set) = set {
                    cookie = set.split(';').next().map(str::to_owned);
                }
                let (approved, back, _) = get(&mut sender, &login, cookie.as_deref()).await;
                let code = back.split("code=").nth(1).and_then(|c| c.split('&').next());
                let (Some(code), StatusCode::SEE_OTHER, StatusCode::SEE_OTHER) =
                    (code, status, approved)
                else {
                    errors += 1;
                    break;
                };
                let req = Request::post("/token")
                    .header(header::HOST, "127.0.0.1")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(format!("{redeem}{code}"))))
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                let status = res.status();
                res.into_body().collect().await.unwrap();
                lat.push(t0.elapsed());
                if status == StatusCode::OK {
                    ok += 1;
                } else {
                    errors += 1;
                    break;
                }
            }
            (ok, errors, lat)
        }));
    }
    let run = collect(name, start, tasks).await;
    server.abort();
    run
}

/// N tasks doing a rotation's database work with sqlx directly.
async fn floor_run(name: String, s: &Setup, url: &str, tasks_n: usize, dur: Duration) -> Run {
    let pg = s.db.get_database_backend() == DbBackend::Postgres;
    // Sessions first, so no other connection writes during the run.
    let mut tokens = Vec::new();
    for _ in 0..tasks_n {
        tokens.push(login(s).await);
    }
    let mut tasks = Vec::new();
    let start = Instant::now();
    let deadline = start + dur;
    macro_rules! spawn_floor {
        ($pool:expr) => {
            for mut token in tokens.drain(..) {
                let pool = $pool.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut ok, mut lat) = (0, Vec::new());
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        let child = random_token();
                        let now = chrono::Utc::now();
                        let mut tx = pool.begin().await.unwrap();
                        let select: &'static str = if pg {
                            "SELECT id, family_id, generation, user_id, client_id, scope \
                             FROM tollgate_refresh_token WHERE token_hash = $1 FOR UPDATE"
                        } else {
                            "SELECT id, family_id, generation, user_id, client_id, scope \
                             FROM tollgate_refresh_token WHERE token_hash = $1"
                        };
                        let (id, family, generation, user, client, scope): (i64, String, i64, String, String, String) =
                            sea_orm::sqlx::query_as(select)
                            .bind(hash_token(&token).to_vec())
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                        sea_orm::sqlx::query(
                            "UPDATE tollgate_refresh_token SET consumed_at = $1, last_used_at = $1, updated_at = $1 \
                             WHERE id = $2 AND consumed_at IS NULL",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                        sea_orm::sqlx::query(
                            "INSERT INTO tollgate_refresh_token (family_id, parent_id, generation, token_hash, user_id, \
                             client_id, scope, issued_at, expires_at, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $8)",
                        )
                        .bind(&family)
                        .bind(id)
                        .bind(generation + 1)
                        .bind(hash_token(&child).to_vec())
                        .bind(&user)
                        .bind(&client)
                        .bind(&scope)
                        .bind(now)
                        .bind(now + chrono::Duration::days(14))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                        sea_orm::sqlx::query("UPDATE tollgate_token_family SET generation = $1, last_used_at = $2 WHERE id = $3")
                            .bind(generation + 1)
                            .bind(now)
                            .bind(&family)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                        lat.push(t0.elapsed());
                        token = child;
                        ok += 1;
                    }
                    (ok, 0usize, lat)
                }));
            }
        };
    }
    if pg {
        let pool = sea_orm::sqlx::postgres::PgPoolOptions::new()
            .max_connections(tasks_n as u32 + 2)
            .connect(url)
            .await
            .unwrap();
        spawn_floor!(pool);
    } else {
        let opts: sea_orm::sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sea_orm::sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        spawn_floor!(pool);
    }
    collect(name, start, tasks).await
}

async fn collect(
    name: String,
    start: Instant,
    tasks: Vec<tokio::task::JoinHandle<(usize, usize, Vec<Duration>)>>,
) -> Run {
    let (mut ops, mut errors, mut latencies) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, l) = t.await.unwrap();
        ops += o;
        errors += e;
        latencies.extend(l);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Run {
        name,
        ops,
        errors,
        elapsed,
        latencies,
    }
}

fn main() {
    let bench = bench_mode();
    if std::env::args().any(|a| a == "--list") {
        // cargo-nextest asks for the tests in this binary: one smoke test,
        // and none of them ignored.
        if !std::env::args().any(|a| a == "--ignored") {
            println!("refresh_smoke: test");
        }
        return;
    }
    let dur = if bench {
        let secs = std::env::var("BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok());
        Duration::from_secs(secs.unwrap_or(5))
    } else {
        Duration::from_millis(300)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut runs = Vec::new();
        for kind in ["sqlite", "postgres"] {
            let Some(url) = fresh_database(kind).await else {
                eprintln!("{kind}: no server configured, skipped");
                continue;
            };
            let conns = if kind == "sqlite" { 1 } else { 20 };
            let s = setup(&url, conns).await;
            for clients in [1usize, 16, 64] {
                runs.push(
                    floor_run(
                        format!("{kind} floor (sqlx) x{clients}"),
                        &s,
                        &url,
                        clients,
                        dur,
                    )
                    .await,
                );
                runs.push(
                    http_run(format!("{kind} http /token x{clients}"), &s, clients, dur).await,
                );
            }
            // The whole sign-in beside the refresh grant at the same load.
            for clients in [1usize, 16] {
                runs.push(http_run(format!("{kind} refresh x{clients}"), &s, clients, dur).await);
                runs.push(code_run(format!("{kind} code flow x{clients}"), &s, clients, dur).await);
            }
        }
        println!(
            "\n{:<32} {:>10} {:>9} {:>9} {:>7} {:>11}",
            "variant", "ops/s", "p50 ms", "p99 ms", "errors", "vs previous"
        );
        for (i, r) in runs.iter().enumerate() {
            // Runs come in pairs: the floor, then HTTP at the same load;
            // the refresh grant, then the code flow.
            let ratio = if i % 2 == 1 {
                format!("{:.0}%", 100.0 * r.rate() / runs[i - 1].rate())
            } else {
                String::new()
            };
            println!(
                "{:<32} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>11}",
                r.name,
                r.rate(),
                r.pct(0.50).as_secs_f64() * 1e3,
                r.pct(0.99).as_secs_f64() * 1e3,
                r.errors,
                ratio
            );
            assert_eq!(r.errors, 0, "{}: errors", r.name);
            assert!(r.ops > 0, "{}: no operations", r.name);
        }
    });
}
