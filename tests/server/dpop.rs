//! DPoP at `/token` (RFC 9449 §5): bound access tokens, public clients'
//! sessions bound to the key while rotation stays exactly-once, clients
//! that must use DPoP, proof refusals, server nonces and the metadata.
//! Proofs are signed by jsonwebtoken, the tokens then checked by a gate.

use std::{collections::HashSet, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;
use tollgate::{
    AccessTokenLayer, TokenEndpoint,
    dpop::{Dpop, Nonces},
    refresh::RefreshPolicy,
    store::{self, clients::NewClient},
};
use tower::{Layer, ServiceExt, service_fn};

use crate::common::{
    dpop::{ProofKey, claims as proof_claims},
    store::{Backend, Harness, Reply, call, harness, per_backend},
};

const TOKEN_URL: &str = "https://auth.example/token";
const API: &str = "https://api.example";

fn endpoint(h: &Harness, dpop: Dpop) -> TokenEndpoint {
    TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|user: String, password: String| async move {
            Ok((user == "alice" && password == "wonderland").then_some(user))
        })
        .dpop(dpop)
        .build()
        .unwrap()
}

fn gate(h: &Harness, dpop: Dpop) -> AccessTokenLayer {
    h.issuer
        .access_token_layer()
        .dpop(dpop)
        .dpop_public_url(API)
        .build()
        .unwrap()
}

/// A proof for `/token`, `iat` on the harness's clock.
fn proof(h: &Harness, key: &ProofKey) -> String {
    let mut c = proof_claims("POST", TOKEN_URL, None);
    c["iat"] = tollgate::time::Clock::now(&h.clock)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .into();
    key.sign(&c)
}

async fn post(endpoint: &TokenEndpoint, body: &str, proofs: &[&str]) -> Reply {
    let mut req =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for p in proofs {
        req = req.header("dpop", *p);
    }
    call(
        endpoint.clone(),
        req.body(Full::new(Bytes::from(body.to_owned()))).unwrap(),
    )
    .await
}

const LOGIN: &str = "grant_type=password&client_id=spa&username=alice&password=wonderland";

fn refresh_body(token: &str) -> String {
    format!("grant_type=refresh_token&client_id=spa&refresh_token={token}")
}

fn cnf_jkt(access_token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["cnf"]["jkt"].as_str().map(str::to_owned)
}

/// Calls a gated `/orders` with the access token as DPoP, a fresh proof
/// by `key`.
async fn api_call(gate: &AccessTokenLayer, key: &ProofKey, at: &str) -> StatusCode {
    let req = Request::get("/orders")
        .header(header::AUTHORIZATION, format!("DPoP {at}"))
        .header("dpop", key.proof("GET", &format!("{API}/orders"), Some(at)))
        .body(String::new())
        .unwrap();
    gate.clone()
        .layer(service_fn(crate::common::echo_sub))
        .oneshot(req)
        .await
        .unwrap()
        .status()
}

per_backend! {
    /// The public client's session is bound to its key: the access token
    /// carries `cnf.jkt`, a refresh needs a proof by the key, a thief with
    /// the refresh token alone gets `invalid_grant` and spends nothing,
    /// and reuse detection still kills the family.
    #[tokio::test]
    async fn a_public_clients_session_is_bound_to_its_key(b) {
        let h = harness(b, RefreshPolicy { grace: Duration::ZERO, bound_grace: Duration::ZERO, ..RefreshPolicy::default() }).await;
        let dpop = Dpop::builder().build().unwrap();
        let endpoint = endpoint(&h, dpop.clone());
        let gate = gate(&h, dpop);
        let key = ProofKey::es256();

        let login = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
        assert_eq!(login.status, StatusCode::OK, "{}: {}", h.backend, login.raw);
        assert_eq!(login.json["token_type"], "DPoP");
        assert_eq!(cnf_jkt(&login.access_token()), Some(key.thumbprint()));
        assert_eq!(api_call(&gate, &key, &login.access_token()).await, StatusCode::OK);
        let refresh = login.refresh_token();

        // The thief: no proof, or a proof by another key.
        let thief = ProofKey::es256();
        for proofs in [vec![], vec![proof(&h, &thief)]] {
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let r = post(&endpoint, &refresh_body(&refresh), &proofs).await;
            assert_eq!(r.error(), "invalid_grant", "{}: {}", h.backend, r.raw);
        }
        // The owner's refresh still works: nothing was spent.
        let rotated = post(&endpoint, &refresh_body(&refresh), &[&proof(&h, &key)]).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}: {}", h.backend, rotated.raw);
        assert_eq!(rotated.json["token_type"], "DPoP");
        assert_eq!(cnf_jkt(&rotated.access_token()), Some(key.thumbprint()));
        // Rotation is still exactly-once, and a replay of the spent token
        // (even by the key's owner) kills the family.
        let replay = post(&endpoint, &refresh_body(&refresh), &[&proof(&h, &key)]).await;
        assert_eq!(replay.error(), "invalid_grant");
        let r = post(&endpoint, &refresh_body(&rotated.refresh_token()), &[&proof(&h, &key)]).await;
        assert_eq!(r.error(), "invalid_grant", "{}: the family survived reuse", h.backend);
        assert_eq!(api_call(&gate, &key, &rotated.access_token()).await, StatusCode::UNAUTHORIZED);
    }
}

