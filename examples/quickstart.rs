//! A complete token service in one command: `cargo run --example quickstart`.
//!
//! An axum server with tollgate's `/token`, `/revoke`, `/introspect` and
//! JWKS endpoints, protected routes behind the gate, and session routes.
//! SQLite (a file, created and migrated at start) unless `DATABASE_URL`
//! names PostgreSQL. Every setting comes from the environment; README.md
//! lists them with their defaults.
//!
//! The demo user logs in with the password grant, which is enabled for the
//! two demo clients only. Production services should authenticate users in
//! their own login handler and start sessions with `Issuer::issue`
//! (RFC 9700 §2.4 deprecates the password grant).

use std::{
    env,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};
use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair},
};
use axum::{
    Json, Router,
    extract::{Path as UrlPath, Request},
    http::StatusCode,
    response::IntoResponse,
    routing::{delete, get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tollgate::{
    AccessClaims, AccessTokenLayer,
    binding::{BindingPolicy, IpBinding, TrustedProxies, UserAgentBinding},
    issuer::{Issuer, Lifetimes},
    keys::{Algorithm, KeySet, SigningKey},
    refresh::RefreshPolicy,
    revocation::RevocationSync,
    secret::RefreshSecret,
    sessions::Sessions,
    store::{self, cleanup::Janitor, clients::NewClient},
    token_endpoint::{RateLimits, TokenEndpoint},
};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request body the server reads.
const BODY_LIMIT: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_env()?;
    let app = App::start(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.addr).await?;
    let addr = listener.local_addr()?;
    // The first line is read by the end-to-end test: keep its shape.
    println!("tollgate quickstart listening on http://{addr}");
    println!("{}", curl_lines(&cfg, addr));
    axum::serve(
        listener,
        app.router
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    })
    .await?;
    app.background
        .iter()
        .for_each(tokio::task::JoinHandle::abort);
    Ok(())
}

/// Settings, from the environment.
struct Config {
    addr: String,
    data_dir: PathBuf,
    database_url: String,
    issuer: String,
    audience: String,
    lifetimes: Lifetimes,
    policy: RefreshPolicy,
    proxies: TrustedProxies,
    limits: RateLimits,
    request_timeout: Duration,
    alg: Algorithm,
    key_file: Option<PathBuf>,
    hmac_secret: Option<String>,
    client_id: String,
    client_secret: String,
    public_client_id: String,
    user: String,
    password: String,
}

