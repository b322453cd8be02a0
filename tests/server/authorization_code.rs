//! The authorization code grant over real sockets: `/authorize`, the
//! application's own login page finishing through the `Authorizer`, and
//! `/token grant_type=authorization_code`, driven by the `oauth2` crate's
//! own authorization-code + PKCE flow; then what an attacker tries —
//! an open-redirect corpus, PKCE missing, `plain` or wrong, a code
//! replayed (its session dies at once, gate included), late, or another
//! client's, a pending id used twice, late, or from another browser —
//! and 32 concurrent redemptions of one code, per backend.

use std::{sync::Arc, time::Duration};

use sea_orm::EntityTrait;

use axum::{extract::State, response::IntoResponse};
use http::{HeaderMap, StatusCode, Uri, header};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponseType},
};
use tollgate::{
    refresh::RefreshPolicy,
    store::clients::NewClient,
    time::Clock,
    token_endpoint::{Approve, Authorization, AuthorizeError, Authorizer, TokenEndpoint},
};

use crate::{
    common::{
        ISS,
        store::{Backend, Harness, harness, per_backend},
    },
    oauth2_client::http,
};

const NATIVE: &str = "http://127.0.0.1/callback";
const PORTAL: &str = "https://portal.example/cb";

/// A server with `/token`, `/authorize` and the application's `/login`,
/// which signs everyone in as alice (the test plays the user who already
/// typed a password) and approves, or denies with `?deny`.
struct Site {
    h: Harness,
    base: String,
    authorizer: Authorizer,
    http: reqwest::Client,
}

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
    let answer = if query.split('&').any(|p| p == "deny") {
        authorizer.deny(&headers, id).await
    } else {
        let at = tollgate::time::SystemClock.now();
        let mut approve = Approve::new("alice").auth_time(at).acr("urn:pwd", ["pwd"]);
        if query.split('&').any(|p| p == "remember") {
            approve = approve.remember();
        }
        authorizer.complete(&headers, id, approve).await
    };
    match answer {
        Ok(redirect) => redirect.into_response(),
        Err(AuthorizeError::UnknownRequest) => (StatusCode::BAD_REQUEST, "unknown").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

impl Site {
    async fn new(b: Backend) -> Self {
        let h = harness(b, RefreshPolicy::default()).await;
        let now = h.clock.now();
        let mut native = NewClient::public("native", "read write");
        native.redirect_uris = vec![NATIVE.into()];
        tollgate::store::clients::register(&h.db, native, now)
            .await
            .unwrap();
        let mut portal = NewClient::confidential("portal", "read");
        portal.redirect_uris = vec![PORTAL.into(), "https://portal.example/other".into()];
        let portal_secret = tollgate::store::clients::register(&h.db, portal, now)
            .await
            .unwrap()
            .unwrap();
        assert!(!portal_secret.is_empty());
        let endpoint = TokenEndpoint::builder(h.issuer.clone())
            .authorization(Authorization::new("/login"))
            .dpop(tollgate::dpop::Dpop::builder().build().unwrap())
            .janitor_elsewhere()
            .build()
            .unwrap();
        let authorizer = endpoint.authorizer().unwrap();
        let app = axum::Router::new()
            .route_service("/token", endpoint.clone())
            .route_service("/authorize", endpoint.authorization_endpoint().unwrap())
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

    fn oauth2(
        &self,
        redirect: &str,
    ) -> BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        BasicClient::new(ClientId::new("native".into()))
            .set_auth_uri(AuthUrl::new(format!("{}/authorize", self.base)).unwrap())
            .set_token_uri(TokenUrl::new(format!("{}/token", self.base)).unwrap())
            .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
    }

    /// GET `url` with `cookie`; the status, `Location` and `Set-Cookie`.
    async fn get(&self, url: &str, cookie: Option<&str>) -> (u16, Option<String>, Option<String>) {
        let mut req = self.http.get(url);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = req.send().await.unwrap();
        let header = |name| {
            res.headers()
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
        };
        (
            res.status().as_u16(),
            header(header::LOCATION),
            header(header::SET_COOKIE),
        )
    }

    /// `/authorize` with `query`: the pending id and the browser cookie.
    async fn start(&self, query: &str) -> (String, String) {
        let (status, location, cookie) = self
            .get(&format!("{}/authorize?{query}", self.base), None)
            .await;
        assert_eq!(status, 303, "{location:?}");
        let location = location.unwrap();
        let id = location
            .strip_prefix("/login?authorization=")
            .unwrap_or_else(|| panic!("{location}"))
            .to_owned();
        let cookie = cookie.unwrap();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("Secure")
                && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        (id, cookie.split(';').next().unwrap().to_owned())
    }

    /// The application's page approves `id` in the browser holding
    /// `cookie`: where the browser is sent.
    async fn approve(&self, id: &str, cookie: &str) -> (u16, Option<String>) {
        let (status, location, _) = self
            .get(
                &format!("{}/login?authorization={id}", self.base),
                Some(cookie),
            )
            .await;
        (status, location)
    }

    async fn post(&self, body: String) -> (u16, serde_json::Value) {
        self.post_with(body, None).await
    }

    /// POST `/token`, with a DPoP proof when given.
    async fn post_with(&self, body: String, dpop: Option<String>) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .post(format!("{}/token", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(proof) = dpop {
            req = req.header("dpop", proof);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or_default())
    }
}

/// The query parameters of a redirect.
fn params(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url_decode(query)
}

fn url_decode(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = percent_decode(v);
            (k.to_owned(), v)
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn param<'a>(all: &'a [(String, String)], name: &str) -> Option<&'a str> {
    all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn challenge() -> (PkceCodeChallenge, PkceCodeVerifier) {
    PkceCodeChallenge::new_random_sha256()
}

/// A code for `native` at `redirect`, and its verifier.
async fn code_for(site: &Site, redirect: &str) -> (String, PkceCodeVerifier) {
    let (pkce, verifier) = challenge();
    let (url, _) = site
        .oauth2(redirect)
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(pkce)
        .url();
    let query = url.query().unwrap().to_owned();
    let (id, cookie) = site.start(&query).await;
    let (_, location) = site.approve(&id, &cookie).await;
    let location = location.unwrap();
    (
        param(&params(&location), "code").unwrap().to_owned(),
        verifier,
    )
}

per_backend! {
    #[tokio::test]
    async fn the_oauth2_crate_signs_in_with_a_code_and_pkce(b) {
        let site = Site::new(b).await;
        let redirect = "http://127.0.0.1:51234/callback";
        let client = site.oauth2(redirect);
        let (pkce, verifier) = challenge();
        let (url, csrf) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read".into()))
            .set_pkce_challenge(pkce)
            .url();
        let (id, cookie) = site.start(url.query().unwrap()).await;

        // What the consent page shows.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, cookie.parse().unwrap());
        let pending = site.authorizer.pending(&headers, &id).await.unwrap();
        assert_eq!(pending.client_id, "native");
        assert_eq!(pending.redirect_uri, redirect);
        assert_eq!(pending.redirect_host, "127.0.0.1");
        assert!(pending.loopback);
        assert_eq!(pending.scopes, ["read"]);

        let (status, location) = site.approve(&id, &cookie).await;
        assert_eq!(status, 303);
        let location = location.unwrap();
        assert!(location.starts_with(&format!("{redirect}?")), "{location}");
        let back = params(&location);
        // RFC 9207: the answer names its issuer; the state comes back.
        assert_eq!(param(&back, "iss"), Some(ISS));
        assert_eq!(param(&back, "state"), Some(csrf.secret().as_str()));
        let code = param(&back, "code").unwrap();
        assert_eq!(code.len(), 43, "256 bits, base64url");

        let tokens = client
            .exchange_code(AuthorizationCode::new(code.into()))
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", site.h.backend));
        assert_eq!(tokens.scopes().unwrap()[0].as_str(), "read");
        let access = tokens.access_token().secret().clone();
        let claims = site.h.gate.verify(&access).unwrap();
        assert_eq!((claims.sub.as_str(), claims.client_id.as_deref().unwrap()), ("alice", "native"));
        // How alice signed in, as the login page approved (RFC 9068 §2.2.1).
        assert!(claims.auth_time.is_some());
        assert_eq!(claims.acr.as_deref(), Some("urn:pwd"));
        assert_eq!(claims.amr, Some(vec!["pwd".to_owned()]));
        // An ordinary session: it rotates, and a refresh keeps the
        // original sign-in, not the refresh's time.
        site.h.clock.advance(Duration::from_secs(120));
        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .request_async(&http)
            .await
            .unwrap();
        let again = site.h.gate.verify(refreshed.access_token().secret()).unwrap();
        assert_eq!(again.sid, claims.sid);
        assert_eq!((again.auth_time, again.acr, again.amr), (claims.auth_time, claims.acr.clone(), claims.amr.clone()));
        assert!(again.iat > claims.iat);

        // The code again: refused, and the session it started ends at
        // once, at the gate too (RFC 6749 §4.1.2).
        let (again_pkce, again_verifier) = challenge();
        drop(again_pkce);
        let replay = client
            .exchange_code(AuthorizationCode::new(code.into()))
            .set_pkce_verifier(again_verifier)
            .request_async(&http)
            .await;
        assert!(matches!(replay, Err(RequestTokenError::ServerResponse(ref e)) if *e.error() == BasicErrorResponseType::InvalidGrant), "{replay:?}");
        assert!(!site.h.accepts(&access), "{}: the code's session still works", site.h.backend);
        assert!(!site.h.accepts(refreshed.access_token().secret()));
        let after = client
            .exchange_refresh_token(refreshed.refresh_token().unwrap())
            .request_async(&http)
            .await;
        assert!(after.is_err(), "{}", site.h.backend);
    }
}

per_backend! {
    #[tokio::test]
    async fn codes_and_pending_ids_are_refused_when_misused(b) {
        let site = Site::new(b).await;
        let token = |code: &str, verifier: &str, redirect: &str| {
            format!("grant_type=authorization_code&client_id=native&code={code}&code_verifier={verifier}&redirect_uri={}", redirect.replace(':', "%3A").replace('/', "%2F"))
        };
        // A wrong verifier: refused, and the code is not spent by it.
        let (code, verifier) = code_for(&site, NATIVE).await;
        let wrong = challenge().1;
        let (status, body) = site.post(token(&code, wrong.secret(), NATIVE)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert_eq!(body["error_description"], "The code_verifier does not match the code_challenge");
        // No verifier at all.
        let (status, body) = site.post(format!("grant_type=authorization_code&client_id=native&code={code}")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
        // Another redirect_uri than the request's.
        let (_, body) = site.post(token(&code, verifier.secret(), "http://127.0.0.1:9/callback")).await;
        assert_eq!(body["error"], "invalid_grant");
        // Another client with this code: as if unknown.
        let (_, body) = site.post(format!("grant_type=authorization_code&client_id=spa&code={code}&code_verifier={}", verifier.secret())).await;
        assert_eq!(body["error"], "unauthorized_client", "spa has no redirect URI: {body}");
        // The right one still works.
        let (status, body) = site.post(token(&code, verifier.secret(), NATIVE)).await;
        assert_eq!(status, 200, "{body}");

        // A late code: past its 60 seconds.
        let (code, verifier) = code_for(&site, NATIVE).await;
        site.h.clock.advance(Duration::from_secs(61));
        let (_, body) = site.post(token(&code, verifier.secret(), NATIVE)).await;
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "The authorization code is invalid, expired or used");

        // PKCE is required, and only S256.
        let base = format!("client_id=native&response_type=code&redirect_uri={}&state=s", NATIVE.replace(':', "%3A").replace('/', "%2F"));
        for (query, why) in [
            (base.clone(), "PKCE is required: the code_challenge parameter is missing"),
            (format!("{base}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain"), "The code_challenge_method must be S256"),
            (format!("{base}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), "The code_challenge_method must be S256"),
        ] {
            let (status, location, _) = site.get(&format!("{}/authorize?{query}", site.base), None).await;
            assert_eq!(status, 303);
            let back = params(location.as_deref().unwrap());
            assert!(location.unwrap().starts_with(NATIVE));
            assert_eq!(param(&back, "error"), Some("invalid_request"));
            assert_eq!(param(&back, "error_description"), Some(why));
            assert_eq!((param(&back, "state"), param(&back, "iss")), (Some("s"), Some(ISS)));
        }

        // A pending id works once, in its browser, in its time.
        let (pkce, _) = challenge();
        let query = format!("{base}&code_challenge={}&code_challenge_method=S256", pkce.as_str());
        let (id, cookie) = site.start(&query).await;
        let (other_id, other_browser) = site.start(&query).await;
        assert_ne!(id, other_id);
        // Its own browser's cookie is reused by the next request, so a
        // new browser is another cookie.
        assert_ne!(cookie, other_browser);
        assert_eq!(site.approve(&id, &other_browser).await.0, 400, "another browser");
        assert_eq!(site.get(&format!("{}/login?authorization={id}", site.base), None).await.0, 400, "no cookie");
        assert_eq!(site.approve(&id, &cookie).await.0, 303);
        assert_eq!(site.approve(&id, &cookie).await.0, 400, "twice");
        let (late, late_cookie) = site.start(&query).await;
        site.h.clock.advance(Duration::from_secs(10 * 60));
        assert_eq!(site.approve(&late, &late_cookie).await.0, 400, "late");

        // Denied: access_denied back to the client, with state and iss.
        let (id, cookie) = site.start(&query).await;
        let (status, location, _) = site.get(&format!("{}/login?authorization={id}&deny", site.base), Some(&cookie)).await;
        assert_eq!(status, 303);
        let back = params(&location.unwrap());
        assert_eq!(param(&back, "error"), Some("access_denied"));
        assert_eq!((param(&back, "state"), param(&back, "iss")), (Some("s"), Some(ISS)));
        assert!(param(&back, "code").is_none());
    }
}

/// The open-redirect corpus against a client with two https redirects:
/// nothing but the login page is ever a redirect target, and every
/// refusal is a page.
#[tokio::test]
async fn no_redirect_ever_goes_to_an_unregistered_uri() {
    let site = Site::new(Backend::sqlite_memory().await).await;
    let (pkce, _) = challenge();
    let corpus = [
        "https://portal.example/cb/",
        "https://portal.example/cbx",
        "https://portal.example/cb?x=1",
        "https://portal.example/cb#f",
        "https://portal.example:443/cb",
        "https://portal.example:8443/cb",
        "https://PORTAL.example/cb",
        "http://portal.example/cb",
        "https://portal.example.evil.example/cb",
        "https://evil.example/cb",
        "https://portal.example@evil.example/cb",
        "https://evil.example@portal.example/cb",
        "https://portal.example\\@evil.example/cb",
        "https://portal.example%2F@evil.example/cb",
        "https://portal.example/cb/../../evil",
        "https://portal.example/cb%2F..%2F..%2Fevil",
        "//evil.example/cb",
        "/cb",
        "https://portal.example/%63b",
        "https://portal.example/cb\t",
        "javascript:alert(1)",
        "data:text/html,x",
        "",
    ];
    let encode = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    for uri in corpus {
        for response_type in ["code", "token", ""] {
            let query = format!(
                "client_id=portal&response_type={response_type}&redirect_uri={}&state=s&code_challenge={}&code_challenge_method=S256",
                encode(uri),
                pkce.as_str()
            );
            let (status, location, _) = site
                .get(&format!("{}/authorize?{query}", site.base), None)
                .await;
            assert_eq!((status, location.as_deref()), (400, None), "{uri:?}");
        }
    }
    // An unknown client, or a repeated parameter: a page, not a redirect.
    for query in [
        format!(
            "client_id=nobody&response_type=code&redirect_uri={}",
            encode(PORTAL)
        ),
        format!(
            "client_id=portal&client_id=portal&response_type=code&redirect_uri={}",
            encode(PORTAL)
        ),
        format!(
            "client_id=portal&response_type=code&redirect_uri={}&redirect_uri={}",
            encode(PORTAL),
            encode("https://evil.example/")
        ),
        // Two registered: no redirect_uri, no guess.
        "client_id=portal&response_type=code".to_owned(),
    ] {
        let (status, location, _) = site
            .get(&format!("{}/authorize?{query}", site.base), None)
            .await;
        assert_eq!((status, location.as_deref()), (400, None), "{query}");
    }
    // The registered one: to the login page, then back to exactly it.
    let (id, cookie) = site
        .start(&format!("client_id=portal&response_type=code&redirect_uri={}&code_challenge={}&code_challenge_method=S256", encode(PORTAL), pkce.as_str()))
        .await;
    let location = site.approve(&id, &cookie).await.1.unwrap();
    assert!(
        location.starts_with(&format!("{PORTAL}?code=")),
        "{location}"
    );
}

per_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_code_redeemed_by_32_at_once_starts_one_session_then_none(b) {
        let site = Arc::new(Site::new(b).await);
        let (code, verifier) = code_for(&site, NATIVE).await;
        let body = format!(
            "grant_type=authorization_code&client_id=native&code={code}&code_verifier={}&redirect_uri={}",
            verifier.secret(),
            NATIVE.replace(':', "%3A").replace('/', "%2F")
        );
        let barrier = Arc::new(tokio::sync::Barrier::new(32));
        let racers: Vec<_> = (0..32)
            .map(|_| {
                let (site, body, barrier) = (Arc::clone(&site), body.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    site.post(body).await
                })
            })
            .collect();
        let mut won = Vec::new();
        for r in racers {
            let (status, json) = r.await.unwrap();
            match status {
                200 => won.push(json),
                400 => assert_eq!(json["error"], "invalid_grant", "{json}"),
                other => panic!("{}: {other} {json}", site.h.backend),
            }
        }
        assert_eq!(won.len(), 1, "{}: exactly one token response", site.h.backend);
        // The 31 others were redemptions after the first: its session is
        // revoked, its access token refused by the gate.
        let access = won[0]["access_token"].as_str().unwrap();
        assert!(!site.h.accepts(access), "{}", site.h.backend);
        let refresh = won[0]["refresh_token"].as_str().unwrap();
        let (status, _) = site
            .post(format!("grant_type=refresh_token&client_id=native&refresh_token={refresh}"))
            .await;
        assert_eq!(status, 400, "{}", site.h.backend);
    }
}

per_backend! {
    #[tokio::test]
    async fn the_janitor_keeps_a_redeemed_code_for_the_retention_only(b) {
        let site = Site::new(b).await;
        let rows = || async {
            entity::authorization::Entity::find().all(&site.h.db).await.unwrap().len()
        };
        // One redeemed, one approved and never redeemed, one abandoned.
        let (code, verifier) = code_for(&site, NATIVE).await;
        let (status, _) = site
            .post(format!(
                "grant_type=authorization_code&client_id=native&code={code}&code_verifier={}&redirect_uri={}",
                verifier.secret(),
                NATIVE.replace(':', "%3A").replace('/', "%2F")
            ))
            .await;
        assert_eq!(status, 200);
        code_for(&site, NATIVE).await;
        let (pkce, _) = challenge();
        let (url, _) = site.oauth2(NATIVE).authorize_url(CsrfToken::new_random).set_pkce_challenge(pkce).url();
        site.start(url.query().unwrap()).await;
        assert_eq!(rows().await, 3);
        let janitor = site.h.issuer.janitor().build();
        // Nothing has lapsed yet.
        assert_eq!(janitor.run_once(site.h.clock.now()).await.unwrap().authorizations, 0);
        site.h.clock.advance(Duration::from_secs(11 * 60));
        let report = janitor.run_once(site.h.clock.now()).await.unwrap();
        assert_eq!(report.authorizations, 2, "{}: the unused ones", site.h.backend);
        assert_eq!(rows().await, 1);
        site.h.clock.advance(tollgate::store::cleanup::DEFAULT_RETENTION);
        let report = janitor.run_once(site.h.clock.now()).await.unwrap();
        assert_eq!(report.authorizations, 1, "{}", site.h.backend);
        assert_eq!(rows().await, 0);
    }
}

per_backend! {
    /// The application's own login handler stamps the same sign-in into
    /// the session as `complete` does (`Issuer::issue` with the context's
    /// `authentication`), refreshes included.
    #[tokio::test]
    async fn an_own_login_handler_stamps_the_same_sign_in(b) {
        let h = harness(b, RefreshPolicy::default()).await;
        let at = h.clock.now() - Duration::from_secs(30);
        let meta = tollgate::issuer::RequestContext {
            authentication: tollgate::issuer::Authentication {
                auth_time: Some(at),
                acr: Some("urn:example:mfa".into()),
                amr: vec!["pwd".into(), "otp".into()],
            },
            ..Default::default()
        };
        let tokens = h.issuer.issue("alice", "web", None, &meta).await.unwrap();
        let first = h.gate.verify(&tokens.access_token).unwrap();
        let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(first.auth_time, Some(secs));
        assert_eq!(first.acr.as_deref(), Some("urn:example:mfa"));
        assert_eq!(first.amr, Some(vec!["pwd".to_owned(), "otp".to_owned()]));
        h.clock.advance(Duration::from_secs(600));
        let refreshed = h.refresh(tokens.refresh_token.as_deref().unwrap()).await;
        let later = h.gate.verify(&refreshed.access_token()).unwrap();
        assert_eq!((later.auth_time, later.acr, later.amr), (first.auth_time, first.acr, first.amr));
        // Without it, none of the three.
        let plain = h.issuer.issue("alice", "web", None, &Default::default()).await.unwrap();
        let c = h.gate.verify(&plain.access_token).unwrap();
        assert_eq!((c.auth_time, c.acr, c.amr), (None, None, None));
    }
}

per_backend! {
    /// RFC 9449 §10: `dpop_jkt` binds the code to a key; only a proof by
    /// it redeems the code, and the public client's session is bound to it.
    #[tokio::test]
    async fn a_code_bound_by_dpop_jkt_needs_a_proof_by_that_key(b) {
        use crate::common::dpop::{ProofKey, claims as proof_claims};
        let site = Site::new(b).await;
        let key = ProofKey::es256();
        let proof = |key: &ProofKey| {
            let mut c = proof_claims("POST", &format!("{ISS}/token"), None);
            c["iat"] = site.h.clock.now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().into();
            key.sign(&c)
        };
        let (pkce, verifier) = challenge();
        let (url, _) = site
            .oauth2(NATIVE)
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(pkce)
            .add_extra_param("dpop_jkt", key.thumbprint())
            .url();
        let (id, cookie) = site.start(url.query().unwrap()).await;
        let location = site.approve(&id, &cookie).await.1.unwrap();
        let code = param(&params(&location), "code").unwrap().to_owned();
        let body = format!(
            "grant_type=authorization_code&client_id=native&code={code}&code_verifier={}&redirect_uri={}",
            verifier.secret(),
            NATIVE.replace(':', "%3A").replace('/', "%2F")
        );
        for other in [None, Some(proof(&ProofKey::es256()))] {
            let (status, json) = site.post_with(body.clone(), other).await;
            assert_eq!((status, json["error"].as_str()), (400, Some("invalid_grant")), "{json}");
            assert_eq!(json["error_description"], "The authorization code is bound to another DPoP key");
        }
        let (status, json) = site.post_with(body, Some(proof(&key))).await;
        assert_eq!(status, 200, "{}: {json}", site.h.backend);
        assert_eq!(json["token_type"], "DPoP");
        // Its refreshes need the key too.
        let refresh = json["refresh_token"].as_str().unwrap();
        let form = format!("grant_type=refresh_token&client_id=native&refresh_token={refresh}");
        let (status, _) = site.post_with(form.clone(), None).await;
        assert_eq!(status, 400);
        let (status, json) = site.post_with(form, Some(proof(&key))).await;
        assert_eq!(status, 200, "{json}");
    }
}

/// An independent client library (Python requests-oauth2client,
/// `scripts/code-flow-client`) through the whole flow: its own PKCE S256,
/// its own validation of `state` and RFC 9207 `iss`, the code redeemed and
/// refreshed, the replay refused, a callback with a forged `iss` refused by
/// the library. Skipped without the library, except under CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_library_signs_in_and_checks_iss() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import requests_oauth2client"])
        .output()
        .unwrap();
    if !probe.status.success() {
        assert!(
            std::env::var_os("CI").is_none(),
            "requests-oauth2client is required under CI"
        );
        eprintln!("skipped: pip install requests-oauth2client");
        return;
    }
    let site = Site::new(Backend::sqlite_memory().await).await;
    let base = site.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/code-flow-client"
            ))
            .args([&base, ISS, "native", "http://127.0.0.1:50123/callback"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["code_challenge_method"], "S256", "{seen}");
    assert_eq!(seen["authorize_status"], 303, "{seen}");
    assert_eq!(seen["login_status"], 303, "{seen}");
    assert_eq!(seen["callback_prefix_ok"], true, "{seen}");
    assert_eq!(seen["token_type"], "Bearer", "{seen}");
    assert_eq!(seen["scope"], "read", "{seen}");
    assert_eq!(seen["has_refresh_token"], true, "{seen}");
    assert_eq!(seen["refreshed"], true, "{seen}");
    assert_eq!(seen["replay"], "invalid_grant", "{seen}");
    assert_eq!(seen["forged_iss"], "refused", "{seen}");
}

/// RFC 7636 appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A request of `native` for `scope` to `redirect` (plus `extra`), as
/// the consent page reads it: the pending request, its id and cookie.
async fn pending_request(
    site: &Site,
    redirect: &str,
    scope: &str,
    extra: &str,
) -> (
    tollgate::token_endpoint::PendingAuthorization,
    String,
    String,
) {
    let query = format!(
        "client_id=native&response_type=code&redirect_uri={}&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        redirect.replace(':', "%3A").replace('/', "%2F"),
        scope.replace(' ', "%20"),
    );
    let (id, cookie) = site.start(&query).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, cookie.parse().unwrap());
    let pending = site.authorizer.pending(&headers, &id).await.unwrap();
    (pending, id, cookie)
}