per_backend! {
    /// A stale generation of a DPoP-bound public session, presented with a
    /// proof by the session's key after the short window, gets the
    /// session's current refresh token (nothing forks); the same token
    /// without the key is reuse and ends the session.
    #[tokio::test]
    async fn a_stale_generation_with_the_sessions_key_is_answered_with_the_head(b) {
        let h = harness(b, RefreshPolicy::default()).await;
        let endpoint = endpoint(&h, Dpop::builder().build().unwrap());
        let key = ProofKey::es256();
        let login = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
        assert_eq!(login.status, StatusCode::OK, "{}: {}", h.backend, login.raw);
        let stale = login.refresh_token();
        let mut head = stale.clone();
        for _ in 0..3 {
            let r = post(&endpoint, &refresh_body(&head), &[&proof(&h, &key)]).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            head = r.refresh_token();
        }
        h.clock.advance(Duration::from_secs(8));
        let late = post(&endpoint, &refresh_body(&stale), &[&proof(&h, &key)]).await;
        assert_eq!(late.status, StatusCode::OK, "{}: {}", h.backend, late.raw);
        assert_eq!(late.refresh_token(), head, "{}: the head, not a new token", h.backend);
        assert_eq!(cnf_jkt(&late.access_token()), Some(key.thumbprint()));

        // A thief holding the same stale token but not the key.
        let thief = ProofKey::es256();
        let r = post(&endpoint, &refresh_body(&stale), &[&proof(&h, &thief)]).await;
        assert_eq!(r.error(), "invalid_grant", "{}: {}", h.backend, r.raw);
        let r = post(&endpoint, &refresh_body(&head), &[&proof(&h, &key)]).await;
        assert_eq!(r.error(), "invalid_grant", "{}: reuse must end the session", h.backend);
    }
}

per_backend! {
    /// 32 concurrent refreshes of one bound token, each with its own valid
    /// proof: one rotation, every racer within the grace gets the same
    /// child, the family never forks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_bound_refreshes_never_fork(b) {
        let policy = RefreshPolicy { grace: Duration::from_secs(60), ..RefreshPolicy::default() };
        let h = Arc::new(harness(b, policy).await);
        let endpoint = endpoint(&h, Dpop::builder().build().unwrap());
        let key = Arc::new(ProofKey::ed25519());
        let login = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.raw);
        let token = login.refresh_token();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (h, endpoint, key, token) =
                    (Arc::clone(&h), endpoint.clone(), Arc::clone(&key), token.clone());
                tokio::spawn(async move {
                    let p = proof(&h, &key);
                    post(&endpoint, &refresh_body(&token), &[&p]).await
                })
            })
            .collect();
        let mut children = HashSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            assert_eq!(cnf_jkt(&r.access_token()), Some(key.thumbprint()));
            children.insert(r.refresh_token());
        }
        assert_eq!(children.len(), 1, "{}: the family forked", h.backend);
    }
}

/// A confidential client's refresh tokens stay unbound (RFC 9449 §5):
/// each access token is bound to the key of the request that got it.
#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = endpoint(&h, Dpop::builder().build().unwrap());
    let key = ProofKey::es256();
    let login = post(
        &endpoint,
        &format!(
            "grant_type=password&username=alice&password=wonderland&{}",
            h.web_auth()
        ),
        &[&proof(&h, &key)],
    )
    .await;
    assert_eq!(login.json["token_type"], "DPoP");
    let r = post(
        &endpoint,
        &format!(
            "grant_type=refresh_token&refresh_token={}&{}",
            login.refresh_token(),
            h.web_auth()
        ),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(cnf_jkt(&r.access_token()), None);
}