fn var(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn secs(name: &str, default: u64) -> Result<Duration, BoxError> {
    let v = var(name, &default.to_string());
    let n: u64 = v
        .parse()
        .map_err(|_| format!("{name} must be a number of seconds, not `{v}`"))?;
    Ok(Duration::from_secs(n))
}

impl Config {
    fn from_env() -> Result<Self, BoxError> {
        let data_dir = PathBuf::from(var("TOLLGATE_DATA_DIR", "tollgate-data"));
        let database_url = env::var("DATABASE_URL").unwrap_or_else(|_| {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("tollgate.sqlite").display()
            )
        });
        let ip = match var("TOLLGATE_BIND_IP", "off").as_str() {
            "off" => IpBinding::Off,
            "exact" => IpBinding::Exact,
            "prefix" => IpBinding::Prefix,
            other => {
                return Err(
                    format!("TOLLGATE_BIND_IP: off, exact or prefix, not `{other}`").into(),
                );
            }
        };
        let user_agent = match var("TOLLGATE_BIND_UA", "off").as_str() {
            "off" => UserAgentBinding::Off,
            "exact" => UserAgentBinding::Exact,
            other => return Err(format!("TOLLGATE_BIND_UA: off or exact, not `{other}`").into()),
        };
        let limits = match var("TOLLGATE_RATE_LIMITS", "on").as_str() {
            "on" => RateLimits::recommended(),
            "off" => RateLimits::none(),
            other => return Err(format!("TOLLGATE_RATE_LIMITS: on or off, not `{other}`").into()),
        };
        let alg = match var("TOLLGATE_SIGNING_ALG", "EdDSA").as_str() {
            "EdDSA" => Algorithm::EdDSA,
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            "HS256" => Algorithm::HS256,
            other => {
                return Err(format!(
                    "TOLLGATE_SIGNING_ALG: EdDSA, ES256, RS256 or HS256, not `{other}`"
                )
                .into());
            }
        };
        Ok(Self {
            addr: var("TOLLGATE_ADDR", "127.0.0.1:3000"),
            data_dir,
            database_url,
            issuer: var("TOLLGATE_ISSUER", "http://127.0.0.1:3000"),
            audience: var("TOLLGATE_AUDIENCE", "quickstart-api"),
            lifetimes: Lifetimes {
                access: secs("TOLLGATE_ACCESS_TTL_SECS", 900)?,
                refresh_idle: secs("TOLLGATE_REFRESH_IDLE_TTL_SECS", 14 * 86_400)?,
                session: secs("TOLLGATE_SESSION_TTL_SECS", 90 * 86_400)?,
            },
            policy: RefreshPolicy {
                grace: secs("TOLLGATE_REUSE_GRACE_SECS", 5)?,
                binding: BindingPolicy {
                    ip,
                    user_agent,
                    ..BindingPolicy::default()
                },
            },
            proxies: TrustedProxies::from_str(&var("TOLLGATE_TRUSTED_PROXIES", ""))?,
            limits,
            request_timeout: secs("TOLLGATE_REQUEST_TIMEOUT_SECS", 10)?,
            alg,
            key_file: env::var_os("TOLLGATE_SIGNING_KEY_FILE").map(PathBuf::from),
            hmac_secret: env::var("TOLLGATE_HMAC_SECRET").ok(),
            client_id: var("TOLLGATE_DEMO_CLIENT_ID", "demo-client"),
            client_secret: var("TOLLGATE_DEMO_CLIENT_SECRET", "demo-secret"),
            public_client_id: var("TOLLGATE_DEMO_PUBLIC_CLIENT_ID", "demo-spa"),
            user: var("TOLLGATE_DEMO_USER", "alice"),
            password: var("TOLLGATE_DEMO_PASSWORD", "wonderland"),
        })
    }
}

