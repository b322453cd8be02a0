//! Access-token verification: everything the gate checks of a token, apart
//! from the Tower glue that finds it in a request.
//!
//! Hand-written over jsonwebtoken's primitives because the gate verifies
//! every request: a token whose JOSE header is byte for byte the one our
//! issuer writes skips base64 and JSON for the header, payload and tag
//! decode into stack buffers, and the claims are parsed once. The rules are
//! jsonwebtoken's and RFC 9068's; `tests` below hold the differential test
//! against `jsonwebtoken::decode`.

use std::{borrow::Cow, fmt, mem::MaybeUninit, time::Duration};

use super::{AuthError, InvalidToken, cache::VerifiedCache};
use crate::{
    b64url,
    claims::{AccessClaims, Claim, ClaimError, ClaimRules, RawClaims},
    keys::{
        ACCESS_TOKEN_TYP, Algorithm, AlgorithmFamily, KeySet, Keys, VerifyingKey, parse_algorithm,
    },
    revocation::RevocationCache,
    time::unix_secs,
};

/// Verifies access tokens: signature by `kid` under an algorithm
/// allow-list, `exp`/`nbf`/`iat` with leeway, `iss`, `aud`, `typ`, `jti`,
/// then the deny list. The gate holds one; so do `/revoke` and
/// `/introspect`, which must judge a token exactly as the gate does.
///
/// Built by [`AccessTokenLayerBuilder::build`](super::AccessTokenLayerBuilder::build)
/// and read from [`AccessTokenLayer::verifier`](super::AccessTokenLayer::verifier).
/// Cloning is cheap enough for setup (the keys and deny list are shared).
#[derive(Clone)]
pub struct Verifier {
    pub(crate) keys: Keys,
    /// The algorithm allow-list.
    pub(crate) algorithms: Vec<Algorithm>,
    /// The one trusted issuer.
    pub(crate) issuer: String,
    /// The audiences this resource answers to.
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: u64,
    /// Normalized accepted `typ` values; `None` accepts any.
    pub(crate) token_types: Option<Vec<String>>,
    /// A token without `typ` passes the type check (the OpenID profile).
    pub(crate) typ_optional: bool,
    /// The issuer's profile and required claims.
    pub(crate) rules: ClaimRules,
    pub(crate) revocations: RevocationCache,
    pub(crate) max_token_len: usize,
    /// Asymmetric tokens already verified; `None` when off, or when only
    /// HMAC algorithms are allowed.
    pub(crate) cache: Option<VerifiedCache>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("algorithms", &self.algorithms)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("token_types", &self.token_types)
            .field("typ_optional", &self.typ_optional)
            .field("rules", &self.rules)
            .field("revocations", &self.revocations)
            .finish()
    }
}

impl Verifier {
    /// The deny list consulted.
    pub fn revocations(&self) -> &RevocationCache {
        &self.revocations
    }

