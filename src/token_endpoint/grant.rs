//! The grant of a token request as a value, and what a client may ask for:
//! pure decisions, no I/O. [`TokenEndpoint`](super::TokenEndpoint) reads
//! the form, authenticates the client, then asks these two and does the
//! I/O the grant needs.

use super::{TokenError, form::Form};
use crate::{identifier::is_absolute_uri, issuer::Requested};

/// A `grant_type` the endpoint supports (RFC 6749 §4.3, §4.4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantType {
    AuthorizationCode,
    RefreshToken,
    Password,
    ClientCredentials,
}

impl GrantType {
    /// The registered name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant a `grant_type` value names; anything else is
    /// `unsupported_grant_type`.
    pub(crate) fn parse(value: &str) -> Result<Self, TokenError> {
        match value {
            "authorization_code" => Ok(Self::AuthorizationCode),
            "refresh_token" => Ok(Self::RefreshToken),
            "password" => Ok(Self::Password),
            "client_credentials" => Ok(Self::ClientCredentials),
            _ => Err(TokenError::UnsupportedGrantType),
        }
    }
}

/// What the client is allowed, as far as grants go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientGrants {
    /// It authenticated with a secret.
    pub(crate) confidential: bool,
    /// It may use the password grant.
    pub(crate) password: bool,
    /// It may use the client_credentials grant.
    pub(crate) client_credentials: bool,
    /// It has redirect URIs registered: it may use `/authorize`.
    pub(crate) authorization_code: bool,
}

/// What the endpoint offers beyond refresh and client_credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndpointGrants {
    /// A password verifier is configured.
    pub(crate) password: bool,
    /// `/authorize` is configured.
    pub(crate) authorization_code: bool,
}

/// Whether `client` may use `grant` on an endpoint offering `endpoint`.
pub(crate) fn permit(
    grant: GrantType,
    client: ClientGrants,
    endpoint: EndpointGrants,
) -> Result<(), TokenError> {
    let password_enabled = endpoint.password;
    match grant {
        GrantType::RefreshToken => Ok(()),
        // Without `/authorize` no code exists to redeem.
        GrantType::AuthorizationCode if !endpoint.authorization_code => {
            Err(TokenError::UnsupportedGrantType)
        }
        GrantType::AuthorizationCode if !client.authorization_code => Err(
            TokenError::UnauthorizedClient("The client has no redirect URI registered"),
        ),
        GrantType::AuthorizationCode => Ok(()),
        // Without a verifier the endpoint does not support the grant at
        // all, whoever asks.
        GrantType::Password if !password_enabled => Err(TokenError::UnsupportedGrantType),
        GrantType::Password if !client.password => Err(TokenError::UnauthorizedClient(
            "The client may not use the password grant",
        )),
        GrantType::Password => Ok(()),
        // RFC 6749 §4.4: only confidential clients.
        GrantType::ClientCredentials if !(client.confidential && client.client_credentials) => Err(
            TokenError::UnauthorizedClient("The client may not use the client_credentials grant"),
        ),
        GrantType::ClientCredentials => Ok(()),
    }
}

/// A token request's grant with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant<'a> {
    AuthorizationCode {
        code: &'a str,
        redirect_uri: Option<&'a str>,
        code_verifier: &'a str,
        resources: Vec<&'a str>,
    },
    RefreshToken {
        /// `None` when the form has none: a browser client's comes in its
        /// cookie.
        refresh_token: Option<&'a str>,
        scope: Option<&'a str>,
        resources: Vec<&'a str>,
    },
    Password {
        username: &'a str,
        password: &'a str,
        scope: Option<&'a str>,
        resources: Vec<&'a str>,
    },
    ClientCredentials {
        scope: Option<&'a str>,
        resources: Vec<&'a str>,
    },
}

impl<'a> Grant<'a> {
    /// What the request asks for, whatever the grant: its scope, its
    /// resources, and the DPoP key it proved.
    pub(crate) fn requested<'g>(&'g self, dpop_jkt: Option<&'g str>) -> Requested<'g> {
        let (scope, resources) = match self {
            // The scope is the one the user granted at `/authorize`.
            Self::AuthorizationCode { resources, .. } => (None, resources.as_slice()),
            Self::RefreshToken {
                scope, resources, ..
            }
            | Self::Password {
                scope, resources, ..
            }
            | Self::ClientCredentials { scope, resources } => (*scope, resources.as_slice()),
        };
        Requested {
            scope,
            resources,
            dpop_jkt,
        }
    }

