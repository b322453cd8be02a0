//! Binding refresh tokens to the client context they were issued to: client
//! IP (exact, by network prefix, or off) and User-Agent (exact or off), and
//! where the client IP comes from.
//!
//! The IP is the connection's peer address. A forwarding header is read
//! only when that peer is a configured trusted proxy, and then only the
//! one header the proxy is configured to write ([`ForwardedHeader`]):
//! `Forwarded` (RFC 7239) or `X-Forwarded-For`, never both, and never the
//! other one as a fallback, since a proxy that writes one usually passes
//! the other through as the client sent it. The right-most address that
//! is not itself a trusted proxy is the client: the left part of the
//! header is whatever the client chose to send. A header that cannot be
//! read leaves the peer as the client.
//!
//! ```
//! use std::net::IpAddr;
//! use http::HeaderMap;
//! use tollgate::binding::{BindingPolicy, ForwardedHeader, IpBinding, TrustedProxies};
//!
//! let proxies = TrustedProxies::new(ForwardedHeader::XForwardedFor, "10.0.0.0/8").unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2".parse().unwrap());
//! // The header the proxy does not write is the client's own: ignored.
//! headers.insert("forwarded", "for=192.0.2.66".parse().unwrap());
//! let peer: IpAddr = "10.0.0.1".parse().unwrap();
//! // The spoofable left part is ignored; 203.0.113.9 is the client.
//! assert_eq!(proxies.client_ip(peer, &headers), "203.0.113.9".parse::<IpAddr>().unwrap());
//! // A peer that is not a trusted proxy is the client, whatever it sends.
//! let direct: IpAddr = "198.51.100.5".parse().unwrap();
//! assert_eq!(proxies.client_ip(direct, &headers), direct);
//!
//! let policy = BindingPolicy { ip: IpBinding::Prefix, ..BindingPolicy::default() };
//! assert!(policy.ip_matches(Some("203.0.113.9".parse().unwrap()), Some("203.0.113.77".parse().unwrap())));
//! ```

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Request};
use ipnet::IpNet;

/// How a refresh token is bound to the IP it was issued to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpBinding {
    /// Not bound (mobile clients change networks all the time).
    #[default]
    Off,
    /// The same address.
    Exact,
    /// The same network: /24 for IPv4, /64 for IPv6.
    Prefix,
}

/// How a refresh token is bound to the User-Agent it was issued to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserAgentBinding {
    /// Not bound.
    #[default]
    Off,
    /// The same User-Agent string.
    Exact,
}

/// The binding policy of refresh tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingPolicy {
    /// IP binding.
    pub ip: IpBinding,
    /// User-Agent binding.
    pub user_agent: UserAgentBinding,
    /// On a mismatch (or a token presented by another client), also revoke
    /// the family (reason `security`), not just refuse the request.
    pub revoke_session_on_mismatch: bool,
}

impl BindingPolicy {
    /// Whether a request from `now` may use a token issued to `issued`. A
    /// bound token needs a known address on both sides.
    pub fn ip_matches(&self, issued: Option<IpAddr>, now: Option<IpAddr>) -> bool {
        match self.ip {
            IpBinding::Off => true,
            IpBinding::Exact => issued.is_some() && issued.map(canonical) == now.map(canonical),
            IpBinding::Prefix => match (issued.map(canonical), now.map(canonical)) {
                (Some(IpAddr::V4(a)), Some(IpAddr::V4(b))) => a.octets()[..3] == b.octets()[..3],
                (Some(IpAddr::V6(a)), Some(IpAddr::V6(b))) => a.octets()[..8] == b.octets()[..8],
                _ => false,
            },
        }
    }

