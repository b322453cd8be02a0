//! Dynamic client registration (RFC 7591), opt-in: `POST /register` with
//! the client's metadata as JSON, answered `201` with its `client_id`
//! (RFC 7591 §3.2.1) or `400` with `invalid_redirect_uri` /
//! `invalid_client_metadata` (§3.2.2). Open, or behind an initial access
//! token (§3, checked in constant time); limited per source IP; public
//! clients only unless confidential ones are allowed. What a registered
//! client may ask for is this server's decision: its scope is the
//! server's, narrowed to what the client asked; its redirect URIs are
//! checked as the authorization endpoint checks them (a loopback one
//! matches with any port, RFC 8252 §7.3). Registered clients live in the
//! store like any other, and the janitor deletes them once unused
//! ([`JanitorBuilder::unused_client_ttl`](crate::store::cleanup::JanitorBuilder::unused_client_ttl)).
//! RFC 7592 management is not offered.

use std::{fmt, sync::Arc, time::UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{
    Limit,
    pipeline::{BoxError, Inner},
    response::json,
};
use crate::{
    binding::peer_addr,
    client_metadata::SUPPORTED_GRANTS,
    events::SecurityEvent,
    identifier::is_https_link,
    redirect, scope,
    secret::{hash_token, random_token},
    store::{self, clients::NewClient},
};

/// Default limit on registrations from one source IP: 20 an hour.
pub const DEFAULT_REGISTRATIONS_PER_IP: Limit =
    Limit::new(20, std::time::Duration::from_secs(3600));

/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;

/// Who may register.
#[derive(Clone)]
enum Access {
    Open,
    /// SHA-256 of the initial access token.
    Token([u8; 32]),
}

/// Dynamic client registration's settings, for
/// [`TokenEndpointBuilder::dynamic_registration`](super::TokenEndpointBuilder::dynamic_registration).
///
/// ```
/// use tollgate::token_endpoint::{DynamicRegistration, Limit};
///
/// let open = DynamicRegistration::open("tools:read")
///     .resources(["https://mcp.example/mcp"])
///     .per_ip(Limit::per_minute(5));
/// let gated = DynamicRegistration::with_initial_access_token("a-long-random-token", "tools:read");
/// # let _ = (open, gated);
/// ```
#[derive(Clone)]
#[must_use]
pub struct DynamicRegistration {
    access: Access,
    template: NewClient,
    allow_confidential: bool,
    pub(super) per_ip: Limit,
}

impl fmt::Debug for DynamicRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicRegistration")
            .field("open", &matches!(self.access, Access::Open))
            .field("scope", &self.template.scope)
            .field("allow_confidential", &self.allow_confidential)
            .field("per_ip", &self.per_ip)
            .finish_non_exhaustive()
    }
}

impl DynamicRegistration {
    /// Anyone may register a client, which may be granted at most `scope`
    /// (space-separated).
    pub fn open(scope: impl Into<String>) -> Self {
        Self {
            access: Access::Open,
            template: NewClient::public("", scope),
            allow_confidential: false,
            per_ip: DEFAULT_REGISTRATIONS_PER_IP,
        }
    }

    /// Only a request with `Authorization: Bearer <token>` may register
    /// (RFC 7591 §3: an initial access token, handed out of band).
    pub fn with_initial_access_token(token: &str, scope: impl Into<String>) -> Self {
        Self {
            access: Access::Token(hash_token(token)),
            ..Self::open(scope)
        }
    }

    /// The RFC 8707 resources registered clients may ask tokens for.
    pub fn resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.template.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// Allows confidential clients (`client_secret_basic`,
    /// `client_secret_post`): each gets a secret in the answer. Off by
    /// default: anyone who registers is a stranger, and a secret proves
    /// only that the same stranger came back.
    pub fn allow_confidential(mut self) -> Self {
        self.allow_confidential = true;
        self
    }

