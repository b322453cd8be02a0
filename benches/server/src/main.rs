//! The servers `scripts/bench` drives: one hello-world route, behind
//! nothing, behind tollgate's gate, or behind a hand-written minimal
//! middleware (the floor). Not an example to copy; a measuring tool.
//!
//! ```text
//! bench_server bare
//! bench_server tollgate HS256|EdDSA|ES256 REVOCATIONS
//! bench_server floor    HS256|EdDSA|ES256 REVOCATIONS
//! bench_server memory   tollgate|moka|moka-u128|hashset|dpop-replay ENTRIES
//! bench_server token    HS256|EdDSA|ES256
//! bench_server calls    HS256|EdDSA|ES256 REVOCATIONS N
//! bench_server tollgate-dpop
//! bench_server dpop-proofs EdDSA|ES256 FROM N FILE
//! bench_server dpop-calls  EdDSA|ES256 N bearer|dpop|signature
//! ```
//!
//! Serving, it prints `listening on http://ADDR` and then `token TOKEN`
//! (a valid access token for the chosen algorithm; HS256 for `bare`, so
//! every variant receives the same bytes). The HS256 secret, issuer and
//! audience come from `BENCH_HS256_SECRET`, `BENCH_ISSUER` and
//! `BENCH_AUDIENCE`, which the jwt-authorizer peer reads too. `memory`
//! fills a deny list (or a bare moka cache, or a `HashSet`) with live
//! entries and prints the resident memory it added, per entry.
//! `tollgate-dpop` serves behind a gate that takes DPoP-bound HS256 tokens
//! with proofs for `https://bench.example/`, which `dpop-proofs` writes
//! (the `Authorization` value, then one single-use proof a line) for
//! `scripts/dpop.lua`; `dpop-calls` runs the gate in a loop for callgrind.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http::{StatusCode, header};
use tollgate::{
    AccessClaims, AccessTokenLayer, RevocationCache,
    keys::{Algorithm, KeySet, SigningKey},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ES256_PEM: &[u8] = include_bytes!("../../../tests/keys/es256.pem");
const ED25519_PEM: &[u8] = include_bytes!("../../../tests/keys/ed25519.pem");

struct Settings {
    secret: String,
    issuer: String,
    audience: String,
}

impl Settings {
    fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Self {
            secret: var(
                "BENCH_HS256_SECRET",
                "bench-secret-bench-secret-bench-secret",
            ),
            issuer: var("BENCH_ISSUER", "https://issuer.bench"),
            audience: var("BENCH_AUDIENCE", "bench-api"),
        }
    }

    fn key(&self, alg: Algorithm) -> Result<SigningKey, BoxError> {
        Ok(match alg {
            Algorithm::HS256 => SigningKey::hmac("bench-hs", alg, self.secret.as_bytes())?,
            Algorithm::EdDSA => SigningKey::from_pem("bench-ed", alg, ED25519_PEM)?,
            Algorithm::ES256 => SigningKey::from_pem("bench-es", alg, ES256_PEM)?,
            other => return Err(format!("unsupported {other:?}").into()),
        })
    }

    fn claims(&self, jti: &str) -> AccessClaims {
        let now = jsonwebtoken::get_current_timestamp();
        AccessClaims {
            iss: self.issuer.clone(),
            sub: "bench-user".into(),
            aud: vec![self.audience.clone()],
            exp: now + 3600,
            iat: Some(now),
            nbf: None,
            jti: Some(jti.into()),
            client_id: Some("bench-client".into()),
            scope: Some("read".into()),
            sid: Some("bench-session".into()),
            tenant: None,
            cnf: None,
            auth_time: None,
            acr: None,
            amr: None,
        }
    }
}

fn parse_alg(s: &str) -> Result<Algorithm, BoxError> {
    Ok(match s {
        "HS256" => Algorithm::HS256,
        "EdDSA" => Algorithm::EdDSA,
        "ES256" => Algorithm::ES256,
        other => return Err(format!("algorithm: HS256, EdDSA or ES256, not {other}").into()),
    })
}

/// Live-looking jti values: 22 characters, like tollgate's own.
fn jti(i: usize) -> String {
    format!("revoked-{i:014}")
}

async fn hello() -> &'static str {
    "hello"
}

