//! The gate's cost beside its floors, in one run.
//!
//! - `verify/{alg}/raw_decode`: `jsonwebtoken::decode` alone, same token.
//! - `verify/{alg}/layer`: a full call through `AccessTokenLayer` to a
//!   trivial inner service, with 100k live revocations in the cache, the
//!   same token every time (for ES256 and EdDSA a hit of the
//!   verified-token cache); `layer_uncached`: the same with that cache
//!   off; `layer_miss` and `layer_distinct_uncached`: a token never seen
//!   before on every call (100k distinct ones, more than an asymmetric
//!   run makes; the default 8 MiB cache fills and evicts), cache on and
//!   off.
//! - `dpop/{alg}/{bearer,dpop}_layer`: the same HS256 token through a
//!   gate with DPoP on, as a Bearer token and as a DPoP-bound token with a
//!   fresh `alg` proof (signed outside the timing); `proof_signature`:
//!   verifying that proof's signature alone (jsonwebtoken), the floor
//!   DPoP cannot go under. The DPoP extra beyond the signature is
//!   `dpop_layer - bearer_layer - proof_signature`.
//! - `revocation/{n}/{miss,hit}` vs `revocation/{n}/hashset_{miss,hit}`:
//!   one deny-list lookup beside a `RwLock<HashSet>` floor;
//!   `check_miss` is the gate's full per-request check (jti, sid, subject).
//!
//! Run: `cargo bench --bench access_token`.

#![allow(missing_docs)]

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    sync::RwLock,
    task::{Context, Poll, Waker},
    time::{Duration, SystemTime},
};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response, header};
use jsonwebtoken::{DecodingKey, Validation};
use tollgate::{
    AccessClaims, AccessTokenLayer, RevocationCache,
    access_token::DEFAULT_VERIFIED_CACHE_BYTES,
    keys::{Algorithm, SigningKey},
};
use tower::{Layer, Service, service_fn};

const ISS: &str = "https://auth.example";
const AUD: &str = "api";

fn claims() -> AccessClaims {
    let now = jsonwebtoken::get_current_timestamp();
    AccessClaims {
        iss: ISS.into(),
        sub: "user-1234".into(),
        aud: vec![AUD.into()],
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        jti: Some("0d1f1d4c-5d7a-4a53-9a43-8d1c7b6f2e11".into()),
        client_id: Some("web".into()),
        scope: Some("read write".into()),
        sid: Some("fam-42".into()),
        tenant: None,
        cnf: None,
        auth_time: None,
        acr: None,
        amr: None,
    }
}

fn signing_key(alg: Algorithm) -> SigningKey {
    match alg {
        Algorithm::HS256 => SigningKey::hmac("k", alg, &[7; 32]),
        Algorithm::ES256 => {
            SigningKey::from_pem("k", alg, include_bytes!("../tests/keys/es256.pem"))
        }
        _ => SigningKey::from_pem("k", alg, include_bytes!("../tests/keys/ed25519.pem")),
    }
    .unwrap()
}

fn raw_decoding_key(alg: Algorithm) -> DecodingKey {
    match alg {
        Algorithm::HS256 => DecodingKey::from_secret(&[7; 32]),
        Algorithm::ES256 => {
            DecodingKey::from_ec_pem(include_bytes!("../tests/keys/es256.pub.pem")).unwrap()
        }
        _ => DecodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pub.pem")).unwrap(),
    }
}

/// `cargo bench` passes `--bench`; a test run (nextest, `cargo test
/// --benches`) runs each bench once, so it gets small caches.
fn scaled(n: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        n / 1000
    }
}

fn filled_cache(n: usize) -> RevocationCache {
    let n = scaled(n);
    let cache = RevocationCache::default();
    let until = SystemTime::now() + Duration::from_secs(3600);
    for i in 0..n {
        cache.revoke_token(&format!("revoked-{i}"), until);
    }
    cache.run_pending_tasks();
    cache
}

/// Polls a future that is ready at once (the gate and the inner service
/// here never wait), without a runtime.
fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("the benched services never wait"),
    }
}

/// A gate over `key` answering 200 from a trivial inner service, with a
/// verified-token cache of `cache_bytes` (0: off).
fn bench_gate(
    key: &SigningKey,
    revocations: &RevocationCache,
    cache_bytes: u64,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> {
    AccessTokenLayer::builder()
        .keys(key.clone())
        .issuer(ISS)
        .audience(AUD)
        .revocations(revocations.clone())
        .verified_token_cache(cache_bytes)
        .build()
        .unwrap()
        .layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }))
}

/// One request through `svc`, which must admit it.
fn admit<S>(svc: &mut S, bearer: &str)
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    let req = Request::builder()
        .header(header::AUTHORIZATION, bearer)
        .body(())
        .unwrap();
    ready(std::future::poll_fn(|cx| svc.poll_ready(cx))).unwrap();
    let res = ready(svc.call(req)).unwrap();
    assert_eq!(res.status(), 200);
}

