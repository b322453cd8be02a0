//! The quickstart's sign-in as shipped: `/authorize`, the app's login and
//! consent pages, and the code redeemed by the page's client — over plain
//! HTTP with every cookie handled by hand, so each forgery can be tried:
//! another browser, a missing or foreign CSRF token, a foreign `Origin`,
//! a wrong password, a consent form altered to approve as someone else,
//! a decision sent twice. The password grant is off unless asked for.

use reqwest::{StatusCode, redirect::Policy};
use serde_json::Value;

use crate::common::quickstart::{Server, scratch_dir};

/// RFC 7636 appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the `Set-Cookie` named `name`.
pub(crate) fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of the hidden field `name` in a page.
pub(crate) fn field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The page's redemption of `code` as the browser client.
async fn redeem(s: &Server, code: &str) -> reqwest::Response {
    let redirect = format!("{}/", s.base);
    http()
        .post(s.url("/token"))
        .header("origin", &s.base)
        .header("x-requested-with", "fetch")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-browser"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
}

/// The demo user's password grant for the public demo client.
async fn password_login(s: &Server) -> reqwest::Response {
    http()
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "demo-spa"),
            ("username", "alice"),
            ("password", "wonderland"),
        ])
        .send()
        .await
        .unwrap()
}

/// A JSON document, with a bearer token when given.
async fn get_json(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Value {
    let mut req = http.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// A query parameter of a (possibly relative) redirect.
fn query_param(location: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse("http://base.invalid")
        .unwrap()
        .join(location)
        .unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// One browser's way through the pages: its cookies, by hand.
struct Browser<'a> {
    s: &'a Server,
    http: reqwest::Client,
    cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(s: &'a Server) -> Self {
        Self {
            s,
            http: http(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.join("; ")
    }

    /// `/authorize` for the page's client: the pending id, and the cookie
    /// binding it to this browser kept.
    async fn authorize(&mut self, state: &str) -> String {
        let redirect = format!("{}/", self.s.base);
        let res = self
            .http
            .get(self.s.url("/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "demo-browser"),
                ("redirect_uri", redirect.as_str()),
                ("scope", "read write"),
                ("state", state),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        if let Some(c) = set_cookie(&res, "__Host-tollgate_authorize") {
            self.cookies.push(c);
        }
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/login?authorization="), "{location}");
        query_param(&location, "authorization").unwrap()
    }

    async fn login_page(&mut self, id: &str) -> reqwest::Response {
        let res = self
            .http
            .get(self.s.url("/login"))
            .query(&[("authorization", id)])
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        if let Some(c) = set_cookie(&res, "__Host-quickstart_csrf") {
            self.cookies.push(c);
        }
        res
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.s.url(path))
            .header("origin", &self.s.base)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Login page, then the password: the consent page's HTML.
    async fn signed_in(&mut self, id: &str) -> String {
        let page = self.login_page(id).await.text().await.unwrap();
        let csrf = field(&page, "csrf");
        let res = self
            .post(
                "/login",
                &[
                    ("authorization", id),
                    ("csrf", &csrf),
                    ("username", "alice"),
                    ("password", "wonderland"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }
}

/// The consent form's fields, with `decision` and any field replaced.
fn consent_form<'a>(
    page: &'a str,
    decision: &'a str,
    replace: &[(&'a str, &'a str)],
) -> Vec<(&'static str, String)> {
    ["authorization", "csrf", "subject", "auth_time", "grant"]
        .into_iter()
        .map(|name| {
            let value = replace
                .iter()
                .find(|(k, _)| *k == name)
                .map_or_else(|| field(page, name), |(_, v)| (*v).to_owned());
            (name, value)
        })
        .chain([("decision", decision.to_owned())])
        .collect()
}

async fn submit(b: &Browser<'_>, form: &[(&'static str, String)]) -> reqwest::Response {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/consent", &form).await
}

#[tokio::test]
async fn the_quickstart_signs_in_through_its_login_and_consent_pages_and_refuses_forgeries() {
    let dir = scratch_dir("signin");
    let s = Server::as_shipped(&dir, &[("TOLLGATE_RATE_LIMITS", "off")]);
    let http = http();

    // As shipped: the code flow announced, the password grant gone.
    let meta = get_json(
        &http,
        &s.url("/.well-known/oauth-authorization-server"),
        None,
    )
    .await;
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&"authorization_code".into()), "{grants:?}");
    assert!(!grants.contains(&"password".into()), "{grants:?}");
    assert_eq!(meta["authorization_endpoint"], s.url("/authorize"));
    let password = password_login(&s).await;
    assert_eq!(password.status(), StatusCode::BAD_REQUEST);
    let body: Value = password.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let mut a = Browser::new(&s);
    let id = a.authorize("state-1").await;

    // Another browser (without the cookie /authorize set) gets nothing.
    let mut other = Browser::new(&s);
    let res = other.login_page(&id).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.text().await.unwrap().contains("form"));

    // The login page: who asks, where the browser goes, the loopback
    // warning, no script, forms only here and to the client's origin.
    let res = a.login_page(&id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(
        csp.contains(&format!("form-action 'self' {}", s.base)),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csrf_cookie = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-quickstart_csrf="))
        .unwrap()
        .to_owned();
    assert!(
        csrf_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"),
        "{csrf_cookie}"
    );
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("tollgate quickstart (the page at /)"));
    assert!(page.contains(r#"<strong id="redirect-host">127.0.0.1</strong>"#));
    assert!(page.contains(r#"id="loopback-warning""#));
    let csrf = field(&page, "csrf");
    assert_eq!(
        format!("__Host-quickstart_csrf={csrf}"),
        csrf_cookie.split(';').next().unwrap()
    );

    // Forged logins: no CSRF field, another token, a foreign Origin, a
    // browser without the cookie; a wrong password shows the form again.
    let login = |csrf: &str, password: &str| {
        vec![
            ("authorization", id.clone()),
            ("csrf", csrf.to_owned()),
            ("username", "alice".to_owned()),
            ("password", password.to_owned()),
        ]
    };
    let as_refs = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };
    for (form, origin, cookies) in [
        (login("", "wonderland"), s.base.clone(), a.cookie_header()),
        (
            login(&"A".repeat(43), "wonderland"),
            s.base.clone(),
            a.cookie_header(),
        ),
        (
            login(&csrf, "wonderland"),
            "https://evil.example".to_owned(),
            a.cookie_header(),
        ),
        (login(&csrf, "wonderland"), s.base.clone(), String::new()),
    ] {
        let res = http
            .post(s.url("/login"))
            .header("origin", origin)
            .header("cookie", cookies)
            .form(&as_refs(&form))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(!res.text().await.unwrap().contains("consent"));
    }
    let wrong: Vec<(&str, String)> = login(&csrf, "not-the-password");
    let form: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = a.post("/login", &form).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let page = res.text().await.unwrap();
    assert!(page.contains("The username or password is incorrect."));
    assert!(!page.contains(r#"name="grant""#));

    // Signed in: the consent page names the user and the scopes.
    let consent = a.signed_in(&id).await;
    assert!(consent.contains(r#"<strong id="subject">alice</strong>"#));
    assert!(consent.contains("<li>read</li><li>write</li>"));

    // The consent form altered: another subject, an earlier sign-in, the
    // signature of another request; each refused, the request still
    // pending.
    for replace in [
        [("subject", "mallory")],
        [("auth_time", "1")],
        [("grant", "AAAA")],
    ] {
        let res = submit(&a, &consent_form(&consent, "allow", &replace)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{replace:?}");
    }

    // Allowed: back to the page with code, state and iss (RFC 9207).
    let res = submit(&a, &consent_form(&consent, "allow", &[])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/?", s.base)), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-1"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        meta["issuer"].as_str()
    );
    let code = query_param(&location, "code").unwrap();

    // The same decision again finds nothing: no second code.
    let res = submit(&a, &consent_form(&consent, "allow", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The page redeems the code as the browser client: the refresh token
    // in its cookie, and the access token says how alice signed in.
    let res = redeem(&s, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookie(&res, "__Host-tollgate_refresh").is_some());
    let tokens: Value = res.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none());
    let claims = get_json(&http, &s.url("/me"), tokens["access_token"].as_str()).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "demo-browser");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["acr"], "urn:tollgate:quickstart:password");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    let auth_time = claims["auth_time"].as_u64().unwrap();
    assert!(auth_time.abs_diff(crate::common::now()) <= 5, "{auth_time}");

    // Nothing remembered without the box ticked: the next sign-in asks.
    let id = a.authorize("state-3").await;
    let consent = a.signed_in(&id).await;
    // Ticked: allowed and remembered; the next sign-in skips the consent
    // page, straight back to the client after the password.
    let mut remembered = consent_form(&consent, "allow", &[]);
    remembered.push(("remember", "yes".to_owned()));
    let res = submit(&a, &remembered).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = a.authorize("state-4").await;
    let page = a.login_page(&id).await.text().await.unwrap();
    let res = a
        .post(
            "/login",
            &[
                ("authorization", id.as_str()),
                ("csrf", field(&page, "csrf").as_str()),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the consent page again"
    );
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-4"));
    let code = query_param(&location, "code").unwrap();
    let tokens: Value = redeem(&s, &code).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let listed = get_json(&http, &s.url("/consents"), Some(access)).await;
    assert_eq!(listed[0]["client_id"], "demo-browser", "{listed}");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["read", "write"]));
    // Revoked: the app's session ends at once, and the next sign-in asks
    // again.
    let res = http
        .delete(s.url("/consents/demo-browser"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = http
        .get(s.url("/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let id = a.authorize("state-5").await;
    let consent = a.signed_in(&id).await;
    assert!(consent.contains(r#"name="grant""#));

    // Denied: back to the page with access_denied, state and iss.
    let res = submit(&a, &consent_form(&consent, "deny", &[])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-5"));
    assert!(query_param(&location, "code").is_none());
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        meta["issuer"].as_str()
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The opt-in: with `TOLLGATE_DEMO_PASSWORD_GRANT=on` the password grant
/// is back for the demo clients (what the `curl` lines use).
#[tokio::test]
async fn the_password_grant_is_an_opt_in() {
    let dir = scratch_dir("password-opt-in");
    let s = Server::as_shipped(
        &dir,
        &[
            ("TOLLGATE_RATE_LIMITS", "off"),
            ("TOLLGATE_DEMO_PASSWORD_GRANT", "on"),
        ],
    );
    let res = password_login(&s).await;
    assert_eq!(res.status(), StatusCode::OK);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The quickstart as an MCP authorization server: documents and dynamic
/// registration are off as shipped, and on when asked for, a document
/// served over TLS by the test CA under the loopback allowance.
#[cfg(feature = "client-metadata")]
#[tokio::test]
async fn the_quickstart_runs_as_an_mcp_authorization_server_when_asked() {
    use crate::common::scripted;

    let shipped = Server::as_shipped(&scratch_dir("quickstart-no-registration"), &[]);
    let meta = get_json(
        &http(),
        &shipped.url("/.well-known/oauth-authorization-server"),
        None,
    )
    .await;
    assert!(meta.get("client_id_metadata_document_supported").is_none());
    assert!(meta.get("registration_endpoint").is_none());
    let res = http()
        .post(shipped.url("/register"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let docs = scripted::Server::start(true).await;
    let doc = docs.url("/cli.json");
    docs.route(
        "/cli.json",
        scripted::json(
            serde_json::json!({"client_id": doc, "client_name": "A CLI",
                               "redirect_uris": ["http://localhost/callback"]})
            .to_string(),
        ),
    );
    let ca = format!("{}/tests/keys/test-ca.pem", env!("CARGO_MANIFEST_DIR"));
    let s = Server::as_shipped(
        &scratch_dir("quickstart-mcp"),
        &[
            ("TOLLGATE_CIMD", "on"),
            ("TOLLGATE_CIMD_CA_FILE", &ca),
            ("TOLLGATE_CIMD_ALLOW_LOOPBACK_FOR_TESTS", "on"),
            ("TOLLGATE_DCR", "token"),
            ("TOLLGATE_DCR_TOKEN", "an-initial-access-token"),
        ],
    );
    let meta = get_json(
        &http(),
        &s.url("/.well-known/oauth-authorization-server"),
        None,
    )
    .await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert_eq!(meta["registration_endpoint"], s.url("/register"));
    let register = |token: Option<&'static str>| {
        let mut req = http()
            .post(s.url("/register"))
            .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:7777/cb"]}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(
        register(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        register(Some("an-initial-access-token"))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    // The document's client goes to the login page, on the CLI's port.
    let res = http()
        .get(s.url("/authorize"))
        .query(&[
            ("client_id", doc.as_str()),
            ("redirect_uri", "http://localhost:40404/callback"),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?")
    );
    assert_eq!(docs.hits("/cli.json"), 1);
}
