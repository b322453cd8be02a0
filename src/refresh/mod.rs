//! Refresh-token rotation rules, as pure decisions.
//!
//! [`decide`] takes the stored state of the presented token and its family,
//! and the request, and says what to do: rotate, replay the same child to a
//! racer within the grace period, or reject (and maybe revoke the family).
//! It does no I/O; the store applies the decision atomically. The rules:
//!
//! - one-time use: only the request whose conditional update consumed the
//!   token rotates it;
//! - a consumed token presented again after the grace period, or that is not
//!   the immediate predecessor of the family's head, is reuse: the family is
//!   revoked (`reuse_detected`, RFC 9700 §4.14.2);
//! - within the grace period the immediate predecessor gets the child the
//!   winner got (derived with [`RefreshSecret`](crate::secret::RefreshSecret),
//!   never stored in clear);
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
//!     now, resources: &[], dpop_jkt: None,
//! };
//! // `true`: this request's conditional update consumed the token.
//! assert_eq!(
//!     decide(&token, &family, &req, true, &RefreshPolicy::default()),
//!     Decision::Rotate { scope: "read".into(), resources: Vec::new() },
//! );
//! ```

mod decide;

pub use decide::{
    DEFAULT_REUSE_GRACE, Decision, RefreshError, RefreshPolicy, RefreshRequest, SessionState,
    TokenState, decide, is_live,
};
