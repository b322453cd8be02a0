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

/// An application's own SeaORM migrations, as a team would have them.
// `MigrationTrait` is an `async_trait`, whose expansion rejects the
// `SchemaManager<'_>` spelling that this lint asks for.
#[allow(elided_lifetimes_in_paths)]
mod app {
    use migration::{async_trait, *};

    pub(super) struct CreateOrders;

    impl MigrationName for CreateOrders {
        fn name(&self) -> &str {
            "m20260101_000001_create_orders"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateOrders {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(
                Table::create()
                    .table(Alias::new("orders"))
                    .col(
                        ColumnDef::new(Alias::new("id"))
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .to_owned(),
            )
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(Alias::new("orders")).to_owned())
                .await
        }
    }

    /// The application's migrator, in `seaql_migrations`.
    pub(super) struct AppMigrator;

    impl MigratorTrait for AppMigrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateOrders)]
        }
    }

    /// The application's migrator with tollgate's merged in.
    pub(super) struct Merged;

    impl MigratorTrait for Merged {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            let mut all: Vec<Box<dyn MigrationTrait>> = vec![Box::new(CreateOrders)];
            all.extend(migration::Migrator::migrations());
            all
        }
    }
}

/// tollgate's tables work: a client registers and is found.
async fn tollgate_works(db: &sea_orm::DatabaseConnection, backend: &str) {
    let id = format!("app-{}", tollgate::secret::random_string(6));
    clients::register(
        db,
        NewClient::public(id.as_str(), "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap_or_else(|e| panic!("{backend}: {e}"));
    assert!(clients::find(db, &id).await.unwrap().is_some(), "{backend}");
}

per_backend! {
    /// tollgate's migrator beside the application's on one database, in
    /// either order and again: each keeps its own record (tollgate's in
    /// `tollgate_migrations`), so neither takes the other's rows for
    /// missing files, and no table name collides.
    #[tokio::test]
    async fn tollgate_migrates_beside_the_applications_own_migrator(b) {
        Migrator::down(&b.db, None).await.unwrap();
        app::AppMigrator::up(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        Migrator::up(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        // Both again, the other way round: nothing pending, nothing refused.
        Migrator::up(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        app::AppMigrator::up(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert!(app::AppMigrator::get_pending_migrations(&b.db).await.unwrap().is_empty());
        assert!(Migrator::get_pending_migrations(&b.db).await.unwrap().is_empty());
        tollgate_works(&b.db, b.name).await;
        // The application's down leaves tollgate alone, and the reverse.
        app::AppMigrator::down(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        tollgate_works(&b.db, b.name).await;
        app::AppMigrator::up(&b.db, None).await.unwrap();
        Migrator::down(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert!(app::AppMigrator::get_pending_migrations(&b.db).await.unwrap().is_empty());
        Migrator::up(&b.db, None).await.unwrap();
    }
}

per_backend! {
    /// tollgate's migrations merged into the application's migrator: one
    /// record (the application's), every table created.
    #[tokio::test]
    async fn tollgate_migrations_merge_into_the_applications_migrator(b) {
        Migrator::down(&b.db, None).await.unwrap();
        app::Merged::up(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert!(app::Merged::get_pending_migrations(&b.db).await.unwrap().is_empty());
        assert_eq!(
            app::Merged::get_applied_migrations(&b.db).await.unwrap().len(),
            1 + Migrator::migrations().len(),
            "{}",
            b.name
        );
        tollgate_works(&b.db, b.name).await;
        app::Merged::down(&b.db, None).await.unwrap_or_else(|e| panic!("{}: {e}", b.name));
    }
}
