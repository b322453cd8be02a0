//! The database fails in the middle of a rotation: the client gets 503 with
//! Retry-After, and afterwards exactly one of parent and child is usable —
//! here the parent, since nothing of the failed rotation was written.

mod common;

use common::store::{Harness, backends, harness};
use entity::refresh_token;
use http::{StatusCode, header};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait};
use tollgate::refresh::RefreshPolicy;

/// Makes every insert of a rotated refresh token (generation > 0) fail:
/// the rotation dies after its consume and family statements ran.
async fn inject_insert_failure(h: &Harness, kill_connection: bool) {
    let sql = match h.db.get_database_backend() {
        DbBackend::Sqlite => "CREATE TRIGGER fault BEFORE INSERT ON refresh_token \
             WHEN NEW.generation > 0 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
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
            "CREATE TRIGGER fault BEFORE INSERT ON refresh_token \
             FOR EACH ROW EXECUTE FUNCTION fault()"
                .to_owned()
        }
    };
    h.db.execute_unprepared(&sql).await.unwrap();
}

async fn heal(h: &Harness) {
    let sql = match h.db.get_database_backend() {
        DbBackend::Sqlite => "DROP TRIGGER fault",
        _ => "DROP TRIGGER fault ON refresh_token; DROP FUNCTION fault()",
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

#[tokio::test]
async fn a_rotation_failing_midway_answers_503_and_leaves_the_parent_usable() {
    for b in backends().await {
        let h = harness(b, RefreshPolicy::default()).await;
        inject_insert_failure(&h, false).await;
        assert_rotation_rolls_back(&h).await;
    }
}

#[tokio::test]
async fn the_connection_dying_mid_rotation_answers_503_and_loses_nothing() {
    let Some(db) = common::store::postgres().await else {
        return;
    };
    let h = harness(
        common::store::Backend {
            name: "postgres",
            db,
        },
        RefreshPolicy::default(),
    )
    .await;
    inject_insert_failure(&h, true).await;
    assert_rotation_rolls_back(&h).await;
}
