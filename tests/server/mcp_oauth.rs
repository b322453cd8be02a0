//! The MCP example as its own authorization server, driven by rmcp's own
//! OAuth client (an independent implementation of MCP's authorization
//! spec): the first 401 → the resource's metadata → the authorization
//! server's metadata → registration, by a Client ID Metadata Document
//! served by this test over TLS (the test CA), or by dynamic registration
//! when documents are off → `/authorize` → the login and consent pages,
//! answered by this test as the user's browser → code + PKCE → token →
//! the tools, answering for the signed-in user → a refresh that rotates →
//! the session revoked mid-session, and the open MCP session cut off.

use std::time::Duration;

use reqwest::{Client, StatusCode, header, redirect::Policy};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport,
        auth::{AuthorizationManager, AuthorizationRequest, AuthorizationSession},
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

use crate::{
    common::{
        quickstart::Server,
        scripted::{self, json as reply_json},
    },
    mcp::{get_json, initialize},
    quickstart_signin::{field, set_cookie},
};

const REDIRECT: &str = "http://127.0.0.1:51999/callback";

fn ca_file() -> String {
    format!("{}/tests/keys/test-ca.pem", env!("CARGO_MANIFEST_DIR"))
}

/// The user's browser: from the authorization URL through the login and
/// consent pages to the redirect back to the client. The consent page's
/// text, and where the browser is sent.
async fn browser(base: &str, auth_url: &str) -> (String, String) {
    let web = Client::builder().redirect(Policy::none()).build().unwrap();
    let res = web.get(auth_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_login = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let authorize_cookie = set_cookie(&res, "__Host-tollgate_authorize").unwrap();
    let res = web
        .get(format!("{base}{to_login}"))
        .header(header::COOKIE, &authorize_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csrf_cookie = set_cookie(&res, "__Host-quickstart_csrf").unwrap();
    let cookies = format!("{authorize_cookie}; {csrf_cookie}");
    let login = res.text().await.unwrap();
    let (id, csrf) = (field(&login, "authorization"), field(&login, "csrf"));
    let res = web
        .post(format!("{base}/login"))
        .header(header::COOKIE, &cookies)
        .form(&[
            ("authorization", id.as_str()),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", "wonderland"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let consent = res.text().await.unwrap();
    let res = web
        .post(format!("{base}/consent"))
        .header(header::COOKIE, &cookies)
        .form(&[
            ("authorization", id.as_str()),
            ("csrf", &csrf),
            ("subject", &field(&consent, "subject")),
            ("auth_time", &field(&consent, "auth_time")),
            ("grant", &field(&consent, "grant")),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    (consent, back)
}

/// The first 401 of `mcp`: its `WWW-Authenticate`.
async fn first_challenge(mcp: &str) -> String {
    let res = initialize(mcp, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned()
}

/// rmcp signs in with `request`; the consent page and the manager holding
/// the tokens.
async fn sign_in(s: &Server, request: AuthorizationRequest) -> (String, AuthorizationManager) {
    let mcp = s.url("/mcp");
    let challenge = first_challenge(&mcp).await;
    let mut manager = AuthorizationManager::new(mcp.as_str()).await.unwrap();
    let resolution = manager
        .resolve_metadata_from_challenge(Some(&challenge))
        .await
        .unwrap();
    manager.set_metadata(resolution.metadata);
    let session = AuthorizationSession::new(manager, request.with_scopes(["tools:read"]))
        .await
        .map_err(|(_, e)| e)
        .unwrap();
    let (consent, back) = browser(&s.base, session.get_authorization_url()).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    // rmcp checks `state` and the RFC 9207 `iss` before redeeming.
    session.handle_callback_url(&back).await.unwrap();
    (consent, session.auth_manager)
}

/// rmcp's MCP client on `mcp` with `token`: `whoami`'s answer, and the
/// client.
async fn whoami(
    mcp: &str,
    token: &str,
) -> (String, rmcp::service::RunningService<rmcp::RoleClient, ()>) {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(mcp.to_owned()).auth_header(token.to_owned()),
    );
    let client = tokio::time::timeout(Duration::from_secs(10), ().serve(transport))
        .await
        .expect("initialize does not hang")
        .expect("initialize succeeds with the token");
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    (
        serde_json::to_value(&result.content).unwrap().to_string(),
        client,
    )
}

/// The rest of the session, whoever registered: tools, a rotating
/// refresh, a revocation mid-session.
async fn use_the_session(s: &Server, manager: &AuthorizationManager, client_id: &str) {
    let mcp = s.url("/mcp");
    let token = manager.get_access_token().await.unwrap();
    let (text, _) = whoami(&mcp, &token).await;
    assert!(
        text.contains(&format!("alice via {client_id} with scope tools:read")),
        "{text}"
    );

    let (_, before) = manager.get_credentials().await.unwrap();
    let old_refresh = before.unwrap();
    manager.refresh_token().await.unwrap();
    let after = manager.get_credentials().await.unwrap().1.unwrap();
    use oauth2::TokenResponse as _;
    let (old, new) = (
        old_refresh.refresh_token().unwrap().secret().clone(),
        after.refresh_token().unwrap().secret().clone(),
    );
    assert_ne!(old, new, "the refresh rotated");
    let token = after.access_token().secret().clone();
    let (text, client) = whoami(&mcp, &token).await;
    assert!(text.contains("alice"), "{text}");

    // The user logs the client out (RFC 7009, a public client): the open
    // MCP session is refused at its next call.
    let res = Client::new()
        .post(s.url("/revoke"))
        .form(&[("token", new.as_str()), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let error = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect_err("the session was revoked");
    assert!(error.is_authorization_required(), "{error:?}");
}

#[tokio::test]
async fn rmcp_registers_by_metadata_document_signs_in_refreshes_and_is_logged_out() {
    let docs = scripted::Server::start(true).await;
    let doc_url = docs.url("/mcp-client.json");
    docs.route(
        "/mcp-client.json",
        reply_json(
            json!({
                "client_id": doc_url,
                "client_name": "rmcp test client",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            })
            .to_string(),
        ),
    );
    let ca = ca_file();
    let s = Server::example_with(
        "mcp_server",
        &[
            ("TOLLGATE_CIMD_CA_FILE", ca.as_str()),
            ("TOLLGATE_CIMD_ALLOW_LOOPBACK_FOR_TESTS", "on"),
        ],
    );
    let asm = get_json(&s.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(asm["client_id_metadata_document_supported"], true);

    let (consent, manager) = sign_in(
        &s,
        AuthorizationRequest::new(REDIRECT).with_client_metadata_url(doc_url.clone()),
    )
    .await;
    assert!(consent.contains("metadata document"), "{consent}");
    assert!(
        consent.contains(r#"<strong id="client-host">localhost</strong>"#),
        "{consent}"
    );
    assert!(
        consent.contains(r#"<strong id="redirect-host">127.0.0.1</strong>"#),
        "{consent}"
    );
    assert!(consent.contains("loopback-warning"), "{consent}");
    assert_eq!(docs.hits("/mcp-client.json"), 1);
    use_the_session(&s, &manager, &doc_url).await;
}

#[tokio::test]
async fn rmcp_falls_back_to_dynamic_registration_when_documents_are_off() {
    let s = Server::example_with("mcp_server", &[("TOLLGATE_CIMD", "off")]);
    let (consent, manager) = sign_in(
        &s,
        AuthorizationRequest::new(REDIRECT).with_client_name("rmcp dcr client"),
    )
    .await;
    assert!(consent.contains("registered itself"), "{consent}");
    assert!(consent.contains("rmcp dcr client"), "{consent}");
    let (client_id, _) = manager.get_credentials().await.unwrap();
    use_the_session(&s, &manager, &client_id).await;
}

/// A client in a web page (MCP Inspector) reads the metadata, registers and
/// redeems from the browser: CORS for any origin, never with credentials.
#[tokio::test]
async fn browser_based_mcp_clients_may_call_the_authorization_server() {
    let s = Server::example("mcp_server");
    let origin = "http://localhost:6274";
    let preflight = Client::new()
        .request(reqwest::Method::OPTIONS, s.url("/register"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    let h = preflight.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let res = Client::new()
            .get(s.url(path))
            .header(header::ORIGIN, origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
    }
    // The login pages are not for other origins.
    let res = Client::new()
        .request(reqwest::Method::OPTIONS, s.url("/login"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
