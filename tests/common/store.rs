//! Databases and a token-endpoint harness for the store tests.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tollgate::{
    AccessTokenLayer, RevocationCache,
    binding::PeerAddr,
    issuer::{Issuer, Lifetimes},
    refresh::RefreshPolicy,
    secret::{RefreshSecret, random_string},
    store::{self, clients::NewClient},
    token_endpoint::TokenEndpoint,
};
use tower::ServiceExt;

use super::{AUD, ISS, ManualClock, hs256, keyset};

/// A database under test, named for failure messages.
pub struct Backend {
    pub name: &'static str,
    pub db: DatabaseConnection,
}

/// In-memory SQLite (sea-orm keeps one connection).
pub async fn sqlite_memory() -> DatabaseConnection {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    db
}

/// A SQLite file in WAL mode with several connections, so transactions
/// really contend.
pub async fn sqlite_file() -> DatabaseConnection {
    let db = connect_sqlite_file(&new_sqlite_file()).await;
    store::migrate(&db).await.unwrap();
    db
}

/// The URL of a new, empty SQLite file.
pub fn new_sqlite_file() -> String {
    let dir = std::env::temp_dir().join(format!("tollgate-test-{}", random_string(9)));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display())
}

/// A pool of its own on a SQLite file (WAL, 8 connections), as a second
/// process would open it.
pub async fn connect_sqlite_file(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(8)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
        });
    Database::connect(opts).await.unwrap()
}

/// A fresh database on the test PostgreSQL (`TOLLGATE_TEST_PG_URL`). Under
/// CI the URL must be set: the PostgreSQL tests fail rather than skip.
pub async fn postgres() -> Option<DatabaseConnection> {
    postgres_with(&[]).await
}

/// Like [`postgres`], with server settings for every connection
/// (e.g. `default_transaction_isolation`).
pub async fn postgres_with(
    settings: &'static [(&'static str, &'static str)],
) -> Option<DatabaseConnection> {
    let url = new_postgres_database().await?;
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(40)
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |o| o.options(settings.iter().copied()));
    let db = Database::connect(opts).await.unwrap();
    store::migrate(&db).await.unwrap();
    Some(db)
}

/// The URL of a new, empty database on the test PostgreSQL, or `None`
/// outside CI when there is none.
pub async fn new_postgres_database() -> Option<String> {
    new_server_database("TOLLGATE_TEST_PG_URL", "PostgreSQL").await
}

/// The URL of a new, empty database on the test MariaDB/MySQL
/// (`TOLLGATE_TEST_MYSQL_URL`), or `None` outside CI when there is none.
pub async fn new_mysql_database() -> Option<String> {
    new_server_database("TOLLGATE_TEST_MYSQL_URL", "MariaDB").await
}

/// The URL in `var`, or `None` (and a note) outside CI when it is unset.
/// Under CI it must be set: tests of that server fail rather than skip.
pub fn server_url(var: &str, server: &str) -> Option<String> {
    let Ok(url) = std::env::var(var) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {var} is not: {server} tests must run"
        );
        eprintln!("{var} not set: skipping {server}");
        return None;
    };
    Some(url)
}

