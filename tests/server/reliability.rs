//! Fault scenarios over real HTTP, per backend: what legitimate clients do
//! to rotation (race, fall generations behind, lose responses, share a
//! cookie jar across tabs, lose the store mid-rotation) and what thieves
//! do, each run against a fresh session, tallied for false logouts, forks
//! and thieves let in.
//!
//! Time is the harness's manual clock (a run "minutes later" takes no
//! minutes); the concurrency is real. `TOLLGATE_RELIABILITY_RUNS` sets the
//! runs per scenario and client (default 10 here; `scripts/reliability`
//! runs 1,000 and prints the table RELIABILITY.md publishes).
//!
//! Targets, asserted: no false logout and no fork for sessions bound to
//! their client in (a)–(d) and (f); every thief refused in (e), and the
//! session killed where the rules say so. An unbound public client's
//! stale token after the short window is reuse by the rules (its replay
//! cannot be told from a thief's): the table shows those kills apart.

use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, UNIX_EPOCH},
};

use entity::{refresh_token, token_family};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use tokio::io::AsyncWriteExt;
use tollgate::{
    dpop::Dpop,
    refresh::{DEFAULT_BOUND_REUSE_GRACE, RefreshPolicy},
    store::clients::NewClient,
    time::Clock,
    token_endpoint::{BrowserClient, TokenEndpoint},
};

use crate::common::{
    dpop::{ProofKey, claims as proof_claims},
    store::{Backend, Harness, harness, per_backend},
};

const TOKEN_URL: &str = "https://auth.example/token";
const APP: &str = "https://app.example";
const COOKIE: &str = "__Host-tollgate_refresh";

/// How the session is bound to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `web`: authenticates with its secret.
    Confidential,
    /// `spa` with a DPoP key: every refresh proves it.
    Dpop,
    /// `spa` without: nothing proves who replays.
    Public,
}

impl Kind {
    fn bound(self) -> bool {
        self != Self::Public
    }

    fn name(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Dpop => "DPoP-bound public",
            Self::Public => "unbound public",
        }
    }
}

/// One run's verdict.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    runs: u32,
    /// A legitimate holder ended with no working token although the rules
    /// say its session lives.
    false_logouts: u32,
    /// Two live tokens in one session, or two answers of one generation
    /// with different tokens.
    forks: u32,
    /// A thief got a token.
    thieves_admitted: u32,
    /// Sessions killed, as the rules say (reuse) — counted, and checked
    /// to happen exactly when expected.
    killed: u32,
    /// The session's fate differed from the rules (killed when it should
    /// live, or alive when it should die).
    wrong_fate: u32,
    /// Answers `503` (the store was gone) that the client retried: how
    /// often (f)'s fault really hit a request.
    retried_503: u32,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.runs += o.runs;
        self.false_logouts += o.false_logouts;
        self.forks += o.forks;
        self.thieves_admitted += o.thieves_admitted;
        self.killed += o.killed;
        self.wrong_fate += o.wrong_fate;
        self.retried_503 += o.retried_503;
    }
}

/// The endpoint over a socket: `web`, `spa` (DPoP on), `tabs` (a browser
/// client of [`APP`]).
struct Lane {
    h: Harness,
    url: String,
    addr: SocketAddr,
    http: reqwest::Client,
    rng: std::cell::Cell<u64>,
}

struct Answer {
    status: u16,
    json: serde_json::Value,
    set_cookie: Option<String>,
}

impl Answer {
    fn refresh_token(&self) -> Option<String> {
        self.json["refresh_token"].as_str().map(str::to_owned)
    }

    fn cookie_token(&self) -> Option<String> {
        let v = self.set_cookie.as_deref()?;
        let rest = v.strip_prefix(&format!("{COOKIE}="))?;
        Some(rest.split(';').next()?.to_owned()).filter(|t| !t.is_empty())
    }
}

