//! Rate limits and lockouts for the token endpoints (`/token`, `/revoke`,
//! `/introspect`), on governor's GCRA.
//!
//! Five independent limits, each off unless set:
//!
//! | limit | key | counts | answer when exceeded |
//! |---|---|---|---|
//! | requests per IP | source IP (IPv6 by /64) | every request, on arrival | 429 |
//! | requests per client | authenticated `client_id`; a public client's by (`client_id`, source IP) | every authenticated request that passed the browser checks | 429 |
//! | failed client authentication | source IP | `invalid_client` answers | 429 before authenticating |
//! | failed passwords per user | username (lower-cased, hashed) | password attempts, given back when right | 429 before verifying |
//! | failed passwords per IP | source IP | password attempts, given back when right | 429 before verifying |
//!
//! A "failure" limit lets `max` failures through per `per`, one more each
//! `per / max` after that; until then the key is refused outright, without
//! looking at the credentials, so a correct guess made while blocked is
//! not even checked. Failures of unknown clients and unknown users count
//! like the others, so a block tells nothing about who exists. A password
//! attempt takes its strike *before* the password is checked, in one
//! atomic step with the check of the limit, and gets it back if the
//! password was right: concurrent guesses count against the limit as they
//! start, so a burst cannot slip past it. Usernames are kept as SHA-256
//! hashes, so a key's size does not depend on what a client sends.
//!
//! The answer is `429 Too Many Requests` with `Retry-After` and the JSON
//! error `temporarily_unavailable`.

use std::{
    fmt,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use governor::{
    Quota, RateLimiter, clock, middleware::NoOpMiddleware, state::keyed::DashMapStateStore,
};

use moka::ops::compute::Op;

use super::{EndpointConfigError, TokenError};
use crate::{secret::hash_token, time::Clock};

/// At most `max` events per `per`, replenished evenly (one every
/// `per / max`), with bursts of up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    max: u32,
    per: Duration,
}

impl Limit {
    /// `max` events per `per`. Zero values are refused by
    /// [`TokenEndpointBuilder::build`](super::TokenEndpointBuilder::build).
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }

    /// `max` events per second.
    pub const fn per_second(max: u32) -> Self {
        Self::new(max, Duration::from_secs(1))
    }

    /// `max` events per minute.
    pub const fn per_minute(max: u32) -> Self {
        Self::new(max, Duration::from_secs(60))
    }

    fn quota(self) -> Option<Quota> {
        let max = NonZeroU32::new(self.max)?;
        let period = self.per.checked_div(self.max)?;
        Quota::with_period(period).map(|q| q.allow_burst(max))
    }
}

/// The rate limits and lockouts of the token endpoints. None is set by
/// default: a library cannot know whether its source addresses are real
/// clients or one proxy (see
/// [`trusted_proxies`](super::TokenEndpointBuilder::trusted_proxies)).
/// [`RateLimits::recommended`] is a sane start.
///
/// ```
/// use std::time::Duration;
/// use tollgate::token_endpoint::{Limit, RateLimits};
///
/// let limits = RateLimits::none()
///     .requests_per_ip(Limit::per_second(20))
///     .failed_passwords_per_user(Limit::new(5, Duration::from_secs(15 * 60)));
/// # let _ = limits;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct RateLimits {
    requests_per_ip: Option<Limit>,
    requests_per_client: Option<Limit>,
    failed_client_auth_per_ip: Option<Limit>,
    failed_passwords_per_user: Option<Limit>,
    failed_passwords_per_ip: Option<Limit>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("requests_per_ip", &self.requests_per_ip)
            .field("requests_per_client", &self.requests_per_client)
            .field("failed_client_auth_per_ip", &self.failed_client_auth_per_ip)
            .field("failed_passwords_per_user", &self.failed_passwords_per_user)
            .field("failed_passwords_per_ip", &self.failed_passwords_per_ip)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// No limits (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// A sane start for a service whose source addresses are real clients:
    /// 20 requests/s per IP (bursts of 20), 100/s per client, 20 failed
    /// client authentications per IP per minute, 5 failed passwords per
    /// user per 15 minutes (then one more every 3 minutes), 30 failed
    /// passwords per IP per 15 minutes.
    pub fn recommended() -> Self {
        let quarter_hour = Duration::from_secs(15 * 60);
        Self::none()
            .requests_per_ip(Limit::per_second(20))
            .requests_per_client(Limit::per_second(100))
            .failed_client_auth_per_ip(Limit::per_minute(20))
            .failed_passwords_per_user(Limit::new(5, quarter_hour))
            .failed_passwords_per_ip(Limit::new(30, quarter_hour))
    }

    /// Every request from one source IP (IPv6 addresses by their /64).
    /// Requests without a known peer address are not counted.
    pub fn requests_per_ip(self, limit: Limit) -> Self {
        Self {
            requests_per_ip: Some(limit),
            ..self
        }
    }

    /// Every request of one authenticated client; of a public client
    /// (which anyone can name), every request from one source IP. Counted
    /// after a browser client's CSRF checks, so forged requests spend
    /// nothing.
    pub fn requests_per_client(self, limit: Limit) -> Self {
        Self {
            requests_per_client: Some(limit),
            ..self
        }
    }

    /// Failed client authentications from one source IP.
    pub fn failed_client_auth_per_ip(self, limit: Limit) -> Self {
        Self {
            failed_client_auth_per_ip: Some(limit),
            ..self
        }
    }

    /// Wrong passwords (password grant) for one username, compared
    /// case-insensitively: the lockout. Anyone can lock a user out this
    /// way for a while, so keep the period short.
    pub fn failed_passwords_per_user(self, limit: Limit) -> Self {
        Self {
            failed_passwords_per_user: Some(limit),
            ..self
        }
    }

    /// Wrong passwords from one source IP, whatever the username
    /// (password spraying).
    pub fn failed_passwords_per_ip(self, limit: Limit) -> Self {
        Self {
            failed_passwords_per_ip: Some(limit),
            ..self
        }
    }
}