/// With feature `metrics` and `BENCH_PROMETHEUS=1`, a Prometheus recorder
/// receives tollgate's metrics, as in a production app that exports them.
fn install_prometheus() -> Result<(), BoxError> {
    #[cfg(feature = "metrics")]
    if std::env::var_os("BENCH_PROMETHEUS").is_some() {
        metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let settings = Settings::from_env();
    install_prometheus()?;
    if let ["memory", "verified-cache", entries] = args.as_slice() {
        return verified_cache_memory(&settings, entries.parse()?);
    }
    if let ["memory", kind, entries] = args.as_slice() {
        return memory(kind, entries.parse()?);
    }
    if let ["calls", alg, revocations, n] = args.as_slice() {
        return calls(&settings, parse_alg(alg)?, revocations.parse()?, n.parse()?);
    }
    if let ["dpop-proofs", alg, from, n, file] = args.as_slice() {
        return dpop_proofs(&settings, parse_alg(alg)?, from.parse()?, n.parse()?, file);
    }
    if let ["dpop-calls", alg, n, mode] = args.as_slice() {
        return dpop_calls(&settings, parse_alg(alg)?, n.parse()?, mode);
    }
    if let ["token", alg] = args.as_slice() {
        let key = settings.key(parse_alg(alg)?)?;
        println!("{}", key.sign(&settings.claims("bench-jti-0000000001"))?);
        return Ok(());
    }
    let router = Router::new().route("/", get(hello));
    let (router, alg) = match args.as_slice() {
        ["bare"] => (router, Algorithm::HS256),
        ["tollgate", alg, n] => {
            let alg = parse_alg(alg)?;
            let (gate, _) = tollgate_gate(&settings, alg, n.parse()?)?;
            (router.layer(gate), alg)
        }
        // HS256 tokens, DPoP on (the load harness sends `dpop-proofs`).
        ["tollgate-dpop"] => (
            router.layer(dpop_gate(&settings, 8_000_000)?),
            Algorithm::HS256,
        ),
        ["floor", alg, n] => {
            let alg = parse_alg(alg)?;
            let floor = Arc::new(Floor::new(&settings, alg, n.parse()?)?);
            (
                router.layer(middleware::from_fn_with_state(floor, floor_middleware)),
                alg,
            )
        }
        _ => {
            return Err(
                "usage: bench_server bare | tollgate|floor ALG REVOCATIONS | tollgate-dpop \
                 | memory KIND ENTRIES | memory verified-cache ENTRIES | dpop-proofs ALG FROM N FILE | dpop-calls ALG N MODE"
                    .into(),
            );
        }
    };
    let token = settings
        .key(alg)?
        .sign(&settings.claims("bench-jti-0000000001"))?;
    // One worker unless TOKIO_WORKER_THREADS says otherwise: the load
    // generator gets the other core.
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("listening on http://{}", listener.local_addr()?);
            println!("token {token}");
            axum::serve(listener, router).await?;
            Ok(())
        })
}

/// Calls the gate (as a Tower service, extraction to extensions) `n`
/// times with one valid token and no I/O: run it under
/// `valgrind --tool=callgrind` with two values of `n` to count the
/// instructions of one call, repeatably on any machine.
fn calls(
    settings: &Settings,
    alg: Algorithm,
    revocations: usize,
    n: usize,
) -> Result<(), BoxError> {
    use tower::{Layer, Service};
    let (gate, _) = tollgate_gate(settings, alg, revocations)?;
    let mut svc = gate.layer(tower::service_fn(|req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(req.extensions().len()))
    }));
    let token = settings
        .key(alg)?
        .sign(&settings.claims("bench-jti-0000000001"))?;
    let value = http::HeaderValue::try_from(format!("Bearer {token}"))?;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut ok = 0;
    for _ in 0..n {
        let mut req = http::Request::new(());
        req.headers_mut()
            .insert(header::AUTHORIZATION, value.clone());
        let mut fut = std::pin::pin!(svc.call(req));
        if let std::task::Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            // Two extensions: `AccessClaims` and `RawClaims`.
            ok += usize::from(res.status() == StatusCode::OK && *res.body() == 2);
        }
    }
    assert_eq!(ok, n, "the gate refused the token");
    Ok(())
}