fn verify(c: &mut Criterion) {
    let revocations = filled_cache(100_000);
    for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = signing_key(alg);
        let token = key.sign(&claims()).unwrap();
        let bearer = format!("Bearer {token}");
        // Distinct tokens, each seen once: every one a cache miss.
        let distinct: Vec<String> = (0..scaled(100_000).max(2))
            .map(|i| {
                let mut c = claims();
                c.jti = Some(format!("distinct-{i}"));
                format!("Bearer {}", key.sign(&c).unwrap())
            })
            .collect();
        let raw_key = raw_decoding_key(alg);
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;

        let mut group = c.benchmark_group(format!("verify/{alg:?}"));
        group.bench_function("raw_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessClaims>(black_box(&token), &raw_key, &validation)
                    .unwrap()
            });
        });
        // The same token again and again: for ES256 and EdDSA a cache hit.
        let mut svc = bench_gate(&key, &revocations, DEFAULT_VERIFIED_CACHE_BYTES);
        group.bench_function("layer", |b| b.iter(|| admit(&mut svc, &bearer)));
        // The same token with the cache off: the signature every time.
        let mut uncached = bench_gate(&key, &revocations, 0);
        group.bench_function("layer_uncached", |b| {
            b.iter(|| admit(&mut uncached, &bearer));
        });
        // A new token every time, cache on (each a miss, then kept: more
        // tokens than a run of ES256 or EdDSA requests, so none comes
        // round again) and off: what the cache adds to a miss.
        for (name, cache) in [
            ("layer_miss", DEFAULT_VERIFIED_CACHE_BYTES),
            ("layer_distinct_uncached", 0),
        ] {
            let mut svc = bench_gate(&key, &revocations, cache);
            let mut next = distinct.iter().cycle();
            group.bench_function(name, |b| {
                b.iter(|| admit(&mut svc, next.next().unwrap()));
            });
        }
        group.finish();
    }
}

/// A proof key of `alg` from the test keys, and its public JWK.
fn proof_key(alg: Algorithm) -> (jsonwebtoken::EncodingKey, jsonwebtoken::jwk::Jwk) {
    let key = match alg {
        Algorithm::ES256 => {
            jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("../tests/keys/es256.pem"))
        }
        _ => jsonwebtoken::EncodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pem")),
    }
    .unwrap();
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap();
    (key, jwk)
}

fn dpop(c: &mut Criterion) {
    use tollgate::{
        claims::Confirmation,
        dpop::{Dpop, ReplayCache},
    };
    let revocations = filled_cache(100_000);
    let token_key = signing_key(Algorithm::HS256);
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let (proof_key, jwk) = proof_key(alg);
        let jkt = jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap();
        let bearer = format!("Bearer {}", token_key.sign(&claims()).unwrap());
        let mut bound_claims = claims();
        bound_claims.cnf = Some(Confirmation { jkt });
        let bound = token_key.sign(&bound_claims).unwrap();
        let ath = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                bound.as_bytes(),
            ))
        };
        let dpop = Dpop::builder()
            // Room for every proof of the run: none expires within it.
            .replay_cache(ReplayCache::new(1 << 24, 1 << 24))
            .build()
            .unwrap();
        let gate = AccessTokenLayer::builder()
            .keys(token_key.clone())
            .issuer(ISS)
            .audience(AUD)
            .revocations(revocations.clone())
            .dpop(dpop)
            .dpop_public_url("https://api.example")
            .build()
            .unwrap();
        let mut svc = gate.layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        let mut n = 0u64;
        let mut sign_proof = || {
            n += 1;
            let mut header = jsonwebtoken::Header::new(alg);
            header.typ = Some("dpop+jwt".into());
            header.jwk = Some(jwk.clone());
            let claims = serde_json::json!({
                "jti": format!("bench-{n}"),
                "htm": "GET",
                "htu": "https://api.example/orders",
                "iat": jsonwebtoken::get_current_timestamp(),
                "ath": ath,
            });
            jsonwebtoken::encode(&header, &claims, &proof_key).unwrap()
        };
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();

        let mut group = c.benchmark_group(format!("dpop/{alg:?}"));
        group.bench_function("bearer_layer", |b| {
            b.iter_batched(
                || {
                    Request::get("/orders")
                        .header(header::AUTHORIZATION, &bearer)
                        .body(())
                        .unwrap()
                },
                |req| {
                    let res = ready(svc.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_function("dpop_layer", |b| {
            b.iter_batched(
                || {
                    Request::get("/orders")
                        .header(header::AUTHORIZATION, format!("DPoP {bound}"))
                        .header("dpop", sign_proof())
                        .body(())
                        .unwrap()
                },
                |req| {
                    let res = ready(svc.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            );
        });
        // Under the same conditions as `dpop_layer`: a fresh proof signed
        // in the untimed setup each time (signing evicts caches), then
        // only its signature verified.
        group.bench_function("proof_signature", |b| {
            b.iter_batched(
                &mut sign_proof,
                |proof| {
                    let (message, signature) = proof.rsplit_once('.').unwrap();
                    assert!(
                        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &decoding, alg)
                            .unwrap()
                    );
                    proof
                },
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

fn revocation(c: &mut Criterion) {
    for n in [10_000usize, 100_000, 1_000_000] {
        let cache = filled_cache(n);
        let floor: RwLock<HashSet<Box<str>>> = RwLock::new(
            (0..scaled(n))
                .map(|i| format!("revoked-{i}").into())
                .collect(),
        );
        let hit = format!("revoked-{}", scaled(n) / 2);
        let miss = "0d1f1d4c-5d7a-4a53-9a43-8d1c7b6f2e11";
        let mut group = c.benchmark_group(format!("revocation/{n}"));
        group.bench_function("miss", |b| {
            b.iter(|| cache.is_token_revoked(black_box(miss)));
        });
        group.bench_function("hit", |b| {
            b.iter(|| cache.is_token_revoked(black_box(&hit)));
        });
        // What the gate does per request: jti, sid and subject, all missing.
        group.bench_function("check_miss", |b| {
            b.iter(|| cache.check(Some(black_box(miss)), Some("fam-42"), "user-1234", Some(0)));
        });
        group.bench_function("hashset_miss", |b| {
            b.iter(|| floor.read().unwrap().contains(black_box(miss)));
        });
        group.bench_function("hashset_hit", |b| {
            b.iter(|| floor.read().unwrap().contains(black_box(hit.as_str())));
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = verify, dpop, revocation
}
criterion_main!(benches);
