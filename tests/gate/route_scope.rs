//! Per-route requirements behind one gate (`require_scope_layer`,
//! `require_token_layer`) and the optional gate: anonymous requests go
//! through unmarked, a token that is there is still checked, and a route
//! that needs more answers with the gate's own challenge, read back by a
//! strict RFC 9110 parser.

use http::{Request, Response, StatusCode, header};
use tollgate::{AccessClaims, AccessTokenConfigError, AccessTokenLayer, RevocationCache};
use tower::{Layer, ServiceExt, service_fn};

use crate::{
    common::*,
    resource::{bearer_challenge, param},
};

fn gate(optional: bool) -> AccessTokenLayer {
    let b = gate_builder(&hs256())
        .realm(REALM)
        .revocations(RevocationCache::default());
    let b = if optional { b.optional() } else { b };
    b.build().unwrap()
}

/// 200 with the subject, or with "anonymous" when the request carries no
/// claims.
async fn who(req: Request<String>) -> Result<Response<String>, std::convert::Infallible> {
    let body = req
        .extensions()
        .get::<AccessClaims>()
        .map_or("anonymous".to_owned(), |c| c.sub.clone());
    Ok(Response::new(body))
}

fn anonymous() -> Request<String> {
    Request::builder()
        .uri("/orders")
        .body(String::new())
        .unwrap()
}

fn with_scope(scope: Option<&str>) -> String {
    let mut c = claims("t-route");
    c.scope = scope.map(str::to_owned);
    hs256().sign(&c).unwrap()
}

/// The gate's answer to `req` on a route that needs `scopes` (`None`: a
/// token only; `Some(&[])`: nothing beyond the gate).
async fn call(
    g: &AccessTokenLayer,
    scopes: Option<&[&str]>,
    req: Request<String>,
) -> Response<String> {
    match scopes {
        None => {
            let route = g.require_token_layer().layer(service_fn(who));
            g.layer(route).oneshot(req).await.unwrap()
        }
        Some([]) => g.layer(service_fn(who)).oneshot(req).await.unwrap(),
        Some(scopes) => {
            let route = g
                .require_scope_layer(scopes.iter().copied())
                .unwrap()
                .layer(service_fn(who));
            g.layer(route).oneshot(req).await.unwrap()
        }
    }
}