impl Lane {
    async fn new(b: Backend, seed: u64, policy: RefreshPolicy) -> Self {
        let h = harness(b, policy).await;
        let now = h.clock.now();
        let mut tabs = NewClient::public("tabs", "read");
        tabs.allow_password = true;
        tollgate::store::clients::register(&h.db, tabs, now)
            .await
            .unwrap();
        let endpoint = TokenEndpoint::builder(h.issuer.clone())
            .password_verifier(|user: String, password: String| async move {
                Ok((user == "alice" && password == "wonderland").then_some(user))
            })
            .dpop(Dpop::builder().build().unwrap())
            .browser_client("tabs", BrowserClient::new([APP]))
            .janitor_elsewhere()
            .build()
            .unwrap();
        let app = axum::Router::new().route_service("/token", endpoint);
        let addr = crate::common::serve(app).await;
        Self {
            h,
            url: format!("http://{addr}/token"),
            addr,
            http: reqwest::Client::new(),
            rng: std::cell::Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }
    }

    /// A pseudo-random number below `n` (xorshift: reproducible per seed).
    fn below(&self, n: u64) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x % n.max(1)
    }

    fn proof(&self, key: &ProofKey) -> String {
        let mut c = proof_claims("POST", TOKEN_URL, None);
        c["iat"] = self
            .h
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .into();
        key.sign(&c)
    }

    async fn post(&self, body: String, headers: &[(&str, String)]) -> Answer {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let set_cookie = res
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let json = res.json().await.unwrap_or_default();
        Answer {
            status,
            json,
            set_cookie,
        }
    }

    fn refresh_form(&self, kind: Kind, token: &str) -> String {
        match kind {
            Kind::Confidential => format!(
                "grant_type=refresh_token&refresh_token={token}&client_id=web&client_secret={}",
                self.h.web_secret
            ),
            _ => format!("grant_type=refresh_token&client_id=spa&refresh_token={token}"),
        }
    }

    /// A refresh by the session's own client (with its key, for DPoP).
    async fn refresh(&self, kind: Kind, key: &ProofKey, token: &str) -> Answer {
        let headers = match kind {
            Kind::Dpop => vec![("dpop", self.proof(key))],
            _ => Vec::new(),
        };
        self.post(self.refresh_form(kind, token), &headers).await
    }

    async fn login(&self, kind: Kind, key: &ProofKey) -> String {
        let a = match kind {
            Kind::Confidential => {
                self.post(
                    format!(
                        "grant_type=password&username=alice&password=wonderland&client_id=web&client_secret={}",
                        self.h.web_secret
                    ),
                    &[],
                )
                .await
            }
            Kind::Dpop => {
                self.post(
                    "grant_type=password&client_id=spa&username=alice&password=wonderland".into(),
                    &[("dpop", self.proof(key))],
                )
                .await
            }
            Kind::Public => {
                self.post(
                    "grant_type=password&client_id=spa&username=alice&password=wonderland".into(),
                    &[],
                )
                .await
            }
        };
        assert_eq!(a.status, 200, "{}", a.json);
        a.refresh_token().unwrap()
    }

    /// The session of `token`: whether it was revoked, and how many of its
    /// tokens are live (more than one is a fork).
    async fn session(&self, token: &str) -> (bool, usize) {
        let hash = tollgate::secret::hash_token(token).to_vec();
        let t = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .one(&self.h.db)
            .await
            .unwrap()
            .expect("a token the server issued");
        let f = token_family::Entity::find_by_id(t.family_id.clone())
            .one(&self.h.db)
            .await
            .unwrap()
            .unwrap();
        let live = refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(t.family_id))
            .filter(refresh_token::Column::ConsumedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .all(&self.h.db)
            .await
            .unwrap()
            .len();
        (f.revoked_at.is_some(), live)
    }

    /// The verdict on a session the legitimate holder left at `last`:
    /// `should_live` says what the rules want.
    async fn judge(&self, kind: Kind, key: &ProofKey, last: &str, should_live: bool) -> Tally {
        let (revoked, live) = self.session(last).await;
        let mut t = Tally {
            runs: 1,
            forks: u32::from(live > 1),
            killed: u32::from(revoked),
            wrong_fate: u32::from(revoked == should_live),
            ..Tally::default()
        };
        if should_live {
            let next = self.refresh(kind, key, last).await;
            t.false_logouts = u32::from(next.status != 200);
        }
        t
    }
}