    /// Whether a request with User-Agent `now` may use a token issued to
    /// `issued`.
    pub fn user_agent_matches(&self, issued: Option<&str>, now: Option<&str>) -> bool {
        match self.user_agent {
            UserAgentBinding::Off => true,
            UserAgentBinding::Exact => issued.is_some() && issued == now.map(truncate_user_agent),
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as dual-stack sockets
/// report them) compare as the IPv4 address they carry.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The longest User-Agent stored (the column's width); longer ones are cut
/// (at a character boundary) before storing and before comparing.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// Cuts a User-Agent to [`MAX_USER_AGENT_LEN`] bytes.
pub fn truncate_user_agent(ua: &str) -> &str {
    if ua.len() <= MAX_USER_AGENT_LEN {
        return ua;
    }
    let mut end = MAX_USER_AGENT_LEN;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    &ua[..end]
}

/// The one forwarding header the trusted proxies write. They must
/// overwrite it, or append to it, and tollgate reads no other: configure
/// the proxy to strip or overwrite the header it does not write, or at
/// least never name that one here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `Forwarded: for=…` (RFC 7239).
    Forwarded,
    /// `X-Forwarded-For: client, proxy1, …` (nginx's
    /// `$proxy_add_x_forwarded_for`, most load balancers).
    XForwardedFor,
}

/// The networks whose forwarding header is believed, and which header
/// that is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: Option<ForwardedHeader>,
}

/// A trusted-proxy list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR network")]
pub struct InvalidProxy(pub String);

impl ForwardedHeader {
    fn name(self) -> http::HeaderName {
        match self {
            Self::Forwarded => http::header::FORWARDED,
            Self::XForwardedFor => http::HeaderName::from_static("x-forwarded-for"),
        }
    }
}

impl TrustedProxies {
    /// No trusted proxies: the peer address is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxies at `nets` (a comma- or space-separated list of
    /// addresses and CIDR networks), which write `header`. An empty list
    /// trusts no one.
    pub fn new(header: ForwardedHeader, nets: &str) -> Result<Self, InvalidProxy> {
        let mut parsed = Vec::new();
        for item in nets
            .split([',', ' '])
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| InvalidProxy(item.to_owned()))?,
            };
            parsed.push(net);
        }
        Ok(Self {
            nets: parsed,
            header: Some(header),
        })
    }

    /// The header read from trusted proxies; `None` when none is trusted.
    pub fn header(&self) -> Option<ForwardedHeader> {
        self.header.filter(|_| !self.nets.is_empty())
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a connection from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        let Some(header) = self.header.filter(|_| self.contains(peer)) else {
            return peer;
        };
        // Hops from the client to the last proxy, in order; from the one
        // configured header only. Unreadable: the peer stands.
        let hops = match header {
            ForwardedHeader::Forwarded => forwarded_for(headers),
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
        };
        let Some(hops) = hops else {
            return peer;
        };
        // Walk back from the nearest hop; the first untrusted one is the
        // client. An unparsable hop ends the walk: nothing left of it can be
        // believed, so the last trusted address stands.
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.contains(*ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(ForwardedHeader::XForwardedFor.name()) {
        let value = value.to_str().ok()?;
        hops.extend(value.split(',').map(|h| h.trim().parse::<IpAddr>().ok()));
    }
    (!hops.is_empty()).then_some(hops)
}

/// `for=` of each element of RFC 7239 `Forwarded` headers.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(ForwardedHeader::Forwarded.name()) {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let for_value = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            if let Some(v) = for_value {
                hops.push(parse_node(v));
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// `node` of RFC 7239 §6: `1.2.3.4`, `"1.2.3.4:80"`, `"[2001:db8::1]:80"`.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let host = v.split(':').next()?;
    host.parse().ok()
}