struct App {
    router: Router,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    async fn start(cfg: &Config) -> Result<Self, BoxError> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        let mut opts = ConnectOptions::new(cfg.database_url.clone());
        opts.sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(5));
        let db = Database::connect(opts).await?;
        store::migrate(&db).await?;
        demo_clients(&db, cfg).await?;

        let keys = KeySet::builder().signing_key(signing_key(cfg)?).build()?;
        let issuer = Issuer::builder()
            .db(db.clone())
            .keys(keys)
            .issuer(cfg.issuer.clone())
            .audience(cfg.audience.clone())
            .lifetimes(cfg.lifetimes)
            .policy(cfg.policy.clone())
            .refresh_secret(refresh_secret(&cfg.data_dir)?)
            .build()?;
        // Load every revocation that still matters into the issuer's deny
        // list (which its gates share) before serving, then follow the
        // other instances' revocations.
        let sync = RevocationSync::builder(db.clone(), issuer.revocations().clone()).build();
        sync.sync().await?;
        let janitor = Janitor::builder(db.clone()).build();

        let password = Argon2::default()
            .hash_password(cfg.password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|e| e.to_string())?
            .to_string();
        let demo_user = cfg.user.clone();
        let endpoint = TokenEndpoint::builder(issuer.clone())
            .trusted_proxies(cfg.proxies.clone())
            .rate_limits(cfg.limits.clone())
            .password_verifier(move |user: String, given: String| {
                let (demo_user, password) = (demo_user.clone(), password.clone());
                async move {
                    // Argon2 for human passwords, off the async threads; it
                    // runs for an unknown user too, so both cost the same.
                    let ok = tokio::task::spawn_blocking(move || {
                        PasswordHash::new(&password).is_ok_and(|hash| {
                            Argon2::default()
                                .verify_password(given.as_bytes(), &hash)
                                .is_ok()
                        })
                    })
                    .await?;
                    Ok((ok && user == demo_user).then_some(user))
                }
            })
            .build()?;

        let gate = |scope: Option<&str>| -> Result<AccessTokenLayer, BoxError> {
            let mut b = issuer.access_token_layer().realm("quickstart");
            if let Some(scope) = scope {
                b = b.require_scope(scope);
            }
            Ok(b.build()?)
        };
        let sessions = issuer.sessions();
        let protected = Router::new()
            .route("/me", get(me))
            .route("/logout", post(logout))
            .route("/sessions", get(list_sessions).delete(revoke_sessions))
            .route("/sessions/{id}", delete(revoke_session))
            .with_state(sessions)
            .layer(gate(None)?);
        let admin = Router::new()
            .route("/admin", get(|| async { "welcome, administrator\n" }))
            .layer(gate(Some("admin"))?);
        let router = Router::new()
            .route_service("/token", endpoint.clone())
            .route_service("/revoke", endpoint.revocation())
            .route_service("/introspect", endpoint.introspection())
            .route_service("/.well-known/jwks.json", endpoint.jwks())
            .route("/healthz", get(move || healthz(db.clone())))
            // The token endpoints cap their own bodies (16 KiB) and answer
            // in RFC 6749's JSON; the rest of the app gets tower-http's cap.
            .merge(
                protected
                    .merge(admin)
                    .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
            )
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                cfg.request_timeout,
            ));
        Ok(Self {
            router,
            background: vec![sync.spawn(), janitor.spawn()],
        })
    }
}

/// The demo clients, registered once (changing their settings later means
/// a fresh database).
async fn demo_clients(db: &DatabaseConnection, cfg: &Config) -> Result<(), BoxError> {
    if store::clients::find(db, &cfg.client_id).await?.is_none() {
        let mut c = NewClient::confidential(cfg.client_id.clone(), "read write");
        c.allow_password = true;
        store::clients::register_with_secret(db, c, &cfg.client_secret).await?;
    }
    if store::clients::find(db, &cfg.public_client_id)
        .await?
        .is_none()
    {
        let mut c = NewClient::public(cfg.public_client_id.clone(), "read write");
        c.allow_password = true;
        store::clients::register(db, c).await?;
    }
    Ok(())
}

/// The signing key: from `TOLLGATE_SIGNING_KEY_FILE`, from
/// `TOLLGATE_HMAC_SECRET` for HS256, or (EdDSA, ES256) generated at first
/// start and kept in the data directory, so a restart logs nobody out.
fn signing_key(cfg: &Config) -> Result<SigningKey, BoxError> {
    if cfg.alg == Algorithm::HS256 {
        let secret = cfg
            .hmac_secret
            .as_deref()
            .ok_or("HS256 needs TOLLGATE_HMAC_SECRET (32 bytes or more)")?;
        return Ok(SigningKey::hmac(
            "quickstart-hs256",
            Algorithm::HS256,
            secret.as_bytes(),
        )?);
    }
    let pem = match &cfg.key_file {
        Some(file) => std::fs::read(file)?,
        None => {
            let file = cfg.data_dir.join(format!("signing-key-{:?}.pem", cfg.alg));
            kept(&file, || {
                let rng = SystemRandom::new();
                let der = match cfg.alg {
                    // PKCS#8 v1: the form jsonwebtoken reads Ed25519 keys in.
                    Algorithm::EdDSA => Ed25519KeyPair::generate()
                        .and_then(|k| k.to_pkcs8v1())
                        .map_err(|_| "cannot generate a key")?
                        .as_ref()
                        .to_vec(),
                    Algorithm::ES256 => {
                        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                            .map_err(|_| "cannot generate a key")?
                            .as_ref()
                            .to_vec()
                    }
                    _ => return Err("RS256 needs TOLLGATE_SIGNING_KEY_FILE".into()),
                };
                Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)).into_bytes())
            })?
        }
    };
    // The key id names the key: a new key gets a new id.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pem);
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..9]);
    Ok(SigningKey::from_pem(kid, cfg.alg, &pem)?)
}

