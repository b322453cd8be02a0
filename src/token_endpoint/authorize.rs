//! `/authorize` (RFC 6749 §4.1.1, OAuth 2.1 §4.1) with the application's
//! own login and consent page in between: the request is validated and
//! remembered, the browser goes to the application's login URL with an
//! opaque id, and the application finishes with [`Authorizer::complete`]
//! or [`Authorizer::deny`], which answer the redirect back to the client
//! with `code`, `state` and `iss` (RFC 9207).
//!
//! An unknown client or a `redirect_uri` that is not registered gets an
//! error page, never a redirect (RFC 6749 §4.1.2.1); every later error
//! goes back to the validated URI. The pending id works once, within its
//! lifetime, and only in the browser that started the request: it is
//! bound to an `HttpOnly` cookie the page cannot read, so a stolen or
//! planted id does nothing elsewhere.

use std::{
    fmt,
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};

use super::{
    form::Form,
    pipeline::{BoxError, Inner},
};
use crate::{
    audience,
    binding::peer_addr,
    identifier::is_absolute_uri,
    redirect, scope,
    secret::{hash_token, is_s256_challenge, random_token},
    store::{
        self, StoreError,
        authorizations::{Decision, NewAuthorization, Stored},
        clients::{Client, Registration},
    },
};

/// Default lifetime of a pending authorization request: 10 minutes for
/// the user to sign in and consent.
pub const DEFAULT_PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// Default lifetime of an authorization code: 60 seconds (RFC 6749 §4.1.2
/// recommends at most 10 minutes; the client redeems it at once).
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(60);

/// The cookie binding pending requests to the browser that made them.
/// `__Host-`: `Secure`, `Path=/`, no `Domain`, so no sibling host can set
/// it.
const BROWSER_COOKIE: &str = "__Host-tollgate_authorize";

/// The query parameter of the login URL that carries the pending id.
pub const PENDING_PARAMETER: &str = "authorization";

/// Longest `state`, `login_hint`, `acr_values` accepted, in bytes.
const MAX_STATE: usize = 1024;
const MAX_HINT: usize = 255;

/// The authorization endpoint's settings, for
/// [`TokenEndpointBuilder::authorization`](super::TokenEndpointBuilder::authorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub(super) login_url: String,
    pub(super) pending_ttl: Duration,
    pub(super) code_ttl: Duration,
}

impl Authorization {
    /// `/authorize` sends the browser to `login_url` (an absolute `https`
    /// URL, or a path on this host such as `/login`) with the pending
    /// request's id as the `authorization` query parameter.
    pub fn new(login_url: impl Into<String>) -> Self {
        Self {
            login_url: login_url.into(),
            pending_ttl: DEFAULT_PENDING_TTL,
            code_ttl: DEFAULT_CODE_TTL,
        }
    }

    /// How long the user has to sign in and decide. Default
    /// [`DEFAULT_PENDING_TTL`].
    pub fn pending_ttl(mut self, ttl: Duration) -> Self {
        self.pending_ttl = ttl;
        self
    }

    /// How long a code may wait for its redemption. Default
    /// [`DEFAULT_CODE_TTL`].
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Whether the settings can work: a login URL that is a path on this
    /// host or a URL that could be registered as a redirect, and
    /// lifetimes of at least a second.
    pub(super) fn is_valid(&self) -> bool {
        let url = &self.login_url;
        let path = url.starts_with('/')
            && !url.starts_with("//")
            && url
                .bytes()
                .all(|b| (0x21..=0x7E).contains(&b) && b != b'\\' && b != b'#');
        (path || redirect::check_registrable(url).is_ok())
            && self.pending_ttl >= Duration::from_secs(1)
            && self.code_ttl >= Duration::from_secs(1)
    }
}

/// A refusal of an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Before the redirect URI is known to be the client's: an error page.
    Page(&'static str),
    /// The same, with a reason made at run time (a metadata document's).
    #[cfg(feature = "client-metadata")]
    Invalid(String),
    /// After: back to the client (RFC 6749 §4.1.2.1).
    Redirect {
        to: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
    /// The store failed.
    Unavailable,
}

/// A request checked against its client.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checked<'a> {
    redirect_uri: String,
    redirect_uri_sent: bool,
    scope: String,
    resources: Vec<String>,
    state: Option<&'a str>,
    code_challenge: &'a str,
    dpop_jkt: Option<&'a str>,
    prompt: Option<&'a str>,
    max_age: Option<u64>,
    acr_values: Option<&'a str>,
    login_hint: Option<&'a str>,
}

