//! Strict `application/x-www-form-urlencoded` parsing for OAuth requests.
//!
//! Hand-written over `percent-encoding` rather than `form_urlencoded`,
//! because that crate decodes invalid UTF-8 lossily (a `%FF` silently
//! becomes U+FFFD) and keeps repeated names, while RFC 6749 wants repeated
//! parameters refused (§3.2) and we refuse malformed text outright.

use percent_encoding::percent_decode;

use super::TokenError;

/// The one parameter that may appear more than once (RFC 8707 §2).
const REPEATABLE: &str = "resource";

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
            // RFC 6749 §3.2: no parameter more than once, except the one
            // RFC 8707 §2 makes repeatable.
            if name != REPEATABLE && pairs.iter().any(|(n, _)| *n == name) {
                return Err(TokenError::InvalidRequest("A parameter is repeated"));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// Bytes of decoded text held.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn decoded_len(&self) -> usize {
        self.pairs.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// The value of `name`; `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`, in order (for the repeatable
    /// `resource`).
    pub(crate) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
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

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Form-encodes `text` as HTML forms do: space as `+`, letters and
        /// digits as they are, every other byte percent-encoded.
        fn encode(text: &str, plus: bool) -> String {
            text.bytes()
                .map(|b| match b {
                    b' ' if plus => "+".to_owned(),
                    b if b.is_ascii_alphanumeric() && plus => char::from(b).to_string(),
                    b => format!("%{b:02X}"),
                })
                .collect()
        }

        /// Text without control characters.
        fn text(max: usize) -> impl Strategy<Value = String> {
            proptest::collection::vec(any::<char>(), 0..max)
                .prop_map(|cs| cs.into_iter().filter(|c| !c.is_control()).collect())
        }

        /// Bytes, half of them from the form grammar's own alphabet so that
        /// names, values, escapes and separators actually occur.
        fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
            let grammar = proptest::sample::select(b"&&==%%+aF09".to_vec());
            proptest::collection::vec(prop_oneof![any::<u8>(), grammar], 0..2048)
        }

        proptest! {
            /// Arbitrary bytes: a result or an `invalid_request`, never a
            /// panic, and never more text out than bytes in.
            #[test]
            fn any_body_parses_or_is_invalid_request(body in form_bytes()) {
                match Form::parse(&body) {
                    Ok(form) => {
                        prop_assert!(form.decoded_len() <= body.len());
                        prop_assert!(form.pairs.len() <= MAX_PARAMS);
                        for (i, (name, value)) in form.pairs.iter().enumerate() {
                            prop_assert!(!name.is_empty());
                            prop_assert!(!name.chars().chain(value.chars()).any(char::is_control));
                            prop_assert!(form.pairs[..i].iter().all(|(n, _)| n != name));
                        }
                    }
                    Err(e) => prop_assert_eq!(e.code(), "invalid_request"),
                }
            }

            /// Whatever a client encodes comes back exactly.
            #[test]
            fn encoded_pairs_round_trip(
                pairs in proptest::collection::btree_map(text(12), text(40), 0..8),
                plus in any::<bool>(),
            ) {
                let body = pairs
                    .iter()
                    .filter(|(n, _)| !n.is_empty())
                    .map(|(n, v)| format!("{}={}", encode(n, plus), encode(v, plus)))
                    .collect::<Vec<_>>()
                    .join("&");
                let form = Form::parse(body.as_bytes()).unwrap();
                for (n, v) in pairs.iter().filter(|(n, _)| !n.is_empty()) {
                    prop_assert_eq!(form.get(n), Some(v.as_str()).filter(|v| !v.is_empty()));
                }
            }
        }
    }
}
