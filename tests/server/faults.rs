//! The database fails in the middle of a rotation, runs out of connections,
//! or a statement waits on a lock too long: the client gets 503 with
//! Retry-After in bounded time, and afterwards exactly one of parent and
//! child is usable — here the parent, since nothing of the failed rotation
//! was written.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::common::store::{Backend, Harness, harness, per_backend};
use entity::refresh_token;
use http::{StatusCode, header};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DbBackend, EntityTrait, PaginatorTrait, Statement,
    TransactionTrait,
};
use tollgate::refresh::RefreshPolicy;

/// Makes every insert of a rotated refresh token (generation > 0) fail:
/// the rotation dies after its consume and family statements ran.
async fn inject_insert_failure(h: &Harness, kill_connection: bool) {
    let sql = match h.db.get_database_backend() {
        DbBackend::Sqlite => "CREATE TRIGGER fault BEFORE INSERT ON tollgate_refresh_token \
             WHEN NEW.generation > 0 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            .to_owned(),
        DbBackend::MySql => "CREATE TRIGGER fault BEFORE INSERT ON tollgate_refresh_token \
             FOR EACH ROW BEGIN IF NEW.generation > 0 THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'; END IF; END"
            .to_owned(),
        _ => {
            let action = if kill_connection {
                // The server ends this very connection mid-transaction.
                "PERFORM pg_terminate_backend(pg_backend_pid());"
            } else {
                "RAISE EXCEPTION 'injected fault';"
            };
            h.db.execute_unprepared(&format!(
                "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.generation > 0 THEN {action} END IF; RETURN NEW; END $$"
            ))
            .await
            .unwrap();
            "CREATE TRIGGER fault BEFORE INSERT ON tollgate_refresh_token \
             FOR EACH ROW EXECUTE FUNCTION fault()"
                .to_owned()
        }
    };
    h.db.execute_unprepared(&sql).await.unwrap();
}

async fn heal(h: &Harness) {
    let sql = match h.db.get_database_backend() {
        DbBackend::Sqlite | DbBackend::MySql => "DROP TRIGGER fault",
        _ => "DROP TRIGGER fault ON tollgate_refresh_token; DROP FUNCTION fault()",
    };
    h.db.execute_unprepared(sql).await.unwrap();
}

async fn assert_rotation_rolls_back(h: &Harness) {
    let parent = h.login().await.refresh_token();
    let rows_before = refresh_token::Entity::find().count(&h.db).await.unwrap();

    let r = h.refresh(&parent).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}: {}",
        h.backend,
        r.raw
    );
    assert_eq!(r.error(), "temporarily_unavailable");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert!(
        !r.raw.to_lowercase().contains("insert"),
        "SQL leaked: {}",
        r.raw
    );
    assert!(!r.raw.contains("fault"), "internals leaked: {}", r.raw);

    heal(h).await;
    // Nothing was half-written: no new row, the parent unconsumed and usable.
    assert_eq!(
        refresh_token::Entity::find().count(&h.db).await.unwrap(),
        rows_before
    );
    let r = h.refresh(&parent).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}: parent unusable after the fault: {}",
        h.backend,
        r.raw
    );
    let child = r.refresh_token();
    assert_eq!(
        h.refresh(&child).await.status,
        StatusCode::OK,
        "{}",
        h.backend
    );
}

per_backend! {
    #[tokio::test]
    async fn a_rotation_failing_midway_answers_503_and_leaves_the_parent_usable(b) {
        let h = harness(b, RefreshPolicy::default()).await;
        inject_insert_failure(&h, false).await;
        assert_rotation_rolls_back(&h).await;
    }
}

#[tokio::test]
async fn the_postgres_connection_dying_mid_rotation_answers_503_and_loses_nothing() {
    let Some(db) = crate::common::store::postgres().await else {
        return;
    };
    let h = harness(
        crate::common::store::Backend {
            name: "postgres",
            db,
        },
        RefreshPolicy::default(),
    )
    .await;
    inject_insert_failure(&h, true).await;
    assert_rotation_rolls_back(&h).await;
}

