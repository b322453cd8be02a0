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

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

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
    /// Issued at, seconds since the Unix epoch. Always present under
    /// [`TokenProfile::Rfc9068`] (every token tollgate issues has it);
    /// optional under [`TokenProfile::Oidc`] unless required. A token
    /// without it is taken as issued before any logout-everywhere of its
    /// subject, so such a logout still ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Unique token id: the key of per-token revocation. Always present
    /// under [`TokenProfile::Rfc9068`]; a token without it (an Auth0
    /// default) can be denied only by its session (`sid`) or its subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The OAuth client the token was issued to. Always present under
    /// [`TokenProfile::Rfc9068`]; under [`TokenProfile::Oidc`] read from
    /// `client_id`, else `azp` (Keycloak, Auth0, Entra ID v2), `cid`
    /// (Okta) or `appid` (Entra ID v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes (RFC 6749 §3.3). Under
    /// [`TokenProfile::Oidc`] also from `scp` (Entra ID, Okta: a string or
    /// an array) when `scope` is absent.
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

/// Every claim of a verified token, as the issuer wrote them: the gate
/// puts it into the request extensions beside [`AccessClaims`], so an
/// issuer's own claims (`realm_access.roles`, `email`, `tid`) are one
/// [`deserialize`](Self::deserialize) away, in axum ([`Claims`]), hyper and
/// tonic alike. Cloning is cheap (an `Arc`).
///
/// ```
/// use tollgate::claims::RawClaims;
///
/// #[derive(serde::Deserialize)]
/// struct Keycloak {
///     realm_access: Roles,
///     email: Option<String>,
/// }
/// #[derive(serde::Deserialize)]
/// struct Roles {
///     roles: Vec<String>,
/// }
///
/// // What the gate inserts for a verified token:
/// let raw = RawClaims::from_json(r#"{"sub":"alice","realm_access":{"roles":["admin"]}}"#);
/// let mine: Keycloak = raw.deserialize().unwrap();
/// assert_eq!(mine.realm_access.roles, ["admin"]);
/// assert_eq!(mine.email, None);
/// assert_eq!(raw.get("sub"), Some(serde_json::json!("alice")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawClaims(Arc<str>);

impl RawClaims {
    /// The claim set of a verified payload (the gate makes these; this is
    /// for tests of handlers).
    pub fn from_json(json: impl Into<Arc<str>>) -> Self {
        Self(json.into())
    }

    /// The payload's JSON, exactly as signed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The claims as `T`. Reads the payload again (a few hundred bytes);
    /// the signature was checked once, by the gate.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// One claim by name, as JSON; `None` when absent.
    pub fn get(&self, name: &str) -> Option<serde_json::Value> {
        let mut all: serde_json::Map<String, serde_json::Value> = self.deserialize().ok()?;
        all.remove(name)
    }
}

/// A handler's own view of the verified claims: with feature `axum`,
/// `Claims<T>` is an extractor that deserializes the token's claim set
/// ([`RawClaims`]) into `T`, beside [`AccessClaims`]. A token whose claims
/// do not fit `T` is refused with the gate's 401 `invalid_token`;
/// `Option<Claims<T>>` is `None` then, and on unauthenticated requests.
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use tollgate::claims::Claims;
///
/// #[derive(serde::Deserialize)]
/// struct Entra {
///     tid: String,
///     roles: Option<Vec<String>>,
/// }
///
/// async fn tenant(Claims(entra): Claims<Entra>) -> String {
///     entra.tid
/// }
/// # let _ = axum::Router::<()>::new().route("/tenant", axum::routing::get(tenant));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims<T>(pub T);

