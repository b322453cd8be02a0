//! The quickstart's settings, from the environment (README.md lists them
//! with their defaults), the keys and secrets it keeps in its data
//! directory, and the demo clients.

use std::{
    env,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::DatabaseConnection;
use tollgate::{
    binding::{BindingPolicy, ForwardedHeader, IpBinding, TrustedProxies, UserAgentBinding},
    issuer::Lifetimes,
    keys::{Algorithm, SigningKey},
    refresh::RefreshPolicy,
    secret::RefreshSecret,
    store::{self, clients::NewClient},
    token_endpoint::RateLimits,
};

use argon2::{Argon2, Block};
use tollgate::{events::SecurityEvent, token_endpoint::PasswordVerifier};

use crate::{BoxError, signin::origin_of};

/// Settings, from the environment.
pub(crate) struct Config {
    pub(crate) addr: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: String,
    pub(crate) issuer: String,
    pub(crate) public_url: Option<String>,
    pub(crate) audience: String,
    pub(crate) lifetimes: Lifetimes,
    pub(crate) policy: RefreshPolicy,
    pub(crate) proxies: TrustedProxies,
    pub(crate) limits: RateLimits,
    pub(crate) request_timeout: Duration,
    /// Clock skew the gates allow on `exp`/`nbf`.
    pub(crate) leeway: Duration,
    pub(crate) metrics: bool,
    pub(crate) alg: Algorithm,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) hmac_secret: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) public_client_id: String,
    pub(crate) browser_client_id: String,
    /// Origins of browser apps on other sites, beside the quickstart's own
    /// page.
    pub(crate) browser_origins: Vec<String>,
    pub(crate) user: String,
    pub(crate) password: String,
    /// The deprecated password grant for the demo clients (for `curl`).
    pub(crate) password_grant: bool,
}

pub(crate) fn var(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub(crate) fn secs(name: &str, default: u64) -> Result<Duration, BoxError> {
    let v = var(name, &default.to_string());
    let n: u64 = v
        .parse()
        .map_err(|_| format!("{name} must be a number of seconds, not `{v}`"))?;
    Ok(Duration::from_secs(n))
}

/// A client id that the page can carry as is: letters, digits, `-`, `_`.
fn client_id_var(name: &str, default: &str) -> Result<String, BoxError> {
    let v = var(name, default);
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("{name}: letters, digits, `-` and `_` only, not `{v}`").into());
    }
    Ok(v)
}

impl Config {
    pub(crate) fn from_env() -> Result<Self, BoxError> {
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
            public_url: env::var("TOLLGATE_PUBLIC_URL").ok(),
            audience: var("TOLLGATE_AUDIENCE", "quickstart-api"),
            lifetimes: Lifetimes {
                access: secs("TOLLGATE_ACCESS_TTL_SECS", 900)?,
                refresh_idle: secs("TOLLGATE_REFRESH_IDLE_TTL_SECS", 14 * 86_400)?,
                session: secs("TOLLGATE_SESSION_TTL_SECS", 90 * 86_400)?,
            },
            policy: RefreshPolicy {
                grace: secs("TOLLGATE_REUSE_GRACE_SECS", 5)?,
                bound_grace: secs("TOLLGATE_BOUND_REUSE_GRACE_SECS", 30 * 60)?,
                binding: BindingPolicy {
                    ip,
                    user_agent,
                    ..BindingPolicy::default()
                },
            },
            proxies: trusted_proxies()?,
            limits,
            request_timeout: secs("TOLLGATE_REQUEST_TIMEOUT_SECS", 10)?,
            leeway: secs("TOLLGATE_LEEWAY_SECS", 30)?,
            metrics: match var("TOLLGATE_METRICS", "off").as_str() {
                "on" => true,
                "off" => false,
                other => return Err(format!("TOLLGATE_METRICS: on or off, not `{other}`").into()),
            },
            alg,
            key_file: env::var_os("TOLLGATE_SIGNING_KEY_FILE").map(PathBuf::from),
            hmac_secret: env::var("TOLLGATE_HMAC_SECRET").ok(),
            client_id: var("TOLLGATE_DEMO_CLIENT_ID", "demo-client"),
            client_secret: var("TOLLGATE_DEMO_CLIENT_SECRET", "demo-secret"),
            public_client_id: var("TOLLGATE_DEMO_PUBLIC_CLIENT_ID", "demo-spa"),
            browser_client_id: client_id_var("TOLLGATE_DEMO_BROWSER_CLIENT_ID", "demo-browser")?,
            browser_origins: var("TOLLGATE_BROWSER_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            user: var("TOLLGATE_DEMO_USER", "alice"),
            password: var("TOLLGATE_DEMO_PASSWORD", "wonderland"),
            password_grant: match var("TOLLGATE_DEMO_PASSWORD_GRANT", "off").as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(
                        format!("TOLLGATE_DEMO_PASSWORD_GRANT: on or off, not `{other}`").into(),
                    );
                }
            },
        })
    }
}

