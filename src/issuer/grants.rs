//! The grants, each deciding what to mint and doing the I/O: a session
//! (the application's login, the password grant), client_credentials, and
//! a refresh.

use super::{
    Authentication, IssueError, Issuer, RequestContext, Requested, TokenResponse,
    code::Origin,
    mint::Mint,
    session::{plan_session, resources_for},
};
use crate::{
    claims::CLIENT_SUBJECT_PREFIX,
    events::SecurityEvent,
    refresh::{Outcome, RefreshError, RefreshPolicy, RefreshRequest},
    scope,
    secret::{hash_token, random_token},
    store::{
        self,
        clients::Client,
        rotation::{RefreshOutcome, RefusedSession, Rotation},
        sessions::NewSession,
    },
    telemetry,
};

impl Issuer {
    /// Starts a session for `user_id` on `client_id`: a new refresh-token
    /// family and an access token. `scope` defaults to everything the client
    /// may have; asking for more is [`IssueError::InvalidScope`].
    pub async fn issue(
        &self,
        user_id: &str,
        client_id: &str,
        scope: Option<&str>,
        meta: &RequestContext,
    ) -> Result<TokenResponse, IssueError> {
        let requested = Requested {
            scope,
            ..Requested::default()
        };
        self.issue_with(user_id, client_id, &requested, meta).await
    }

    /// [`issue`](Self::issue) with RFC 8707 resources: the access tokens of
    /// the session carry them as `aud` (instead of the issuer's configured
    /// audience), and its refreshes may narrow them, never widen. Each must
    /// be one the client is registered for ([`IssueError::InvalidTarget`]).
    pub async fn issue_with(
        &self,
        user_id: &str,
        client_id: &str,
        requested: &Requested<'_>,
        meta: &RequestContext,
    ) -> Result<TokenResponse, IssueError> {
        let client = store::clients::find(&self.inner.db, client_id)
            .await?
            .filter(|c| !c.disabled)
            .ok_or(IssueError::UnknownClient)?;
        self.start_session(&client, user_id, requested, meta).await
    }

    pub(crate) async fn start_session(
        &self,
        client: &Client,
        user_id: &str,
        requested: &Requested<'_>,
        meta: &RequestContext,
    ) -> Result<TokenResponse, IssueError> {
        self.begin_session(client, user_id, requested, meta, Origin::Login)
            .await
    }