    /// The key handle verified with.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How many verified asymmetric tokens are remembered now (0 with the
    /// cache off). For operators' dashboards and tests; counting settles
    /// the cache's pending work first, so keep it off the request path.
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, VerifiedCache::entry_count)
    }

    /// Verifies a token: header, key by `kid`, signature, `exp`/`nbf`/`iat`,
    /// `iss`, `aud`, `typ`, the claims the profile requires, then the deny
    /// list.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.verify_with_raw(token).map(|(claims, _)| claims)
    }

    /// [`verify`](Self::verify), also returning every claim of the token as
    /// signed, for an issuer's own claims.
    ///
    /// A token verified by an asymmetric key is remembered (unless the
    /// gate was built with
    /// [`no_verified_token_cache`](super::AccessTokenLayerBuilder::no_verified_token_cache)):
    /// presented again, under the same key set and before its `exp`, its
    /// signature and claims are not checked again, but its times, the deny
    /// list and the list's freshness are.
    pub fn verify_with_raw(&self, token: &str) -> Result<(AccessClaims, RawClaims), AuthError> {
        let s = self;
        let invalid = AuthError::InvalidToken;
        if token.len() > s.max_token_len {
            return Err(invalid(InvalidToken::Malformed));
        }
        let Compact {
            message,
            header_b64,
            payload_b64,
            signature,
        } = Compact::split(token).ok_or(invalid(InvalidToken::Malformed))?;
        let mut buf = [MaybeUninit::uninit(); 1024];
        let keys = s.keys.load();
        let key = match keys.find_issued_header(header_b64) {
            // Byte for byte the header tollgate signs with under this key:
            // its `alg` and `kid`, `typ: at+jwt`, no `crit`.
            Some(key) => {
                check_type(s, Some(ACCESS_TOKEN_TYP))?;
                key
            }
            None => parsed_header_key(s, &keys, header_b64, &mut buf).inspect_err(|e| {
                if *e == AuthError::InvalidToken(InvalidToken::UnknownKey) {
                    s.keys.unknown_kid();
                }
            })?,
        };
        if !s.algorithms.contains(&key.algorithm()) {
            return Err(invalid(InvalidToken::DisallowedAlgorithm));
        }
        // An HMAC costs less than a lookup: only asymmetric tokens are
        // remembered.
        let cache = s
            .cache
            .as_ref()
            .filter(|_| key.algorithm().family() != AlgorithmFamily::Hmac);
        if let Some(hit) = cache.and_then(|c| c.get(token, keys.generation())) {
            let claims = s.read_claims(hit.raw.as_str())?;
            s.check_live(&claims)?;
            return Ok((claims, hit.raw));
        }
        if !key.verify_signature(message.as_bytes(), signature) {
            return Err(invalid(InvalidToken::BadSignature));
        }

        // Only now, with the signature checked, are the claims read.
        let payload =
            b64url::decode(payload_b64, &mut buf).ok_or(invalid(InvalidToken::Malformed))?;
        // One UTF-8 check of the whole payload, then the `str` reader:
        // `from_slice` would validate every string it reads on its own.
        let json = std::str::from_utf8(&payload).map_err(|_| invalid(InvalidToken::BadClaims))?;
        let claims = s.read_claims(json)?;
        s.check_live(&claims)?;
        let raw = RawClaims::from_json(json);
        if let Some(cache) = cache {
            let now = unix_secs(s.revocations.now());
            let ttl = Duration::from_secs(claims.exp.saturating_sub(now));
            cache.insert(token, &raw, keys.generation(), ttl);
        }
        Ok((claims, raw))
    }

    /// The claims of a verified payload, under the issuer's profile.
    fn read_claims(&self, json: &str) -> Result<AccessClaims, AuthError> {
        AccessClaims::from_payload(json, self.rules).map_err(|e| {
            AuthError::InvalidToken(match e {
                ClaimError::Malformed => InvalidToken::BadClaims,
                ClaimError::Missing(claim) => InvalidToken::MissingClaim(claim),
                ClaimError::Invalid(claim) => InvalidToken::InvalidClaim(claim),
            })
        })
    }

    /// What may change after a token was first verified: its times against
    /// the clock (and, unchanging but cheap, its issuer and audience), the
    /// deny list, the list's freshness.
    fn check_live(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        check_claims(self, claims, unix_secs(self.revocations.now()))?;
        if let Some(by) = self.revocations.check(
            claims.jti.as_deref(),
            claims.sid.as_deref(),
            claims.subject(),
            claims.iat,
        ) {
            return Err(AuthError::Revoked(by));
        }
        if self.revocations.is_stale() {
            return Err(AuthError::Unavailable);
        }
        Ok(())
    }
}

/// A JWS compact serialization cut into its parts: exactly three, split
/// on `.` (each part's base64url is checked when it is decoded).
pub(crate) struct Compact<'a> {
    /// `header.payload`, what the signature covers.
    pub(crate) message: &'a str,
    pub(crate) header_b64: &'a str,
    pub(crate) payload_b64: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Compact<'a> {
    pub(crate) fn split(token: &'a str) -> Option<Self> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header_b64, payload_b64) = message.split_once('.')?;
        if payload_b64.contains('.') {
            return None;
        }
        Some(Self {
            message,
            header_b64,
            payload_b64,
            signature,
        })
    }
}

/// The JOSE header fields the gate reads; any others are ignored, and a
/// duplicated field is an error (serde), so no two parsers can disagree.
#[derive(serde::Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// Present at all, whatever its value: `"crit": null` is no more
    /// absent than an array is (RFC 7515 §4.1.11 allows only a non-empty
    /// array, and we understand no extension).
    #[serde(default, deserialize_with = "crate::keys::present")]
    crit: bool,
}

