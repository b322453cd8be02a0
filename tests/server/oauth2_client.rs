//! A real OAuth2 client library (the `oauth2` crate) against the endpoints
//! over a real loopback socket: password grant with client_secret_basic,
//! refresh, the consumed refresh token refused with `invalid_grant`, and
//! RFC 7662 introspection and RFC 7009 revocation as the crate speaks them.

use std::net::SocketAddr;

use crate::common::store::{harness, per_backend};
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use oauth2::{
    ClientId, ClientSecret, IntrospectionUrl, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponseType},
};
use std::time::Duration;

use sea_orm::EntityTrait;
use tollgate::refresh::RefreshPolicy;

/// The HTTP function oauth2 calls: one request per connection, over hyper.
pub(crate) async fn http(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let io = |e: hyper::Error| std::io::Error::other(e);
    let uri = req.uri().clone();
    let authority = uri.authority().expect("absolute token URL").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io)?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts.uri = uri.path_and_query().unwrap().as_str().parse().unwrap();
    parts
        .headers
        .insert(header::HOST, authority.parse().unwrap());
    let res = sender
        .send_request(Request::from_parts(parts, Full::new(Bytes::from(body))))
        .await
        .map_err(io)?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map_err(io)?.to_bytes().to_vec();
    Ok(Response::from_parts(parts, body))
}

fn basic(id: &str, secret: &str) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

per_backend! {
    #[tokio::test]
    async fn the_oauth2_crate_logs_in_refreshes_and_is_refused_a_replay(b) {
        let policy = RefreshPolicy {
            grace: Duration::ZERO,
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        };
        let h = harness(b, policy.clone()).await;
        let app = axum::Router::new()
            .route_service("/token", h.endpoint.clone())
            .route_service("/revoke", h.endpoint.revocation())
            .route_service("/introspect", h.endpoint.introspection());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });

        let client = BasicClient::new(ClientId::new("web".into()))
            .set_client_secret(ClientSecret::new(h.web_secret.clone()))
            .set_token_uri(TokenUrl::new(format!("http://{addr}/token")).unwrap())
            .set_revocation_url(RevocationUrl::new(format!("http://{addr}/revoke")).unwrap())
            .set_introspection_url(
                IntrospectionUrl::new(format!("http://{addr}/introspect")).unwrap(),
            );

        let login = client
            .exchange_password(
                &ResourceOwnerUsername::new("alice".into()),
                &ResourceOwnerPassword::new("wonderland".into()),
            )
            .add_scope(Scope::new("read".into()))
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", h.backend));
        assert_eq!(login.scopes().unwrap()[0].as_str(), "read");
        let claims = h.gate.verify(login.access_token().secret()).unwrap();
        // The client IP was taken from the real socket (axum's ConnectInfo).
        let family = entity::token_family::Entity::find_by_id(claims.sid.clone().unwrap())
            .one(&h.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            family.last_ip.as_deref(),
            Some("127.0.0.1"),
            "{}",
            h.backend
        );
        let first = login.refresh_token().unwrap().clone();

        let refreshed = client
            .exchange_refresh_token(&first)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", h.backend));
        assert_ne!(refreshed.refresh_token().unwrap().secret(), first.secret());
        assert_eq!(
            h.gate
                .verify(refreshed.access_token().secret())
                .unwrap()
                .sid,
            claims.sid
        );

        let replay = client
            .exchange_refresh_token(&first)
            .request_async(&http)
            .await;
        match replay {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant);
            }
            other => panic!("{}: expected invalid_grant, got {other:?}", h.backend),
        }

        // Introspection and revocation, as the crate sends them.
        let session = client
            .exchange_password(
                &ResourceOwnerUsername::new("alice".into()),
                &ResourceOwnerPassword::new("wonderland".into()),
            )
            .request_async(&http)
            .await
            .unwrap();
        // The resource server (svc, allowed to introspect) asks about it.
        let resource_server = BasicClient::new(ClientId::new("svc".into()))
            .set_client_secret(ClientSecret::new(h.svc_secret.clone()))
            .set_introspection_url(
                IntrospectionUrl::new(format!("http://{addr}/introspect")).unwrap(),
            );
        let info = resource_server
            .introspect(session.access_token())
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", h.backend));
        assert!(info.active());
        assert_eq!(info.sub(), Some("alice"));
        assert_eq!(info.client_id().map(|c| c.as_str()), Some("web"));
        // The crate builds the RFC 7009 request but refuses to send it
        // over plain HTTP (RFC 7009 §2 requires TLS), so this test sends
        // the same form itself.
        assert!(matches!(
            client.revoke_token(StandardRevocableToken::RefreshToken(
                session.refresh_token().unwrap().clone(),
            )),
            Err(oauth2::ConfigurationError::InsecureUrl("revocation"))
        ));
        let revoke = Request::post(format!("http://{addr}/revoke"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic("web", &h.web_secret))
            .body(
                format!(
                    "token={}&token_type_hint=refresh_token",
                    session.refresh_token().unwrap().secret()
                )
                .into_bytes(),
            )
            .unwrap();
        assert_eq!(http(revoke).await.unwrap().status(), 200);
        let info = resource_server
            .introspect(session.access_token())
            .request_async(&http)
            .await
            .unwrap();
        assert!(
            !info.active(),
            "{}: the session's access token died",
            h.backend
        );
        server.abort();
    }
}
