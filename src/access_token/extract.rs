//! Finding the access token in a request (RFC 6750 §2).
//!
//! Hand-written rather than taken from a crate: the grammar is a few lines
//! (`Bearer 1*SP b64token`), and this way the token is borrowed from the
//! header with no allocation, and every malformed form maps to the exact
//! RFC 6750 error.

use http::{HeaderMap, header};

use super::AuthError;

/// How the token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer` or the cookie (RFC 6750).
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header (RFC 9449
    /// §7.1).
    Dpop,
}

/// Finds the access token in `Authorization` (`Bearer`, or `DPoP` when
/// `dpop` is on) or, if configured, in a cookie.
pub(crate) fn find_token<'a>(
    headers: &'a HeaderMap,
    cookie: Option<&str>,
    max_len: usize,
    dpop: bool,
) -> Result<(Scheme, &'a str), AuthError> {
    let from_header = authorization(headers, max_len, dpop)?;
    let from_cookie = match cookie {
        Some(name) => cookie_token(headers, name, max_len)?,
        None => None,
    };
    match (from_header, from_cookie) {
        (Some(_), Some(_)) => Err(AuthError::InvalidRequest(
            "The access token was sent in more than one way",
        )),
        (Some(found), None) => Ok(found),
        (None, Some(token)) => Ok((Scheme::Bearer, token)),
        (None, None) => Err(AuthError::MissingToken),
    }
}

/// The token of an `Authorization: Bearer` (or `DPoP`) header; `None`
/// when there is no such header or it uses another scheme (no
/// credentials we take).
fn authorization(
    headers: &HeaderMap,
    max_len: usize,
    dpop: bool,
) -> Result<Option<(Scheme, &str)>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "The request has more than one Authorization header",
        ));
    }
    let bytes = value.as_bytes();
    if bytes.len() > max_len {
        return Err(AuthError::InvalidRequest(
            "The Authorization header is too long",
        ));
    }
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i..]),
        None => (bytes, &b""[..]),
    };
    let scheme = if scheme.eq_ignore_ascii_case(b"Bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case(b"DPoP") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = trim_ascii_spaces(rest);
    let (empty, malformed) = match scheme {
        Scheme::Bearer => (
            "The Bearer credentials are empty",
            "The Bearer credentials are malformed",
        ),
        Scheme::Dpop => (
            "The DPoP credentials are empty",
            "The DPoP credentials are malformed",
        ),
    };
    if token.is_empty() {
        return Err(AuthError::InvalidRequest(empty));
    }
    as_b64token(token)
        .map(|t| Some((scheme, t)))
        .ok_or(AuthError::InvalidRequest(malformed))
}

/// The token in the cookie `name`, if present.
fn cookie_token<'a>(
    headers: &'a HeaderMap,
    name: &str,
    max_len: usize,
) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for mut raw in crate::header::cookies(headers, name) {
        if found.is_some() {
            return Err(AuthError::InvalidRequest(
                "The access-token cookie is present more than once",
            ));
        }
        if raw.len() > max_len {
            return Err(AuthError::InvalidRequest(
                "The access-token cookie is too long",
            ));
        }
        // RFC 6265 §4.1.1: a cookie value may be wrapped in DQUOTEs.
        if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
            raw = &raw[1..raw.len() - 1];
        }
        if raw.is_empty() {
            continue;
        }
        found = Some(as_b64token(raw).ok_or(AuthError::InvalidRequest(
            "The access-token cookie is malformed",
        ))?);
    }
    Ok(found)
}

/// Whether `b` may appear in a b64token body (RFC 6750 §2.1): ALPHA,
/// DIGIT, `-`, `.`, `_`, `~`, `+`, `/`. Written as branch-free byte
/// arithmetic so that the loop over a token compiles to vector compares
/// (this runs over every token on every request).
fn b64token_body_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    // `-` `.` `/` are adjacent (0x2D..=0x2F).
    let other = (b.wrapping_sub(b'-') < 3) | (b == b'+') | (b == b'_') | (b == b'~');
    letter | digit | other
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn as_b64token(bytes: &[u8]) -> Option<&str> {
    let body_len = bytes.iter().rposition(|&b| b != b'=')? + 1;
    // No early exit: valid tokens are read to the end anyway, and a fold
    // without branches vectorises.
    let body_ok = bytes[..body_len]
        .iter()
        .fold(true, |ok, &b| ok & b64token_body_byte(b));
    if !body_ok {
        return None;
    }
    // Every byte is ASCII, so this cannot fail.
    std::str::from_utf8(bytes).ok()
}

