//! How a session starts, as a pure decision: from the client, the request,
//! the default lifetimes and the clock alone, what the store records and
//! what the first access token says. The grant does the I/O.

use std::time::SystemTime;

use super::{IssueError, Lifetimes, Requested};
use crate::{audience, claims::CLIENT_SUBJECT_PREFIX, scope, store::clients::Client};

/// What a new session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SessionPlan<'a> {
    /// Its scope: what was asked for, within the client's.
    pub(super) scope: String,
    /// Its RFC 8707 resources; empty: the issuer's audience.
    pub(super) resources: Vec<String>,
    /// The client's lifetimes (its overrides of the defaults).
    pub(super) lifetimes: Lifetimes,
    /// When the first refresh token lapses unused: its idle lifetime,
    /// never past the session's end.
    pub(super) token_expires_at: SystemTime,
    /// When the session ends, whatever happens.
    pub(super) session_expires_at: SystemTime,
    /// The DPoP key the session's refreshes must prove (RFC 9449 §5): a
    /// public client's; a confidential client's secret already binds them.
    pub(super) session_key: Option<&'a str>,
}

/// How `user_id` starts a session on `client` with `requested`, at `now`.
pub(super) fn plan_session<'a>(
    client: &Client,
    user_id: &str,
    requested: &Requested<'a>,
    defaults: &Lifetimes,
    now: SystemTime,
) -> Result<SessionPlan<'a>, IssueError> {
    if user_id.is_empty() || user_id.starts_with(CLIENT_SUBJECT_PREFIX) {
        return Err(IssueError::ReservedSubject);
    }
    let scope = scope::narrow(&client.scope, requested.scope).ok_or(IssueError::InvalidScope)?;
    let lifetimes = defaults.for_client(client);
    let session_expires_at = now + lifetimes.session;
    Ok(SessionPlan {
        scope,
        resources: resources_for(client, requested)?,
        lifetimes,
        token_expires_at: (now + lifetimes.refresh_idle).min(session_expires_at),
        session_expires_at,
        session_key: requested.dpop_jkt.filter(|_| !client.is_confidential()),
    })
}

/// The RFC 8707 resources of new tokens for `client`, the one rule of every
/// grant that starts from the client (a session, client_credentials): the
/// requested ones, each registered for the client, duplicates dropped; or
/// none, so the tokens carry the issuer's configured audience rather than
/// every resource the client may name.
pub(super) fn resources_for(
    client: &Client,
    requested: &Requested<'_>,
) -> Result<Vec<String>, IssueError> {
    if requested.resources.is_empty() {
        return Ok(Vec::new());
    }
    audience::narrow(&client.resources, requested.resources).ok_or(IssueError::InvalidTarget)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn client(confidential: bool) -> Client {
        Client::for_tests(
            confidential,
            "read write",
            &["https://a.example", "https://b.example"],
        )
    }

    fn plan<'a>(c: &Client, user: &str, r: &Requested<'a>) -> Result<SessionPlan<'a>, IssueError> {
        plan_session(
            c,
            user,
            r,
            &Lifetimes::default(),
            UNIX_EPOCH + Duration::from_secs(NOW),
        )
    }

    #[test]
    fn a_session_narrows_scope_and_resources_and_never_widens() {
        let c = client(true);
        let p = plan(&c, "alice", &Requested::default()).unwrap();
        assert_eq!((p.scope.as_str(), p.resources.len()), ("read write", 0));
        let asked = Requested {
            scope: Some("read"),
            resources: &["https://b.example", "https://b.example"],
            dpop_jkt: None,
        };
        let p = plan(&c, "alice", &asked).unwrap();
        assert_eq!(p.scope, "read");
        assert_eq!(p.resources, ["https://b.example"]);
        let wider = Requested {
            scope: Some("admin"),
            ..asked
        };
        assert!(matches!(
            plan(&c, "alice", &wider),
            Err(IssueError::InvalidScope)
        ));
        let elsewhere = Requested {
            resources: &["https://c.example"],
            ..asked
        };
        assert!(matches!(
            plan(&c, "alice", &elsewhere),
            Err(IssueError::InvalidTarget)
        ));
    }

    #[test]
    fn no_session_for_an_empty_or_a_client_subject() {
        let c = client(false);
        for user in ["", "client:svc"] {
            assert!(matches!(
                plan(&c, user, &Requested::default()),
                Err(IssueError::ReservedSubject)
            ));
        }
    }

    #[test]
    fn only_a_public_clients_session_is_bound_to_its_dpop_key() {
        let bound = Requested {
            dpop_jkt: Some("jkt"),
            ..Requested::default()
        };
        assert_eq!(
            plan(&client(false), "a", &bound).unwrap().session_key,
            Some("jkt")
        );
        assert_eq!(plan(&client(true), "a", &bound).unwrap().session_key, None);
    }

    #[test]
    fn the_first_refresh_token_never_outlives_the_session() {
        let short = Lifetimes {
            session: Duration::from_secs(60),
            ..Lifetimes::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        let p = plan_session(&client(true), "a", &Requested::default(), &short, now).unwrap();
        assert_eq!(p.session_expires_at, now + Duration::from_secs(60));
        assert_eq!(p.token_expires_at, p.session_expires_at);
        let p = plan(&client(true), "a", &Requested::default()).unwrap();
        assert_eq!(p.token_expires_at, now + Lifetimes::default().refresh_idle);
    }
}