/// Time for governor: the process clock's [`Clock::elapsed`], which never
/// steps back on the system clock.
#[derive(Clone)]
struct Ticks(Arc<dyn Clock>);

impl clock::Clock for Ticks {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, Ticks, NoOpMiddleware<Duration>>;

/// A limit on events of one key: refused beyond the quota.
struct Rate<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Rate<K> {
    /// The limiter for `limit`, if set; a zero limit is refused.
    fn configured(
        limit: Option<Limit>,
        ticks: &Ticks,
    ) -> Result<Option<Self>, EndpointConfigError> {
        limit
            .map(|l| {
                let quota = l.quota().ok_or(EndpointConfigError::ZeroLimit)?;
                Ok(Self {
                    limiter: RateLimiter::dashmap_with_clock(quota, ticks.clone()),
                })
            })
            .transpose()
    }

    /// Counts one event; the wait when over the limit.
    fn take(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(clock::Clock::now(self.limiter.clock())))
    }
}

/// Failures of one key, as a GCRA "theoretical arrival time" per key:
/// each failure moves it `per / max` later, and the key is blocked while it
/// lies more than `per - per / max` ahead. Hand-written over moka rather
/// than on governor because a lockout must know *before* a password is
/// checked whether it may be, and governor can only answer that by
/// spending a cell.
struct Strikes<K: Hash + Eq + Send + Sync + 'static> {
    step: Duration,
    allowance: Duration,
    tat: moka::sync::Cache<K, Duration>,
}

/// Keys a failure limit keeps at most. Idle keys leave after one period;
/// past this bound the least used go first.
const MAX_STRIKE_KEYS: u64 = 1_000_000;

