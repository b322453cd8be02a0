//! The MCP example over a real socket, driven as an MCP client of 2026
//! drives a server: refused, it discovers the authorization server through
//! the challenge and the two metadata documents, gets a token for this
//! resource with `client_credentials`, and uses the tools through rmcp's
//! own client (an independent implementation of the MCP transport) — until
//! the token is revoked.

use std::time::Duration;

use reqwest::{Client, StatusCode, header};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::common::quickstart::Server;

const AGENT: (&str, &str) = ("mcp-agent", "mcp-agent-secret");

/// `name="value"` from a `WWW-Authenticate` header (the values here are
/// URLs and scope tokens, never escaped).
fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].to_owned())
}

/// An MCP `initialize` over plain HTTP: what a client sends first.
pub(crate) async fn initialize(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = Client::new()
        .post(url)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "tollgate-test", "version": "0"}
            }
        }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

pub(crate) async fn get_json(url: &str) -> Value {
    let res = Client::new().get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_mcp_client_discovers_gets_a_token_calls_tools_and_is_cut_off_by_revocation() {
    let s = Server::example("mcp_server");
    let mcp = s.url("/mcp");

    // 1. Refused, with directions.
    let res = initialize(&mcp, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    let resource_metadata = param(&challenge, "resource_metadata").expect("resource_metadata");
    assert_eq!(param(&challenge, "scope").as_deref(), Some("tools:read"));

    // 2. The resource's metadata names the authorization server.
    let prm = get_json(&resource_metadata).await;
    assert_eq!(prm["resource"], mcp);
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();

    // 3. Its RFC 8414 metadata (path-inserted well-known URL), valid to
    // authlib, names the token endpoint.
    let asm = get_json(&format!("{issuer}/.well-known/oauth-authorization-server")).await;
    assert_eq!(asm["issuer"], issuer);
    crate::metadata::validate_with_authlib(&asm);
    let token_endpoint = asm["token_endpoint"].as_str().unwrap().to_owned();

    // 4. A token for this resource (RFC 8707).
    let res = Client::new()
        .post(&token_endpoint)
        .basic_auth(AGENT.0, Some(AGENT.1))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", mcp.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token_json: Value = res.json().await.unwrap();
    let token = token_json["access_token"].as_str().unwrap().to_owned();

    // 5. rmcp's client: initialize, list and call the tools. The tool
    // answers for the caller the gate verified.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(mcp.clone()).auth_header(token.clone()),
    );
    let client = tokio::time::timeout(Duration::from_secs(10), ().serve(transport))
        .await
        .expect("initialize does not hang")
        .expect("initialize succeeds with the token");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "whoami"), "{tools:?}");
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let text = serde_json::to_value(&result.content).unwrap().to_string();
    assert!(
        text.contains("mcp-agent via mcp-agent with scope tools:read"),
        "{text}"
    );

    // 6. The admin tools need scope `admin`: 403 naming it.
    let res = initialize(&s.url("/mcp/admin"), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert_eq!(
        param(challenge, "error").as_deref(),
        Some("insufficient_scope")
    );
    assert_eq!(param(challenge, "scope").as_deref(), Some("admin"));
    assert!(param(challenge, "resource_metadata").is_some());

    // 7. Revoked: the next call of the open session is refused, and the
    // client sees the challenge.
    let res = Client::new()
        .post(s.url("/revoke"))
        .basic_auth(AGENT.0, Some(AGENT.1))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let error = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect_err("a revoked token is refused");
    assert!(error.is_authorization_required(), "{error:?}");
    let challenge = error.auth_challenge().unwrap();
    assert_eq!(param(challenge, "error").as_deref(), Some("invalid_token"));
    assert_eq!(
        initialize(&mcp, Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
