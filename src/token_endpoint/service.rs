//! `/token` (RFC 6749 §3.2): after the shared pipeline (`pipeline.rs`),
//! the grant is read, permitted, DPoP-checked and run, and the tokens
//! answered (a browser client's refresh token in its cookie).

use std::{fmt, net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body::Body;
use http_body_util::Full;

use tracing::Instrument;

use super::{
    TokenEndpointBuilder, TokenError,
    cookie::{RefreshCookie, body_or_cookie},
    dpop::{self, DPOP_NONCE},
    grant::{self, ClientGrants, EndpointGrants, Grant, GrantType},
    metadata::MetadataEndpoint,
    password::CheckError,
    pipeline::{Answer, BoxError, Incoming, Inner, ok_json},
};
use crate::{
    dpop::DpopError,
    events::SecurityEvent,
    issuer::{CodeRedemption, Issuer, RequestContext, TokenResponse},
    telemetry,
};

/// The `/token` endpoint (RFC 6749 §3.2) as a Tower service: POST,
/// form-encoded, answering RFC 6749 §5 JSON. Mount it on a route of any
/// framework; it never answers 500.
#[derive(Clone)]
pub struct TokenEndpoint {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("issuer", &self.inner.issuer)
            .field("password_grant", &self.inner.passwords.is_some())
            .field("proxies", &self.inner.proxies)
            .field("max_body", &self.inner.max_body)
            .finish()
    }
}

impl TokenEndpoint {
    /// Starts a builder over an [`Issuer`].
    pub fn builder(issuer: Issuer) -> TokenEndpointBuilder {
        TokenEndpointBuilder::new(issuer)
    }

    /// Reads the request, authenticates the client, checks what it may
    /// do, and runs the grant.
    async fn handle<B>(
        &self,
        req: Request<B>,
        grant_label: &mut &'static str,
    ) -> Result<(TokenResponse, Option<&RefreshCookie>), TokenError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let inner = &*self.inner;
        let Incoming {
            form,
            basic,
            meta,
            headers,
        } = inner.read(req).await?;
        let grant_type = form.require("grant_type", "The grant_type parameter is missing")?;
        // Refused where it is parsed (the metadata lists the grants anyway),
        // so only a supported name becomes a label: the metric's
        // cardinality stays fixed whatever clients send.
        let grant_type = GrantType::parse(grant_type)?;
        *grant_label = grant_type.as_str();
        tracing::Span::current().record("grant", grant_type.as_str());
        let client = inner.client(basic, &form, &meta).await?;
        tracing::Span::current().record("client_id", client.client_id.as_str());
        let cookie = inner.admit(&client, &headers, &meta)?;
        grant::permit(
            grant_type,
            ClientGrants {
                confidential: client.is_confidential(),
                password: client.allow_password,
                client_credentials: client.allow_client_credentials,
                authorization_code: !client.redirect_uris.is_empty(),
            },
            EndpointGrants {
                password: inner.passwords.is_some(),
                authorization_code: inner.authorization.is_some(),
            },
        )?;
        let grant = Grant::read(grant_type, &form)?;
        let now = inner.issuer.now();
        let proof = dpop::request_proof(inner.dpop.as_ref(), &client, &headers, now)?;
        if let (Some(dpop), Some(proof)) = (&inner.dpop, &proof) {
            dpop.claim(proof, now).await?;
        }
        let requested = grant.requested(proof.as_ref().map(|p| p.jkt.as_str()));
        let result = match &grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
                ..
            } => {
                let presented = CodeRedemption {
                    code,
                    redirect_uri: *redirect_uri,
                    code_verifier,
                };
                inner
                    .issuer
                    .redeem_code(&client, &presented, &requested, &meta)
                    .await
            }
            Grant::RefreshToken { refresh_token, .. } => {
                let from_cookie = cookie.map(|c| c.read(&headers)).transpose()?.flatten();
                let token = body_or_cookie(
                    *refresh_token,
                    from_cookie.as_deref(),
                    "The refresh_token parameter is missing",
                )?;
                inner
                    .issuer
                    .refresh(&client, token, &requested, &meta)
                    .await
            }
            Grant::Password {
                username, password, ..
            } => {
                let subject = inner.check_password(username, password, &meta).await?;
                inner
                    .issuer
                    .start_session(&client, &subject, &requested, &meta)
                    .await
            }
            Grant::ClientCredentials { .. } => inner.issuer.client_credentials(&client, &requested),
        };
        result.map(|t| (t, cookie)).map_err(TokenError::from)
    }
}

