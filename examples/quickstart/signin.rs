//! The quickstart's login and consent pages: the part of the
//! authorization code flow an app writes itself. `/authorize` (tollgate)
//! checks the client's request and sends the browser to `GET /login` with
//! the pending request's id; the user signs in there, then allows or
//! denies on the consent page, and `POST /consent` hands the decision to
//! tollgate, which answers the redirect back to the client with `code`,
//! `state` and `iss`.
//!
//! Server-rendered HTML with no script at all, every value escaped, under
//! a CSP that allows only this origin's style sheet and forms posted here
//! (and the redirect to the client). Both forms carry a CSRF token that
//! must equal an `HttpOnly`, `SameSite=Strict` cookie (double submit), and
//! a foreign `Origin` is refused. The consent form carries who signed in
//! and when, under an HMAC of this process, so it cannot be forged to
//! approve as someone else; and the pending id itself only works in the
//! browser that started the request (tollgate's cookie).
//!
//! Self-contained (`examples/mcp_server.rs` uses it too): it needs only
//! `crate::BoxError`.

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use axum::{
    Form, Router,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use tollgate::{
    secret::random_token,
    store::clients::Registration,
    token_endpoint::{
        Approve, AuthorizeError, Authorizer, PENDING_PARAMETER, PasswordVerifier,
        PendingAuthorization,
    },
};

use crate::BoxError;

/// The double-submit CSRF cookie (`__Host-`: `Secure`, `Path=/`, no
/// `Domain`).
const CSRF_COOKIE: &str = "__Host-quickstart_csrf";

/// How long a consent form stays good after the user signed in.
const CONSENT_TTL: Duration = Duration::from_secs(10 * 60);

/// How the demo user signed in (RFC 8176 `amr` and an `acr` of this app).
const ACR: &str = "urn:tollgate:quickstart:password";
const AMR: &str = "pwd";

/// What the pages need.
#[derive(Clone)]
pub(crate) struct SignIn {
    inner: Arc<Inner>,
}

struct Inner {
    authorizer: Authorizer,
    passwords: Box<dyn PasswordVerifier>,
    /// Signs the consent form's hidden fields: a key of this process only.
    key: hmac::Key,
    /// This server's origin: a form must come from here.
    origin: String,
}

impl SignIn {
    pub(crate) fn new(
        authorizer: Authorizer,
        passwords: impl PasswordVerifier,
        origin: String,
    ) -> Result<Self, BoxError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "no system randomness")?;
        Ok(Self {
            inner: Arc::new(Inner {
                authorizer,
                passwords: Box::new(passwords),
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                origin,
            }),
        })
    }

    /// `GET /login`, `POST /login` and `POST /consent`.
    pub(crate) fn routes(self) -> Router {
        Router::new()
            .route("/login", get(login_page).post(login))
            .route("/consent", post(consent))
            .with_state(self)
    }

    /// The consent form's signature over what it carries.
    fn grant(&self, id: &str, subject: &str, auth_time: u64, csrf: &str) -> String {
        let message = format!("consent\0{id}\0{subject}\0{auth_time}\0{csrf}");
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.inner.key, message.as_bytes()))
    }

    fn grant_ok(&self, f: &ConsentForm) -> bool {
        let message = format!(
            "consent\0{}\0{}\0{}\0{}",
            f.authorization, f.subject, f.auth_time, f.csrf
        );
        URL_SAFE_NO_PAD
            .decode(&f.grant)
            .is_ok_and(|tag| hmac::verify(&self.inner.key, message.as_bytes(), &tag).is_ok())
    }

    /// Whether a POST is this site's own form: no foreign `Origin`, and
    /// the CSRF field equal (in constant time) to the cookie.
    fn same_site_form(&self, headers: &HeaderMap, csrf: &str) -> bool {
        let origin_ok = headers
            .get(header::ORIGIN)
            .is_none_or(|o| o.as_bytes() == self.inner.origin.as_bytes());
        let cookie_ok = csrf_cookie(headers).is_some_and(|c| {
            aws_lc_rs::constant_time::verify_slices_are_equal(c.as_bytes(), csrf.as_bytes()).is_ok()
        });
        origin_ok && cookie_ok
    }
}

