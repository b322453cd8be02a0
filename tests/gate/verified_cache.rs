//! The cache of verified asymmetric tokens: what a hit still checks (the
//! token's times, the deny list, the DPoP binding, scopes), and what is
//! never a hit (another key set, a token one character off, an HMAC
//! token, which is never kept).

use std::time::Duration;

use http::StatusCode;
use tollgate::{
    AccessTokenLayer, AuthError, KeySet, Keys, RevocationCache,
    access_token::InvalidToken,
    claims::Confirmation,
    keys::{Algorithm, SigningKey},
    time::ManualClock,
};

use crate::common::{self, ES256_PEM, bearer};

fn es256(kid: &str) -> SigningKey {
    SigningKey::from_pem(kid, Algorithm::ES256, ES256_PEM).unwrap()
}

/// Another P-256 key, freshly made.
fn another_es256(kid: &str) -> SigningKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref()));
    SigningKey::from_pem(kid, Algorithm::ES256, pem.as_bytes()).unwrap()
}

fn gate(keys: &Keys, revocations: &RevocationCache) -> AccessTokenLayer {
    AccessTokenLayer::builder()
        .keys(keys.clone())
        .issuer(common::ISS)
        .audience(common::AUD)
        .revocations(revocations.clone())
        .build()
        .unwrap()
}

fn set(key: &SigningKey) -> KeySet {
    KeySet::builder().signing_key(key.clone()).build().unwrap()
}

#[test]
fn a_hit_still_checks_the_clock_and_the_deny_list() {
    let clock = ManualClock::at(std::time::SystemTime::now());
    let revocations = RevocationCache::builder().clock(clock.clone()).build();
    let keys = Keys::new(set(&es256("ec-1")));
    let v = gate(&keys, &revocations).verifier().clone();
    let token = es256("ec-1").sign(&common::claims("cached-1")).unwrap();
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.cached_tokens(), 1);

    // Revoked while remembered: refused at once.
    revocations.revoke_token(
        "cached-1",
        std::time::SystemTime::now() + Duration::from_secs(300),
    );
    assert!(matches!(v.verify(&token), Err(AuthError::Revoked(_))));

    // Past `exp` (5 min) and the leeway (30 s): refused, remembered or not.
    let other = es256("ec-1").sign(&common::claims("cached-2")).unwrap();
    assert!(v.verify(&other).is_ok());
    assert!(v.verify(&other).is_ok());
    assert_eq!(v.cached_tokens(), 2);
    clock.advance(Duration::from_secs(300 + 31));
    assert_eq!(
        v.verify(&other).unwrap_err(),
        AuthError::InvalidToken(InvalidToken::Expired)
    );
}

#[test]
fn another_key_set_is_never_a_hit() {
    let revocations = RevocationCache::default();
    let keys = Keys::new(set(&es256("ec-1")));
    let v = gate(&keys, &revocations).verifier().clone();
    let token = es256("ec-1").sign(&common::claims("k-1")).unwrap();
    // Kept from its second verification on.
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.cached_tokens(), 0);
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.cached_tokens(), 1);

    // The same `kid`, another key: the remembered verdict is not used,
    // the signature is checked, and fails.
    keys.rotate(set(&another_es256("ec-1")));
    assert_eq!(
        v.verify(&token).unwrap_err(),
        AuthError::InvalidToken(InvalidToken::BadSignature)
    );
    assert_eq!(v.cached_tokens(), 0);

    // The old key back, in a set built anew: verified again, and kept.
    keys.rotate(set(&es256("ec-1")));
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.cached_tokens(), 1);
}

#[test]
fn a_token_one_character_off_is_not_a_hit() {
    let revocations = RevocationCache::default();
    let keys = Keys::new(set(&es256("ec-1")));
    let v = gate(&keys, &revocations).verifier().clone();
    let token = es256("ec-1").sign(&common::claims("bits")).unwrap();
    assert!(v.verify(&token).is_ok());
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    // One character of the payload, of the signature, one more at the end.
    let flip = |s: &str, i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    for forged in [
        format!("{header}.{}.{signature}", flip(payload, payload.len() / 2)),
        format!("{header}.{payload}.{}", flip(signature, 3)),
        format!("{token}A"),
    ] {
        assert!(v.verify(&forged).is_err(), "{forged}");
    }
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.cached_tokens(), 1);
}

#[test]
fn hmac_tokens_are_not_kept_and_the_cache_can_be_off() {
    let revocations = RevocationCache::default();
    let hs = Keys::new(common::keyset(&common::hs256()));
    let v = gate(&hs, &revocations).verifier().clone();
    assert!(v.verify(&common::token("hs")).is_ok());
    assert_eq!(v.cached_tokens(), 0);

    let off = AccessTokenLayer::builder()
        .keys(set(&es256("ec-1")))
        .issuer(common::ISS)
        .audience(common::AUD)
        .no_verified_token_cache()
        .build()
        .unwrap();
    let token = es256("ec-1").sign(&common::claims("off")).unwrap();
    assert!(off.verifier().verify(&token).is_ok());
    assert_eq!(off.verifier().cached_tokens(), 0);
}

/// Through the gate: a remembered token still needs its DPoP key and the
/// route's scope on every request.
#[tokio::test]
async fn a_hit_still_checks_binding_and_scope() {
    let keys = Keys::new(set(&es256("ec-1")));
    let layer = |scope: &str| {
        AccessTokenLayer::builder()
            .keys(keys.clone())
            .issuer(common::ISS)
            .audience(common::AUD)
            .require_scope(scope)
            .build()
            .unwrap()
    };
    let mut bound = common::claims("bound");
    bound.cnf = Some(Confirmation {
        jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
    });
    let bound = es256("ec-1").sign(&bound).unwrap();
    let plain = es256("ec-1").sign(&common::claims("plain")).unwrap();
    let orders = layer("orders:read");
    let admin = layer("admin");
    for _ in 0..2 {
        let res = crate::resource::challenge(orders.clone(), bearer(&bound)).await;
        assert_eq!(res.0, StatusCode::UNAUTHORIZED);
        let res = crate::resource::challenge(admin.clone(), bearer(&plain)).await;
        assert_eq!(res.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(orders.verifier().cached_tokens(), 1);
    assert_eq!(admin.verifier().cached_tokens(), 1);
}
