//! Browser clients: the refresh token in an `HttpOnly` cookie that the
//! page's JavaScript cannot read, and the cross-site request forgery
//! checks every request of such a client passes.
//!
//! A browser sends a cookie with every request to its site, whoever made
//! the page that asks. So a request that a cookie may authenticate is
//! accepted only when its `Origin` is one of the client's (exact match; a
//! missing or `null` Origin is refused), and, as defence in depth, when it
//! also carries a header a cross-site form cannot send ([`CSRF_HEADER`],
//! which forces a CORS preflight) or `Sec-Fetch-Site: same-origin`.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::TokenError;
use crate::identifier::HttpsIdentifier;

/// The header a browser app sends on every cookie-authenticated request:
/// any non-empty value. A cross-site HTML form cannot send it, and a
/// cross-site `fetch` can only after a CORS preflight that the endpoint
/// answers for listed origins only.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-requested-with");

/// Longest refresh cookie value read; ours are 43 characters.
const MAX_COOKIE_VALUE: usize = 512;

/// The cookie's `SameSite` attribute (RFC 6265bis §4.1.2.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only on requests from the site itself (the default): a link
    /// from another site arrives without it.
    #[default]
    Strict,
    /// Also sent on top-level navigations from other sites (GET only).
    Lax,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
        }
    }
}

/// A browser client's cookie settings, given to
/// [`TokenEndpointBuilder::browser_client`](super::TokenEndpointBuilder::browser_client).
///
/// The cookie is `HttpOnly`, `Secure` and never has a `Domain`. Its name
/// carries a prefix the browser enforces:
///
/// - `__Host-tollgate_refresh` with `Path=/` (the default). The browser
///   accepts it only from this very host, over a secure origin, with no
///   `Domain`: a sibling subdomain cannot plant or overwrite it ("cookie
///   tossing"). It is sent to every path of the host, which is harmless
///   (only the token endpoint reads it) but puts it in more requests.
/// - `__Secure-tollgate_refresh` with a narrower `Path` ([`path`](Self::path)),
///   when `/token`, `/revoke` and the logout route share a prefix such as
///   `/auth`: the cookie then goes nowhere else. The prefix still demands a
///   secure origin, but no longer stops a sibling subdomain from setting a
///   cookie of the same name.
///
/// ```
/// use tollgate::token_endpoint::{BrowserClient, SameSite};
///
/// let spa = BrowserClient::new(["https://app.example"]).same_site(SameSite::Lax);
/// # let _ = spa;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct BrowserClient {
    pub(super) origins: Vec<String>,
    same_site: SameSite,
    path: Option<String>,
    refresh_token_in_body: bool,
}

impl BrowserClient {
    /// A browser client served from these origins (`scheme://host[:port]`,
    /// as a browser writes them in `Origin`): https, or http on a loopback
    /// host, the only origins a browser keeps a `Secure` cookie for.
    pub fn new<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            origins: origins.into_iter().map(Into::into).collect(),
            same_site: SameSite::default(),
            path: None,
            refresh_token_in_body: false,
        }
    }

    /// The `SameSite` attribute. Default [`SameSite::Strict`].
    pub fn same_site(self, same_site: SameSite) -> Self {
        Self { same_site, ..self }
    }

    /// Scopes the cookie to `path` under the `__Secure-` prefix instead of
    /// `__Host-` with `Path=/`. Every route that must read or clear it
    /// (`/token`, `/revoke`, logout) has to lie under `path`.
    pub fn path(self, path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..self
        }
    }

    /// Also returns the refresh token in the JSON body (default: only in
    /// the cookie, out of the page's reach).
    pub fn refresh_token_in_body(self, yes: bool) -> Self {
        Self {
            refresh_token_in_body: yes,
            ..self
        }
    }

    /// Checks the settings; the endpoint's `build` calls it.
    pub(super) fn into_cookie(self) -> Result<RefreshCookie, BrowserConfigError> {
        if self.origins.is_empty() {
            return Err(BrowserConfigError::NoOrigin);
        }
        if let Some(bad) = self.origins.iter().find(|o| !is_serialized_origin(o)) {
            return Err(BrowserConfigError::InvalidOrigin(bad.clone()));
        }
        let (name, path) = match &self.path {
            None => ("__Host-tollgate_refresh", "/"),
            Some(path) if is_cookie_path(path) => ("__Secure-tollgate_refresh", path.as_str()),
            Some(path) => return Err(BrowserConfigError::InvalidPath(path.clone())),
        };
        Ok(RefreshCookie {
            name,
            attributes: format!(
                "; Path={path}; HttpOnly; Secure; SameSite={}",
                self.same_site.as_str()
            ),
            origins: self.origins,
            in_body: self.refresh_token_in_body,
        })
    }
}

