//! Client ID Metadata Documents without I/O: each tolerance rule with the
//! fixture written from what such clients publish (tests/fixtures/cimd),
//! and every URL and document a strict reading must refuse.

use serde_json::{Value, json};
use tollgate::client_metadata::{
    ClientMetadataError, DocumentAuth, Tolerance, check_client_id_url, parse_document,
};

fn fixture(name: &str) -> (String, Vec<u8>) {
    let path = format!(
        "{}/tests/fixtures/cimd/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(path).unwrap();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    (doc["client_id"].as_str().unwrap().to_owned(), body)
}

#[test]
fn a_cli_with_a_portless_localhost_redirect_is_matched_on_any_port() {
    let (url, body) = fixture("cli-portless-localhost");
    let doc = parse_document(&url, &body).unwrap();
    assert_eq!(doc.auth, DocumentAuth::None);
    assert!(doc.tolerated.is_empty(), "{:?}", doc.tolerated);
    assert_eq!(doc.client_id_host, "cli.example.dev");
    for ok in [
        "http://localhost:53412/callback",
        "http://localhost/callback",
        "http://127.0.0.1:8976/callback",
    ] {
        assert!(doc.redirect_uri_matches(ok), "{ok}");
    }
    for bad in [
        "http://localhost:53412/callback/../evil",
        "http://localhost:53412/other",
        "https://localhost:53412/callback",
        "http://localhost.evil.example:53412/callback",
        "http://localhost:0/callback",
        "http://127.0.0.1:53412/callback#x",
    ] {
        assert!(!doc.redirect_uri_matches(bad), "{bad}");
    }
}

#[test]
fn a_public_client_listing_jwt_bearer_gets_only_what_it_may_use() {
    let (url, body) = fixture("desktop-jwt-bearer");
    let doc = parse_document(&url, &body).unwrap();
    assert_eq!(doc.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(doc.tolerated, [Tolerance::UnsupportedGrantTypesIgnored]);
}

#[test]
fn the_supported_methods_list_is_read_when_the_method_is_absent() {
    let (url, body) = fixture("auth-methods-supported");
    let doc = parse_document(&url, &body).unwrap();
    assert_eq!(doc.auth, DocumentAuth::None);
    assert_eq!(doc.tolerated, [Tolerance::AuthMethodFromSupportedList]);

    let (url, body) = fixture("minimal-no-auth-method");
    let doc = parse_document(&url, &body).unwrap();
    assert_eq!(doc.auth, DocumentAuth::None);
    assert_eq!(doc.tolerated, [Tolerance::AuthMethodAssumedNone]);
    assert_eq!(doc.grant_types, ["authorization_code"]);
    assert_eq!(doc.client_name, None);
}

#[test]
fn links_on_other_hosts_are_allowed_and_flagged() {
    let (url, body) = fixture("editor-foreign-logo");
    let doc = parse_document(&url, &body).unwrap();
    assert_eq!(doc.tolerated, [Tolerance::ForeignLinks]);
    assert_eq!(
        doc.logo_uri.as_deref(),
        Some("https://cdn.example-static.com/editor/logo.png")
    );
    // Without the foreign logo, nothing to flag.
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v.as_object_mut().unwrap().remove("logo_uri");
    let doc = parse_document(&url, v.to_string().as_bytes()).unwrap();
    assert!(doc.tolerated.is_empty());
    // A link that is not https is dropped, never shown.
    v["logo_uri"] = json!("javascript:alert(1)");
    let doc = parse_document(&url, v.to_string().as_bytes()).unwrap();
    assert_eq!(doc.logo_uri, None);
}

#[test]
fn client_id_urls_a_strict_reading_refuses() {
    assert!(check_client_id_url("https://app.example/client.json").is_ok());
    assert!(check_client_id_url("https://app.example:8443/oauth/client?v=1").is_ok());
    for bad in [
        "http://app.example/client.json",
        "https://app.example",
        "https://app.example/",
        "https://app.example/client.json#frag",
        "https://user@app.example/client.json",
        "https://user:pw@app.example/client.json",
        "https://app.example/a/../client.json",
        "https://app.example/./client.json",
        "https://app.example/a/%2E%2E/client.json",
        "https://app.example/a/%2e/client.json",
        "https://APP.example/client.json",
        "https://app.example/client json",
        "HTTPS://app.example/client.json",
        "",
        "client.json",
    ] {
        assert!(
            matches!(
                check_client_id_url(bad),
                Err(ClientMetadataError::ClientIdUrl(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn documents_a_strict_reading_refuses() {
    let url = "https://app.example/client.json";
    let base = json!({
        "client_id": url,
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    });
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        edit(&mut v);
        v.to_string().into_bytes()
    };
    assert!(parse_document(url, &with(&|_| {})).is_ok());
    let cases: Vec<(Vec<u8>, ClientMetadataError)> = vec![
        // One character off, or another document's id.
        (
            with(&|v| v["client_id"] = json!("https://app.example/client.jsoN")),
            ClientMetadataError::ClientIdMismatch,
        ),
        (
            with(&|v| v["client_id"] = json!("https://app.example/client.json/")),
            ClientMetadataError::ClientIdMismatch,
        ),
        (
            with(&|v| v["client_secret"] = json!("s3cret")),
            ClientMetadataError::SharedSecret,
        ),
        (
            with(&|v| v["client_secret_expires_at"] = json!(0)),
            ClientMetadataError::SharedSecret,
        ),
        (
            with(&|v| v["token_endpoint_auth_method"] = json!("client_secret_basic")),
            ClientMetadataError::SharedSecret,
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("token_endpoint_auth_method");
                v["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
            }),
            ClientMetadataError::SharedSecret,
        ),
        (
            with(&|v| v["redirect_uris"] = json!([])),
            ClientMetadataError::RedirectUri("the document lists none"),
        ),
        (
            with(&|v| v["redirect_uris"] = json!(["http://app.example/cb"])),
            ClientMetadataError::RedirectUri(
                "a redirect URI must be https, or http on a loopback host",
            ),
        ),
        (
            with(&|v| v["redirect_uris"] = json!(["https://app.example/cb#x"])),
            ClientMetadataError::RedirectUri("a redirect URI must not have a fragment"),
        ),
        (
            with(&|v| v["grant_types"] = json!(["client_credentials"])),
            ClientMetadataError::NoUsableGrant,
        ),
        (
            with(&|v| v["redirect_uris"] = json!("https://app.example/cb")),
            ClientMetadataError::Malformed,
        ),
        (b"<html>".to_vec(), ClientMetadataError::Malformed),
        (
            br#"{"client_id":"https://app.example/client.json","client_id":"x","redirect_uris":["https://app.example/cb"]}"#.to_vec(),
            ClientMetadataError::Malformed,
        ),
        (
            with(&|v| v["padding"] = json!("x".repeat(6000))),
            ClientMetadataError::TooLarge,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            parse_document(url, &body),
            Err(want.clone()),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}