/// Checks the request against `client` (`None`: unknown or disabled), in
/// the order that keeps every error off an unvalidated URI. Pure.
fn check<'a>(params: &'a Form, client: Option<&Client>) -> Result<Checked<'a>, Refusal> {
    let Some(client) = client.filter(|c| !c.redirect_uris.is_empty()) else {
        return Err(Refusal::Page(
            "The client is unknown or may not use the authorization endpoint.",
        ));
    };
    let (redirect_uri, sent) = match params.get("redirect_uri") {
        Some(uri)
            if redirect::matches(&client.redirect_uris, uri, client.allow_localhost_redirect) =>
        {
            (uri.to_owned(), true)
        }
        Some(_) => {
            return Err(Refusal::Page(
                "The redirect_uri is not one registered for the client.",
            ));
        }
        // RFC 6749 §3.1.2.3: optional only when exactly one is registered.
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => return Err(Refusal::Page("The redirect_uri parameter is missing.")),
        },
    };
    let state = params.get("state");
    let back = |error: &'static str, description: &'static str| Refusal::Redirect {
        to: redirect_uri.clone(),
        state: state.filter(|s| s.len() <= MAX_STATE).map(str::to_owned),
        error,
        description,
    };
    let invalid = |description| back("invalid_request", description);
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(invalid("The response_type parameter is missing")),
        Some(_) => {
            return Err(back(
                "unsupported_response_type",
                "Only response_type=code is supported",
            ));
        }
    }
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(invalid("The state is too long"));
    }
    if params.get("request").is_some() {
        return Err(back(
            "request_not_supported",
            "Request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(back(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    // PKCE with S256 for every client (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1).
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(invalid(
            "PKCE is required: the code_challenge parameter is missing",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(invalid("The code_challenge_method must be S256"));
    }
    if !is_s256_challenge(code_challenge) {
        return Err(invalid("The code_challenge is not an S256 challenge"));
    }
    let Some(scope) = scope::narrow(&client.scope, params.get("scope")) else {
        return Err(back(
            "invalid_scope",
            "The requested scope is not allowed for this client",
        ));
    };
    let requested: Vec<&str> = params.get_all("resource").collect();
    if requested.iter().any(|r| !is_absolute_uri(r)) {
        return Err(back(
            "invalid_target",
            "A resource must be an absolute URI without a fragment",
        ));
    }
    let resources = if requested.is_empty() {
        Vec::new()
    } else {
        audience::narrow(&client.resources, &requested).ok_or_else(|| {
            back(
                "invalid_target",
                "The requested resource is not allowed for this client",
            )
        })?
    };
    let dpop_jkt = params.get("dpop_jkt");
    if dpop_jkt.is_some_and(|j| !is_s256_challenge(j)) {
        // A JWK SHA-256 thumbprint has the shape of an S256 challenge.
        return Err(invalid("The dpop_jkt is not a JWK SHA-256 thumbprint"));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .ok()
                .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| invalid("The max_age must be a number of seconds"))?,
        ),
    };
    let prompt = params.get("prompt");
    if prompt.is_some_and(|p| {
        p.len() > 64
            || !p.split(' ').all(|v| {
                matches!(
                    v,
                    "none" | "login" | "consent" | "select_account" | "create"
                )
            })
    }) {
        return Err(invalid("The prompt has an unknown value"));
    }
    let acr_values = params.get("acr_values");
    let login_hint = params.get("login_hint");
    if acr_values.is_some_and(|a| a.len() > MAX_HINT)
        || login_hint.is_some_and(|h| h.len() > MAX_HINT)
    {
        return Err(invalid("The acr_values or login_hint is too long"));
    }
    Ok(Checked {
        redirect_uri,
        redirect_uri_sent: sent,
        scope,
        resources,
        state,
        code_challenge,
        dpop_jkt,
        prompt,
        max_age,
        acr_values,
        login_hint,
    })
}

/// The `/authorize` endpoint as a Tower service: GET (query) or POST
/// (form). From [`TokenEndpoint::authorization_endpoint`](super::TokenEndpoint::authorization_endpoint).
#[derive(Clone)]
pub struct AuthorizationEndpoint {
    pub(super) inner: Arc<Inner>,
    pub(super) settings: Arc<Authorization>,
}

impl fmt::Debug for AuthorizationEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationEndpoint")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AuthorizationEndpoint {
    async fn answer<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        match self.accept(req).await {
            Ok(response) => response,
            Err(Refusal::Page(why)) => page(StatusCode::BAD_REQUEST, why),
            #[cfg(feature = "client-metadata")]
            Err(Refusal::Invalid(why)) => page(StatusCode::BAD_REQUEST, why),
            Err(Refusal::Unavailable) => {
                let mut r = page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable; try again.",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            Err(Refusal::Redirect {
                to,
                state,
                error,
                description,
            }) => {
                let mut params = vec![("error", error), ("error_description", description)];
                if let Some(state) = &state {
                    params.push(("state", state));
                }
                params.push(("iss", self.inner.issuer.issuer()));
                see_other(&redirect::with_params(&to, &params))
            }
        }
    }

    async fn accept<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, Refusal>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let meta = inner.request_context(peer_addr(&req), req.headers());
        inner
            .limits
            .request(meta.ip)
            .map_err(|_| Refusal::Page("Too many requests; try again later."))?;
        let headers = req.headers().clone();
        let params = self.params(req).await?;
        let client = match params.get("client_id") {
            Some(id) => self.client(id, meta.ip).await?.filter(|c| !c.disabled),
            None => None,
        };
        let checked = check(&params, client.as_ref())?;
        let client = client.expect("check refuses an unknown client");
        if client.registration != Registration::Registered {
            // What lets an unused registered-by-itself client expire.
            store::clients::touch_authorized(
                inner.issuer.db(),
                &client.client_id,
                inner.issuer.now(),
            )
            .await
            .map_err(|_| Refusal::Unavailable)?;
        }
        let (browser, set_cookie) = match browser_cookie(&headers) {
            Some(existing) => (existing, None),
            None => {
                let fresh = random_token();
                let cookie =
                    format!("{BROWSER_COOKIE}={fresh}; Path=/; Secure; HttpOnly; SameSite=Lax");
                (fresh, Some(cookie))
            }
        };
        let id = random_token();
        let now = inner.issuer.now();
        store::authorizations::create(
            inner.issuer.db(),
            &NewAuthorization {
                request_hash: hash_token(&id),
                browser_hash: hash_token(&browser),
                client_id: &client.client_id,
                redirect_uri: &checked.redirect_uri,
                redirect_uri_sent: checked.redirect_uri_sent,
                scope: &checked.scope,
                resources: &checked.resources,
                state: checked.state,
                code_challenge: checked.code_challenge,
                dpop_jkt: checked.dpop_jkt,
                prompt: checked.prompt,
                max_age: checked.max_age,
                acr_values: checked.acr_values,
                login_hint: checked.login_hint,
                now,
                expires_at: now + self.settings.pending_ttl,
            },
        )
        .await
        .map_err(|_| Refusal::Unavailable)?;
        let mut response = see_other(&redirect::with_params(
            &self.settings.login_url,
            &[(PENDING_PARAMETER, &id)],
        ));
        if let Some(cookie) = set_cookie {
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::try_from(cookie).expect("a base64url cookie is a header value"),
            );
        }
        Ok(response)
    }

    /// The client `id` names: registered, or (when metadata documents are
    /// accepted) the one its document describes.
    #[cfg_attr(not(feature = "client-metadata"), allow(unused_variables))]
    async fn client(&self, id: &str, ip: Option<IpAddr>) -> Result<Option<Client>, Refusal> {
        let db = self.inner.issuer.db();
        let stored = store::clients::find(db, id)
            .await
            .map_err(|_| Refusal::Unavailable)?;
        #[cfg(feature = "client-metadata")]
        if let Some(documents) = &self.inner.documents {
            use super::documents::Refused;
            return documents
                .client(&self.inner.issuer, id, stored, ip)
                .await
                .map_err(|e| match e {
                    Refused::Invalid(why) => Refusal::Invalid(why),
                    Refused::Unavailable => Refusal::Unavailable,
                });
        }
        // Documents no longer accepted: the clients they made are not
        // either.
        Ok(stored.filter(|c| c.registration != Registration::MetadataDocument))
    }

    /// The request's parameters: the query of a GET, the form of a POST
    /// (within the endpoint's body cap), parsed strictly (a repeated
    /// parameter is refused).
    async fn params<B>(&self, req: Request<B>) -> Result<Form, Refusal>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let malformed = Refusal::Page("The authorization request is malformed.");
        let raw = match *req.method() {
            Method::GET => Bytes::copy_from_slice(req.uri().query().unwrap_or_default().as_bytes()),
            Method::POST => Limited::new(req.into_body(), self.inner.max_body)
                .collect()
                .await
                .map_err(|_| malformed.clone())?
                .to_bytes(),
            _ => return Err(Refusal::Page("Use GET or POST.")),
        };
        Form::parse(&raw).map_err(|_| malformed)
    }
}

