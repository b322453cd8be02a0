//! The client metadata document resolver against real local HTTPS servers
//! (the test CA): the SSRF corpus refused with no request sent, hostile
//! answers refused, the cache within its bounds with errors never cached,
//! and 32 concurrent resolutions of one client id costing one fetch.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tollgate::client_metadata::{ClientMetadataError, ResolveError, Resolver};

use crate::common::scripted::{CA, Reply, Server, json as reply_json};

fn document(url: &str) -> String {
    json!({
        "client_id": url,
        "client_name": "Example MCP client",
        "redirect_uris": ["http://localhost/callback"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

/// A resolver that may reach the loopback test server.
fn for_tests() -> Resolver {
    Resolver::builder()
        .root_certificates(CA)
        .allow_special_use_addresses_for_tests()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_document_is_fetched_checked_and_kept() {
    let s = Server::start(true).await;
    let url = s.url("/client.json");
    s.route("/client.json", reply_json(document(&url)));
    let r = for_tests();
    let doc = r.resolve(&url).await.unwrap();
    assert_eq!(doc.client_name.as_deref(), Some("Example MCP client"));
    assert!(doc.redirect_uri_matches("http://localhost:49152/callback"));
    assert!(r.resolve(&url).await.is_ok());
    assert_eq!(s.hits("/client.json"), 1, "the second came from the cache");
    assert_eq!(
        Resolver::builder()
            .root_certificates(b"not a certificate")
            .build()
            .unwrap_err(),
        ResolveError::BadRootCertificate
    );
}

#[tokio::test]
async fn the_ssrf_corpus_is_refused_before_anything_is_sent() {
    // The default policy: public addresses only. The server would answer
    // every one of these, and is never asked.
    let s = Server::start(true).await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    s.route("/client.json", reply_json("{}"));
    let r = Resolver::builder().root_certificates(CA).build().unwrap();
    for host in [
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "[::1]".to_owned(),
        "[::ffff:127.0.0.1]".to_owned(),
        "[::ffff:7f00:1]".to_owned(),
    ] {
        let url = format!("https://{host}:{port}/client.json");
        assert_eq!(
            r.resolve(&url).await.unwrap_err(),
            ResolveError::Address,
            "{url}"
        );
    }
    // Private, link-local and the cloud metadata address, by literal: no
    // connection is even tried (nothing listens there).
    for host in [
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "[fd00::1]",
        "[fe80::1]",
        "0.0.0.0",
    ] {
        let url = format!("https://{host}/client.json");
        assert_eq!(
            r.resolve(&url).await.unwrap_err(),
            ResolveError::Address,
            "{url}"
        );
    }
    assert_eq!(s.hits("/client.json"), 0);
    // And the host policy, before anything else.
    let only = Resolver::builder()
        .allow_host(|h| h.ends_with(".trusted.example"))
        .build()
        .unwrap();
    assert_eq!(
        only.resolve("https://evil.example/client.json")
            .await
            .unwrap_err(),
        ResolveError::HostRefused
    );
}

#[tokio::test]
async fn hostile_answers_are_refused_and_never_cached() {
    let s = Server::start(true).await;
    let r = for_tests();
    let url = |p: &str| s.url(p);
    s.route("/moved.json", Reply::Redirect(url("/client.json")));
    s.route("/client.json", reply_json(document(&url("/client.json"))));
    s.route("/endless.json", Reply::Endless);
    s.route(
        "/huge.json",
        reply_json(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000_000))),
    );
    s.route("/drip.json", Reply::Drip);
    s.route("/html.json", reply_json("<html></html>"));
    // `client_id` one character off the URL.
    s.route("/off.json", reply_json(document(&url("/off.jsoN"))));
    s.route(
        "/broken.json",
        Reply::Json {
            status: 500,
            body: "{}".into(),
            cache_control: None,
        },
    );
    for (path, want) in [
        ("/moved.json", "fetch"),
        ("/endless.json", "large"),
        ("/huge.json", "large"),
        ("/drip.json", "fetch"),
        ("/html.json", "malformed"),
        ("/off.json", "mismatch"),
        ("/broken.json", "fetch"),
    ] {
        let err = r.resolve(&url(path)).await.unwrap_err();
        let ok = match want {
            "fetch" => matches!(err, ResolveError::Fetch(_)),
            "large" => err == ResolveError::Document(ClientMetadataError::TooLarge),
            "malformed" => err == ResolveError::Document(ClientMetadataError::Malformed),
            _ => err == ResolveError::Document(ClientMetadataError::ClientIdMismatch),
        };
        assert!(ok, "{path}: {err}");
    }
    assert_eq!(s.hits("/client.json"), 0, "the redirect was not followed");
    // An error is never cached: once the server is mended, it serves.
    s.route("/broken.json", reply_json(document(&url("/broken.json"))));
    assert!(r.resolve(&url("/broken.json")).await.is_ok());
    assert_eq!(s.hits("/broken.json"), 2);
    assert_eq!(r.cached(), 1);
}

#[tokio::test]
async fn max_age_is_honoured_within_the_bounds() {
    let s = Server::start(true).await;
    let url = s.url("/c.json");
    s.route(
        "/c.json",
        Reply::Json {
            status: 200,
            body: document(&url),
            cache_control: Some("max-age=0"),
        },
    );
    // max-age=0, lower bound 0: every resolution fetches.
    let r = Resolver::builder()
        .root_certificates(CA)
        .allow_special_use_addresses_for_tests()
        .cache_between(Duration::ZERO, Duration::from_secs(60))
        .build()
        .unwrap();
    r.resolve(&url).await.unwrap();
    r.resolve(&url).await.unwrap();
    assert_eq!(s.hits("/c.json"), 2);
    // The default lower bound (60 s) keeps it despite max-age=0.
    let r = for_tests();
    r.resolve(&url).await.unwrap();
    r.resolve(&url).await.unwrap();
    assert_eq!(s.hits("/c.json"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resolutions_of_one_client_share_one_fetch() {
    let s = Server::start(true).await;
    let url = s.url("/slow.json");
    s.route(
        "/slow.json",
        Reply::Slow(Duration::from_millis(300), document(&url)),
    );
    let r = for_tests();
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (r, url, barrier) = (r.clone(), url.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                r.resolve(&url).await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(s.hits("/slow.json"), 1);
}
