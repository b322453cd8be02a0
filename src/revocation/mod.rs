//! The deny list: revoked token ids, sessions and subjects, in memory.
//!
//! The gate looks every request up here and never in a database. Entries
//! expire on their own when the tokens they could match expire, so there is
//! no size bound to evict live revocations. A leaf: it imports neither the
//! gate nor the store. With feature `store`,
//! [`RevocationSync`](crate::sync::RevocationSync) feeds the same type from
//! the persisted revocation table, so every instance learns of every revocation (on PostgreSQL at
//! once, elsewhere within its poll interval) and a restart brings nothing
//! back to life.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tollgate::revocation::{RevocationCache, RevokedBy};
//!
//! let deny = RevocationCache::default();
//! let now = SystemTime::now();
//! let iat = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
//!
//! deny.revoke_token("jti-1", now + Duration::from_secs(300));
//! deny.revoke_session("family-7", now + Duration::from_secs(900));
//!
//! assert_eq!(deny.check(Some("jti-1"), None, "alice", Some(iat)), Some(RevokedBy::Token));
//! assert_eq!(deny.check(Some("jti-2"), Some("family-7"), "alice", Some(iat)), Some(RevokedBy::Session));
//! assert_eq!(deny.check(Some("jti-3"), Some("family-8"), "alice", Some(iat)), None);
//!
//! // Logout everywhere: every token of bob issued up to now.
//! deny.revoke_subject_before("bob", now);
//! assert_eq!(deny.check(Some("jti-4"), None, "bob", Some(iat)), Some(RevokedBy::Subject));
//! ```

mod cache;
mod record;

pub use cache::{DEFAULT_MAX_TOKEN_LIFETIME, RevocationCache, RevocationCacheBuilder, RevokedBy};
pub use record::{DEFAULT_MARGIN, Revocation, RevocationKind, RevokedReason, Subject};