/// Which claims a token must carry and where they are read from: the
/// shape of the access tokens an issuer mints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenProfile {
    /// RFC 9068 JWT access tokens, as tollgate issues them: `typ` `at+jwt`;
    /// `iss`, `sub`, `aud`, `exp`, `iat`, `jti` and `client_id` required.
    /// The strict default.
    #[default]
    Rfc9068,
    /// The access tokens of OpenID Connect providers (Keycloak, Auth0,
    /// Entra ID, Okta): `typ` `JWT`, `at+jwt` or absent; `iss`, `sub`,
    /// `aud` and `exp` required and nothing else unless asked for
    /// ([`AccessTokenLayerBuilder::require_claim`](crate::access_token::AccessTokenLayerBuilder::require_claim));
    /// `client_id` from `client_id`, `azp`, `cid` or `appid`; scopes from
    /// `scope`, or `scp` (a string or an array).
    Oidc,
}

impl TokenProfile {
    /// The claims this profile requires besides `iss`, `sub`, `aud` and
    /// `exp` (which every profile does).
    pub fn required_claims(self) -> &'static [Claim] {
        match self {
            Self::Rfc9068 => &[Claim::Iat, Claim::Jti, Claim::ClientId],
            Self::Oidc => &[],
        }
    }
}

/// A claim the gate checks, by name: what a refusal names (in the debug
/// log and the `error_description`), and what
/// [`require_claim`](crate::access_token::AccessTokenLayerBuilder::require_claim)
/// takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Claim {
    /// `iss`. Always required.
    Iss,
    /// `sub`. Always required, non-empty: the deny list keys by it.
    Sub,
    /// `aud`. Always required.
    Aud,
    /// `exp`. Always required.
    Exp,
    /// `iat`.
    Iat,
    /// `jti`.
    Jti,
    /// The client: `client_id` (or, under [`TokenProfile::Oidc`], `azp`,
    /// `cid`, `appid`).
    ClientId,
    /// `scope` (or, under [`TokenProfile::Oidc`], `scp`).
    Scope,
    /// `sid`.
    Sid,
    /// `auth_time`.
    AuthTime,
    /// `acr`.
    Acr,
}

impl Claim {
    /// The claim's name in a token.
    pub fn name(self) -> &'static str {
        match self {
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::Exp => "exp",
            Self::Iat => "iat",
            Self::Jti => "jti",
            Self::ClientId => "client_id",
            Self::Scope => "scope",
            Self::Sid => "sid",
            Self::AuthTime => "auth_time",
            Self::Acr => "acr",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// What a token's claims must look like: its issuer's profile and the
/// claims required on top of `iss`, `sub`, `aud`, `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimRules {
    pub(crate) profile: TokenProfile,
    required: u16,
}

impl ClaimRules {
    pub(crate) fn new(profile: TokenProfile, required: impl IntoIterator<Item = Claim>) -> Self {
        Self {
            profile,
            required: required.into_iter().fold(0, |bits, c| bits | c.bit()),
        }
    }

    fn requires(self, claim: Claim) -> bool {
        self.required & claim.bit() != 0
    }

    /// The claims required besides `iss`, `sub`, `aud`, `exp`, in
    /// declaration order.
    pub(crate) fn required(self) -> impl Iterator<Item = Claim> {
        [
            Claim::Iat,
            Claim::Jti,
            Claim::ClientId,
            Claim::Scope,
            Claim::Sid,
            Claim::AuthTime,
            Claim::Acr,
        ]
        .into_iter()
        .filter(move |c| self.requires(*c))
    }
}

/// Why a payload is not an acceptable claim set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// Not a JSON object of claims with the registered types.
    Malformed,
    /// A required claim is absent (or `null`, or an empty string).
    Missing(Claim),
    /// A claim is present with a value the gate cannot accept.
    Invalid(Claim),
}

/// A payload as it may come from any issuer: every claim optional, the
/// provider-specific spellings kept apart, so a profile decides which it
/// reads. A claim twice is an error (serde), so no two parsers disagree.
#[derive(Deserialize)]
struct WireClaims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "deserialize_some_audience")]
    aud: Option<Vec<String>>,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    jti: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    cid: Option<String>,
    appid: Option<String>,
    scope: Option<String>,
    scp: Option<OneOrMany>,
    sid: Option<String>,
    tenant: Option<String>,
    cnf: Option<Confirmation>,
    auth_time: Option<u64>,
    acr: Option<String>,
    amr: Option<Vec<String>>,
}

