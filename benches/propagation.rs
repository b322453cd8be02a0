//! How fast a revocation committed on one instance is enforced by
//! another: two instances in this process, each with its own pool on one
//! database, instance B's gate under load from a verifying task.
//!
//! `cargo bench --all-features --bench propagation` commits `BENCH_REVOCATIONS` (default
//! 1000) session logouts on A at a steady pace (one every 5 ms) and
//! records, for each, the time from A's commit returning to B's first
//! refusal of that session's access token (checked every 0.5 ms by one
//! watcher). Modes, one after another in the same run:
//!
//! - PostgreSQL with notifications (poll every hour: notifications alone);
//! - PostgreSQL poll only, at the default interval (1 s);
//! - MariaDB poll only, at the default interval, when configured.
//!
//! It also reports B's gate throughput while revocations stream in against
//! the same task with none streaming, and the commit cost of a NOTIFY: a
//! transaction that records a row with and without one (raw SQL).
//!
//! PostgreSQL from `TOLLGATE_BENCH_PG_URL` or `TOLLGATE_TEST_PG_URL`
//! (`eval "$(scripts/pg-start)"`), MariaDB from `TOLLGATE_TEST_MYSQL_URL`.
//! Without `--bench` (a test run) it commits 20 revocations per mode as a
//! smoke test.

#![allow(missing_docs)]

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tokio::sync::Mutex;
use tollgate::{
    AccessTokenLayer, RefreshSecret, RevocationCache, RevokedReason, SigningKey,
    issuer::{Issuer, RequestContext},
    keys::Algorithm,
    secret::random_string,
    store::{self, clients::NewClient},
    sync::RevocationSync,
};

const PACE: Duration = Duration::from_millis(5);
const CHECK_EVERY: Duration = Duration::from_micros(500);

struct Instance {
    issuer: Issuer,
    gate: AccessTokenLayer,
    _follower: Option<tokio::task::JoinHandle<()>>,
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(8).sqlx_logging(false);
    Database::connect(opts).await.unwrap()
}