impl Inner {
    /// The subject a username and password belong to, within the lockout
    /// limits and the bound on checks at once. The attempt counts against
    /// the lockouts before the password is checked; a right password, or
    /// one that could not be checked, gives it back.
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        meta: &RequestContext,
    ) -> Result<String, TokenError> {
        // `permit` refused the grant when no verifier is configured.
        let passwords = self
            .passwords
            .as_ref()
            .ok_or(TokenError::UnsupportedGrantType)?;
        let attempt = self
            .limits
            .password_attempt(username, meta.ip)
            .inspect_err(|_| {
                telemetry::lockout();
                self.issuer.events().emit(SecurityEvent::UserLockedOut {
                    username: username.to_owned(),
                    ip: meta.ip,
                });
            })?;
        match passwords.check(username, password).await {
            Ok(Some(subject)) => {
                self.limits.password_forgiven(attempt);
                Ok(subject)
            }
            Ok(None) => Err(TokenError::InvalidGrant(
                "The username or password is incorrect",
            )),
            Err(e) => {
                self.limits.password_forgiven(attempt);
                match e {
                    CheckError::Busy => {
                        telemetry::rate_limited("password_checks");
                        self.issuer.events().emit(SecurityEvent::RateLimited {
                            limit: "password_checks",
                            ip: meta.ip,
                        });
                    }
                    CheckError::Verifier(e) => {
                        tracing::error!(error = %e, "password verifier failed");
                    }
                }
                Err(TokenError::Unavailable)
            }
        }
    }
}

impl Answer for TokenEndpoint {
    const NAME: &'static str = "TokenEndpoint";

    async fn answer<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, TokenError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        // Stable field names: grant, client_id (once authenticated),
        // outcome (ok or the RFC 6749 error code), duration_ms. Never a
        // token, secret or credential.
        let span = tracing::info_span!(
            "token_request",
            grant = tracing::field::Empty,
            client_id = tracing::field::Empty,
        );
        self.inner.check_janitor();
        let started = std::time::Instant::now();
        let mut grant = "unknown";
        let result = self.handle(req, &mut grant).instrument(span.clone()).await;
        let outcome = result.as_ref().map_or_else(TokenError::code, |_| "ok");
        let took = started.elapsed();
        telemetry::token_request(grant, outcome, took);
        span.in_scope(|| {
            tracing::info!(
                outcome,
                duration_ms = took.as_secs_f64() * 1e3,
                "token request"
            );
        });
        let (tokens, cookie) = match result {
            Ok(done) => done,
            // RFC 9449 §8: the nonce to use comes with the refusal.
            Err(e @ TokenError::Dpop(DpopError::Nonce)) => {
                let mut response = e.into_http_response(&self.inner.realm);
                response
                    .headers_mut()
                    .extend(self.dpop_nonce().map(|n| (DPOP_NONCE, n)));
                return Ok(response);
            }
            Err(e) => return Err(e),
        };
        // A fresh nonce for the next proof, to a client that sent one (its
        // token is bound); computed for no one else.
        let nonce = (tokens.token_type == "DPoP")
            .then(|| self.dpop_nonce())
            .flatten()
            .map(|n| (DPOP_NONCE, n));
        let mut response = tokens_answer(cookie, tokens)?;
        response.headers_mut().extend(nonce);
        Ok(response)
    }

    fn realm(&self) -> &str {
        &self.inner.realm
    }
}

super::pipeline::endpoint_service!(TokenEndpoint: respond);

impl TokenEndpoint {
    /// A fresh `DPoP-Nonce`, when nonces are on.
    fn dpop_nonce(&self) -> Option<http::HeaderValue> {
        let inner = &*self.inner;
        inner.dpop.as_ref()?.nonce(inner.issuer.now())
    }

    /// The `/authorize` endpoint (RFC 6749 §4.1.1), when
    /// [`authorization`](super::TokenEndpointBuilder::authorization) turned
    /// it on: mount it at [`EndpointPaths::authorization`](super::EndpointPaths::authorization).
    pub fn authorization_endpoint(&self) -> Option<super::AuthorizationEndpoint> {
        Some(super::AuthorizationEndpoint {
            inner: Arc::clone(&self.inner),
            settings: Arc::clone(self.inner.authorization.as_ref()?),
        })
    }

    /// The application's side of `/authorize` (what a pending request
    /// asks, and its answer), when the authorization endpoint is on.
    pub fn authorizer(&self) -> Option<super::Authorizer> {
        Some(super::Authorizer {
            inner: Arc::clone(&self.inner),
            settings: Arc::clone(self.inner.authorization.as_ref()?),
        })
    }

    /// The registration endpoint (RFC 7591), when
    /// [`dynamic_registration`](super::TokenEndpointBuilder::dynamic_registration)
    /// turned it on: mount it at [`EndpointPaths::registration`](super::EndpointPaths::registration).
    pub fn registration_endpoint(&self) -> Option<super::RegistrationEndpoint> {
        self.inner.registration.as_ref()?;
        Some(super::RegistrationEndpoint {
            inner: Arc::clone(&self.inner),
        })
    }