/// The key for a header tollgate did not write itself: decoded, parsed
/// and checked field by field.
fn parsed_header_key<'k>(
    s: &Verifier,
    keys: &'k KeySet,
    header_b64: &str,
    buf: &mut [MaybeUninit<u8>],
) -> Result<&'k VerifyingKey, AuthError> {
    header_key(keys, header_b64, buf, |typ| check_type(s, typ).is_ok())
        .map_err(AuthError::InvalidToken)
}

/// The key of `keys` a JWS header (base64url, as in the token) names, the
/// header checked in this order: a known `alg`, a `typ` that `typ_ok`
/// accepts, no `crit`, a known `kid`, and the key's algorithm equal to the
/// header's. Shared with the back-channel logout receiver.
pub(crate) fn header_key<'k>(
    keys: &'k KeySet,
    header_b64: &str,
    buf: &mut [MaybeUninit<u8>],
    typ_ok: impl FnOnce(Option<&str>) -> bool,
) -> Result<&'k VerifyingKey, InvalidToken> {
    let header_json = b64url::decode(header_b64, buf).ok_or(InvalidToken::Malformed)?;
    let header: JoseHeader<'_> = std::str::from_utf8(&header_json)
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or(InvalidToken::Malformed)?;
    // Unknown names (`none` among them) do not parse; RFC 9864's
    // `Ed25519` is EdDSA.
    let alg: Algorithm = parse_algorithm(&header.alg).ok_or(InvalidToken::DisallowedAlgorithm)?;
    if !typ_ok(header.typ.as_deref()) {
        return Err(InvalidToken::WrongType);
    }
    // We understand no JWS extensions (RFC 7515 §4.1.11). `jku`, `x5u`,
    // `jwk` and `x5c` are never looked at: keys come only from our set.
    if header.crit {
        return Err(InvalidToken::UnsupportedCritical);
    }
    let key = keys
        .find(header.kid.as_deref())
        .ok_or(InvalidToken::UnknownKey)?;
    // The key decides the algorithm; the header only has to agree.
    if key.algorithm() != alg {
        return Err(InvalidToken::DisallowedAlgorithm);
    }
    Ok(key)
}

/// The header's `typ` is one the gate accepts (if it is configured to
/// check).
fn check_type(s: &Verifier, typ: Option<&str>) -> Result<(), AuthError> {
    let accepted = match (&s.token_types, typ) {
        (None, _) => true,
        (Some(_), None) => s.typ_optional,
        (Some(accepted), Some(typ)) => accepted.iter().any(|a| typ_matches(a, typ)),
    };
    if accepted {
        Ok(())
    } else {
        Err(AuthError::InvalidToken(InvalidToken::WrongType))
    }
}

/// The registered-claim rules of RFC 7519 §4.1 and RFC 9068 §4, with the
/// configured leeway on every time comparison.
fn check_claims(s: &Verifier, claims: &AccessClaims, now: u64) -> Result<(), AuthError> {
    let invalid = AuthError::InvalidToken;
    if now > claims.exp.saturating_add(s.leeway) {
        return Err(invalid(InvalidToken::Expired));
    }
    let early = |t: u64| t > now.saturating_add(s.leeway);
    if claims.nbf.is_some_and(early) || claims.iat.is_some_and(early) {
        return Err(invalid(InvalidToken::NotYetValid));
    }
    if claims.iss != s.issuer {
        return Err(invalid(InvalidToken::WrongIssuer));
    }
    if !claims.aud.iter().any(|a| s.audiences.contains(a)) {
        return Err(invalid(InvalidToken::WrongAudience));
    }
    // A deny-list entry made now must outlive the token: its lifetime,
    // or without `iat` what is left of it, is bounded.
    let lifetime = match claims.iat {
        Some(iat) if claims.exp < iat => {
            return Err(invalid(InvalidToken::InvalidClaim(Claim::Exp)));
        }
        Some(iat) => claims.exp - iat,
        None => claims.exp.saturating_sub(now),
    };
    if lifetime > s.revocations.max_token_lifetime().as_secs() {
        return Err(invalid(InvalidToken::LifetimeTooLong));
    }
    Ok(())
}

