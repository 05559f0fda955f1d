//! The reliability suite: the token lifecycle under concurrency and faults, with figures.
//!
//! Each scenario starts from a connected account whose access token has expired, so the next
//! action must renew it. Figures (token calls, successes, final health) go to
//! `$CARGO_TARGET_DIR/reports/reliability-*.md`, which `infra/test` prints.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::Store;
use homehook_local::SqliteStore;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor, TokenFault};
use homehook_tests::faulty_store::FaultyStore;
use homehook_tests::harness::{Homehook, T0, World, secrets_for, write_report};
use homehook_tests::webhook_sink::WebhookSink;
use serde_json::json;

/// A Netatmo-shaped connection against the generic fake (rotating refresh tokens, 3 h access
/// tokens), one read action, notifications to `hook`.
fn config(vendor: &str, vendor_timeout_secs: u64) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"
vendor_timeout_secs = {vendor_timeout_secs}

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"
# These suites measure token calls under a thousand concurrent actions; the API budget
# (50 per 10 s) and the action's rate limit are tested elsewhere (tests/tests/attacks.rs).
api_budget = []

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[notify]
secret = "hook"
format = "json"
failing_after = 2

[actions.temperature]
connection = "home"
path = "/api/getstationsdata"
answer = "Living room {{{{ data.body.devices[0].dashboard_data.Temperature }}}} °C"
key_hash = "{{key}}"
rate_limit = {{ burst = 5000, per_minute = 60000 }}
"#
    )
}

fn report(name: &str, title: &str, header: &str, rows: &[String]) {
    let mut text = format!("### {title}\n\n{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    write_report(&format!("reliability-{name}"), &text);
}

struct Setup {
    w: World<FakeVendor>,
    sink: WebhookSink,
    store: Arc<FaultyStore>,
    dir: tempfile::TempDir,
    settings: FakeSettings,
}

/// homehook on SQLite (behind a [`FaultyStore`]) beside the fake, connected, then 4 hours
/// later: the access token has expired.
async fn connected(vendor_timeout_secs: u64) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open_in(dir.path()).expect("sqlite"));
    let store = Arc::new(FaultyStore::new(sqlite));
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let sink = WebhookSink::start().await;
    homehook_tests::leak_watch::issued("webhook_signing_key", "whsec-test");
    let secrets = secrets_for("netatmo", &settings).with_entry(
        "hook",
        json!({ "url": sink.url, "signing_key": "whsec-test" }),
    );
    let text = config(&vendor.base, vendor_timeout_secs);
    let w = World::with_vendor(clock, vendor, &text, secrets, store.clone()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    w.clock.advance(4 * 3600);
    Setup {
        w,
        sink,
        store,
        dir,
        settings,
    }
}

/// Status and `Retry-After` of one action.
async fn act(w: &World<FakeVendor>) -> (u16, Option<String>) {
    let r = w.act("temperature", json!({})).await;
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), retry)
}

