//! Server nonces (RFC 9449 §8, §9), stateless: a nonce is a time step and
//! an HMAC of it under a secret every instance shares, so any instance
//! accepts any instance's nonce with no shared state, and a proof made in
//! advance by a thief who stole the key is useless once its step has
//! passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;

use crate::b64url;

/// Bytes of HMAC-SHA-256 kept in a nonce: 128 bits.
const TAG_LEN: usize = 16;

/// Issues and checks server nonces. A nonce is valid during its own time
/// step and the steps on either side (clock skew between instances and a
/// client's round trip), so for between one and two steps after issue and
/// never more than three.
#[derive(Clone)]
pub struct Nonces {
    key: hmac::Key,
    step: Duration,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The secret is too short, or the step zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceConfigError {
    /// Fewer than 32 bytes of secret.
    #[error("the nonce secret must be at least 32 bytes")]
    ShortSecret,
    /// A zero time step.
    #[error("the nonce time step must be at least a second")]
    ZeroStep,
}

impl Nonces {
    /// Nonces under `secret` (32 bytes or more, the same on every
    /// instance) changing every `step` (e.g. a minute).
    pub fn new(secret: &[u8], step: Duration) -> Result<Self, NonceConfigError> {
        if secret.len() < 32 {
            return Err(NonceConfigError::ShortSecret);
        }
        if step.as_secs() == 0 {
            return Err(NonceConfigError::ZeroStep);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            step,
        })
    }

    fn step_of(&self, now: SystemTime) -> u64 {
        now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / self.step.as_secs()
    }

    fn nonce_for(&self, step: u64) -> String {
        let mut bytes = [0u8; 8 + TAG_LEN];
        bytes[..8].copy_from_slice(&step.to_be_bytes());
        let tag = hmac::sign(&self.key, &step.to_be_bytes());
        bytes[8..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        b64url::encode(bytes)
    }

    /// The nonce to hand out now.
    pub fn issue(&self, now: SystemTime) -> String {
        self.nonce_for(self.step_of(now))
    }

    /// Whether `nonce` is one of ours, of this step or the next or last.
    pub fn check(&self, nonce: &str, now: SystemTime) -> bool {
        let mut buf = [std::mem::MaybeUninit::uninit(); 8 + TAG_LEN];
        let Some(bytes) = b64url::decode_into(nonce, &mut buf) else {
            return false;
        };
        let Ok(raw): Result<[u8; 8 + TAG_LEN], _> = bytes.try_into() else {
            return false;
        };
        let step = u64::from_be_bytes(raw[..8].try_into().expect("eight bytes"));
        let current = self.step_of(now);
        if step.abs_diff(current) > 1 {
            return false;
        }
        let tag = hmac::sign(&self.key, &step.to_be_bytes());
        // Constant time: a nonce is not a secret, but a forger learns
        // nothing about the tag either.
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..TAG_LEN], &raw[8..])
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_for_its_step_and_the_steps_beside_it() {
        let n = Nonces::new(&[7; 32], Duration::from_secs(60)).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(60 * 1000);
        let nonce = n.issue(t0);
        assert!(n.check(&nonce, t0));
        assert!(n.check(&nonce, t0 + Duration::from_secs(119)));
        assert!(n.check(&nonce, t0 - Duration::from_secs(1)));
        assert!(!n.check(&nonce, t0 + Duration::from_secs(120)));
        assert!(!n.check(&nonce, t0 - Duration::from_secs(61)));
        // Another instance with the same secret agrees; another secret not.
        let same = Nonces::new(&[7; 32], Duration::from_secs(60)).unwrap();
        assert!(same.check(&nonce, t0));
        let other = Nonces::new(&[8; 32], Duration::from_secs(60)).unwrap();
        assert!(!other.check(&nonce, t0));
        // A forged step with the old tag, garbage, padding.
        let mut forged = [0u8; 24];
        forged[..8].copy_from_slice(&(1001u64).to_be_bytes());
        assert!(!n.check(&b64url::encode(forged), t0));
        assert!(!n.check("not a nonce", t0));
        assert!(!n.check(&format!("{nonce}="), t0));
        assert!(!n.check("", t0));
        assert_eq!(
            Nonces::new(&[1; 31], Duration::from_secs(60)).unwrap_err(),
            NonceConfigError::ShortSecret
        );
    }
}