/// `typ` matches an accepted (normalized) value: case-insensitive, with an
/// optional `application/` prefix (RFC 7515 §4.1.9). No allocation.
fn typ_matches(accepted: &str, typ: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(accepted)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{AccessTokenLayer, keys::SigningKey};

    const ISS: &str = "https://auth.example";
    const AUD: &str = "orders-api";
    const SECRET: [u8; 32] = [42; 32];

    fn hs256() -> SigningKey {
        SigningKey::hmac("hs-1", Algorithm::HS256, &SECRET).unwrap()
    }

    fn verifier(key: &SigningKey) -> Verifier {
        AccessTokenLayer::builder()
            .keys(key.clone())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap()
            .verifier()
            .clone()
    }

    fn claims(jti: &str) -> AccessClaims {
        let now = jsonwebtoken::get_current_timestamp();
        AccessClaims {
            iss: ISS.into(),
            sub: "alice".into(),
            aud: vec![AUD.into()],
            exp: now + 300,
            iat: Some(now),
            nbf: None,
            jti: Some(jti.into()),
            client_id: Some("web".into()),
            scope: Some("orders:read".into()),
            sid: Some("s-1".into()),
            tenant: None,
            cnf: None,
            auth_time: None,
            acr: None,
            amr: None,
        }
    }

    #[test]
    fn typ_matching() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("at+jwt", "AT+JWT"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(typ_matches("at+jwt", "Application/At+Jwt"));
        assert!(!typ_matches("at+jwt", "JWT"));
        assert!(!typ_matches("at+jwt", "application/"));
        assert!(!typ_matches("at+jwt", "xat+jwt"));
        assert!(!typ_matches("at+jwt", "é"));
    }

    /// Differential: for every one-character mutation of a valid token, the
    /// verifier and `jsonwebtoken::decode` (an independent implementation
    /// of the same rules) agree, and both refuse.
    #[test]
    fn verdicts_agree_with_jsonwebtoken_on_every_one_character_mutation() {
        use jsonwebtoken::{DecodingKey, Validation};
        let cases = [
            (hs256(), DecodingKey::from_secret(&SECRET)),
            (
                SigningKey::from_pem(
                    "ed-1",
                    Algorithm::EdDSA,
                    include_bytes!("../../tests/keys/ed25519.pem"),
                )
                .unwrap(),
                DecodingKey::from_ed_pem(include_bytes!("../../tests/keys/ed25519.pub.pem"))
                    .unwrap(),
            ),
        ];
        for (key, decoding) in cases {
            let v = verifier(&key);
            let mut validation = Validation::new(key.algorithm());
            validation.set_issuer(&[ISS]);
            validation.set_audience(&[AUD]);
            validation.leeway = 30;
            let token = key.sign(&claims("diff")).unwrap();
            let mut checked = 0;
            for i in 0..token.len() {
                for replacement in [b'A', b'f', b'_', b'-', b'.', b'='] {
                    let mut bytes = token.clone().into_bytes();
                    if bytes[i] == replacement {
                        continue;
                    }
                    bytes[i] = replacement;
                    let mutated = String::from_utf8(bytes).unwrap();
                    let ours = v.verify(&mutated).is_ok();
                    let theirs =
                        jsonwebtoken::decode::<AccessClaims>(&mutated, &decoding, &validation)
                            .is_ok();
                    assert_eq!(ours, theirs, "position {i} -> {}", replacement as char);
                    assert!(!ours, "a mutated token verified at position {i}");
                    checked += 1;
                }
            }
            assert!(checked > 1000);
            assert!(v.verify(&token).is_ok());
        }
    }

    /// The JOSE header values an attacker would try.
    fn jose_header() -> impl Strategy<Value = serde_json::Value> {
        let alg = prop_oneof![
            Just("HS256".to_owned()),
            Just("none".to_owned()),
            Just("None".to_owned()),
            Just("RS256".to_owned()),
            Just("ES256".to_owned()),
            Just("EdDSA".to_owned()),
            Just("HS512".to_owned()),
            "\\PC{0,8}",
        ];
        let kid = prop_oneof![
            Just(None),
            Just(Some("hs-1".to_owned())),
            Just(Some("../../../../etc/passwd".to_owned())),
            Just(Some("/dev/zero".to_owned())),
            Just(Some("http://127.0.0.1:9/key".to_owned())),
            Just(Some("hs-1' OR '1'='1".to_owned())),
            "\\PC{0,20}".prop_map(Some),
        ];
        let typ = prop_oneof![
            Just(None),
            Just(Some("at+jwt".to_owned())),
            Just(Some("application/AT+JWT".to_owned())),
            Just(Some("JWT".to_owned())),
        ];
        let url = prop_oneof![
            Just(None),
            Just(Some("http://127.0.0.1:9/jwks.json".to_owned())),
            Just(Some("file:///etc/passwd".to_owned())),
        ];
        (
            alg,
            kid,
            typ,
            url.clone(),
            url,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(alg, kid, typ, jku, x5u, crit, alg_missing)| {
                let mut h = serde_json::Map::new();
                if !alg_missing {
                    h.insert("alg".into(), alg.into());
                }
                for (name, value) in [("kid", kid), ("typ", typ), ("jku", jku), ("x5u", x5u)] {
                    if let Some(v) = value {
                        h.insert(name.into(), v.into());
                    }
                }
                if crit {
                    h.insert("crit".into(), serde_json::json!(["exp"]));
                }
                serde_json::Value::Object(h)
            })
    }

    /// `header.payload.signature` with a correct HS256 signature under the
    /// verifier's own key, whatever the header says.
    fn signed_with_our_key(header: &serde_json::Value) -> String {
        let payload = serde_json::to_vec(&claims("prop")).unwrap();
        let message = format!(
            "{}.{}",
            b64url::encode(header.to_string()),
            b64url::encode(payload)
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &SECRET);
        let sig = aws_lc_rs::hmac::sign(&key, message.as_bytes());
        format!("{message}.{}", b64url::encode(sig.as_ref()))
    }

    proptest! {
        /// A token is accepted only when its header names exactly our
        /// algorithm and key (or no key, there being one), an access-token
        /// type and no critical extension; `jku`, `x5u` and the `kid` are
        /// never followed anywhere (nothing listens on the URLs; the file
        /// paths are just strings that match no key).
        #[test]
        fn only_our_algorithm_and_key_are_accepted_whatever_the_header_says(header in jose_header()) {
            let v = verifier(&hs256());
            let token = signed_with_our_key(&header);
            let kid_ok = header.get("kid").is_none() || header["kid"] == "hs-1";
            let typ_ok = header.get("typ").is_some_and(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")));
            let acceptable = header.get("alg").and_then(|a| a.as_str()) == Some("HS256")
                && kid_ok
                && typ_ok
                && header.get("crit").is_none();
            match v.verify(&token) {
                Ok(c) => {
                    prop_assert!(acceptable, "accepted {}", header);
                    prop_assert_eq!(c.jti.as_deref(), Some("prop"));
                }
                Err(AuthError::InvalidToken(_)) => prop_assert!(!acceptable, "refused {}", header),
                Err(e) => prop_assert!(false, "{:?} for {}", e, header),
            }
        }

        /// Arbitrary text as a token: always `invalid_token`, never a panic.
        #[test]
        fn any_text_is_an_invalid_token(token in "\\PC{0,400}", dots in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 0..5)) {
            let v = verifier(&hs256());
            for candidate in [token, dots.join(".")] {
                prop_assert!(matches!(v.verify(&candidate), Err(AuthError::InvalidToken(_))));
            }
        }
    }

    #[test]
    fn the_jose_header_cases_include_the_attacks_by_name() {
        // The strategy above draws these; this pins that a plain `none`
        // token and a path-like kid are refused for the right reasons.
        let v = verifier(&hs256());
        let none = signed_with_our_key(&serde_json::json!({"alg": "none", "typ": "at+jwt"}));
        assert_eq!(
            v.verify(&none).unwrap_err(),
            AuthError::InvalidToken(InvalidToken::DisallowedAlgorithm)
        );
        let path = signed_with_our_key(
            &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": "../../../../dev/zero"}),
        );
        assert_eq!(
            v.verify(&path).unwrap_err(),
            AuthError::InvalidToken(InvalidToken::UnknownKey)
        );
    }
}
