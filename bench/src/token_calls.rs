//! Token calls over a simulated day: 10,000 actions spread over 24 hours against 3-hour tokens
//! (Netatmo's), homehook and the fake vendor sharing one manual clock, counting what reaches
//! the vendor's token endpoint. The floor is one call per token lifetime.

use std::sync::Arc;

use anyhow::{Result, bail};
use homehook_core::clock::ManualClock;
use homehook_local::SqliteStore;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{T0, World, secrets_for};
use serde_json::json;

/// The token lifetime simulated (Netatmo: 3 hours).
pub const TOKEN_LIFETIME_SECS: i64 = 10_800;
const DAY: i64 = 86_400;
/// The EventBridge schedule's default (template.yaml `RefreshSchedule`).
const TICK_SECS: i64 = 300;

/// One simulated day.
#[derive(Debug)]
pub struct Day {
    /// How the actions came.
    pub scenario: &'static str,
    /// Actions sent (all answered 200).
    pub actions: usize,
    /// Token-endpoint calls during the day (the connect's code exchange not counted).
    pub token_calls: usize,
    /// Token lifetimes in the day: the floor.
    pub lifetimes: f64,
}

/// How actions arrive during the day.
#[derive(Debug, Clone, Copy)]
pub enum Pattern {
    /// One at a time, evenly spread, with the scheduled tick.
    Steady,
    /// One at a time, evenly spread, no tick: every renewal happens on an action's path.
    SteadyNoTick,
    /// Bursts of 10 at once (a scene firing several URLs), with the tick.
    Bursts,
}

/// Simulates a day of `actions` actions.
pub async fn simulate(pattern: Pattern, actions: usize) -> Result<Day> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open_in(dir.path())?);
    let settings = FakeSettings {
        access_ttl_secs: TOKEN_LIFETIME_SECS,
        ..FakeSettings::default()
    };
    let clock = ManualClock::new(T0);
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let config = format!(
        r#"[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"
refresh_margin_secs = 300

[providers.netatmo]
authorize_url = "{v}/oauth2/authorize"
token_url = "{v}/oauth2/token"
api_base = "{v}"

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "away" }}
key_hash = "{{key}}"
# A simulated day passes in seconds: the per-action limit (real time) must not refuse it.
rate_limit = {{ burst = 100000, per_minute = 60000 }}
"#,
        v = vendor.base
    );
    let w = World::with_vendor(
        clock,
        vendor,
        &config,
        secrets_for("netatmo", &settings),
        store,
    )
    .await;
    if w.connect("home").await.status() != 200 {
        bail!("the simulated connection did not connect");
    }
    let at_start = w.vendor.token_calls();
    let (burst, tick, scenario) = match pattern {
        Pattern::Steady => (1, true, "one at a time, tick every 5 min"),
        Pattern::SteadyNoTick => (
            1,
            false,
            "one at a time, no tick (renewed on the action's path)",
        ),
        Pattern::Bursts => (10, true, "bursts of 10 concurrent, tick every 5 min"),
    };
    let steps = actions / burst;
    let mut now = 0i64;
    for step in 0..steps {
        let due = (step as i64 + 1) * DAY / steps as i64;
        // Ticks that fall before this step's time run first, at their own times.
        let mut next_tick = (now / TICK_SECS + 1) * TICK_SECS;
        while tick && next_tick <= due {
            w.clock.advance(next_tick - now);
            now = next_tick;
            w.hh.app.tick().await?;
            next_tick += TICK_SECS;
        }
        w.clock.advance(due - now);
        now = due;
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..burst {
            let request = w
                .client
                .post(format!("{}/a/heating", w.hh.base))
                .bearer_auth(w.keys.action.expose())
                .json(&json!({}));
            calls.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
        for status in calls.join_all().await {
            let status = status?;
            if status != 200 {
                bail!("an action answered {status} at t+{now} s");
            }
        }
    }
    Ok(Day {
        scenario,
        actions: steps * burst,
        token_calls: w.vendor.token_calls() - at_start,
        lifetimes: DAY as f64 / TOKEN_LIFETIME_SECS as f64,
    })
}
