//! Domain metrics: each counter moves exactly when its event happens, with
//! low-cardinality labels only. A debugging recorder is installed for this
//! thread alone (the tests are current-thread, so every future runs here).

use std::{collections::HashMap, time::Duration};

use http::StatusCode;
use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};
use tollgate::RefreshPolicy;

use crate::common::{
    bearer,
    store::{Backend, harness},
};

/// Counter totals: a snapshot of the debugging recorder drains what it
/// reports, so every snapshot is added up here.
struct Counts {
    snapshotter: Snapshotter,
    totals: HashMap<(String, Vec<(String, String)>), u64>,
    /// Every label value ever seen.
    label_values: Vec<String>,
}

impl Counts {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            totals: HashMap::new(),
            label_values: Vec::new(),
        }
    }

    /// The counter `name` with exactly these labels (0 when never touched).
    fn get(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            self.label_values
                .extend(key.key().labels().map(|l| l.value().to_owned()));
            if let (MetricKind::Counter, DebugValue::Counter(n)) = (key.kind(), value) {
                *self.totals.entry(id(&key)).or_default() += n;
            }
        }
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        self.totals
            .get(&(name.to_owned(), want))
            .copied()
            .unwrap_or(0)
    }
}

fn id(k: &CompositeKey) -> (String, Vec<(String, String)>) {
    let mut labels: Vec<(String, String)> = k
        .key()
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (k.key().name().to_owned(), labels)
}

#[tokio::test]
async fn counters_move_exactly_when_their_event_happens() {
    let recorder = DebuggingRecorder::new();
    let mut c = Counts::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);

    let h = harness(
        Backend::sqlite_memory().await,
        RefreshPolicy {
            grace: Duration::ZERO,
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        },
    )
    .await;
    let login = h.login().await;
    let ok_password = [("grant", "password"), ("outcome", "ok")];
    assert_eq!(c.get("tollgate_token_requests_total", &ok_password), 1);

    // One rotation.
    let r = h.refresh(&login.refresh_token()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.get(OUTCOMES, &[("outcome", "rotated")]), 1);
    assert_eq!(
        c.get(
            "tollgate_token_requests_total",
            &[("grant", "refresh_token"), ("outcome", "ok")]
        ),
        1
    );

    // One replay: one replay counted, one session revoked for it, one
    // invalid_grant.
    let replay = h.refresh(&login.refresh_token()).await;
    assert_eq!(replay.error(), "invalid_grant");
    assert_eq!(c.get(OUTCOMES, &[("outcome", "reuse_detected")]), 1);
    assert_eq!(
        c.get(
            "tollgate_sessions_revoked_total",
            &[("reason", "reuse_detected")]
        ),
        1
    );
    assert_eq!(
        c.get(
            "tollgate_token_requests_total",
            &[("grant", "refresh_token"), ("outcome", "invalid_grant")]
        ),
        1
    );

    // An unsupported grant is labelled `unknown`, whatever it was called.
    let r = h
        .post(&format!(
            "grant_type=urn%3Aevil%3A{}&{}",
            "x".repeat(40),
            h.web_auth()
        ))
        .await;
    assert_eq!(r.error(), "unsupported_grant_type");
    assert_eq!(
        c.get(
            "tollgate_token_requests_total",
            &[("grant", "unknown"), ("outcome", "unsupported_grant_type")]
        ),
        1
    );

    // The gate: accepted, missing, invalid; revoked after logout.
    use tower::{Layer, ServiceExt, service_fn};
    let svc = h.gate.clone().layer(service_fn(crate::common::echo_sub));
    let fresh = h.login().await;
    let claims = h.gate.verify(&fresh.access_token()).unwrap();
    svc.clone()
        .oneshot(bearer(&fresh.access_token()))
        .await
        .unwrap();
    svc.clone()
        .oneshot(http::Request::new(String::new()))
        .await
        .unwrap();
    svc.clone().oneshot(bearer("not.a.jwt")).await.unwrap();
    h.issuer.sessions().logout(&claims).await.unwrap();
    svc.clone()
        .oneshot(bearer(&fresh.access_token()))
        .await
        .unwrap();
    // A route that needs scope admin, and a token past its expiry.
    let admin = h
        .issuer
        .access_token_layer()
        .require_scope("admin")
        .build()
        .unwrap()
        .layer(service_fn(crate::common::echo_sub));
    let other = h.login().await;
    admin.oneshot(bearer(&other.access_token())).await.unwrap();
    // An optional gate letting a request without credentials through.
    h.issuer
        .access_token_layer()
        .optional()
        .build()
        .unwrap()
        .layer(service_fn(|_: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }))
        .oneshot(http::Request::new(String::new()))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(3600));
    svc.clone()
        .oneshot(bearer(&other.access_token()))
        .await
        .unwrap();
    for outcome in [
        "accepted",
        "missing",
        "invalid",
        "revoked",
        "insufficient_scope",
        "expired",
        "anonymous",
    ] {
        assert_eq!(
            c.get("tollgate_gate_requests_total", &[("outcome", outcome)]),
            1,
            "{outcome}"
        );
    }
    assert_eq!(
        c.get("tollgate_sessions_revoked_total", &[("reason", "logout")]),
        1
    );
    // No label carries a subject, client id, token id or IP.
    c.get("", &[]);
    assert!(!c.label_values.is_empty());
    for value in &c.label_values {
        for secret in [
            "alice",
            "web",
            claims.jti.as_deref().unwrap(),
            &claims.sid.clone().unwrap(),
        ] {
            assert_ne!(value, secret);
        }
    }
}

