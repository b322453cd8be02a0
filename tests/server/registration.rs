//! Clients that register themselves, over real sockets per backend: a
//! Client ID Metadata Document served over TLS (the test CA) names a
//! public client at `/authorize`, which signs in with a code and PKCE and
//! refreshes; the consent page learns what kind of client it is, its
//! host, its links and the redirect host; a changed document asks for
//! consent again; refused documents get an `invalid_client` page and no
//! row. Dynamic registration (RFC 7591): the §3.2 answer, loopback port
//! drift, an initial access token, the per-IP limit, hostile bodies, and
//! the janitor deleting clients that are never used.

use std::time::Duration;

use axum::{extract::State, response::IntoResponse};
use http::{HeaderMap, StatusCode, Uri, header};
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde_json::{Value, json};
use tollgate::{
    client_metadata::Resolver,
    refresh::RefreshPolicy,
    store::{
        self,
        cleanup::Janitor,
        clients::{NewClient, Registration},
    },
    time::Clock,
    token_endpoint::{
        Approve, Authorization, Authorizer, DynamicRegistration, Limit, MetadataDocuments,
        TokenEndpoint,
    },
};

use crate::common::{
    scripted::{CA, Reply, Server, json as reply_json},
    store::{Backend, Harness, harness, per_backend},
};

