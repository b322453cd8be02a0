//! The password grant's check: the application's [`PasswordVerifier`],
//! run at most a few at a time.
//!
//! A password hash worth the name is expensive by design (argon2 with
//! OWASP's parameters holds about 19 MiB for tens of milliseconds), and a
//! wrong password for an unknown user costs as much as a right one. Left
//! unbounded, a burst of guesses is a memory exhaustion attack. So each
//! check needs a permit (by default one per core); a short queue waits for
//! one, and beyond it a request is answered `503 temporarily_unavailable`
//! with `Retry-After` at once. A check runs on a task of its own that
//! holds its permit to the end: a client that hangs up mid-check frees
//! neither the permit nor its place until the work is really done, so
//! dropped requests cannot pile up work behind the bound.

use std::{
    future::Future,
    num::NonZeroUsize,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::sync::Semaphore;

/// An error of the application's password check (its database is down,
/// say): answered with 503, never with `invalid_grant`.
pub type VerifyError = crate::error::BoxError;

/// Checks a username and password for the password grant; the application
/// implements it (with argon2 for stored passwords). Returns the subject
/// (user id) on success, `None` on bad credentials.
///
/// Any `Fn(String, String) -> impl Future<Output = Result<Option<String>,
/// VerifyError>>` is a verifier. The endpoint runs at most
/// [`password_concurrency`](super::TokenEndpointBuilder::password_concurrency)
/// checks at once, so a verifier need not bound itself.
pub trait PasswordVerifier: Send + Sync + 'static {
    /// Verifies the credentials.
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, VerifyError>> + Send + 'a>>;
}

impl<F, Fut> PasswordVerifier for F
where
    F: Fn(String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<String>, VerifyError>> + Send + 'static,
{
    fn verify<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, VerifyError>> + Send + 'a>> {
        Box::pin(self(username.to_owned(), password.to_owned()))
    }
}

/// Why a password could not be checked.
#[derive(Debug)]
pub(crate) enum CheckError {
    /// Every permit is taken and the queue is full: retry shortly.
    Busy,
    /// The verifier failed (or panicked).
    Verifier(VerifyError),
}

/// The verifier behind its bound.
pub(crate) struct Passwords {
    verifier: Arc<dyn PasswordVerifier>,
    running: Arc<Semaphore>,
    /// Checks running or waiting for a permit.
    admitted: Arc<AtomicUsize>,
    /// Most checks running or waiting at once: permits plus the queue.
    capacity: usize,
}

/// One place among the admitted checks, given back on drop.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The default number of checks at once: the cores this process may use.
pub(crate) fn default_permits() -> usize {
    std::thread::available_parallelism().map_or(2, NonZeroUsize::get)
}

impl Passwords {
    /// `verifier` with `permits` checks at once and `queue` more waiting.
    pub(crate) fn new(verifier: Arc<dyn PasswordVerifier>, permits: usize, queue: usize) -> Self {
        Self {
            verifier,
            running: Arc::new(Semaphore::new(permits)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: permits + queue,
        }
    }

    /// Checks `username` and `password`, waiting in the queue for a
    /// permit if need be.
    pub(crate) async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, CheckError> {
        let admission = self.admit().ok_or(CheckError::Busy)?;
        // Dropped while waiting here, a request leaves nothing behind.
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| CheckError::Busy)?;
        let verifier = Arc::clone(&self.verifier);
        let (username, password) = (username.to_owned(), password.to_owned());
        // The task owns the permit and the admission: they are freed when
        // the check ends, whether or not anyone still waits for it.
        let check = tokio::spawn(async move {
            let verdict = verifier.verify(&username, &password).await;
            drop((permit, admission));
            verdict
        });
        match check.await {
            Ok(verdict) => verdict.map_err(CheckError::Verifier),
            Err(panicked) => Err(CheckError::Verifier(Box::new(panicked))),
        }
    }

    /// A place among the admitted checks, if there is one left.
    fn admit(&self) -> Option<Admission> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission(Arc::clone(&self.admitted)))
    }
}