fn shown((status, retry): &(u16, Option<String>)) -> String {
    match retry {
        Some(r) => format!("{status}, Retry-After {r}"),
        None => status.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_actions_on_an_expired_token_make_one_token_call() {
    let s = connected(20).await;
    let before = s.w.vendor.token_calls();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let request =
            s.w.client
                .post(format!("{}/a/temperature", s.w.hh.base))
                .bearer_auth(s.w.keys.action.expose());
        calls.spawn(async move {
            let r = request.send().await.expect("act");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
    }
    let answers = calls.join_all().await;
    let ok = answers
        .iter()
        .filter(|(s, t)| *s == 200 && t.contains("21.4"))
        .count();
    let token_calls = s.w.vendor.token_calls() - before;
    let health = s.w.connection_status("home").await["health"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    report(
        "concurrency-sqlite",
        "1,000 concurrent actions on an expired token (SQLite, one process)",
        "| actions | token calls | successes | final health |\n|---|---|---|---|",
        &[format!("| 1000 | {token_calls} | {ok} | {health} |")],
    );
    assert_eq!(ok, 1000, "every action answered with the reading");
    assert_eq!(token_calls, 1, "one refresh for all of them");
    assert_eq!(health, "healthy");
    assert_eq!(s.w.vendor.live_refresh_tokens(), 1);
}

/// Two homehook instances on one SQLite file with 10-second access tokens (the two
/// `homehook serve` of a self-hoster): a burst of 200 actions on an expired token, 100 on
/// each, costs one token call, and steady traffic alternating between them one per lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_store_renew_a_ten_second_token_once_per_lifetime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        || -> Arc<dyn Store> { Arc::new(SqliteStore::open_in(dir.path()).expect("sqlite")) };
    let clock = ManualClock::new(T0);
    let settings = FakeSettings {
        access_ttl_secs: 10,
        ..FakeSettings::default()
    };
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let text = config(&vendor.base, 20);
    let w = World::with_vendor(
        clock.clone(),
        vendor,
        &text,
        secrets_for("netatmo", &settings),
        store(),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    let filled = text
        .replace("{admin}", &w.keys.admin.hash().to_string())
        .replace("{key}", &w.keys.action.hash().to_string());
    let second = Homehook::start(
        &filled,
        store(),
        secrets_for("netatmo", &settings),
        clock.clone(),
    )
    .await
    .expect("second instance");
    let bases = [w.hh.base.clone(), second.base.clone()];

    clock.advance(60);
    let before = w.vendor.token_calls();
    let mut calls = tokio::task::JoinSet::new();
    for base in &bases {
        for _ in 0..100 {
            let request = w
                .client
                .post(format!("{base}/a/temperature"))
                .bearer_auth(w.keys.action.expose());
            calls.spawn(async move { request.send().await.expect("act").status().as_u16() });
        }
    }
    let statuses = calls.join_all().await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let burst_calls = w.vendor.token_calls() - before;

    // Then one action a second for three lifetimes, alternating between the instances.
    let before = w.vendor.token_calls();
    let mut steady_ok = 0;
    for i in 0..30 {
        let r = w
            .client
            .post(format!("{}/a/temperature", bases[i % 2]))
            .bearer_auth(w.keys.action.expose())
            .send()
            .await
            .expect("act");
        steady_ok += usize::from(r.status() == 200);
        clock.advance(1);
    }
    let steady_calls = w.vendor.token_calls() - before;
    report(
        "short-tokens",
        "10-second access tokens, two instances on one SQLite file",
        "| traffic | actions | token calls | lifetimes with traffic | successes |\n|---|---|---|---|---|",
        &[
            format!(
                "| one burst on an expired token, 100 per instance | 200 | {burst_calls} | 1 | {ok} |"
            ),
            format!(
                "| one action a second, alternating, 30 s | 30 | {steady_calls} | 3 | {steady_ok} |"
            ),
        ],
    );
    assert_eq!(ok, 200, "{statuses:?}");
    assert_eq!(burst_calls, 1, "one renewal for both instances");
    assert_eq!(steady_ok, 30);
    assert_eq!(
        steady_calls, 3,
        "one renewal per lifetime, whichever instance renews"
    );
    assert_eq!(w.vendor.live_refresh_tokens(), 1);
}

/// One row of the fault matrix: what the caller saw, what it cost, how it ended.
struct Outcome {
    scenario: &'static str,
    first: String,
    token_calls: usize,
    successes: usize,
    attempts: usize,
    health: String,
    notified: Vec<String>,
    lost: bool,
}

impl Outcome {
    fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {}/{} | {} | {} | {} |",
            self.scenario,
            self.first,
            self.token_calls,
            self.successes,
            self.attempts,
            self.health,
            if self.notified.is_empty() {
                "-".to_string()
            } else {
                self.notified.join(", ")
            },
            if self.lost { "LOST" } else { "kept" },
        )
    }
}

/// A transient fault on the token endpoint: the caller gets 503 with a retry time, the
/// tokens are kept, and after that time the next action works with one more token call.
async fn transient(scenario: &'static str, fault: TokenFault, timeout: u64, wait: i64) -> Outcome {
    let s = connected(timeout).await;
    let before = s.w.vendor.token_calls();
    s.w.vendor.fail_token_calls(fault, 1);
    let first = act(&s.w).await;
    assert_eq!(first.0, 503, "{scenario}: {first:?}");
    let again = act(&s.w).await;
    assert_eq!(
        again.0, 503,
        "{scenario}: waits for its retry time without calling again"
    );
    s.w.clock.advance(wait);
    let last = act(&s.w).await;
    finish(
        &s,
        scenario,
        shown(&first),
        before,
        [first.0, again.0, last.0],
    )
    .await
}

async fn finish<const N: usize>(
    s: &Setup,
    scenario: &'static str,
    first: String,
    before: usize,
    statuses: [u16; N],
) -> Outcome {
    let status = s.w.connection_status("home").await;
    let health = status["health"].as_str().unwrap_or("?").to_string();
    let lost = health != "healthy" || s.w.vendor.live_refresh_tokens() != 1;
    Outcome {
        scenario,
        first,
        token_calls: s.w.vendor.token_calls() - before,
        successes: statuses.iter().filter(|c| **c == 200).count(),
        attempts: N,
        health,
        notified: s
            .sink
            .received()
            .iter()
            .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
            .collect(),
        lost,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_matrix_loses_no_connection() {
    let mut rows = Vec::new();
    rows.push(transient("token endpoint 500", TokenFault::Status(500), 20, 61).await);
    rows.push(
        transient(
            "timeout (vendor answers after 3 s, homehook waits 1 s)",
            TokenFault::Hang(3000),
            1,
            61,
        )
        .await,
    );
    rows.push(transient("connection reset mid-answer", TokenFault::Reset, 20, 61).await);
    rows.push(
        transient(
            "429 with Retry-After: 120",
            TokenFault::RateLimited(120),
            20,
            120,
        )
        .await,
    );
    rows.push(
        transient(
            "malformed JSON (HTML from a proxy)",
            TokenFault::Malformed,
            20,
            61,
        )
        .await,
    );
    rows.push(outage().await);
    rows.push(invalid_grant().await);
    rows.push(late_rotation().await);
    rows.push(store_failure("store write fails twice after the rotation", 2).await);
    rows.push(
        store_failure(
            "store write fails 5 times after the rotation (all retries)",
            5,
        )
        .await,
    );
    report(
        "faults",
        "Fault matrix on the token endpoint (SQLite; each starts from an expired access token)",
        "| fault | first answer to the caller | token calls | successes | final health | owner notified | connection |\n|---|---|---|---|---|---|---|",
        &rows.iter().map(Outcome::row).collect::<Vec<_>>(),
    );
    for r in &rows {
        assert!(
            !r.lost,
            "{}: the connection was lost: {}",
            r.scenario,
            r.row()
        );
    }
}

/// The token endpoint is down for a while: the owner hears once that it keeps failing (after
/// `failing_after` = 2 failures in a row), and once that it works again.
async fn outage() -> Outcome {
    let s = connected(20).await;
    let before = s.w.vendor.token_calls();
    s.w.vendor.fail_token_calls(TokenFault::Status(503), 3);
    let first = act(&s.w).await;
    let mut statuses = [first.0, 0, 0, 0];
    for status in statuses.iter_mut().skip(1) {
        s.w.clock.advance(61);
        *status = act(&s.w).await.0;
    }
    assert_eq!(statuses, [503, 503, 503, 200]);
    let events: Vec<String> = s
        .sink
        .received()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        events,
        ["failing", "recovered"],
        "told once that it keeps failing, once that it works"
    );
    finish(
        &s,
        "token endpoint down for 3 attempts (503)",
        shown(&first),
        before,
        statuses,
    )
    .await
}

/// The vendor really refuses the refresh token (revoked): the connection is marked, the owner
/// told once with the reconnect link, nothing else called; after reconnecting it works and
/// the owner hears that too.
async fn invalid_grant() -> Outcome {
    let s = connected(20).await;
    let before = s.w.vendor.token_calls();
    s.w.vendor.revoke_refresh_tokens();
    let first = act(&s.w).await;
    assert_eq!(first.0, 409, "{first:?}");
    assert_eq!(act(&s.w).await.0, 409, "marked: no second token call");
    assert_eq!(s.w.vendor.token_calls() - before, 1);
    let status = s.w.connection_status("home").await;
    assert_eq!(status["health"], "reauth_needed");
    assert_eq!(
        status["reconnect_url"],
        format!("{}/connect/home", s.w.hh.base)
    );
    let told = s.sink.received();
    assert_eq!(told.len(), 1, "told once");
    let n = &told[0];
    assert_eq!(n.json()["event"], "reauth_needed");
    assert_eq!(
        n.json()["reconnect_url"],
        format!("{}/connect/home", s.w.hh.base)
    );
    let ts: i64 = n.header("x-homehook-timestamp").unwrap().parse().unwrap();
    assert_eq!(
        n.header("x-homehook-signature").unwrap(),
        homehook_core::guard::signature::sign(b"whsec-test", ts, &n.body),
        "signed over timestamp and body"
    );
    assert!(!String::from_utf8_lossy(&n.body).contains("t0pic-s3cret"));
    // The owner reconnects.
    assert_eq!(s.w.connect("home").await.status(), 200);
    let last = act(&s.w).await;
    let told = s.sink.received();
    assert_eq!(told.last().unwrap().json()["event"], "recovered");
    let mut o = finish(
        &s,
        "invalid_grant (the owner revoked access at the vendor)",
        shown(&first),
        before,
        [first.0, 409, last.0],
    )
    .await;
    o.first = format!(
        "{} reauth_needed; after the owner reconnects: {}",
        first.0, last.0
    );
    o
}

/// A renewal whose answer (with a rotated refresh token) arrives after its lease lapsed, while
/// a second instance on the same store tried meanwhile with the old refresh token.
async fn late_rotation() -> Outcome {
    let s = connected(20).await;
    let before = s.w.vendor.token_calls();
    // A second, independent homehook on the same SQLite file.
    let other_store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_in(s.dir.path()).expect("second handle"));
    let secrets = secrets_for("netatmo", &s.settings).with_entry(
        "hook",
        json!({ "url": s.sink.url, "signing_key": "whsec-test" }),
    );
    let text = config(&s.w.vendor.base, 20)
        .replace("{admin}", &s.w.keys.admin.hash().to_string())
        .replace("{key}", &s.w.keys.action.hash().to_string());
    let b = Homehook::start(&text, other_store, secrets, s.w.clock.clone())
        .await
        .expect("second instance");

    s.w.vendor.fail_token_calls(TokenFault::HoldAnswer, 1);
    let a_call = {
        let request =
            s.w.client
                .post(format!("{}/a/temperature", s.w.hh.base))
                .bearer_auth(s.w.keys.action.expose());
        tokio::spawn(async move { request.send().await.expect("act").status().as_u16() })
    };
    while s.w.vendor.held_answers() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A's lease (vendor timeout + 10 s) lapses while its answer is held.
    s.w.clock.advance(31);
    let b_first =
        s.w.client
            .post(format!("{}/a/temperature", b.base))
            .bearer_auth(s.w.keys.action.expose())
            .send()
            .await
            .expect("act on B");
    let b_status = b_first.status().as_u16();
    assert_eq!(
        b_status, 503,
        "B's old refresh token is refused, but B does not give up the connection"
    );
    s.w.vendor.release_held_answer();
    let a_status = a_call.await.expect("A");
    assert_eq!(
        a_status, 200,
        "A stores its rotated tokens over B's verdict"
    );
    let b_again =
        s.w.client
            .post(format!("{}/a/temperature", b.base))
            .bearer_auth(s.w.keys.action.expose())
            .send()
            .await
            .expect("act on B")
            .status()
            .as_u16();
    assert_eq!(b_again, 200, "B uses A's tokens");
    finish(
        &s,
        "rotation answered after the lease lapsed (2 instances, one store)",
        format!("B: {b_status} while A's answer is late; A: {a_status}"),
        before,
        [a_status, b_status, b_again],
    )
    .await
}

/// The store refuses the write right after the vendor rotated the refresh token.
async fn store_failure(scenario: &'static str, failures: usize) -> Outcome {
    let s = connected(20).await;
    let before = s.w.vendor.token_calls();
    s.store.fail_renewal_writes(failures);
    let first = act(&s.w).await;
    assert_eq!(s.store.failed_writes(), failures);
    let second = act(&s.w).await;
    assert_eq!(second.0, 200, "{scenario}: {second:?}");
    assert_eq!(
        s.w.vendor.token_calls() - before,
        1,
        "{scenario}: the rotated tokens were not lost"
    );
    finish(&s, scenario, shown(&first), before, [first.0, second.0]).await
}
