//! Security events an application can act on: a new device signed in, a
//! replayed refresh token caught, a session ended, a client or user
//! blocked.
//!
//! Give the issuer an [`EventSink`] ([`IssuerBuilder::events`]); the issuer,
//! its sessions and its token endpoint report to it. Delivery never blocks
//! or fails a request: events go into a bounded queue that a thread of
//! their own drains into the sink, one at a time, in order. When the queue
//! is full the event is dropped and counted ([`Events::dropped`]); a sink
//! that panics loses that one event and keeps receiving the next. No event
//! carries a token, secret, password or a hash of one.
//!
//! [`IssuerBuilder::events`]: crate::issuer::IssuerBuilder::events
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tollgate::events::{EventSink, SecurityEvent};
//!
//! #[derive(Clone, Default)]
//! struct Log(Arc<Mutex<Vec<String>>>);
//!
//! impl EventSink for Log {
//!     fn handle(&self, event: &SecurityEvent) {
//!         if let SecurityEvent::SessionStarted { subject, new_device: true, .. } = event {
//!             self.0.lock().unwrap().push(format!("new device for {subject}"));
//!         }
//!     }
//! }
//! // Issuer::builder().events(Log::default()) …
//! # let _ = Log::default();
//! ```

use std::{
    fmt,
    net::IpAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{SyncSender, TrySendError, sync_channel},
    },
};

use crate::{refresh::Outcome, revocation::RevokedReason};

/// Default capacity of the event queue.
pub const DEFAULT_EVENT_QUEUE: usize = 1024;

/// Something that happened that an application may want to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// A session started (a login).
    SessionStarted {
        /// The session id (`sid`).
        sid: String,
        /// The user.
        subject: String,
        /// The client.
        client_id: String,
        /// The client IP, when known.
        ip: Option<IpAddr>,
        /// The User-Agent, when sent.
        user_agent: Option<String>,
        /// No earlier session of this subject (live or ended, within the
        /// retention period) came from this IP and User-Agent: the "new
        /// device signed in" signal.
        new_device: bool,
    },
    /// A refresh token was rotated.
    RefreshRotated {
        /// The session.
        sid: String,
        /// The user.
        subject: String,
        /// The client.
        client_id: String,
    },
    /// A spent refresh token came back within its window and was answered
    /// with the session's current one (nothing was minted): `behind` 1 is
    /// a race or a lost response, more a stale process of the client;
    /// `outcome` says which.
    SpentTokenAnswered {
        /// The session.
        sid: String,
        /// The user.
        subject: String,
        /// The client.
        client_id: String,
        /// How many generations the answer was ahead of the presented
        /// token.
        behind: u32,
        /// [`Outcome::Race`], [`Outcome::LostResponse`] or
        /// [`Outcome::StaleGeneration`].
        outcome: Outcome,
    },
    /// A consumed refresh token was presented again: the session was
    /// revoked (RFC 9700 §4.14.2). A stolen token, or a broken client.
    ReplayDetected {
        /// The session, now revoked.
        sid: String,
        /// The user.
        subject: String,
        /// The client.
        client_id: String,
        /// Where the replay came from.
        ip: Option<IpAddr>,
    },
    /// A refresh token came from another client, IP or User-Agent than it
    /// is bound to.
    BindingMismatch {
        /// The session.
        sid: String,
        /// The user.
        subject: String,
        /// The client it was issued to.
        client_id: String,
        /// Where it came from.
        ip: Option<IpAddr>,
        /// Whether the policy revoked the session for it.
        session_revoked: bool,
    },
    /// A session was ended (logout, an administrator, a security policy).
    SessionRevoked {
        /// The session.
        sid: String,
        /// Why.
        reason: RevokedReason,
    },
    /// Every session of a user was ended (logout everywhere).
    LoggedOutEverywhere {
        /// The user.
        subject: String,
        /// How many sessions were live.
        sessions: u64,
    },
    /// A client failed to authenticate at the token endpoint.
    ClientAuthenticationFailed {
        /// The `client_id` it claimed, if any (unverified).
        client_id: Option<String>,
        /// Where it came from.
        ip: Option<IpAddr>,
    },
    /// A browser client's request was refused as possibly forged: its
    /// `Origin` is missing or not the client's, or it lacks the CSRF
    /// header. Nothing was consumed.
    CsrfRefused {
        /// The browser client.
        client_id: String,
        /// `missing_origin`, `foreign_origin` or `missing_csrf_header`.
        reason: &'static str,
        /// Where it came from.
        ip: Option<IpAddr>,
    },
    /// A client this server's operators did not register became known:
    /// it registered itself (RFC 7591), or its metadata document was
    /// recorded at its first authorization request.
    ClientRegistered {
        /// Its id (a metadata document's URL, or the one issued).
        client_id: String,
        /// `dynamic` or `metadata_document`.
        kind: &'static str,
        /// Where the request came from.
        ip: Option<IpAddr>,
    },
    /// A request was refused by a rate limit.
    RateLimited {
        /// Which limit: `requests_per_ip`, `requests_per_client`,
        /// `failed_client_auth_per_ip`, `registrations_per_ip`.
        limit: &'static str,
        /// Where it came from.
        ip: Option<IpAddr>,
    },
    /// Syncing the deny list from the store failed: this instance serves
    /// from what it last knew (and fails closed past its limit, if set).
    /// Reported once per outage, at its first failure.
    RevocationSyncStale {
        /// Since when the list has not been refreshed, at this failure.
        stale_for: std::time::Duration,
    },
    /// A sync succeeded again after failures.
    RevocationSyncRecovered {
        /// How stale the list had grown.
        was_stale_for: std::time::Duration,
    },
    /// A password attempt was refused because the username (or the
    /// source) is locked out after wrong passwords.
    UserLockedOut {
        /// The username tried (never the password).
        username: String,
        /// Where it came from.
        ip: Option<IpAddr>,
    },
}

