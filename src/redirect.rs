//! Redirect URIs of the authorization code grant: which may be registered,
//! which requested one matches a registration, and the answer's URL.
//!
//! Matching is by exact string comparison (RFC 9700 §4.1.1; OAuth 2.1
//! §2.3.1), never by a parsed and normalised form, with the one exception
//! RFC 8252 §7.3 makes for native apps: a loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, and by a client setting
//! `http://localhost`) matches with any port, since the app listens on
//! whichever port the system gives it. Hand-written because no crate does
//! exact-match-with-loopback-port (the `url` crate normalises, which is the
//! opposite of what matching needs); registration checks use `http::Uri`
//! for the parts it parses.

use http::Uri;

/// The longest redirect URI accepted, in bytes.
pub(crate) const MAX_REDIRECT_URI: usize = 2000;

/// The loopback hosts RFC 8252 §7.3 lets match with any port; `localhost`
/// only by the client's setting.
const LOOPBACK_IPS: [&str; 2] = ["127.0.0.1", "[::1]"];
const LOCALHOST: &str = "localhost";

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unregistrable {
    /// Not an absolute URL of visible ASCII, at most [`MAX_REDIRECT_URI`]
    /// bytes, with a host and no user info.
    Malformed,
    /// Has a fragment (RFC 6749 §3.1.2).
    Fragment,
    /// Neither `https` nor `http` on a loopback host.
    Insecure,
    /// Upper case in the scheme or host, or a `.`/`..` path segment: it
    /// could never be matched as a browser sends it.
    NotCanonical,
}

impl Unregistrable {
    /// A sentence for the operator.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Malformed => {
                "a redirect URI must be an absolute URL with a host and no user info"
            }
            Self::Fragment => "a redirect URI must not have a fragment",
            Self::Insecure => "a redirect URI must be https, or http on a loopback host",
            Self::NotCanonical => {
                "a redirect URI must have a lower-case scheme and host and no dot segments"
            }
        }
    }
}

/// Visible ASCII only, within the length cap: no space, control, or
/// backslash (which some browsers read as `/`).
fn plain(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= MAX_REDIRECT_URI
        && uri
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b'\\')
}

/// Whether `uri` may be registered as a redirect URI.
pub(crate) fn check_registrable(uri: &str) -> Result<(), Unregistrable> {
    if !plain(uri) {
        return Err(Unregistrable::Malformed);
    }
    if uri.contains('#') {
        return Err(Unregistrable::Fragment);
    }
    let parsed: Uri = uri.parse().map_err(|_| Unregistrable::Malformed)?;
    let (Some(scheme), Some(authority)) = (parsed.scheme_str(), parsed.authority()) else {
        return Err(Unregistrable::Malformed);
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(Unregistrable::Malformed);
    }
    // The raw text must start `scheme://authority` exactly as parsed, in
    // lower case.
    let prefix = format!("{scheme}://{authority}");
    if !uri.starts_with(&prefix) || prefix.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Unregistrable::NotCanonical);
    }
    let rest = &uri[prefix.len()..];
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return Err(Unregistrable::Malformed);
    }
    let path = rest.split('?').next().unwrap_or_default();
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(Unregistrable::NotCanonical);
    }
    match scheme {
        "https" => Ok(()),
        "http" if loopback_host(authority.host()) => Ok(()),
        _ => Err(Unregistrable::Insecure),
    }
}

fn loopback_host(host: &str) -> bool {
    // `http::Uri` gives an IPv6 host with its brackets.
    LOOPBACK_IPS.contains(&host) || host == LOCALHOST
}

/// A loopback redirect split around its port: `(host, rest)` where `rest`
/// is everything after the authority; `None` if `uri` is not
/// `http://<loopback host>[:port]<rest>` with a valid port.
fn loopback_parts(uri: &str, allow_localhost: bool) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = LOOPBACK_IPS
        .iter()
        .copied()
        .chain(allow_localhost.then_some(LOCALHOST))
        .find(|h| after.starts_with(h))?;
    let mut rest = &after[host.len()..];
    if let Some(port) = rest.strip_prefix(':') {
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        // 1 to 5 digits and a real port: `:0`, `:99999` and `:` are not.
        let value: u32 = port[..digits].parse().ok()?;
        if digits > 5 || !(1..=65_535).contains(&value) {
            return None;
        }
        rest = &port[digits..];
    }
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some((host, rest))
}

/// Whether `requested` is `http://` on a loopback host (what the consent
/// page warns about: the answer goes to a program on the user's machine).
pub(crate) fn is_loopback(requested: &str) -> bool {
    loopback_parts(requested, true).is_some()
}

/// Whether `requested` matches one of `registered`: the same string, or
/// for a loopback registration the same URI with any port (RFC 8252 §7.3;
/// `localhost` only when `allow_localhost`).
pub(crate) fn matches<S: AsRef<str>>(
    registered: &[S],
    requested: &str,
    allow_localhost: bool,
) -> bool {
    if !plain(requested) || requested.contains('#') {
        return false;
    }
    let loopback = loopback_parts(requested, allow_localhost);
    registered.iter().any(|r| {
        let r = r.as_ref();
        r == requested
            || loopback.is_some_and(|want| loopback_parts(r, allow_localhost) == Some(want))
    })
}

/// `uri` with `params` appended to its query, form-encoded (RFC 6749
/// §4.1.2: the query component is retained).
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(uri.len() + 64);
    out.push_str(uri);
    let mut sep = if uri.contains('?') {
        if uri.ends_with('?') || uri.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (name, value) in params {
        out.push_str(sep);
        out.push_str(name);
        out.push('=');
        out.extend(form_encode(value));
        sep = "&";
    }
    out
}

