//! The deny list across instances: two independent "processes" (each its
//! own pool, cache, issuer and gate) over one PostgreSQL database and over
//! one SQLite file. A revocation on one reaches the other within the poll
//! interval; a restarted instance brings nothing back to life; an instance
//! cut off from the database keeps serving its last list and catches up
//! after; and with a staleness limit the gate fails closed.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use crate::common::{
    AUD, ISS, bearer, echo_sub, hs256, keyset, manual_clock,
    store::{connect_sqlite_file, new_postgres_database, new_sqlite_file},
};
use http::{StatusCode, header};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tollgate::{
    AccessClaims, AccessTokenLayer, AuthError, RevocationCache,
    issuer::{Issuer, RequestContext},
    revocation::RevokedReason,
    secret::RefreshSecret,
    store::{self, clients::NewClient},
    sync::RevocationSync,
};
use tower::{Layer, ServiceExt, service_fn};

/// The poll interval of the instances under test.
const INTERVAL: Duration = Duration::from_millis(100);

/// One process: its own pool, deny list, issuer, gate and poller.
struct Instance {
    issuer: Issuer,
    gate: AccessTokenLayer,
    deny: RevocationCache,
    sync: RevocationSync,
    poller: Option<JoinHandle<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(p) = &self.poller {
            p.abort();
        }
    }
}

/// Starts an instance: warms its deny list up before serving, then polls
/// in the background if `poll`.
async fn instance(db: DatabaseConnection, poll: bool) -> Instance {
    let deny = RevocationCache::default();
    let issuer = Issuer::builder()
        .db(db.clone())
        .keys(keyset(&hs256()))
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
        .revocations(deny.clone())
        .build()
        .unwrap();
    let gate = issuer.access_token_layer().build().unwrap();
    let sync = RevocationSync::builder(db, deny.clone())
        .interval(INTERVAL)
        .build();
    sync.sync().await.unwrap();
    let poller = poll.then(|| sync.spawn());
    Instance {
        issuer,
        gate,
        deny,
        sync,
        poller,
    }
}

impl Instance {
    async fn login(&self, user: &str) -> (String, AccessClaims) {
        let t = self
            .issuer
            .issue(user, "app", None, &RequestContext::default())
            .await
            .unwrap();
        let claims = self.gate.verify(&t.access_token).unwrap();
        (t.access_token, claims)
    }

    fn accepts(&self, token: &str) -> bool {
        self.gate.verify(token).is_ok()
    }
}

/// How to open the shared database once more, as another process would.
enum Shared {
    SqliteFile(String),
    Postgres(String),
    MariaDb(String),
}

impl Shared {
    /// Each shared database: a SQLite file, and PostgreSQL and MariaDB when
    /// there; migrated, with client `app`.
    async fn all() -> Vec<Self> {
        let mut all = vec![Self::SqliteFile(new_sqlite_file())];
        if let Some(url) = new_postgres_database().await {
            all.push(Self::Postgres(url));
        }
        if let Some(url) = crate::common::store::new_mysql_database().await {
            all.push(Self::MariaDb(url));
        }
        for s in &all {
            let db = s.connect().await;
            store::migrate(&db).await.unwrap();
            store::clients::register(
                &db,
                NewClient::public("app", "read"),
                std::time::SystemTime::now(),
            )
            .await
            .unwrap();
        }
        all
    }

    fn name(&self) -> &'static str {
        match self {
            Self::SqliteFile(_) => "sqlite-file",
            Self::Postgres(_) => "postgres",
            Self::MariaDb(_) => "mariadb",
        }
    }

    async fn connect(&self) -> DatabaseConnection {
        match self {
            Self::SqliteFile(url) => connect_sqlite_file(url).await,
            Self::Postgres(url) | Self::MariaDb(url) => connect_server(url).await,
        }
    }
}

async fn connect_server(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(1))
        .sqlx_logging(false);
    Database::connect(opts).await.unwrap()
}

/// Records the revocation of `jti` until `exp`, as any instance would:
/// through an issuer of its own (its own deny list) over `db`.
async fn deny_jti(db: &DatabaseConnection, jti: &str, exp: SystemTime) {
    elsewhere(db)
        .sessions()
        .revoke_token(jti, exp, RevokedReason::Admin)
        .await
        .unwrap();
}

