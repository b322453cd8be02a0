//! The /token endpoint through its public API, on SQLite and PostgreSQL.

use std::{net::SocketAddr, time::Duration};

use crate::common::store::{Backend, Harness, harness, harness_with, per_backend};
use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use entity::{refresh_token, token_family};
use http::{Request, StatusCode, header};
use http_body_util::Full;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tollgate::{
    AccessClaims,
    binding::{BindingPolicy, IpBinding, UserAgentBinding},
    issuer::Lifetimes,
    refresh::RefreshPolicy,
    store::{self, clients::NewClient},
};

fn no_grace() -> RefreshPolicy {
    RefreshPolicy {
        grace: Duration::ZERO,
        bound_grace: Duration::ZERO,
        ..RefreshPolicy::default()
    }
}

async fn each(b: Backend, policy: RefreshPolicy, test: impl AsyncFn(Harness)) {
    test(harness(b, policy.clone()).await).await;
}

fn claims(h: &Harness, access_token: &str) -> AccessClaims {
    h.gate
        .verify(access_token)
        .unwrap_or_else(|e| panic!("{}: gate refused our token: {e}", h.backend))
}

async fn family_rows(
    h: &Harness,
    family: &str,
) -> (token_family::Model, Vec<refresh_token::Model>) {
    let f = token_family::Entity::find_by_id(family.to_owned())
        .one(&h.db)
        .await
        .unwrap()
        .unwrap();
    let t = refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.eq(family))
        .order_by_asc(refresh_token::Column::Generation)
        .all(&h.db)
        .await
        .unwrap();
    (f, t)
}