super::pipeline::endpoint_service!(AuthorizationEndpoint: answer);

/// The browser cookie the request carries, if it is one of ours (43
/// base64url characters, once).
fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    let mut values = crate::header::cookies(headers, BROWSER_COOKIE);
    let value = values.next()?;
    if values.next().is_some() || !is_s256_challenge(std::str::from_utf8(value).ok()?) {
        return None;
    }
    std::str::from_utf8(value).ok().map(str::to_owned)
}

/// A plain-text page with headers that keep it out of frames, caches and
/// scripts.
fn page(status: StatusCode, text: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(text.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    security_headers(h);
    r
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `303 See Other` to `location` (RFC 9110 §15.4.4: the browser follows
/// with GET, so a POSTed form is not sent on).
fn see_other(location: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    security_headers(h);
    match HeaderValue::try_from(location) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
            r
        }
        // Every part was checked or encoded: unreachable, but never a
        // redirect to something else.
        Err(_) => page(StatusCode::BAD_REQUEST, "The redirect could not be built."),
    }
}

/// The application's side of `/authorize`: what a pending request asks
/// for, and its answer. From [`TokenEndpoint::authorizer`](super::TokenEndpoint::authorizer).
///
/// Every call takes the headers of the browser's request to the
/// application's page: the pending id works only with the cookie
/// `/authorize` set in that browser.
#[derive(Clone)]
pub struct Authorizer {
    pub(super) inner: Arc<Inner>,
    pub(super) settings: Arc<Authorization>,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a pending authorization request asks for: what the consent page
/// shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The client's id.
    pub client_id: String,
    /// The client's display name. For a client that is not
    /// [`Registration::Registered`], the client's own claim: show it as
    /// such, beside [`client_id_host`](Self::client_id_host).
    pub client_name: String,
    /// How the client came to be known: registered by an operator, named
    /// by its metadata document's URL, or registered by itself (RFC
    /// 7591). Only the first was vetted by anyone.
    pub registration: Registration,
    /// For a client named by its metadata document: the host of its
    /// `client_id` URL, the one name in it the client cannot choose
    /// freely. Show it.
    pub client_id_host: Option<String>,
    /// The logo the client gave (`https`), to show.
    pub logo_uri: Option<String>,
    /// The client's home page (`https`).
    pub client_uri: Option<String>,
    /// The logo or home page is on another host than the client id's
    /// (allowed, as real clients do it; say so).
    pub links_elsewhere: bool,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// The redirect URI's host: show it, so the user sees where they are
    /// sent.
    pub redirect_host: String,
    /// The redirect goes to a program on the user's own machine
    /// (`http://127.0.0.1`, `[::1]`, `localhost`): warn.
    pub loopback: bool,
    /// The scopes requested.
    pub scopes: Vec<String>,
    /// The RFC 8707 resources requested.
    pub resources: Vec<String>,
    /// OpenID Connect `prompt`.
    pub prompt: Option<String>,
    /// `max_age`: the user must have authenticated within it.
    pub max_age: Option<Duration>,
    /// `acr_values`, in order of preference.
    pub acr_values: Vec<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
}

/// The application's approval: who signed in, how, and what they granted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Approve {
    /// The user's id: the `sub` of every token of the session.
    pub subject: String,
    /// When the user authenticated (RFC 9068 §2.2.1 `auth_time`).
    pub auth_time: Option<SystemTime>,
    /// The authentication context class reached (`acr`).
    pub acr: Option<String>,
    /// The authentication methods (`amr`, RFC 8176).
    pub amr: Vec<String>,
    /// The scope granted, if narrower than requested.
    pub scope: Option<String>,
    /// Remember this consent, so that [`Authorizer::remembered_consent`]
    /// covers the client's later requests for no more than this.
    pub remember: bool,
}

