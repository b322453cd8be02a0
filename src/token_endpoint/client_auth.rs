//! Client authentication (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, and public clients by `client_id` alone.

use std::{sync::Arc, time::SystemTime};

use http::{HeaderMap, header};
use sea_orm::DatabaseConnection;

use super::{TokenError, form::Form, form::decode_component};
use crate::store::{
    self,
    clients::{self, Client},
};

/// Client lookups, kept briefly so a token request does not read the client
/// row every time. "No such client" is cached too: otherwise a known id
/// would be answered from memory and an unknown one from the database, and
/// the timing would tell them apart. Losing an entry only costs a read, so
/// the cache is bounded; a changed, added or removed client applies within
/// its TTL.
pub(crate) type ClientCache = moka::sync::Cache<String, Option<Arc<Client>>>;

/// Credentials as presented. No `Debug`: it holds the secret.
pub(crate) struct Presented {
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
    /// HTTP Basic was used (so a failure answers with a Basic challenge).
    pub(crate) basic: bool,
}

/// Longest client id or secret accepted.
const MAX_CREDENTIAL_LEN: usize = 512;

/// The `Authorization: Basic` credentials, if that scheme is used. The id
/// and secret are form-urlencoded inside the Basic value (§2.3.1).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<Presented>, TokenError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = TokenError::InvalidClient { basic: true };
    if values.next().is_some() {
        return Err(TokenError::InvalidRequest(
            "More than one Authorization header",
        ));
    }
    let value = value.to_str().map_err(|_| bad.clone())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad);
    };
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(TokenError::InvalidRequest(
            "The token endpoint accepts Basic client authentication only",
        ));
    }
    let rest = rest.trim();
    if rest.len() > 2 * MAX_CREDENTIAL_LEN {
        return Err(bad);
    }
    // Standard alphabet with padding (RFC 7617 §2, RFC 4648 §4).
    let decoded = base64_simd::STANDARD
        .decode_to_vec(rest)
        .map_err(|_| bad.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| bad.clone())?;
    let (id, secret) = text.split_once(':').ok_or(bad.clone())?;
    let id = decode_component(id).ok_or(bad.clone())?;
    let secret = decode_component(secret).ok_or(bad.clone())?;
    if id.is_empty() {
        return Err(bad);
    }
    Ok(Some(Presented {
        client_id: id,
        secret: Some(secret),
        basic: true,
    }))
}

/// Who is calling, from Basic or the body; two methods at once are
/// `invalid_request`.
pub(crate) fn presented(basic: Option<Presented>, form: &Form) -> Result<Presented, TokenError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let p = match basic {
        Some(basic) => {
            if body_secret.is_some() {
                return Err(TokenError::InvalidRequest(
                    "The client used more than one authentication method",
                ));
            }
            if body_id.is_some_and(|id| id != basic.client_id) {
                return Err(TokenError::InvalidRequest(
                    "client_id differs from the authenticated client",
                ));
            }
            basic
        }
        None => Presented {
            client_id: body_id
                .ok_or(TokenError::InvalidClient { basic: false })?
                .to_owned(),
            secret: body_secret.map(str::to_owned),
            basic: false,
        },
    };
    if p.client_id.len() > MAX_CREDENTIAL_LEN
        || p.secret
            .as_ref()
            .is_some_and(|s| s.len() > MAX_CREDENTIAL_LEN)
    {
        return Err(TokenError::InvalidClient { basic: p.basic });
    }
    Ok(p)
}

/// Looks the client up and checks its secret in constant time. An unknown
/// client costs the same hash and comparison as a wrong secret, and gets
/// the same answer.
pub(crate) async fn authenticate(
    db: &DatabaseConnection,
    cache: &ClientCache,
    p: &Presented,
    now: SystemTime,
) -> Result<Arc<Client>, TokenError> {
    let failed = TokenError::InvalidClient { basic: p.basic };
    let found = match cache.get(&p.client_id) {
        Some(cached) => cached,
        None => {
            let found = store::clients::find(db, &p.client_id)
                .await
                .map_err(|e| unavailable(&e))?
                .map(Arc::new);
            cache.insert(p.client_id.clone(), found.clone());
            found
        }
    };
    match found {
        // A disabled client fails as a wrong secret does.
        Some(client) if client.secret_matches(p.secret.as_deref(), now) && !client.disabled => {
            Ok(client)
        }
        Some(_) => Err(failed),
        None => {
            clients::dummy_secret_check(p.secret.as_deref());
            Err(failed)
        }
    }
}

pub(crate) fn unavailable(e: &store::StoreError) -> TokenError {
    tracing::error!(error = %e, source = ?std::error::Error::source(e), "store failure at the token endpoint");
    TokenError::Unavailable
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn basic(value: &[u8]) -> Result<Option<Presented>, TokenError> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(header::AUTHORIZATION, v);
        }
        basic_credentials(&headers)
    }

    fn encode(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = format!(
            "Basic {}",
            base64_simd::STANDARD.encode_to_string("my%3Aclient:s%C3%A9cret+x")
        );
        let p = basic(value.as_bytes()).unwrap().unwrap();
        assert_eq!(p.client_id, "my:client");
        assert_eq!(p.secret.as_deref(), Some("sécret x"));
        assert!(p.basic);
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client() {
        let long = format!("Basic {}", "A".repeat(4 * MAX_CREDENTIAL_LEN));
        for bad in [
            "Basic",
            "Basic !!!",
            "Basic bm9jb2xvbg==", // "nocolon"
            "Basic OnNlY3JldA==", // ":secret", no id
            "Basic YSUwMDpi",     // "a%00:b", a control character
            "Basic /w==",         // not UTF-8
            long.as_str(),
        ] {
            let e = basic(bad.as_bytes()).err();
            assert_eq!(e, Some(TokenError::InvalidClient { basic: true }), "{bad}");
        }
        assert!(matches!(
            basic(b"Bearer abc"),
            Err(TokenError::InvalidRequest(_))
        ));
    }

    proptest! {
        /// Any header value: credentials, `invalid_client` or
        /// `invalid_request`, never a panic.
        #[test]
        fn any_authorization_value_is_handled(value in proptest::collection::vec(any::<u8>(), 0..3000)) {
            if let Err(e) = basic(&value) {
                prop_assert!(matches!(e.code(), "invalid_client" | "invalid_request"), "{:?}", e);
            }
        }

        /// Base64 of arbitrary bytes behind `Basic`.
        #[test]
        fn any_basic_payload_is_handled(payload in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let value = format!("Basic {}", base64_simd::STANDARD.encode_to_string(&payload));
            match basic(value.as_bytes()) {
                Ok(Some(p)) => {
                    prop_assert!(!p.client_id.is_empty());
                    prop_assert!(p.client_id.len() + p.secret.map_or(0, |s| s.len()) <= payload.len());
                }
                Ok(None) => prop_assert!(false, "Basic credentials were ignored"),
                Err(e) => prop_assert_eq!(e, TokenError::InvalidClient { basic: true }),
            }
        }

        /// Whatever id and secret a client encodes come back exactly.
        #[test]
        fn encoded_credentials_round_trip(id in "\\PC{1,40}", secret in "\\PC{0,60}") {
            let value = format!("Basic {}", base64_simd::STANDARD.encode_to_string(format!("{}:{}", encode(&id), encode(&secret))));
            let p = basic(value.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(p.client_id, id);
            prop_assert_eq!(p.secret, Some(secret));
        }
    }
}