/// A browser client setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserConfigError {
    /// No origin: every request would be refused.
    #[error("a browser client needs at least one origin")]
    NoOrigin,
    /// Not a secure `scheme://host[:port]` in lower case (https, or http
    /// on a loopback host; no path, no `null`, no wildcard).
    #[error(
        "`{0}` is not a secure origin (https://host[:port], lower case, no path; http only on loopback)"
    )]
    InvalidOrigin(String),
    /// The cookie path must start with `/` and hold only path characters.
    #[error("`{0}` is not a cookie path")]
    InvalidPath(String),
}

/// A browser client's refresh cookie and origins, checked.
#[derive(Debug, Clone)]
pub(crate) struct RefreshCookie {
    name: &'static str,
    /// `; Path=..; HttpOnly; Secure; SameSite=..`
    attributes: String,
    origins: Vec<String>,
    pub(crate) in_body: bool,
}

/// Why a browser client's request was refused as possibly forged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsrfRefusal {
    /// No `Origin`, `Origin: null`, or more than one.
    MissingOrigin,
    /// An origin not in the client's list.
    ForeignOrigin,
    /// Neither [`CSRF_HEADER`] nor `Sec-Fetch-Site: same-origin`.
    MissingCsrfHeader,
}

impl CsrfRefusal {
    /// The metric label and event reason.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::MissingOrigin => "missing_origin",
            Self::ForeignOrigin => "foreign_origin",
            Self::MissingCsrfHeader => "missing_csrf_header",
        }
    }

    /// The RFC 6749 error the client sees.
    pub(crate) fn error(self) -> TokenError {
        TokenError::InvalidRequest(match self {
            Self::MissingOrigin => "A browser client's request must carry its Origin",
            Self::ForeignOrigin => "The request's Origin is not allowed for this client",
            Self::MissingCsrfHeader => {
                "A browser client's request must carry X-Requested-With or come from its own origin"
            }
        })
    }
}

impl RefreshCookie {
    /// Whether the request may come from a page of this client.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), CsrfRefusal> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(one), None) if one.as_bytes() != b"null" => one.as_bytes(),
            _ => return Err(CsrfRefusal::MissingOrigin),
        };
        if !self.origins.iter().any(|o| o.as_bytes() == origin) {
            return Err(CsrfRefusal::ForeignOrigin);
        }
        let csrf_header = headers
            .get(CSRF_HEADER)
            .is_some_and(|v| !v.as_bytes().is_empty());
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin");
        if !(csrf_header || same_origin) {
            return Err(CsrfRefusal::MissingCsrfHeader);
        }
        Ok(())
    }

    /// The refresh token the request's cookie carries, if any. The same
    /// name twice with different values (a cookie of another path, or one
    /// planted) is refused rather than guessed between.
    pub(crate) fn read(&self, headers: &HeaderMap) -> Result<Option<String>, TokenError> {
        let mut found: Option<&[u8]> = None;
        for value in crate::header::cookies(headers, self.name) {
            if value.is_empty() {
                continue;
            }
            if value.len() > MAX_COOKIE_VALUE {
                return Err(TokenError::InvalidRequest("The refresh cookie is too long"));
            }
            match found {
                Some(seen) if seen != value => {
                    return Err(TokenError::InvalidRequest(
                        "The refresh cookie is present twice",
                    ));
                }
                _ => found = Some(value),
            }
        }
        // Not text: not a token of ours, so no token (the grant then
        // says which parameter is missing).
        Ok(found
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned))
    }

    /// `Set-Cookie` for a refresh token usable until `expires_at`.
    ///
    /// An absolute `Expires` (RFC 6265 §5.2.1), not `Max-Age`: two tabs
    /// whose racing refreshes are answered with one token get the
    /// identical header, whichever second each answer was written in.
    /// Without an end, a session cookie.
    pub(crate) fn set(&self, token: &str, expires_at: Option<SystemTime>) -> HeaderValue {
        let expires = expires_at
            .map(|at| {
                // RFC 9110 §5.6.7's IMF-fixdate, the form RFC 6265 asks for.
                let at = chrono::DateTime::<chrono::Utc>::from(at);
                format!("; Expires={}", at.format("%a, %d %b %Y %H:%M:%S GMT"))
            })
            .unwrap_or_default();
        // A refresh token is base64url: always a valid header value.
        HeaderValue::try_from(format!("{}={token}{expires}{}", self.name, self.attributes))
            .expect("a base64url token is a valid cookie value")
    }

    /// `Set-Cookie` that removes the cookie: same name, path and
    /// attributes, empty value, `Max-Age=0`.
    pub(crate) fn clear(&self) -> HeaderValue {
        HeaderValue::try_from(format!("{}=; Max-Age=0{}", self.name, self.attributes))
            .expect("the name and attributes were checked at build")
    }

    /// The client's origins, for CORS.
    pub(crate) fn origins(&self) -> &[String] {
        &self.origins
    }
}