/// An issuer of another instance over `db`.
fn elsewhere(db: &DatabaseConnection) -> tollgate::Issuer {
    elsewhere_at(db, tollgate::time::SystemClock)
}

/// The same, on `clock`.
fn elsewhere_at(db: &DatabaseConnection, clock: impl tollgate::time::Clock) -> tollgate::Issuer {
    crate::common::store::issuer_on(db, RevocationCache::builder().clock(clock).build())
}

/// Waits until `token` is refused by `b`, for at most `limit`; returns how
/// long it took. (Polls a condition; the propagation itself is what is
/// measured.)
async fn refused_within(b: &Instance, token: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while b.accepts(token) {
        assert!(
            start.elapsed() < limit,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_on_one_instance_reach_the_other_within_the_poll_interval() {
    // The bound: one interval, plus a margin for a slow CI machine.
    let bound = INTERVAL + Duration::from_millis(900);
    for shared in Shared::all().await {
        let a = instance(shared.connect().await, true).await;
        let b = instance(shared.connect().await, true).await;
        let (session, session_claims) = a.login("alice").await;
        let (single, single_claims) = a.login("alice").await;
        let (everywhere, _) = a.login("bob").await;
        for t in [&session, &single, &everywhere] {
            assert!(b.accepts(t), "{}", shared.name());
        }

        // Logout of one session (sid), one access token (jti), and bob
        // everywhere (subject watermark).
        let mut took = Vec::new();
        a.issuer.sessions().logout(&session_claims).await.unwrap();
        took.push(refused_within(&b, &session, bound).await);
        a.issuer
            .sessions()
            .revoke_access_token(&single_claims, RevokedReason::Admin)
            .await
            .unwrap();
        took.push(refused_within(&b, &single, bound).await);
        a.issuer.sessions().revoke_all("bob").await.unwrap();
        took.push(refused_within(&b, &everywhere, bound).await);
        // A refuses at once: its own revocations need no poll.
        assert!(!a.accepts(&session) && !a.accepts(&everywhere));
        eprintln!(
            "{}: propagation took {took:?} (poll interval {INTERVAL:?})",
            shared.name()
        );
        assert_eq!(b.sync.cursor(), Some(3), "{}", shared.name());
    }
}

#[tokio::test]
async fn a_restarted_instance_does_not_resurrect_revoked_tokens() {
    for shared in Shared::all().await {
        let a = instance(shared.connect().await, false).await;
        let (revoked, revoked_claims) = a.login("alice").await;
        let (denied_jti, denied_claims) = a.login("alice").await;
        let (live, _) = a.login("alice").await;
        let (bobs, _) = a.login("bob").await;
        a.issuer.sessions().logout(&revoked_claims).await.unwrap();
        a.issuer
            .sessions()
            .revoke_access_token(&denied_claims, RevokedReason::Admin)
            .await
            .unwrap();
        a.issuer.sessions().revoke_all("bob").await.unwrap();
        // A revocation that no longer matters (made three days ago, by an
        // instance whose clock says so): not loaded.
        let long_ago = SystemTime::now() - Duration::from_secs(3 * 86_400);
        elsewhere_at(a.issuer.db(), tollgate::time::ManualClock::at(long_ago))
            .sessions()
            .revoke_token("old", long_ago, RevokedReason::Admin)
            .await
            .unwrap();
        drop(a);

        // A new process: empty memory, warmed from the store.
        let c = instance(shared.connect().await, false).await;
        assert!(!c.accepts(&revoked), "{}", shared.name());
        assert!(!c.accepts(&denied_jti), "{}", shared.name());
        assert!(!c.accepts(&bobs), "{}", shared.name());
        assert!(c.accepts(&live), "{}", shared.name());
        c.deny.run_pending_tasks();
        assert_eq!(c.deny.entry_count(), 3, "{}", shared.name());
        assert!(!c.deny.is_token_revoked("old"));
    }
}

/// A TCP proxy to PostgreSQL that the test can cut and restore: the other
/// instance's connection goes down while the database stays up.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (up, conns) = (Arc::clone(&up), Arc::clone(&conns));
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound); // refused: the "network" is down
                        continue;
                    }
                    let conn = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().unwrap().push(conn);
                }
            }
        });
        Self {
            addr,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// A revocation made on A while B cannot reach the database reaches B once
/// it can again; meanwhile B keeps refusing what it already knew.
async fn outage(a: &Instance, b: &Instance, cut: impl Fn(), restore: impl Fn(), name: &str) {
    let (early, early_claims) = a.login("alice").await;
    let (late, late_claims) = a.login("alice").await;
    a.issuer.sessions().logout(&early_claims).await.unwrap();
    b.sync.sync().await.unwrap();
    assert!(!b.accepts(&early) && b.accepts(&late), "{name}");

    cut();
    let start = Instant::now();
    while b.sync.sync().await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{name}: never cut off"
        );
    }
    // Revoked on A while B cannot see it.
    a.issuer.sessions().logout(&late_claims).await.unwrap();
    assert!(b.sync.sync().await.is_err(), "{name}");
    // B serves from its last known list: what it knew stays revoked.
    assert!(!b.accepts(&early), "{name}");
    assert!(b.sync.staleness().is_some());

    restore();
    let start = Instant::now();
    while b.sync.sync().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{name}: B never recovered"
        );
    }
    assert!(
        !b.accepts(&late),
        "{name}: the revocation made during the outage arrived"
    );
    assert!(!b.accepts(&early), "{name}");
}

