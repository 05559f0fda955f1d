//! Scheduled actions against the Somfy Protect fake: "arm at 23:00 Europe/Paris on weekdays"
//! fires once per due time however many ticks run (two homehook processes on one SQLite file,
//! ticking at the same moment), shows its next run and last result in `/status`, skips days the
//! cron excludes, and a failed run is told to the owner and not retried.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::App;
use homehook_core::clock::ManualClock;
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_core::store::Store;
use homehook_local::SqliteStore;
use homehook_tests::fakes::somfy::{FakeSomfy, SITE};
use homehook_tests::harness::{T0, World, secrets_for};
use homehook_tests::webhook_sink::WebhookSink;
use serde_json::{Value, json};

/// T0 is Tuesday 2023-11-14, 23:13:20 in Paris; Wednesday's 23:00 there is 85,600 s later.
const WEDNESDAY_2300: i64 = 85_600;

fn config(api_base: &str, token_url: &str) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.somfy_protect]
token_url = "{token_url}"
api_base = "{api_base}"

[connections.alarm]
provider = "somfy_protect"
label = "Maison"
secret = "somfy"

[notify]
secret = "hook"

[actions.armed]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[schedules.night]
action = "armed"
cron = "0 23 * * mon-fri"
time_zone = "Europe/Paris"
summary = "Arm the alarm on weeknights"
"#
    )
}

struct Setup {
    w: World<FakeSomfy>,
    /// A second homehook process on the same SQLite file (a second `homehook serve`, or
    /// another Lambda instance).
    sibling: App,
    sink: WebhookSink,
    _dir: tempfile::TempDir,
}

fn secrets(
    settings: &homehook_tests::fake_vendor::FakeSettings,
    sink: &WebhookSink,
) -> LocalSecrets {
    secrets_for("somfy", settings).with_entry("hook", json!({ "url": sink.url }))
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in(dir.path()).unwrap());
    let clock = ManualClock::new(T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let sink = WebhookSink::start().await;
    let text = config(
        &fake.api_base(),
        &format!("{}/oauth/oauth/v2/token/jwt", fake.vendor.base),
    );
    let w = World::with_vendor(clock.clone(), fake, &text, secrets(&settings, &sink), store).await;
    let sibling = App::new(
        Services::new(
            (*w.hh.app.services.config).clone(),
            Arc::new(SqliteStore::open_in(dir.path()).unwrap()),
            Arc::new(secrets(&settings, &sink)),
            Arc::new(clock),
        )
        .unwrap(),
    );
    Setup {
        w,
        sibling,
        sink,
        _dir: dir,
    }
}

fn arm_calls(w: &World<FakeSomfy>) -> usize {
    w.vendor
        .vendor
        .api_calls()
        .iter()
        .filter(|c| c.method == "PUT" && c.path.ends_with("/security"))
        .count()
}

async fn schedule_status(w: &World<FakeSomfy>) -> Value {
    let report: Value = w.admin_get("/status").await.json().await.unwrap();
    report["schedules"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_run_fires_exactly_once_across_doubled_ticks_and_shows_in_status() {
    let s = setup().await;
    let w = &s.w;

    // Tuesday 23:13: today's run is past its 10-minute grace, so nothing is owed.
    let summary = w.hh.app.tick().await.unwrap();
    assert_eq!(summary.scheduled.fired, 0);
    assert_eq!(arm_calls(w), 0);
    let status = schedule_status(w).await;
    assert_eq!(status["name"], "night");
    assert_eq!(status["action"], "armed");
    assert_eq!(status["time_zone"], "Europe/Paris");
    assert_eq!(status["next_run"], "2023-11-15T23:00:00+01:00");
    assert_eq!(status["next_run_in_secs"], WEDNESDAY_2300);
    assert_eq!(status["last_run"], Value::Null);

    // Wednesday 23:00:30: two processes tick at once, then one of them ticks again (a retried
    // invocation). One arm, one answer.
    w.clock.advance(WEDNESDAY_2300 + 30);
    let (a, b) = tokio::join!(w.hh.app.tick(), s.sibling.tick());
    let (a, b) = (a.unwrap().scheduled, b.unwrap().scheduled);
    assert_eq!(a.fired + b.fired, 1, "{a:?} {b:?}");
    assert_eq!(a.already_claimed + b.already_claimed, 1, "{a:?} {b:?}");
    w.clock.advance(60);
    let again = w.hh.app.tick().await.unwrap().scheduled;
    assert_eq!((again.fired, again.already_claimed), (0, 1));
    assert_eq!(arm_calls(w), 1, "the alarm was armed once");
    assert_eq!(w.vendor.alarm().security_level, "armed");

    let status = schedule_status(w).await;
    assert_eq!(status["last_run"]["ok"], true);
    assert_eq!(status["last_run"]["due"], "2023-11-15T23:00:00+01:00");
    assert_eq!(status["last_run"]["answer"], "Alarm armed");
    assert_eq!(status["next_run"], "2023-11-16T23:00:00+01:00");

    // Saturday 23:00 is not a weekday: no run however often it ticks.
    w.clock.advance(3 * 86_400 - 60);
    w.vendor.update(|a| a.security_level = "disarmed".into());
    for _ in 0..3 {
        w.hh.app.tick().await.unwrap();
        w.clock.advance(60);
    }
    assert_eq!(
        arm_calls(w),
        1,
        "not on Saturday (nor on Thursday and Friday, whose grace had no tick)"
    );
    assert_eq!(w.vendor.alarm().security_level, "disarmed");
    assert_eq!(s.sink.received().len(), 0, "nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_run_is_notified_recorded_and_not_repeated() {
    let s = setup().await;
    let w = &s.w;
    w.clock.advance(WEDNESDAY_2300 + 5);
    // Somfy answers 503 to the first try and both retries.
    w.vendor.faults().fail_next(503, 3);
    let summary = w.hh.app.tick().await.unwrap().scheduled;
    assert_eq!((summary.fired, summary.failed), (0, 1));

    let status = schedule_status(w).await;
    assert_eq!(status["last_run"]["ok"], false);
    assert_eq!(status["last_run"]["error"], "vendor_unavailable");
    assert!(
        status["last_run"]["message"]
            .as_str()
            .unwrap()
            .contains("unavailable")
    );

    let notes = s.sink.received();
    assert_eq!(notes.len(), 1, "one notification");
    let n = notes[0].json();
    assert_eq!(n["event"], "schedule_failed");
    assert_eq!(n["connection"], "alarm");
    assert!(n["title"].as_str().unwrap().contains("night"), "{n}");
    assert!(n["message"].as_str().unwrap().contains("23:00"), "{n}");

    // Somfy is back: the failed run is not retried (it may be hours late by then); the next
    // weekday's is made as usual.
    w.clock.advance(120);
    let later = w.hh.app.tick().await.unwrap().scheduled;
    assert_eq!(
        (later.fired, later.failed, later.already_claimed),
        (0, 0, 1)
    );
    w.clock.advance(86_400);
    let thursday = w.hh.app.tick().await.unwrap().scheduled;
    assert_eq!(thursday.fired, 1);
    assert_eq!(w.vendor.alarm().security_level, "armed");
}