/// The connection's peer address, for services not behind axum's
/// `ConnectInfo`: insert it into the request extensions in your accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The peer address of a request: [`PeerAddr`] if present, else (feature
/// `axum`) `ConnectInfo<SocketAddr>`.
pub fn peer_addr<B>(req: &Request<B>) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = req.extensions().get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn exact_and_prefix_binding() {
        let exact = BindingPolicy {
            ip: IpBinding::Exact,
            ..Default::default()
        };
        assert!(exact.ip_matches(Some(ip("1.2.3.4")), Some(ip("1.2.3.4"))));
        assert!(exact.ip_matches(Some(ip("1.2.3.4")), Some(ip("::ffff:1.2.3.4"))));
        assert!(!exact.ip_matches(Some(ip("1.2.3.4")), Some(ip("1.2.3.5"))));
        assert!(!exact.ip_matches(None, None));
        let prefix = BindingPolicy {
            ip: IpBinding::Prefix,
            ..Default::default()
        };
        assert!(prefix.ip_matches(Some(ip("1.2.3.4")), Some(ip("1.2.3.200"))));
        assert!(!prefix.ip_matches(Some(ip("1.2.3.4")), Some(ip("1.2.4.4"))));
        assert!(prefix.ip_matches(
            Some(ip("2001:db8:1:2::1")),
            Some(ip("2001:db8:1:2:ffff::9"))
        ));
        assert!(!prefix.ip_matches(Some(ip("2001:db8:1:2::1")), Some(ip("2001:db8:1:3::1"))));
        assert!(!prefix.ip_matches(Some(ip("1.2.3.4")), Some(ip("2001:db8::1"))));
        assert!(BindingPolicy::default().ip_matches(None, Some(ip("9.9.9.9"))));
    }

    #[test]
    fn user_agent_binding_compares_the_stored_prefix() {
        let p = BindingPolicy {
            user_agent: UserAgentBinding::Exact,
            ..Default::default()
        };
        assert!(p.user_agent_matches(Some("A"), Some("A")));
        assert!(!p.user_agent_matches(Some("A"), Some("B")));
        assert!(!p.user_agent_matches(Some("A"), None));
        let long = "é".repeat(400);
        assert!(p.user_agent_matches(Some(truncate_user_agent(&long)), Some(&long)));
        assert!(truncate_user_agent(&long).len() <= MAX_USER_AGENT_LEN);
    }

    #[test]
    fn forwarding_headers_only_from_trusted_proxies() {
        let proxies =
            TrustedProxies::new(ForwardedHeader::XForwardedFor, "10.0.0.0/8, 192.168.1.1").unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &h), ip("203.0.113.9"));
        assert_eq!(proxies.client_ip(ip("8.8.8.8"), &h), ip("8.8.8.8"));
        // Several trusted hops.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9, 10.0.0.3"),
            ("x-forwarded-for", "192.168.1.1"),
        ]);
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &h), ip("203.0.113.9"));
        // Garbage stops the walk at the last believable hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, junk, 10.0.0.3")]);
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &h), ip("10.0.0.3"));
        assert_eq!(
            proxies.client_ip(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
        assert!(TrustedProxies::new(ForwardedHeader::Forwarded, "10.0.0.0/33").is_err());
        assert!(TrustedProxies::new(ForwardedHeader::Forwarded, "nonsense").is_err());
        assert_eq!(TrustedProxies::none().header(), None);
        assert_eq!(
            TrustedProxies::new(ForwardedHeader::Forwarded, "")
                .unwrap()
                .header(),
            None
        );
    }

    #[test]
    fn only_the_configured_header_is_read_never_the_other() {
        let both = headers(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let xff = TrustedProxies::new(ForwardedHeader::XForwardedFor, "10.0.0.0/8").unwrap();
        let fwd = TrustedProxies::new(ForwardedHeader::Forwarded, "10.0.0.0/8").unwrap();
        assert_eq!(xff.client_ip(ip("10.1.1.1"), &both), ip("203.0.113.9"));
        assert_eq!(fwd.client_ip(ip("10.1.1.1"), &both), ip("2001:db8::7"));
        // Only the other header: the peer, not the client's choice.
        let spoof = headers(&[("forwarded", "for=192.0.2.66")]);
        assert_eq!(xff.client_ip(ip("10.1.1.1"), &spoof), ip("10.1.1.1"));
        let spoof = headers(&[("x-forwarded-for", "192.0.2.66")]);
        assert_eq!(fwd.client_ip(ip("10.1.1.1"), &spoof), ip("10.1.1.1"));
        // The configured header unreadable (not ASCII): the peer, never
        // the other header.
        let mut bad = HeaderMap::new();
        bad.insert(
            "forwarded",
            http::HeaderValue::from_bytes(b"for=\xc3\xa9").unwrap(),
        );
        bad.insert("x-forwarded-for", "192.0.2.66".parse().unwrap());
        assert_eq!(fwd.client_ip(ip("10.1.1.1"), &bad), ip("10.1.1.1"));
    }
}
