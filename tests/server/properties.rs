//! Property tests of the public entry points under hostile input: the gate
//! layer (any `Authorization` header) and the token endpoints (any body,
//! content type and credentials). Never a panic, never a 500, always a
//! registered RFC error, never the input echoed. The verifier's own
//! property and differential tests live beside it, in
//! `src/access_token/verify.rs`.

use std::sync::OnceLock;

use crate::common::{gate, store::Harness};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::Full;
use proptest::prelude::*;
use tollgate::RevocationCache;
use tower::{Layer, ServiceExt, service_fn};

proptest! {
    /// Any `Authorization` bytes through the layer: 400 or 401 with a
    /// challenge (the inner service would answer 200), and the header's
    /// content never in the answer.
    #[test]
    fn any_authorization_header_through_the_layer(value in proptest::collection::vec(any::<u8>(), 0..600)) {
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        let svc = gate(RevocationCache::default()).layer(service_fn(crate::common::echo_sub));
        let mut req = Request::builder().uri("/orders").body(String::new()).unwrap();
        req.headers_mut().insert(header::AUTHORIZATION, value.clone());
        let res = runtime().block_on(svc.oneshot(req)).unwrap();
        prop_assert!(matches!(res.status(), StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED), "{}", res.status());
        let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        prop_assert!(challenge.starts_with("Bearer realm="));
        if let Some(sent) = value.to_str().ok().filter(|v| v.len() > 8) {
            let body = res.into_body();
            prop_assert!(!body.contains(sent), "{} echoed", sent);
            prop_assert!(!challenge.contains(sent), "{} echoed", sent);
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One endpoint over in-memory SQLite for every case.
fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        runtime().block_on(async {
            let db = crate::common::store::sqlite_memory().await;
            let backend = crate::common::store::Backend {
                name: "sqlite-memory",
                db,
            };
            crate::common::store::harness(backend, tollgate::refresh::RefreshPolicy::default())
                .await
        })
    })
}

/// Form bodies built from the endpoint's own vocabulary, so that cases
/// reach grant handling and client authentication, not just the parser.
fn token_form() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("grant_type"),
        Just("client_id"),
        Just("client_secret"),
        Just("refresh_token"),
        Just("username"),
        Just("password"),
        Just("scope"),
        Just("token"),
        Just("token_type_hint"),
    ];
    let value = prop_oneof![
        Just("password".to_owned()),
        Just("refresh_token".to_owned()),
        Just("client_credentials".to_owned()),
        Just("authorization_code".to_owned()),
        Just("web".to_owned()),
        Just("spa".to_owned()),
        Just("svc".to_owned()),
        Just("alice".to_owned()),
        Just("wonderland".to_owned()),
        Just("read write admin".to_owned()),
        Just("%00".to_owned()),
        Just("%FF".to_owned()),
        Just("%".to_owned()),
        Just("a".repeat(5000)),
        "[a-zA-Z0-9%+&=._~-]{0,40}",
    ];
    proptest::collection::vec((name, value), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// The registered error codes and their statuses (RFC 6749 §5.2, RFC 7009
/// §2.2.1, and 503 / 429 `temporarily_unavailable`).
fn is_rfc_error(status: StatusCode, error: &str) -> bool {
    match status {
        StatusCode::BAD_REQUEST => matches!(
            error,
            "invalid_request"
                | "invalid_grant"
                | "unauthorized_client"
                | "unsupported_grant_type"
                | "invalid_scope"
                | "unsupported_token_type"
        ),
        StatusCode::UNAUTHORIZED => error == "invalid_client",
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::METHOD_NOT_ALLOWED => {
            error == "invalid_request"
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Any form, content type and Basic header at all three endpoints:
    /// 200 or a registered error with its status, RFC 6749's no-store
    /// headers, and no submitted value longer than a word echoed back.
    #[test]
    fn any_request_to_the_token_endpoints_gets_an_rfc_answer(
        body in token_form(),
        content_type in prop_oneof![
            Just("application/x-www-form-urlencoded"),
            Just("application/x-www-form-urlencoded; charset=UTF-8"),
            Just("application/x-www-form-urlencoded; charset=latin1"),
            Just("application/json"),
            Just("text/plain"),
            Just(""),
        ],
        basic in prop_oneof![Just(None), "[A-Za-z0-9+/=:]{0,40}".prop_map(Some)],
        which in 0usize..3,
        method in prop_oneof![Just("POST"), Just("GET"), Just("PUT")],
    ) {
        let h = harness();
        let mut req = Request::builder().method(method).uri("/");
        if !content_type.is_empty() {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(b) = &basic {
            req = req.header(header::AUTHORIZATION, format!("Basic {b}"));
        }
        let req = req.body(Full::new(Bytes::from(body.clone()))).unwrap();
        let reply = runtime().block_on(async {
            match which {
                0 => crate::common::store::call(h.endpoint.clone(), req).await,
                1 => crate::common::store::call(h.endpoint.revocation(), req).await,
                _ => crate::common::store::call(h.endpoint.introspection(), req).await,
            }
        });
        prop_assert_eq!(&reply.headers[header::CACHE_CONTROL], "no-store");
        if reply.status == StatusCode::OK && which == 1 {
            // RFC 7009 §2.2: `/revoke` answers 200 with no body.
            prop_assert!(reply.raw.is_empty(), "{}", reply.raw);
        } else if reply.status == StatusCode::OK {
            prop_assert!(reply.json.is_object(), "{}", reply.raw);
        } else {
            prop_assert!(is_rfc_error(reply.status, reply.error()), "{} {}", reply.status, reply.raw);
            prop_assert!(reply.json["error_description"].is_string(), "{}", reply.raw);
        }
        // A parameter or grant name (`refresh_token`, ...) is in the fixed
        // descriptions ("The refresh_token parameter is missing"): naming
        // it is not echoing the request.
        let vocabulary = ["refresh_token", "client_credentials", "client_secret", "token_type_hint"];
        for value in body
            .split(['&', '='])
            .filter(|v| v.len() > 12 && !vocabulary.contains(v))
        {
            prop_assert!(!reply.raw.contains(value), "echoed {} in {}", value, reply.raw);
        }
    }
}
