//! PostgreSQL notifications over the revocation cursor: with the poll
//! interval set to an hour, only a notification (or the listener's
//! catch-up after it reconnects) can carry a revocation from one instance
//! to another, so these tests show that path alone. Two instances, one
//! PostgreSQL database, each with its own pool.

use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio::task::JoinHandle;
use tollgate::{
    AccessTokenLayer, RefreshSecret, RevocationCache,
    issuer::{Issuer, RequestContext},
    store::{self, clients::NewClient},
    sync::RevocationSync,
};

use crate::common::{AUD, ISS, hs256, store::new_postgres_database};

/// Longer than any test: the poll cannot be what delivers.
const NEVER: Duration = Duration::from_secs(3600);
/// How long a test waits for a revocation to arrive before failing. The
/// measured figure (BENCHMARKS.md) is far below; this only bounds a slow
/// CI machine.
const PATIENCE: Duration = Duration::from_secs(5);

struct Instance {
    issuer: Issuer,
    gate: AccessTokenLayer,
    follower: Option<JoinHandle<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4).sqlx_logging(false);
    Database::connect(opts).await.unwrap()
}

/// An instance whose deny list follows the store (poll every `interval`,
/// and notifications when `notifications`); `None` for one that only
/// writes.
async fn instance(url: &str, follow: Option<(Duration, bool)>) -> Instance {
    let db = connect(url).await;
    let deny = RevocationCache::default();
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(hs256())
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
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
        follower,
    }
}

/// A fresh, migrated PostgreSQL database with client `app`; `None`
/// outside CI without PostgreSQL.
async fn database() -> Option<String> {
    let url = new_postgres_database().await?;
    let db = connect(&url).await;
    store::migrate(&db).await.unwrap();
    store::clients::register(
        &db,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    Some(url)
}

/// A session on `a`: its access token and sid.
async fn login(a: &Instance) -> (String, String) {
    let t = a
        .issuer
        .issue("alice", "app", None, &RequestContext::default())
        .await
        .unwrap();
    let sid = a.gate.verify(&t.access_token).unwrap().sid.unwrap();
    (t.access_token, sid)
}

/// Logs the session out on `a` and waits until `b` refuses its token.
async fn revoke_and_wait(a: &Instance, b: &Instance) -> Duration {
    let (token, sid) = login(a).await;
    assert!(b.gate.verify(&token).is_ok());
    a.issuer
        .sessions()
        .revoke_session(&sid, tollgate::RevokedReason::Admin)
        .await
        .unwrap();
    refused(b, &token).await
}

/// Waits until `b` refuses `token`, for at most [`PATIENCE`]; how long it
/// took. (Polls a condition; the propagation itself is what is measured.)
async fn refused(b: &Instance, token: &str) -> Duration {
    let start = Instant::now();
    while b.gate.verify(token).is_ok() {
        assert!(
            start.elapsed() < PATIENCE,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

/// The backend pids of the revocation listeners on this database.
async fn listeners(db: &DatabaseConnection) -> Vec<i32> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'LISTEN \"tollgate_revocations\"'"
                .to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<i32>("", "pid").unwrap())
        .collect()
}

/// Waits until exactly one listener other than `not` is connected.
async fn wait_for_listener(db: &DatabaseConnection, not: Option<i32>) -> i32 {
    let start = Instant::now();
    loop {
        let pids = listeners(db).await;
        if let [pid] = pids[..]
            && Some(pid) != not
        {
            return pid;
        }
        assert!(start.elapsed() < PATIENCE, "no listener: {pids:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_carries_a_revocation_to_the_other_instance_at_once() {
    let Some(url) = database().await else { return };
    let a = instance(&url, None).await;
    let b = instance(&url, Some((NEVER, true))).await;
    let watcher = connect(&url).await;
    wait_for_listener(&watcher, None).await;
    // The first revocation may still be met by the listener's catch-up
    // sync; once it is applied, that sync is over, and with an hour's poll
    // only notifications can deliver the next ones.
    revoke_and_wait(&a, &b).await;
    let mut took = Vec::new();
    for _ in 0..5 {
        took.push(revoke_and_wait(&a, &b).await);
    }
    eprintln!("propagation by notification: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_notifications_off_the_poll_still_delivers() {
    let Some(url) = database().await else { return };
    let a = instance(&url, None).await;
    let b = instance(&url, Some((Duration::from_millis(100), false))).await;
    revoke_and_wait(&a, &b).await;
    let watcher = connect(&url).await;
    assert!(listeners(&watcher).await.is_empty(), "no LISTEN when off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_killed_by_the_server_reconnects_and_catches_up() {
    let Some(url) = database().await else { return };
    let a = instance(&url, None).await;
    let b = instance(&url, Some((NEVER, true))).await;
    let watcher = connect(&url).await;
    let first = wait_for_listener(&watcher, None).await;
    revoke_and_wait(&a, &b).await;

    // Kill the listening connection from the server side, and commit a
    // revocation while it is down: nobody is listening when its
    // notification is sent, so only the catch-up after reconnecting can
    // apply it (the poll is an hour away).
    let (token, sid) = login(&a).await;
    watcher
        .execute_raw(Statement::from_string(
            watcher.get_database_backend(),
            format!("SELECT pg_terminate_backend({first})"),
        ))
        .await
        .unwrap();
    a.issuer
        .sessions()
        .revoke_session(&sid, tollgate::RevokedReason::Admin)
        .await
        .unwrap();
    refused(&b, &token).await;
    let second = wait_for_listener(&watcher, Some(first)).await;
    assert_ne!(first, second);
    // And notifications flow again on the new connection.
    revoke_and_wait(&a, &b).await;
}