    /// The parameters of `grant` from the form; a missing one is
    /// `invalid_request` naming it (but the refresh token, which may come
    /// from a cookie).
    pub(crate) fn read(grant: GrantType, form: &'a Form) -> Result<Self, TokenError> {
        let scope = form.get("scope");
        let resources = resources(form)?;
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: form.require("code", "The code parameter is missing")?,
                redirect_uri: form.get("redirect_uri"),
                // PKCE is required of every client (OAuth 2.1 §4.1.1).
                code_verifier: code_verifier(form)?,
                resources,
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: form.get("refresh_token"),
                scope,
                resources,
            },
            GrantType::Password => Self::Password {
                username: username(form)?,
                password: form.require("password", "The password parameter is missing")?,
                scope,
                resources,
            },
            GrantType::ClientCredentials => Self::ClientCredentials { scope, resources },
        })
    }
}

/// The longest username accepted, in bytes.
pub(crate) const MAX_USERNAME: usize = 256;

/// The `username` of the password grant: present, and at most
/// [`MAX_USERNAME`] bytes.
fn username(form: &Form) -> Result<&str, TokenError> {
    let username = form.require("username", "The username parameter is missing")?;
    if username.len() > MAX_USERNAME {
        return Err(TokenError::InvalidRequest("The username is too long"));
    }
    Ok(username)
}

