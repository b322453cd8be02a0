use std::{
    net::IpAddr,
    time::{Duration, SystemTime},
};

use crate::{audience, binding::BindingPolicy, revocation::RevokedReason, scope};

/// The rotation policy: the windows in which a spent token is answered
/// rather than taken for theft, and binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// How long after a rotation the immediate predecessor of an unbound
    /// session is still answered (two tabs, a retried request): its stale
    /// replay cannot be told from a thief's, so the window is short.
    /// Default [`DEFAULT_REUSE_GRACE`].
    pub grace: Duration,
    /// How long after a rotation any older token of a session whose
    /// replayer proves to be its client — a confidential client that
    /// authenticated, or a proof by the session's DPoP key — is answered
    /// with the session's current refresh token (several processes on one
    /// credential store, a lost response retried later). Default
    /// [`DEFAULT_BOUND_REUSE_GRACE`]; zero: the short rule for every
    /// session.
    pub bound_grace: Duration,
    /// IP and User-Agent binding.
    pub binding: BindingPolicy,
}

/// Default grace period for a concurrent or retried refresh: 5 seconds.
pub const DEFAULT_REUSE_GRACE: Duration = Duration::from_secs(5);

/// Default window for the stale tokens of a session bound to its client:
/// 30 minutes. Long enough for the published failures (a multi-process
/// client presenting a token nearly 8 minutes old; a mobile app retrying a
/// lost response after it resumes), as long as the windows peers chose
/// (30–60 minutes), and harmless to be generous with: the replayer has
/// proved to be the session's own client, and is handed the token the
/// session already has, never a new one.
pub const DEFAULT_BOUND_REUSE_GRACE: Duration = Duration::from_secs(30 * 60);

/// The most generations behind a stale token may be and still be answered:
/// more rotations than this within the window is no benign lag.
pub const MAX_GENERATIONS_BEHIND: i64 = 64;

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            grace: DEFAULT_REUSE_GRACE,
            bound_grace: DEFAULT_BOUND_REUSE_GRACE,
            binding: BindingPolicy::default(),
        }
    }
}

/// The stored state of the presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    /// Its generation in the family.
    pub generation: i64,
    /// When it was exchanged, if it was.
    pub consumed_at: Option<SystemTime>,
    /// Whether it is revoked.
    pub revoked: bool,
    /// End of its idle lifetime.
    pub expires_at: SystemTime,
    /// The client it was issued to.
    pub client_id: String,
    /// The IP it was issued to.
    pub client_ip: Option<IpAddr>,
    /// The User-Agent it was issued to.
    pub user_agent: Option<String>,
}

/// The stored state of its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// Generation of the current head.
    pub generation: i64,
    /// Whether the family is revoked.
    pub revoked: bool,
    /// Absolute end of the session.
    pub expires_at: SystemTime,
    /// The scope granted at login.
    pub scope: String,
    /// RFC 8707 resources granted at login; empty: the issuer's configured
    /// audience.
    pub resources: Vec<String>,
    /// The DPoP key the session is bound to (RFC 7638 thumbprint): every
    /// refresh must prove it.
    pub dpop_jkt: Option<String>,
}

/// The refresh request as presented.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// The request's client IP.
    pub ip: Option<IpAddr>,
    /// The request's User-Agent.
    pub user_agent: Option<&'a str>,
    /// The `scope` parameter, if sent.
    pub scope: Option<&'a str>,
    /// Now.
    pub now: SystemTime,
    /// The RFC 8707 `resource` parameters, if sent.
    pub resources: &'a [&'a str],
    /// The thumbprint of the key the request's DPoP proof was signed
    /// with, if it carried a valid one.
    pub dpop_jkt: Option<&'a str>,
    /// The client authenticated with its secret (a confidential client):
    /// a replay of its stale token provably comes from the client itself.
    pub client_authenticated: bool,
}

