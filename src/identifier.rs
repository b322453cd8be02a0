//! URL identifiers: an authorization server's issuer identifier (RFC 8414
//! §2), a protected resource's identifier (RFC 9728 §1.2), the well-known
//! URLs their metadata lives at, and the absolute URIs RFC 8707 accepts as
//! `resource`.
//!
//! Hand-written over `http::Uri` rather than the `url` crate: `http::Uri`
//! already parses the authority and path for us but quietly drops a
//! fragment and lower-cases the scheme, and an identifier must be compared
//! byte for byte (it is the `iss` or `aud` of every token), so the raw text
//! is checked here and kept as given.

use http::Uri;

/// An `https` URL (or `http` on a loopback host, for development) with no
/// query or fragment, in canonical form (lower-case scheme and host), kept
/// exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsIdentifier {
    raw: String,
    /// `scheme://authority`, as given.
    origin: String,
    /// The path with any trailing `/` removed (empty for the root).
    path: String,
}

/// Why a string is not an issuer or resource identifier: an `https` URL
/// (or `http` on a loopback host) with no query or fragment, in canonical
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Not an absolute `scheme://host/...` URL (or has user info).
    #[error("not an absolute URL")]
    NotAnAbsoluteUrl,
    /// Neither `https` nor `http` on a loopback host.
    #[error("not https (http only on a loopback host)")]
    InsecureScheme,
    /// Has a query or a fragment.
    #[error("has a query or a fragment")]
    QueryOrFragment,
    /// Upper-case letters in the scheme or host.
    #[error("scheme and host must be lower-case")]
    NotCanonical,
}

impl HttpsIdentifier {
    pub(crate) fn parse(raw: &str) -> Result<Self, IdentifierError> {
        if raw.contains('#') {
            return Err(IdentifierError::QueryOrFragment);
        }
        let uri: Uri = raw.parse().map_err(|_| IdentifierError::NotAnAbsoluteUrl)?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(IdentifierError::NotAnAbsoluteUrl);
        };
        if uri.query().is_some() {
            return Err(IdentifierError::QueryOrFragment);
        }
        // User info has no place in an identifier.
        if authority.as_str().contains('@') {
            return Err(IdentifierError::NotAnAbsoluteUrl);
        }
        // A bracketed host is an IPv6 address (`http::Uri` does not check).
        if let Some(v6) = authority.host().strip_prefix('[')
            && v6
                .strip_suffix(']')
                .is_none_or(|a| a.parse::<std::net::Ipv6Addr>().is_err())
        {
            return Err(IdentifierError::NotAnAbsoluteUrl);
        }
        // After the host, nothing or a port number (`http::Uri` lets a
        // non-numeric port through).
        let after_host = authority.as_str().get(authority.host().len()..);
        if !after_host.is_some_and(|p| {
            p.is_empty()
                || p == ":"
                || p.strip_prefix(':')
                    .is_some_and(|n| n.parse::<u16>().is_ok())
        }) {
            return Err(IdentifierError::NotAnAbsoluteUrl);
        }
        // `http::Uri` lower-cases the scheme it reports; the text must
        // already be lower-case, and so must the host.
        let raw_scheme = &raw[..scheme.len()];
        // An empty port (`https://a.example:`) is the default port
        // written oddly (RFC 3986 §6.2.3): not the canonical form either.
        if raw_scheme != scheme
            || authority.host().bytes().any(|b| b.is_ascii_uppercase())
            || authority.as_str().ends_with(':')
        {
            return Err(IdentifierError::NotCanonical);
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(authority.host()) => {}
            _ => return Err(IdentifierError::InsecureScheme),
        }
        let origin = format!("{scheme}://{authority}");
        // The path as written (`https://a` has none; `http::Uri` reports "/").
        let path = raw[origin.len()..].trim_end_matches('/').to_owned();
        Ok(Self {
            raw: raw.to_owned(),
            origin,
            path,
        })
    }

    /// Whether it is a bare origin, `scheme://host[:port]` with no path,
    /// as a browser writes it in `Origin` (RFC 6454 §6.2).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn is_origin(&self) -> bool {
        self.raw == self.origin
    }

    /// The identifier exactly as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    /// The path of the well-known document `suffix` (e.g.
    /// `oauth-authorization-server`): `/.well-known/{suffix}` followed by
    /// the identifier's path (RFC 8414 §3.1, RFC 9728 §3.1).
    pub(crate) fn well_known_path(&self, suffix: &str) -> String {
        format!("/.well-known/{suffix}{}", self.path)
    }

    /// The URL of the well-known document `suffix`.
    pub(crate) fn well_known_url(&self, suffix: &str) -> String {
        format!("{}{}", self.origin, self.well_known_path(suffix))
    }

    /// `path` (starting with `/`) under this identifier, as a URL.
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.path)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An absolute URI without a fragment (RFC 3986 §4.3), as RFC 8707 §2
/// requires of `resource`: a scheme, `:`, then printable ASCII with no
/// space and no `#`. Bounded in length.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn is_absolute_uri(s: &str) -> bool {
    const MAX: usize = 2048;
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    s.len() <= MAX
        && scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && rest.bytes().all(|b| matches!(b, 0x21..=0x7E) && b != b'#')
}

