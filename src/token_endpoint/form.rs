//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests.
//!
//! Hand-written over `percent-encoding` rather than `form_urlencoded`,
//! because that crate decodes invalid UTF-8 lossily (a `%FF` silently
//! becomes U+FFFD) and keeps repeated names, while RFC 6749 wants repeated
//! parameters refused (§3.2) and we refuse malformed text outright.

use percent_encoding::percent_decode;

use super::TokenError;

/// At most this many parameters in one request.
pub(crate) const MAX_PARAMS: usize = 32;

/// Parsed form parameters: unique names; empty values count as omitted
/// (RFC 6749 §3.1).
#[derive(Debug, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, TokenError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_PARAMS {
                return Err(TokenError::InvalidRequest("Too many parameters"));
            }
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if name.is_empty() {
                return Err(TokenError::InvalidRequest("A parameter has no name"));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(TokenError::InvalidRequest("A parameter is repeated"));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of `name`; `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or `invalid_request` naming it.
    pub(crate) fn require(&self, name: &str, missing: &'static str) -> Result<&str, TokenError> {
        self.get(name).ok_or(TokenError::InvalidRequest(missing))
    }
}

/// `+` is a space, then percent-decoding, then strict UTF-8 without
/// control characters.
fn decode(raw: &[u8]) -> Result<String, TokenError> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let text = percent_decode(&plus)
        .decode_utf8()
        .map_err(|_| TokenError::InvalidRequest("The request body is not valid UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(TokenError::InvalidRequest(
            "The request body contains control characters",
        ));
    }
    Ok(text.into_owned())
}

/// Decodes one form-urlencoded component (used for Basic credentials, RFC
/// 6749 §2.3.1).
pub(crate) fn decode_component(raw: &str) -> Option<String> {
    decode(raw.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let f =
            Form::parse(b"grant_type=refresh_token&scope=read+write&x=%C3%A9&empty=&bare").unwrap();
        assert_eq!(f.get("grant_type"), Some("refresh_token"));
        assert_eq!(f.get("scope"), Some("read write"));
        assert_eq!(f.get("x"), Some("é"));
        assert_eq!(f.get("empty"), None);
        assert_eq!(f.get("bare"), None);
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn rejects_what_rfc6749_and_utf8_reject() {
        for bad in [
            &b"a=1&a=2"[..],
            b"a=%FF",
            b"a=\xff",
            b"a=%00",
            b"a=x%0Ay",
            b"=x",
            b"a=%E9",
        ] {
            assert!(Form::parse(bad).is_err(), "{bad:?}");
        }
        let many: Vec<u8> = (0..=MAX_PARAMS)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        assert!(Form::parse(&many).is_err());
        assert!(Form::parse(b"").unwrap().get("a").is_none());
    }
}