#[tokio::test]
async fn the_deny_list_size_is_a_gauge_set_by_each_sync() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let a = h.login().await;
    let b = h.login().await;
    for t in [&a, &b] {
        let claims = h.gate.verify(&t.access_token()).unwrap();
        h.issuer
            .sessions()
            .revoke_access_token(&claims, tollgate::RevokedReason::Admin)
            .await
            .unwrap();
    }
    let deny = tollgate::RevocationCache::default();
    let sync = tollgate::RevocationSync::builder(h.db.clone(), deny.clone()).build();
    sync.sync().await.unwrap();
    deny.run_pending_tasks();
    sync.sync().await.unwrap();
    let gauges: HashMap<_, _> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(k, _, _, v)| match v {
            DebugValue::Gauge(g) => Some((id(&k), g.into_inner())),
            _ => None,
        })
        .collect();
    let kind = |k: &str| {
        gauges[&(
            "tollgate_deny_list_entries".to_owned(),
            vec![("kind".to_owned(), k.to_owned())],
        )]
    };
    assert_eq!(
        (kind("token"), kind("session"), kind("subject")),
        (2.0, 0.0, 0.0)
    );
    assert!(gauges[&("tollgate_revocation_sync_lag_seconds".to_owned(), vec![])] < 5.0);
}

/// Each CSRF refusal of a browser client counts once, by reason.
#[tokio::test]
async fn csrf_refusals_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let mut c = Counts::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let endpoint = tollgate::TokenEndpoint::builder(h.issuer.clone())
        .browser_client(
            "spa",
            tollgate::token_endpoint::BrowserClient::new(["https://app.example"]),
        )
        .build()
        .unwrap();
    let body = "grant_type=refresh_token&client_id=spa&refresh_token=x";
    for (headers, reason) in [
        (&[][..], "missing_origin"),
        (&[("origin", "https://evil.example")][..], "foreign_origin"),
        (
            &[("origin", "https://app.example")][..],
            "missing_csrf_header",
        ),
        (&[("origin", "null")][..], "missing_origin"),
    ] {
        let mut req = http::Request::post("/token").header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let r = crate::common::store::call(endpoint.clone(), req).await;
        assert_eq!(r.error(), "invalid_request", "{reason}");
    }
    assert_eq!(
        c.get(
            "tollgate_csrf_refused_total",
            &[("reason", "missing_origin")]
        ),
        2
    );
    assert_eq!(
        c.get(
            "tollgate_csrf_refused_total",
            &[("reason", "foreign_origin")]
        ),
        1
    );
    assert_eq!(
        c.get(
            "tollgate_csrf_refused_total",
            &[("reason", "missing_csrf_header")]
        ),
        1
    );
}