per_backend! {
    #[tokio::test]
    async fn password_grant_issues_rfc6749_tokens_the_gate_accepts(b) {
        each(b, no_grace(), async |h| {
            let r = h.login().await;
            assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
            assert_eq!(r.headers[header::PRAGMA], "no-cache");
            assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(r.json["token_type"], "Bearer");
            assert_eq!(r.json["scope"], "read write");
            assert_eq!(r.json["expires_in"], 900);
            let c = claims(&h, &r.access_token());
            assert_eq!((c.sub.as_str(), c.client_id.as_deref().unwrap()), ("alice", "web"));
            assert!(c.sid.is_some());
            let (family, tokens) = family_rows(&h, c.sid.as_deref().unwrap()).await;
            assert_eq!(family.user_id, "alice");
            assert_eq!(tokens.len(), 1);
            // Only the hash is stored.
            let rt = r.refresh_token();
            // Debug output of what the issuer returns shows no token.
            let issued = h
                .issuer
                .issue("alice", "web", None, &Default::default())
                .await
                .unwrap();
            let shown = format!("{issued:?}");
            assert!(!shown.contains(&issued.access_token), "{shown}");
            assert!(
                !shown.contains(issued.refresh_token.as_deref().unwrap()),
                "{shown}"
            );
            assert_eq!(
                tokens[0].token_hash,
                tollgate::secret::hash_token(&rt).to_vec()
            );
            assert!(!format!("{tokens:?}").contains(&rt));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn refresh_rotates_and_the_old_token_is_then_refused(b) {
        each(b, no_grace(), async |h| {
            let login = h.login().await;
            let first = login.refresh_token();
            let r = h.refresh(&first).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            let second = r.refresh_token();
            assert_ne!(first, second);
            let sid = claims(&h, &r.access_token()).sid;
            assert_eq!(sid, claims(&h, &login.access_token()).sid, "same session");

            // Reuse of the consumed token: invalid_grant, and the family dies.
            let reuse = h.refresh(&first).await;
            assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
            assert_eq!(reuse.error(), "invalid_grant");
            let after = h.refresh(&second).await;
            assert_eq!(
                after.error(),
                "invalid_grant",
                "{}: the child must die too",
                h.backend
            );
            let (family, tokens) = family_rows(&h, sid.as_deref().unwrap()).await;
            assert_eq!(family.revoked_reason.as_deref(), Some("reuse_detected"));
            assert!(
                tokens
                    .iter()
                    .all(|t| t.revoked_reason.as_deref() == Some("reuse_detected"))
            );
            // Audit: rows are kept, not deleted.
            assert_eq!(tokens.len(), 2);
            assert!(tokens[0].consumed_at.is_some() && tokens[0].last_used_at.is_some());
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn within_grace_the_predecessor_gets_the_same_child(b) {
        // The short rule alone (the long one for bound sessions is off).
        let policy = RefreshPolicy {
            grace: Duration::from_secs(10),
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        };
        each(b, policy, async |h| {
            let first = h.login().await.refresh_token();
            let a = h.refresh(&first).await;
            let b = h.refresh(&first).await;
            assert_eq!(b.status, StatusCode::OK, "{}: {}", h.backend, b.raw);
            assert_eq!(
                a.refresh_token(),
                b.refresh_token(),
                "{}: the family forked",
                h.backend
            );
            assert_ne!(a.access_token(), b.access_token());
            // The child works once.
            let c = h.refresh(&a.refresh_token()).await;
            assert_eq!(c.status, StatusCode::OK);
            // Now the grandparent is reuse even inside the grace period.
            let d = h.refresh(&first).await;
            assert_eq!(d.error(), "invalid_grant");
            assert_eq!(h.refresh(&c.refresh_token()).await.error(), "invalid_grant");

            // After the grace period the predecessor is reuse.
            let first = h.login().await.refresh_token();
            h.refresh(&first).await;
            h.clock.advance(Duration::from_secs(11));
            assert_eq!(h.refresh(&first).await.error(), "invalid_grant");
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn a_refresh_token_is_bound_to_its_client(b) {
        each(b, no_grace(), async |h| {
            let rt = h.login().await.refresh_token();
            let r = h
                .post(&format!(
                    "grant_type=refresh_token&refresh_token={rt}&client_id=spa"
                ))
                .await;
            assert_eq!(r.error(), "invalid_grant");
            // Refused without consuming it: the rightful client still can.
            assert_eq!(h.refresh(&rt).await.status, StatusCode::OK, "{}", h.backend);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn ip_and_user_agent_binding_by_policy(b) {
        let policy = RefreshPolicy {
            grace: Duration::ZERO,
            bound_grace: Duration::ZERO,
            binding: BindingPolicy {
                ip: IpBinding::Prefix,
                user_agent: UserAgentBinding::Exact,
                revoke_session_on_mismatch: true,
            },
        };
        each(b, policy, async |h| {
            let home: SocketAddr = "203.0.113.7:5000".parse().unwrap();
            let same_net: SocketAddr = "203.0.113.99:6000".parse().unwrap();
            let elsewhere: SocketAddr = "198.51.100.1:5000".parse().unwrap();
            let login_body = format!(
                "grant_type=password&username=alice&password=wonderland&client_id=web&client_secret={}",
                h.web_secret
            );
            let ua = [("user-agent", "Firefox/140")];
            let login = h.post_from(&login_body, &ua, Some(home)).await;
            let refresh = |rt: String| {
                format!(
                    "grant_type=refresh_token&refresh_token={rt}&client_id=web&client_secret={}",
                    h.web_secret
                )
            };
            let r = h
                .post_from(&refresh(login.refresh_token()), &ua, Some(same_net))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            let rt = r.refresh_token();
            let sid = claims(&h, &r.access_token()).sid.unwrap();
            let (family, _) = family_rows(&h, &sid).await;
            assert_eq!(family.last_ip.as_deref(), Some("203.0.113.99"));
            assert_eq!(family.last_user_agent.as_deref(), Some("Firefox/140"));

            let other_ua = h
                .post_from(
                    &refresh(rt.clone()),
                    &[("user-agent", "curl/8")],
                    Some(same_net),
                )
                .await;
            assert_eq!(other_ua.error(), "invalid_grant");
            let (family, tokens) = family_rows(&h, &sid).await;
            assert_eq!(family.revoked_reason.as_deref(), Some("security"));
            assert!(tokens.iter().all(|t| t.revoked_at.is_some()));

            let login = h.post_from(&login_body, &ua, Some(home)).await;
            let r = h
                .post_from(&refresh(login.refresh_token()), &ua, Some(elsewhere))
                .await;
            assert_eq!(r.error(), "invalid_grant", "{}", h.backend);
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn scope_narrows_per_access_token_never_widens(b) {
        each(b, no_grace(), async |h| {
            let rt = h.login().await.refresh_token();
            let auth = format!("client_id=web&client_secret={}", h.web_secret);
            let wide = h
                .post(&format!(
                    "grant_type=refresh_token&refresh_token={rt}&scope=read+admin&{auth}"
                ))
                .await;
            assert_eq!(wide.error(), "invalid_scope");
            let narrow = h
                .post(&format!(
                    "grant_type=refresh_token&refresh_token={rt}&scope=read&{auth}"
                ))
                .await;
            assert_eq!(
                narrow.status,
                StatusCode::OK,
                "{}: {}",
                h.backend,
                narrow.raw
            );
            assert_eq!(narrow.json["scope"], "read");
            assert_eq!(
                claims(&h, &narrow.access_token()).scope.as_deref(),
                Some("read")
            );
            // Omitted scope: the original grant again (RFC 6749 §6).
            let full = h.refresh(&narrow.refresh_token()).await;
            assert_eq!(full.json["scope"], "read write");
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn client_authentication_methods(b) {
        each(b, no_grace(), async |h| {
            // A client whose id and secret need form-encoding inside Basic.
            let mut odd = NewClient::confidential("odd:client é", "read");
            odd.allow_password = true;
            store::clients::register_with_secret(&h.db, odd, "p+ss/w%rd:x", std::time::SystemTime::now())
                .await
                .unwrap();
            let basic = |id: &str, secret: &str| {
                let enc = |s: &str| {
                    s.bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect::<String>()
                };
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
                )
            };
            let body = "grant_type=password&username=alice&password=wonderland&scope=read";
            let ok = h
                .post_from(
                    body,
                    &[("authorization", &basic("odd:client é", "p+ss/w%rd:x"))],
                    None,
                )
                .await;
            assert_eq!(ok.status, StatusCode::OK, "{}: {}", h.backend, ok.raw);

            let wrong = h
                .post_from(
                    body,
                    &[("authorization", &basic("odd:client é", "nope"))],
                    None,
                )
                .await;
            let unknown = h
                .post_from(body, &[("authorization", &basic("ghost", "nope"))], None)
                .await;
            for r in [&wrong, &unknown] {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
                assert_eq!(r.error(), "invalid_client");
                assert!(
                    r.headers[header::WWW_AUTHENTICATE]
                        .to_str()
                        .unwrap()
                        .starts_with("Basic realm=")
                );
            }
            assert_eq!(
                wrong.raw, unknown.raw,
                "unknown client and wrong secret must look alike"
            );

            // Both methods at once.
            let both = h
                .post_from(
                    &format!("{body}&client_secret=x"),
                    &[("authorization", &basic("odd:client é", "p+ss/w%rd:x"))],
                    None,
                )
                .await;
            assert_eq!(both.error(), "invalid_request");
            // Another scheme is not client authentication the endpoint knows.
            let bearer = h
                .post_from(body, &[("authorization", "Bearer abc")], None)
                .await;
            assert_eq!(bearer.status, StatusCode::BAD_REQUEST);
            assert_eq!(bearer.error(), "invalid_request");
            // Garbage Basic.
            for bad in ["Basic !!!", "Basic", "Basic bm9jb2xvbg=="] {
                let r = h.post_from(body, &[("authorization", bad)], None).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
            }
            // Post: confidential without secret; public with a secret.
            let r = h.post(&format!("{body}&client_id=web")).await;
            assert_eq!(r.error(), "invalid_client");
            let r = h
                .post(&format!("{body}&client_id=spa&client_secret=x"))
                .await;
            assert_eq!(r.error(), "invalid_client");
            let r = h.post(&format!("{body}&client_id=spa")).await;
            assert_eq!(r.status, StatusCode::OK, "public client: {}", r.raw);
            // No secret or token in any error body.
            for r in [&wrong, &unknown, &both] {
                assert!(!r.raw.contains("p+ss") && !r.raw.contains("wonderland"));
            }
        })
        .await;
    }
}

/// A user named like a client (`svc`) logging out everywhere does not end
/// the client's own tokens, and no session can start for a subject in the
/// clients' namespace.
#[tokio::test]
async fn a_client_subject_is_never_a_users() {
    let h = harness(Backend::sqlite_memory().await, RefreshPolicy::default()).await;
    let r = h
        .post(&format!(
            "grant_type=client_credentials&client_id=svc&client_secret={}",
            h.svc_secret
        ))
        .await;
    let client_token = r.access_token();
    h.issuer.sessions().revoke_all("svc").await.unwrap();
    assert!(h.accepts(&client_token));
    let refused = h
        .issuer
        .issue(
            "client:svc",
            "web",
            None,
            &tollgate::issuer::RequestContext::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(tollgate::issuer::IssueError::ReservedSubject)),
        "{refused:?}"
    );
    let refused = h.issuer.issue("", "web", None, &Default::default()).await;
    assert!(matches!(
        refused,
        Err(tollgate::issuer::IssueError::ReservedSubject)
    ));
    // A password verifier naming such a subject signs nobody in.
    let e = tollgate::TokenEndpoint::builder(h.issuer.clone())
        .password_verifier(|_: String, _: String| async { Ok(Some("client:svc".to_owned())) })
        .build()
        .unwrap();
    let r = crate::common::store::call(
        e,
        crate::common::store::form("grant_type=password&client_id=spa&username=x&password=y"),
    )
    .await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.raw);
}

per_backend! {
    #[tokio::test]
    async fn grants_are_checked_per_client(b) {
        each(b, no_grace(), async |h| {
            let svc = format!("client_id=svc&client_secret={}", h.svc_secret);
            let r = h
                .post(&format!("grant_type=client_credentials&{svc}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
            assert!(r.json.get("refresh_token").is_none());
            let c = claims(&h, &r.access_token());
            // RFC 9068 §5: the client's subject is in a namespace of its
            // own, never a user's.
            assert_eq!((c.sub.as_str(), c.sid.as_deref()), ("client:svc", None));
            assert!(c.is_client_subject());
            let r = h
                .post(&format!(
                    "grant_type=password&username=alice&password=wonderland&{svc}"
                ))
                .await;
            assert_eq!(r.error(), "unauthorized_client");
            let r = h.post("grant_type=client_credentials&client_id=spa").await;
            assert_eq!(r.error(), "unauthorized_client");
            let r = h
                .post("grant_type=password&username=alice&password=wrong&client_id=spa")
                .await;
            assert_eq!(r.error(), "invalid_grant");
            let r = h
                .post("grant_type=authorization_code&code=x&client_id=spa")
                .await;
            assert_eq!(r.error(), "unsupported_grant_type");
            let r = h.post("grant_type=refresh_token&client_id=spa").await;
            assert_eq!(r.error(), "invalid_request");
            let r = h.post("client_id=spa").await;
            assert_eq!(r.error(), "invalid_request");
            let r = h
                .post("grant_type=refresh_token&refresh_token=never-issued&client_id=spa")
                .await;
            assert_eq!(r.error(), "invalid_grant");
            assert!(!r.raw.contains("never-issued"));
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn malformed_requests_get_clean_rfc_errors(b) {
        each(b, no_grace(), async |h| {
            let get = Request::get("/token")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let r = h.send(get).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(r.headers[header::ALLOW], "POST");
            assert_eq!(r.error(), "invalid_request");

            let json = Request::post("/token")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(r#"{"grant_type":"password"}"#)))
                .unwrap();
            assert_eq!(h.send(json).await.error(), "invalid_request");
            let latin1 = Request::post("/token")
                .header(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=iso-8859-1",
                )
                .body(Full::new(Bytes::from("grant_type=password")))
                .unwrap();
            assert_eq!(h.send(latin1).await.error(), "invalid_request");
            let utf8 = Request::post("/token")
                .header(
                    header::CONTENT_TYPE,
                    "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
                )
                .body(Full::new(Bytes::from(
                    "grant_type=client_credentials&client_id=spa",
                )))
                .unwrap();
            assert_eq!(h.send(utf8).await.error(), "unauthorized_client");

            let big = format!("grant_type=password&x={}", "a".repeat(20_000));
            let r = h.post(&big).await;
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(r.error(), "invalid_request");

            for body in [
                &b"grant_type=password&grant_type=refresh_token&client_id=spa"[..],
                b"grant_type=pass%FFword&client_id=spa",
                b"grant_type=\xff\xfe",
                b"grant_type=password&client_id=spa&username=a%00b&password=x",
            ] {
                let req = Request::post("/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::copy_from_slice(body)))
                    .unwrap();
                let r = h.send(req).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}");
                assert_eq!(r.error(), "invalid_request", "{body:?}");
            }
        })
        .await;
    }
}

per_backend! {
    #[tokio::test]
    async fn idle_and_absolute_lifetimes(b) {
        let lifetimes = Lifetimes {
            access: Duration::from_secs(600),
            refresh_idle: Duration::from_secs(3600),
            session: Duration::from_secs(5000),
        };
        let h = harness_with(b, no_grace(), lifetimes).await;
        let rt = h.login().await.refresh_token();
        h.clock.advance(Duration::from_secs(3601));
        assert_eq!(
            h.refresh(&rt).await.error(),
            "invalid_grant",
            "{}: idle expiry",
            h.backend
        );

        let rt = h.login().await.refresh_token();
        h.clock.advance(Duration::from_secs(3000));
        let r = h.refresh(&rt).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
        h.clock.advance(Duration::from_secs(1900));
        // 4900 s into a 5000 s session: the access token is cut to the session.
        let r = h.refresh(&r.refresh_token()).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", h.backend, r.raw);
        assert!(r.json["expires_in"].as_u64().unwrap() <= 100);
        h.clock.advance(Duration::from_secs(100));
        assert_eq!(h.refresh(&r.refresh_token()).await.error(), "invalid_grant");
    }
}

per_backend! {
    #[tokio::test]
    async fn client_rows_are_cached_only_as_long_as_configured(b) {
        use sea_orm::ConnectionTrait;
        let mut h = harness(b, no_grace()).await;
        let svc = format!(
            "grant_type=client_credentials&client_id=svc&client_secret={}",
            h.svc_secret
        );
        // Default TTL: the client is read once, then served from the cache.
        assert_eq!(h.post(&svc).await.status, StatusCode::OK);
        h.db.execute_unprepared("DELETE FROM tollgate_client WHERE client_id = 'svc'")
            .await
            .unwrap();
        assert_eq!(
            h.post(&svc).await.status,
            StatusCode::OK,
            "{}: cached",
            h.backend
        );
        // No cache: the removal applies to the very next request.
        h.endpoint = tollgate::token_endpoint::TokenEndpoint::builder(h.issuer.clone())
            .client_cache_ttl(Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(
            h.post(&svc).await.error(),
            "invalid_client",
            "{}",
            h.backend
        );
    }
}

#[tokio::test]
async fn bad_endpoint_and_client_settings_are_refused() {
    use tollgate::token_endpoint::{EndpointConfigError, TokenEndpoint};
    let h = harness(
        crate::common::store::Backend {
            name: "sqlite-memory",
            db: crate::common::store::sqlite_memory().await,
        },
        no_grace(),
    )
    .await;
    for realm in ["a\"b", "a\\b", "line\nbreak", "tab\there"] {
        let err = TokenEndpoint::builder(h.issuer.clone())
            .realm(realm)
            .build()
            .unwrap_err();
        assert_eq!(err, EndpointConfigError::InvalidRealm, "{realm:?}");
    }
    let err = TokenEndpoint::builder(h.issuer.clone())
        .max_body(0)
        .build()
        .unwrap_err();
    assert_eq!(err, EndpointConfigError::ZeroBodyLimit);
    assert!(
        TokenEndpoint::builder(h.issuer.clone())
            .realm("my api")
            .build()
            .is_ok()
    );
    // A deny list whose entries die before the leeway ends could let
    // /introspect call a revoked token active.
    let short_margin = tollgate::issuer::Issuer::builder()
        .db(h.db.clone())
        .keys(crate::common::keyset(&crate::common::hs256()))
        .issuer(crate::common::ISS)
        .audience(crate::common::AUD)
        .refresh_secret(tollgate::secret::RefreshSecret::new(&[1; 32]).unwrap())
        .revocations(
            tollgate::RevocationCache::builder()
                .margin(Duration::from_secs(10))
                .build(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        TokenEndpoint::builder(short_margin).build().unwrap_err(),
        EndpointConfigError::AccessTokens(
            tollgate::access_token::AccessTokenConfigError::LeewayExceedsRevocationMargin { .. }
        )
    ));

    for scope in ["read \"write\"", "a\\b", "read\u{1}"] {
        let r = store::clients::register(
            &h.db,
            NewClient::public("bad", scope),
            std::time::SystemTime::now(),
        )
        .await;
        assert!(matches!(r, Err(store::StoreError::Invalid(_))), "{scope:?}");
    }
    assert!(
        store::clients::register(
            &h.db,
            NewClient::public("good", " read  write "),
            std::time::SystemTime::now()
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn bad_issuer_settings_are_refused() {
    use tollgate::{
        issuer::{Issuer, IssuerConfigError},
        keys::KeySet,
        secret::RefreshSecret,
    };
    let db = crate::common::store::sqlite_memory().await;
    let full = || {
        Issuer::builder()
            .db(db.clone())
            .keys(crate::common::keyset(&crate::common::hs256()))
            .issuer(crate::common::ISS)
            .audience(crate::common::AUD)
            .refresh_secret(RefreshSecret::new(&[1; 32]).unwrap())
    };
    assert!(full().build().is_ok());
    let verify_only = KeySet::builder()
        .verifying_key(crate::common::hs256().verifying_key())
        .build()
        .unwrap();
    let cases = [
        (
            full().keys(verify_only).build(),
            IssuerConfigError::MissingSigningKey,
        ),
        (
            full()
                .lifetimes(Lifetimes {
                    access: Duration::from_secs(7200),
                    session: Duration::from_secs(3600),
                    ..Lifetimes::default()
                })
                .build(),
            IssuerConfigError::InvalidLifetimes,
        ),
        (
            // Access tokens the gate would refuse as too long-lived.
            full()
                .revocations(
                    tollgate::RevocationCache::builder()
                        .max_token_lifetime(Duration::from_secs(600))
                        .build(),
                )
                .build(),
            IssuerConfigError::InvalidLifetimes,
        ),
        (
            full()
                .lifetimes(Lifetimes {
                    refresh_idle: Duration::ZERO,
                    ..Lifetimes::default()
                })
                .build(),
            IssuerConfigError::InvalidLifetimes,
        ),
        (
            Issuer::builder()
                .db(db.clone())
                .keys(crate::common::keyset(&crate::common::hs256()))
                .issuer(crate::common::ISS)
                .audience(crate::common::AUD)
                .build(),
            IssuerConfigError::MissingRefreshSecret,
        ),
        (
            Issuer::builder()
                .db(db.clone())
                .keys(crate::common::keyset(&crate::common::hs256()))
                .audience(crate::common::AUD)
                .refresh_secret(RefreshSecret::new(&[1; 32]).unwrap())
                .build(),
            IssuerConfigError::MissingIssuer,
        ),
        (
            Issuer::builder()
                .db(db.clone())
                .keys(crate::common::keyset(&crate::common::hs256()))
                .issuer(crate::common::ISS)
                .refresh_secret(RefreshSecret::new(&[1; 32]).unwrap())
                .build(),
            IssuerConfigError::MissingAudience,
        ),
        (
            Issuer::builder()
                .keys(crate::common::keyset(&crate::common::hs256()))
                .issuer(crate::common::ISS)
                .audience(crate::common::AUD)
                .refresh_secret(RefreshSecret::new(&[1; 32]).unwrap())
                .build(),
            IssuerConfigError::MissingDb,
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(result.unwrap_err(), expected);
    }
}
