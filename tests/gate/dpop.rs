//! DPoP at the gate (RFC 9449 §7): every check of a proof accepted and
//! refused, with proofs signed by jsonwebtoken (and, in
//! `proofs_made_by_joserfc_are_accepted`, by Python's joserfc); the
//! token's binding, replay, nonces, the challenges, a gate behind a
//! proxy's path prefix, and gRPC.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use serde_json::json;
use tollgate::{
    AccessTokenLayer,
    claims::Confirmation,
    dpop::{Dpop, DpopKey, Nonces, ReplayCache},
};
use tower::{Layer, ServiceExt, service_fn};

use crate::common::{
    self,
    dpop::{ProofKey, ath, claims as proof_claims, random_jti},
    hs256,
};

const PUBLIC: &str = "https://api.example";
const URL: &str = "https://api.example/orders";

fn dpop() -> Dpop {
    Dpop::builder().build().unwrap()
}

fn gate_with(dpop: Dpop) -> AccessTokenLayer {
    common::gate_builder(&hs256())
        .realm("orders")
        .dpop(dpop)
        .dpop_public_url(PUBLIC)
        .build()
        .unwrap()
}

/// An access token bound to `key` (or to nothing).
fn token(key: Option<&ProofKey>) -> String {
    let mut c = common::claims(&random_jti());
    c.cnf = key.map(|k| Confirmation {
        jkt: k.thumbprint(),
    });
    hs256().sign(&c).unwrap()
}

fn request(method: Method, path: &str, auth: &str, proofs: &[&str]) -> Request<String> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth);
    for p in proofs {
        req = req.header("dpop", *p);
    }
    req.body(String::new()).unwrap()
}

/// Answers 200 with the claims' subject and the proved key's thumbprint.
async fn echo(req: Request<String>) -> Result<Response<String>, std::convert::Infallible> {
    let key = req
        .extensions()
        .get::<DpopKey>()
        .map(|k| k.thumbprint.clone());
    let sub = req
        .extensions()
        .get::<tollgate::AccessClaims>()
        .map(|c| c.sub.clone());
    Ok(Response::new(format!("{sub:?} {key:?}")))
}

/// `GET /orders` with this `Authorization` and these `DPoP` headers.
async fn get(gate: &AccessTokenLayer, auth: &str, proofs: &[&str]) -> Response<String> {
    call(gate, request(Method::GET, "/orders", auth, proofs)).await
}

async fn call(gate: &AccessTokenLayer, req: Request<String>) -> Response<String> {
    gate.clone()
        .layer(service_fn(echo))
        .oneshot(req)
        .await
        .unwrap()
}

fn challenges(res: &Response<String>) -> Vec<String> {
    res.headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `error` of the one challenge, and its scheme.
fn error_of(res: &Response<String>) -> (String, String) {
    let all = challenges(res);
    assert_eq!(all.len(), 1, "{all:?}");
    let c = &all[0];
    let scheme = c.split(' ').next().unwrap().to_owned();
    let error = c
        .split("error=\"")
        .nth(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .unwrap_or_default();
    (scheme, error)
}

#[tokio::test]
async fn a_bound_token_with_a_proof_by_its_key_is_accepted() {
    let gate = gate_with(dpop());
    for key in [
        ProofKey::es256(),
        ProofKey::ed25519(),
        ProofKey::rsa(jsonwebtoken::Algorithm::RS256),
        ProofKey::rsa(jsonwebtoken::Algorithm::PS256),
    ] {
        let at = token(Some(&key));
        let proof = key.proof("GET", URL, Some(&at));
        let res = get(&gate, &format!("DPoP {at}"), &[&proof]).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{:?} {:?}",
            key.alg,
            challenges(&res)
        );
        // The verified facts are in the extensions beside the claims.
        assert_eq!(
            res.into_body(),
            format!("Some(\"alice\") Some({:?})", key.thumbprint())
        );
    }
}

/// Equivalent spellings of the URL pass; a query and fragment are
/// ignored (RFC 9449 §4.3 step 9); everything else fails.
#[tokio::test]
async fn htu_is_compared_after_normalisation_and_never_from_host() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let at = token(Some(&key));
    for (htu, ok) in [
        ("https://api.example/orders", true),
        ("https://api.example:443/orders", true),
        ("https://API.EXAMPLE/orders", true),
        ("HTTPS://api.example/orders", true),
        ("https://api.example/orders?page=2", true),
        ("https://api.example/orders#frag", true),
        ("https://evil.example/orders", false),
        ("https://api.example/other", false),
        ("https://api.example/Orders", false),
        ("http://api.example/orders", false),
        ("https://api.example:8443/orders", false),
        ("/orders", false),
    ] {
        let proof = key.proof("GET", htu, Some(&at));
        // The Host header says evil.example: never consulted.
        let mut req = request(Method::GET, "/orders", &format!("DPoP {at}"), &[&proof]);
        req.headers_mut()
            .insert(header::HOST, "evil.example".parse().unwrap());
        let res = call(&gate, req).await;
        if ok {
            assert_eq!(
                res.status(),
                StatusCode::OK,
                "{htu}: {:?}",
                challenges(&res)
            );
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{htu}");
            assert_eq!(
                error_of(&res),
                ("DPoP".into(), "invalid_dpop_proof".into()),
                "{htu}"
            );
        }
    }
}