/// The refresh secret every instance shares, kept in the data directory.
fn refresh_secret(dir: &Path) -> Result<RefreshSecret, BoxError> {
    let bytes = kept(&dir.join("refresh-secret"), || {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| "no randomness")?;
        Ok(STANDARD.encode(secret).into_bytes())
    })?;
    Ok(RefreshSecret::new(&STANDARD.decode(bytes.trim_ascii())?)?)
}

/// The content of `file`, made by `make` (and written, owner-only) if it
/// does not exist yet.
fn kept(
    file: &Path,
    make: impl FnOnce() -> Result<Vec<u8>, BoxError>,
) -> Result<Vec<u8>, BoxError> {
    if let Ok(bytes) = std::fs::read(file) {
        return Ok(bytes);
    }
    let bytes = make()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(file)?, &bytes)?;
    Ok(bytes)
}

async fn me(claims: AccessClaims) -> Json<AccessClaims> {
    Json(claims)
}

/// Maps a store failure to 503: the client may retry.
fn unavailable(e: &store::StoreError) -> StatusCode {
    eprintln!("store failure: {e}");
    StatusCode::SERVICE_UNAVAILABLE
}

async fn logout(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
) -> Result<StatusCode, StatusCode> {
    sessions
        .logout(&claims)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_sessions(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
) -> Result<impl IntoResponse, StatusCode> {
    let list = sessions
        .list(&claims.sub, claims.sid.as_deref())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(list))
}

async fn revoke_session(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, StatusCode> {
    match sessions.revoke(&claims.sub, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(StatusCode::NOT_FOUND),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `DELETE /sessions`: every session but the current one; with `?all=true`
/// every session, the current one included (logout everywhere).
async fn revoke_sessions(
    axum::extract::State(sessions): axum::extract::State<Sessions>,
    claims: AccessClaims,
    req: Request,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let all = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "all=true"));
    let revoked = match (&claims.sid, all) {
        (Some(current), false) => sessions.revoke_others(&claims.sub, current).await,
        _ => sessions.revoke_all(&claims.sub).await,
    }
    .map_err(|e| unavailable(&e))?;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

async fn healthz(db: DatabaseConnection) -> StatusCode {
    match db.ping().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn curl_lines(cfg: &Config, addr: SocketAddr) -> String {
    format!(
        "\nTry it:\n\
         \x20 # log in as the demo user (password grant, demo clients only)\n\
         \x20 curl -s -u {id}:{secret} -d grant_type=password -d username={user} -d password={pw} -d scope='read write' http://{addr}/token\n\
         \x20 # call a protected route with the access_token from the answer\n\
         \x20 curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/me\n\
         \x20 # rotate the refresh token (each one works once)\n\
         \x20 curl -s -u {id}:{secret} -d grant_type=refresh_token -d refresh_token=$REFRESH_TOKEN http://{addr}/token\n\
         \x20 # your sessions, then log out\n\
         \x20 curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/sessions\n\
         \x20 curl -s -X POST -H \"Authorization: Bearer $ACCESS_TOKEN\" http://{addr}/logout\n\
         \x20 # the public keys\n\
         \x20 curl -s http://{addr}/.well-known/jwks.json\n",
        id = cfg.client_id,
        secret = cfg.client_secret,
        user = cfg.user,
        pw = cfg.password,
    )
}
