//! Remembered consent: what a user allowed a client, kept when the
//! application approved with [`Approve::remember`](super::Approve::remember),
//! so the consent page can be skipped for a request that asks for no more,
//! and revocable by the user (which ends that client's sessions too).

use std::time::SystemTime;

use super::authorize::{Authorizer, PendingAuthorization};
use crate::{
    redirect,
    revocation::RevokedReason,
    store::{
        StoreError,
        consents::{self, ConsentRow},
        sessions,
    },
};

/// A consent the user gave a client and the application remembered:
/// for a "connected apps" page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consent {
    /// The client's id.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The RFC 8707 resources granted.
    pub resources: Vec<String>,
    /// The redirect URI it was granted for.
    pub redirect_uri: String,
    /// When the user last granted it.
    pub granted_at: SystemTime,
}

impl From<ConsentRow> for Consent {
    fn from(r: ConsentRow) -> Self {
        Self {
            client_id: r.client_id,
            scopes: r
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            resources: r.resources,
            redirect_uri: r.redirect_uri,
            granted_at: r.granted_at,
        }
    }
}

impl Authorizer {
    /// Whether `subject` already allowed what `pending` asks: a consent
    /// remembered for this client, for the same redirect URI (a loopback
    /// one with any port, RFC 8252 §7.3), whose scope holds every scope
    /// requested and whose resources hold every resource requested (a
    /// request naming none is covered only by a consent that named none).
    /// Never when the request says `prompt=consent`. When it is, the
    /// application may [`complete`](Self::complete) without asking again.
    pub async fn remembered_consent(
        &self,
        pending: &PendingAuthorization,
        subject: &str,
    ) -> Result<bool, StoreError> {
        if asks_for_consent(pending.prompt.as_deref()) {
            return Ok(false);
        }
        let remembered =
            consents::find(self.inner.issuer.db(), &pending.client_id, subject).await?;
        Ok(remembered.is_some_and(|c| covers(&c, pending)))
    }

    /// Every consent `subject` has given and the application remembered,
    /// most recent first.
    pub async fn consents(&self, subject: &str) -> Result<Vec<Consent>, StoreError> {
        Ok(consents::of_subject(self.inner.issuer.db(), subject)
            .await?
            .into_iter()
            .map(Consent::from)
            .collect())
    }

    /// Revokes `subject`'s consent for `client_id`: forgotten, so the next
    /// request asks again, and every live session of the subject with that
    /// client ended (its refresh tokens and access tokens die at once, as
    /// at a logout). Whether a consent was remembered; the sessions are
    /// ended either way, so a retry after a failure finishes the job.
    pub async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<bool, StoreError> {
        let issuer = &self.inner.issuer;
        let forgotten = consents::forget(issuer.db(), client_id, subject).await?;
        let live = sessions::live_sessions(issuer.db(), None, subject, issuer.now()).await?;
        for session in live.iter().filter(|s| s.client_id == client_id) {
            issuer
                .revoker()
                .session(&session.sid, RevokedReason::Logout)
                .await?;
        }
        Ok(forgotten)
    }
}

/// Whether OpenID Connect's `prompt` includes `consent`: ask again.
fn asks_for_consent(prompt: Option<&str>) -> bool {
    prompt.is_some_and(|p| p.split(' ').any(|v| v == "consent"))
}

/// Whether the remembered consent covers the request (same client and
/// subject already).
fn covers(c: &ConsentRow, pending: &PendingAuthorization) -> bool {
    // The request was checked against the client already, `localhost`
    // included when the client allows it: here the question is only
    // whether it goes where the consent was given for.
    let same_redirect = redirect::matches(
        std::slice::from_ref(&c.redirect_uri),
        &pending.redirect_uri,
        true,
    );
    let scopes = pending
        .scopes
        .iter()
        .all(|s| crate::scope::contains(&c.scope, s));
    let resources = if pending.resources.is_empty() {
        c.resources.is_empty()
    } else {
        pending.resources.iter().all(|r| c.resources.contains(r))
    };
    same_redirect && scopes && resources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(scope: &str, resources: &[&str], redirect: &str) -> ConsentRow {
        ConsentRow {
            client_id: "c".into(),
            subject: "alice".into(),
            scope: scope.into(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            redirect_uri: redirect.into(),
            granted_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn pending(scopes: &[&str], resources: &[&str], redirect: &str) -> PendingAuthorization {
        PendingAuthorization {
            client_id: "c".into(),
            client_name: "c".into(),
            registration: crate::store::clients::Registration::Registered,
            client_id_host: None,
            logo_uri: None,
            client_uri: None,
            links_elsewhere: false,
            redirect_uri: redirect.into(),
            redirect_host: String::new(),
            loopback: false,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            prompt: None,
            max_age: None,
            acr_values: Vec::new(),
            login_hint: None,
        }
    }

    const WEB: &str = "https://app.example/cb";

    #[test]
    fn a_consent_covers_no_more_than_it_granted() {
        let c = consent("read write", &[], WEB);
        assert!(covers(&c, &pending(&["read"], &[], WEB)));
        assert!(covers(&c, &pending(&["write", "read"], &[], WEB)));
        assert!(!covers(&c, &pending(&["read", "admin"], &[], WEB)));
        let narrowed = consent("read", &[], WEB);
        assert!(!covers(&narrowed, &pending(&["read", "write"], &[], WEB)));
    }

    #[test]
    fn a_consent_covers_only_its_redirect_uri_and_a_loopback_one_with_any_port() {
        let c = consent("read", &[], WEB);
        assert!(!covers(
            &c,
            &pending(&["read"], &[], "https://app.example/other")
        ));
        assert!(!covers(
            &c,
            &pending(&["read"], &[], "https://evil.example/cb")
        ));
        let native = consent("read", &[], "http://127.0.0.1:5123/cb");
        assert!(covers(
            &native,
            &pending(&["read"], &[], "http://127.0.0.1:6001/cb")
        ));
        assert!(!covers(
            &native,
            &pending(&["read"], &[], "http://127.0.0.1:6001/other")
        ));
        assert!(!covers(
            &native,
            &pending(&["read"], &[], "http://[::1]:5123/cb")
        ));
    }

    #[test]
    fn a_consent_covers_only_its_resources() {
        let c = consent(
            "read",
            &["https://api.example/a", "https://api.example/b"],
            WEB,
        );
        assert!(covers(
            &c,
            &pending(&["read"], &["https://api.example/b"], WEB)
        ));
        assert!(!covers(
            &c,
            &pending(&["read"], &["https://api.example/c"], WEB)
        ));
        // No resource named may mean every resource of the client.
        assert!(!covers(&c, &pending(&["read"], &[], WEB)));
        let none = consent("read", &[], WEB);
        assert!(!covers(
            &none,
            &pending(&["read"], &["https://api.example/a"], WEB)
        ));
    }

    #[test]
    fn prompt_consent_always_asks() {
        assert!(asks_for_consent(Some("consent")));
        assert!(asks_for_consent(Some("login consent")));
        assert!(!asks_for_consent(Some("login")));
        assert!(!asks_for_consent(Some("consented")));
        assert!(!asks_for_consent(None));
    }
}