/// (a) Five holders present one token at random moments within a second.
async fn five_holders(lane: &Lane, kind: Kind) -> Tally {
    let key = ProofKey::es256();
    let token = lane.login(kind, &key).await;
    let mut moments: Vec<u64> = (0..5).map(|_| lane.below(1000)).collect();
    moments.sort_unstable();
    // The clock moves to each holder's moment as it fires; the requests
    // themselves are in flight at once.
    let holder = |i: usize| {
        let step = moments[i] - if i == 0 { 0 } else { moments[i - 1] };
        let (key, token) = (&key, &token);
        async move {
            for _ in 0..i {
                tokio::task::yield_now().await;
            }
            lane.h.clock.advance(Duration::from_millis(step));
            lane.refresh(kind, key, token).await
        }
    };
    let (a0, a1, a2, a3, a4) = tokio::join!(holder(0), holder(1), holder(2), holder(3), holder(4));
    let answers = [a0, a1, a2, a3, a4];
    let tokens: HashSet<Option<String>> = answers.iter().map(Answer::refresh_token).collect();
    let mut t = if answers.iter().all(|a| a.status == 200) && tokens.len() == 1 {
        let last = answers[0].refresh_token().unwrap();
        lane.judge(kind, &key, &last, true).await
    } else {
        Tally {
            runs: 1,
            false_logouts: u32::from(answers.iter().any(|a| a.status != 200)),
            ..Tally::default()
        }
    };
    t.forks += u32::from(tokens.len() > 1);
    t
}

/// (b) A holder three generations behind presents its token 8 s later,
/// past the short window; the up-to-date holder carries on.
async fn three_behind(lane: &Lane, kind: Kind) -> Tally {
    let key = ProofKey::es256();
    let stale = lane.login(kind, &key).await;
    let mut head = stale.clone();
    for _ in 0..3 {
        lane.h.clock.advance(Duration::from_millis(500));
        head = lane
            .refresh(kind, &key, &head)
            .await
            .refresh_token()
            .unwrap();
    }
    lane.h.clock.advance(Duration::from_secs(8));
    let a = lane.refresh(kind, &key, &stale).await;
    let answered_head = a.status == 200 && a.refresh_token().as_deref() == Some(head.as_str());
    let mut t = lane.judge(kind, &key, &head, kind.bound()).await;
    if kind.bound() && !answered_head {
        t.false_logouts = 1;
    }
    t.forks += u32::from(a.status == 200 && !answered_head);
    t
}