/// Each refused DPoP proof counts once, by the check it failed; the gate
/// counts the request as `invalid_dpop_proof`. No label holds a proof, key
/// or token.
#[tokio::test]
async fn dpop_refusals_are_counted_by_reason() {
    use crate::common::dpop::{ProofKey, ath, claims as proof_claims};
    use tollgate::{
        claims::Confirmation,
        dpop::{Dpop, Nonces},
    };
    use tower::{Layer, ServiceExt, service_fn};

    let recorder = DebuggingRecorder::new();
    let mut c = Counts::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);
    let gate = crate::common::gate_builder(&crate::common::hs256())
        .dpop(
            Dpop::builder()
                .nonces(Nonces::new(&[1; 32], Duration::from_secs(60)).unwrap())
                .build()
                .unwrap(),
        )
        .dpop_public_url("https://api.example")
        .build()
        .unwrap();
    let nonce_gate = crate::common::gate_builder(&crate::common::hs256())
        .dpop(
            Dpop::builder()
                .nonces(Nonces::new(&[1; 32], Duration::from_secs(60)).unwrap())
                .build()
                .unwrap(),
        )
        .dpop_public_url("https://api.example")
        .require_dpop_nonce()
        .build()
        .unwrap();
    let key = ProofKey::es256();
    let mut claims = crate::common::claims("bound-1");
    claims.cnf = Some(Confirmation {
        jkt: key.thumbprint(),
    });
    let at = crate::common::hs256().sign(&claims).unwrap();
    let url = "https://api.example/orders";
    let now = jsonwebtoken::get_current_timestamp();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut p = proof_claims("GET", url, Some(&at));
        edit(&mut p);
        key.sign(&p)
    };
    let send = |gate: &tollgate::AccessTokenLayer, proof: String| {
        let req = http::Request::get("/orders")
            .header(http::header::AUTHORIZATION, format!("DPoP {at}"))
            .header("dpop", proof)
            .body(String::new())
            .unwrap();
        gate.clone()
            .layer(service_fn(crate::common::echo_sub))
            .oneshot(req)
    };
    let replayed = key.proof("GET", url, Some(&at));
    assert_eq!(send(&gate, replayed.clone()).await.unwrap().status(), 200);
    for (proof, reason) in [
        (with(&|p| p["iat"] = (now - 600).into()), "stale_iat"),
        (with(&|p| p["iat"] = (now + 600).into()), "future_iat"),
        (replayed, "replay"),
        (
            key.proof("GET", "https://api.example/other", Some(&at)),
            "htu",
        ),
        (with(&|p| p["ath"] = ath("other").into()), "ath"),
        (
            ProofKey::es256().proof("GET", url, Some(&at)),
            "key_mismatch",
        ),
    ] {
        let res = send(&gate, proof).await.unwrap();
        assert_eq!(res.status(), 401, "{reason}");
        assert_eq!(
            c.get("tollgate_dpop_proofs_refused_total", &[("reason", reason)]),
            1,
            "{reason}"
        );
    }
    let res = send(&nonce_gate, key.proof("GET", url, Some(&at)))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        c.get("tollgate_dpop_proofs_refused_total", &[("reason", "nonce")]),
        1
    );
    assert_eq!(
        c.get(
            "tollgate_gate_requests_total",
            &[("outcome", "invalid_dpop_proof")]
        ),
        7
    );
    c.get("", &[]);
    for value in &c.label_values {
        assert!(*value != key.thumbprint() && *value != at, "{value}");
    }
}

const OUTCOMES: &str = "tollgate_refresh_outcomes_total";

/// Every way a refresh can end is counted under its own `outcome`, and a
/// spent token answered within its window is never counted as reuse.
#[tokio::test]
async fn every_refresh_outcome_is_counted_under_its_label() {
    let recorder = DebuggingRecorder::new();
    let mut c = Counts::new(recorder.snapshotter());
    let _local = metrics::set_default_local_recorder(&recorder);
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let count = |c: &mut Counts, outcome| c.get(OUTCOMES, &[("outcome", outcome)]);
    let stale = h.login().await.refresh_token();
    let child = h.refresh(&stale).await.refresh_token();
    assert_eq!(count(&mut c, "rotated"), 1);
    // A racer gets the child at once …
    assert_eq!(h.refresh(&stale).await.refresh_token(), child);
    assert_eq!(count(&mut c, "race"), 1);
    // … and so does the client that lost the response, retrying later
    // (it authenticates: the long window).
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(h.refresh(&stale).await.refresh_token(), child);
    assert_eq!(count(&mut c, "lost_response"), 1);
    // A process a generation further behind gets the head.
    let head = h.refresh(&child).await.refresh_token();
    assert_eq!(h.refresh(&stale).await.refresh_token(), head);
    assert_eq!(count(&mut c, "stale_generation"), 1);
    assert_eq!(count(&mut c, "rotated"), 2);
    assert_eq!(count(&mut c, "reuse_detected"), 0);
    // Presented by another client than it was issued to.
    let elsewhere = h
        .post(&format!(
            "grant_type=refresh_token&refresh_token={head}&client_id=svc&client_secret={}",
            h.svc_secret
        ))
        .await;
    assert_eq!(elsewhere.error(), "invalid_grant");
    assert_eq!(count(&mut c, "binding_mismatch"), 1);
    // A scope beyond the grant; a token no one issued.
    let wide = h
        .post(&format!(
            "grant_type=refresh_token&refresh_token={head}&client_id=web&client_secret={}&scope=admin",
            h.web_secret
        ))
        .await;
    assert_eq!(wide.error(), "invalid_scope");
    assert_eq!(count(&mut c, "refused"), 1);
    assert_eq!(h.refresh("no-such-token").await.error(), "invalid_grant");
    assert_eq!(count(&mut c, "unknown"), 1);
    // Outside every window: reuse, the session revoked.
    h.clock.advance(Duration::from_secs(3600));
    assert_eq!(h.refresh(&stale).await.error(), "invalid_grant");
    assert_eq!(count(&mut c, "reuse_detected"), 1);
}