/// A client registered with `dpop_bound_access_tokens` gets nothing
/// without a proof; proof failures are `invalid_dpop_proof` naming the
/// check, never echoing the proof; nothing is issued.
#[tokio::test]
async fn proofs_are_checked_at_the_token_endpoint() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let mut strict = NewClient::public("strict", "read");
    strict.allow_password = true;
    strict.dpop_bound_access_tokens = true;
    store::clients::register(&h.db, strict, std::time::SystemTime::now())
        .await
        .unwrap();
    let endpoint = endpoint(&h, Dpop::builder().build().unwrap());
    let key = ProofKey::es256();
    let strict_login = "grant_type=password&client_id=strict&username=alice&password=wonderland";
    let r = post(&endpoint, strict_login, &[]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
        "{}",
        r.raw
    );
    let r = post(&endpoint, strict_login, &[&proof(&h, &key)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

    let good = proof(&h, &key);
    let mut other_htu = proof_claims("POST", "https://evil.example/token", None);
    other_htu["iat"] = jsonwebtoken::get_current_timestamp().into();
    for (why, proofs, named) in [
        ("another htu", vec![key.sign(&other_htu)], "htu"),
        ("GET as htm", vec![key.proof("GET", TOKEN_URL, None)], "htm"),
        (
            "two proofs",
            vec![good.clone(), good.clone()],
            "more than one",
        ),
        ("garbage", vec!["x.y.z".to_owned()], "malformed"),
    ] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = post(&endpoint, LOGIN, &proofs).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            "{why}"
        );
        let description = r.json["error_description"].as_str().unwrap();
        assert!(description.contains(named), "{why}: {description}");
        assert!(!r.raw.contains(proofs[0]), "{why}: the proof is echoed");
    }
    // A proof works once.
    assert_eq!(
        post(&endpoint, LOGIN, &[&good]).await.status,
        StatusCode::OK
    );
    let again = post(&endpoint, LOGIN, &[&good]).await;
    assert_eq!(again.error(), "invalid_dpop_proof");
    assert!(
        again.json["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );
}

#[tokio::test]
async fn a_nonce_is_required_when_configured() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let nonces = Nonces::new(&[3; 32], Duration::from_secs(60)).unwrap();
    let endpoint = TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|user: String, _password: String| async move { Ok(Some(user)) })
        .dpop(Dpop::builder().nonces(nonces).build().unwrap())
        .require_dpop_nonce()
        .build()
        .unwrap();
    let key = ProofKey::es256();
    let r = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "use_dpop_nonce"),
        "{}",
        r.raw
    );
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let mut c = proof_claims("POST", TOKEN_URL, None);
    c["nonce"] = nonce.into();
    let r = post(&endpoint, LOGIN, &[&key.sign(&c)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(
        r.headers.contains_key("dpop-nonce"),
        "a fresh nonce on success"
    );

    // Required of one client only: the others need none.
    let endpoint = TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|user: String, _password: String| async move { Ok(Some(user)) })
        .dpop(
            Dpop::builder()
                .nonces(Nonces::new(&[3; 32], Duration::from_secs(60)).unwrap())
                .build()
                .unwrap(),
        )
        .require_dpop_nonce_for("spa")
        .build()
        .unwrap();
    let r = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
    assert_eq!(r.error(), "use_dpop_nonce", "{}", r.raw);
    let web = format!(
        "grant_type=password&username=alice&password=x&{}",
        h.web_auth()
    );
    let r = post(&endpoint, &web, &[&proof(&h, &key)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.json["token_type"], "DPoP");
    assert!(
        r.headers.contains_key("dpop-nonce"),
        "a DPoP client gets one"
    );
    // A request without a proof does not use DPoP: no nonce computed.
    let r = post(&endpoint, &web, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(!r.headers.contains_key("dpop-nonce"));
}

/// RFC 8414 metadata advertises the proof algorithms (checked by authlib
/// in `metadata.rs` for the rest of the document).
#[tokio::test]
async fn the_metadata_lists_the_dpop_algorithms() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = endpoint(&h, Dpop::builder().build().unwrap());
    assert_eq!(
        metadata(&endpoint).await["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA", "Ed25519", "PS256", "RS256"])
    );
    // Without DPoP the member is absent.
    let doc = metadata(&h.endpoint).await;
    assert!(doc.get("dpop_signing_alg_values_supported").is_none());
}