/// A new database on the server that `var` names (see [`server_url`]).
async fn new_server_database(var: &str, server: &str) -> Option<String> {
    let url = server_url(var, server)?;
    let admin = Database::connect(url.as_str()).await.unwrap();
    let name = format!(
        "t_{}",
        random_string(9).to_lowercase().replace(['-', '_'], "x")
    );
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// A fresh, migrated database on the test MariaDB, when there is one.
pub async fn mysql() -> Option<DatabaseConnection> {
    let url = new_mysql_database().await?;
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(40).sqlx_logging(false);
    let db = Database::connect(opts).await.unwrap();
    store::migrate(&db).await.unwrap();
    Some(db)
}

impl Backend {
    pub async fn sqlite_memory() -> Self {
        Self {
            name: "sqlite-memory",
            db: sqlite_memory().await,
        }
    }

    pub async fn sqlite_file() -> Self {
        Self {
            name: "sqlite-file",
            db: sqlite_file().await,
        }
    }

    /// `None` outside CI when no PostgreSQL is configured.
    pub async fn postgres() -> Option<Self> {
        Some(Self {
            name: "postgres",
            db: postgres().await?,
        })
    }

    /// PostgreSQL with every transaction SERIALIZABLE, as PostgreSQL-
    /// compatible distributed engines (CockroachDB, YugabyteDB) run by
    /// default: conflicts abort with SQLSTATE 40001 instead of waiting.
    /// `None` outside CI when no PostgreSQL is configured.
    pub async fn postgres_serializable() -> Option<Self> {
        Some(Self {
            name: "postgres-serializable",
            db: postgres_with(&[("default_transaction_isolation", "serializable")]).await?,
        })
    }

    /// `None` outside CI when no MariaDB is configured.
    pub async fn mariadb() -> Option<Self> {
        Some(Self {
            name: "mariadb",
            db: mysql().await?,
        })
    }
}

/// One test per backend: `per_backend! { #[tokio::test] async fn name(b)
/// { .. } }` makes a module `name` with the tests `sqlite_memory`,
/// `sqlite_file`, `postgres` and `mariadb`, each running the body with
/// `b` bound to that backend, so a failure names its backend and the
/// backends run in parallel. PostgreSQL and MariaDB are skipped outside CI
/// when not configured (and required under CI).
///
/// `per_backend! { serializable; … }` adds `postgres_serializable`, for
/// the tests of concurrency: the same body on PostgreSQL with every
/// transaction SERIALIZABLE.
#[allow(unused_macros)]
macro_rules! per_backend {
    (@with [$($extra:tt)*] $(#[$attr:meta])* async fn $name:ident($b:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($b: crate::common::store::Backend) $body

            $(#[$attr])*
            async fn sqlite_memory() {
                run(crate::common::store::Backend::sqlite_memory().await).await;
            }

            $(#[$attr])*
            async fn sqlite_file() {
                run(crate::common::store::Backend::sqlite_file().await).await;
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(b) = crate::common::store::Backend::postgres().await {
                    run(b).await;
                }
            }

            $(#[$attr])*
            async fn mariadb() {
                if let Some(b) = crate::common::store::Backend::mariadb().await {
                    run(b).await;
                }
            }

            $($extra)*
        }
    };
    (serializable; $(#[$attr:meta])* async fn $name:ident($b:ident) $body:block) => {
        per_backend! {
            @with [
                $(#[$attr])*
                async fn postgres_serializable() {
                    if let Some(b) = crate::common::store::Backend::postgres_serializable().await {
                        run(b).await;
                    }
                }
            ]
            $(#[$attr])* async fn $name($b) $body
        }
    };
    ($(#[$attr:meta])* async fn $name:ident($b:ident) $body:block) => {
        per_backend! { @with [] $(#[$attr])* async fn $name($b) $body }
    };
}
#[allow(unused_imports)]
pub(crate) use per_backend;

pub const WEB_SECRET_NAME: &str = "web";

/// An endpoint with clients `web` (confidential, password grant), `spa`
/// (public, password grant), `svc` (confidential, client_credentials,
/// introspection), a
/// user alice/wonderland, and a gate that trusts its tokens.
pub struct Harness {
    pub backend: &'static str,
    pub db: DatabaseConnection,
    pub issuer: Issuer,
    pub endpoint: TokenEndpoint,
    pub gate: AccessTokenLayer,
    /// The deny list shared by the issuer (and so the endpoints) and the
    /// gate, as in one process.
    pub deny: RevocationCache,
    pub clock: ManualClock,
    pub web_secret: String,
    pub svc_secret: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
    pub raw: String,
}

impl Reply {
    pub fn refresh_token(&self) -> String {
        self.json["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh token in {}", self.raw))
            .to_owned()
    }
    pub fn access_token(&self) -> String {
        self.json["access_token"].as_str().unwrap().to_owned()
    }
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }
}

/// An issuer over `db` with a deny list of its own: another instance.
pub fn issuer_on(db: &DatabaseConnection, deny: RevocationCache) -> Issuer {
    Issuer::builder()
        .revocations(deny)
        .db(db.clone())
        .keys(keyset(&hs256()))
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
        .build()
        .unwrap()
}

pub async fn harness(backend: Backend, policy: RefreshPolicy) -> Harness {
    harness_with(backend, policy, Lifetimes::default()).await
}

pub async fn harness_with(
    backend: Backend,
    policy: RefreshPolicy,
    lifetimes: Lifetimes,
) -> Harness {
    let db = backend.db;
    let clock = super::manual_clock();
    let mut web = NewClient::confidential("web", "read write");
    web.allow_password = true;
    let web_secret = store::clients::register(&db, web, tollgate::time::Clock::now(&clock))
        .await
        .unwrap()
        .unwrap();
    let mut spa = NewClient::public("spa", "read");
    spa.allow_password = true;
    store::clients::register(&db, spa, tollgate::time::Clock::now(&clock))
        .await
        .unwrap();
    let mut svc = NewClient::confidential("svc", "reports");
    svc.allow_client_credentials = true;
    // The resource server: it introspects access tokens.
    svc.allow_introspection = true;
    let svc_secret = store::clients::register(&db, svc, tollgate::time::Clock::now(&clock))
        .await
        .unwrap()
        .unwrap();

    // The one clock of the process: the issuer, the endpoint's rate
    // limits and the gate all read it through the deny list.
    let deny = RevocationCache::builder().clock(clock.clone()).build();
    let issuer = Issuer::builder()
        .revocations(deny.clone())
        .db(db.clone())
        .keys(keyset(&hs256()))
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
        .policy(policy)
        .lifetimes(lifetimes)
        .build()
        .unwrap();
    let endpoint = TokenEndpoint::builder(issuer.clone())
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .build()
        .unwrap();
    // Warm the deny list from the store, as every instance must before
    // its gates serve (until then they answer 503).
    tollgate::RevocationSync::builder(db.clone(), deny.clone())
        .build()
        .sync()
        .await
        .unwrap();
    let gate = issuer.access_token_layer().build().unwrap();
    Harness {
        backend: backend.name,
        db,
        issuer,
        endpoint,
        gate,
        deny,
        clock,
        web_secret,
        svc_secret,
    }
}

impl Harness {
    /// POSTs a form to the endpoint, from `peer`, with extra headers.
    pub async fn post_from(
        &self,
        body: &str,
        headers: &[(&str, &str)],
        peer: Option<SocketAddr>,
    ) -> Reply {
        let mut req = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        if let Some(peer) = peer {
            req.extensions_mut().insert(PeerAddr(peer));
        }
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        call(self.endpoint.clone(), req).await
    }

    /// POSTs a form to `/revoke`.
    pub async fn revoke(&self, body: &str) -> Reply {
        call(self.endpoint.revocation(), form(body)).await
    }

    /// POSTs a form to `/introspect`.
    pub async fn introspect(&self, body: &str) -> Reply {
        call(self.endpoint.introspection(), form(body)).await
    }

    /// Credentials of `web` for a form body.
    pub fn web_auth(&self) -> String {
        format!("client_id=web&client_secret={}", self.web_secret)
    }

    /// Credentials of `svc` for a form body.
    pub fn svc_auth(&self) -> String {
        format!("client_id=svc&client_secret={}", self.svc_secret)
    }

    /// Whether the gate accepts the access token now.
    pub fn accepts(&self, access_token: &str) -> bool {
        self.gate.verify(access_token).is_ok()
    }
}

/// A form POST.
pub fn form(body: &str) -> Request<Full<Bytes>> {
    Request::post("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// Calls one of the endpoints and reads its answer.
pub async fn call<S>(svc: S, req: Request<Full<Bytes>>) -> Reply
where
    S: tower::Service<
            Request<Full<Bytes>>,
            Response = http::Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        >,
{
    let res = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let raw = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        json,
        raw,
    }
}

impl Harness {
    pub async fn post(&self, body: &str) -> Reply {
        self.post_from(body, &[], None).await
    }

    /// alice logs in on `web` with client_secret_post.
    pub async fn login(&self) -> Reply {
        let r = self
            .post(&format!(
                "grant_type=password&username=alice&password=wonderland&client_id=web&client_secret={}",
                self.web_secret
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", self.backend, r.raw);
        r
    }

    /// Refreshes on `web`.
    pub async fn refresh(&self, token: &str) -> Reply {
        self.post(&format!(
            "grant_type=refresh_token&refresh_token={token}&client_id=web&client_secret={}",
            self.web_secret
        ))
        .await
    }
}
