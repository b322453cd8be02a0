//! Secrets and random values: refresh tokens, client secrets and ids from
//! the operating system's CSPRNG, the SHA-256 the store keeps instead of
//! them, and the [`RefreshSecret`] a refresh token's successor is derived
//! with.
//!
//! ```
//! use tollgate::secret::{RefreshSecret, hash_token, random_token};
//!
//! let token = random_token(); // 256 bits, base64url
//! assert_eq!(token.len(), 43);
//! assert_eq!(hash_token(&token), hash_token(&token));
//!
//! let secret = RefreshSecret::new(&[7; 32]).unwrap();
//! assert_eq!(secret.child_of(&token), secret.child_of(&token));
//! assert_ne!(secret.child_of(&token), token);
//! ```

use std::fmt;

use crate::b64url;
use aws_lc_rs::{digest, hmac, rand};

/// Bytes of entropy in every refresh token, client secret and id we mint.
pub const TOKEN_BYTES: usize = 32;

/// `TOKEN_BYTES` random bytes from the operating system's CSPRNG, as
/// unpadded base64url.
pub fn random_token() -> String {
    random_string(TOKEN_BYTES)
}

/// `n` random bytes from the CSPRNG, as unpadded base64url.
pub fn random_string(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // aws-lc's RNG only fails if the OS cannot provide entropy at all, in
    // which case no token may be minted: aborting is the only safe answer.
    rand::fill(&mut buf).expect("the operating system's CSPRNG failed");
    b64url::encode(buf)
}

/// SHA-256 of a token: what the store keeps and looks up.
pub fn hash_token(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `verifier` is a PKCE `code_verifier` (RFC 7636 §4.1): 43 to 128
/// characters of `A-Z a-z 0-9 - . _ ~`.
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` is an S256 `code_challenge`: the unpadded base64url
/// of a SHA-256, 43 characters (RFC 7636 §4.2).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// RFC 7636 §4.6 for S256: whether `BASE64URL(SHA256(verifier))` equals
/// `challenge`, compared in constant time.
///
/// ```
/// // RFC 7636 Appendix B.
/// assert!(tollgate::secret::pkce_s256_matches(
///     "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
/// ));
/// ```
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed = b64url::encode(hash_token(verifier));
    is_code_verifier(verifier)
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            computed.as_bytes(),
            challenge.as_bytes(),
        )
        .is_ok()
}

/// The server secret from which a refresh token's successor is derived.
///
/// The child of a token is `HMAC-SHA256(secret, parent)`: the store never
/// keeps it in clear, yet a request that races the rotation (within the
/// grace period) can be handed the very same child, so the family never
/// forks. Keep it as secret as a signing key; rotating it only affects
/// grace replays in flight.
#[derive(Clone)]
pub struct RefreshSecret {
    key: hmac::Key,
}

impl fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshSecret(..)")
    }
}

/// A refresh secret shorter than 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a refresh secret must be at least 32 bytes")]
pub struct WeakRefreshSecret;

impl RefreshSecret {
    /// A secret from at least 32 bytes of key material.
    pub fn new(secret: &[u8]) -> Result<Self, WeakRefreshSecret> {
        if secret.len() < 32 {
            return Err(WeakRefreshSecret);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The successor of `parent`.
    pub fn child_of(&self, parent: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"tollgate/refresh-child/v1\0");
        ctx.update(parent.as_bytes());
        b64url::encode(ctx.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token();
        assert_eq!(
            base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(&a)
                .unwrap()
                .len(),
            32
        );
        assert_ne!(a, random_token());
    }

    #[test]
    fn children_are_deterministic_keyed_and_distinct_from_parents() {
        let s = RefreshSecret::new(&[1; 32]).unwrap();
        let c = s.child_of("parent");
        assert_eq!(c, s.child_of("parent"));
        assert_ne!(c, s.child_of("parent2"));
        assert_ne!(c, RefreshSecret::new(&[2; 32]).unwrap().child_of("parent"));
        assert_eq!(
            base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(&c)
                .unwrap()
                .len(),
            32
        );
        assert!(RefreshSecret::new(&[1; 31]).is_err());
        assert!(!format!("{s:?}").contains('1'));
    }

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(hash_token("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