    /// The `/revoke` endpoint (RFC 7009) over the same issuer, clients and
    /// settings.
    pub fn revocation(&self) -> super::RevocationEndpoint {
        super::RevocationEndpoint {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The RFC 8414 authorization-server metadata, to mount at
    /// [`MetadataEndpoint::well_known_path`].
    pub fn metadata(&self) -> MetadataEndpoint {
        self.inner.metadata.clone()
    }

    /// Where `/token`, `/revoke`, `/introspect` and the JWKS are to be
    /// mounted, as the metadata advertises them.
    pub fn paths(&self) -> &super::EndpointPaths {
        &self.inner.paths
    }

    /// The JWKS of the issuer's public keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> super::JwksEndpoint {
        super::JwksEndpoint::new(self.inner.issuer.keys().clone())
    }

    /// The `Set-Cookie` value that removes `client_id`'s refresh cookie
    /// (`None` unless it is a browser client), for the application's own
    /// logout routes: `/revoke` clears it by itself.
    pub fn clear_refresh_cookie(&self, client_id: &str) -> Option<http::HeaderValue> {
        self.inner.browser.get(client_id).map(RefreshCookie::clear)
    }

    /// The answer `/token` would give `client_id` for these tokens, for
    /// the application's own login handler (after
    /// [`Issuer::issue`](crate::Issuer::issue)): RFC 6749 §5.1 JSON with
    /// `Cache-Control: no-store`, and for a browser client its refresh
    /// token in the `HttpOnly` cookie (`Set-Cookie`), out of the page's
    /// reach, exactly as `/token` sets it. Guard that handler against
    /// cross-site requests as you would any login form: the cookie it sets
    /// is one `/token` honours.
    pub fn token_response(&self, client_id: &str, tokens: TokenResponse) -> Response<Full<Bytes>> {
        tokens_answer(self.inner.browser.get(client_id), tokens)
            .unwrap_or_else(|e| e.into_http_response(&self.inner.realm))
    }

    /// What a request tells about its client, read as `/token` reads it:
    /// the IP through this endpoint's [`TrustedProxies`](crate::binding::TrustedProxies)
    /// (the peer unless it is a trusted proxy) and the User-Agent. Hand it
    /// to [`Issuer::issue`](crate::Issuer::issue) from your own login
    /// handler, so the session is bound to what its refreshes will show.
    /// `peer` is the connection's address: axum's `ConnectInfo`, or
    /// [`binding::peer_addr`](crate::binding::peer_addr).
    pub fn request_context(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> RequestContext {
        self.inner.request_context(peer, headers)
    }

    /// CORS for `/token`, `/revoke` and the application's logout routes
    /// when a browser client's page is on another origin: only the
    /// browser clients' origins, with credentials (so the cookie goes
    /// along), POST, and the headers a token request needs. Wrap those
    /// routes in it; add methods for other routes with
    /// [`allow_methods`](tower_http::cors::CorsLayer::allow_methods).
    pub fn cors_layer(&self) -> tower_http::cors::CorsLayer {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins = self
            .inner
            .browser
            .values()
            .flat_map(RefreshCookie::origins)
            .filter_map(|o| http::HeaderValue::from_str(o).ok());
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                super::CSRF_HEADER,
                http::HeaderName::from_static("dpop"),
            ])
            // A browser app must read the nonce to send it back.
            .expose_headers([DPOP_NONCE])
            .max_age(Duration::from_secs(600))
    }

    /// CORS for clients that run in any web page — a browser-based MCP
    /// client (MCP Inspector) signing in with PKCE and registering itself:
    /// every origin, **without** credentials (no cookie ever goes along, so
    /// no browser client's refresh cookie is reachable through it), GET and
    /// POST, the headers those requests carry, and the answers' `DPoP-Nonce`
    /// and `WWW-Authenticate` readable. Wrap the metadata, `/register`,
    /// `/token` and `/revoke` in it on a server for such clients, instead of
    /// [`cors_layer`](Self::cors_layer) (which a browser client with a
    /// refresh cookie needs).
    pub fn public_cors_layer(&self) -> tower_http::cors::CorsLayer {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        CorsLayer::new()
            .allow_origin(AllowOrigin::any())
            .allow_credentials(false)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                http::HeaderName::from_static("dpop"),
                http::HeaderName::from_static("mcp-protocol-version"),
            ])
            .expose_headers([DPOP_NONCE, header::WWW_AUTHENTICATE])
            .max_age(Duration::from_secs(600))
    }

    /// The `/introspect` endpoint (RFC 7662) over the same issuer, clients
    /// and settings.
    pub fn introspection(&self) -> super::IntrospectionEndpoint {
        super::IntrospectionEndpoint {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Tokens as `/token` answers them: JSON, and for a browser client the
/// refresh token in its cookie (and, by setting, also in the body).
fn tokens_answer(
    cookie: Option<&RefreshCookie>,
    mut tokens: TokenResponse,
) -> Result<Response<Full<Bytes>>, TokenError> {
    let Some(cookie) = cookie else {
        return ok_json(&tokens);
    };
    let set_cookie = if cookie.in_body {
        tokens.refresh_token.clone()
    } else {
        tokens.refresh_token.take()
    }
    .map(|token| cookie.set(&token, tokens.refresh_token_expires_at));
    let mut response = ok_json(&tokens)?;
    response
        .headers_mut()
        .extend(set_cookie.map(|v| (header::SET_COOKIE, v)));
    Ok(response)
}