    /// At most `limit` registrations per source IP. Default
    /// [`DEFAULT_REGISTRATIONS_PER_IP`].
    pub fn per_ip(mut self, limit: Limit) -> Self {
        self.per_ip = limit;
        self
    }

    /// Whether the settings can make a client row.
    pub(super) fn is_valid(&self) -> bool {
        store::clients::template_is_valid(&self.template)
    }

    /// Whether the request carries the initial access token, if one is
    /// needed. Constant-time over the token's hash.
    fn admits(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Access::Token(expected) = &self.access else {
            return Ok(());
        };
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let presented = match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok().and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
            }),
            (None, _) => return Err(Refusal::Unauthorized { error: false }),
            _ => None,
        };
        match presented {
            Some(t) if bool::from(hash_token(t).ct_eq(expected)) => Ok(()),
            _ => Err(Refusal::Unauthorized { error: true }),
        }
    }
}

/// The client's request (RFC 7591 §2). Every member is optional; a
/// member of the wrong type makes the request `invalid_client_metadata`.
/// Members this server does not use (`contacts`, `tos_uri`, `jwks`, …)
/// are read and dropped.
#[derive(Debug, Deserialize)]
struct Request7591 {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    scope: Option<String>,
    software_statement: Option<serde::de::IgnoredAny>,
}

/// The answer (RFC 7591 §3.2.1): the client's id and every member as
/// registered, which may differ from what was asked.
#[derive(Debug, Serialize)]
struct Registered<'a> {
    client_id: &'a str,
    client_id_issued_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    /// 0: the secret does not expire (REQUIRED with a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<u64>,
    redirect_uris: &'a [String],
    token_endpoint_auth_method: &'a str,
    grant_types: &'a [&'a str],
    response_types: [&'a str; 1],
    client_name: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<&'a str>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// §3.2.2, `400`.
    Invalid {
        error: &'static str,
        description: &'static str,
    },
    /// No initial access token (`error: false`, RFC 6750 §3.1), or a
    /// wrong one.
    Unauthorized { error: bool },
    /// Over the per-IP limit.
    TooMany { retry_after: u64 },
    /// Not a POST (RFC 9110 §15.5.6: `405` with `Allow`).
    Method,
    /// The store failed.
    Unavailable,
}

fn metadata(description: &'static str) -> Refusal {
    Refusal::Invalid {
        error: "invalid_client_metadata",
        description,
    }
}