/// (c) The client closes the connection before reading the rotation's
/// answer, then retries the old token seconds or minutes later.
async fn lost_response(lane: &Lane, kind: Kind, run: u32) -> Tally {
    let key = ProofKey::es256();
    let old = lane.login(kind, &key).await;
    let body = lane.refresh_form(kind, &old);
    let dpop = match kind {
        Kind::Dpop => format!("dpop: {}\r\n", lane.proof(&key)),
        _ => String::new(),
    };
    let mut stream = tokio::net::TcpStream::connect(lane.addr).await.unwrap();
    let request = format!(
        "POST /token HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\n{dpop}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        lane.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Hang up once the rotation has committed, before reading a byte of
    // its answer: the response really is lost. Polling the store, bounded,
    // not a fixed sleep.
    let mut committed = false;
    for _ in 0..5000 {
        if lane.consumed(&old).await {
            committed = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(committed, "the rotation never committed");
    drop(stream);
    let delay = [3, 90, 600][run as usize % 3];
    lane.h.clock.advance(Duration::from_secs(delay));
    let a = lane.refresh(kind, &key, &old).await;
    let within = kind.bound() || delay < 5;
    match a.refresh_token() {
        Some(last) => {
            let mut t = lane.judge(kind, &key, &last, true).await;
            t.wrong_fate += u32::from(!within);
            t
        }
        None => {
            let mut t = lane.judge(kind, &key, &old, false).await;
            t.false_logouts = u32::from(within);
            t.wrong_fate = u32::from(within);
            t
        }
    }
}

impl Lane {
    async fn consumed(&self, token: &str) -> bool {
        let hash = tollgate::secret::hash_token(token).to_vec();
        refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .one(&self.h.db)
            .await
            .unwrap()
            .is_some_and(|t| t.consumed_at.is_some())
    }

    async fn tab(&self, cookie: &str) -> Answer {
        self.post(
            "grant_type=refresh_token&client_id=tabs".into(),
            &[
                ("origin", APP.into()),
                ("x-requested-with", "fetch".into()),
                ("cookie", format!("{COOKIE}={cookie}")),
            ],
        )
        .await
    }
}

/// (d) Two tabs of one browser refresh with the one cookie within 20 ms.
async fn two_tabs(lane: &Lane) -> Tally {
    let login = lane
        .post(
            "grant_type=password&client_id=tabs&username=alice&password=wonderland".into(),
            &[("origin", APP.into()), ("x-requested-with", "fetch".into())],
        )
        .await;
    let cookie = login.cookie_token().unwrap();
    let gap = lane.below(20);
    let (first, second) = tokio::join!(lane.tab(&cookie), async {
        tokio::task::yield_now().await;
        lane.h.clock.advance(Duration::from_millis(gap));
        lane.tab(&cookie).await
    });
    let mut t = Tally {
        runs: 1,
        ..Tally::default()
    };
    if first.status != 200 || second.status != 200 {
        t.false_logouts = 1;
        return t;
    }
    t.forks = u32::from(first.set_cookie != second.set_cookie);
    // Whichever the jar kept, it works.
    let kept = if gap.is_multiple_of(2) { first } else { second };
    let jar = kept.cookie_token().unwrap();
    let (revoked, live) = lane.session(&jar).await;
    t.forks += u32::from(live > 1);
    t.wrong_fate = u32::from(revoked);
    t.false_logouts = u32::from(lane.tab(&jar).await.status != 200);
    t
}

/// (e) A thief replays an old token from another device after the window;
/// for a DPoP-bound session, also a thief without the key within it.
async fn thief(lane: &Lane, kind: Kind, within: bool) -> Tally {
    let key = ProofKey::es256();
    let old = lane.login(kind, &key).await;
    let head = lane
        .refresh(kind, &key, &old)
        .await
        .refresh_token()
        .unwrap();
    let window = if kind.bound() && !within {
        DEFAULT_BOUND_REUSE_GRACE
    } else if within {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    lane.h.clock.advance(if within {
        window
    } else {
        window + Duration::from_secs(1)
    });
    let stolen_with = ProofKey::es256();
    let mut headers = vec![("user-agent", "Thief/1.0".to_owned())];
    if kind == Kind::Dpop {
        headers.push(("dpop", lane.proof(&stolen_with)));
    }
    let a = lane.post(lane.refresh_form(kind, &old), &headers).await;
    let mut t = lane.judge(kind, &key, &head, within).await;
    t.thieves_admitted = u32::from(a.status == 200);
    t
}

/// (f) The store kills every connection of the session's database while
/// refreshes are under way; clients retry what failed.
async fn store_killed(lane: &Lane, kind: Kind) -> Tally {
    let key = ProofKey::es256();
    let mut token = lane.login(kind, &key).await;
    let kill = match lane.h.db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()"
        }
        _ => unreachable!("only servers are killed"),
    };
    let mut t = Tally {
        runs: 1,
        ..Tally::default()
    };
    for _ in 0..3 {
        let killer = async {
            for _ in 0..lane.below(3) {
                tokio::task::yield_now().await;
            }
            // The killer's own connection may be among the killed.
            let _ = lane
                .h
                .db
                .execute_raw(Statement::from_string(DbBackend::Postgres, kill))
                .await;
        };
        let (a, ()) = tokio::join!(lane.refresh(kind, &key, &token), killer);
        let mut a = a;
        // A client retries a 503 with the same token, as RFC 6749 clients do.
        for _ in 0..20 {
            if a.status != 503 {
                break;
            }
            t.retried_503 += 1;
            a = lane.refresh(kind, &key, &token).await;
        }
        match a.refresh_token() {
            Some(next) => token = next,
            None => {
                t.false_logouts = 1;
                return t;
            }
        }
    }
    let mut judged = lane.judge(kind, &key, &token, true).await;
    judged.retried_503 = t.retried_503;
    judged
}

fn runs() -> u32 {
    std::env::var("TOLLGATE_RELIABILITY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Runs every scenario `runs` times on `b`, prints the table rows, and
/// asserts the targets.
async fn all_scenarios(b: Backend) {
    // The baseline the table compares with: the same scenarios under the
    // short rule only (the immediate parent for a few seconds, what
    // tollgate did before and strict rotation does), measured by
    // `scripts/reliability`, not asserted.
    let baseline = std::env::var_os("TOLLGATE_RELIABILITY_BASELINE").is_some();
    let policy = if baseline {
        RefreshPolicy {
            bound_grace: Duration::ZERO,
            ..RefreshPolicy::default()
        }
    } else {
        RefreshPolicy::default()
    };
    let backend = if baseline {
        format!("{}, short rule only", b.name)
    } else {
        b.name.to_owned()
    };
    let postgres = b.db.get_database_backend() == DbBackend::Postgres;
    let lane = Lane::new(b, 7, policy).await;
    let n = runs();
    let kinds = [Kind::Confidential, Kind::Dpop, Kind::Public];
    let mut rows: Vec<(&str, &str, Tally)> = Vec::new();
    for kind in kinds {
        let mut t = Tally::default();
        for _ in 0..n {
            t.add(five_holders(&lane, kind).await);
        }
        rows.push(("(a) five holders within 1 s", kind.name(), t));
    }
    for kind in kinds {
        let mut t = Tally::default();
        for _ in 0..n {
            t.add(three_behind(&lane, kind).await);
        }
        rows.push(("(b) 3 generations behind, 8 s later", kind.name(), t));
    }
    for kind in kinds {
        let mut t = Tally::default();
        for run in 0..n {
            t.add(lost_response(&lane, kind, run).await);
        }
        rows.push((
            "(c) lost response, retried 3 s / 90 s / 10 min later",
            kind.name(),
            t,
        ));
    }
    let mut t = Tally::default();
    for _ in 0..n {
        t.add(two_tabs(&lane).await);
    }
    rows.push((
        "(d) two tabs, one cookie jar, within 20 ms",
        "browser (public)",
        t,
    ));
    for kind in kinds {
        let mut t = Tally::default();
        for _ in 0..n {
            t.add(thief(&lane, kind, false).await);
        }
        rows.push(("(e) thief replays after the window", kind.name(), t));
    }
    let mut t = Tally::default();
    for _ in 0..n {
        t.add(thief(&lane, Kind::Dpop, true).await);
    }
    rows.push((
        "(e) thief without the key, within the window",
        Kind::Dpop.name(),
        t,
    ));
    if postgres {
        for kind in [Kind::Confidential, Kind::Dpop] {
            let mut t = Tally::default();
            for _ in 0..n {
                t.add(store_killed(&lane, kind).await);
            }
            rows.push(("(f) connections killed mid-rotation", kind.name(), t));
        }
    }
    for (scenario, client, t) in &rows {
        println!(
            "| {backend} | {scenario} | {client} | {} | {} | {} | {} | {} | {} | {} |",
            t.runs,
            t.false_logouts,
            t.forks,
            t.thieves_admitted,
            t.killed,
            t.wrong_fate,
            t.retried_503
        );
    }
    if baseline {
        return;
    }
    for (scenario, client, t) in &rows {
        let what = format!("{backend} {scenario} {client}: {t:?}");
        assert_eq!(t.runs, n, "{what}");
        assert_eq!(t.forks, 0, "{what}");
        assert_eq!(t.thieves_admitted, 0, "{what}");
        assert_eq!(t.wrong_fate, 0, "{what}");
        if !client.starts_with("unbound") {
            assert_eq!(t.false_logouts, 0, "{what}");
        }
    }
}

per_backend! {
    serializable;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_scenarios(b) {
        all_scenarios(b).await;
    }
}