/// `application/x-www-form-urlencoded` of one value: unreserved bytes as
/// they are, everything else percent-encoded (space too, as `%20`).
fn form_encode(value: &str) -> impl Iterator<Item = char> + '_ {
    value.bytes().flat_map(|b| {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let hex = |n: u8| char::from(b"0123456789ABCDEF"[usize::from(n)]);
        let chars = if keep {
            [char::from(b), '\0', '\0']
        } else {
            ['%', hex(b >> 4), hex(b & 0xF)]
        };
        chars.into_iter().take(if keep { 1 } else { 3 })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_be_registered() {
        for ok in [
            "https://app.example/cb",
            "https://app.example/cb?x=1",
            "https://app.example:8443/a/b",
            "https://app.example",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost/callback",
        ] {
            assert_eq!(check_registrable(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("https://app.example/cb#x", Unregistrable::Fragment),
            ("http://app.example/cb", Unregistrable::Insecure),
            ("http://127.0.0.2.example/cb", Unregistrable::Insecure),
            ("com.example.app:/cb", Unregistrable::Malformed),
            ("https://user@app.example/cb", Unregistrable::Malformed),
            ("https://app.example/a b", Unregistrable::Malformed),
            (
                "https://app.example\\@evil.example/",
                Unregistrable::Malformed,
            ),
            ("/cb", Unregistrable::Malformed),
            ("", Unregistrable::Malformed),
            ("HTTPS://app.example/cb", Unregistrable::NotCanonical),
            ("https://App.example/cb", Unregistrable::NotCanonical),
            ("https://app.example/a/../b", Unregistrable::NotCanonical),
            ("https://app.example/./b", Unregistrable::NotCanonical),
        ] {
            assert_eq!(check_registrable(bad), Err(why), "{bad}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_REDIRECT_URI));
        assert_eq!(check_registrable(&long), Err(Unregistrable::Malformed));
    }

    #[test]
    fn matching_is_exact_but_for_the_loopback_port() {
        let reg = [
            "https://app.example/cb",
            "http://127.0.0.1/native",
            "http://[::1]:4000/v6",
            "http://localhost/callback",
        ];
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1/native",
            "http://127.0.0.1:51004/native",
            "http://127.0.0.1:1/native",
            "http://[::1]/v6",
            "http://[::1]:65535/v6",
            "http://localhost:33418/callback",
            "http://localhost/callback",
        ] {
            assert!(matches(&reg, ok, true), "{ok}");
        }
        // The open-redirect corpus: nothing but the registered strings.
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb/../evil",
            "https://app.example/cbx",
            "https://app.example/cb?x=1",
            "https://app.example/cb#frag",
            "https://app.example:443/cb",
            "https://app.example:8443/cb",
            "https://APP.example/cb",
            "http://app.example/cb",
            "https://app.example.evil.example/cb",
            "https://evil.example/cb",
            "https://app.example@evil.example/cb",
            "https://evil.example@app.example/cb",
            "https://app.example\\@evil.example/cb",
            "https://app.example%2F@evil.example/cb",
            "https://app.example/cb%2F..%2Fevil",
            "https://app.example/%63b",
            " https://app.example/cb",
            "https://app.example/cb\n",
            "//app.example/cb",
            "http://127.0.0.1/native/../evil",
            "http://127.0.0.1:0/native",
            "http://127.0.0.1:65536/native",
            "http://127.0.0.1:123456/native",
            "http://127.0.0.1:/native",
            "http://127.0.0.1:80x/native",
            "http://127.0.0.1.evil.example/native",
            "http://127.0.0.1@evil.example/native",
            "http://127.0.0.2/native",
            "https://127.0.0.1/native",
            "http://[::1]/native",
            "http://localhost.evil.example/callback",
            "http://localhost:8080@evil.example/callback",
            "http://127.0.0.1:8080/callback",
            "",
        ] {
            assert!(!matches(&reg, bad, true), "{bad}");
        }
        // `localhost` with another port only by the client's setting.
        assert!(!matches(&reg, "http://localhost:33418/callback", false));
        assert!(matches(&reg, "http://localhost/callback", false));
    }

    #[test]
    fn loopback_is_told() {
        assert!(is_loopback("http://127.0.0.1:5000/cb"));
        assert!(is_loopback("http://[::1]/cb"));
        assert!(is_loopback("http://localhost:1/cb"));
        assert!(!is_loopback("https://app.example/cb"));
        assert!(!is_loopback("http://localhost.evil.example/cb"));
    }

    #[test]
    fn answer_parameters_join_the_query() {
        assert_eq!(
            with_params(
                "https://a.example/cb",
                &[("code", "x y"), ("state", "a&b=c")]
            ),
            "https://a.example/cb?code=x%20y&state=a%26b%3Dc"
        );
        assert_eq!(
            with_params("https://a.example/cb?k=v", &[("code", "Z-9._~")]),
            "https://a.example/cb?k=v&code=Z-9._~"
        );
        assert_eq!(
            with_params("https://a.example/cb?", &[("iss", "https://i.example")]),
            "https://a.example/cb?iss=https%3A%2F%2Fi.example"
        );
        assert_eq!(
            with_params("https://a.example/cb", &[("state", "é")]),
            "https://a.example/cb?state=%C3%A9"
        );
    }
}