async fn metadata(endpoint: &TokenEndpoint) -> Value {
    let res = endpoint
        .metadata()
        .oneshot(Request::get("/").body(String::new()).unwrap())
        .await
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// An independent client library that speaks DPoP (Python
/// requests-oauth2client, `scripts/dpop-client`) against the quickstart:
/// discovery, a bound sign-in, API calls with fresh proofs, the token
/// refused as a bearer token, introspected as DPoP-bound with its key, a thief's refresh refused, the owner's
/// refresh bound to the same key. Skipped without the library, except
/// under CI.
#[cfg(feature = "axum")]
#[test]
fn a_real_dpop_client_against_the_quickstart() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import requests_oauth2client"])
        .output()
        .unwrap();
    if !probe.status.success() {
        assert!(
            std::env::var_os("CI").is_none(),
            "requests-oauth2client is required under CI"
        );
        eprintln!("skipped: pip install requests-oauth2client");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tollgate-dpop-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = crate::common::quickstart::Server::start(&dir, &[("TOLLGATE_RATE_LIMITS", "off")]);
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dpop-client"))
        .arg(&server.base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let jkt = seen["jkt"].as_str().unwrap();
    assert_eq!(seen["token_type"], "DPoP", "{seen}");
    assert_eq!(seen["me_status"], 200, "{seen}");
    assert_eq!(seen["me_cnf"], jkt, "{seen}");
    assert_eq!(seen["me_again_status"], 200, "{seen}");
    assert_eq!(seen["as_bearer_status"], 401, "{seen}");
    assert_eq!(seen["introspected_active"], true, "{seen}");
    assert_eq!(seen["introspected_type"], "DPoP", "{seen}");
    assert_eq!(seen["introspected_jkt"], jkt, "{seen}");
    assert_eq!(seen["thief"], "invalid_grant", "{seen}");
    assert_eq!(seen["refreshed_type"], "DPoP", "{seen}");
    assert_eq!(seen["refreshed_jkt"], jkt, "{seen}");
    assert_eq!(seen["refreshed_me_status"], 200, "{seen}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances: each its own gate and in-memory replay cache, one
/// database. A proof accepted by one is refused by the other; the same
/// proof sent to both at once is accepted exactly once.
mod shared_replay {
    use super::*;
    use tollgate::store::dpop_replay::StoreReplay;

    fn instance(h: &Harness) -> (AccessTokenLayer, TokenEndpoint) {
        let dpop = Dpop::builder()
            .shared_replay(StoreReplay::new(h.db.clone()))
            .build()
            .unwrap();
        (gate(h, dpop.clone()), endpoint(h, dpop))
    }

    per_backend! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_proof_is_accepted_once_across_instances(b) {
            let h = harness(b, RefreshPolicy::default()).await;
            let (gate_a, endpoint_a) = instance(&h);
            let (gate_b, endpoint_b) = instance(&h);
            let key = ProofKey::es256();
            let login = post(&endpoint_a, LOGIN, &[&proof(&h, &key)]).await;
            assert_eq!(login.status, StatusCode::OK, "{}: {}", h.backend, login.raw);
            let at = login.access_token();

            let request = |p: &str| {
                Request::get("/orders")
                    .header(header::AUTHORIZATION, format!("DPoP {at}"))
                    .header("dpop", p)
                    .body(String::new())
                    .unwrap()
            };
            let send = |gate: &AccessTokenLayer, req| {
                gate.clone()
                    .layer(service_fn(crate::common::echo_sub))
                    .oneshot(req)
            };
            let p = key.proof("GET", &format!("{API}/orders"), Some(&at));
            assert_eq!(send(&gate_a, request(&p)).await.unwrap().status(), StatusCode::OK);
            let replay = send(&gate_b, request(&p)).await.unwrap();
            assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "{}", h.backend);

            // Racing: 16 copies of one fresh proof across both instances.
            let p = key.proof("GET", &format!("{API}/orders"), Some(&at));
            let racers: Vec<_> = (0..16)
                .map(|i| {
                    let gate = if i % 2 == 0 { gate_a.clone() } else { gate_b.clone() };
                    let req = request(&p);
                    tokio::spawn(async move {
                        gate.layer(service_fn(crate::common::echo_sub))
                            .oneshot(req)
                            .await
                            .unwrap()
                            .status()
                    })
                })
                .collect();
            let mut accepted = 0;
            for r in racers {
                if r.await.unwrap() == StatusCode::OK {
                    accepted += 1;
                }
            }
            assert_eq!(accepted, 1, "{}", h.backend);

            // The token endpoints share it too.
            let p = proof(&h, &key);
            let body = refresh_body(&login.refresh_token());
            assert_eq!(post(&endpoint_a, &body, &[&p]).await.status, StatusCode::OK);
            let again = post(&endpoint_b, LOGIN, &[&p]).await;
            assert_eq!(again.error(), "invalid_dpop_proof", "{}: {}", h.backend, again.raw);
        }
    }

    /// The store is the truth: when it fails, DPoP requests are refused
    /// (503), never let through unchecked. The janitor deletes expired
    /// rows.
    #[tokio::test]
    async fn a_failing_store_fails_closed_and_the_janitor_purges() {
        use sea_orm::ConnectionTrait;
        let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
        let (gate, endpoint) = instance(&h);
        let key = ProofKey::ed25519();
        let login = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
        let at = login.access_token();
        assert_eq!(api_call(&gate, &key, &at).await, StatusCode::OK);

        let janitor = tollgate::store::cleanup::Janitor::builder(h.db.clone()).build();
        let report = janitor
            .run_once(tollgate::time::Clock::now(&h.clock) + Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(report.dpop_proofs, 2, "the login's proof and the call's");

        h.db.execute_unprepared("DROP TABLE tollgate_dpop_replay")
            .await
            .unwrap();
        let req = Request::get("/orders")
            .header(header::AUTHORIZATION, format!("DPoP {at}"))
            .header(
                "dpop",
                key.proof("GET", &format!("{API}/orders"), Some(&at)),
            )
            .body(String::new())
            .unwrap();
        let res = gate
            .clone()
            .layer(service_fn(crate::common::echo_sub))
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let r = post(&endpoint, LOGIN, &[&proof(&h, &key)]).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    }
}

/// An application's own login route checks the proof with
/// `Dpop::check_request` and starts a session bound to the key with
/// `Issuer::issue_with`: refreshes then need the key, the gate the proof.
#[tokio::test]
async fn an_apps_own_login_handler_binds_the_session() {
    use tollgate::{
        dpop::DpopError,
        issuer::{RequestContext, Requested},
    };
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let dpop = Dpop::builder().build().unwrap();
    let key = ProofKey::ed25519();
    let login_url = "https://auth.example/login";
    let mut headers = http::HeaderMap::new();
    headers.insert("dpop", key.proof("POST", login_url, None).parse().unwrap());
    let now = tollgate::time::Clock::now(&h.clock);
    let proved = dpop
        .check_request(&headers, "POST", login_url, now)
        .await
        .unwrap();
    assert_eq!(proved.thumbprint, key.thumbprint());
    assert_eq!(
        dpop.check_request(&headers, "POST", login_url, now)
            .await
            .unwrap_err(),
        DpopError::Replay
    );
    assert_eq!(
        dpop.check_request(&headers, "POST", "https://auth.example/other", now)
            .await
            .unwrap_err(),
        DpopError::Url
    );

    let tokens = h
        .issuer
        .issue_with(
            "alice",
            "spa",
            &Requested {
                scope: None,
                resources: &[],
                dpop_jkt: Some(&proved.thumbprint),
            },
            &RequestContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(cnf_jkt(&tokens.access_token), Some(key.thumbprint()));
    assert_eq!(
        api_call(&gate(&h, dpop.clone()), &key, &tokens.access_token).await,
        StatusCode::OK
    );
    let endpoint = endpoint(&h, dpop);
    let refresh = refresh_body(tokens.refresh_token.as_deref().unwrap());
    assert_eq!(
        post(&endpoint, &refresh, &[]).await.error(),
        "invalid_grant"
    );
    assert_eq!(
        post(&endpoint, &refresh, &[&proof(&h, &key)]).await.status,
        StatusCode::OK
    );
}

/// A client that must use DPoP gets nothing from an endpoint that cannot
/// check proofs; nonces required without nonces are refused at build.
#[tokio::test]
async fn a_client_that_requires_dpop_is_refused_where_dpop_is_off() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let mut strict = NewClient::public("strict", "read");
    strict.allow_password = true;
    strict.dpop_bound_access_tokens = true;
    store::clients::register(&h.db, strict, std::time::SystemTime::now())
        .await
        .unwrap();
    let key = ProofKey::es256();
    let r = post(
        &h.endpoint,
        "grant_type=password&client_id=strict&username=alice&password=wonderland",
        &[&proof(&h, &key)],
    )
    .await;
    assert_eq!(r.error(), "invalid_dpop_proof", "{}", r.raw);

    for builder in [
        TokenEndpoint::builder(h.issuer.clone())
            .dpop(Dpop::builder().build().unwrap())
            .require_dpop_nonce(),
        TokenEndpoint::builder(h.issuer.clone())
            .dpop(Dpop::builder().build().unwrap())
            .require_dpop_nonce_for("spa"),
    ] {
        assert_eq!(
            builder.build().unwrap_err(),
            tollgate::token_endpoint::EndpointConfigError::DpopNoNonces
        );
    }
}