/// What to do with a refresh request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Issue the child token (generation + 1) and an access token with
    /// `scope`.
    Rotate {
        /// Scope of the new access token.
        scope: String,
        /// Its RFC 8707 resources (`aud`); empty: the issuer's audience.
        resources: Vec<String>,
    },
    /// A spent token within its window: hand out the session's current
    /// refresh token (never a new one, so nothing forks) and an access
    /// token. `behind` generations separate it from the presented token: 1
    /// for a racer or a lost response (the child the winner got), more for
    /// a stale process; the head is derived from the presented token that
    /// many times.
    Replay {
        /// Scope of the new access token.
        scope: String,
        /// Its RFC 8707 resources (`aud`); empty: the issuer's audience.
        resources: Vec<String>,
        /// How many generations the head is ahead of the presented token.
        behind: u32,
        /// The immediate predecessor came back after the short window
        /// ([`RefreshPolicy::grace`]): not a racer but a client retrying
        /// a response it never got.
        late: bool,
    },
    /// Refuse; if `revoke` is set, revoke the whole family for that reason
    /// (and keep that write), otherwise change nothing.
    Reject {
        /// Why.
        error: RefreshError,
        /// Revoke the family for this reason.
        revoke: Option<RevokedReason>,
    },
}

/// How a refresh ended, as a metric label, a field of
/// [`SecurityEvent`](crate::events::SecurityEvent)s and in the debug log:
/// what happened, never which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The token was exchanged for its child: the normal case.
    Rotated,
    /// The immediate predecessor came back within the short window: two
    /// requests raced with one token. Answered with the winner's token.
    Race,
    /// The immediate predecessor came back later, from the session's own
    /// client, before the child was ever used: the response was lost.
    /// Answered with that same child.
    LostResponse,
    /// An older token came back from the session's own client (a process
    /// several rotations behind). Answered with the session's current
    /// token.
    StaleGeneration,
    /// A spent token came back outside every window: the session was
    /// revoked (RFC 9700 §4.14.2).
    ReuseDetected,
    /// The token came from another client, IP, User-Agent or DPoP key than
    /// it is bound to.
    BindingMismatch,
    /// Refused for another reason: revoked, expired, a scope or resource
    /// beyond the grant.
    Refused,
    /// No such refresh token.
    Unknown,
}

impl Outcome {
    /// The label: `rotated`, `race`, `lost_response`, `stale_generation`,
    /// `reuse_detected`, `binding_mismatch`, `refused`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Race => "race",
            Self::LostResponse => "lost_response",
            Self::StaleGeneration => "stale_generation",
            Self::ReuseDetected => "reuse_detected",
            Self::BindingMismatch => "binding_mismatch",
            Self::Refused => "refused",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Decision {
    /// How this decision classifies the refresh.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Rotate { .. } => Outcome::Rotated,
            Self::Replay {
                behind: 1,
                late: false,
                ..
            } => Outcome::Race,
            Self::Replay { behind: 1, .. } => Outcome::LostResponse,
            Self::Replay { .. } => Outcome::StaleGeneration,
            Self::Reject { error, revoke } => error.outcome(revoke.is_some()),
        }
    }
}

/// Whether a refresh token is usable now: not consumed, not revoked, not
/// expired, in a live family. What `/introspect` calls "active".
pub fn is_live(token: &TokenState, family: &SessionState, now: SystemTime) -> bool {
    token.consumed_at.is_none()
        && !token.revoked
        && !family.revoked
        && token.expires_at > now
        && family.expires_at > now
}