/// What will be registered: the checked request. Pure.
fn check(
    settings: &DynamicRegistration,
    body: &[u8],
) -> Result<(NewClient, Vec<&'static str>), Refusal> {
    let req: Request7591 = serde_json::from_slice(body)
        .map_err(|_| metadata("The request is not a JSON object of client metadata"))?;
    if req.software_statement.is_some() {
        return Err(Refusal::Invalid {
            error: "unapproved_software_statement",
            description: "Software statements are not accepted here",
        });
    }
    let invalid_redirect = |description| Refusal::Invalid {
        error: "invalid_redirect_uri",
        description,
    };
    let redirect_uris = req.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(invalid_redirect(
            "At least one redirect URI is needed for the authorization code grant",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid_redirect(
            "At most 10 redirect URIs may be registered",
        ));
    }
    if let Some(why) = redirect_uris
        .iter()
        .find_map(|r| redirect::check_registrable(r).err())
    {
        return Err(invalid_redirect(why.describe()));
    }
    // RFC 7591 §2 defaults to client_secret_basic; a request that names no
    // method gets what this server registers, and the answer says which.
    let confidential = match req.token_endpoint_auth_method.as_deref() {
        None => settings.allow_confidential,
        Some("none") => false,
        Some("client_secret_basic" | "client_secret_post") if settings.allow_confidential => true,
        Some("client_secret_basic" | "client_secret_post") => {
            return Err(metadata(
                "Only public clients (token_endpoint_auth_method \"none\") may register",
            ));
        }
        Some(_) => return Err(metadata("The token_endpoint_auth_method is not supported")),
    };
    // Grant types this server does not offer a registered client are
    // dropped (the answer lists what it got), as for metadata documents.
    let grants: Vec<&'static str> = match &req.grant_types {
        None => SUPPORTED_GRANTS.to_vec(),
        Some(listed) => SUPPORTED_GRANTS
            .into_iter()
            .filter(|g| listed.iter().any(|l| l == g))
            .collect(),
    };
    if !grants.contains(&"authorization_code") {
        return Err(metadata(
            "The grant_types must include authorization_code, the one this server registers",
        ));
    }
    if req
        .response_types
        .as_ref()
        .is_some_and(|r| !r.iter().any(|t| t == "code"))
    {
        return Err(metadata("The response_types must include code"));
    }
    let link = |u: Option<String>| match u {
        Some(u) if is_https_link(&u) => Ok(Some(u)),
        Some(_) => Err(metadata("The logo_uri and client_uri must be https URLs")),
        None => Ok(None),
    };
    let (logo_uri, client_uri) = (link(req.logo_uri)?, link(req.client_uri)?);
    // The server's scope, narrowed to the tokens the client named that it
    // may have (none of them: the server's).
    let scope = match req.scope.as_deref() {
        Some(asked)
            if !asked
                .split(' ')
                .all(|t| t.is_empty() || scope::is_scope_token(t)) =>
        {
            return Err(metadata("The scope is not a list of scope tokens"));
        }
        Some(asked) => {
            let kept: Vec<&str> = asked
                .split(' ')
                .filter(|t| scope::contains(&settings.template.scope, t))
                .collect();
            if kept.is_empty() {
                settings.template.scope.clone()
            } else {
                kept.join(" ")
            }
        }
        None => settings.template.scope.clone(),
    };
    let mut new = settings.template.clone();
    new.client_id = random_token();
    new.confidential = confidential;
    new.scope = scope;
    new.name = match req.client_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => store::clients::cut_name(n),
        _ => "Unnamed client".to_owned(),
    };
    new.redirect_uris = redirect_uris;
    new.logo_uri = logo_uri;
    new.client_uri = client_uri;
    Ok((new, grants))
}

/// The registration endpoint as a Tower service, from
/// [`TokenEndpoint::registration_endpoint`](super::TokenEndpoint::registration_endpoint).
/// Mount it at [`EndpointPaths::registration`](super::EndpointPaths::registration).
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, StatusCode, header};
/// use http_body_util::{BodyExt, Full};
/// use tollgate::{
///     issuer::Issuer, keys::{Algorithm, SigningKey}, secret::RefreshSecret, store,
///     token_endpoint::{Authorization, DynamicRegistration, TokenEndpoint},
/// };
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// store::migrate(&db).await.unwrap();
/// let issuer = Issuer::builder()
///     .db(db)
///     .keys(SigningKey::hmac("k", Algorithm::HS256, &[1; 32]).unwrap())
///     .issuer("https://auth.example")
///     .audience("https://mcp.example/mcp")
///     .refresh_secret(RefreshSecret::new(&[2; 32]).unwrap())
///     .build()
///     .unwrap();
/// let endpoint = TokenEndpoint::builder(issuer)
///     .authorization(Authorization::new("/login"))
///     .dynamic_registration(DynamicRegistration::open("tools:read"))
///     .build()
///     .unwrap();
///
/// let req = Request::post("/register")
///     .header(header::CONTENT_TYPE, "application/json")
///     .body(Full::new(Bytes::from_static(
///         br#"{"client_name":"Editor","redirect_uris":["http://127.0.0.1:33418/callback"],
///             "token_endpoint_auth_method":"none"}"#,
///     )))
///     .unwrap();
/// let res = endpoint.registration_endpoint().unwrap().oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::CREATED);
/// let client: serde_json::Value =
///     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
/// assert_eq!(client["token_endpoint_auth_method"], "none");
/// assert_eq!(client["scope"], "tools:read");
/// # });
/// ```
#[derive(Clone)]
pub struct RegistrationEndpoint {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for RegistrationEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationEndpoint")
            .finish_non_exhaustive()
    }
}