/// DPoP through the gate for callgrind, in three modes over one gate with
/// DPoP on and `n` proofs by an `alg` key signed beforehand:
/// `bearer` (an unbound HS256 token, no proof), `dpop` (the bound token
/// with each proof once), `signature` (each proof's signature verified
/// alone, with jsonwebtoken). Only the loop is of interest: run it under
/// `valgrind --tool=callgrind --toggle-collect='*_loop*'` with two values
/// of `n`; `dpop - bearer - signature` per call is what DPoP adds beyond
/// the one signature verification.
fn dpop_calls(settings: &Settings, alg: Algorithm, n: usize, mode: &str) -> Result<(), BoxError> {
    use tower::Layer;
    let fixture = DpopFixture::new(settings, alg)?;
    let proofs = fixture.proofs(0, n)?;
    let gate = dpop_gate(settings, 4 * n + 64)?;
    let mut svc = gate.layer(tower::service_fn(|req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(req.extensions().len()))
    }));
    let ok = match mode {
        "bearer" => bearer_loop(&mut svc, &format!("Bearer {}", fixture.bearer), n),
        "dpop" => dpop_loop(&mut svc, &format!("DPoP {}", fixture.bound), &proofs),
        "signature" => {
            let key = jsonwebtoken::DecodingKey::from_jwk(&fixture.jwk)?;
            signature_loop(&proofs, &key, alg)
        }
        other => return Err(format!("mode: bearer, dpop or signature, not {other}").into()),
    };
    assert_eq!(ok, n, "refused");
    Ok(())
}

/// A DPoP client of the benchmarks: an `alg` proof key (the test keys), an
/// HS256 access token bound to it (and an unbound one), proofs for `GET
/// https://bench.example/`.
struct DpopFixture {
    alg: Algorithm,
    proof_key: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
    bearer: String,
    bound: String,
    ath: String,
}

impl DpopFixture {
    fn new(settings: &Settings, alg: Algorithm) -> Result<Self, BoxError> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        use jsonwebtoken::{
            EncodingKey,
            jwk::{Jwk, ThumbprintHash},
        };
        let proof_key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(ES256_PEM)?,
            Algorithm::EdDSA => EncodingKey::from_ed_pem(ED25519_PEM)?,
            other => return Err(format!("proofs are ES256 or EdDSA, not {other:?}").into()),
        };
        let jwk = Jwk::from_encoding_key(&proof_key, alg)?;
        let token_key = settings.key(Algorithm::HS256)?;
        let mut claims = settings.claims("bench-jti-0000000001");
        let bearer = token_key.sign(&claims)?;
        claims.cnf = Some(tollgate::claims::Confirmation {
            jkt: jwk.thumbprint(ThumbprintHash::SHA256)?,
        });
        let bound = token_key.sign(&claims)?;
        let ath = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            bound.as_bytes(),
        ));
        Ok(Self {
            alg,
            proof_key,
            jwk,
            bearer,
            bound,
            ath,
        })
    }

    /// Proofs `from..from + n`, each with its own `jti`, `iat` now.
    fn proofs(&self, from: usize, n: usize) -> Result<Vec<String>, BoxError> {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let now = jsonwebtoken::get_current_timestamp();
        (from..from + n)
            .map(|i| {
                let c = serde_json::json!({
                    "jti": format!("bench-proof-{i:010}"), "htm": "GET",
                    "htu": "https://bench.example/", "iat": now, "ath": self.ath,
                });
                Ok(jsonwebtoken::encode(&header, &c, &self.proof_key)?)
            })
            .collect()
    }
}

/// A gate (HS256 tokens) that takes DPoP proofs for `https://bench.example`
/// and holds up to `replay` of them. Proofs stay acceptable for an hour,
/// so the load harness can sign them before its rounds.
fn dpop_gate(settings: &Settings, replay: usize) -> Result<AccessTokenLayer, BoxError> {
    use tollgate::dpop::{Dpop, ReplayCache};
    Ok(AccessTokenLayer::builder()
        .keys(settings.key(Algorithm::HS256)?)
        .issuer(settings.issuer.clone())
        .audience(settings.audience.clone())
        .dpop(
            Dpop::builder()
                .max_age(Duration::from_secs(3600))
                .replay_cache(ReplayCache::new(replay, replay))
                .build()?,
        )
        .dpop_public_url("https://bench.example")
        .build()?)
}