/// Why a refresh was refused. All map to `invalid_grant` except
/// `InvalidScope` (`invalid_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Issued to another client.
    #[error("refresh token was issued to another client")]
    ClientMismatch,
    /// The token or its family is revoked.
    #[error("refresh token is revoked")]
    Revoked,
    /// The family's absolute lifetime has ended.
    #[error("session has expired")]
    SessionExpired,
    /// The token's idle lifetime has ended.
    #[error("refresh token has expired")]
    Expired,
    /// IP or User-Agent differs from the one it was issued to.
    #[error("refresh token is bound to another client context")]
    BindingMismatch,
    /// A consumed token was presented again outside the grace rule.
    #[error("refresh token was already used")]
    Reused,
    /// The requested scope exceeds the original grant.
    #[error("requested scope exceeds the original grant")]
    InvalidScope,
    /// A requested resource was not granted to the session (RFC 8707).
    #[error("requested resource exceeds the original grant")]
    InvalidTarget,
    /// The session is bound to a DPoP key the request did not prove.
    #[error("refresh token is bound to another DPoP key")]
    KeyMismatch,
}

impl RefreshError {
    /// How a refusal for this reason classifies the refresh;
    /// `session_revoked`: the refusal revoked the session.
    pub fn outcome(self, session_revoked: bool) -> Outcome {
        match self {
            Self::Reused if session_revoked => Outcome::ReuseDetected,
            Self::ClientMismatch | Self::BindingMismatch | Self::KeyMismatch => {
                Outcome::BindingMismatch
            }
            _ => Outcome::Refused,
        }
    }

    /// The RFC 6749 §5.2 error code.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            _ => "invalid_grant",
        }
    }
}

fn reject(error: RefreshError, revoke: Option<RevokedReason>) -> Decision {
    Decision::Reject { error, revoke }
}

