//! The `htu` comparison (RFC 9449 §4.3): the proof's URL against the one
//! the server is reached at, both normalised per RFC 3986 §6.2.2–6.2.3.
//!
//! Hand-written: the `url` crate would do much more (IDNA, path dot
//! segments, percent-decoding) than the comparison wants, and RFC 9449
//! asks for exactly this: scheme and host compared case-insensitively, the
//! default port dropped, query and fragment ignored, the path exact.

/// A URL reduced to what `htu` compares: the scheme and host in lower
/// case, the port unless it is the scheme's default, the path (an empty
/// one as `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Htu {
    scheme: String,
    host: String,
    port: Option<String>,
    path: String,
}

/// A URL split as [`Htu`] compares it, borrowed (nothing lower-cased yet).
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
}

impl<'a> Parts<'a> {
    /// Splits an absolute http(s) URL; `None` for anything else (another
    /// scheme, user info, an empty host, a bad port).
    fn split(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let default_port = if scheme.eq_ignore_ascii_case("https") {
            "443"
        } else if scheme.eq_ignore_ascii_case("http") {
            "80"
        } else {
            return None;
        };
        // Query and fragment do not take part.
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty()
            || !host.bytes().all(|b| b.is_ascii_graphic())
            || !path.bytes().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        Some(Self {
            scheme,
            host,
            port: port.filter(|p| *p != default_port),
            path,
        })
    }
}

impl Htu {
    /// Normalises an absolute http(s) URL; `None` for anything else.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let p = Parts::split(url)?;
        Some(Self {
            scheme: p.scheme.to_ascii_lowercase(),
            host: p.host.to_ascii_lowercase(),
            port: p.port.map(str::to_owned),
            path: p.path.to_owned(),
        })
    }

    /// Whether the proof's `htu` claim names this URL.
    #[cfg(test)]
    fn matches(&self, claim: &str) -> bool {
        self.matches_under("", claim)
    }

    /// Whether `claim` names the URL of `path` under this base (the base's
    /// own path a prefix, without its trailing `/`): what a route the gate
    /// sees at `path` is reached at behind this public URL. Compares in
    /// place, allocating nothing: this runs on every DPoP request.
    pub(crate) fn matches_under(&self, path: &str, claim: &str) -> bool {
        let Some(c) = Parts::split(claim) else {
            return false;
        };
        let (base, path) = if path.is_empty() {
            (self.path.as_str(), "")
        } else {
            (self.path.trim_end_matches('/'), path)
        };
        c.scheme.eq_ignore_ascii_case(&self.scheme)
            && c.host.eq_ignore_ascii_case(&self.host)
            && c.port == self.port.as_deref()
            && c.path.len() == base.len() + path.len()
            && c.path.starts_with(base)
            && c.path.ends_with(path)
    }

    #[cfg(test)]
    fn as_string(&self) -> String {
        match &self.port {
            Some(port) => format!("{}://{}:{port}{}", self.scheme, self.host, self.path),
            None => format!("{}://{}{}", self.scheme, self.host, self.path),
        }
    }
}

/// `host[:port]` (a bracketed IPv6 host keeps its brackets); `None` for a
/// port that is not 1–5 digits.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let colon = if authority.starts_with('[') {
        let close = authority.find(']')?;
        match &authority[close + 1..] {
            "" => return Some((authority, None)),
            rest if rest.starts_with(':') => close + 1,
            _ => return None,
        }
    } else {
        match authority.rfind(':') {
            Some(i) => i,
            None => return Some((authority, None)),
        }
    };
    let port = &authority[colon + 1..];
    // An empty port is the default (RFC 3986 §6.2.3).
    if port.is_empty() {
        return Some((&authority[..colon], None));
    }
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&authority[..colon], Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_match_and_others_do_not() {
        let htu = Htu::parse("https://api.example/orders").unwrap();
        for same in [
            "https://api.example/orders",
            "HTTPS://API.Example/orders",
            "https://api.example:443/orders",
            "https://api.example:/orders",
            "https://api.example/orders?page=2",
            "https://api.example/orders#top",
        ] {
            assert!(htu.matches(same), "{same}");
        }
        for other in [
            "http://api.example/orders",
            "https://api.example:8443/orders",
            "https://evil.example/orders",
            "https://api.example/Orders",
            "https://api.example/orders/",
            "https://api.example/orders/1",
            "https://user@api.example/orders",
            "https://api.example",
            "api.example/orders",
            "",
        ] {
            assert!(!htu.matches(other), "{other}");
        }
        assert_eq!(
            Htu::parse("http://127.0.0.1:80").unwrap().as_string(),
            "http://127.0.0.1/"
        );
        assert_eq!(
            Htu::parse("http://[::1]:8080/x").unwrap().as_string(),
            "http://[::1]:8080/x"
        );
        // Under a base with a path: the base's path is a prefix.
        for base in ["https://proxy.example/api/", "https://proxy.example/api"] {
            let base = Htu::parse(base).unwrap();
            assert!(base.matches_under("/orders", "https://proxy.example/api/orders"));
            assert!(base.matches_under("/orders", "https://PROXY.example:443/api/orders?x"));
            assert!(!base.matches_under("/orders", "https://proxy.example/orders"));
            assert!(!base.matches_under("/orders", "https://proxy.example/api//orders"));
            assert!(!base.matches_under("/orders", "https://proxy.example/apiX/orders"));
        }
        let root = Htu::parse("https://api.example").unwrap();
        assert!(root.matches_under("/orders", "https://api.example/orders"));
        assert!(!root.matches_under("/orders", "https://api.example//orders"));
        for bad in [
            "ftp://a/b",
            "https://a:99999x/",
            "https://[::1/x",
            "https:///x",
        ] {
            assert!(Htu::parse(bad).is_none(), "{bad}");
        }
    }
}