impl RegistrationEndpoint {
    fn settings(&self) -> &DynamicRegistration {
        self.inner
            .registration
            .as_ref()
            .expect("built only when registration is on")
    }

    /// The answer to one request: the registration, or the refusal's.
    async fn answer<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        match self.register(req).await {
            Ok(r) => r,
            Err(e) => refusal(e, &self.inner.realm),
        }
    }

    async fn register<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, Refusal>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let settings = self.settings();
        if req.method() != Method::POST {
            return Err(Refusal::Method);
        }
        settings.admits(req.headers())?;
        let meta = inner.request_context(peer_addr(&req), req.headers());
        inner
            .limited(
                inner.limits.registration(meta.ip),
                "registrations_per_ip",
                &meta,
            )
            .map_err(|e| match e {
                super::TokenError::TooManyRequests { retry_after } => {
                    Refusal::TooMany { retry_after }
                }
                _ => Refusal::Unavailable,
            })?;
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(metadata("The request must be application/json"));
        }
        let body = Limited::new(req.into_body(), inner.max_body)
            .collect()
            .await
            .map_err(|_| metadata("The request body is too large or was cut off"))?
            .to_bytes();
        let (new, grants) = check(settings, &body)?;
        let now = inner.issuer.now();
        let client_id = new.client_id.clone();
        let secret = store::clients::register_dynamic(inner.issuer.db(), new.clone(), now)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "a client registration could not be stored");
                Refusal::Unavailable
            })?;
        tracing::info!(
            client_id,
            confidential = new.confidential,
            "client registered itself"
        );
        inner.issuer.events().emit(SecurityEvent::ClientRegistered {
            client_id: client_id.clone(),
            kind: "dynamic",
            ip: meta.ip,
        });
        let issued_at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let answer = Registered {
            client_id: &client_id,
            client_id_issued_at: issued_at,
            client_secret: secret.as_deref(),
            client_secret_expires_at: secret.as_ref().map(|_| 0),
            redirect_uris: &new.redirect_uris,
            token_endpoint_auth_method: if new.confidential {
                "client_secret_basic"
            } else {
                "none"
            },
            grant_types: &grants,
            response_types: ["code"],
            client_name: &new.name,
            scope: &new.scope,
            logo_uri: new.logo_uri.as_deref(),
            client_uri: new.client_uri.as_deref(),
        };
        let body = serde_json::to_vec(&answer).map_err(|_| Refusal::Unavailable)?;
        Ok(json(StatusCode::CREATED, body))
    }
}

