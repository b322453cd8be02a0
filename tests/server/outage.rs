//! PostgreSQL stopped (immediate: a crash, as far as clients can tell) and
//! restarted under a bounded load of refreshes and protected requests.
//! The gate serves from memory throughout; the token endpoint answers 503
//! with Retry-After while the database is gone and recovers within
//! seconds; afterwards no family is forked, no rotation half-written, and
//! no revoked token alive.
//!
//! The test runs its own cluster (from `scripts/pg-start`), since it stops
//! it. `TOLLGATE_OUTAGE_SECS` lengthens the outage and the load around it.

use std::{
    collections::HashMap,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::store::{Backend, harness};
use entity::{refresh_token, token_family};
use http::{StatusCode, header};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, EntityTrait};
use tollgate::{refresh::RefreshPolicy, sync::RevocationSync};

/// A throwaway cluster of this test's own.
struct Cluster {
    url: String,
    data: String,
    bin: String,
}

impl Cluster {
    /// Starts one, or `None` where there is no PostgreSQL (outside CI).
    fn start() -> Option<Self> {
        // The shared server's presence says PostgreSQL is installed.
        crate::common::store::server_url("TOLLGATE_TEST_PG_URL", "PostgreSQL")?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-start");
        let out = Command::new(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars: HashMap<String, String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Self {
            url: vars["TOLLGATE_TEST_PG_URL"].clone(),
            data: vars["TOLLGATE_PG_DATA"].clone(),
            bin: vars["TOLLGATE_PG_BIN"].clone(),
        })
    }

