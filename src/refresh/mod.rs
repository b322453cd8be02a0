//! Refresh-token rotation rules, as pure decisions.
//!
//! [`decide`] takes the stored state of the presented token and its family,
//! and the request, and says what to do: rotate, answer a spent token
//! within its window with the session's current one, or reject (and maybe
//! revoke the family).
//! It does no I/O; the store applies the decision atomically. The rules:
//!
//! - one-time use: only the request whose conditional update consumed the
//!   token rotates it;
//! - a spent token is answered, never with a new token, only within its
//!   window: a replayer that proves to be the session's client (a
//!   confidential client that authenticated, or a proof by the session's
//!   DPoP key) gets [`RefreshPolicy::bound_grace`] (default 30 minutes) for
//!   a token up to [`MAX_GENERATIONS_BEHIND`] generations old, and is
//!   handed the session's current refresh token — derived from the
//!   presented one with [`RefreshSecret`](crate::secret::RefreshSecret),
//!   never stored in clear — so a stale process or a lost response never
//!   logs the session out and nothing forks; anyone else gets
//!   [`RefreshPolicy::grace`] (5 seconds) for the immediate predecessor
//!   only, whose replay cannot be told from a thief's;
//! - any other replay of a spent token is reuse: the family is revoked
//!   (`reuse_detected`, RFC 9700 §4.14.2);
//! - bound to its client always, and by [`BindingPolicy`](crate::binding::BindingPolicy)
//!   to IP and User-Agent;
//! - scope may narrow, never widen (RFC 6749 §6).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tollgate::refresh::{decide, Decision, SessionState, RefreshRequest, RefreshPolicy, TokenState};
//!
//! let now = SystemTime::now();
//! let token = TokenState {
//!     generation: 0, consumed_at: None, revoked: false,
//!     expires_at: now + Duration::from_secs(3600), client_id: "web".into(),
//!     client_ip: None, user_agent: None,
//! };
//! let family = SessionState {
//!     generation: 0, revoked: false,
//!     expires_at: now + Duration::from_secs(86_400), scope: "read write".into(),
//!     resources: Vec::new(), dpop_jkt: None,
//! };
//! let req = RefreshRequest {
//!     client_id: "web", ip: None, user_agent: None, scope: Some("read"),
//!     now, resources: &[], dpop_jkt: None, client_authenticated: false,
//! };
//! // `true`: this request's conditional update consumed the token.
//! assert_eq!(
//!     decide(&token, &family, &req, true, &RefreshPolicy::default()),
//!     Decision::Rotate { scope: "read".into(), resources: Vec::new() },
//! );
//! ```

mod decide;

pub use decide::{
    DEFAULT_BOUND_REUSE_GRACE, DEFAULT_REUSE_GRACE, Decision, MAX_GENERATIONS_BEHIND, Outcome,
    RefreshError, RefreshPolicy, RefreshRequest, SessionState, TokenState, decide, is_live,
};
