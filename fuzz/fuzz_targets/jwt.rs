#![no_main]
//! The gate's token verification on arbitrary text. The input is also
//! taken as a JOSE header (and payload, after a NUL) of a token signed
//! with the gate's own key, so that header handling is reached past the
//! signature check. Only a token whose header names our algorithm and key
//! may ever pass.

use std::sync::LazyLock;

use tollgate::{
    AccessTokenLayer,
    keys::{Algorithm, KeySet, SigningKey},
};

const SECRET: [u8; 32] = [7; 32];

static GATE: LazyLock<AccessTokenLayer> = LazyLock::new(|| {
    AccessTokenLayer::builder()
        .keys(
            SigningKey::hmac("k1", Algorithm::HS256, &SECRET).unwrap(),
        )
        .issuer("https://issuer.example")
        .audience("api")
        .build()
        .unwrap()
});

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(GATE.verify(text).is_err());
    }
    let (header, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let message = format!("{}.{}", b64(header), b64(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &SECRET);
    let signature = aws_lc_rs::hmac::sign(&key, message.as_bytes());
    let token = format!("{message}.{}", b64(signature.as_ref()));
    if GATE.verify(&token).is_ok() {
        let h: serde_json::Value = serde_json::from_slice(header).unwrap();
        assert_eq!(h["alg"], "HS256");
        assert!(h.get("kid").is_none() || h["kid"] == "k1");
        assert!(h.get("crit").is_none());
    }
});