impl SecurityEvent {
    /// The refresh outcome this event reports, if it reports one: a
    /// rotation, a spent token answered, a replay caught, a binding
    /// breach.
    pub fn refresh_outcome(&self) -> Option<Outcome> {
        match self {
            Self::RefreshRotated { .. } => Some(Outcome::Rotated),
            Self::SpentTokenAnswered { outcome, .. } => Some(*outcome),
            Self::ReplayDetected { .. } => Some(Outcome::ReuseDetected),
            Self::BindingMismatch { .. } => Some(Outcome::BindingMismatch),
            _ => None,
        }
    }
}

/// Receives security events, on a thread of the events' own.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event. It may take its time: requests do not wait.
    fn handle(&self, event: &SecurityEvent);
}

impl<F> EventSink for F
where
    F: Fn(&SecurityEvent) + Send + Sync + 'static,
{
    fn handle(&self, event: &SecurityEvent) {
        self(event);
    }
}

/// Where the issuer and endpoint report events; cheap to clone. Without a
/// sink, reporting does nothing.
#[derive(Clone, Default)]
pub struct Events {
    queue: Option<SyncSender<SecurityEvent>>,
    dropped: Arc<AtomicU64>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("sink", &self.queue.is_some())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Events {
    /// Delivers to `sink` through a queue of `capacity` events.
    pub fn new(sink: impl EventSink, capacity: usize) -> Self {
        let (queue, events) = sync_channel::<SecurityEvent>(capacity.max(1));
        let spawned = std::thread::Builder::new()
            .name("tollgate-events".into())
            .spawn(move || {
                // Ends when every sender (every clone of `Events`) is gone.
                for event in events {
                    if catch_unwind(AssertUnwindSafe(|| sink.handle(&event))).is_err() {
                        tracing::error!("the security event sink panicked; event lost");
                    }
                }
            });
        match spawned {
            Ok(_) => Self {
                queue: Some(queue),
                dropped: Arc::default(),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot start the event thread; events are off");
                Self::default()
            }
        }
    }

    /// Whether a sink listens (so callers can skip work for an event).
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Reports an event without waiting: dropped (and counted) when the
    /// queue is full.
    pub fn emit(&self, event: SecurityEvent) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex, mpsc};

    use super::*;

    fn revoked(n: u64) -> SecurityEvent {
        SecurityEvent::LoggedOutEverywhere {
            subject: "u".into(),
            sessions: n,
        }
    }

    #[test]
    fn events_arrive_in_order() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let events = Events::new(
            move |e: &SecurityEvent| tx.lock().unwrap().send(e.clone()).unwrap(),
            16,
        );
        for n in 0..10 {
            events.emit(revoked(n));
        }
        let got: Vec<_> = (0..10).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, (0..10).map(revoked).collect::<Vec<_>>());
        assert_eq!(events.dropped(), 0);
    }

    /// A sink that never returns blocks nobody: emitting returns at once,
    /// and what does not fit the queue is counted.
    #[test]
    fn a_stuck_sink_blocks_nothing_and_overflow_is_counted() {
        let gate = Arc::new(Barrier::new(2));
        let (started_tx, started) = mpsc::channel();
        let started_tx = Mutex::new(started_tx);
        let held = Arc::clone(&gate);
        let events = Events::new(
            move |_: &SecurityEvent| {
                started_tx.lock().unwrap().send(()).unwrap();
                held.wait();
            },
            4,
        );
        events.emit(revoked(0));
        started.recv().unwrap(); // the thread holds event 0 now
        for n in 1..=10 {
            events.emit(revoked(n));
        }
        // 4 fit the queue, 6 did not.
        assert_eq!(events.dropped(), 6);
        gate.wait();
    }

    #[test]
    fn a_panicking_sink_loses_one_event_and_gets_the_next() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let events = Events::new(
            move |e: &SecurityEvent| {
                if let SecurityEvent::LoggedOutEverywhere { sessions: 0, .. } = e {
                    panic!("sink bug");
                }
                tx.lock().unwrap().send(e.clone()).unwrap();
            },
            8,
        );
        events.emit(revoked(0));
        events.emit(revoked(1));
        assert_eq!(rx.recv().unwrap(), revoked(1));
    }

    #[test]
    fn without_a_sink_nothing_happens() {
        let events = Events::default();
        assert!(!events.enabled());
        events.emit(revoked(1));
        assert_eq!(events.dropped(), 0);
    }
}