    /// A session from a login (`Origin::Login`) or an authorization
    /// code's redemption, which starts it in the transaction that spends
    /// the code.
    pub(super) async fn begin_session(
        &self,
        client: &Client,
        user_id: &str,
        requested: &Requested<'_>,
        meta: &RequestContext,
        origin: Origin<'_>,
    ) -> Result<TokenResponse, IssueError> {
        let now = self.inner.clock.now();
        let plan = plan_session(client, user_id, requested, &self.inner.lifetimes, now)?;
        let refresh_token = random_token();
        // Before the session is recorded, or it would know itself.
        let new_device = if self.inner.events.enabled() {
            !store::sessions::known_device(
                &self.inner.db,
                user_id,
                meta.ip,
                meta.user_agent.as_deref(),
            )
            .await?
        } else {
            false
        };
        let session = NewSession {
            client_id: &client.client_id,
            user_id,
            tenant: meta.tenant.as_deref(),
            scope: &plan.scope,
            resources: &plan.resources,
            token_hash: hash_token(&refresh_token),
            ip: meta.ip,
            user_agent: meta.user_agent.as_deref(),
            device_fingerprint: meta.device_fingerprint.as_deref(),
            now,
            token_expires_at: plan.token_expires_at,
            session_expires_at: plan.session_expires_at,
            dpop_jkt: plan.session_key,
            auth_time: meta.authentication.auth_time,
            acr: meta.authentication.acr.as_deref(),
            amr: (!meta.authentication.amr.is_empty()).then(|| meta.authentication.amr.join(" ")),
        };
        let family_id = match origin {
            Origin::Login => store::sessions::start(&self.inner.db, &session)
                .await?
                // Disabled (or deleted) while this request was under way.
                .ok_or(IssueError::UnknownClient)?,
            Origin::Code(code_hash) => self.spend_code(code_hash, now, &session).await?,
        };
        self.inner.events.emit(SecurityEvent::SessionStarted {
            sid: family_id.clone(),
            subject: user_id.to_owned(),
            client_id: client.client_id.clone(),
            ip: meta.ip,
            user_agent: meta.user_agent.clone(),
            new_device,
        });
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: user_id,
            client_id: &client.client_id,
            scope: &plan.scope,
            resources: &plan.resources,
            sid: Some(&family_id),
            tenant: meta.tenant.as_deref(),
            now,
            ttl: plan.lifetimes.access,
            cap: Some(plan.session_expires_at),
            dpop_jkt: requested.dpop_jkt,
            authentication: &meta.authentication,
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: Some(refresh_token),
            scope: plan.scope,
            refresh_token_expires_at: Some(plan.token_expires_at),
        })
    }

    /// The client_credentials grant: an access token whose subject is the
    /// client itself (`client:<id>`, never a user's: RFC 9068 §5), no
    /// refresh token (RFC 6749 §4.4.3).
    pub(crate) fn client_credentials(
        &self,
        client: &Client,
        requested: &Requested<'_>,
    ) -> Result<TokenResponse, IssueError> {
        let scope =
            scope::narrow(&client.scope, requested.scope).ok_or(IssueError::InvalidScope)?;
        let resources = resources_for(client, requested)?;
        let lifetimes = self.inner.lifetimes.for_client(client);
        let now = self.inner.clock.now();
        let subject = format!("{CLIENT_SUBJECT_PREFIX}{}", client.client_id);
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: &subject,
            client_id: &client.client_id,
            scope: &scope,
            resources: &resources,
            sid: None,
            tenant: None,
            now,
            ttl: lifetimes.access,
            cap: None,
            dpop_jkt: requested.dpop_jkt,
            authentication: &Authentication::default(),
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: None,
            scope,
            refresh_token_expires_at: None,
        })
    }

    /// The refresh_token grant: rotate `token` exactly once.
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        token: &str,
        requested: &Requested<'_>,
        meta: &RequestContext,
    ) -> Result<TokenResponse, IssueError> {
        let lifetimes = self.inner.lifetimes.for_client(client);
        let now = self.inner.clock.now();
        let mut child = self.inner.refresh_secret.child_of(token);
        // The client's own window for its stale tokens, if it has one.
        let policy = RefreshPolicy {
            bound_grace: client
                .bound_reuse_grace
                .unwrap_or(self.inner.policy.bound_grace),
            ..self.inner.policy.clone()
        };
        let outcome = store::rotation::rotate(
            &self.inner.db,
            &Rotation {
                request: RefreshRequest {
                    client_id: &client.client_id,
                    ip: meta.ip,
                    user_agent: meta.user_agent.as_deref(),
                    scope: requested.scope,
                    resources: requested.resources,
                    dpop_jkt: requested.dpop_jkt,
                    now,
                    // The endpoint authenticated the client before asking.
                    client_authenticated: client.is_confidential(),
                },
                presented_hash: hash_token(token),
                child_hash: hash_token(&child),
                idle_ttl: lifetimes.refresh_idle,
                policy: &policy,
                max_token_lifetime: self.max_token_lifetime(),
            },
        )
        .await?;
        let session = match outcome {
            RefreshOutcome::Rotated(s) => {
                report_refresh(Outcome::Rotated, Some(&s.sid), 0);
                self.inner.events.emit(SecurityEvent::RefreshRotated {
                    sid: s.sid.clone(),
                    subject: s.user_id.clone(),
                    client_id: s.client_id.clone(),
                });
                s
            }
            RefreshOutcome::Replayed {
                session: s,
                behind,
                outcome,
            } => {
                // The session's head: each child is derived from its
                // parent alone, so the presented token leads to it.
                for _ in 1..behind {
                    child = self.inner.refresh_secret.child_of(&child);
                }
                report_refresh(outcome, Some(&s.sid), behind);
                self.inner.events.emit(SecurityEvent::SpentTokenAnswered {
                    sid: s.sid.clone(),
                    subject: s.user_id.clone(),
                    client_id: s.client_id.clone(),
                    behind,
                    outcome,
                });
                s
            }
            RefreshOutcome::Rejected {
                error,
                revoked,
                session,
            } => {
                // Reuse detection or a binding mismatch revoked the session
                // inside the rotation's transaction.
                self.inner.revoker.apply_committed(revoked.as_ref());
                report_refresh(error.outcome(revoked.is_some()), Some(&session.sid), 0);
                self.report_refusal(error, revoked.is_some(), session, meta);
                return Err(error.into());
            }
            RefreshOutcome::Unknown => {
                report_refresh(Outcome::Unknown, None, 0);
                return Err(IssueError::UnknownToken);
            }
        };
        let authentication = Authentication {
            auth_time: session.auth_time,
            acr: session.acr.clone(),
            amr: session.amr.clone(),
        };
        let (access_token, expires_in, token_type) = self.mint(&Mint {
            sub: &session.user_id,
            client_id: &session.client_id,
            scope: &session.access_scope,
            resources: &session.resources,
            sid: Some(&session.sid),
            tenant: session.tenant.as_deref(),
            now,
            ttl: lifetimes.access,
            cap: Some(session.expires_at),
            dpop_jkt: requested.dpop_jkt,
            authentication: &authentication,
        })?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token: Some(child),
            scope: session.access_scope,
            refresh_token_expires_at: Some(session.refresh_expires_at),
        })
    }

    /// Reports a refused refresh that says something about the token's
    /// holder: a replay, or a binding mismatch.
    fn report_refusal(
        &self,
        error: RefreshError,
        session_revoked: bool,
        s: RefusedSession,
        meta: &RequestContext,
    ) {
        let event = match error {
            RefreshError::Reused if session_revoked => SecurityEvent::ReplayDetected {
                sid: s.sid,
                subject: s.user_id,
                client_id: s.client_id,
                ip: meta.ip,
            },
            RefreshError::BindingMismatch | RefreshError::ClientMismatch => {
                SecurityEvent::BindingMismatch {
                    sid: s.sid,
                    subject: s.user_id,
                    client_id: s.client_id,
                    ip: meta.ip,
                    session_revoked,
                }
            }
            _ => return,
        };
        self.inner.events.emit(event);
    }
}

/// Counts and logs a refresh by its outcome: the session, how far behind a
/// spent token was, never a token.
fn report_refresh(outcome: Outcome, sid: Option<&str>, behind: u32) {
    telemetry::refresh(outcome.as_str());
    tracing::debug!(session = sid.unwrap_or("-"), %outcome, behind, "refresh");
}