impl AccessClaims {
    /// Reads a verified token's payload under `rules`: the profile picks
    /// where each claim comes from, then every required claim must be
    /// there. Time (`exp` after `iat` among it), issuer and audience are
    /// the verifier's to check.
    pub(crate) fn from_payload(json: &str, rules: ClaimRules) -> Result<Self, ClaimError> {
        let wire: WireClaims = serde_json::from_str(json).map_err(|_| ClaimError::Malformed)?;
        let oidc = rules.profile == TokenProfile::Oidc;
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        let client_id = if oidc {
            [wire.client_id, wire.azp, wire.cid, wire.appid]
                .into_iter()
                .find_map(nonempty)
        } else {
            nonempty(wire.client_id)
        };
        let scope = match (wire.scope, wire.scp) {
            (Some(scope), _) => Some(scope),
            (None, Some(scp)) if oidc => Some(scp_to_scope(scp)?),
            (None, _) => None,
        };
        let claims = Self {
            iss: wire.iss.ok_or(ClaimError::Missing(Claim::Iss))?,
            sub: nonempty(wire.sub).ok_or(ClaimError::Missing(Claim::Sub))?,
            aud: wire.aud.ok_or(ClaimError::Missing(Claim::Aud))?,
            exp: wire.exp.ok_or(ClaimError::Missing(Claim::Exp))?,
            iat: wire.iat,
            nbf: wire.nbf,
            jti: nonempty(wire.jti),
            client_id,
            scope,
            sid: nonempty(wire.sid),
            tenant: wire.tenant,
            cnf: wire.cnf,
            auth_time: wire.auth_time,
            acr: wire.acr,
            amr: wire.amr,
        };
        let present = |c: Claim| match c {
            Claim::Iat => claims.iat.is_some(),
            Claim::Jti => claims.jti.is_some(),
            Claim::ClientId => claims.client_id.is_some(),
            Claim::Scope => claims.scope.is_some(),
            Claim::Sid => claims.sid.is_some(),
            Claim::AuthTime => claims.auth_time.is_some(),
            Claim::Acr => claims.acr.is_some(),
            Claim::Iss | Claim::Sub | Claim::Aud | Claim::Exp => true,
        };
        if let Some(missing) = rules.required().find(|c| !present(*c)) {
            return Err(ClaimError::Missing(missing));
        }
        Ok(claims)
    }
}