/// A pool of at most `max` connections that waits `acquire` for one, on
/// a fresh SQLite file and (when there) a fresh PostgreSQL database whose
/// statements time out after `statement_timeout`; SQLite waits as long
/// for a lock.
async fn small_pools(
    max: u32,
    acquire: Duration,
    statement_timeout: Duration,
) -> Vec<(Backend, String)> {
    let mut urls = vec![("sqlite-file", crate::common::store::new_sqlite_file())];
    if let Some(url) = crate::common::store::new_postgres_database().await {
        urls.push(("postgres", url));
    }
    let mut pools = Vec::new();
    for (name, url) in urls {
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(max)
            .min_connections(0)
            .acquire_timeout(acquire)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(statement_timeout)
            })
            .map_sqlx_postgres_opts(move |o| {
                o.options([(
                    "statement_timeout",
                    statement_timeout.as_millis().to_string(),
                )])
            });
        let db = Database::connect(opts).await.unwrap();
        tollgate::store::migrate(&db).await.unwrap();
        pools.push((Backend { name, db }, url));
    }
    pools
}

/// Refreshes every token at once; the answers and how long the slowest
/// took.
async fn refresh_all(h: &Arc<Harness>, tokens: &[String]) -> (Vec<StatusCode>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (h, t) = (Arc::clone(h), t.clone());
            tokio::spawn(async move { h.refresh(&t).await.status })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    (answers, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_in_bounded_time_without_a_pile_up() {
    let acquire = Duration::from_millis(300);
    for (backend, _) in small_pools(2, acquire, Duration::from_secs(5)).await {
        let h = Arc::new(harness(backend, RefreshPolicy::default()).await);
        let mut tokens = Vec::new();
        for _ in 0..16 {
            tokens.push(h.login().await.refresh_token());
        }
        // Someone else holds every connection.
        let held = (h.db.begin().await.unwrap(), h.db.begin().await.unwrap());
        let (answers, slowest) = refresh_all(&h, &tokens).await;
        assert!(
            answers
                .iter()
                .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
            "{}: {answers:?}",
            h.backend
        );
        // Each waited about the acquire timeout, side by side; in a queue
        // the last would wait 16 times as long.
        assert!(slowest < acquire * 8, "{}: {slowest:?}", h.backend);
        drop(held);
        // Nothing was consumed: every token still refreshes.
        let (answers, _) = refresh_all(&h, &tokens).await;
        assert!(
            answers.iter().all(|s| *s == StatusCode::OK),
            "{}: {answers:?}",
            h.backend
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_on_a_lock_times_out_to_503_and_loses_nothing() {
    let timeout = Duration::from_millis(300);
    for (backend, url) in small_pools(8, Duration::from_secs(5), timeout).await {
        let h = Arc::new(harness(backend, RefreshPolicy::default()).await);
        let login = h.login().await;
        let family = h.gate.verify(&login.access_token()).unwrap().sid.unwrap();
        // Another process holds the lock a rotation needs: the family row
        // (PostgreSQL) or the database write lock (SQLite).
        let other = Database::connect(url.as_str()).await.unwrap();
        let txn = other.begin().await.unwrap();
        let lock = match txn.get_database_backend() {
            DbBackend::Postgres => "SELECT id FROM tollgate_token_family WHERE id = $1 FOR UPDATE",
            _ => "UPDATE tollgate_token_family SET generation = generation WHERE id = $1",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            lock,
            [family.into()],
        ))
        .await
        .unwrap();
        let (answers, slowest) = refresh_all(&h, &[login.refresh_token()]).await;
        assert_eq!(answers, [StatusCode::SERVICE_UNAVAILABLE], "{}", h.backend);
        assert!(slowest < timeout * 10, "{}: {slowest:?}", h.backend);
        txn.rollback().await.unwrap();
        // The refused rotation wrote nothing: the token rotates now.
        let r = h.refresh(&login.refresh_token()).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
    }
}

/// Another connection holds SQLite's write lock past the busy timeout, and
/// lets go soon after: the rotation's "database is locked" is retried
/// inside (the whole transaction runs again), and the client gets its
/// token, not a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefly_busy_sqlite_database_is_retried_inside_not_answered_503() {
    let url = crate::common::store::new_sqlite_file();
    let mut opts = ConnectOptions::new(url.clone());
    opts.max_connections(4)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_millis(100))
        });
    let db = Database::connect(opts).await.unwrap();
    tollgate::store::migrate(&db).await.unwrap();
    let h = harness(
        Backend {
            name: "sqlite-file",
            db,
        },
        RefreshPolicy::default(),
    )
    .await;
    let login = h.login().await;
    let other = crate::common::store::connect_sqlite_file(&url).await;
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("UPDATE tollgate_token_family SET generation = generation")
        .await
        .unwrap();
    // Three busy timeouts long: the first attempts fail, a later one wins.
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        txn.commit().await.unwrap();
    });
    let r = h.refresh(&login.refresh_token()).await;
    holder.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(h.refresh(&r.refresh_token()).await.status, StatusCode::OK);
}