per_backend! {
    #[tokio::test]
    async fn a_remembered_consent_covers_no_more_and_its_revocation_ends_the_sessions(b) {
        let site = Site::new(b).await;
        let first = "http://127.0.0.1:50001/callback";
        let (p, id, cookie) = pending_request(&site, first, "read", "").await;
        let auth = &site.authorizer;
        assert!(!auth.remembered_consent(&p, "alice").await.unwrap(), "nothing remembered yet");

        // Approved without remembering: nothing is kept.
        let (status, _) = site.approve(&id, &cookie).await;
        assert_eq!(status, 303);
        assert!(auth.consents("alice").await.unwrap().is_empty());
        assert!(!auth.remembered_consent(&p, "alice").await.unwrap());

        // Approved and remembered; the code starts a session.
        let (p, id, cookie) = pending_request(&site, first, "read", "").await;
        let (status, location, _) = site
            .get(&format!("{}/login?authorization={id}&remember", site.base), Some(&cookie))
            .await;
        assert_eq!(status, 303);
        let code = param(&params(&location.unwrap()), "code").unwrap().to_owned();
        let (status, tokens) = site
            .post(format!(
                "grant_type=authorization_code&client_id=native&code={code}&code_verifier={VERIFIER}&redirect_uri={}",
                first.replace(':', "%3A").replace('/', "%2F")
            ))
            .await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert!(site.h.accepts(&access));
        let listed = auth.consents("alice").await.unwrap();
        assert_eq!(listed.len(), 1, "{}", site.h.backend);
        assert_eq!((listed[0].client_id.as_str(), listed[0].scopes.as_slice()), ("native", ["read".to_owned()].as_slice()));
        assert_eq!(listed[0].redirect_uri, first);
        assert!(auth.remembered_consent(&p, "alice").await.unwrap());
        assert!(!auth.remembered_consent(&p, "bob").await.unwrap(), "another user");

        // What it covers: the loopback redirect on another port; not more
        // scope, not prompt=consent.
        let (drifted, ..) = pending_request(&site, "http://127.0.0.1:50002/callback", "read", "").await;
        assert!(auth.remembered_consent(&drifted, "alice").await.unwrap());
        let (more, ..) = pending_request(&site, first, "read write", "").await;
        assert!(!auth.remembered_consent(&more, "alice").await.unwrap());
        let (prompted, ..) = pending_request(&site, first, "read", "&prompt=consent").await;
        assert!(!auth.remembered_consent(&prompted, "alice").await.unwrap());

        // A second remembered approval replaces the first: now read write.
        let (p2, id, cookie) = pending_request(&site, first, "read write", "").await;
        let (status, ..) = site
            .get(&format!("{}/login?authorization={id}&remember", site.base), Some(&cookie))
            .await;
        assert_eq!(status, 303);
        assert!(auth.remembered_consent(&p2, "alice").await.unwrap());
        assert_eq!(auth.consents("alice").await.unwrap().len(), 1);

        // alice's session with another client is hers to keep.
        let other = site
            .h
            .issuer
            .issue("alice", "spa", None, &tollgate::issuer::RequestContext::default())
            .await
            .unwrap();

        // Revoked: forgotten, and the client's session dies at once — its
        // access token at the gate, its refresh token at /token.
        assert!(auth.revoke_consent("alice", "native").await.unwrap());
        assert!(!site.h.accepts(&access), "{}: the session outlived its consent", site.h.backend);
        let (status, body) = site
            .post(format!("grant_type=refresh_token&client_id=native&refresh_token={refresh}"))
            .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert!(site.h.accepts(&other.access_token), "another client's session ended");
        assert!(!auth.remembered_consent(&p, "alice").await.unwrap());
        assert!(auth.consents("alice").await.unwrap().is_empty());
        assert!(!auth.revoke_consent("alice", "native").await.unwrap(), "twice");

        // A client's consents go with it.
        let (_, id, cookie) = pending_request(&site, first, "read", "").await;
        site.get(&format!("{}/login?authorization={id}&remember", site.base), Some(&cookie)).await;
        assert_eq!(auth.consents("alice").await.unwrap().len(), 1);
        let admin = site.h.issuer.clients();
        admin.disable("native").await.unwrap();
        assert!(admin.delete("native").await.unwrap());
        assert!(auth.consents("alice").await.unwrap().is_empty(), "{}", site.h.backend);
    }
}