async fn instance(url: &str, follow: Option<(Duration, bool)>) -> Instance {
    let db = connect(url).await;
    let deny = RevocationCache::default();
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(SigningKey::hmac("k", Algorithm::HS256, &[7; 32]).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .refresh_secret(RefreshSecret::new(&[9; 32]).unwrap())
        .revocations(deny.clone())
        .build()
        .unwrap();
    let gate = issuer.access_token_layer().build().unwrap();
    let follower = match follow {
        Some((interval, notifications)) => {
            let sync = RevocationSync::builder(db, deny)
                .interval(interval)
                .notifications(notifications)
                .build();
            sync.sync().await.unwrap();
            Some(sync.spawn())
        }
        None => {
            // Warm once, so its gate serves; then it only writes.
            RevocationSync::builder(db, deny)
                .build()
                .sync()
                .await
                .unwrap();
            None
        }
    };
    Instance {
        issuer,
        gate,
        _follower: follower,
    }
}

/// A fresh, migrated database on the server at `url`.
async fn fresh(url: &str) -> String {
    let admin = Database::connect(url).await.unwrap();
    let name = format!(
        "prop_{}",
        random_string(6).to_lowercase().replace(['-', '_'], "x")
    );
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let db = connect(&url).await;
    store::migrate(&db).await.unwrap();
    store::clients::register(
        &db,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    url
}

struct Mode {
    name: String,
    latencies: Vec<Duration>,
    /// B's verifications per second while revocations streamed, and with
    /// none streaming.
    loaded_rate: f64,
    idle_rate: f64,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

/// Verifies `token` on `gate` in a loop until `stop`; counts.
fn load(
    gate: AccessTokenLayer,
    token: String,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..64 {
                let _ = gate.verify(&token);
            }
            counted.fetch_add(64, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
    });
    (task, count)
}

async fn measure(name: String, url: &str, follow: (Duration, bool), n: usize) -> Mode {
    let url = fresh(url).await;
    let a = instance(&url, None).await;
    let b = Arc::new(instance(&url, Some(follow)).await);
    // Sessions to revoke, made up front.
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        let t = a
            .issuer
            .issue("alice", "app", None, &RequestContext::default())
            .await
            .unwrap();
        let sid = b.gate.verify(&t.access_token).unwrap().sid.unwrap();
        sessions.push((t.access_token, sid));
    }
    let live = a
        .issuer
        .issue("bob", "app", None, &RequestContext::default())
        .await
        .unwrap()
        .access_token;

    // Idle throughput of B's gate under the load task.
    let stop = Arc::new(AtomicBool::new(false));
    let (task, count) = load(b.gate.clone(), live.clone(), Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = count.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rate = (count.load(Ordering::Relaxed) - before) as f64;

    // The watcher: every CHECK_EVERY, the pending tokens B still accepts.
    let pending: Arc<Mutex<VecDeque<(String, Instant)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let watcher = {
        let (pending, latencies, b) =
            (Arc::clone(&pending), Arc::clone(&latencies), Arc::clone(&b));
        tokio::spawn(async move {
            loop {
                {
                    let mut p = pending.lock().await;
                    let now = Instant::now();
                    let mut l = latencies.lock().await;
                    p.retain(|(token, committed)| {
                        if b.gate.verify(token).is_ok() {
                            true
                        } else {
                            l.push(now - *committed);
                            false
                        }
                    });
                }
                tokio::time::sleep(CHECK_EVERY).await;
            }
        })
    };

    let started = count.load(Ordering::Relaxed);
    let streaming = Instant::now();
    let mut pace = tokio::time::interval(PACE);
    for (token, sid) in &sessions {
        pace.tick().await;
        a.issuer
            .sessions()
            .revoke_session(sid, RevokedReason::Admin)
            .await
            .unwrap();
        pending
            .lock()
            .await
            .push_back((token.clone(), Instant::now()));
    }
    let streamed = streaming.elapsed();
    let loaded_rate = (count.load(Ordering::Relaxed) - started) as f64 / streamed.as_secs_f64();
    // Every revocation must arrive; the poll bounds the wait.
    let deadline = Instant::now() + follow.0.min(Duration::from_secs(10)) + Duration::from_secs(5);
    while !pending.lock().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{name}: {} of {n} revocations never arrived",
            pending.lock().await.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watcher.abort();
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort();
    assert_eq!(latencies.len(), n, "{name}");
    Mode {
        name,
        latencies,
        loaded_rate,
        idle_rate,
    }
}

/// Mean commit time of a transaction that writes one row, with and
/// without a NOTIFY (raw SQL on PostgreSQL).
async fn notify_cost(url: &str, n: usize) -> (Duration, Duration) {
    let db = connect(&fresh(url).await).await;
    db.execute_unprepared("CREATE TABLE t (id bigserial primary key, v text)")
        .await
        .unwrap();
    let mut out = [Duration::ZERO; 2];
    for round in 0..4 {
        for (i, notify) in [false, true].into_iter().enumerate() {
            let sql = if notify {
                "BEGIN; INSERT INTO t (v) VALUES ('x'); NOTIFY bench_channel; COMMIT;"
            } else {
                "BEGIN; INSERT INTO t (v) VALUES ('x'); COMMIT;"
            };
            let start = Instant::now();
            for _ in 0..n / 4 {
                db.execute_unprepared(sql).await.unwrap();
            }
            if round > 0 {
                out[i] += start.elapsed();
            }
        }
    }
    let per = |d: Duration| d / (3 * (n / 4).max(1)) as u32;
    (per(out[0]), per(out[1]))
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if std::env::args().any(|a| a == "--list") {
        if !std::env::args().any(|a| a == "--ignored") {
            println!("propagation_smoke: test");
        }
        return;
    }
    let n: usize = if bench {
        std::env::var("BENCH_REVOCATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    } else {
        20
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pg = std::env::var("TOLLGATE_BENCH_PG_URL")
            .or_else(|_| std::env::var("TOLLGATE_TEST_PG_URL"))
            .ok();
        let my = std::env::var("TOLLGATE_TEST_MYSQL_URL").ok();
        let hour = Duration::from_secs(3600);
        let second = tollgate::sync::DEFAULT_POLL_INTERVAL;
        let mut modes = Vec::new();
        if let Some(pg) = &pg {
            modes.push(measure("postgres notify".into(), pg, (hour, true), n).await);
            modes.push(measure("postgres poll 1 s".into(), pg, (second, false), n).await);
        } else {
            eprintln!("postgres: no server configured, skipped");
        }
        if let Some(my) = &my {
            modes.push(measure("mariadb poll 1 s".into(), my, (second, true), n).await);
        } else {
            eprintln!("mariadb: no server configured, skipped");
        }
        println!(
            "\n{:<20} {:>6} {:>9} {:>9} {:>9} {:>14} {:>14}",
            "mode", "n", "p50 ms", "p99 ms", "max ms", "gate idle /s", "gate loaded /s"
        );
        for m in &modes {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:<20} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>14.0} {:>14.0}",
                m.name,
                m.latencies.len(),
                ms(pct(&m.latencies, 0.50)),
                ms(pct(&m.latencies, 0.99)),
                ms(*m.latencies.last().unwrap()),
                m.idle_rate,
                m.loaded_rate,
            );
        }
        if let Some(pg) = &pg {
            let (plain, notify) = notify_cost(pg, if bench { 2000 } else { 40 }).await;
            println!(
                "\npostgres commit of one row: {:.3} ms, with NOTIFY {:.3} ms ({:.2}x)",
                plain.as_secs_f64() * 1e3,
                notify.as_secs_f64() * 1e3,
                notify.as_secs_f64() / plain.as_secs_f64()
            );
        }
    });
}
