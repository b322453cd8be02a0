//! DPoP proofs for tests, made by jsonwebtoken (an independent JOSE
//! library: the gate checks proofs with its own code), with thumbprints
//! computed here from RFC 7638's text.

use aws_lc_rs::{
    digest,
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

/// A client's proof key.
pub struct ProofKey {
    pub alg: Algorithm,
    key: EncodingKey,
    pub jwk: Jwk,
}

impl ProofKey {
    pub fn es256() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Self::from_der(Algorithm::ES256, EncodingKey::from_ec_der(pkcs8.as_ref()))
    }

    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
        Self::from_der(Algorithm::EdDSA, EncodingKey::from_ed_der(pkcs8.as_ref()))
    }

    /// RS256 or PS256 with the test RSA key.
    pub fn rsa(alg: Algorithm) -> Self {
        Self::from_der(
            alg,
            EncodingKey::from_rsa_pem(include_bytes!("../keys/rsa.pem")).unwrap(),
        )
    }

    fn from_der(alg: Algorithm, key: EncodingKey) -> Self {
        let jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        Self { alg, key, jwk }
    }

    /// The public JWK as JSON.
    pub fn jwk_json(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap()
    }

    /// RFC 7638 SHA-256 thumbprint, written out from the RFC: the required
    /// members in lexicographic order, no whitespace.
    pub fn thumbprint(&self) -> String {
        let j = self.jwk_json();
        let canonical = match j["kty"].as_str().unwrap() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                j["crv"].as_str().unwrap(),
                j["x"].as_str().unwrap(),
                j["y"].as_str().unwrap()
            ),
            "OKP" => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                j["crv"].as_str().unwrap(),
                j["x"].as_str().unwrap()
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                j["e"].as_str().unwrap(),
                j["n"].as_str().unwrap()
            ),
            other => panic!("{other}"),
        };
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// A proof with these claims, the usual header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(claims, |_| {})
    }

    /// A proof whose header `edit` may change (add a member, drop the
    /// jwk, change `typ`).
    pub fn sign_with_header(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// A proof whose JOSE header is `header` exactly as given (members
    /// jsonwebtoken's `Header` cannot write), signed by this key.
    pub fn sign_raw_header(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).unwrap();
        format!("{message}.{sig}")
    }

    /// A proof for `htm` `htu` now, a fresh `jti`, `ath` of `token`.
    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        self.sign(&claims(htm, htu, token))
    }
}

/// Proof claims for `htm` `htu` now, a fresh `jti`, `ath` of `token`.
pub fn claims(htm: &str, htu: &str, token: Option<&str>) -> Value {
    let mut c = json!({
        "jti": random_jti(),
        "htm": htm,
        "htu": htu,
        "iat": jsonwebtoken::get_current_timestamp(),
    });
    if let Some(token) = token {
        c["ath"] = ath(token).into();
    }
    c
}

/// `ath`: base64url SHA-256 of the access token.
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

pub fn random_jti() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}