    fn pg_ctl(&self, args: &str) {
        let cmd = format!("'{}/pg_ctl' -D '{}' {args}", self.bin, self.data);
        let status = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &cmd])
                .status()
        } else {
            Command::new("sh").args(["-c", &cmd]).status()
        }
        .unwrap();
        assert!(status.success(), "pg_ctl {args}");
    }

    /// Kills the server the way a crash would: no checkpoint, every
    /// connection cut.
    fn crash(&self) {
        self.pg_ctl("-m immediate -w stop");
    }

    fn restart(&self) {
        self.pg_ctl(&format!("-l '{}/server.log' -w -t 60 start", self.data));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl("-m immediate -w stop");
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn secs_from_env(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("TOLLGATE_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    unavailable: AtomicU64,
    /// Anything else: must stay zero.
    wrong: AtomicU64,
    /// When the last 200 was seen, in ms since the start.
    last_ok_ms: AtomicU64,
}

const REFRESHERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_and_restarting_under_load_loses_and_forks_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let outage = secs_from_env(2);
    let mut opts = ConnectOptions::new(cluster.url.clone());
    opts.max_connections(16)
        .acquire_timeout(Duration::from_millis(500))
        .sqlx_logging(false);
    let db = Database::connect(opts).await.unwrap();
    // pg-start turns synchronous_commit off for speed, which lets a crash
    // lose commits already acknowledged: a client would hold a child the
    // database forgot. Production runs with it on; so does this test.
    db.execute_unprepared("ALTER SYSTEM SET synchronous_commit = on")
        .await
        .unwrap();
    db.execute_unprepared("SELECT pg_reload_conf()")
        .await
        .unwrap();
    tollgate::store::migrate(&db).await.unwrap();
    // A grace period longer than the outage: a rotation that committed
    // just before the crash but whose answer was lost is retried with the
    // parent after the restart, and must get the same child back.
    let policy = RefreshPolicy {
        grace: outage + Duration::from_secs(30),
        ..RefreshPolicy::default()
    };
    let h = Arc::new(
        harness(
            Backend {
                name: "postgres",
                db: db.clone(),
            },
            policy,
        )
        .await,
    );
    let sync = RevocationSync::builder(db.clone(), h.deny.clone())
        .interval(Duration::from_millis(100))
        .build();
    sync.sync().await.unwrap();
    let poller = sync.spawn();

    // A live session the gate keeps accepting, and a logged-out one it
    // must keep refusing.
    let live = h.login().await;
    let gone = h.login().await;
    let r = h
        .revoke(&format!("token={}&{}", gone.refresh_token(), h.web_auth()))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!h.accepts(&gone.access_token()));

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut refreshers = Vec::new();
    for _ in 0..REFRESHERS {
        let first = h.login().await.refresh_token();
        let (h, stop, counts) = (Arc::clone(&h), Arc::clone(&stop), Arc::clone(&counts));
        refreshers.push(tokio::spawn(async move {
            let mut token = first;
            while !stop.load(Ordering::SeqCst) {
                let r = h.refresh(&token).await;
                match r.status {
                    StatusCode::OK => {
                        token = r.refresh_token();
                        counts.ok.fetch_add(1, Ordering::SeqCst);
                        let ms = started.elapsed().as_millis() as u64;
                        counts.last_ok_ms.fetch_max(ms, Ordering::SeqCst);
                    }
                    StatusCode::SERVICE_UNAVAILABLE
                        if r.headers.contains_key(header::RETRY_AFTER) =>
                    {
                        counts.unavailable.fetch_add(1, Ordering::SeqCst);
                        // A client backs off before retrying the same token.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => {
                        eprintln!("unexpected answer: {} {}", r.status, r.raw);
                        counts.wrong.fetch_add(1, Ordering::SeqCst);
                        return token;
                    }
                }
            }
            token
        }));
    }
    let gate_checks = Arc::new(AtomicU64::new(0));
    let gate_task = tokio::spawn({
        let (h, stop, checks) = (Arc::clone(&h), Arc::clone(&stop), Arc::clone(&gate_checks));
        let (live, gone) = (live.access_token(), gone.access_token());
        async move {
            while !stop.load(Ordering::SeqCst) {
                assert!(h.accepts(&live), "the gate refused a live token");
                assert!(!h.accepts(&gone), "the gate accepted a revoked token");
                checks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }
    });

    // Load, crash, outage, restart, load.
    let phase = secs_from_env(1);
    tokio::time::sleep(phase).await;
    let before_crash = counts.ok.load(Ordering::SeqCst);
    cluster.crash();
    let crashed_at = started.elapsed();
    tokio::time::sleep(outage).await;
    let during = (
        counts.ok.load(Ordering::SeqCst),
        counts.unavailable.load(Ordering::SeqCst),
    );
    let gate_during = gate_checks.load(Ordering::SeqCst);
    cluster.restart();
    let restarted_at = started.elapsed();
    // Wait (bounded) for the endpoint to come back, then load a little more.
    let deadline = Instant::now() + Duration::from_secs(15);
    while counts.last_ok_ms.load(Ordering::SeqCst) < restarted_at.as_millis() as u64 {
        assert!(
            Instant::now() < deadline,
            "no refresh succeeded 15 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Whole milliseconds on one side: a refresh in the restart's own
    // millisecond reads as no time at all, never as negative.
    let recovered_in = Duration::from_millis(counts.last_ok_ms.load(Ordering::SeqCst))
        .saturating_sub(restarted_at);
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::SeqCst);
    let mut heads = Vec::new();
    for r in refreshers {
        heads.push(r.await.unwrap());
    }
    gate_task.await.unwrap();
    poller.abort();

    let ok = counts.ok.load(Ordering::SeqCst);
    let unavailable = counts.unavailable.load(Ordering::SeqCst);
    eprintln!(
        "outage {outage:?} from {crashed_at:?}: {ok} rotations ({before_crash} before the crash, \
         {} during), {unavailable} answered 503, recovered {recovered_in:?} after the restart, \
         {} gate checks ({} during the outage)",
        during.0 - before_crash,
        gate_checks.load(Ordering::SeqCst),
        gate_during,
    );
    assert_eq!(
        counts.wrong.load(Ordering::SeqCst),
        0,
        "answers other than 200 and 503"
    );
    assert!(
        before_crash > 0 && during.1 > 0,
        "the load did not span the outage"
    );
    assert!(ok > during.0, "no rotation after the restart");

    // The tables: one lineage per family, every consumed token with
    // exactly one child, nothing revoked but the logged-out session.
    let families = token_family::Entity::find().all(&db).await.unwrap();
    let tokens = refresh_token::Entity::find().all(&db).await.unwrap();
    let mut revoked = 0;
    for f in &families {
        let mut rows: Vec<_> = tokens.iter().filter(|t| t.family_id == f.id).collect();
        rows.sort_by_key(|t| t.generation);
        for (i, t) in rows.iter().enumerate() {
            assert_eq!(
                t.generation, i as i64,
                "family {} forked or has a gap",
                f.id
            );
            if i > 0 {
                assert_eq!(t.parent_id, Some(rows[i - 1].id));
            }
            let children = rows
                .iter()
                .filter(|c| c.parent_id.as_ref() == Some(&t.id))
                .count();
            let head = i == rows.len() - 1;
            assert_eq!(
                (t.consumed_at.is_some(), children),
                (!head, usize::from(!head)),
                "family {}: a half-written rotation at generation {i}",
                f.id
            );
        }
        assert_eq!(f.generation, rows.len() as i64 - 1);
        revoked += usize::from(f.revoked_at.is_some());
    }
    assert_eq!(revoked, 1, "only the logged-out session is revoked");
    // Every client's last token still works; the revoked session stays dead.
    for head in heads {
        let r = h.refresh(&head).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }
    assert!(!h.accepts(&gone.access_token()));
    assert_eq!(
        h.refresh(&gone.refresh_token()).await.error(),
        "invalid_grant"
    );
}

/// Revocations committed just before a crash and just after the restart
/// both reach a follower whose poll is an hour away: by notification, or
/// by the listener's catch-up once it has reconnected. None is lost, and
/// each is enforced within the listener's reconnect backoff (at most 5 s)
/// plus a sync of PostgreSQL being back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_around_a_postgres_restart_reach_the_follower_without_the_poll() {
    use tollgate::{
        AccessTokenLayer, Issuer, RefreshSecret, RevocationCache, RevokedReason,
        issuer::RequestContext, store::clients::NewClient,
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let connect = || async {
        let mut opts = ConnectOptions::new(cluster.url.clone());
        opts.max_connections(4)
            .connect_timeout(Duration::from_secs(1))
            .acquire_timeout(Duration::from_secs(2))
            .sqlx_logging(false);
        Database::connect(opts).await.unwrap()
    };
    let db = connect().await;
    // As production runs (SECURITY.md): with synchronous_commit off a crash
    // may forget a revocation already committed, and no follower can learn
    // of what the store lost.
    db.execute_unprepared("ALTER SYSTEM SET synchronous_commit = on")
        .await
        .unwrap();
    db.execute_unprepared("SELECT pg_reload_conf()")
        .await
        .unwrap();
    tollgate::store::migrate(&db).await.unwrap();
    tollgate::store::clients::register(
        &db,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    let issuer = |db, deny: RevocationCache| {
        Issuer::builder()
            .db(db)
            .keys(crate::common::hs256())
            .issuer(crate::common::ISS)
            .audience(crate::common::AUD)
            .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
            .revocations(deny)
            .build()
            .unwrap()
    };
    let a = issuer(connect().await, RevocationCache::default());
    let b_db = connect().await;
    let b_deny = RevocationCache::default();
    let b: AccessTokenLayer = issuer(b_db.clone(), b_deny.clone())
        .access_token_layer()
        .build()
        .unwrap();
    let sync = RevocationSync::builder(b_db, b_deny)
        .interval(Duration::from_secs(3600))
        .build();
    sync.sync().await.unwrap();
    let follower = sync.spawn();

    let session = || async {
        let t = a
            .issue("alice", "app", None, &RequestContext::default())
            .await
            .unwrap();
        let sid = b.verify(&t.access_token).unwrap().sid.unwrap();
        (t.access_token, sid)
    };
    // Retried while PostgreSQL comes back: a pool's first use after a
    // restart may meet a dead connection.
    let a = &a;
    let revoke = |sid: String| async move {
        let start = Instant::now();
        while a
            .sessions()
            .revoke_session(&sid, RevokedReason::Admin)
            .await
            .is_err()
        {
            assert!(start.elapsed() < Duration::from_secs(30), "cannot revoke");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (before, before_sid) = session().await;
    let (after, after_sid) = session().await;

    revoke(before_sid).await;
    cluster.crash();
    cluster.restart();
    let back = Instant::now();
    revoke(after_sid).await;
    let bound = Duration::from_secs(5) + Duration::from_secs(2);
    while b.verify(&before).is_ok() || b.verify(&after).is_ok() {
        assert!(
            back.elapsed() < bound,
            "a revoked token still passes {:?} after PostgreSQL came back",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "both revocations enforced {:?} after the restart",
        back.elapsed()
    );
    follower.abort();
}