#[tokio::test]
async fn a_revocation_made_while_postgres_was_unreachable_arrives_after_recovery() {
    let Some(url) = new_postgres_database().await else {
        return;
    };
    let admin = connect_server(&url).await;
    store::migrate(&admin).await.unwrap();
    store::clients::register(
        &admin,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    // postgres://user@host:port/db → the same through the proxy.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (host_port, db_name) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.parse().unwrap()).await;
    let proxied = format!("{scheme_user}@{}/{db_name}", proxy.addr);

    let a = instance(connect_server(&url).await, false).await;
    // B's polls are driven by hand here, so each outcome is observed.
    let b = instance(connect_server(&proxied).await, false).await;
    outage(&a, &b, || proxy.cut(), || proxy.restore(), "postgres").await;
}

#[tokio::test]
async fn a_revocation_made_while_the_sqlite_file_was_unreachable_arrives_after_recovery() {
    let url = new_sqlite_file();
    let path = PathBuf::from(
        url.strip_prefix("sqlite://")
            .and_then(|u| u.strip_suffix("?mode=rwc"))
            .unwrap(),
    );
    let dir = path.parent().unwrap().to_owned();
    let setup = connect_sqlite_file(&url).await;
    store::migrate(&setup).await.unwrap();
    store::clients::register(
        &setup,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    // B opens the file through a symlink to its directory, with no
    // connection kept: pointing the link at an empty directory makes
    // every new connection fail, as a lost volume would.
    let link = dir.with_extension("link");
    let empty = dir.with_extension("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let repoint = |to: &std::path::Path| {
        let tmp = link.with_extension("next");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(to, &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    };
    let mut opts = ConnectOptions::new(format!(
        "sqlite://{}?mode=rw",
        link.join(path.file_name().unwrap()).display()
    ));
    opts.max_connections(1)
        .min_connections(0)
        .max_lifetime(Duration::from_millis(1))
        .acquire_timeout(Duration::from_secs(1))
        .sqlx_logging(false);

    let a = instance(connect_sqlite_file(&url).await, false).await;
    let b = instance(Database::connect(opts).await.unwrap(), false).await;
    outage(&a, &b, || repoint(&empty), || repoint(&dir), "sqlite-file").await;
}

#[tokio::test]
async fn with_a_staleness_limit_the_gate_fails_closed() {
    let db = crate::common::store::sqlite_memory().await;
    let clock = manual_clock();
    let deny = RevocationCache::builder().clock(clock.clone()).build();
    let gate = crate::common::gate(deny.clone());
    let sync = RevocationSync::builder(db, deny.clone())
        .fail_closed_after(Duration::from_secs(10))
        .build();
    let token = crate::common::token("t-1");
    let svc = gate.layer(service_fn(echo_sub));

    // Nothing loaded yet: no token is trusted.
    assert_eq!(gate.verify(&token).unwrap_err(), AuthError::Unavailable);
    let res = svc.clone().oneshot(bearer(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(sync.staleness(), None);

    sync.sync().await.unwrap();
    assert!(gate.verify(&token).is_ok());
    clock.advance(Duration::from_secs(10));
    assert!(
        gate.verify(&token).is_ok(),
        "exactly at the limit: still fresh"
    );
    assert_eq!(sync.staleness(), Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(gate.verify(&token).unwrap_err(), AuthError::Unavailable);
    let grpc = bearer(&token);
    let (mut parts, body) = grpc.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, "application/grpc".parse().unwrap());
    let res = svc
        .clone()
        .oneshot(http::Request::from_parts(parts, body))
        .await
        .unwrap();
    assert_eq!(res.headers()["grpc-status"], "14");

    sync.sync().await.unwrap();
    assert!(gate.verify(&token).is_ok());
}

#[tokio::test]
async fn without_a_limit_a_stale_list_keeps_serving() {
    let db = crate::common::store::sqlite_memory().await;
    let clock = manual_clock();
    let deny = RevocationCache::builder().clock(clock.clone()).build();
    let gate = crate::common::gate(deny.clone());
    let sync = RevocationSync::builder(db, deny.clone()).build();
    sync.sync().await.unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert!(!deny.is_stale());
    // A token issued a day from now, when the gate's clock says it is.
    let mut claims = crate::common::claims("t-1");
    claims.iat = claims.iat.map(|iat| iat + 86_400);
    claims.exp += 86_400;
    assert!(gate.verify(&hs256().sign(&claims).unwrap()).is_ok());
    assert_eq!(sync.staleness(), Some(Duration::from_secs(86_400)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_never_skips_a_row_committed_while_others_race() {
    const WRITERS: usize = 8;
    const EACH: usize = 15;
    for shared in Shared::all().await {
        let a = instance(shared.connect().await, false).await;
        let b = Arc::new(instance(shared.connect().await, false).await);
        let done = Arc::new(AtomicBool::new(false));
        // B polls as fast as it can while the writers race.
        let poller = tokio::spawn({
            let (b, done) = (Arc::clone(&b), Arc::clone(&done));
            async move {
                let mut rounds = 0u32;
                while !done.load(Ordering::SeqCst) {
                    b.sync.sync().await.unwrap();
                    rounds += 1;
                    tokio::task::yield_now().await;
                }
                rounds
            }
        });
        let exp = SystemTime::now() + Duration::from_secs(600);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = a.issuer.db().clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        let jti = format!("w{w}-{i}");
                        deny_jti(&db, &jti, exp).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let rounds = poller.await.unwrap();
        // One more round picks up what came after the last one; a row that
        // committed behind the cursor would be missing for good.
        b.sync.sync().await.unwrap();
        let total = WRITERS * EACH;
        assert_eq!(b.sync.cursor(), Some(total as i64), "{}", shared.name());
        for w in 0..WRITERS {
            for i in 0..EACH {
                assert!(
                    b.deny.is_token_revoked(&format!("w{w}-{i}")),
                    "{}: w{w}-{i} skipped",
                    shared.name()
                );
            }
        }
        eprintln!(
            "{}: {total} revocations, {rounds} poll rounds",
            shared.name()
        );
    }
}

/// A revocation committed by one instance reads back on every backend as
/// it was meant: kind, target, reason, and its expiry to the microsecond.
/// (That the committing instance applies exactly what it reads back is
/// the store's unit test `what_is_recorded_is_what_is_read_back`.)
#[tokio::test]
async fn what_an_instance_commits_the_others_read_back() {
    for shared in Shared::all().await {
        let db = shared.connect().await;
        let before = store::revocations::last_seq(&db).await.unwrap();
        let exp = SystemTime::now() + Duration::from_secs(600);
        deny_jti(&db, "j-1", exp).await;
        let read = store::revocations::after(&db, before, 10).await.unwrap();
        assert_eq!(read.len(), 1, "{}", shared.name());
        let r = &read[0];
        assert_eq!(
            (r.kind, r.target.as_str(), r.reason, r.tenant.as_deref()),
            (
                tollgate::revocation::RevocationKind::Token,
                "j-1",
                RevokedReason::Admin,
                None
            ),
            "{}",
            shared.name()
        );
        let micros = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
        assert_eq!(micros(r.expires_at), micros(exp), "{}", shared.name());
    }
}

#[tokio::test]
async fn a_sync_catches_up_on_a_backlog_larger_than_its_batch() {
    let db = crate::common::store::sqlite_memory().await;
    let deny = RevocationCache::default();
    let sync = RevocationSync::builder(db.clone(), deny.clone())
        .batch(2)
        .build();
    sync.sync().await.unwrap();
    let exp = SystemTime::now() + Duration::from_secs(600);
    for i in 0..5 {
        deny_jti(&db, &format!("j-{i}"), exp).await;
    }
    // One round reads 2 + 2 + 1 rows.
    assert_eq!(sync.sync().await.unwrap(), 5);
    assert_eq!(sync.cursor(), Some(5));
    assert!((0..5).all(|i| deny.is_token_revoked(&format!("j-{i}"))));
    assert_eq!(sync.sync().await.unwrap(), 0);
}

/// What a PostgreSQL crash with `synchronous_commit = off` can do: the last
/// committed revocation is lost and its number handed out again. A
/// follower whose cursor already passed that number must not skip the
/// reissued row: it notices the row at its cursor changed and reloads.
#[tokio::test]
async fn a_store_that_reissues_sequence_numbers_is_followed_without_a_gap() {
    use sea_orm::ConnectionTrait;
    let url = new_sqlite_file();
    let db = connect_sqlite_file(&url).await;
    store::migrate(&db).await.unwrap();
    store::clients::register(
        &db,
        NewClient::public("app", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    let a = instance(db.clone(), false).await;
    let b = instance(connect_sqlite_file(&url).await, false).await;

    let (first, first_claims) = a.login("alice").await;
    a.issuer.sessions().logout(&first_claims).await.unwrap();
    b.sync.sync().await.unwrap();
    assert!(!b.accepts(&first));
    assert_eq!(b.sync.cursor(), Some(1));

    // The store forgets revocation 1 and will number the next one 1 too.
    db.execute_unprepared("DELETE FROM tollgate_revocation WHERE seq = 1")
        .await
        .unwrap();
    db.execute_unprepared("UPDATE tollgate_revocation_counter SET last = 0")
        .await
        .unwrap();
    let (second, second_claims) = a.login("bob").await;
    a.issuer.sessions().logout(&second_claims).await.unwrap();

    b.sync.sync().await.unwrap();
    assert!(!b.accepts(&second), "the reissued revocation was skipped");
    assert_eq!(b.sync.cursor(), Some(1));
    // What it had applied stays applied (the deny list only grows).
    assert!(!b.accepts(&first));
}

/// An issuer's deny list mirrors its store: a gate over it answers 503
/// until a sync has warmed it, so a restarted instance wired without its
/// `RevocationSync` never accepts a token the store says is logged out.
#[tokio::test]
async fn a_gate_whose_deny_list_was_never_warmed_answers_503_until_it_is() {
    let db = crate::common::store::sqlite_memory().await;
    store::clients::register(&db, NewClient::public("app", "read"), SystemTime::now())
        .await
        .unwrap();
    // The first process logs alice in and out.
    let first = crate::common::store::issuer_on(&db, RevocationCache::default());
    let tokens = first
        .issue("alice", "app", None, &Default::default())
        .await
        .unwrap();
    let before_restart = tokens.access_token;
    let live = first
        .issue("alice", "app", None, &Default::default())
        .await
        .unwrap();
    let claims = first
        .access_token_layer()
        .build()
        .unwrap()
        .verify(&before_restart);
    assert!(
        matches!(claims, Err(tollgate::AuthError::Unavailable)),
        "{claims:?}"
    );
    RevocationSync::builder(db.clone(), first.revocations().clone())
        .build()
        .sync()
        .await
        .unwrap();
    let claims = first
        .access_token_layer()
        .build()
        .unwrap()
        .verify(&before_restart)
        .unwrap();
    first.sessions().logout(&claims).await.unwrap();

    // The restart: a new deny list, its sync forgotten.
    let second = crate::common::store::issuer_on(&db, RevocationCache::default());
    let gate = second.access_token_layer().build().unwrap();
    let res = gate
        .clone()
        .layer(service_fn(crate::common::echo_sub))
        .oneshot(crate::common::bearer(&before_restart))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!second.revocations().is_warm());
    RevocationSync::builder(db.clone(), second.revocations().clone())
        .build()
        .sync()
        .await
        .unwrap();
    assert!(matches!(
        gate.verify(&before_restart),
        Err(tollgate::AuthError::Revoked(_))
    ));
    assert!(gate.verify(&live.access_token).is_ok());
}
