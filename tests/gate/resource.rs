//! RFC 9728: the gate as a protected resource. Its metadata document, the
//! `resource_metadata` and `scope` parameters of every challenge (checked
//! with a strict RFC 9110 parser, `http-auth`), and the resource as an
//! audience.

use http::{Request, StatusCode, header};
use tollgate::{AccessTokenConfigError, AccessTokenLayer, IdentifierError, RevocationCache};
use tower::{Layer, ServiceExt, service_fn};

use crate::common::*;

const RESOURCE: &str = "https://mcp.example/api";
const METADATA: &str = "https://mcp.example/.well-known/oauth-protected-resource/api";

fn gate(required: &[&str]) -> AccessTokenLayer {
    let mut b = AccessTokenLayer::builder()
        .keys(hs256())
        .issuer(ISS)
        .audience(AUD)
        .resource(RESOURCE)
        .realm(REALM)
        .revocations(RevocationCache::default());
    for s in required {
        b = b.require_scope(*s);
    }
    b.build().unwrap()
}

/// The challenge of the gate's answer to `req`, parsed strictly:
/// (status, scheme, params).
pub(crate) async fn challenge(
    g: AccessTokenLayer,
    req: Request<String>,
) -> (StatusCode, Vec<(String, String)>) {
    let svc = g.layer(service_fn(echo_sub));
    let res = svc.oneshot(req).await.unwrap();
    (res.status(), bearer_challenge(res.headers()))
}

/// The one Bearer challenge of `WWW-Authenticate`, parsed strictly: its
/// parameters.
pub(crate) fn bearer_challenge(headers: &http::HeaderMap) -> Vec<(String, String)> {
    let value = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    let challenges: Vec<_> = http_auth::parser::ChallengeParser::new(value)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not RFC 9110: {value}: {e}"));
    assert_eq!(challenges.len(), 1, "{value}");
    assert!(challenges[0].scheme.eq_ignore_ascii_case("bearer"));
    challenges[0]
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_unescaped()))
        .collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn unauthenticated() -> Request<String> {
    Request::builder()
        .uri("/tools")
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn every_challenge_names_the_metadata_and_401s_name_the_scope() {
    // No token: 401, no error code, but where to look and what to ask for.
    let (status, p) = challenge(gate(&["tools:read"]), unauthenticated()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(param(&p, "resource_metadata"), Some(METADATA));
    assert_eq!(param(&p, "scope"), Some("tools:read"));
    assert_eq!(param(&p, "realm"), Some(REALM));
    assert_eq!(param(&p, "error"), None);

    // A bad token: 401 invalid_token, the same two.
    let (status, p) = challenge(gate(&["tools:read"]), bearer("not.a.jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(param(&p, "error"), Some("invalid_token"));
    assert_eq!(param(&p, "resource_metadata"), Some(METADATA));
    assert_eq!(param(&p, "scope"), Some("tools:read"));

    // A good token without the scopes: 403 naming every scope the route needs.
    let (status, p) = challenge(gate(&["tools:read", "admin"]), bearer(&token("t-1"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(param(&p, "error"), Some("insufficient_scope"));
    assert_eq!(param(&p, "scope"), Some("tools:read admin"));
    assert_eq!(param(&p, "resource_metadata"), Some(METADATA));

    // A route with no scope requirement names none.
    let (_, p) = challenge(gate(&[]), unauthenticated()).await;
    assert_eq!(param(&p, "scope"), None);
    assert_eq!(param(&p, "resource_metadata"), Some(METADATA));

    // Without a resource, no resource_metadata.
    let plain = gate_builder(&hs256()).build().unwrap();
    let (_, p) = challenge(plain, unauthenticated()).await;
    assert_eq!(param(&p, "resource_metadata"), None);
}

#[tokio::test]
async fn the_metadata_document_is_built_from_configuration() {
    let g = AccessTokenLayer::builder()
        .keys(hs256())
        .issuer(ISS)
        .resource(RESOURCE)
        .require_scope("tools:read")
        .build()
        .unwrap();
    let meta = g.resource_metadata().unwrap();
    assert_eq!(
        meta.well_known_path(),
        "/.well-known/oauth-protected-resource/api"
    );
    let honest = meta
        .clone()
        .oneshot(Request::get(meta.well_known_path()).body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(honest.status(), StatusCode::OK);
    assert_eq!(honest.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        honest.headers()[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    let doc: serde_json::Value = serde_json::from_str(honest.body()).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": RESOURCE,
            "authorization_servers": [ISS],
            "scopes_supported": ["tools:read"],
            "bearer_methods_supported": ["header"],
        })
    );
    // A spoofed Host changes nothing.
    let spoofed = meta
        .clone()
        .oneshot(
            Request::get(meta.well_known_path())
                .header(header::HOST, "evil.example")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(spoofed.body(), honest.body());
    let post = meta
        .oneshot(Request::post("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Configured authorization servers and scopes; a root resource.
    let g = AccessTokenLayer::builder()
        .keys(hs256())
        .issuer(ISS)
        .resource("https://mcp.example")
        .authorization_server("https://login.example")
        .authorization_server("https://login.example/tenant")
        .scopes_supported(["a", "b"])
        .build()
        .unwrap();
    let meta = g.resource_metadata().unwrap();
    assert_eq!(
        meta.well_known_path(),
        "/.well-known/oauth-protected-resource"
    );
    let res = meta
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(res.body()).unwrap();
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!(["https://login.example", "https://login.example/tenant"])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["a", "b"]));
    assert!(
        gate_builder(&hs256())
            .build()
            .unwrap()
            .resource_metadata()
            .is_none()
    );
}

#[tokio::test]
async fn the_resource_is_an_audience_and_other_audiences_are_refused() {
    let g = AccessTokenLayer::builder()
        .keys(hs256())
        .issuer(ISS)
        .resource(RESOURCE)
        .build()
        .unwrap();
    let mut c = claims("aud-1");
    c.aud = vec![RESOURCE.into()];
    assert!(g.verify(&hs256().sign(&c).unwrap()).is_ok());
    c.aud = vec!["https://other.example".into()];
    assert!(g.verify(&hs256().sign(&c).unwrap()).is_err());
    // The configured audience still counts.
    assert!(gate(&[]).verify(&token("aud-2")).is_ok());
}

#[test]
fn resource_identifiers_are_checked_at_build() {
    let build = |resource: &str| {
        AccessTokenLayer::builder()
            .keys(hs256())
            .issuer(ISS)
            .resource(resource)
            .build()
            .err()
    };
    use IdentifierError::*;
    for (bad, why) in [
        ("https://mcp.example/api#x", QueryOrFragment),
        ("/api", NotAnAbsoluteUrl),
        ("https://MCP.example/api", NotCanonical),
        ("HTTPS://mcp.example", NotCanonical),
        ("http://mcp.example", InsecureScheme),
    ] {
        assert_eq!(
            build(bad),
            Some(AccessTokenConfigError::InvalidResource(why)),
            "{bad}"
        );
    }
    assert_eq!(build("http://127.0.0.1:8080/mcp"), None);
    // The issuer is the default authorization server, so it must be one.
    let err = AccessTokenLayer::builder()
        .keys(hs256())
        .issuer("not-a-url")
        .resource(RESOURCE)
        .build()
        .err();
    assert_eq!(
        err,
        Some(AccessTokenConfigError::InvalidAuthorizationServer(
            "not-a-url".into()
        ))
    );
}