impl<K: Hash + Eq + Send + Sync + 'static> Strikes<K> {
    /// The failure limit for `limit`, if set; a zero limit is refused.
    fn configured(limit: Option<Limit>) -> Result<Option<Self>, EndpointConfigError> {
        limit
            .map(|l| {
                // The same check as for rates: a count and a step above zero.
                l.quota().ok_or(EndpointConfigError::ZeroLimit)?;
                let step = l.per / l.max;
                Ok(Self {
                    step,
                    allowance: l.per - step,
                    // A key's time lies at most one period ahead of its last
                    // failure, so after a period of silence it is fresh again.
                    tat: moka::sync::Cache::builder()
                        .max_capacity(MAX_STRIKE_KEYS)
                        .time_to_idle(l.per)
                        .build(),
                })
            })
            .transpose()
    }

    /// How long `key` stays blocked, if it is.
    fn blocked(&self, key: &K, now: Duration) -> Result<(), Duration> {
        match self.tat.get(key) {
            Some(tat) if tat > now + self.allowance => Err(tat - now - self.allowance),
            _ => Ok(()),
        }
    }

    /// Counts one failure.
    fn failed(&self, key: K, now: Duration) {
        self.tat
            .entry(key)
            .and_upsert_with(|e| e.map_or(now, |e| (*e.value()).max(now)) + self.step);
    }

    /// Counts one attempt unless `key` is blocked, in one atomic step:
    /// of concurrent attempts each sees those before it. How long the key
    /// stays blocked, if it is.
    fn strike(&self, key: K, now: Duration) -> Result<(), Duration> {
        let mut blocked = None;
        self.tat.entry(key).and_compute_with(|e| {
            let tat = e.map_or(now, |e| e.into_value().max(now));
            if tat > now + self.allowance {
                blocked = Some(tat - now - self.allowance);
                Op::Nop
            } else {
                Op::Put(tat + self.step)
            }
        });
        blocked.map_or(Ok(()), Err)
    }

    /// Gives back one attempt's strike (it succeeded).
    fn forgive(&self, key: K) {
        self.tat.entry(key).and_compute_with(|e| match e {
            Some(e) => Op::Put(e.into_value().saturating_sub(self.step)),
            None => Op::Nop,
        });
    }
}

/// The strikes one password attempt took, to give back if it succeeds.
#[derive(Debug)]
#[must_use = "a right password gives its strikes back"]
pub(crate) struct PasswordAttempt {
    user: Option<UserKey>,
    ip: Option<IpAddr>,
}

/// How often (in checks) idle keys are dropped from the limiters.
const SWEEP_EVERY: u32 = 4096;

/// The configured limits, ready to use.
pub(crate) struct Limiters {
    ticks: Ticks,
    per_ip: Option<Rate<IpAddr>>,
    per_client: Option<Rate<(String, Option<IpAddr>)>>,
    registrations: Option<Rate<IpAddr>>,
    client_auth: Option<Strikes<IpAddr>>,
    password_user: Option<Strikes<UserKey>>,
    password_ip: Option<Strikes<IpAddr>>,
    checks: AtomicU32,
}