/// The token of a request: the form's parameter, or a browser client's
/// cookie; never both, since the two could name different sessions and
/// the server must not pick one. `missing` describes the absent parameter.
pub(crate) fn body_or_cookie<'a>(
    body: Option<&'a str>,
    cookie: Option<&'a str>,
    missing: &'static str,
) -> Result<&'a str, TokenError> {
    match (body, cookie) {
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (Some(_), Some(_)) => Err(TokenError::InvalidRequest(
            "The token was sent both in the body and in the cookie",
        )),
        (None, None) => Err(TokenError::InvalidRequest(missing)),
    }
}

/// `scheme://host[:port]` as a browser serializes `Origin`, and a secure
/// one: https, or http on a loopback host (where browsers keep `Secure`
/// cookies too). An http origin elsewhere could never hold the cookie.
fn is_serialized_origin(origin: &str) -> bool {
    HttpsIdentifier::parse(origin).is_ok_and(|id| id.is_origin())
}

/// A cookie `Path` attribute value we are willing to write: starts with
/// `/`, then visible ASCII other than `;` (RFC 6265 §4.1.1 av-octets).
fn is_cookie_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spa() -> RefreshCookie {
        BrowserClient::new(["https://app.example", "http://127.0.0.1:8080"])
            .into_cookie()
            .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn origins_are_checked_at_build() {
        for good in [
            "https://app.example",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "https://a-b.example.org",
        ] {
            assert!(is_serialized_origin(good), "{good}");
        }
        for bad in [
            "null",
            "*",
            "http://app.example",
            "https://app.example/",
            "https://App.example",
            "ftp://app.example",
            "https://app.example:",
            "https://app.example:99999x",
            "https://",
            "app.example",
            "https://app.example/path",
            "https://[nope]:1",
        ] {
            assert!(!is_serialized_origin(bad), "{bad}");
        }
        assert_eq!(
            BrowserClient::new(Vec::<String>::new())
                .into_cookie()
                .unwrap_err(),
            BrowserConfigError::NoOrigin
        );
        assert_eq!(
            BrowserClient::new(["*"]).into_cookie().unwrap_err(),
            BrowserConfigError::InvalidOrigin("*".into())
        );
        assert_eq!(
            BrowserClient::new(["https://a.example"])
                .path("auth")
                .into_cookie()
                .unwrap_err(),
            BrowserConfigError::InvalidPath("auth".into())
        );
    }

    #[test]
    fn the_cookie_has_every_attribute_and_a_prefix_the_browser_enforces() {
        let c = spa();
        // 2027-01-15T08:00:00Z, a Friday.
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        assert_eq!(
            c.set("abc", Some(at)),
            "__Host-tollgate_refresh=abc; Expires=Fri, 15 Jan 2027 08:00:00 GMT; Path=/; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            c.set("abc", None),
            "__Host-tollgate_refresh=abc; Path=/; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            c.clear(),
            "__Host-tollgate_refresh=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict"
        );
        let scoped = BrowserClient::new(["https://app.example"])
            .path("/auth")
            .same_site(SameSite::Lax)
            .into_cookie()
            .unwrap();
        assert_eq!(
            scoped.set("abc", None),
            "__Secure-tollgate_refresh=abc; Path=/auth; HttpOnly; Secure; SameSite=Lax"
        );
    }

    /// Every combination of the three inputs: the verdict is exactly the
    /// rule (listed Origin, and the header or same-origin).
    #[test]
    fn csrf_check_is_exhaustively_the_rule() {
        let c = spa();
        let origins = [
            None,
            Some("null"),
            Some("https://app.example"),
            Some("https://evil.example"),
            Some("https://app.example.evil.example"),
            Some("HTTPS://APP.EXAMPLE"),
        ];
        for origin in origins {
            for csrf in [None, Some(""), Some("fetch")] {
                for site in [
                    None,
                    Some("same-origin"),
                    Some("same-site"),
                    Some("cross-site"),
                ] {
                    let mut pairs = Vec::new();
                    pairs.extend(origin.map(|o| ("origin", o)));
                    pairs.extend(csrf.map(|v| ("x-requested-with", v)));
                    pairs.extend(site.map(|s| ("sec-fetch-site", s)));
                    let got = c.check(&headers(&pairs));
                    let want = match origin {
                        None | Some("null") => Err(CsrfRefusal::MissingOrigin),
                        Some("https://app.example") => {
                            if csrf.is_some_and(|v| !v.is_empty()) || site == Some("same-origin") {
                                Ok(())
                            } else {
                                Err(CsrfRefusal::MissingCsrfHeader)
                            }
                        }
                        Some(_) => Err(CsrfRefusal::ForeignOrigin),
                    };
                    assert_eq!(got, want, "{pairs:?}");
                }
            }
        }
        let two = headers(&[
            ("origin", "https://app.example"),
            ("origin", "https://app.example"),
            ("x-requested-with", "x"),
        ]);
        assert_eq!(c.check(&two), Err(CsrfRefusal::MissingOrigin));
    }

    #[test]
    fn a_token_comes_from_the_body_or_the_cookie_never_both() {
        assert_eq!(body_or_cookie(Some("a"), None, "m").unwrap(), "a");
        assert_eq!(body_or_cookie(None, Some("b"), "m").unwrap(), "b");
        assert_eq!(
            body_or_cookie(Some("a"), Some("a"), "m")
                .unwrap_err()
                .code(),
            "invalid_request"
        );
        assert_eq!(
            body_or_cookie(None, None, "m").unwrap_err().description(),
            "m"
        );
    }

    #[test]
    fn the_cookie_is_read_by_name_only_and_never_guessed() {
        let c = spa();
        assert_eq!(c.read(&headers(&[])).unwrap(), None);
        assert_eq!(
            c.read(&headers(&[(
                "cookie",
                "a=1; __Host-tollgate_refresh=tok; b=2"
            )]))
            .unwrap()
            .as_deref(),
            Some("tok")
        );
        // Split across two Cookie headers (HTTP/2 does that).
        assert_eq!(
            c.read(&headers(&[
                ("cookie", "a=1"),
                ("cookie", "__Host-tollgate_refresh=tok")
            ]))
            .unwrap()
            .as_deref(),
            Some("tok")
        );
        // Another prefix or a look-alike name is not ours.
        assert_eq!(
            c.read(&headers(&[(
                "cookie",
                "__Secure-tollgate_refresh=x; tollgate_refresh=y; __host-tollgate_refresh=z"
            )]))
            .unwrap(),
            None
        );
        let twice = headers(&[(
            "cookie",
            "__Host-tollgate_refresh=a; __Host-tollgate_refresh=b",
        )]);
        assert_eq!(c.read(&twice).unwrap_err().code(), "invalid_request");
        let long = format!("__Host-tollgate_refresh={}", "a".repeat(600));
        assert_eq!(
            c.read(&headers(&[("cookie", &long)])).unwrap_err().code(),
            "invalid_request"
        );
    }
}