/// The PKCE `code_verifier`: present and of RFC 7636 §4.1's grammar.
fn code_verifier(form: &Form) -> Result<&str, TokenError> {
    let verifier = form.require("code_verifier", "The code_verifier parameter is missing")?;
    if !crate::secret::is_code_verifier(verifier) {
        return Err(TokenError::InvalidRequest(
            "The code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    Ok(verifier)
}

/// At most this many `resource` parameters in one request.
const MAX_RESOURCES: usize = 8;

/// The `resource` parameters (RFC 8707 §2): each an absolute URI without
/// a fragment, else `invalid_target`. Whether the client may name them is
/// the issuer's check.
fn resources(form: &Form) -> Result<Vec<&str>, TokenError> {
    let resources: Vec<&str> = form.get_all("resource").collect();
    if resources.len() > MAX_RESOURCES {
        return Err(TokenError::InvalidTarget(
            "Too many resources are requested",
        ));
    }
    if resources.iter().any(|r| !is_absolute_uri(r)) {
        return Err(TokenError::InvalidTarget(
            "A resource must be an absolute URI without a fragment",
        ));
    }
    Ok(resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::Password,
        GrantType::ClientCredentials,
    ];

    fn clients() -> impl Iterator<Item = ClientGrants> {
        (0..16u8).map(|bits| ClientGrants {
            confidential: bits & 1 != 0,
            password: bits & 2 != 0,
            client_credentials: bits & 4 != 0,
            authorization_code: bits & 8 != 0,
        })
    }

    #[test]
    fn grant_types_parse_exactly() {
        assert_eq!(
            GrantType::parse("refresh_token").unwrap(),
            GrantType::RefreshToken
        );
        assert_eq!(GrantType::parse("password").unwrap(), GrantType::Password);
        assert_eq!(
            GrantType::parse("client_credentials").unwrap(),
            GrantType::ClientCredentials
        );
        assert_eq!(
            GrantType::parse("authorization_code").unwrap(),
            GrantType::AuthorizationCode
        );
        for other in [
            "Authorization_code",
            "Password",
            "refresh_token ",
            "",
            "implicit",
        ] {
            assert_eq!(
                GrantType::parse(other).unwrap_err().code(),
                "unsupported_grant_type"
            );
        }
    }

    /// Every grant, client and endpoint setting: the permission is exactly
    /// the rule written out.
    #[test]
    fn permission_is_exhaustively_the_rule() {
        for grant in ALL {
            for client in clients() {
                for bits in 0..4u8 {
                    let (password_enabled, code_enabled) = (bits & 1 != 0, bits & 2 != 0);
                    let endpoint = EndpointGrants {
                        password: password_enabled,
                        authorization_code: code_enabled,
                    };
                    let got = permit(grant, client, endpoint).map_err(|e| e.code());
                    let want = match grant {
                        GrantType::RefreshToken => Ok(()),
                        GrantType::AuthorizationCode if !code_enabled => {
                            Err("unsupported_grant_type")
                        }
                        GrantType::AuthorizationCode if client.authorization_code => Ok(()),
                        GrantType::Password if !password_enabled => Err("unsupported_grant_type"),
                        GrantType::Password if client.password => Ok(()),
                        GrantType::ClientCredentials
                            if client.confidential && client.client_credentials =>
                        {
                            Ok(())
                        }
                        _ => Err("unauthorized_client"),
                    };
                    assert_eq!(got, want, "{grant:?} {client:?} {endpoint:?}");
                }
            }
        }
    }

    #[test]
    fn a_public_client_never_gets_client_credentials() {
        let public = ClientGrants {
            confidential: false,
            password: true,
            client_credentials: true,
            authorization_code: true,
        };
        let endpoint = EndpointGrants {
            password: true,
            authorization_code: true,
        };
        assert!(permit(GrantType::ClientCredentials, public, endpoint).is_err());
    }

    #[test]
    fn a_code_needs_its_verifier() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let body =
            format!("code=c&redirect_uri=https%3A%2F%2Fa.example%2Fcb&code_verifier={verifier}");
        let form = Form::parse(body.as_bytes()).unwrap();
        assert_eq!(
            Grant::read(GrantType::AuthorizationCode, &form).unwrap(),
            Grant::AuthorizationCode {
                code: "c",
                redirect_uri: Some("https://a.example/cb"),
                code_verifier: verifier,
                resources: vec![],
            }
        );
        for (body, why) in [
            (
                "code_verifier=".to_owned() + verifier,
                "The code parameter is missing",
            ),
            (
                "code=c".to_owned(),
                "The code_verifier parameter is missing",
            ),
            (
                "code=c&code_verifier=short".to_owned(),
                "The code_verifier must be 43 to 128 unreserved characters",
            ),
            (
                format!("code=c&code_verifier={verifier}%2B"),
                "The code_verifier must be 43 to 128 unreserved characters",
            ),
            (
                format!("code=c&code_verifier={}", "a".repeat(129)),
                "The code_verifier must be 43 to 128 unreserved characters",
            ),
        ] {
            let form = Form::parse(body.as_bytes()).unwrap();
            let err = Grant::read(GrantType::AuthorizationCode, &form).unwrap_err();
            assert_eq!(
                (err.code(), err.description()),
                ("invalid_request", why),
                "{body}"
            );
        }
    }

    #[test]
    fn parameters_are_read_per_grant() {
        let form = Form::parse(b"refresh_token=r&scope=a+b&username=u&password=p").unwrap();
        assert_eq!(
            Grant::read(GrantType::RefreshToken, &form).unwrap(),
            Grant::RefreshToken {
                refresh_token: Some("r"),
                scope: Some("a b"),
                resources: vec![],
            }
        );
        assert_eq!(
            Grant::read(GrantType::Password, &form).unwrap(),
            Grant::Password {
                username: "u",
                password: "p",
                scope: Some("a b"),
                resources: vec![],
            }
        );
        assert_eq!(
            Grant::read(GrantType::ClientCredentials, &form).unwrap(),
            Grant::ClientCredentials {
                scope: Some("a b"),
                resources: vec![],
            }
        );
        let empty = Form::parse(b"scope=").unwrap();
        assert_eq!(
            Grant::read(GrantType::Password, &empty)
                .unwrap_err()
                .description(),
            "The username parameter is missing"
        );
        assert_eq!(
            Grant::read(GrantType::RefreshToken, &empty).unwrap(),
            Grant::RefreshToken {
                refresh_token: None,
                scope: None,
                resources: vec![],
            }
        );
        assert_eq!(
            Grant::read(GrantType::ClientCredentials, &empty).unwrap(),
            Grant::ClientCredentials {
                scope: None,
                resources: vec![],
            }
        );
    }

    #[test]
    fn resources_are_repeatable_absolute_uris_without_fragment() {
        let form =
            Form::parse(b"resource=https%3A%2F%2Fa.example&resource=urn%3Aexample%3Ab").unwrap();
        assert_eq!(
            Grant::read(GrantType::ClientCredentials, &form).unwrap(),
            Grant::ClientCredentials {
                scope: None,
                resources: vec!["https://a.example", "urn:example:b"],
            }
        );
        for bad in [
            &b"resource=https%3A%2F%2Fa.example%23frag"[..],
            b"resource=%2Frelative",
            b"resource=a.example",
            b"resource=https%3A%2F%2Fa.example&resource=nope",
        ] {
            let form = Form::parse(bad).unwrap();
            assert_eq!(
                Grant::read(GrantType::ClientCredentials, &form)
                    .unwrap_err()
                    .code(),
                "invalid_target",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = (0..9)
            .map(|i| format!("resource=urn%3Ax%3A{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let form = Form::parse(many.as_bytes()).unwrap();
        assert!(Grant::read(GrantType::ClientCredentials, &form).is_err());
        // Any other parameter is still refused when repeated (RFC 6749 §3.2).
        assert_eq!(
            Form::parse(b"scope=a&scope=b").unwrap_err().code(),
            "invalid_request"
        );
    }
}