/// One refusal per check; each answer names the check in its
/// description and never echoes the proof.
#[tokio::test]
async fn every_check_refuses_what_it_must() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let other = ProofKey::ed25519();
    let at = token(Some(&key));
    let now = jsonwebtoken::get_current_timestamp();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = proof_claims("GET", URL, Some(&at));
        edit(&mut c);
        key.sign(&c)
    };
    let private_jwk = {
        // The private scalar alongside the public key.
        let mut header_jwk = key.jwk_json();
        header_jwk["d"] = "AAAA".into();
        common::raw_jwt(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": header_jwk}),
            &proof_claims("GET", URL, Some(&at)),
            "AAAA",
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong htm", key.proof("POST", URL, Some(&at)), "htm"),
        (
            "iat too old",
            with(&|c| c["iat"] = (now - 120).into()),
            "iat is too old",
        ),
        (
            "iat in the future",
            with(&|c| c["iat"] = (now + 60).into()),
            "in the future",
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "jti",
        ),
        (
            "a huge jti",
            with(&|c| c["jti"] = "j".repeat(300).into()),
            "jti",
        ),
        (
            "ath of another token",
            with(&|c| c["ath"] = ath("another.token.value").into()),
            "ath",
        ),
        (
            "no ath",
            with(&|c| {
                c.as_object_mut().unwrap().remove("ath");
            }),
            "ath",
        ),
        (
            "another key's valid proof",
            other.proof("GET", URL, Some(&at)),
            "bound to",
        ),
        (
            "typ JWT",
            key.sign_with_header(&proof_claims("GET", URL, Some(&at)), |h| {
                h.typ = Some("JWT".into());
            }),
            "typ",
        ),
        (
            "no jwk",
            key.sign_with_header(&proof_claims("GET", URL, Some(&at)), |h| h.jwk = None),
            "jwk",
        ),
        ("a private jwk", private_jwk, "jwk"),
        (
            "alg none",
            common::raw_jwt(
                &json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk_json()}),
                &proof_claims("GET", URL, Some(&at)),
                "",
            ),
            "algorithm",
        ),
        (
            "HS256 with the jwk as secret",
            {
                let c = proof_claims("GET", URL, Some(&at));
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.typ = Some("dpop+jwt".into());
                h.jwk = Some(key.jwk.clone());
                jsonwebtoken::encode(&h, &c, &jsonwebtoken::EncodingKey::from_secret(b"k")).unwrap()
            },
            "algorithm",
        ),
        (
            "a bad signature",
            {
                let p = key.proof("GET", URL, Some(&at));
                let (head, sig) = p.rsplit_once('.').unwrap();
                let mut sig = sig.to_owned();
                let flipped = if sig.starts_with('A') { "B" } else { "A" };
                sig.replace_range(0..1, flipped);
                format!("{head}.{sig}")
            },
            "signature",
        ),
        ("garbage", "not.a.proof".into(), "malformed"),
    ];
    for (why, proof, named) in cases {
        let res = get(&gate, &format!("DPoP {at}"), &[&proof]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
        let (scheme, error) = error_of(&res);
        assert_eq!(
            (scheme.as_str(), error.as_str()),
            ("DPoP", "invalid_dpop_proof"),
            "{why}"
        );
        let c = &challenges(&res)[0];
        assert!(c.contains(named), "{why}: {c}");
        assert!(
            c.contains(r#"algs="ES256 EdDSA Ed25519 PS256 RS256""#),
            "{why}: {c}"
        );
        assert!(!c.contains(&proof), "{why}: the proof is echoed");
    }
    // Two DPoP headers.
    let p = key.proof("GET", URL, Some(&at));
    let res = get(&gate, &format!("DPoP {at}"), &[&p, &p]).await;
    assert_eq!(error_of(&res).1, "invalid_dpop_proof");
    // None.
    let res = get(&gate, &format!("DPoP {at}"), &[]).await;
    assert_eq!(error_of(&res).1, "invalid_dpop_proof");
    // After all those refusals, a good proof still passes: none of them
    // burned anything.
    let p = key.proof("GET", URL, Some(&at));
    let res = get(&gate, &format!("DPoP {at}"), &[&p]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let at = token(Some(&key));
    let proof = key.proof("GET", URL, Some(&at));
    let req = || request(Method::GET, "/orders", &format!("DPoP {at}"), &[&proof]);
    assert_eq!(call(&gate, req()).await.status(), StatusCode::OK);
    let again = call(&gate, req()).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(challenges(&again)[0].contains("used before"));
    // Another gate sharing the replay cache refuses it too.
    let shared = ReplayCache::default();
    let one = gate_with(
        Dpop::builder()
            .replay_cache(shared.clone())
            .build()
            .unwrap(),
    );
    let two = gate_with(Dpop::builder().replay_cache(shared).build().unwrap());
    let proof = key.proof("GET", URL, Some(&at));
    let req = || request(Method::GET, "/orders", &format!("DPoP {at}"), &[&proof]);
    assert_eq!(call(&one, req()).await.status(), StatusCode::OK);
    assert_eq!(call(&two, req()).await.status(), StatusCode::UNAUTHORIZED);
}

/// A forged proof (bad signature, or a valid proof with a token it is not
/// bound to) must not burn the victim's `jti`.
#[tokio::test]
async fn a_refused_request_does_not_claim_the_jti() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let at = token(Some(&key));
    let mut c = proof_claims("GET", URL, Some(&at));
    let jti = c["jti"].clone();
    // The attacker's proof with the victim's jti, by another key.
    let attacker = ProofKey::es256();
    let forged = attacker.sign(&c);
    let res = get(&gate, &format!("DPoP {at}"), &[&forged]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A good proof with a revoked-looking (unsigned) token: refused after
    // the proof passed; the jti stays free.
    c["jti"] = jti;
    let victim = key.sign(&c);
    let res = get(&gate, &format!("DPoP {at}x"), &[&victim]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = get(&gate, &format!("DPoP {at}"), &[&victim]).await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", challenges(&res));
}

#[tokio::test]
async fn a_bound_token_is_no_bearer_token_and_an_unbound_one_no_dpop_token() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let bound = token(Some(&key));
    let res = get(&gate, &format!("Bearer {bound}"), &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let c = challenges(&res);
    assert!(
        c[0].starts_with("DPoP ") && c[0].contains(r#"error="invalid_token""#),
        "{c:?}"
    );
    // Even with a valid proof beside it.
    let proof = key.proof("GET", URL, Some(&bound));
    let res = get(&gate, &format!("Bearer {bound}"), &[&proof]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A gate without DPoP refuses bound tokens as bearer tokens too.
    let plain = common::gate(tollgate::RevocationCache::default());
    let res = get(&plain, &format!("Bearer {bound}"), &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let unbound = token(None);
    let proof = key.proof("GET", URL, Some(&unbound));
    let res = get(&gate, &format!("DPoP {unbound}"), &[&proof]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&res), ("DPoP".into(), "invalid_token".into()));
    // The unbound token still works as a bearer token.
    let res = get(&gate, &format!("Bearer {unbound}"), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// No credentials: both challenges, parsed by an independent RFC 9110
/// parser; the DPoP one lists the algorithms.
#[tokio::test]
async fn a_missing_token_gets_both_challenges() {
    let gate = gate_with(dpop());
    let res = call(&gate, Request::get("/orders").body(String::new()).unwrap()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let all = challenges(&res);
    assert_eq!(all.len(), 2, "{all:?}");
    let mut schemes = Vec::new();
    for value in &all {
        for c in http_auth::parser::ChallengeParser::new(value) {
            let c = c.unwrap();
            schemes.push(c.scheme.to_owned());
            assert!(c.params.iter().all(|(k, _)| *k != "error"), "{value}");
            if c.scheme == "DPoP" {
                let algs = c.params.iter().find(|(k, _)| *k == "algs").unwrap();
                assert_eq!(algs.1.to_unescaped(), "ES256 EdDSA Ed25519 PS256 RS256");
            }
        }
    }
    assert_eq!(schemes, ["Bearer", "DPoP"]);
}

#[tokio::test]
async fn a_route_that_requires_a_nonce_hands_one_out() {
    let nonces = Nonces::new(&[9; 32], Duration::from_secs(60)).unwrap();
    let gate = common::gate_builder(&hs256())
        .dpop(Dpop::builder().nonces(nonces).build().unwrap())
        .dpop_public_url(PUBLIC)
        .require_dpop_nonce()
        .build()
        .unwrap();
    let key = ProofKey::ed25519();
    let at = token(Some(&key));
    let res = get(
        &gate,
        &format!("DPoP {at}"),
        &[&key.proof("GET", URL, Some(&at))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&res), ("DPoP".into(), "use_dpop_nonce".into()));
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // A made-up nonce is refused the same way.
    let mut c = proof_claims("GET", URL, Some(&at));
    c["nonce"] = "made-up".into();
    let res = get(&gate, &format!("DPoP {at}"), &[&key.sign(&c)]).await;
    assert_eq!(error_of(&res).1, "use_dpop_nonce");
    // With the server's nonce: accepted, and the answer has a fresh one.
    c["nonce"] = nonce.into();
    c["jti"] = random_jti().into();
    let res = get(&gate, &format!("DPoP {at}"), &[&key.sign(&c)]).await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", challenges(&res));
    assert!(res.headers().contains_key("dpop-nonce"));
    // A nonce the gate was never configured with cannot be required.
    assert!(
        common::gate_builder(&hs256())
            .dpop(dpop())
            .dpop_public_url(PUBLIC)
            .require_dpop_nonce()
            .build()
            .is_err()
    );
}

/// A full replay cache refuses new proofs with 503 rather than forget
/// old ones.
#[tokio::test]
async fn a_full_replay_cache_fails_closed() {
    // Room for 16 live proofs (one in each shard).
    let gate = gate_with(
        Dpop::builder()
            .replay_cache(ReplayCache::new(16, 16))
            .build()
            .unwrap(),
    );
    let key = ProofKey::es256();
    let at = token(Some(&key));
    let auth = format!("DPoP {at}");
    let mut accepted = Vec::new();
    loop {
        let p = key.proof("GET", URL, Some(&at));
        let res = get(&gate, &auth, &[&p]).await;
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(res.headers()[header::RETRY_AFTER], "1");
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
        accepted.push(p);
        assert!(
            accepted.len() <= 16,
            "the cache took more than its capacity"
        );
    }
    // Every accepted proof is still remembered.
    for p in &accepted {
        assert_eq!(
            get(&gate, &auth, &[p]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Behind a proxy that strips `/api` (here: axum's `nest`), the public
/// URL carries the prefix; the proof names the public URL.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_gate_under_a_path_prefix_behind_a_proxy() {
    use axum::{Router, routing::get};
    let gate = common::gate_builder(&hs256())
        .dpop(dpop())
        .dpop_public_url("https://public.example/api")
        .build()
        .unwrap();
    let app = Router::new().nest(
        "/api",
        Router::new()
            .route("/orders", get(|| async { "ok" }))
            .route_layer(gate),
    );
    let key = ProofKey::es256();
    let at = token(Some(&key));
    for (htu, status) in [
        ("https://public.example/api/orders", StatusCode::OK),
        ("https://public.example/orders", StatusCode::UNAUTHORIZED),
        ("http://internal:8080/api/orders", StatusCode::UNAUTHORIZED),
    ] {
        let req = Request::get("/api/orders")
            .header(header::HOST, "internal:8080")
            .header("x-forwarded-host", "public.example")
            .header(header::AUTHORIZATION, format!("DPoP {at}"))
            .header("dpop", key.proof("GET", htu, Some(&at)))
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), status, "{htu}");
    }
}

#[cfg(feature = "grpc")]
#[tokio::test]
async fn a_grpc_request_with_a_bad_proof_gets_grpc_status_16() {
    let gate = gate_with(dpop());
    let key = ProofKey::es256();
    let at = token(Some(&key));
    let mut req = request(
        Method::POST,
        "/orders",
        &format!("DPoP {at}"),
        &[&key.proof("GET", URL, Some(&at))],
    );
    req.headers_mut()
        .insert(header::CONTENT_TYPE, "application/grpc".parse().unwrap());
    let res = call(&gate, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "16");
}

/// RFC 9728: a gate that accepts DPoP lists the proof algorithms in its
/// protected-resource metadata.
#[tokio::test]
async fn the_resource_metadata_lists_the_dpop_algorithms() {
    let g = common::gate_builder(&hs256())
        .resource("https://api.example/orders")
        .dpop(
            Dpop::builder()
                .algorithms([tollgate::Algorithm::EdDSA])
                .build()
                .unwrap(),
        )
        .dpop_public_url(PUBLIC)
        .build()
        .unwrap();
    let meta = g.resource_metadata().unwrap();
    let res = meta
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["EdDSA", "Ed25519"])
    );
    assert!(
        !doc.as_object()
            .unwrap()
            .contains_key("dpop_bound_access_tokens_required")
    );
}

/// RFC 9864's `Ed25519` as the proof's `alg` and as its key's own `alg`;
/// a key whose `alg` disagrees with the proof's, and a `crit` of `null`
/// (RFC 7515 §4.1.11), are refused.
#[tokio::test]
async fn ed25519_by_either_name_and_no_null_crit() {
    let gate = gate_with(dpop());
    let key = ProofKey::ed25519();
    let mut c = common::claims(&random_jti());
    c.cnf = Some(Confirmation {
        jkt: key.thumbprint(),
    });
    let at = hs256().sign(&c).unwrap();
    let send = |header: serde_json::Value| {
        let proof = key.sign_raw_header(&header, &proof_claims("GET", URL, Some(&at)));
        let gate = gate.clone();
        let at = at.clone();
        async move { get(&gate, &format!("DPoP {at}"), &[&proof]).await.status() }
    };
    let mut own_alg = key.jwk_json();
    own_alg["alg"] = json!("Ed25519");
    let mut wrong_alg = key.jwk_json();
    wrong_alg["alg"] = json!("ES256");
    for (header, expected) in [
        (
            json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": key.jwk_json()}),
            StatusCode::OK,
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": own_alg}),
            StatusCode::OK,
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": own_alg}),
            StatusCode::OK,
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": wrong_alg}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.jwk_json(), "crit": null}),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        assert_eq!(send(header.clone()).await, expected, "{header}");
    }
}

/// Runs `scripts/dpop-proof` (Python joserfc); `None` (skip) when joserfc
/// is missing, except under CI.
fn joserfc(args: &[&str]) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dpop-proof");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            std::env::var_os("CI").is_none() || !err.contains("No module named"),
            "joserfc is required under CI: {err}"
        );
        assert!(err.contains("No module named"), "dpop-proof failed: {err}");
        eprintln!("skipped: joserfc is not installed (pip install joserfc)");
        return None;
    }
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// Keys and proofs made by an independent JOSE implementation (Python
/// joserfc): its RFC 7638 thumbprint is the one the token is bound to, so
/// ours must agree with it, and its proofs must pass every check.
#[tokio::test]
async fn proofs_made_by_joserfc_are_accepted() {
    let gate = gate_with(dpop());
    // `Ed25519`: RFC 9864's name, which current clients sign with.
    for alg in ["ES256", "EdDSA", "Ed25519"] {
        let Some(made) = joserfc(&["key", alg]) else {
            return;
        };
        let made: serde_json::Value = serde_json::from_str(&made).unwrap();
        let mut c = common::claims(&random_jti());
        c.cnf = Some(Confirmation {
            jkt: made["jkt"].as_str().unwrap().to_owned(),
        });
        let at = hs256().sign(&c).unwrap();
        let key = made["key"].to_string();
        let proof = joserfc(&["sign", &key, "GET", URL, &at]).unwrap();
        let res = get(&gate, &format!("DPoP {at}"), &[&proof]).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{alg}: {:?}",
            challenges(&res)
        );
        assert!(res.into_body().contains(made["jkt"].as_str().unwrap()));
        // The same key, another URL: refused.
        let proof = joserfc(&["sign", &key, "GET", "https://api.example/other", &at]).unwrap();
        let res = get(&gate, &format!("DPoP {at}"), &[&proof]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{alg}");
    }
}

/// DPoP without a usable public URL, or a nonce required without nonces,
/// is refused when the gate is built.
#[test]
fn a_gate_with_dpop_needs_its_public_url() {
    use tollgate::access_token::AccessTokenConfigError;
    let no_url = common::gate_builder(&hs256()).dpop(dpop()).build();
    assert_eq!(no_url.unwrap_err(), AccessTokenConfigError::DpopPublicUrl);
    for bad in [
        "api.example",
        "ftp://api.example",
        "https://user@api.example",
    ] {
        let built = common::gate_builder(&hs256())
            .dpop(dpop())
            .dpop_public_url(bad)
            .build();
        assert_eq!(
            built.unwrap_err(),
            AccessTokenConfigError::DpopPublicUrl,
            "{bad}"
        );
    }
    let nonce = common::gate_builder(&hs256())
        .dpop(dpop())
        .dpop_public_url(PUBLIC)
        .require_dpop_nonce()
        .build();
    assert_eq!(nonce.unwrap_err(), AccessTokenConfigError::DpopNoNonces);
    // An HMAC algorithm can never sign a proof.
    assert!(
        Dpop::builder()
            .algorithms([jsonwebtoken::Algorithm::HS256])
            .build()
            .is_err()
    );
}