#[tokio::test]
async fn an_optional_gate_lets_anonymous_requests_through_and_still_checks_tokens() {
    let g = gate(true);
    let res = call(&g, Some(&[]), anonymous()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "anonymous");
    assert!(!res.headers().contains_key(header::WWW_AUTHENTICATE));

    // A token that is there is verified: a good one marks the request...
    let res = call(&g, Some(&[]), bearer(&token("t-1"))).await;
    assert_eq!(res.body(), "alice");
    // ...and a bad, expired or revoked one is refused, never taken for
    // none.
    let mut expired = claims("t-old");
    expired.iat = Some(now() - 3600);
    expired.exp = now() - 600;
    for token in [
        format!("{}x", token("t-2")),
        hs256().sign(&expired).unwrap(),
        "not-a-jwt".to_owned(),
    ] {
        let res = call(&g, Some(&[]), bearer(&token)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token}");
        let p = bearer_challenge(res.headers());
        assert_eq!(param(&p, "error"), Some("invalid_token"));
    }
    let revocations = RevocationCache::default();
    let g = gate_builder(&hs256())
        .revocations(revocations.clone())
        .optional()
        .build()
        .unwrap();
    revocations.revoke_token(
        "t-3",
        std::time::SystemTime::now() + std::time::Duration::from_secs(600),
    );
    let res = call(&g, Some(&[]), bearer(&token("t-3"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A gate that is not optional refuses the anonymous request itself.
    let res = call(&gate(false), Some(&[]), anonymous()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let p = bearer_challenge(res.headers());
    assert_eq!(param(&p, "realm"), Some(REALM));
    assert_eq!(param(&p, "error"), None);
}

#[tokio::test]
async fn a_route_scope_is_refused_with_the_gates_403_naming_the_routes_scopes() {
    for optional in [false, true] {
        let g = gate(optional);
        // The token has orders:read and orders:write.
        let res = call(&g, Some(&["orders:read"]), bearer(&token("t-4"))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "alice");

        let res = call(
            &g,
            Some(&["orders:read", "orders:export"]),
            bearer(&token("t-5")),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let p = bearer_challenge(res.headers());
        assert_eq!(param(&p, "error"), Some("insufficient_scope"));
        assert_eq!(param(&p, "scope"), Some("orders:read orders:export"));
        assert_eq!(param(&p, "realm"), Some(REALM));

        // A token with no scope at all.
        let res = call(&g, Some(&["orders:read"]), bearer(&with_scope(None))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // Anonymous on a scoped route: 401 (whether the gate or the route
        // refuses), with the scope the route needs when the route does.
        let res = call(&g, Some(&["orders:export"]), anonymous()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let p = bearer_challenge(res.headers());
        assert_eq!(param(&p, "error"), None, "no credentials: no error code");
        if optional {
            assert_eq!(param(&p, "scope"), Some("orders:export"));
        }
    }
}

#[tokio::test]
async fn the_gates_own_scopes_are_named_with_the_routes() {
    let g = gate_builder(&hs256())
        .require_scope("orders:read")
        .optional()
        .build()
        .unwrap();
    let res = call(
        &g,
        Some(&["orders:export", "orders:read"]),
        bearer(&token("t-6")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let p = bearer_challenge(res.headers());
    // Each once, the gate's first.
    assert_eq!(param(&p, "scope"), Some("orders:read orders:export"));
}

#[tokio::test]
async fn a_token_only_route_refuses_the_anonymous_request_an_optional_gate_let_through() {
    let g = gate(true);
    let res = call(&g, None, anonymous()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let p = bearer_challenge(res.headers());
    assert_eq!(param(&p, "realm"), Some(REALM));
    assert_eq!(param(&p, "scope"), None, "nothing to name");
    let res = call(&g, None, bearer(&with_scope(None))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice");
}

#[tokio::test]
async fn grpc_routes_get_grpc_status() {
    let grpc = |token: Option<&str>| {
        let mut b = Request::builder()
            .uri("/orders.Orders/Export")
            .header(header::CONTENT_TYPE, "application/grpc");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(String::new()).unwrap()
    };
    let g = gate(true);
    let res = call(&g, Some(&["orders:export"]), grpc(Some(&token("t-7")))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "7", "PERMISSION_DENIED");
    let res = call(&g, Some(&["orders:export"]), grpc(None)).await;
    assert_eq!(res.headers()["grpc-status"], "16", "UNAUTHENTICATED");
}

#[test]
fn route_scopes_are_checked_when_the_layer_is_made() {
    let g = gate(false);
    for bad in [&[][..], &[""][..], &["a b"][..], &["ok", "quote\""][..]] {
        assert!(
            matches!(
                g.require_scope_layer(bad.iter().copied()),
                Err(AccessTokenConfigError::InvalidScope(_))
            ),
            "{bad:?}"
        );
    }
    assert!(g.require_scope_layer(["orders:export"]).is_ok());
}

/// In axum: `Option<AccessClaims>` on open routes, `route_layer` for the
/// rest, one gate.
#[cfg(feature = "axum")]
#[tokio::test]
async fn in_axum_one_optional_gate_serves_open_and_guarded_routes() {
    use axum::{Router, routing::get};

    let g = gate(true);
    let app =
        Router::new()
            .route(
                "/catalogue",
                get(|who: Option<AccessClaims>| async move {
                    who.map_or("everyone".to_owned(), |c| c.sub)
                }),
            )
            .route(
                "/export",
                get(|c: AccessClaims| async move { c.sub })
                    .route_layer(g.require_scope_layer(["orders:export"]).unwrap()),
            )
            .layer(g);
    let get = |path: &str, token: Option<&str>| {
        let mut b = Request::builder().uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    let text = |res: axum::response::Response| async move {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let res = app.clone().oneshot(get("/catalogue", None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "everyone");
    let res = app
        .clone()
        .oneshot(get("/catalogue", Some(&token("t-8"))))
        .await
        .unwrap();
    assert_eq!(text(res).await, "alice");
    let res = app.clone().oneshot(get("/export", None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .clone()
        .oneshot(get("/export", Some(&token("t-9"))))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mut c = claims("t-10");
    c.scope = Some("orders:export".into());
    let res = app
        .oneshot(get("/export", Some(&hs256().sign(&c).unwrap())))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "alice");
}
