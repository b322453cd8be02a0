//! The `htu` comparison (RFC 9449 §4.3): the proof's URL against the one
//! the server is reached at, both normalised per RFC 3986 §6.2.2–6.2.3.
//!
//! Hand-written: the `url` crate would do much more (IDNA, path dot
//! segments, percent-decoding) than the comparison wants, and RFC 9449
//! asks for exactly this: scheme and host compared case-insensitively, the
//! default port dropped, query and fragment ignored, the path exact.

/// A URL reduced to what `htu` compares: `scheme://host[:port]path`, the
/// scheme and host in lower case, no default port, an empty path as `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Htu(String);

impl Htu {
    /// Normalises an absolute http(s) URL; `None` for anything else
    /// (another scheme, user info, an empty host, a bad port).
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return None,
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
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let host = host.to_ascii_lowercase();
        Some(Self(match port {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}{path}"),
            _ => format!("{scheme}://{host}{path}"),
        }))
    }

    /// The URL of `path` under this base (a base's own path is a prefix,
    /// without its trailing `/`): what a route mounted at `path` behind
    /// this public URL is reached at.
    pub(crate) fn join(&self, path: &str) -> Self {
        let base = self.0.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        Self(format!("{base}{path}"))
    }

    /// Whether the proof's `htu` claim names this URL.
    pub(crate) fn matches(&self, claim: &str) -> bool {
        Self::parse(claim).is_some_and(|c| c == *self)
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
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
            Htu::parse("http://127.0.0.1:80").unwrap().as_str(),
            "http://127.0.0.1/"
        );
        assert_eq!(
            Htu::parse("http://[::1]:8080/x").unwrap().as_str(),
            "http://[::1]:8080/x"
        );
        assert_eq!(
            Htu::parse("https://proxy.example/api/")
                .unwrap()
                .join("/orders")
                .as_str(),
            "https://proxy.example/api/orders"
        );
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
