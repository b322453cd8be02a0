//! Entry points for the fuzz targets under `fuzz/` (feature `fuzzing`):
//! the crate's hand-written parsers, reached directly so that the fuzzer
//! spends its time in them. Not a public API; no stability promise.
//!
//! Each function panics when a property the rest of the crate relies on
//! does not hold, so that libFuzzer reports it.

use http::{HeaderMap, HeaderValue, header};

use crate::{
    access_token::{AuthError, extract},
    token_endpoint::{TokenError, client_auth, form::Form},
};

/// The form parser: any bytes give parameters or `invalid_request`; the
/// decoded text is never larger than the input.
pub fn form(body: &[u8]) {
    match Form::parse(body) {
        Ok(form) => assert!(form.decoded_len() <= body.len()),
        Err(e) => assert_eq!(e.code(), "invalid_request"),
    }
}

/// Client credentials in `Authorization: Basic`: credentials,
/// `invalid_client` or `invalid_request`, never more text than given.
pub fn basic(value: &[u8]) {
    let Some(headers) = headers(header::AUTHORIZATION, value) else {
        return;
    };
    match client_auth::basic_credentials(&headers) {
        Ok(Some(p)) => assert!(!p.client_id.is_empty() && p.client_id.len() <= value.len()),
        Ok(None) => unreachable!("an Authorization header was sent"),
        Err(TokenError::InvalidClient { .. } | TokenError::InvalidRequest(_)) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
}

/// The bearer extractor, with the cookie source on: a token obeying the
/// b64token grammar and the length cap, or an RFC 6750 error.
pub fn bearer(authorization: &[u8], cookie: &[u8]) {
    let mut headers = headers(header::AUTHORIZATION, authorization).unwrap_or_default();
    if let Ok(v) = HeaderValue::from_bytes(cookie) {
        headers.insert(header::COOKIE, v);
    }
    match extract::find_token(&headers, Some("at"), 1024, true) {
        Ok((_, token)) => {
            assert!(!token.is_empty() && token.len() <= 1024);
            assert!(token.bytes().all(|b| b.is_ascii_graphic()));
        }
        Err(AuthError::MissingToken | AuthError::InvalidRequest(_)) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fn headers(name: header::HeaderName, value: &[u8]) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_bytes(value).ok()?);
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz entry points hold on the seeds and on plain garbage, so a
    /// fuzz run starts from properties that are true.
    #[test]
    fn the_entry_points_hold_on_the_seeds() {
        let seeds: [&[u8]; 4] = [
            b"grant_type=password&client_id=spa&username=alice&password=pw&scope=read+write",
            b"grant_type=refresh_token&refresh_token=abc%2Fdef&client_id=x",
            b"a=%FF&a=1",
            b"\xff\x00=&&==",
        ];
        for seed in seeds {
            form(seed);
            basic(seed);
            bearer(seed, seed);
        }
        basic(b"Basic bXklM0FjbGllbnQ6cyVDMyVBOWNyZXQ=");
        bearer(b"Bearer eyJh.eyJz.c2ln", b"a=1; at=\"tok.en\"");
    }
}