/// Whether `uri` may be shown as a client's link (`logo_uri`,
/// `client_uri`): an `https` URL with a host, visible ASCII, at most 2,048
/// bytes.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn is_https_link(uri: &str) -> bool {
    uri.len() <= 2048
        && uri.bytes().all(|b| (0x21..=0x7E).contains(&b))
        && uri.parse::<http::Uri>().is_ok_and(|u| {
            u.scheme_str() == Some("https") && u.host().is_some_and(|h| !h.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_https_urls_with_a_host() {
        assert!(is_https_link("https://cdn.example/logo.png"));
        for bad in [
            "http://cdn.example/logo.png",
            "javascript:alert(1)",
            "https:///logo.png",
            "https://cdn.example/a b",
            "/logo.png",
        ] {
            assert!(!is_https_link(bad), "{bad}");
        }
        assert!(!is_https_link(&format!(
            "https://cdn.example/{}",
            "a".repeat(2048)
        )));
    }

    #[test]
    fn identifiers_are_canonical_https_urls_kept_as_given() {
        let id = HttpsIdentifier::parse("https://auth.example").unwrap();
        assert_eq!(id.as_str(), "https://auth.example");
        assert_eq!(
            id.well_known_url("oauth-authorization-server"),
            "https://auth.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(id.join("/token"), "https://auth.example/token");

        // RFC 8414 §3.1: the well-known part goes between host and path,
        // and a terminating `/` of the path is dropped.
        let id = HttpsIdentifier::parse("https://auth.example:8443/tenant/1/").unwrap();
        assert_eq!(
            id.well_known_url("oauth-authorization-server"),
            "https://auth.example:8443/.well-known/oauth-authorization-server/tenant/1"
        );
        assert_eq!(
            id.well_known_path("oauth-protected-resource"),
            "/.well-known/oauth-protected-resource/tenant/1"
        );
        assert_eq!(
            id.join("/token"),
            "https://auth.example:8443/tenant/1/token"
        );

        for loopback in [
            "http://127.0.0.1:3000",
            "http://localhost/x",
            "http://[::1]:80",
        ] {
            assert!(HttpsIdentifier::parse(loopback).is_ok(), "{loopback}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        use IdentifierError::*;
        for (raw, why) in [
            ("https://a.example/#x", QueryOrFragment),
            ("https://a.example/p?q=1", QueryOrFragment),
            ("http://a.example", InsecureScheme),
            ("ftp://a.example", InsecureScheme),
            ("HTTPS://a.example", NotCanonical),
            ("https://A.example", NotCanonical),
            ("https://a.example:", NotCanonical),
            ("https://a.example:99999x", NotAnAbsoluteUrl),
            ("https://a.example:70000", NotAnAbsoluteUrl),
            ("https://[nope]:1", NotAnAbsoluteUrl),
            ("/relative", NotAnAbsoluteUrl),
            ("a.example", NotAnAbsoluteUrl),
            ("https://user@a.example", NotAnAbsoluteUrl),
            ("https://a.example/b c", NotAnAbsoluteUrl),
            ("", NotAnAbsoluteUrl),
        ] {
            assert_eq!(HttpsIdentifier::parse(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn resource_parameters_are_absolute_uris_without_fragment() {
        for ok in [
            "https://api.example",
            "https://api.example/v1?x=1",
            "urn:example:orders",
            "http://127.0.0.1:9/",
        ] {
            assert!(is_absolute_uri(ok), "{ok}");
        }
        for bad in [
            "https://api.example/#frag",
            "/relative",
            "api.example",
            "1http://x",
            "https:",
            "https://a b",
            "https://é.example",
            "",
        ] {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
        assert!(!is_absolute_uri(&format!("urn:{}", "a".repeat(2100))));
    }
}