/// The demo clients, registered once (changing their settings later means
/// a fresh database, or the `tollgate` command) — except the browser
/// client's redirect URI, which follows the public URL at every start: the
/// page at `/` is where the code flow comes back to.
pub(crate) async fn demo_clients(
    db: &DatabaseConnection,
    cfg: &Config,
    public_url: &str,
) -> Result<(), BoxError> {
    if store::clients::find(db, &cfg.client_id).await?.is_none() {
        let mut c = NewClient::confidential(cfg.client_id.clone(), "read write");
        c.allow_password = true;
        c.allow_client_credentials = true;
        // It stands for the resource server too: it may introspect.
        c.allow_introspection = true;
        store::clients::register_with_secret(
            db,
            c,
            &cfg.client_secret,
            std::time::SystemTime::now(),
        )
        .await?;
    }
    // A public client for scripts and native apps: a loopback redirect,
    // any port (RFC 8252 §7.3).
    if store::clients::find(db, &cfg.public_client_id)
        .await?
        .is_none()
    {
        let mut c = NewClient::public(cfg.public_client_id.clone(), "read write");
        c.allow_password = true;
        c.redirect_uris = vec!["http://127.0.0.1/callback".to_owned()];
        store::clients::register(db, c, std::time::SystemTime::now()).await?;
    }
    // The page at `/` signs in through this one (its refresh token lives
    // in a cookie).
    let mut c = NewClient::public(cfg.browser_client_id.clone(), "read write");
    c.name = "tollgate quickstart (the page at /)".to_owned();
    c.allow_password = true;
    c.redirect_uris = vec![format!("{}/", origin_of(public_url))];
    let registered = store::clients::find(db, &c.client_id).await?;
    let saved = match &registered {
        Some(_) => store::clients::update(db, c.clone()).await.map(|_| ()),
        None => store::clients::register(db, c.clone(), std::time::SystemTime::now())
            .await
            .map(|_| ()),
    };
    match saved {
        Ok(()) => Ok(()),
        // A public URL on plain http beyond loopback cannot be a redirect.
        Err(store::StoreError::Invalid(why)) => {
            eprintln!(
                "warning: the page at / cannot sign in: {} is not a valid redirect URI ({why}); \
                 serve it over https or on a loopback address",
                c.redirect_uris[0]
            );
            c.redirect_uris.clear();
            if registered.is_some() {
                store::clients::update(db, c).await?;
            } else {
                store::clients::register(db, c, std::time::SystemTime::now()).await?;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `TOLLGATE_TRUSTED_PROXIES` (addresses and networks) and the one header
/// they write, `TOLLGATE_FORWARDED_HEADER` (`x-forwarded-for` or
/// `forwarded`), required with the first: the proxy must overwrite or
/// strip it, and the other header is never read.
fn trusted_proxies() -> Result<TrustedProxies, BoxError> {
    let nets = var("TOLLGATE_TRUSTED_PROXIES", "");
    if nets.trim().is_empty() {
        return Ok(TrustedProxies::none());
    }
    let header = match env::var("TOLLGATE_FORWARDED_HEADER").as_deref() {
        Ok("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Ok("forwarded") => ForwardedHeader::Forwarded,
        _ => {
            return Err("TOLLGATE_TRUSTED_PROXIES needs TOLLGATE_FORWARDED_HEADER: \
                x-forwarded-for or forwarded, the one header the proxy writes"
                .into());
        }
    };
    Ok(TrustedProxies::new(header, &nets)?)
}

/// The signing key: from `TOLLGATE_SIGNING_KEY_FILE`, from
/// `TOLLGATE_HMAC_SECRET` for HS256, or (EdDSA, ES256) generated at first
/// start and kept in the data directory, so a restart logs nobody out.
pub(crate) fn signing_key(cfg: &Config) -> Result<SigningKey, BoxError> {
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
pub(crate) fn refresh_secret(dir: &Path) -> Result<RefreshSecret, BoxError> {
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
pub(crate) fn kept(
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

/// The demo user's password check: argon2 with OWASP's parameters (19 MiB,
/// two passes) for human passwords, off the async threads, and run for an
/// unknown user too, so both cost the same. The endpoint runs a few checks
/// at once (a permit per core); each takes argon2's working memory from a
/// pool and gives it back, so memory for passwords stays at one buffer per
/// check that ever ran at once, whichever blocking thread runs it
/// (allocating afresh leaves each thread's allocator holding a copy).
pub(crate) fn demo_password_verifier(cfg: &Config) -> Result<impl PasswordVerifier, BoxError> {
    let demo = Arc::new(DemoPassword::new(&cfg.user, &cfg.password)?);
    Ok(move |user: String, given: String| {
        let demo = Arc::clone(&demo);
        async move {
            let ok = tokio::task::spawn_blocking({
                let demo = Arc::clone(&demo);
                move || {
                    demo.hash(given.as_bytes()).is_ok_and(|h| {
                        aws_lc_rs::constant_time::verify_slices_are_equal(&h, &demo.hash).is_ok()
                    })
                }
            })
            .await?;
            Ok((ok && user == demo.user).then_some(user))
        }
    })
}

/// The demo user's salted argon2 hash, and the working memory of checks.
struct DemoPassword {
    user: String,
    salt: [u8; 16],
    hash: [u8; 32],
    memory: Mutex<Vec<Vec<Block>>>,
}

impl DemoPassword {
    fn new(user: &str, password: &str) -> Result<Self, BoxError> {
        let mut demo = Self {
            user: user.to_owned(),
            salt: [0; 16],
            hash: [0; 32],
            memory: Mutex::default(),
        };
        SystemRandom::new()
            .fill(&mut demo.salt)
            .map_err(|_| "no system randomness")?;
        demo.hash = demo.hash(password.as_bytes())?;
        Ok(demo)
    }

    fn hash(&self, password: &[u8]) -> Result<[u8; 32], BoxError> {
        let argon2 = Argon2::default();
        let blocks = self.memory.lock().unwrap().pop();
        let mut blocks =
            blocks.unwrap_or_else(|| vec![Block::default(); argon2.params().block_count()]);
        let mut out = [0u8; 32];
        let hashed =
            argon2.hash_password_into_with_memory(password, &self.salt, &mut out, &mut blocks);
        self.memory.lock().unwrap().push(blocks);
        hashed.map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Logs each security event as a structured `tracing` event (on stderr),
/// and prints the "new device" case as the sentence an app would send its
/// user.
pub(crate) fn print_event(event: &SecurityEvent) {
    tracing::info!(target: "tollgate::events", event = ?event, "security event");
    if let SecurityEvent::SessionStarted {
        subject,
        ip,
        user_agent,
        new_device: true,
        ..
    } = event
    {
        println!(
            "security event: new device signed in for {subject} from {} ({})",
            ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
            user_agent.as_deref().unwrap_or("no User-Agent"),
        );
    }
}