/// Decides a refresh request from the stored state alone. `won_consume`
/// is the store's own result: whether this request's conditional update
/// consumed the token (it was unconsumed and unrevoked, and no concurrent
/// request got it). No I/O: the store applies the decision in the same
/// transaction that read the state.
///
/// Order matters: a token of another client is refused before anything
/// else is revealed; a revoked or expired family is final; a consumed token
/// is either the grace case or reuse (which kills the family even if the
/// replay also comes from another IP); then binding; then scope.
pub fn decide(
    token: &TokenState,
    family: &SessionState,
    req: &RefreshRequest<'_>,
    won_consume: bool,
    policy: &RefreshPolicy,
) -> Decision {
    let binding_revoke = policy
        .binding
        .revoke_session_on_mismatch
        .then_some(RevokedReason::Security);
    if token.client_id != req.client_id {
        // RFC 6749 §10.4: a refresh token is bound to its client. Someone
        // holds another client's token: treat it as a binding breach.
        return reject(RefreshError::ClientMismatch, binding_revoke);
    }
    if family.revoked || token.revoked {
        return reject(RefreshError::Revoked, None);
    }
    if req.now >= family.expires_at {
        return reject(RefreshError::SessionExpired, None);
    }
    let replay = !won_consume;
    let mut behind = 0;
    let mut late = false;
    if replay {
        let Some(consumed_at) = token.consumed_at else {
            // Not consumed, not revoked, yet not ours: the row changed
            // between our update and read. Refuse without side effects.
            return reject(RefreshError::Reused, None);
        };
        // Who replays decides the window: a replayer that proves to be the
        // session's client gets the long one for any older token; anyone
        // else (an unbound public client, or a proof by another key) the
        // short one for the immediate predecessor only, since its replay
        // cannot be told from a thief's.
        let proven = req.client_authenticated
            || family
                .dpop_jkt
                .as_deref()
                .is_some_and(|bound| req.dpop_jkt == Some(bound));
        let (window, reach) = if proven && !policy.bound_grace.is_zero() {
            (policy.bound_grace, MAX_GENERATIONS_BEHIND)
        } else {
            (policy.grace, 1)
        };
        let gap = family.generation - token.generation;
        // A strict window: zero means no replay at all. A clock that
        // stepped back (now before consumed_at) counts as inside it.
        let within = !window.is_zero()
            && req
                .now
                .duration_since(consumed_at)
                .map_or(true, |age| age < window);
        if !(1..=reach).contains(&gap) || !within {
            return reject(RefreshError::Reused, Some(RevokedReason::ReuseDetected));
        }
        // A replay from elsewhere than the token was issued to gets no
        // answer either: the binding check below refuses it (and revokes
        // the session if the policy says so).
        behind = u32::try_from(gap).unwrap_or(u32::MAX);
        late = req
            .now
            .duration_since(consumed_at)
            .is_ok_and(|age| age >= policy.grace);
    } else if req.now >= token.expires_at {
        return reject(RefreshError::Expired, None);
    }
    if !policy.binding.ip_matches(token.client_ip, req.ip)
        || !policy
            .binding
            .user_agent_matches(token.user_agent.as_deref(), req.user_agent)
    {
        return reject(RefreshError::BindingMismatch, binding_revoke);
    }
    // RFC 9449 §5: a public client's refresh token works only with a
    // proof by its key. A thief without the key is refused; the token is
    // not spent, so its owner carries on.
    if let Some(bound) = &family.dpop_jkt
        && req.dpop_jkt != Some(bound.as_str())
    {
        return reject(RefreshError::KeyMismatch, None);
    }
    let scope = match scope::narrow(&family.scope, req.scope) {
        Some(scope) => scope,
        None => return reject(RefreshError::InvalidScope, None),
    };
    // RFC 8707 §2.2: a refresh may ask for fewer resources than the
    // session was granted, never others.
    let Some(resources) = audience::narrow(&family.resources, req.resources) else {
        return reject(RefreshError::InvalidTarget, None);
    };
    if replay {
        Decision::Replay {
            scope,
            resources,
            behind,
            late,
        }
    } else {
        Decision::Rotate { scope, resources }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{IpBinding, UserAgentBinding};

    const T: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn token() -> TokenState {
        TokenState {
            generation: 3,
            consumed_at: None,
            revoked: false,
            expires_at: at(T + 1000),
            client_id: "web".into(),
            client_ip: ip("203.0.113.7"),
            user_agent: Some("Firefox".into()),
        }
    }

    fn family() -> SessionState {
        SessionState {
            generation: 3,
            revoked: false,
            expires_at: at(T + 5000),
            scope: "read write".into(),
            resources: Vec::new(),
            dpop_jkt: None,
        }
    }

    fn req() -> RefreshRequest<'static> {
        RefreshRequest {
            client_id: "web",
            ip: ip("203.0.113.7"),
            user_agent: Some("Firefox"),
            scope: None,
            now: at(T),
            resources: &[],
            dpop_jkt: None,
            client_authenticated: false,
        }
    }

    fn strict() -> RefreshPolicy {
        RefreshPolicy {
            grace: Duration::from_secs(5),
            bound_grace: Duration::from_secs(600),
            binding: BindingPolicy {
                ip: IpBinding::Exact,
                user_agent: UserAgentBinding::Exact,
                revoke_session_on_mismatch: true,
            },
        }
    }

    /// The state right after a winner rotated this token at `T`.
    fn consumed() -> (TokenState, SessionState) {
        let mut t = token();
        t.consumed_at = Some(at(T));
        let mut f = family();
        f.generation = 4;
        (t, f)
    }

    fn rejected(d: &Decision) -> Option<(RefreshError, Option<RevokedReason>)> {
        match d {
            Decision::Reject { error, revoke } => Some((*error, *revoke)),
            _ => None,
        }
    }

    #[test]
    fn fresh_token_rotates_with_the_full_grant() {
        let d = decide(&token(), &family(), &req(), true, &strict());
        assert_eq!(
            d,
            Decision::Rotate {
                scope: "read write".into(),
                resources: Vec::new(),
            }
        );
    }

    #[test]
    fn resources_may_narrow_never_widen_and_a_refusal_spends_nothing() {
        let t = token();
        let mut f = family();
        f.resources = vec!["https://a.example".into(), "https://b.example".into()];
        let keep = decide(&t, &f, &req(), true, &strict());
        assert!(
            matches!(&keep, Decision::Rotate { resources, .. } if *resources == f.resources),
            "{keep:?}"
        );
        let narrow = RefreshRequest {
            resources: &["https://b.example"],
            ..req()
        };
        assert!(matches!(
            decide(&t, &f, &narrow, true, &strict()),
            Decision::Rotate { resources, .. } if resources == ["https://b.example"]
        ));
        let wide = RefreshRequest {
            resources: &["https://c.example"],
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &wide, true, &strict())),
            Some((RefreshError::InvalidTarget, None))
        );
        assert_eq!(RefreshError::InvalidTarget.error_code(), "invalid_target");
        // A session granted no resource may not gain one.
        assert_eq!(
            rejected(&decide(&t, &family(), &wide, true, &strict())),
            Some((RefreshError::InvalidTarget, None))
        );
    }

    #[test]
    fn scope_may_narrow_never_widen() {
        let narrow = RefreshRequest {
            scope: Some("read"),
            ..req()
        };
        assert_eq!(
            decide(&token(), &family(), &narrow, true, &strict()),
            Decision::Rotate {
                scope: "read".into(),
                resources: Vec::new(),
            }
        );
        for bad in ["read admin", "", "  ", "READ"] {
            let wide = RefreshRequest {
                scope: Some(bad),
                ..req()
            };
            assert_eq!(
                rejected(&decide(&token(), &family(), &wide, true, &strict())),
                Some((RefreshError::InvalidScope, None)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn another_clients_token_is_refused_first() {
        let other = RefreshRequest {
            client_id: "evil",
            ..req()
        };
        let mut t = token();
        t.revoked = true;
        assert_eq!(
            rejected(&decide(&t, &family(), &other, true, &strict())),
            Some((RefreshError::ClientMismatch, Some(RevokedReason::Security)))
        );
        let lenient = RefreshPolicy::default();
        assert_eq!(
            rejected(&decide(&token(), &family(), &other, true, &lenient)),
            Some((RefreshError::ClientMismatch, None))
        );
    }

    #[test]
    fn revoked_or_expired_is_final_without_side_effects() {
        let mut t = token();
        t.revoked = true;
        assert_eq!(
            rejected(&decide(&t, &family(), &req(), true, &strict())),
            Some((RefreshError::Revoked, None))
        );
        let mut f = family();
        f.revoked = true;
        assert_eq!(
            rejected(&decide(&token(), &f, &req(), true, &strict())),
            Some((RefreshError::Revoked, None))
        );
        let late = RefreshRequest {
            now: at(T + 5000),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&token(), &family(), &late, true, &strict())),
            Some((RefreshError::SessionExpired, None))
        );
        let idle = RefreshRequest {
            now: at(T + 1000),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&token(), &family(), &idle, true, &strict())),
            Some((RefreshError::Expired, None))
        );
    }

    #[test]
    fn immediate_predecessor_within_grace_gets_a_replay() {
        let (t, f) = consumed();
        for secs in [0, 1, 4] {
            let racer = RefreshRequest {
                now: at(T + secs),
                ..req()
            };
            assert_eq!(
                decide(&t, &f, &racer, false, &strict()),
                Decision::Replay {
                    scope: "read write".into(),
                    resources: Vec::new(),
                    behind: 1,
                    late: false,
                },
                "{secs}s after"
            );
        }
        // A clock that stepped back counts as within grace, not as reuse.
        let earlier = RefreshRequest {
            now: at(T - 3),
            ..req()
        };
        assert!(matches!(
            decide(&t, &f, &earlier, false, &strict()),
            Decision::Replay { .. }
        ));
    }

    #[test]
    fn reuse_after_grace_or_of_an_older_generation_revokes_the_family() {
        let (t, f) = consumed();
        let late = RefreshRequest {
            now: at(T + 6),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &late, false, &strict())),
            Some((RefreshError::Reused, Some(RevokedReason::ReuseDetected)))
        );
        // The child has itself been rotated: the grandparent is reuse even
        // inside the grace period.
        let mut f2 = f.clone();
        f2.generation = 5;
        let quick = RefreshRequest {
            now: at(T + 1),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f2, &quick, false, &strict())),
            Some((RefreshError::Reused, Some(RevokedReason::ReuseDetected)))
        );
        // Reuse from another IP is still reuse (family dies), not merely a
        // binding mismatch.
        let thief = RefreshRequest {
            now: at(T + 60),
            ip: ip("198.51.100.1"),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &thief, false, &RefreshPolicy::default())),
            Some((RefreshError::Reused, Some(RevokedReason::ReuseDetected)))
        );
        // Even after the idle expiry.
        let much_later = RefreshRequest {
            now: at(T + 2000),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &much_later, false, &strict())).map(|r| r.1),
            Some(Some(RevokedReason::ReuseDetected))
        );
    }

    #[test]
    fn grace_replay_still_checks_binding_and_scope() {
        let (t, f) = consumed();
        let elsewhere = RefreshRequest {
            ip: ip("198.51.100.1"),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &elsewhere, false, &strict())),
            Some((RefreshError::BindingMismatch, Some(RevokedReason::Security)))
        );
        let wider = RefreshRequest {
            scope: Some("admin"),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&t, &f, &wider, false, &strict())),
            Some((RefreshError::InvalidScope, None))
        );
    }

    #[test]
    fn binding_policy_decides_mismatches() {
        let other_ip = RefreshRequest {
            ip: ip("203.0.113.99"),
            ..req()
        };
        let other_ua = RefreshRequest {
            user_agent: Some("curl"),
            ..req()
        };
        let no_ua = RefreshRequest {
            user_agent: None,
            ..req()
        };
        for r in [&other_ip, &other_ua, &no_ua] {
            assert_eq!(
                rejected(&decide(&token(), &family(), r, true, &strict())),
                Some((RefreshError::BindingMismatch, Some(RevokedReason::Security)))
            );
        }
        // Prefix binding: same /24 passes, another /24 fails.
        let mut prefix = strict();
        prefix.binding.ip = IpBinding::Prefix;
        prefix.binding.revoke_session_on_mismatch = false;
        assert!(matches!(
            decide(&token(), &family(), &other_ip, true, &prefix),
            Decision::Rotate { .. }
        ));
        let far = RefreshRequest {
            ip: ip("203.0.114.7"),
            ..req()
        };
        assert_eq!(
            rejected(&decide(&token(), &family(), &far, true, &prefix)),
            Some((RefreshError::BindingMismatch, None))
        );
        // Off: anything goes.
        let off = RefreshPolicy::default();
        for r in [&other_ip, &other_ua, &no_ua, &far] {
            assert!(matches!(
                decide(&token(), &family(), r, true, &off),
                Decision::Rotate { .. }
            ));
        }
    }

    /// Every combination of the inputs that matter: the decision never
    /// rotates or replays what it must not, and never forks.
    #[test]
    fn exhaustive_invariants() {
        let policies = [strict(), RefreshPolicy::default()];
        let mut seen = 0;
        for policy in &policies {
            for client_ok in [true, false] {
                for tok_revoked in [false, true] {
                    for fam_revoked in [false, true] {
                        for fam_expired in [false, true] {
                            for idle_expired in [false, true] {
                                for consumed_age in
                                    [None, Some(0u64), Some(4), Some(5), Some(599), Some(600)]
                                {
                                    for head_gap in [0i64, 1, 2, 3] {
                                        for ip_ok in [true, false] {
                                            for ua_ok in [true, false] {
                                                for scope in [None, Some("read"), Some("admin")] {
                                                    for dpop in DPOP_CASES {
                                                        for authenticated in [false, true] {
                                                            seen += 1;
                                                            check_one(
                                                                policy,
                                                                client_ok,
                                                                tok_revoked,
                                                                fam_revoked,
                                                                fam_expired,
                                                                idle_expired,
                                                                consumed_age,
                                                                head_gap,
                                                                ip_ok,
                                                                ua_ok,
                                                                scope,
                                                                dpop,
                                                                authenticated,
                                                            );
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen, 2 * 2 * 2 * 2 * 2 * 2 * 6 * 4 * 2 * 2 * 3 * 6 * 2);
    }

    /// (the key the session is bound to, the key the request proved).
    const DPOP_CASES: [(Option<&str>, Option<&str>); 6] = [
        (None, None),
        (None, Some("k1")),
        (Some("k1"), None),
        (Some("k1"), Some("k1")),
        (Some("k1"), Some("k2")),
        (Some("k2"), Some("k1")),
    ];

    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn check_one(
        policy: &RefreshPolicy,
        client_ok: bool,
        tok_revoked: bool,
        fam_revoked: bool,
        fam_expired: bool,
        idle_expired: bool,
        consumed_age: Option<u64>,
        head_gap: i64,
        ip_ok: bool,
        ua_ok: bool,
        scope: Option<&'static str>,
        (bound, proved): (Option<&'static str>, Option<&'static str>),
        authenticated: bool,
    ) {
        let now = T + 100;
        let mut t = token();
        t.revoked = tok_revoked;
        t.consumed_at = consumed_age.map(|a| at(now - a));
        t.expires_at = if idle_expired { at(now) } else { at(now + 100) };
        let mut f = family();
        f.revoked = fam_revoked;
        f.expires_at = if fam_expired { at(now) } else { at(now + 1000) };
        f.generation = t.generation + head_gap;
        f.dpop_jkt = bound.map(str::to_owned);
        let key_ok = bound.is_none() || bound == proved;
        // The store's conditional update wins only on an unconsumed,
        // unrevoked token.
        let won = consumed_age.is_none() && !tok_revoked;
        let r = RefreshRequest {
            client_id: if client_ok { "web" } else { "other" },
            ip: if ip_ok {
                ip("203.0.113.7")
            } else {
                ip("192.0.2.1")
            },
            user_agent: Some(if ua_ok { "Firefox" } else { "curl" }),
            scope,
            now: at(now),
            resources: &[],
            dpop_jkt: proved,
            client_authenticated: authenticated,
        };
        let d = decide(&t, &f, &r, won, policy);
        // The window this replayer is entitled to.
        let proven = authenticated || (bound.is_some() && proved == bound);
        let (window, reach) = if proven && !policy.bound_grace.is_zero() {
            (policy.bound_grace.as_secs(), MAX_GENERATIONS_BEHIND)
        } else {
            (policy.grace.as_secs(), 1)
        };
        let in_window = consumed_age.is_some_and(|a| a < window) && (1..=reach).contains(&head_gap);
        let binding_on = policy.binding.ip == IpBinding::Exact;
        let bound_ok = !binding_on || (ip_ok && ua_ok);
        let ctx = format!(
            "{d:?} auth={authenticated} bound={bound:?} proved={proved:?} client_ok={client_ok} tok_revoked={tok_revoked} fam_revoked={fam_revoked} fam_expired={fam_expired} idle_expired={idle_expired} consumed={consumed_age:?} gap={head_gap} ip={ip_ok} ua={ua_ok} scope={scope:?} strict={binding_on}"
        );
        match &d {
            Decision::Rotate { scope: s, .. } => {
                assert_eq!(d.outcome(), Outcome::Rotated, "{ctx}");
                assert!(
                    won && client_ok
                        && !fam_revoked
                        && !fam_expired
                        && !idle_expired
                        && bound_ok
                        && key_ok,
                    "{ctx}"
                );
                assert!(scope.is_none() || scope == Some(s.as_str()), "{ctx}");
                assert_ne!(scope, Some("admin"), "{ctx}");
            }
            Decision::Replay { behind, .. } => {
                assert!(
                    !won && client_ok
                        && !tok_revoked
                        && !fam_revoked
                        && !fam_expired
                        && bound_ok
                        && key_ok,
                    "{ctx}"
                );
                assert!(in_window, "replay only within the replayer's window: {ctx}");
                // The head, never a new token: the answer names how far.
                assert_eq!(i64::from(*behind), head_gap, "{ctx}");
                // Classified by how far behind and how late.
                let late = consumed_age.is_some_and(|a| a >= policy.grace.as_secs());
                let expected = match (head_gap, late) {
                    (1, false) => Outcome::Race,
                    (1, true) => Outcome::LostResponse,
                    _ => Outcome::StaleGeneration,
                };
                assert_eq!(d.outcome(), expected, "{ctx}");
                assert_ne!(scope, Some("admin"), "{ctx}");
            }
            Decision::Reject { revoke, error } => {
                // Classified: reuse is what revoked for reuse; a breach of
                // any binding is one; the rest is a plain refusal.
                let expected = match (error, revoke) {
                    (_, Some(RevokedReason::ReuseDetected)) => Outcome::ReuseDetected,
                    (
                        RefreshError::ClientMismatch
                        | RefreshError::BindingMismatch
                        | RefreshError::KeyMismatch,
                        _,
                    ) => Outcome::BindingMismatch,
                    _ => Outcome::Refused,
                };
                assert_eq!(d.outcome(), expected, "{ctx}");
                // Revocation only for reuse, or binding/client breaches under
                // a policy that asks for it; never for a merely revoked or
                // expired family.
                if let Some(reason) = revoke {
                    assert!(!fam_revoked || !client_ok, "{ctx}");
                    match reason {
                        RevokedReason::ReuseDetected => {
                            assert!(!won && consumed_age.is_some(), "{ctx}");
                        }
                        RevokedReason::Security => {
                            assert!(policy.binding.revoke_session_on_mismatch, "{ctx}");
                        }
                        _ => panic!("unexpected reason: {ctx}"),
                    }
                }
                // No false logout: a replay its window covers, from where
                // the token was issued, is answered.
                assert!(
                    !(!won
                        && in_window
                        && client_ok
                        && !tok_revoked
                        && !fam_revoked
                        && !fam_expired
                        && bound_ok
                        && key_ok
                        && scope != Some("admin")),
                    "a covered replay was refused: {ctx}"
                );
                // A fresh, valid, bound request within scope is never refused.
                assert!(
                    !(won
                        && client_ok
                        && !fam_revoked
                        && !fam_expired
                        && !idle_expired
                        && bound_ok
                        && key_ok
                        && scope != Some("admin")),
                    "{ctx}"
                );
            }
        }
    }

    /// A bound session refreshes only with a proof by its key; refusing a
    /// thief spends nothing and revokes nothing.
    #[test]
    fn a_bound_session_needs_its_key() {
        let mut f = family();
        f.dpop_jkt = Some("k1".into());
        for (proved, ok) in [(Some("k1"), true), (Some("k2"), false), (None, false)] {
            let r = RefreshRequest {
                dpop_jkt: proved,
                ..req()
            };
            let d = decide(&token(), &f, &r, true, &strict());
            if ok {
                assert!(matches!(d, Decision::Rotate { .. }), "{d:?}");
            } else {
                assert_eq!(
                    d,
                    Decision::Reject {
                        error: RefreshError::KeyMismatch,
                        revoke: None
                    }
                );
            }
        }
        // An unbound session takes any proof, or none.
        let r = RefreshRequest {
            dpop_jkt: Some("k9"),
            ..req()
        };
        assert!(matches!(
            decide(&token(), &family(), &r, true, &strict()),
            Decision::Rotate { .. }
        ));
    }

    #[test]
    fn zero_grace_never_replays() {
        let (t, f) = consumed();
        let zero = RefreshPolicy {
            grace: Duration::ZERO,
            ..strict()
        };
        for now in [at(T), at(T - 1), at(T + 1)] {
            let racer = RefreshRequest { now, ..req() };
            assert_eq!(
                rejected(&decide(&t, &f, &racer, false, &zero)),
                Some((RefreshError::Reused, Some(RevokedReason::ReuseDetected)))
            );
        }
    }
}