impl Limiters {
    /// The limiters for `limits`, measuring time on the process clock.
    /// `registrations`: the per-IP limit of dynamic client registration,
    /// when it is on.
    pub(crate) fn new(
        limits: &RateLimits,
        registrations: Option<Limit>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EndpointConfigError> {
        let ticks = Ticks(clock);
        Ok(Self {
            per_ip: Rate::configured(limits.requests_per_ip, &ticks)?,
            per_client: Rate::configured(limits.requests_per_client, &ticks)?,
            registrations: Rate::configured(registrations, &ticks)?,
            client_auth: Strikes::configured(limits.failed_client_auth_per_ip)?,
            password_user: Strikes::configured(limits.failed_passwords_per_user)?,
            password_ip: Strikes::configured(limits.failed_passwords_per_ip)?,
            ticks,
            checks: AtomicU32::new(0),
        })
    }

    /// A request arrived from `ip`.
    pub(crate) fn request(&self, ip: Option<IpAddr>) -> Result<(), TokenError> {
        self.sweep();
        match (&self.per_ip, ip) {
            (Some(rate), Some(ip)) => rate.take(&ip_key(ip)).map_err(too_many),
            _ => Ok(()),
        }
    }

    /// A client registration (RFC 7591) from `ip`.
    pub(crate) fn registration(&self, ip: Option<IpAddr>) -> Result<(), TokenError> {
        match (&self.registrations, ip) {
            (Some(rate), Some(ip)) => rate.take(&ip_key(ip)).map_err(too_many),
            _ => Ok(()),
        }
    }

    /// `client_id` authenticated from `ip`. A public client has no secret,
    /// so anyone can speak as it: its requests count per source IP, or one
    /// caller could use up the limit of every user of the client.
    pub(crate) fn client(
        &self,
        client_id: &str,
        confidential: bool,
        ip: Option<IpAddr>,
    ) -> Result<(), TokenError> {
        match &self.per_client {
            Some(rate) => {
                let ip = ip.filter(|_| !confidential).map(ip_key);
                rate.take(&(client_id.to_owned(), ip)).map_err(too_many)
            }
            None => Ok(()),
        }
    }

    /// Whether `ip` may try to authenticate a client now.
    pub(crate) fn client_auth_allowed(&self, ip: Option<IpAddr>) -> Result<(), TokenError> {
        match (&self.client_auth, ip) {
            (Some(s), Some(ip)) => s.blocked(&ip_key(ip), self.now()).map_err(too_many),
            _ => Ok(()),
        }
    }

    /// A client authentication from `ip` failed.
    pub(crate) fn client_auth_failed(&self, ip: Option<IpAddr>) {
        if let (Some(s), Some(ip)) = (&self.client_auth, ip) {
            s.failed(ip_key(ip), self.now());
        }
    }

    /// Takes a password attempt for `user` from `ip` into both lockouts,
    /// or refuses it if either is blocked (then neither counts it).
    pub(crate) fn password_attempt(
        &self,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Result<PasswordAttempt, TokenError> {
        let now = self.now();
        let user = match &self.password_user {
            Some(s) => {
                let key = user_key(user);
                s.strike(key, now).map_err(too_many)?;
                Some(key)
            }
            None => None,
        };
        let attempt = PasswordAttempt {
            user,
            ip: ip.filter(|_| self.password_ip.is_some()).map(ip_key),
        };
        if let (Some(s), Some(ip)) = (&self.password_ip, attempt.ip)
            && let Err(wait) = s.strike(ip, now)
        {
            if let (Some(s), Some(key)) = (&self.password_user, attempt.user) {
                s.forgive(key);
            }
            return Err(too_many(wait));
        }
        Ok(attempt)
    }

    /// The attempt's password was right (or was never judged): its strikes
    /// are given back.
    #[allow(clippy::needless_pass_by_value)] // consumed: forgiven once
    pub(crate) fn password_forgiven(&self, attempt: PasswordAttempt) {
        if let (Some(s), Some(key)) = (&self.password_user, attempt.user) {
            s.forgive(key);
        }
        if let (Some(s), Some(ip)) = (&self.password_ip, attempt.ip) {
            s.forgive(ip);
        }
    }

    /// Now and then, drops keys whose state is back to fresh, so memory
    /// follows the keys seen recently rather than all keys ever seen.
    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY != SWEEP_EVERY - 1 {
            return;
        }
        if let Some(r) = &self.per_ip {
            r.limiter.retain_recent();
        }
        if let Some(r) = &self.per_client {
            r.limiter.retain_recent();
        }
        if let Some(r) = &self.registrations {
            r.limiter.retain_recent();
        }
    }

    fn now(&self) -> Duration {
        clock::Clock::now(&self.ticks)
    }
}

fn too_many(wait: Duration) -> TokenError {
    // Whole seconds, rounded up, at least one (RFC 9110 §10.2.3).
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    TokenError::TooManyRequests {
        retry_after: secs.max(1),
    }
}

/// IPv4 as is (also when mapped into IPv6); IPv6 by its /64, the block one
/// subscriber usually holds whole.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// A username as a lockout key: the SHA-256 of its lower-cased form, so
/// `Alice` and `alice` share a count and every key has the same size.
type UserKey = [u8; 32];

fn user_key(user: &str) -> UserKey {
    hash_token(&user.to_lowercase())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::time::{ManualClock, SystemClock};

    fn limiters(limits: &RateLimits) -> (Limiters, ManualClock) {
        let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        (
            Limiters::new(limits, None, Arc::new(clock.clone())).unwrap(),
            clock,
        )
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn requests_per_ip_burst_then_refill() {
        let (l, clock) = limiters(&RateLimits::none().requests_per_ip(Limit::per_second(3)));
        for _ in 0..3 {
            l.request(A).unwrap();
        }
        assert_eq!(
            l.request(A),
            Err(TokenError::TooManyRequests { retry_after: 1 })
        );
        l.request(B).unwrap();
        l.request(None).unwrap();
        clock.advance(Duration::from_millis(334));
        l.request(A).unwrap();
        assert!(l.request(A).is_err());
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let (l, _) = limiters(&RateLimits::none().requests_per_ip(Limit::per_minute(1)));
        l.request(Some("2001:db8:1:2::1".parse().unwrap())).unwrap();
        assert!(
            l.request(Some("2001:db8:1:2:ffff::9".parse().unwrap()))
                .is_err()
        );
        l.request(Some("2001:db8:1:3::1".parse().unwrap())).unwrap();
        l.request(Some("::ffff:192.0.2.1".parse().unwrap()))
            .unwrap();
        assert!(l.request(A).is_err());
    }

    #[test]
    fn password_failures_lock_the_user_whatever_the_case_then_one_try_per_period() {
        let (l, clock) = limiters(
            &RateLimits::none().failed_passwords_per_user(Limit::new(3, Duration::from_secs(60))),
        );
        for user in ["alice", "Alice", "ALICE"] {
            // Each attempt counts as it starts; these are never forgiven.
            let _failed = l.password_attempt(user, A).unwrap();
        }
        assert_eq!(
            l.password_attempt("aLiCe", B).unwrap_err(),
            TokenError::TooManyRequests { retry_after: 20 }
        );
        let _ = l.password_attempt("bob", A).unwrap();
        clock.advance(Duration::from_secs(19));
        assert!(l.password_attempt("alice", A).is_err());
        clock.advance(Duration::from_secs(1));
        let _failed = l.password_attempt("alice", A).unwrap();
        assert!(l.password_attempt("alice", A).is_err());
    }

    #[test]
    fn a_right_password_gives_its_strikes_back() {
        let (l, _) = limiters(
            &RateLimits::none()
                .failed_passwords_per_user(Limit::new(2, Duration::from_secs(60)))
                .failed_passwords_per_ip(Limit::new(2, Duration::from_secs(60))),
        );
        for _ in 0..10 {
            let attempt = l.password_attempt("alice", A).unwrap();
            l.password_forgiven(attempt);
        }
        let _failed = l.password_attempt("alice", A).unwrap();
        let _failed = l.password_attempt("alice", A).unwrap();
        assert!(l.password_attempt("alice", A).is_err());
    }

    #[test]
    fn an_attempt_refused_by_the_address_is_not_counted_against_the_user() {
        let (l, _) = limiters(
            &RateLimits::none()
                .failed_passwords_per_user(Limit::new(2, Duration::from_secs(60)))
                .failed_passwords_per_ip(Limit::new(1, Duration::from_secs(60))),
        );
        let _failed = l.password_attempt("bob", A).unwrap();
        // A is blocked now; alice's count must not move for it.
        for _ in 0..5 {
            assert!(l.password_attempt("alice", A).is_err());
        }
        let _failed = l.password_attempt("alice", B).unwrap();
        let _failed = l
            .password_attempt("alice", Some("192.0.2.9".parse().unwrap()))
            .unwrap();
        assert!(
            l.password_attempt("alice", Some("192.0.2.10".parse().unwrap()))
                .is_err()
        );
    }

    #[test]
    fn concurrent_attempts_count_against_the_limit_as_they_start() {
        let (l, _) = limiters(
            &RateLimits::none().failed_passwords_per_user(Limit::new(5, Duration::from_secs(900))),
        );
        let l = Arc::new(l);
        let barrier = Arc::new(std::sync::Barrier::new(20));
        let admitted: usize = (0..20)
            .map(|_| {
                let (l, barrier) = (Arc::clone(&l), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    usize::from(l.password_attempt("alice", A).is_ok())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn client_auth_failures_block_only_that_ip() {
        let (l, _) = limiters(&RateLimits::none().failed_client_auth_per_ip(Limit::per_minute(2)));
        for _ in 0..2 {
            l.client_auth_allowed(A).unwrap();
            l.client_auth_failed(A);
        }
        assert!(l.client_auth_allowed(A).is_err());
        l.client_auth_allowed(B).unwrap();
        l.client_auth_allowed(None).unwrap();
    }

    #[test]
    fn zero_limits_are_refused_and_none_means_unlimited() {
        assert!(
            Limiters::new(
                &RateLimits::none().requests_per_ip(Limit::per_second(0)),
                None,
                Arc::new(SystemClock)
            )
            .is_err()
        );
        assert!(
            Limiters::new(
                &RateLimits::none().requests_per_ip(Limit::new(1, Duration::ZERO)),
                None,
                Arc::new(SystemClock)
            )
            .is_err()
        );
        let l = Limiters::new(&RateLimits::none(), None, Arc::new(SystemClock)).unwrap();
        l.registration(A).unwrap();
        for _ in 0..10_000 {
            l.request(A).unwrap();
            l.client("c", true, A).unwrap();
            let _failed = l.password_attempt("alice", A).unwrap();
            l.client_auth_failed(A);
        }
        l.client_auth_allowed(A).unwrap();
    }
}