/// Writes the load harness's DPoP input: the `Authorization` value on the
/// first line, then `n` proofs (from `from`), one a line.
fn dpop_proofs(
    settings: &Settings,
    alg: Algorithm,
    from: usize,
    n: usize,
    file: &str,
) -> Result<(), BoxError> {
    let fixture = DpopFixture::new(settings, alg)?;
    let mut out = format!("DPoP {}\n", fixture.bound);
    for p in fixture.proofs(from, n)? {
        out.push_str(&p);
        out.push('\n');
    }
    std::fs::write(file, out)?;
    Ok(())
}

fn call_once<S>(svc: &mut S, req: http::Request<()>) -> bool
where
    S: tower::Service<http::Request<()>, Response = http::Response<usize>>,
{
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(svc.call(req));
    matches!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(res)) if res.status() == StatusCode::OK)
}

#[inline(never)]
fn bearer_loop<S>(svc: &mut S, auth: &str, n: usize) -> usize
where
    S: tower::Service<http::Request<()>, Response = http::Response<usize>>,
{
    let value = http::HeaderValue::try_from(auth).unwrap();
    (0..n)
        .filter(|_| {
            let mut req = http::Request::new(());
            req.headers_mut()
                .insert(header::AUTHORIZATION, value.clone());
            call_once(svc, req)
        })
        .count()
}

#[inline(never)]
fn dpop_loop<S>(svc: &mut S, auth: &str, proofs: &[String]) -> usize
where
    S: tower::Service<http::Request<()>, Response = http::Response<usize>>,
{
    let value = http::HeaderValue::try_from(auth).unwrap();
    proofs
        .iter()
        .filter(|proof| {
            let mut req = http::Request::new(());
            req.headers_mut()
                .insert(header::AUTHORIZATION, value.clone());
            req.headers_mut()
                .insert("dpop", http::HeaderValue::try_from(proof.as_str()).unwrap());
            call_once(svc, req)
        })
        .count()
}

#[inline(never)]
fn signature_loop(proofs: &[String], key: &jsonwebtoken::DecodingKey, alg: Algorithm) -> usize {
    proofs
        .iter()
        .filter(|proof| {
            let (message, signature) = proof.rsplit_once('.').unwrap();
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg).unwrap_or(false)
        })
        .count()
}

/// The gate of the `tollgate` variant, and the deny list behind it.
fn tollgate_gate(
    settings: &Settings,
    alg: Algorithm,
    revocations: usize,
) -> Result<(AccessTokenLayer, RevocationCache), BoxError> {
    let deny = RevocationCache::default();
    let exp = SystemTime::now() + Duration::from_secs(3600);
    for i in 0..revocations {
        deny.revoke_token(&jti(i), exp);
    }
    deny.run_pending_tasks();
    let gate = AccessTokenLayer::builder()
        .keys(KeySet::builder().signing_key(settings.key(alg)?).build()?)
        .issuer(settings.issuer.clone())
        .audience(settings.audience.clone())
        .revocations(deny.clone())
        .build()?;
    Ok((gate, deny))
}

/// The floor: what a straightforward hand-written middleware does —
/// `jsonwebtoken::decode` with the same checks, then one lookup in a
/// `HashSet` of revoked ids (read-only, so no lock).
struct Floor {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    revoked: HashSet<String>,
}

impl Floor {
    fn new(settings: &Settings, alg: Algorithm, revocations: usize) -> Result<Self, BoxError> {
        let key = match alg {
            Algorithm::HS256 => jsonwebtoken::DecodingKey::from_secret(settings.secret.as_bytes()),
            _ => {
                let public = settings.key(alg)?.verifying_key();
                jsonwebtoken::DecodingKey::from_jwk(public.jwk().ok_or("no JWK")?)?
            }
        };
        let mut validation = jsonwebtoken::Validation::new(match alg {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            _ => jsonwebtoken::Algorithm::ES256,
        });
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self {
            key,
            validation,
            revoked: (0..revocations).map(jti).collect(),
        })
    }
}