#[derive(Deserialize)]
struct LoginForm {
    authorization: String,
    csrf: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct ConsentForm {
    authorization: String,
    csrf: String,
    subject: String,
    auth_time: u64,
    grant: String,
    decision: String,
    /// The "remember this decision" box, when ticked.
    remember: Option<String>,
}

/// `GET /login?authorization=…`: the login form, naming the client and
/// where the browser will be sent.
async fn login_page(
    State(s): State<SignIn>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let id = query
        .as_deref()
        .and_then(|q| q.strip_prefix(PENDING_PARAMETER))
        .and_then(|q| q.strip_prefix('='))
        .unwrap_or_default();
    let pending = match s.inner.authorizer.pending(&headers, id).await {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let (csrf, set_cookie) = match csrf_cookie(&headers) {
        Some(existing) => (existing, None),
        None => {
            let fresh = random_token();
            let cookie =
                format!("{CSRF_COOKIE}={fresh}; Path=/; Secure; HttpOnly; SameSite=Strict");
            (fresh, Some(cookie))
        }
    };
    let mut res = login_form(&pending, id, &csrf, None, StatusCode::OK);
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::try_from(c).ok()) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

/// `POST /login`: the password checked, then the consent page.
async fn login(State(s): State<SignIn>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    if !s.same_site_form(&headers, &f.csrf) {
        return forbidden();
    }
    let pending = match s.inner.authorizer.pending(&headers, &f.authorization).await {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let subject = match s.inner.passwords.verify(&f.username, &f.password).await {
        Ok(Some(subject)) => subject,
        Ok(None) => {
            return login_form(
                &pending,
                &f.authorization,
                &f.csrf,
                Some("The username or password is incorrect."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(_) => return unavailable(),
    };
    let auth_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Allowed before, with "remember": straight back to the client.
    match s
        .inner
        .authorizer
        .remembered_consent(&pending, &subject)
        .await
    {
        Ok(true) => {
            let approve = Approve::new(subject)
                .auth_time(UNIX_EPOCH + Duration::from_secs(auth_time))
                .acr(ACR, [AMR]);
            return match s
                .inner
                .authorizer
                .complete(&headers, &f.authorization, approve)
                .await
            {
                Ok(redirect) => redirect.into_response(),
                Err(e) => refused(&e),
            };
        }
        Ok(false) => {}
        Err(_) => return unavailable(),
    }
    let grant = s.grant(&f.authorization, &subject, auth_time, &f.csrf);
    consent_form(
        &pending,
        &f.authorization,
        &f.csrf,
        &subject,
        auth_time,
        &grant,
    )
}

/// `POST /consent`: Allow or Deny, handed to tollgate, which answers the
/// redirect back to the client.
async fn consent(
    State(s): State<SignIn>,
    headers: HeaderMap,
    Form(f): Form<ConsentForm>,
) -> Response {
    if !s.same_site_form(&headers, &f.csrf) || !s.grant_ok(&f) {
        return forbidden();
    }
    let signed_in = UNIX_EPOCH + Duration::from_secs(f.auth_time);
    if SystemTime::now()
        .duration_since(signed_in)
        .is_err_and(|e| e.duration() > Duration::from_secs(5))
        || signed_in.elapsed().is_ok_and(|age| age > CONSENT_TTL)
    {
        return html(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "<p>This form has expired. Go back to the app and sign in again.</p>",
            None,
        );
    }
    let authorizer = &s.inner.authorizer;
    let answer = match f.decision.as_str() {
        "allow" => {
            let mut approve = Approve::new(f.subject).auth_time(signed_in).acr(ACR, [AMR]);
            if f.remember.is_some() {
                approve = approve.remember();
            }
            authorizer
                .complete(&headers, &f.authorization, approve)
                .await
        }
        "deny" => authorizer.deny(&headers, &f.authorization).await,
        _ => return forbidden(),
    };
    match answer {
        Ok(redirect) => redirect.into_response(),
        Err(e) => refused(&e),
    }
}

fn login_form(
    p: &PendingAuthorization,
    id: &str,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut body = about_client(p);
    let _ = write!(
        body,
        r#"<form id="login" method="post" action="/login">
<input type="hidden" name="authorization" value="{id}">
<input type="hidden" name="csrf" value="{csrf}">
<label>Username <input id="username" name="username" autocomplete="username" value="{hint}" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button id="sign-in-button" type="submit">Sign in</button>
</form>
<p id="error" role="alert">{error}</p>"#,
        id = html_escape(id),
        csrf = html_escape(csrf),
        hint = html_escape(p.login_hint.as_deref().unwrap_or_default()),
        error = html_escape(error.unwrap_or_default()),
    );
    html(status, "Sign in", &body, Some(&p.redirect_uri))
}

fn consent_form(
    p: &PendingAuthorization,
    id: &str,
    csrf: &str,
    subject: &str,
    auth_time: u64,
    grant: &str,
) -> Response {
    let mut body = about_client(p);
    let _ = write!(
        body,
        r#"<p>Signed in as <strong id="subject">{subject_text}</strong>. Allow it to use your account with these permissions?</p>
<ul id="scopes">"#,
        subject_text = html_escape(subject),
    );
    for scope in &p.scopes {
        let _ = write!(body, "<li>{}</li>", html_escape(scope));
    }
    body.push_str("</ul>");
    if !p.resources.is_empty() {
        body.push_str("<p>At:</p><ul id=\"resources\">");
        for resource in &p.resources {
            let _ = write!(body, "<li>{}</li>", html_escape(resource));
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        r#"<form id="consent" method="post" action="/consent">
<input type="hidden" name="authorization" value="{id}">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="subject" value="{subject}">
<input type="hidden" name="auth_time" value="{auth_time}">
<input type="hidden" name="grant" value="{grant}">
<label><input id="remember" type="checkbox" name="remember" value="yes"> Remember this decision (revoke it with DELETE /consents/&lt;client&gt;)</label>
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" type="submit" name="decision" value="deny">Deny</button>
</form>"#,
        id = html_escape(id),
        csrf = html_escape(csrf),
        subject = html_escape(subject),
        grant = html_escape(grant),
    );
    html(
        StatusCode::OK,
        "Allow access?",
        &body,
        Some(&p.redirect_uri),
    )
}

/// Who asks, and where the browser goes next: the redirect host shown
/// plainly (a phishing client cannot hide it behind its name), with a
/// warning for a program on this computer. A client nobody vetted (it
/// registered itself, or is named by its metadata document) is said to
/// be one, with the host its id is served from and its links' hosts.
fn about_client(p: &PendingAuthorization) -> String {
    let kind = match p.registration {
        Registration::Registered => "a client registered with this server",
        Registration::MetadataDocument => {
            "an unverified client, described by its own metadata document"
        }
        _ => "an unverified client that registered itself",
    };
    let mut out = format!(
        r#"<p><strong id="client-name">{name}</strong> (client <code>{id}</code>, <span id="client-kind">{kind}</span>) asks to sign you in.</p>"#,
        name = html_escape(&p.client_name),
        id = html_escape(&p.client_id),
    );
    if let Some(host) = &p.client_id_host {
        let _ = write!(
            out,
            r#"<p>Its description is published by <strong id="client-host">{}</strong>.</p>"#,
            html_escape(host)
        );
    }
    if let Some(logo) = &p.logo_uri {
        // Shown as a link, not loaded: the page's CSP loads nothing from
        // elsewhere, and a logo proves nothing.
        let _ = write!(
            out,
            r#"<p>Logo: <code id="client-logo">{}</code></p>"#,
            html_escape(logo)
        );
    }
    if p.links_elsewhere {
        out.push_str(
            r#"<p id="links-warning" class="note">Its logo or home page is on another site than its description.</p>"#,
        );
    }
    let _ = write!(
        out,
        r#"<p>You will then be sent to <strong id="redirect-host">{host}</strong>.</p>"#,
        host = html_escape(&p.redirect_host),
    );
    if p.loopback {
        out.push_str(
            r#"<p id="loopback-warning" class="note">That is a program running on this computer (a loopback address), not a website. Continue only if you started it yourself just now.</p>"#,
        );
    }
    out
}

/// A page of this site: the style sheet, no script, and a CSP allowing
/// forms to post here and the answer to redirect to `redirect_to`'s
/// origin.
fn html(status: StatusCode, title: &str, body: &str, redirect_to: Option<&str>) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · tollgate quickstart</title>\n\
         <link rel=\"stylesheet\" href=\"/app.css\">\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        title = html_escape(title),
    );
    let form_action = redirect_to
        .and_then(csp_origin)
        .map_or_else(|| "'self'".to_owned(), |o| format!("'self' {o}"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
         form-action {form_action}; frame-ancestors 'none'"
    );
    let mut res = (status, page).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::try_from(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under the latter a browser sends
    // `Origin: null` with the form, and the origin check needs the real
    // one. Nothing goes to another site either way.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The origin of a redirect URI as a CSP source, when it is plainly one
/// (tollgate checked the URI; this keeps anything odd out of the header).
fn csp_origin(uri: &str) -> Option<String> {
    let origin = origin_of(uri);
    let (scheme, host) = origin.split_once("://")?;
    let plain = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    (matches!(scheme, "http" | "https") && !host.is_empty() && plain).then_some(origin)
}

/// A pending request that cannot be used here: unknown, used, expired,
/// or from another browser. Never a redirect.
fn refused(e: &AuthorizeError) -> Response {
    match e {
        AuthorizeError::Store(_) => unavailable(),
        _ => html(
            StatusCode::BAD_REQUEST,
            "Sign-in link expired",
            "<p id=\"error\">This sign-in link has expired, was used already, or was opened in \
             another browser. Go back to the app and sign in again.</p>",
            None,
        ),
    }
}

fn forbidden() -> Response {
    html(
        StatusCode::FORBIDDEN,
        "Refused",
        "<p id=\"error\">This form did not come from this site's own page.</p>",
        None,
    )
}

fn unavailable() -> Response {
    let mut res = html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<p>The service is temporarily unavailable.</p>",
        None,
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// The CSRF cookie this browser holds, when it is one of ours.
fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        })
        .map(str::to_owned)
}

/// The origin (`scheme://host[:port]`) of a URL: what a browser sends as
/// `Origin` from a page served there.
pub(crate) fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_ascii_lowercase()
}

/// `text` with HTML's special characters escaped, for element content
/// and quoted attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
