//! Property tests of the public entry points under hostile input: the gate
//! (any header, any JOSE header on a correctly signed token) and the token
//! endpoints (any body, content type and credentials). Never a panic,
//! never a 500, always a registered RFC error, never the input echoed.

use std::sync::OnceLock;

use crate::common::{claims, gate, store::Harness};
use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::Full;
use proptest::prelude::*;
use tollgate::{AuthError, RevocationCache, access_token::InvalidToken};
use tower::{Layer, ServiceExt, service_fn};

/// The JOSE header values an attacker would try.
fn jose_header() -> impl Strategy<Value = serde_json::Value> {
    let alg = prop_oneof![
        Just("HS256".to_owned()),
        Just("none".to_owned()),
        Just("None".to_owned()),
        Just("RS256".to_owned()),
        Just("ES256".to_owned()),
        Just("EdDSA".to_owned()),
        Just("HS512".to_owned()),
        "\\PC{0,8}",
    ];
    let kid = prop_oneof![
        Just(None),
        Just(Some("hs-1".to_owned())),
        Just(Some("../../../../etc/passwd".to_owned())),
        Just(Some("/dev/zero".to_owned())),
        Just(Some("http://127.0.0.1:9/key".to_owned())),
        Just(Some("hs-1' OR '1'='1".to_owned())),
        "\\PC{0,20}".prop_map(Some),
    ];
    let typ = prop_oneof![
        Just(None),
        Just(Some("at+jwt".to_owned())),
        Just(Some("application/AT+JWT".to_owned())),
        Just(Some("JWT".to_owned())),
    ];
    let url = prop_oneof![
        Just(None),
        Just(Some("http://127.0.0.1:9/jwks.json".to_owned())),
        Just(Some("file:///etc/passwd".to_owned())),
    ];
    (
        alg,
        kid,
        typ,
        url.clone(),
        url,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, typ, jku, x5u, crit, alg_missing)| {
            let mut h = serde_json::Map::new();
            if !alg_missing {
                h.insert("alg".into(), alg.into());
            }
            for (name, value) in [("kid", kid), ("typ", typ), ("jku", jku), ("x5u", x5u)] {
                if let Some(v) = value {
                    h.insert(name.into(), v.into());
                }
            }
            if crit {
                h.insert("crit".into(), serde_json::json!(["exp"]));
            }
            serde_json::Value::Object(h)
        })
}

/// `header.payload.signature` with a correct HS256 signature under the
/// gate's own key, whatever the header says.
fn signed_with_gate_key(header: &serde_json::Value) -> String {
    let payload = serde_json::to_vec(&claims("prop")).unwrap();
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[42; 32]);
    let sig = hmac::sign(&key, message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

proptest! {
    /// A token is accepted only when its header names exactly our
    /// algorithm and key (or no key, there being one), an access-token
    /// type and no critical extension; `jku`, `x5u` and the `kid` are never
    /// followed anywhere (nothing listens on the URLs; the file paths are
    /// just strings that match no key).
    #[test]
    fn only_our_algorithm_and_key_are_accepted_whatever_the_header_says(header in jose_header()) {
        let gate = gate(RevocationCache::default());
        let token = signed_with_gate_key(&header);
        let kid_ok = header.get("kid").is_none() || header["kid"] == "hs-1";
        let typ_ok = header.get("typ").is_some_and(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")));
        let acceptable = header.get("alg").and_then(|a| a.as_str()) == Some("HS256")
            && kid_ok
            && typ_ok
            && header.get("crit").is_none();
        match gate.verify(&token) {
            Ok(c) => {
                prop_assert!(acceptable, "accepted {}", header);
                prop_assert_eq!(c.jti, "prop");
            }
            Err(AuthError::InvalidToken(_)) => prop_assert!(!acceptable, "refused {}", header),
            Err(e) => prop_assert!(false, "{:?} for {}", e, header),
        }
    }

    /// Arbitrary text as a token: always `invalid_token`, never a panic.
    #[test]
    fn any_text_is_an_invalid_token(token in "\\PC{0,400}", dots in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 0..5)) {
        let gate = gate(RevocationCache::default());
        for candidate in [token, dots.join(".")] {
            prop_assert!(matches!(gate.verify(&candidate), Err(AuthError::InvalidToken(_))));
        }
    }

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
        if reply.status == StatusCode::OK {
            prop_assert!(reply.json.is_object(), "{}", reply.raw);
        } else {
            prop_assert!(is_rfc_error(reply.status, reply.error()), "{} {}", reply.status, reply.raw);
            prop_assert!(reply.json["error_description"].is_string(), "{}", reply.raw);
        }
        for value in body.split(['&', '=']).filter(|v| v.len() > 12) {
            prop_assert!(!reply.raw.contains(value), "echoed {} in {}", value, reply.raw);
        }
    }
}

#[test]
fn the_jose_header_cases_include_the_attacks_by_name() {
    // The strategy above draws these; this pins that a plain `none` token
    // and a path-like kid are refused for the right reasons.
    let gate = gate(RevocationCache::default());
    let none = signed_with_gate_key(&serde_json::json!({"alg": "none", "typ": "at+jwt"}));
    assert_eq!(
        gate.verify(&none).unwrap_err(),
        AuthError::InvalidToken(InvalidToken::DisallowedAlgorithm)
    );
    let path = signed_with_gate_key(
        &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": "../../../../dev/zero"}),
    );
    assert_eq!(
        gate.verify(&path).unwrap_err(),
        AuthError::InvalidToken(InvalidToken::UnknownKey)
    );
}