/// `scp` as Entra ID (a space-separated string) or Okta (an array) send
/// it, as one `scope` string. Each array item must be one scope token, so
/// an item cannot smuggle in a second scope with a space.
fn scp_to_scope(scp: OneOrMany) -> Result<String, ClaimError> {
    match scp {
        OneOrMany::One(one) => Ok(one),
        OneOrMany::Many(many) => {
            if !many.iter().all(|s| crate::scope::is_scope_token(s)) {
                return Err(ClaimError::Invalid(Claim::Scope));
            }
            Ok(many.join(" "))
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn deserialize_some_audience<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    deserialize_audience(d).map(Some)
}

fn serialize_audience<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

pub(crate) fn deserialize_audience<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
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
            iat: Some(1),
            nbf: None,
            jti: Some("j".into()),
            client_id: Some("c".into()),
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

    fn read(json: &serde_json::Value, profile: TokenProfile) -> Result<AccessClaims, ClaimError> {
        let rules = ClaimRules::new(profile, profile.required_claims().iter().copied());
        AccessClaims::from_payload(&json.to_string(), rules)
    }

    fn ours() -> serde_json::Value {
        serde_json::to_value(claims(Some("read"), &["a"])).unwrap()
    }

    #[test]
    fn rfc9068_requires_its_claims_and_names_the_missing_one() {
        assert_eq!(
            read(&ours(), TokenProfile::Rfc9068).unwrap(),
            claims(Some("read"), &["a"])
        );
        for (name, claim) in [
            ("iss", Claim::Iss),
            ("sub", Claim::Sub),
            ("aud", Claim::Aud),
            ("exp", Claim::Exp),
            ("iat", Claim::Iat),
            ("jti", Claim::Jti),
            ("client_id", Claim::ClientId),
        ] {
            let mut v = ours();
            v.as_object_mut().unwrap().remove(name);
            assert_eq!(
                read(&v, TokenProfile::Rfc9068),
                Err(ClaimError::Missing(claim))
            );
            // `null` and an empty id are no better than absent.
            if claim != Claim::Aud {
                v[name] = serde_json::Value::Null;
                assert_eq!(
                    read(&v, TokenProfile::Rfc9068),
                    Err(ClaimError::Missing(claim))
                );
            }
            if matches!(claim, Claim::Sub | Claim::Jti | Claim::ClientId) {
                v[name] = "".into();
                assert_eq!(
                    read(&v, TokenProfile::Rfc9068),
                    Err(ClaimError::Missing(claim))
                );
            }
        }
        // Another issuer's spellings are not read for ours.
        let mut v = ours();
        let o = v.as_object_mut().unwrap();
        o.remove("client_id");
        o.remove("scope");
        o.insert("azp".into(), "web".into());
        o.insert("scp".into(), "read".into());
        assert_eq!(
            read(&v, TokenProfile::Rfc9068),
            Err(ClaimError::Missing(Claim::ClientId))
        );
    }

    #[test]
    fn oidc_reads_the_providers_spellings_and_requires_only_the_core() {
        // Keycloak: azp, no client_id; Auth0: no jti; Okta: cid, scp array;
        // Entra ID: appid (v1) or azp (v2), scp string.
        let core = serde_json::json!({"iss": "i", "sub": "u", "aud": "a", "exp": 10});
        let c = read(&core, TokenProfile::Oidc).unwrap();
        assert_eq!(
            (c.jti, c.iat, c.client_id, c.scope),
            (None, None, None, None)
        );
        for (extra, client) in [
            (serde_json::json!({"azp": "kc"}), "kc"),
            (serde_json::json!({"cid": "okta"}), "okta"),
            (serde_json::json!({"appid": "entra1"}), "entra1"),
            (
                serde_json::json!({"client_id": "mine", "azp": "other"}),
                "mine",
            ),
        ] {
            let mut v = core.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            assert_eq!(
                read(&v, TokenProfile::Oidc).unwrap().client_id.as_deref(),
                Some(client)
            );
        }
        for (scp, scope) in [
            (serde_json::json!("a b"), "a b"),
            (serde_json::json!(["a", "b"]), "a b"),
        ] {
            let mut v = core.clone();
            v["scp"] = scp;
            assert_eq!(
                read(&v, TokenProfile::Oidc).unwrap().scope.as_deref(),
                Some(scope)
            );
        }
        let mut v = core.clone();
        v["scp"] = serde_json::json!(["a b"]);
        assert_eq!(
            read(&v, TokenProfile::Oidc),
            Err(ClaimError::Invalid(Claim::Scope))
        );
        let mut v = core.clone();
        v.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            read(&v, TokenProfile::Oidc),
            Err(ClaimError::Missing(Claim::Exp))
        );

        // Required on request.
        let rules = ClaimRules::new(TokenProfile::Oidc, [Claim::Sid, Claim::Jti]);
        assert_eq!(
            AccessClaims::from_payload(&core.to_string(), rules),
            Err(ClaimError::Missing(Claim::Jti))
        );
    }

    #[test]
    fn wrong_types_and_duplicates_are_refused() {
        for bad in [
            r#"{"iss":"i","sub":"u","aud":"a","exp":"10"}"#,
            r#"{"iss":"i","sub":"u","aud":"a","exp":10.5}"#,
            r#"{"iss":"i","sub":"u","aud":7,"exp":10}"#,
            r#"{"iss":"i","sub":"u","sub":"v","aud":"a","exp":10}"#,
            r#"["iss"]"#,
        ] {
            let rules = ClaimRules::new(TokenProfile::Oidc, []);
            assert_eq!(
                AccessClaims::from_payload(bad, rules),
                Err(ClaimError::Malformed),
                "{bad}"
            );
        }
    }
}
