//! Security events through the issuer and the token endpoint: each one
//! when its thing happens, in order, with the new-device signal computed
//! from the store — and a sink that hangs holds up no request.

use std::{
    net::IpAddr,
    sync::{Mutex, mpsc},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use tollgate::{
    Issuer, RefreshPolicy, RefreshSecret, TokenEndpoint,
    events::SecurityEvent,
    issuer::RequestContext,
    refresh::Outcome,
    revocation::RevokedReason,
    store::{self, clients::NewClient},
};

use crate::common::{
    AUD, ISS, hs256,
    store::{Backend, call},
};

async fn db() -> sea_orm::DatabaseConnection {
    let db = Backend::sqlite_memory().await.db;
    let mut web = NewClient::confidential("web", "read");
    web.allow_password = true;
    store::clients::register_with_secret(&db, web, "web-secret", std::time::SystemTime::now())
        .await
        .unwrap();
    db
}

fn issuer(db: sea_orm::DatabaseConnection) -> tollgate::issuer::IssuerBuilder {
    Issuer::builder()
        .db(db)
        .keys(hs256())
        .issuer(ISS)
        .audience(AUD)
        .refresh_secret(RefreshSecret::new(&[5; 32]).unwrap())
        .policy(RefreshPolicy {
            grace: Duration::ZERO,
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        })
}

fn meta(ip: &str, ua: &str) -> RequestContext {
    RequestContext {
        ip: Some(ip.parse::<IpAddr>().unwrap()),
        user_agent: Some(ua.into()),
        ..RequestContext::default()
    }
}

fn post(body: &str) -> Request<Full<Bytes>> {
    Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// The next event, or a failure after a while.
fn next(rx: &mpsc::Receiver<SecurityEvent>) -> SecurityEvent {
    rx.recv_timeout(Duration::from_secs(5)).expect("an event")
}

#[tokio::test]
async fn each_event_arrives_when_it_happens_in_order() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let issuer = issuer(db().await)
        .events(move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap())
        .build()
        .unwrap();
    let endpoint = TokenEndpoint::builder(issuer.clone()).build().unwrap();

    // New device, the same device again, another browser.
    let phone = meta("203.0.113.7", "Phone/1");
    let first = issuer.issue("alice", "web", None, &phone).await.unwrap();
    issuer.issue("alice", "web", None, &phone).await.unwrap();
    issuer
        .issue("alice", "web", None, &meta("203.0.113.7", "Laptop/2"))
        .await
        .unwrap();
    let mut devices = Vec::new();
    let mut sids = Vec::new();
    for _ in 0..3 {
        match next(&rx) {
            SecurityEvent::SessionStarted {
                sid,
                subject,
                client_id,
                user_agent,
                new_device,
                ..
            } => {
                assert_eq!((subject.as_str(), client_id.as_str()), ("alice", "web"));
                devices.push((user_agent.unwrap(), new_device));
                sids.push(sid);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        devices,
        [
            ("Phone/1".to_owned(), true),
            ("Phone/1".to_owned(), false),
            ("Laptop/2".to_owned(), true)
        ]
    );

    // A rotation, then the old token replayed: the session dies.
    let refresh = |token: &str| {
        post(&format!(
            "grant_type=refresh_token&refresh_token={token}&client_id=web&client_secret=web-secret"
        ))
    };
    let old = first.refresh_token.clone().unwrap();
    let r = call(endpoint.clone(), refresh(&old)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(matches!(
        next(&rx),
        SecurityEvent::RefreshRotated { sid, subject, .. } if sid == sids[0] && subject == "alice"
    ));
    let r = call(endpoint.clone(), refresh(&old)).await;
    assert_eq!(r.error(), "invalid_grant");
    assert!(matches!(
        next(&rx),
        SecurityEvent::ReplayDetected { sid, subject, client_id, .. }
            if sid == sids[0] && subject == "alice" && client_id == "web"
    ));

    // Logout of one session, then everywhere.
    assert!(
        issuer
            .sessions()
            .revoke_session(&sids[1], RevokedReason::Admin)
            .await
            .unwrap()
    );
    assert_eq!(
        next(&rx),
        SecurityEvent::SessionRevoked {
            sid: sids[1].clone(),
            reason: RevokedReason::Admin
        }
    );
    issuer.sessions().revoke_all("alice").await.unwrap();
    assert_eq!(
        next(&rx),
        SecurityEvent::LoggedOutEverywhere {
            subject: "alice".into(),
            sessions: 1
        }
    );

    // A client with the wrong secret.
    let r = call(
        endpoint,
        post("grant_type=client_credentials&client_id=web&client_secret=guess"),
    )
    .await;
    assert_eq!(r.error(), "invalid_client");
    let event = next(&rx);
    assert_eq!(
        event,
        SecurityEvent::ClientAuthenticationFailed {
            client_id: Some("web".into()),
            ip: None
        }
    );
    // No event ever carries a secret.
    assert!(!format!("{event:?}").contains("guess"));
    assert_eq!(issuer.events().dropped(), 0);
}

/// A sink that never returns: logins and refreshes go on, at their usual
/// pace, and what the small queue cannot hold is dropped and counted.
#[tokio::test]
async fn a_stuck_sink_holds_up_no_request() {
    // The sink blocks until `release` is dropped.
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(held);
    let issuer = issuer(db().await)
        .events_with_capacity(
            move |_: &SecurityEvent| {
                let _ = held.lock().unwrap().recv();
            },
            2,
        )
        .build()
        .unwrap();
    for n in 0..20 {
        let t = issuer
            .issue("bob", "web", None, &meta("192.0.2.1", &format!("UA/{n}")))
            .await
            .unwrap();
        assert!(t.refresh_token.is_some());
    }
    // Two wait in the queue and one is with the sink (or about to be
    // taken by its thread): the rest were dropped.
    let dropped = issuer.events().dropped();
    assert!((17..=18).contains(&dropped), "dropped {dropped}");
    drop(release);
}

/// The revocation sync reports going stale once per outage, and recovering.
#[tokio::test]
async fn the_sync_reports_staleness_once_and_its_recovery() {
    use sea_orm::ConnectionTrait;
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let db = db().await;
    let issuer = issuer(db.clone())
        .events(move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap())
        .build()
        .unwrap();
    let sync = tollgate::RevocationSync::builder(db.clone(), tollgate::RevocationCache::default())
        .events(issuer.events().clone())
        .build();
    sync.sync().await.unwrap();
    // The store breaks: the revocation table is gone.
    db.execute_unprepared("ALTER TABLE tollgate_revocation RENAME TO tollgate_revocation_away")
        .await
        .unwrap();
    assert!(sync.sync().await.is_err());
    assert!(sync.sync().await.is_err());
    db.execute_unprepared("ALTER TABLE tollgate_revocation_away RENAME TO tollgate_revocation")
        .await
        .unwrap();
    sync.sync().await.unwrap();
    sync.sync().await.unwrap();
    assert!(matches!(
        next(&rx),
        SecurityEvent::RevocationSyncStale { .. }
    ));
    assert!(matches!(
        next(&rx),
        SecurityEvent::RevocationSyncRecovered { .. }
    ));
    // Two failures, one report; two successes after, one recovery.
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

/// A forged browser request is reported with its client and reason, and
/// the cookie's value is not in the event.
#[tokio::test]
async fn a_forged_browser_request_is_reported() {
    let db = db().await;
    store::clients::register(
        &db,
        NewClient::public("spa", "read"),
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let issuer = issuer(db)
        .events(move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap())
        .build()
        .unwrap();
    let endpoint = TokenEndpoint::builder(issuer)
        .browser_client(
            "spa",
            tollgate::token_endpoint::BrowserClient::new(["https://app.example"]),
        )
        .build()
        .unwrap();
    let mut req = post("grant_type=refresh_token&client_id=spa");
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    req.headers_mut().insert(
        header::COOKIE,
        "__Host-tollgate_refresh=cookie-value".parse().unwrap(),
    );
    let r = call(endpoint, req).await;
    assert_eq!(r.error(), "invalid_request");
    let event = next(&rx);
    assert_eq!(
        event,
        SecurityEvent::CsrfRefused {
            client_id: "spa".into(),
            reason: "foreign_origin",
            ip: None,
        }
    );
    assert!(!format!("{event:?}").contains("cookie-value"));
}

#[tokio::test]
async fn a_spent_token_answered_within_its_window_is_reported_with_how_far_behind() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    // The default windows: web authenticates, so its stale tokens are
    // answered for 30 minutes.
    let issuer = issuer(db().await)
        .policy(RefreshPolicy::default())
        .events(move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap())
        .build()
        .unwrap();
    let endpoint = TokenEndpoint::builder(issuer.clone()).build().unwrap();
    let refresh = |token: &str| {
        post(&format!(
            "grant_type=refresh_token&refresh_token={token}&client_id=web&client_secret=web-secret"
        ))
    };
    let login = issuer
        .issue("alice", "web", None, &meta("203.0.113.7", "Cli/1"))
        .await
        .unwrap();
    let stale = login.refresh_token.unwrap();
    let mut head = stale.clone();
    for _ in 0..2 {
        let r = call(endpoint.clone(), refresh(&head)).await;
        head = r.json["refresh_token"].as_str().unwrap().to_owned();
    }
    let r = call(endpoint.clone(), refresh(&stale)).await;
    assert_eq!(r.json["refresh_token"].as_str(), Some(head.as_str()));
    // Events arrive in order: the rotations, then the answer.
    let mut before = Vec::new();
    let answered = loop {
        match next(&rx) {
            e @ SecurityEvent::SpentTokenAnswered { .. } => break e,
            other => before.push(other),
        }
    };
    let SecurityEvent::SpentTokenAnswered {
        subject,
        behind,
        outcome,
        ..
    } = &answered
    else {
        unreachable!()
    };
    assert_eq!(
        (subject.as_str(), *behind, *outcome),
        ("alice", 2, Outcome::StaleGeneration)
    );
    assert_eq!(answered.refresh_outcome(), Some(Outcome::StaleGeneration));
    assert!(
        before
            .iter()
            .all(|e| e.refresh_outcome() != Some(Outcome::ReuseDetected))
    );
    assert!(
        before.iter().all(|e| matches!(
            e,
            SecurityEvent::SessionStarted { .. } | SecurityEvent::RefreshRotated { .. }
        )),
        "{before:?}"
    );
}

/// A client that registers itself is reported, with where it came from;
/// a registration over the per-IP limit is reported as rate-limited.
#[tokio::test]
async fn self_registered_clients_and_their_limit_are_reported() {
    use tollgate::{
        binding::PeerAddr,
        token_endpoint::{Authorization, DynamicRegistration, Limit},
    };
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let issuer = issuer(db().await)
        .events(move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap())
        .build()
        .unwrap();
    let endpoint = TokenEndpoint::builder(issuer)
        .authorization(Authorization::new("/login"))
        .dynamic_registration(
            DynamicRegistration::open("read").per_ip(Limit::new(1, Duration::from_secs(3600))),
        );
    #[cfg(feature = "client-metadata")]
    let docs = crate::common::scripted::Server::start(true).await;
    #[cfg(feature = "client-metadata")]
    let endpoint = {
        use tollgate::{client_metadata::Resolver, token_endpoint::MetadataDocuments};
        let url = docs.url("/client.json");
        docs.route(
            "/client.json",
            crate::common::scripted::json(
                serde_json::json!({"client_id": url, "redirect_uris": ["https://app.example/cb"]})
                    .to_string(),
            ),
        );
        let resolver = Resolver::builder()
            .root_certificates(crate::common::scripted::CA)
            .allow_special_use_addresses_for_tests()
            .build()
            .unwrap();
        endpoint.metadata_documents(MetadataDocuments::new(resolver, "read"))
    };
    let endpoint = endpoint.build().unwrap();
    let ip = Some("198.51.100.4".parse::<IpAddr>().unwrap());
    // A document's client, recorded at its first authorization request
    // only.
    #[cfg(feature = "client-metadata")]
    {
        let url = docs.url("/client.json");
        for _ in 0..2 {
            let mut req = Request::get(format!(
                "/authorize?client_id={url}&redirect_uri=https://app.example/cb&response_type=code\
                 &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            ))
            .body(Full::new(Bytes::new()))
            .unwrap();
            req.extensions_mut()
                .insert(PeerAddr("198.51.100.4:5000".parse().unwrap()));
            let r = call(endpoint.authorization_endpoint().unwrap(), req).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
        }
        assert_eq!(
            next(&rx),
            SecurityEvent::ClientRegistered {
                client_id: url,
                kind: "metadata_document",
                ip
            }
        );
    }
    let register = || {
        let mut req = Request::post("/register")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"redirect_uris":["https://app.example/cb"]}"#,
            )))
            .unwrap();
        req.extensions_mut()
            .insert(PeerAddr("198.51.100.4:5000".parse().unwrap()));
        req
    };
    let r = call(endpoint.registration_endpoint().unwrap(), register()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    match next(&rx) {
        SecurityEvent::ClientRegistered {
            client_id,
            kind,
            ip: from,
        } => {
            assert_eq!(client_id, r.json["client_id"].as_str().unwrap());
            assert_eq!((kind, from), ("dynamic", ip));
        }
        other => panic!("{other:?}"),
    }
    let r = call(endpoint.registration_endpoint().unwrap(), register()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        next(&rx),
        SecurityEvent::RateLimited {
            limit: "registrations_per_ip",
            ip
        }
    );
}