async fn floor_middleware(
    State(floor): State<Arc<Floor>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match jsonwebtoken::decode::<AccessClaims>(token, &floor.key, &floor.validation) {
        Ok(data)
            if data
                .claims
                .jti
                .as_ref()
                .is_some_and(|j| !floor.revoked.contains(j)) =>
        {
            req.extensions_mut().insert(data.claims);
            next.run(req).await
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Resident memory, in bytes (`VmRSS`).
fn rss() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS")?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// Keeps `n` distinct ES256 tokens in a gate's verified-token cache (each
/// verified twice: a token is kept from its second verification on) and
/// prints the resident memory added per entry, beside the token's length.
/// The tokens are signed beforehand, so their own bytes are not counted.
fn verified_cache_memory(settings: &Settings, n: usize) -> Result<(), BoxError> {
    let key = settings.key(Algorithm::ES256)?;
    let tokens: Vec<String> = (0..n)
        .map(|i| key.sign(&settings.claims(&jti(i))))
        .collect::<Result<_, _>>()?;
    let gate = AccessTokenLayer::builder()
        .keys(key)
        .issuer(&settings.issuer)
        .audience(&settings.audience)
        .verified_token_cache(u64::MAX / 2)
        .build()?;
    let verifier = gate.verifier();
    let before = rss()?;
    for token in &tokens {
        verifier.verify(token)?;
        verifier.verify(token)?;
    }
    assert_eq!(verifier.cached_tokens(), n as u64);
    let after = rss()?;
    println!(
        "verified-cache {n} entries ({}-byte tokens): {} bytes resident, {:.0} bytes per entry",
        tokens[0].len(),
        after - before,
        (after - before) as f64 / n as f64
    );
    Ok(())
}

/// Fills one kind of deny list with `n` live entries and prints the
/// resident memory added per entry (the keys are built beforehand, so
/// their own allocation is not counted twice: each structure owns a copy).
fn memory(kind: &str, n: usize) -> Result<(), BoxError> {
    let exp = SystemTime::now() + Duration::from_secs(3600);
    let before = rss()?;
    let kept: Box<dyn std::any::Any> = match kind {
        "tollgate" => {
            let deny = RevocationCache::default();
            for i in 0..n {
                deny.revoke_token(&jti(i), exp);
            }
            deny.run_pending_tasks();
            assert_eq!(deny.entry_count(), n as u64);
            Box::new(deny)
        }
        "moka" => {
            // moka with per-entry expiry alone: the same key, a u64 expiry.
            struct Until;
            impl moka::Expiry<String, u64> for Until {
                fn expire_after_create(
                    &self,
                    _: &String,
                    v: &u64,
                    _: std::time::Instant,
                ) -> Option<Duration> {
                    Some(Duration::from_secs(*v))
                }
            }
            let cache: moka::sync::Cache<String, u64> =
                moka::sync::Cache::builder().expire_after(Until).build();
            for i in 0..n {
                cache.insert(jti(i), 3600);
            }
            cache.run_pending_tasks();
            assert_eq!(cache.entry_count(), n as u64);
            Box::new(cache)
        }
        "moka-u128" => {
            // moka's own cost per entry, with the smallest key that can
            // still name a token (a 128-bit digest) and a u64 expiry.
            struct Until;
            impl moka::Expiry<u128, u64> for Until {
                fn expire_after_create(
                    &self,
                    _: &u128,
                    v: &u64,
                    _: std::time::Instant,
                ) -> Option<Duration> {
                    Some(Duration::from_secs(*v))
                }
            }
            let cache: moka::sync::Cache<u128, u64> =
                moka::sync::Cache::builder().expire_after(Until).build();
            for i in 0..n {
                cache.insert(i as u128 * 0x9E37_79B9_7F4A_7C15, 3600);
            }
            cache.run_pending_tasks();
            assert_eq!(cache.entry_count(), n as u64);
            Box::new(cache)
        }
        "hashset" => Box::new((0..n).map(jti).collect::<HashSet<String>>()),
        "dpop-replay" => {
            // The DPoP replay cache: live proofs of 1,000 client keys (a
            // 43-character thumbprint each), 22-character jtis.
            let replay = tollgate::dpop::ReplayCache::new(n + n / 8, n);
            let keys: Vec<String> = (0..1000).map(|k| format!("{:0>43}", k)).collect();
            let now = SystemTime::now();
            for i in 0..n {
                replay
                    .try_claim(&keys[i % keys.len()], &jti(i), exp, now)
                    .map_err(|e| format!("entry {i}: {e}"))?;
            }
            assert_eq!(replay.len(), n);
            Box::new(replay)
        }
        other => {
            return Err(format!(
                "memory: tollgate, moka, moka-u128, hashset or dpop-replay, not {other}"
            )
            .into());
        }
    };
    let after = rss()?;
    println!(
        "{kind} {n} entries: {} bytes resident, {:.0} bytes per entry",
        after - before,
        (after - before) as f64 / n as f64
    );
    drop(kept);
    Ok(())
}
