//! The access-token claim set (RFC 9068).
//!
//! Every access token tollgate issues or accepts carries these claims. The
//! gate puts the verified [`AccessClaims`] into the request's extensions, so
//! a handler reads who is calling without parsing the token again.
//!
//! ```
//! use tollgate::AccessClaims;
//!
//! let json = r#"{"iss":"https://auth.example","sub":"alice","aud":"api",
//!     "exp":2000000000,"iat":1700000000,"jti":"t-1","client_id":"web",
//!     "scope":"read write","sid":"fam-1"}"#;
//! let claims: AccessClaims = serde_json::from_str(json).unwrap();
//! assert!(claims.has_scope("write"));
//! assert!(!claims.has_scope("admin"));
//! assert_eq!(claims.aud, ["api"]);
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the `sub` of a token issued to a client for itself (the
/// client_credentials grant, no user) starts with: `client:` and the
/// `client_id`. RFC 9068 §5 asks that such a `sub` never be taken for a
/// user's: the issuer refuses to start a session for a user id with this
/// prefix, so a client's tokens and a user's never share a subject (nor
/// its logout-everywhere watermark).
pub const CLIENT_SUBJECT_PREFIX: &str = "client:";

/// The claims of an RFC 9068 JWT access token, plus `sid` (the refresh-token
/// family, i.e. the session the token belongs to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or for `client_credentials` the client itself as
    /// [`CLIENT_SUBJECT_PREFIX`] + its `client_id`.
    pub sub: String,
    /// Audience: one or several resource identifiers. On the wire a single
    /// audience is a string, several are an array (RFC 7519 §4.1.3).
    #[serde(
        serialize_with = "serialize_audience",
        deserialize_with = "deserialize_audience"
    )]
    pub aud: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Unique token id: the key of per-token revocation.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Session id: the refresh-token family. Revoking it kills every access
    /// token of that session at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The tenant of a multi-tenant deployment (the session's, from
    /// [`RequestContext::tenant`](crate::issuer::RequestContext)): the deny list
    /// keys a subject within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Confirmation (RFC 7800): the key the token is bound to by DPoP
    /// (RFC 9449 §6). A bound token is accepted only with a proof by that
    /// key, never as a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// When the user authenticated, seconds since the Unix epoch (RFC 9068
    /// §2.2.1): the session's sign-in, the same in every token of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The authentication context class the sign-in reached (RFC 9068
    /// §2.2.1, RFC 9470).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods used (RFC 8176 values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

/// The `cnf` claim of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the key, base64url.
    pub jkt: String,
}

impl AccessClaims {
    /// The granted scopes, in token order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        crate::scope::tokens(self.scope.as_deref().unwrap_or_default())
    }

    /// The subject the deny list keys this token by: `sub` within its
    /// tenant.
    pub fn subject(&self) -> crate::revocation::Subject<'_> {
        crate::revocation::Subject::new(self.tenant.as_deref(), &self.sub)
    }

    /// Whether the token speaks for a client itself (client_credentials),
    /// not for a user.
    pub fn is_client_subject(&self) -> bool {
        self.sub.starts_with(CLIENT_SUBJECT_PREFIX)
    }

    /// Whether the token grants `scope` (an exact, case-sensitive match, as
    /// RFC 6749 §3.3 defines scope tokens).
    pub fn has_scope(&self, scope: &str) -> bool {
        crate::scope::contains(self.scope.as_deref().unwrap_or_default(), scope)
    }
}

fn serialize_audience<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

fn deserialize_audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: Option<&str>, aud: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            sub: "alice".into(),
            aud: aud.iter().map(|s| s.to_string()).collect(),
            exp: 10,
            iat: 1,
            nbf: None,
            jti: "j".into(),
            client_id: "c".into(),
            scope: scope.map(str::to_owned),
            sid: None,
            tenant: None,
            cnf: None,
            auth_time: None,
            acr: None,
            amr: None,
        }
    }

    #[test]
    fn scope_matching_is_exact_and_ignores_extra_spaces() {
        let c = claims(Some("read  write"), &["a"]);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write"]);
        assert!(c.has_scope("read"));
        assert!(!c.has_scope("rea"));
        assert!(!c.has_scope("Read"));
        assert!(!c.has_scope(""));
        assert!(!claims(None, &["a"]).has_scope("read"));
    }

    #[test]
    fn audience_round_trips_as_string_or_array() {
        let one = serde_json::to_value(claims(None, &["api"])).unwrap();
        assert_eq!(one["aud"], "api");
        let many = serde_json::to_value(claims(None, &["a", "b"])).unwrap();
        assert_eq!(many["aud"], serde_json::json!(["a", "b"]));
        let back: AccessClaims = serde_json::from_value(many).unwrap();
        assert_eq!(back.aud, ["a", "b"]);
    }

    #[test]
    fn required_claims_are_required() {
        let mut v = serde_json::to_value(claims(None, &["a"])).unwrap();
        v.as_object_mut().unwrap().remove("jti");
        assert!(serde_json::from_value::<AccessClaims>(v).is_err());
    }
}
