//! The migrations go up, down and up again on every backend, and what the
//! schema stores comes back exactly: microseconds, and instants past 2038
//! where the driver allows (sqlx binds chrono's UTC instants to MySQL as
//! `TIMESTAMP` parameters, which end in January 2038, whatever the column).

use std::time::{Duration, UNIX_EPOCH};

use crate::common::store::per_backend;
use migration::{Migrator, MigratorTrait};
use tollgate::store::clients::{self, NewClient};

per_backend! {
    #[tokio::test]
    async fn migrations_go_down_and_up_again_on_every_backend(b) {
        // Backends are handed over migrated.
        assert!(
            Migrator::get_pending_migrations(&b.db)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        Migrator::down(&b.db, None).await.unwrap();
        assert_eq!(
            Migrator::get_pending_migrations(&b.db).await.unwrap().len(),
            Migrator::migrations().len(),
            "{}",
            b.name
        );
        Migrator::up(&b.db, None).await.unwrap();
        clients::register(&b.db, NewClient::public("app", "read"), std::time::SystemTime::now())
            .await
            .unwrap();
    }
}

per_backend! {
    #[tokio::test]
    async fn instants_keep_microseconds_and_outlive_2038_on_every_backend(b) {
        let secs = if b.name == "mariadb" {
            2_145_916_800 // 2038-01-01
        } else {
            4_102_444_800 // 2100-01-01
        };
        let far = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(123_456);
        let issuer = crate::common::store::issuer_on(&b.db, Default::default());
        let before = tollgate::store::revocations::last_seq(&b.db).await.unwrap();
        issuer
            .sessions()
            .revoke_token("j-2100", far, tollgate::revocation::RevokedReason::Admin)
            .await
            .unwrap();
        let read = tollgate::store::revocations::after(&b.db, before, 1)
            .await
            .unwrap();
        assert_eq!(read[0].target, "j-2100", "{}", b.name);
        assert_eq!(read[0].expires_at, far, "{}", b.name);
    }
}

/// A client's registration time is the one the caller's clock gives (the
/// process clock), not the system's.
#[tokio::test]
async fn a_client_is_registered_at_the_time_given() {
    use sea_orm::EntityTrait;
    let db = crate::common::store::sqlite_memory().await;
    let at = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    tollgate::store::clients::register(
        &db,
        tollgate::store::clients::NewClient::public("p", "read"),
        at,
    )
    .await
    .unwrap();
    let row = entity::client::Entity::find_by_id("p".to_owned())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::time::SystemTime::from(row.created_at), at);
}