impl Approve {
    /// `subject` signed in and granted everything requested.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            scope: None,
            remember: false,
        }
    }

    /// Remembers the consent: the subject's later requests from this
    /// client to the same redirect URI (a loopback one with any port),
    /// for no more than the scope granted now and the resources requested
    /// now, are [`Authorizer::remembered_consent`], until
    /// [`Authorizer::revoke_consent`] or another remembered approval
    /// replaces it.
    pub fn remember(mut self) -> Self {
        self.remember = true;
        self
    }

    /// When the user authenticated.
    pub fn auth_time(mut self, at: SystemTime) -> Self {
        self.auth_time = Some(at);
        self
    }

    /// The authentication context class and methods.
    pub fn acr(
        mut self,
        acr: impl Into<String>,
        amr: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.acr = Some(acr.into());
        self.amr = amr.into_iter().map(Into::into).collect();
        self
    }

    /// Grants only `scope` (space-separated, within what was requested).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// Why the application's call about a pending request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// No such pending request: unknown, decided already, expired, or
    /// started in another browser. Show the user an error; do not
    /// redirect.
    #[error("no such pending authorization request")]
    UnknownRequest,
    /// The approval grants a scope that was not requested.
    #[error("the granted scope exceeds the requested scope")]
    InvalidScope,
    /// The subject is empty or names a client.
    #[error("the subject is empty or reserved for clients")]
    ReservedSubject,
    /// The store failed; nothing was decided. Try again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Authorizer {
    fn keys(headers: &HeaderMap, id: &str) -> Result<([u8; 32], [u8; 32]), AuthorizeError> {
        let browser = browser_cookie(headers).ok_or(AuthorizeError::UnknownRequest)?;
        Ok((hash_token(id), hash_token(&browser)))
    }

    /// What the pending request `id` asks for, read with the headers of
    /// the browser's request (its cookie).
    pub async fn pending(
        &self,
        headers: &HeaderMap,
        id: &str,
    ) -> Result<PendingAuthorization, AuthorizeError> {
        let (request, browser) = Self::keys(headers, id)?;
        let issuer = &self.inner.issuer;
        let stored = store::authorizations::pending(issuer.db(), &request, &browser, issuer.now())
            .await?
            .ok_or(AuthorizeError::UnknownRequest)?;
        let client = store::clients::find(issuer.db(), &stored.client_id)
            .await?
            .filter(|c| !c.disabled)
            .ok_or(AuthorizeError::UnknownRequest)?;
        let client_id_host = (client.registration == Registration::MetadataDocument)
            .then(|| host_of(&client.client_id).to_owned());
        let links_elsewhere = client_id_host.as_deref().is_some_and(|home| {
            [&client.logo_uri, &client.client_uri]
                .into_iter()
                .flatten()
                .any(|u| host_of(u) != home)
        });
        Ok(PendingAuthorization {
            redirect_host: host_of(&stored.redirect_uri).to_owned(),
            registration: client.registration,
            client_id_host,
            logo_uri: client.logo_uri,
            client_uri: client.client_uri,
            links_elsewhere,
            loopback: redirect::is_loopback(&stored.redirect_uri),
            client_id: client.client_id,
            client_name: client.name,
            scopes: stored
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            resources: stored.resources.clone(),
            prompt: stored.prompt.clone(),
            max_age: stored.max_age.map(Duration::from_secs),
            acr_values: stored
                .acr_values
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            login_hint: stored.login_hint.clone(),
            redirect_uri: stored.redirect_uri,
        })
    }

    /// Approves the pending request `id`: a code is issued and the answer
    /// is the `303` back to the client with `code`, `state` and `iss`.
    /// Works once; a second call (or a [`deny`](Self::deny)) finds nothing.
    pub async fn complete(
        &self,
        headers: &HeaderMap,
        id: &str,
        approve: Approve,
    ) -> Result<Response<Full<Bytes>>, AuthorizeError> {
        let (request, browser) = Self::keys(headers, id)?;
        if approve.subject.is_empty()
            || approve
                .subject
                .starts_with(crate::claims::CLIENT_SUBJECT_PREFIX)
            || approve.subject.len() > 255
        {
            return Err(AuthorizeError::ReservedSubject);
        }
        let issuer = &self.inner.issuer;
        let now = issuer.now();
        // The scope is checked against the stored request before the
        // decision is written, so a refused approval leaves it pending.
        let stored = store::authorizations::pending(issuer.db(), &request, &browser, now)
            .await?
            .ok_or(AuthorizeError::UnknownRequest)?;
        let granted = scope::narrow(&stored.scope, approve.scope.as_deref())
            .ok_or(AuthorizeError::InvalidScope)?;
        let code = random_token();
        let amr = (!approve.amr.is_empty()).then(|| approve.amr.join(" "));
        let decided = store::authorizations::decide(
            issuer.db(),
            &request,
            &browser,
            now,
            &Decision::Approve {
                code_hash: hash_token(&code),
                code_expires_at: now + self.settings.code_ttl,
                subject: &approve.subject,
                auth_time: approve.auth_time,
                acr: approve.acr.as_deref(),
                amr,
                granted_scope: &granted,
                remember: approve.remember,
            },
        )
        .await?
        .ok_or(AuthorizeError::UnknownRequest)?;
        Ok(self.back(&decided, &[("code", &code)]))
    }

    /// Denies the pending request `id`: the answer is the `303` back to
    /// the client with `error=access_denied`.
    pub async fn deny(
        &self,
        headers: &HeaderMap,
        id: &str,
    ) -> Result<Response<Full<Bytes>>, AuthorizeError> {
        let (request, browser) = Self::keys(headers, id)?;
        let issuer = &self.inner.issuer;
        let decided = store::authorizations::decide(
            issuer.db(),
            &request,
            &browser,
            issuer.now(),
            &Decision::Deny,
        )
        .await?
        .ok_or(AuthorizeError::UnknownRequest)?;
        Ok(self.back(
            &decided,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied the request"),
            ],
        ))
    }

    /// The redirect to the client: `params`, then `state` and `iss`.
    fn back(&self, stored: &Stored, params: &[(&str, &str)]) -> Response<Full<Bytes>> {
        let mut all = params.to_vec();
        if let Some(state) = &stored.state {
            all.push(("state", state));
        }
        all.push(("iss", self.inner.issuer.issuer()));
        see_other(&redirect::with_params(&stored.redirect_uri, &all))
    }
}