fn trim_ascii_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        h
    }

    fn find(pairs: &[(&'static str, &[u8])]) -> Result<&'static str, AuthError> {
        let h = Box::leak(Box::new(headers(pairs)));
        find_token(h, Some("at"), 4096, false).map(|(_, token)| token)
    }

    #[test]
    fn the_dpop_scheme_only_when_dpop_is_on() {
        let h = headers(&[("authorization", b"DPoP abc.def")]);
        assert_eq!(
            find_token(&h, None, 4096, true),
            Ok((Scheme::Dpop, "abc.def"))
        );
        assert_eq!(
            find_token(&h, None, 4096, false),
            Err(AuthError::MissingToken)
        );
        let h = headers(&[("authorization", b"dpop ")]);
        assert!(matches!(
            find_token(&h, None, 4096, true),
            Err(AuthError::InvalidRequest(_))
        ));
        let h = headers(&[("authorization", b"Bearer abc")]);
        assert_eq!(
            find_token(&h, None, 4096, true),
            Ok((Scheme::Bearer, "abc"))
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_is_borrowed() {
        assert_eq!(
            find(&[("authorization", b"Bearer abc.def-_~+/==")]),
            Ok("abc.def-_~+/==")
        );
        assert_eq!(find(&[("authorization", b"bearer   abc")]), Ok("abc"));
        assert_eq!(find(&[("authorization", b"BEARER abc ")]), Ok("abc"));
    }

    #[test]
    fn other_schemes_and_absence_mean_no_credentials() {
        assert_eq!(find(&[]), Err(AuthError::MissingToken));
        assert_eq!(
            find(&[("authorization", b"Basic YTpi")]),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            find(&[("authorization", b"Bearerabc")]),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn malformed_bearer_credentials_are_invalid_request() {
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a,b",
            b"Bearer a\"b",
            b"Bearer =abc",
            b"Bearer ab=c",
            b"Bearer \xffabc",
        ] {
            let e = find(&[("authorization", bad)]).unwrap_err();
            assert!(
                matches!(e, AuthError::InvalidRequest(_)),
                "{bad:?} gave {e:?}"
            );
        }
        let two = find(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer b"),
        ]);
        assert!(matches!(two, Err(AuthError::InvalidRequest(_))));
    }

    #[test]
    fn the_byte_arithmetic_is_the_rfc6750_b64token_alphabet() {
        for b in 0..=u8::MAX {
            let spec = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(b64token_body_byte(b), spec, "byte {b:#04x}");
        }
    }

    #[test]
    fn header_length_is_capped() {
        let mut long = b"Bearer ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 5000));
        let h = headers(&[("authorization", &long)]);
        assert!(matches!(
            find_token(&h, None, 4096, false),
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(find_token(&h, None, 8192, false).is_ok());
    }

    #[test]
    fn cookie_source_when_configured() {
        assert_eq!(find(&[("cookie", b"a=1; at=tok.en; b=2")]), Ok("tok.en"));
        assert_eq!(find(&[("cookie", b"at=\"tok\"")]), Ok("tok"));
        assert_eq!(find(&[("cookie", b"x=1"), ("cookie", b"at=t")]), Ok("t"));
        assert_eq!(
            find(&[("cookie", b"other_at=tok")]),
            Err(AuthError::MissingToken)
        );
        assert!(matches!(
            find(&[("cookie", b"at=a; at=b")]),
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            find(&[("cookie", b"at=a"), ("authorization", b"Bearer a")]),
            Err(AuthError::InvalidRequest(_))
        ));
        // Not configured: the cookie is ignored.
        let h = headers(&[("cookie", b"at=tok")]);
        assert_eq!(
            find_token(&h, None, 4096, false),
            Err(AuthError::MissingToken)
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
            let grammar = proptest::sample::select(b"Bearer =;\"\t.a".to_vec());
            proptest::collection::vec(prop_oneof![any::<u8>(), grammar], 0..600)
        }

        proptest! {
            /// Any `Authorization` and `Cookie` values: a token that obeys
            /// the b64token grammar and the size cap, no token, or
            /// `invalid_request`; never a panic.
            #[test]
            fn any_header_gives_a_wellformed_token_or_an_rfc6750_error(
                auth in header_bytes(),
                cookie in header_bytes(),
                prefix in any::<bool>(),
            ) {
                let mut auth_value = if prefix { b"Bearer ".to_vec() } else { Vec::new() };
                auth_value.extend(auth);
                let mut h = HeaderMap::new();
                for (name, value) in [(header::AUTHORIZATION, auth_value), (header::COOKIE, cookie)] {
                    if let Ok(v) = HeaderValue::from_bytes(&value) {
                        h.insert(name, v);
                    }
                }
                match find_token(&h, Some("at"), 256, true) {
                    Ok((_, token)) => {
                        prop_assert!(!token.is_empty() && token.len() <= 256);
                        prop_assert!(as_b64token(token.as_bytes()).is_some());
                    }
                    Err(AuthError::MissingToken | AuthError::InvalidRequest(_)) => {}
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                }
            }

            /// Every b64token is found as it was sent.
            #[test]
            fn b64tokens_are_returned_as_sent(token in "[A-Za-z0-9._~+/-]{1,200}={0,2}", spaces in 1usize..4) {
                let value = format!("Bearer{}{token}", " ".repeat(spaces));
                let h = headers(&[("authorization", value.as_bytes())]);
                prop_assert_eq!(find_token(&h, None, 4096, false), Ok((Scheme::Bearer, token.as_str())));
            }
        }
    }
}