fn refusal(r: Refusal, realm: &str) -> Response<Full<Bytes>> {
    let error_body = |error: &str, description: &str| {
        serde_json::to_vec(&serde_json::json!({
            "error": error,
            "error_description": description,
        }))
        .unwrap_or_default()
    };
    match r {
        Refusal::Invalid { error, description } => {
            json(StatusCode::BAD_REQUEST, error_body(error, description))
        }
        Refusal::Unauthorized { error } => {
            let challenge = if error {
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
            } else {
                format!("Bearer realm=\"{realm}\"")
            };
            let mut r = json(
                StatusCode::UNAUTHORIZED,
                error_body(
                    "invalid_token",
                    "Registration needs a valid initial access token",
                ),
            );
            if let Ok(v) = HeaderValue::try_from(challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
        Refusal::TooMany { retry_after } => {
            let mut r = json(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "too_many_requests",
                    "Too many registrations; try again later",
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        Refusal::Method => {
            let mut r = json(
                StatusCode::METHOD_NOT_ALLOWED,
                error_body("invalid_request", "Register with POST"),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
        Refusal::Unavailable => {
            let mut r = json(
                StatusCode::SERVICE_UNAVAILABLE,
                error_body(
                    "temporarily_unavailable",
                    "The service is temporarily unavailable; try again",
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

super::pipeline::endpoint_service!(RegistrationEndpoint: answer);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DynamicRegistration {
        DynamicRegistration::open("tools:read tools:write")
    }

    fn error(body: &str) -> &'static str {
        match check(&settings(), body.as_bytes()) {
            Err(Refusal::Invalid { error, .. }) => error,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_public_client_gets_what_the_server_allows() {
        let (new, grants) = check(
            &settings(),
            br#"{"redirect_uris":["http://127.0.0.1:3000/cb"],"token_endpoint_auth_method":"none",
                "grant_types":["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:jwt-bearer"],
                "client_name":"Editor","scope":"tools:read admin","contacts":["a@b.example"]}"#,
        )
        .unwrap();
        assert!(!new.confidential);
        assert_eq!(new.scope, "tools:read");
        assert_eq!(grants, ["authorization_code", "refresh_token"]);
        assert_eq!(new.name, "Editor");
        assert_eq!(new.client_id.len(), 43);
        // Nothing asked: the server's scope, a public client, a name.
        let (new, _) = check(
            &settings(),
            br#"{"redirect_uris":["https://app.example/cb"]}"#,
        )
        .unwrap();
        assert_eq!(
            (new.scope.as_str(), new.confidential),
            ("tools:read tools:write", false)
        );
        assert_eq!(new.name, "Unnamed client");
    }

    #[test]
    fn hostile_metadata_is_refused_with_the_rfc_7591_error() {
        for (body, expected) in [
            ("[]", "invalid_client_metadata"),
            ("{", "invalid_client_metadata"),
            (
                r#"{"redirect_uris":"https://a.example/cb"}"#,
                "invalid_client_metadata",
            ),
            ("{}", "invalid_redirect_uri"),
            (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
            (
                r#"{"redirect_uris":["http://evil.example/cb"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb#f"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["javascript:alert(1)"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/l.png"}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"scope":"a\"b"}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"software_statement":"eyJ"}"#,
                "unapproved_software_statement",
            ),
        ] {
            assert_eq!(error(body), expected, "{body}");
        }
        let many = format!(
            r#"{{"redirect_uris":[{}]}}"#,
            (0..11)
                .map(|i| format!("\"https://a.example/{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(error(&many), "invalid_redirect_uri");
        let long = format!(
            r#"{{"redirect_uris":["https://a.example/cb"],"client_name":"{}"}}"#,
            "é".repeat(300)
        );
        assert_eq!(
            check(&settings(), long.as_bytes()).unwrap().0.name.len(),
            200
        );
    }

    #[test]
    fn settings_that_could_make_no_client_are_refused() {
        assert!(settings().is_valid());
        assert!(!DynamicRegistration::open("a\"b").is_valid());
        assert!(!settings().resources(["relative"]).is_valid());
    }

    #[test]
    fn confidential_clients_only_when_allowed() {
        let body = br#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_post"}"#;
        assert!(check(&settings(), body).is_err());
        assert!(
            check(&settings().allow_confidential(), body)
                .unwrap()
                .0
                .confidential
        );
    }

    #[test]
    fn the_initial_access_token_is_checked() {
        let gated = DynamicRegistration::with_initial_access_token("s3cret-token", "a");
        let headers = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert_eq!(
            gated.admits(&headers(None)),
            Err(Refusal::Unauthorized { error: false })
        );
        assert_eq!(
            gated.admits(&headers(Some("Bearer wrong"))),
            Err(Refusal::Unauthorized { error: true })
        );
        assert_eq!(
            gated.admits(&headers(Some("Basic czNjcmV0LXRva2Vu"))),
            Err(Refusal::Unauthorized { error: true })
        );
        assert_eq!(gated.admits(&headers(Some("Bearer s3cret-token"))), Ok(()));
        assert_eq!(settings().admits(&headers(None)), Ok(()));
    }
}