/// The host of a checked redirect URI, as the consent page shows it.
fn host_of(uri: &str) -> &str {
    let after = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = after.split(['/', '?']).next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client() -> Client {
        let mut c = Client::for_tests(false, "read write", &["https://api.example"]);
        c.redirect_uris = vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ];
        c
    }

    fn form(q: &str) -> Form {
        Form::parse(q.as_bytes()).unwrap()
    }

    fn ok(q: &str) -> String {
        format!(
            "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256{q}"
        )
    }

    #[test]
    fn a_valid_request_is_remembered_as_sent() {
        let f = form(&ok(
            "&state=xyz&scope=read&resource=https%3A%2F%2Fapi.example&max_age=60&prompt=login+consent",
        ));
        let c = check(&f, Some(&client())).unwrap();
        assert_eq!(c.redirect_uri, "https://app.example/cb");
        assert!(c.redirect_uri_sent);
        assert_eq!((c.scope.as_str(), c.state), ("read", Some("xyz")));
        assert_eq!(c.resources, ["https://api.example"]);
        assert_eq!((c.max_age, c.prompt), (Some(60), Some("login consent")));
        // Everything the client may have when no scope is asked for.
        let all = form(&ok(""));
        let c = check(&all, Some(&client())).unwrap();
        assert_eq!(c.scope, "read write");
        // A loopback redirect with the port the app got.
        let f = form(&ok("").replace(
            "https%3A%2F%2Fapp.example%2Fcb",
            "http%3A%2F%2F127.0.0.1%3A49152%2Fcb",
        ));
        assert_eq!(
            check(&f, Some(&client())).unwrap().redirect_uri,
            "http://127.0.0.1:49152/cb"
        );
    }

    #[test]
    fn no_redirect_before_the_uri_is_the_clients() {
        let page = |q: &str, c: Option<&Client>| match check(&form(q), c) {
            Err(Refusal::Page(_)) => true,
            other => panic!("{q}: {other:?}"),
        };
        assert!(page(&ok(""), None));
        let mut none = client();
        none.redirect_uris.clear();
        assert!(page(&ok(""), Some(&none)));
        assert!(page(
            &ok("").replace("app.example", "evil.example"),
            Some(&client())
        ));
        // Two registered: the parameter is required.
        assert!(page(
            &ok("").replace("redirect_uri=https%3A%2F%2Fapp.example%2Fcb&", ""),
            Some(&client())
        ));
        // Even a bad response_type is not told to an unregistered URI.
        assert!(page(
            "client_id=c&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=token",
            Some(&client())
        ));
        // One registered: it is used.
        let mut one = client();
        one.redirect_uris.truncate(1);
        let without_uri = form(&ok("").replace("redirect_uri=https%3A%2F%2Fapp.example%2Fcb&", ""));
        let c = check(&without_uri, Some(&one)).unwrap();
        assert_eq!(
            (c.redirect_uri.as_str(), c.redirect_uri_sent),
            ("https://app.example/cb", false)
        );
    }

    #[test]
    fn later_errors_go_back_with_state() {
        let back = |q: String| match check(&form(&q), Some(&client())) {
            Err(Refusal::Redirect {
                to, state, error, ..
            }) => {
                assert_eq!(to, "https://app.example/cb");
                assert_eq!(state.as_deref(), Some("s1"));
                error
            }
            other => panic!("{q}: {other:?}"),
        };
        let with_state = |q: &str| ok(&format!("&state=s1{q}"));
        assert_eq!(
            back(with_state("").replace("response_type=code", "response_type=token")),
            "unsupported_response_type"
        );
        assert_eq!(
            back(with_state("").replace("response_type=code&", "")),
            "invalid_request"
        );
        assert_eq!(
            back(with_state("").replace(&format!("code_challenge={CHALLENGE}&"), "")),
            "invalid_request"
        );
        assert_eq!(
            back(with_state("").replace("S256", "plain")),
            "invalid_request"
        );
        assert_eq!(
            back(with_state("").replace("&code_challenge_method=S256", "")),
            "invalid_request"
        );
        assert_eq!(
            back(with_state("").replace(CHALLENGE, "short")),
            "invalid_request"
        );
        assert_eq!(back(with_state("&scope=admin")), "invalid_scope");
        assert_eq!(
            back(with_state("&resource=https%3A%2F%2Fother.example")),
            "invalid_target"
        );
        assert_eq!(back(with_state("&resource=relative")), "invalid_target");
        assert_eq!(back(with_state("&dpop_jkt=nope")), "invalid_request");
        assert_eq!(back(with_state("&max_age=-1")), "invalid_request");
        assert_eq!(back(with_state("&max_age=%2B5")), "invalid_request");
        assert_eq!(back(with_state("&prompt=sudo")), "invalid_request");
        assert_eq!(back(with_state("&request=eyJ")), "request_not_supported");
        assert_eq!(
            back(with_state("&request_uri=urn%3Ax")),
            "request_uri_not_supported"
        );
    }

    #[test]
    fn settings_need_a_login_url_that_can_work() {
        assert!(Authorization::new("/login").is_valid());
        assert!(Authorization::new("https://app.example/login").is_valid());
        assert!(Authorization::new("http://127.0.0.1:3000/login").is_valid());
        for bad in [
            "//evil.example/login",
            "login",
            "http://app.example/login",
            "/a#b",
            "",
        ] {
            assert!(!Authorization::new(bad).is_valid(), "{bad}");
        }
        assert!(
            !Authorization::new("/login")
                .code_ttl(Duration::ZERO)
                .is_valid()
        );
    }

    #[test]
    fn the_consent_page_gets_the_bare_host() {
        assert_eq!(host_of("https://app.example:8443/cb?x"), "app.example");
        assert_eq!(host_of("http://[::1]:5000/cb"), "::1");
        assert_eq!(host_of("http://127.0.0.1/cb"), "127.0.0.1");
    }
}