/// The application's page: approves as alice (remembering the consent
/// with `&remember`), unless the consent is already remembered.
async fn login(
    State(authorizer): State<Authorizer>,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    let query = uri.query().unwrap_or_default();
    let id = query
        .split('&')
        .find_map(|p| p.strip_prefix("authorization="))
        .unwrap_or_default();
    let mut approve = Approve::new("alice");
    if query.split('&').any(|p| p == "remember") {
        approve = approve.remember();
    }
    match authorizer.complete(&headers, id, approve).await {
        Ok(r) => r.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

struct Site {
    h: Harness,
    base: String,
    authorizer: Authorizer,
    http: reqwest::Client,
}

impl Site {
    async fn new(b: Backend, resolver: Resolver, registration: DynamicRegistration) -> Self {
        let documents =
            MetadataDocuments::new(resolver, "read write").resources(["https://api.example"]);
        Self::with(b, documents, registration).await
    }

    async fn with(
        b: Backend,
        documents: MetadataDocuments,
        registration: DynamicRegistration,
    ) -> Self {
        let h = harness(b, RefreshPolicy::default()).await;
        let endpoint = TokenEndpoint::builder(h.issuer.clone())
            .authorization(Authorization::new("/login"))
            .metadata_documents(documents)
            .dynamic_registration(registration)
            .janitor_elsewhere()
            .build()
            .unwrap();
        let authorizer = endpoint.authorizer().unwrap();
        let app = axum::Router::new()
            .route_service("/token", endpoint.clone())
            .route_service("/authorize", endpoint.authorization_endpoint().unwrap())
            .route_service("/register", endpoint.registration_endpoint().unwrap())
            .route_service(endpoint.metadata().well_known_path(), endpoint.metadata())
            .route("/login", axum::routing::get(login))
            .with_state(authorizer.clone());
        let addr = crate::common::serve(app).await;
        Self {
            h,
            base: format!("http://{addr}"),
            authorizer,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `/authorize` for `client_id` at `redirect`: the status and where it
    /// sends the browser (or the error page), the browser cookie.
    async fn authorize(
        &self,
        client_id: &str,
        redirect: &str,
        pkce: &PkceCodeChallenge,
    ) -> (u16, String, Option<String>) {
        let res = self
            .http
            .get(format!("{}/authorize", self.base))
            .query(&[
                ("client_id", client_id),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("code_challenge", pkce.as_str()),
                ("code_challenge_method", "S256"),
                ("state", "st"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
        let text = match res.headers().get(header::LOCATION) {
            Some(l) => l.to_str().unwrap().to_owned(),
            None => res.text().await.unwrap(),
        };
        (status, text, cookie)
    }

    /// What the consent page of the pending request at `location` shows.
    async fn pending(
        &self,
        location: &str,
        cookie: &str,
    ) -> tollgate::token_endpoint::PendingAuthorization {
        let id = location.strip_prefix("/login?authorization=").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, cookie.parse().unwrap());
        self.authorizer.pending(&headers, id).await.unwrap()
    }

    /// Signs `client_id` in at `redirect`: the token response.
    async fn sign_in(&self, client_id: &str, redirect: &str, remember: bool) -> Value {
        let (pkce, verifier) = PkceCodeChallenge::new_random_sha256();
        let (status, location, cookie) = self.authorize(client_id, redirect, &pkce).await;
        assert_eq!(status, 303, "{location}");
        let extra = if remember { "&remember" } else { "" };
        let res = self
            .http
            .get(format!("{}{location}{extra}", self.base))
            .header(header::COOKIE, cookie.unwrap())
            .send()
            .await
            .unwrap();
        let back = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(back.starts_with(redirect), "{back}");
        let code = back
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("code="))
            .unwrap()
            .to_owned();
        self.redeem(client_id, redirect, &code, &verifier).await
    }

    async fn redeem(
        &self,
        client_id: &str,
        redirect: &str,
        code: &str,
        verifier: &PkceCodeVerifier,
    ) -> Value {
        let (status, body) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier.secret()),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or_default())
    }

    async fn register(&self, body: &Value, token: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut req = self.http.post(format!("{}/register", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        (status, headers, res.json().await.unwrap_or_default())
    }

    async fn metadata(&self) -> Value {
        crate::mcp::get_json(&format!(
            "{}/.well-known/oauth-authorization-server",
            self.base
        ))
        .await
    }
}

/// A resolver for the loopback test server, keeping nothing (each
/// `/authorize` fetches), unless `keep`.
fn resolver(keep: bool) -> Resolver {
    let max = if keep {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(1)
    };
    Resolver::builder()
        .root_certificates(CA)
        .allow_special_use_addresses_for_tests()
        .cache_between(Duration::ZERO, max)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A document as an MCP CLI publishes it: a port-less localhost redirect,
/// a logo on its CDN.
fn document(url: &str, redirect: &str) -> String {
    json!({
        "client_id": url,
        "client_name": "Example CLI",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "logo_uri": "https://cdn.example/logo.png",
    })
    .to_string()
}

fn claims(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

per_backend! {
    #[tokio::test]
    async fn a_metadata_document_client_signs_in_and_refreshes(b) {
        let docs = Server::start(true).await;
        let url = docs.url("/client.json");
        docs.route("/client.json", reply_json(document(&url, "http://localhost/callback")));
        let site = Site::new(b, resolver(false), DynamicRegistration::open("read")).await;

        let meta = site.metadata().await;
        assert_eq!(meta["client_id_metadata_document_supported"], true);
        assert!(meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none")));

        // The port the CLI got, against the document's port-less entry.
        let redirect = "http://localhost:49152/callback";
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        let (status, location, cookie) = site.authorize(&url, redirect, &pkce).await;
        assert_eq!(status, 303, "{location}");
        let pending = site.pending(&location, &cookie.unwrap()).await;
        assert_eq!(pending.registration, Registration::MetadataDocument);
        assert_eq!(pending.client_id, url);
        assert_eq!(pending.client_name, "Example CLI");
        assert_eq!(pending.client_id_host.as_deref(), Some("localhost"));
        assert_eq!(pending.redirect_host, "localhost");
        assert!(pending.loopback);
        assert_eq!(pending.logo_uri.as_deref(), Some("https://cdn.example/logo.png"));
        assert!(pending.links_elsewhere, "the logo is on another host");
        assert_eq!(pending.scopes, ["read", "write"]);

        let tokens = site.sign_in(&url, redirect, false).await;
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["client_id"], json!(url));
        // A refresh needs no fetch: the client is in the store.
        let fetched = docs.hits("/client.json");
        let (status, refreshed) = site
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &url),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ])
            .await;
        assert_eq!(status, 200, "{refreshed}");
        assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
        assert_eq!(docs.hits("/client.json"), fetched);
        let row = store::clients::find(&site.h.db, &url).await.unwrap().unwrap();
        assert_eq!(row.registration, Registration::MetadataDocument);
        assert!(!row.is_confidential());
        assert_eq!(row.resources, ["https://api.example"]);
    }
}

per_backend! {
    #[tokio::test]
    async fn a_changed_document_asks_for_consent_again(b) {
        let docs = Server::start(true).await;
        let url = docs.url("/client.json");
        docs.route("/client.json", reply_json(document(&url, "https://app.example/cb")));
        let site = Site::new(b, resolver(false), DynamicRegistration::open("read")).await;
        site.sign_in(&url, "https://app.example/cb", true).await;
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        let (_, location, cookie) = site.authorize(&url, "https://app.example/cb", &pkce).await;
        let pending = site.pending(&location, &cookie.unwrap()).await;
        assert!(site.authorizer.remembered_consent(&pending, "alice").await.unwrap());

        // The document now sends the answer elsewhere.
        docs.route("/client.json", reply_json(document(&url, "https://elsewhere.example/cb")));
        let (status, page, _) = site.authorize(&url, "https://app.example/cb", &pkce).await;
        assert_eq!(status, 400, "the old redirect is no longer the client's");
        assert!(page.contains("redirect_uri"), "{page}");
        let (status, location, cookie) =
            site.authorize(&url, "https://elsewhere.example/cb", &pkce).await;
        assert_eq!(status, 303);
        let pending = site.pending(&location, &cookie.unwrap()).await;
        assert_eq!(pending.redirect_host, "elsewhere.example");
        assert!(!site.authorizer.remembered_consent(&pending, "alice").await.unwrap());
    }
}

per_backend! {
    #[tokio::test]
    async fn refused_documents_get_an_invalid_client_page_and_no_row(b) {
        let docs = Server::start(true).await;
        let port = docs.base.rsplit(':').next().unwrap().to_owned();
        let mismatch = docs.url("/mismatch.json");
        docs.route("/mismatch.json", reply_json(document(&format!("{mismatch}x"), "https://a.example/cb")));
        let secret = docs.url("/secret.json");
        docs.route(
            "/secret.json",
            reply_json(
                json!({"client_id": secret, "redirect_uris": ["https://a.example/cb"],
                       "token_endpoint_auth_method": "client_secret_basic"})
                    .to_string(),
            ),
        );
        let jwt = docs.url("/jwt.json");
        docs.route(
            "/jwt.json",
            reply_json(
                json!({"client_id": jwt, "redirect_uris": ["https://a.example/cb"],
                       "token_endpoint_auth_method": "private_key_jwt"})
                .to_string(),
            ),
        );
        docs.route("/moved.json", Reply::Redirect(docs.url("/client.json")));
        docs.route("/missing.json", Reply::Json { status: 500, body: "{}".into(), cache_control: None });
        // The production policy: public addresses only.
        let strict = Resolver::builder().root_certificates(CA).build().unwrap();
        let site = Site::new(b, strict, DynamicRegistration::open("read")).await;
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        for (client_id, says) in [
            (format!("https://127.0.0.1:{port}/client.json"), "could not be fetched"),
            (format!("https://localhost:{port}/client.json"), "could not be fetched"),
            ("https://169.254.169.254/latest/meta-data".to_owned(), "could not be fetched"),
            ("https://[::ffff:127.0.0.1]/client.json".to_owned(), "could not be fetched"),
            ("https://app.example/".to_owned(), "not a metadata document URL"),
            (format!("https://app.example/{}", "a".repeat(120)), "longer"),
        ] {
            let (status, page, _) = site.authorize(&client_id, "https://a.example/cb", &pkce).await;
            assert_eq!(status, 400, "{client_id}");
            assert!(page.starts_with("invalid_client") && page.contains(says), "{client_id}: {page}");
            assert!(store::clients::find(&site.h.db, &client_id).await.unwrap().is_none());
        }
        assert_eq!(docs.hits("/client.json"), 0, "nothing was sent to a forbidden address");

        // Served from loopback, with the test allowance: the document's
        // own faults.
        let site2 = Site::new(
            Backend::sqlite_memory().await,
            resolver(false),
            DynamicRegistration::open("read"),
        )
        .await;
        for (client_id, says) in [
            (mismatch.clone(), "client_id"),
            (secret.clone(), "shared secret"),
            (jwt.clone(), "private_key_jwt"),
            (docs.url("/moved.json"), "could not be fetched"),
            (docs.url("/missing.json"), "could not be fetched"),
        ] {
            let (status, page, _) = site2.authorize(&client_id, "https://a.example/cb", &pkce).await;
            assert_eq!(status, 400, "{client_id}");
            assert!(page.starts_with("invalid_client") && page.contains(says), "{client_id}: {page}");
            assert!(store::clients::find(&site2.h.db, &client_id).await.unwrap().is_none());
        }
        assert_eq!(docs.hits("/client.json"), 0, "the redirect was not followed");

        // An operator's registration of a URL-shaped id wins: no fetch.
        let id = docs.url("/registered.json");
        let mut registered = NewClient::public(id.clone(), "read");
        registered.redirect_uris = vec!["https://a.example/cb".into()];
        store::clients::register(&site.h.db, registered, site.h.clock.now()).await.unwrap();
        let (status, location, _) = site.authorize(&id, "https://a.example/cb", &pkce).await;
        assert_eq!(status, 303, "{location}");
        assert_eq!(docs.hits("/registered.json"), 0);
    }
}

per_backend! {
    #[tokio::test]
    async fn a_client_registers_itself_and_signs_in(b) {
        let site = Site::new(b, resolver(true), DynamicRegistration::open("read write")).await;
        let meta = site.metadata().await;
        assert_eq!(meta["registration_endpoint"], json!(format!("{}/register", crate::common::ISS)));

        let (status, headers, body) = site
            .register(
                &json!({
                    "client_name": "Desktop editor",
                    "redirect_uris": ["http://127.0.0.1:33418/callback"],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                    "scope": "read admin",
                }),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let client_id = body["client_id"].as_str().unwrap().to_owned();
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert_eq!(body["scope"], "read", "narrowed to what this server allows");
        assert_eq!(body["redirect_uris"], json!(["http://127.0.0.1:33418/callback"]));
        assert!(body.get("client_secret").is_none());
        assert!(body["client_id_issued_at"].as_u64().unwrap() > 1_700_000_000);

        // The editor restarted on another port.
        let redirect = "http://127.0.0.1:40001/callback";
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        let (status, location, cookie) = site.authorize(&client_id, redirect, &pkce).await;
        assert_eq!(status, 303, "{location}");
        let pending = site.pending(&location, &cookie.unwrap()).await;
        assert_eq!(pending.registration, Registration::Dynamic);
        assert_eq!(pending.client_name, "Desktop editor");
        assert_eq!(pending.client_id_host, None);
        let tokens = site.sign_in(&client_id, redirect, false).await;
        assert_eq!(tokens["scope"], "read");

        // A confidential client may not register by default.
        let (status, _, body) = site
            .register(
                &json!({"redirect_uris": ["https://a.example/cb"],
                        "token_endpoint_auth_method": "client_secret_basic"}),
                None,
            )
            .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")));
        let (status, _, body) = site.register(&json!({"redirect_uris": ["http://evil.example/cb"]}), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect_uri")));
        // Not JSON, and too large: refused, nothing stored.
        let clients = store::clients::list(&site.h.db).await.unwrap().len();
        let res = site
            .http
            .post(format!("{}/register", site.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("redirect_uris=https://a.example/cb")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let res = site.http.get(format!("{}/register", site.base)).send().await.unwrap();
        assert_eq!((res.status().as_u16(), res.headers()[header::ALLOW].to_str().unwrap()), (405, "POST"));
        let huge = json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(40_000)});
        let (status, _, _) = site.register(&huge, None).await;
        assert_eq!(status, 400);
        assert_eq!(store::clients::list(&site.h.db).await.unwrap().len(), clients);
    }
}

per_backend! {
    #[tokio::test]
    async fn registration_is_gated_limited_and_unused_clients_expire(b) {
        let site = Site::new(
            b,
            resolver(true),
            DynamicRegistration::with_initial_access_token("initial-token-0123456789", "read")
                .per_ip(Limit::new(3, Duration::from_secs(3600))),
        )
        .await;
        let body = json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"});
        let (status, headers, _) = site.register(&body, None).await;
        assert_eq!(status, 401);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"tollgate\"");
        let (status, headers, _) = site.register(&body, Some("wrong")).await;
        assert_eq!(status, 401);
        assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));

        let mut ids = Vec::new();
        for _ in 0..3 {
            let (status, _, answer) = site.register(&body, Some("initial-token-0123456789")).await;
            assert_eq!(status, 201, "{answer}");
            ids.push(answer["client_id"].as_str().unwrap().to_owned());
        }
        let (status, headers, answer) = site.register(&body, Some("initial-token-0123456789")).await;
        assert_eq!((status, answer["error"].as_str()), (429, Some("too_many_requests")));
        assert!(headers.contains_key(header::RETRY_AFTER));

        // One of them signs in; the others are never used.
        site.sign_in(&ids[0], "https://a.example/cb", false).await;
        let janitor = Janitor::builder(site.h.db.clone())
            .unused_client_ttl(Duration::from_secs(86_400))
            .build();
        let now = site.h.clock.now();
        assert_eq!(janitor.run_once(now).await.unwrap().clients, 0, "not yet");
        let later = now + Duration::from_secs(2 * 86_400);
        assert_eq!(janitor.run_once(later).await.unwrap().clients, 2);
        assert!(store::clients::find(&site.h.db, &ids[0]).await.unwrap().is_some(), "it has a session");
        assert!(store::clients::find(&site.h.db, &ids[1]).await.unwrap().is_none());
        // Operators' clients are never touched.
        assert!(store::clients::find(&site.h.db, "web").await.unwrap().is_some());
    }
}

per_backend! {
    #[tokio::test]
    async fn thirty_two_concurrent_first_authorizations_fetch_once_and_record_one_client(b) {
        let docs = Server::start(true).await;
        let url = docs.url("/client.json");
        docs.route(
            "/client.json",
            Reply::Slow(
                Duration::from_millis(200),
                document(&url, "http://127.0.0.1/callback"),
            ),
        );
        let site = Site::new(b, resolver(true), DynamicRegistration::open("read")).await;
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (http, base, url) = (site.http.clone(), site.base.clone(), url.clone());
            let challenge = pkce.as_str().to_owned();
            all.spawn(async move {
                http.get(format!("{base}/authorize"))
                    .query(&[
                        ("client_id", url.as_str()),
                        ("redirect_uri", "http://127.0.0.1:5000/callback"),
                        ("response_type", "code"),
                        ("code_challenge", &challenge),
                        ("code_challenge_method", "S256"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
        }
        for status in all.join_all().await {
            assert_eq!(status, 303);
        }
        assert_eq!(docs.hits("/client.json"), 1, "one fetch for all");
        let rows = store::clients::list(&site.h.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.client_id == url)
            .count();
        assert_eq!(rows, 1);
        // Never signed in with: its row goes once unused (its document is
        // fetched again if it comes back).
        let janitor = Janitor::builder(site.h.db.clone())
            .unused_client_ttl(Duration::from_secs(86_400))
            .build();
        let later = site.h.clock.now() + Duration::from_secs(2 * 86_400);
        assert_eq!(janitor.run_once(later).await.unwrap().clients, 1);
        assert!(store::clients::find(&site.h.db, &url).await.unwrap().is_none());
    }
}

per_backend! {
    #[tokio::test]
    async fn the_servers_settings_for_such_clients_are_applied(b) {
        // Documents: localhost on any port turned off, DPoP required.
        let docs = Server::start(true).await;
        let url = docs.url("/cli.json");
        docs.route("/cli.json", reply_json(document(&url, "http://localhost/callback")));
        let documents = MetadataDocuments::new(resolver(true), "read")
            .localhost_any_port(false)
            .dpop_bound_access_tokens();
        let registration = DynamicRegistration::open("read")
            .resources(["https://api.example"])
            .allow_confidential();
        let site = Site::with(b, documents, registration).await;
        let (pkce, _) = PkceCodeChallenge::new_random_sha256();
        let (status, page, _) = site
            .authorize(&url, "http://localhost:49152/callback", &pkce)
            .await;
        assert_eq!(status, 400, "no other port for localhost: {page}");
        let (status, location, _) = site.authorize(&url, "http://localhost/callback", &pkce).await;
        assert_eq!(status, 303, "{location}");
        let row = store::clients::find(&site.h.db, &url).await.unwrap().unwrap();
        assert!(row.dpop_bound_access_tokens && !row.allow_localhost_redirect);

        // DCR: a confidential client gets a secret that authenticates it,
        // and the server's resources.
        let (status, _, body) = site
            .register(
                &json!({"redirect_uris": ["https://app.example/cb"],
                        "token_endpoint_auth_method": "client_secret_post"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(body["client_secret_expires_at"], 0);
        let (id, secret) = (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        );
        let row = store::clients::find(&site.h.db, &id).await.unwrap().unwrap();
        assert!(row.is_confidential());
        assert_eq!(row.resources, ["https://api.example"]);
        let redeem = |secret: String| {
            let id = id.clone();
            let site = &site;
            async move {
                site.token(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("code", "not-a-code"),
                    ("redirect_uri", "https://app.example/cb"),
                    ("code_verifier", &"v".repeat(43)),
                ])
                .await
            }
        };
        let (status, body) = redeem(secret).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "authenticated");
        let (status, body) = redeem("wrong".into()).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    }
}
