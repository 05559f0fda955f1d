//! Token calls per token lifetime: homehook and the fake vendor share one manual clock, the
//! vendor hands out access tokens of a given lifetime (10 s to 3 h), and traffic arrives steady,
//! in bursts, or not at all (ticks only), through one `homehook` or two on one SQLite file.
//! What reaches the vendor's token endpoint is counted; the floor is one call per lifetime.
//! Then the wall time of a burst of 200 actions on an expired 10-second token.
//!
//! The tick runs every [`TICK_SECS`]: `homehook serve` ticks every minute, and the template's
//! EventBridge schedule (`RefreshSchedule`) defaults to `rate(1 minute)` too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use homehook_core::clock::ManualClock;
use homehook_core::store::Store;
use homehook_local::SqliteStore;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{Homehook, T0, World, secrets_for};
use serde_json::json;

use crate::report::{ms, table};
use crate::stats::Samples;

/// The access-token lifetimes simulated: a strict authorization server's 10 s, a minute, the
/// common 5 minutes, an hour, Netatmo's 3 hours.
pub const LIFETIMES_SECS: [i64; 5] = [10, 60, 300, 3_600, 10_800];
/// The tick period: `homehook serve`'s, and the template's `RefreshSchedule` default.
pub const TICK_SECS: i64 = 60;
/// Actions per lifetime in steady traffic, evenly spread (one every tenth of the lifetime).
pub const STEADY_PER_LIFETIME: i64 = 10;
/// Concurrent actions in a burst (one burst per lifetime).
pub const BURST: usize = 50;
/// The tick's margin (`refresh_margin_secs`, its default): a token is renewed this long before
/// expiry, or a tenth of its lifetime if shorter.
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// How actions arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// [`STEADY_PER_LIFETIME`] actions per lifetime, one at a time, evenly spread (at least a
    /// second apart: the clock counts whole seconds).
    Steady,
    /// A burst of [`BURST`] concurrent actions once per lifetime, each when the previous
    /// lifetime has just ended.
    Bursts,
    /// No actions: only the ticks.
    Idle,
}

impl Traffic {
    /// Its name in the report.
    pub fn name(self) -> String {
        match self {
            Traffic::Steady => format!("steady ({STEADY_PER_LIFETIME} per lifetime)"),
            Traffic::Bursts => format!("bursts of {BURST}, one per lifetime"),
            Traffic::Idle => "idle (ticks only)".into(),
        }
    }
}

/// One simulation's counts.
#[derive(Debug, Clone)]
pub struct Run {
    /// The access tokens' lifetime.
    pub lifetime_secs: i64,
    /// How actions came.
    pub traffic: Traffic,
    /// `homehook` instances on the one store.
    pub processes: usize,
    /// Actions sent (all answered 200).
    pub actions: usize,
    /// Token-endpoint calls (the connect's code exchange not counted).
    pub token_calls: usize,
    /// Token lifetimes simulated: the floor of token calls.
    pub lifetimes: i64,
}

impl Run {
    /// Token calls per lifetime.
    pub fn per_lifetime(&self) -> f64 {
        self.token_calls as f64 / self.lifetimes as f64
    }
}

/// A lifetime in words: "10 s", "5 min", "3 h".
pub fn lifetime_name(secs: i64) -> String {
    if secs >= 3600 && secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// homehook (one or two instances on one SQLite file) beside the fake vendor, one manual clock.
struct Sim {
    world: World,
    /// The second instance, on the same file, when there is one.
    second: Option<Homehook>,
    /// Where the SQLite file is; removed when the simulation ends.
    _dir: tempfile::TempDir,
    /// The delaying proxy in front of the token endpoint, when there is one.
    _proxy: Option<crate::latency::Proxy>,
}

impl Sim {
    /// Connected, with access tokens of `lifetime_secs`, through `processes` instances (1 or 2);
    /// each token call held `token_delay` on its way (none: loopback).
    async fn start(lifetime_secs: i64, processes: usize, token_delay: Duration) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store =
            || -> Result<Arc<dyn Store>> { Ok(Arc::new(SqliteStore::open_in(dir.path())?)) };
        let settings = FakeSettings {
            access_ttl_secs: lifetime_secs,
            ..FakeSettings::default()
        };
        let clock = ManualClock::new(T0);
        let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
        let proxy = if token_delay.is_zero() {
            None
        } else {
            Some(crate::latency::start(&vendor.base, token_delay).await?)
        };
        let token_base = proxy
            .as_ref()
            .map_or(vendor.base.clone(), |p| p.base.clone());
        let config = config(&vendor.base, &token_base);
        let world = World::with_vendor(
            clock.clone(),
            vendor,
            &config,
            secrets_for("netatmo", &settings),
            store()?,
        )
        .await;
        if world.connect("home").await.status() != 200 {
            bail!("the simulated connection did not connect");
        }
        let second = if processes > 1 {
            // The same config and keys, another store handle on the same file: what a second
            // `homehook serve` on one store sees (the lease decides who renews).
            let filled = config
                .replace("{admin}", &world.keys.admin.hash().to_string())
                .replace("{key}", &world.keys.action.hash().to_string());
            match Homehook::start(&filled, store()?, secrets_for("netatmo", &settings), clock).await
            {
                Ok(h) => Some(h),
                Err(e) => bail!("the second instance did not start: {e}"),
            }
        } else {
            None
        };
        Ok(Self {
            world,
            second,
            _dir: dir,
            _proxy: proxy,
        })
    }

    fn bases(&self) -> Vec<String> {
        let mut bases = vec![self.world.hh.base.clone()];
        bases.extend(self.second.iter().map(|h| h.base.clone()));
        bases
    }

    fn token_calls(&self) -> usize {
        self.world.vendor.token_calls()
    }

    /// Every instance's tick, at once: two `homehook serve` tick on the same wall-clock second.
    async fn tick(&self) -> Result<()> {
        match &self.second {
            Some(second) => {
                let (a, b) = tokio::join!(self.world.hh.app.tick(), second.app.tick());
                a?;
                b?;
            }
            None => {
                self.world.hh.app.tick().await?;
            }
        }
        Ok(())
    }

    /// `count` concurrent actions, spread over the instances in turn, starting with instance
    /// `first`; fails unless every one answers 200.
    async fn act(&self, count: usize, first: usize) -> Result<()> {
        let bases = self.bases();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..count {
            let request = self
                .world
                .client
                .post(format!("{}/a/heating", bases[(first + i) % bases.len()]))
                .bearer_auth(self.world.keys.action.expose())
                .json(&json!({}));
            calls.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
        for status in calls.join_all().await {
            let status = status?;
            if status != 200 {
                bail!("an action answered {status}");
            }
        }
        Ok(())
    }
}

/// The simulated connection: Netatmo's provider pointed at the fake vendor (its token endpoint
/// at `token_base`, the fake itself or a delaying proxy in front of it).
fn config(vendor: &str, token_base: &str) -> String {
    format!(
        r#"[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"
refresh_margin_secs = {REFRESH_MARGIN_SECS}

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{token_base}/oauth2/token"
api_base = "{vendor}"
# Token calls are measured here; Netatmo's API budget (50 per 10 s) would refuse bursts.
api_budget = []

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "away" }}
key_hash = "{{key}}"
# Simulated hours pass in seconds: the per-action limit (real time) must not refuse them.
rate_limit = {{ burst = 100000, per_minute = 60000 }}
"#
    )
}

/// Simulates `lifetimes` token lifetimes of `lifetime_secs` with `traffic` through `processes`
/// instances, ticking every [`TICK_SECS`] (a tick before the actions of the same second).
pub async fn simulate(
    lifetime_secs: i64,
    traffic: Traffic,
    processes: usize,
    lifetimes: i64,
) -> Result<Run> {
    let sim = Sim::start(lifetime_secs, processes, Duration::ZERO).await?;
    let end = lifetime_secs * lifetimes;
    // (time, concurrent actions) of each step.
    let steps: Vec<(i64, usize)> = match traffic {
        Traffic::Steady => {
            let every = (lifetime_secs / STEADY_PER_LIFETIME).max(1);
            (1..=end / every).map(|k| (k * every, 1)).collect()
        }
        Traffic::Bursts => (1..=lifetimes)
            .map(|k| (k * lifetime_secs, BURST))
            .collect(),
        Traffic::Idle => Vec::new(),
    };
    let at_start = sim.token_calls();
    let mut now = 0i64;
    let mut next_tick = TICK_SECS;
    let mut actions = 0usize;
    for (at, count) in steps.into_iter().chain([(end, 0)]) {
        while next_tick <= at {
            sim.world.clock.advance(next_tick - now);
            now = next_tick;
            sim.tick().await?;
            next_tick += TICK_SECS;
        }
        sim.world.clock.advance(at - now);
        now = at;
        if count > 0 {
            // Steady traffic alternates between the instances; a burst is split between them.
            sim.act(count, actions)
                .await
                .map_err(|e| e.context(format!("at t+{now} s")))?;
            actions += count;
        }
    }
    Ok(Run {
        lifetime_secs,
        traffic,
        processes,
        actions,
        token_calls: sim.token_calls() - at_start,
        lifetimes,
    })
}

/// A burst of concurrent actions on an expired 10-second token, timed, beside the same burst on
/// a valid token and single actions.
#[derive(Debug)]
pub struct Burst {
    /// `homehook` instances the burst is split between.
    pub processes: usize,
    /// How long each token call was held on its way to the vendor.
    pub token_delay: Duration,
    /// Actions in the burst.
    pub actions: usize,
    /// Token calls each expired-token burst made (one entry per run).
    pub token_calls: Vec<usize>,
    /// Wall time of the burst on an expired token, ms.
    pub expired: Samples,
    /// Wall time of the same burst on a valid token, ms.
    pub valid: Samples,
    /// Wall time of one action that renews its token first, ms.
    pub one_expired: Samples,
    /// Wall time of one action on a valid token, ms.
    pub one_valid: Samples,
}

/// The token round trip simulated for a vendor across the internet (the proxy's hold), ms.
pub const TOKEN_DELAY_MS: u64 = 100;

/// The lifetime of the burst's tokens.
pub const BURST_LIFETIME_SECS: i64 = 10;

/// `runs` rounds, each: a burst of `actions` on a valid token, the clock moved past expiry, the
/// burst again; then one action on a valid token and one on an expired token. A warm-up burst
/// first opens the client's connections, so no round pays for them. Each token call is held
/// `token_delay` (a vendor's round trip; zero: loopback).
pub async fn burst(
    processes: usize,
    actions: usize,
    runs: usize,
    token_delay: Duration,
) -> Result<Burst> {
    let sim = Sim::start(BURST_LIFETIME_SECS, processes, token_delay).await?;
    let clock = sim.world.clock.clone();
    // Past expiry and the tick's lead: whatever token is stored is expired.
    let expire = || clock.advance(2 * BURST_LIFETIME_SECS);
    let timed = |count: usize| {
        let sim = &sim;
        async move {
            let start = Instant::now();
            sim.act(count, 0).await?;
            anyhow::Ok(start.elapsed())
        }
    };
    expire();
    timed(actions).await?;
    let (mut expired, mut valid, mut one_expired, mut one_valid) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut token_calls = Vec::new();
    for _ in 0..runs {
        // The token was issued moments ago (by the last expired round): valid.
        valid.push(timed(actions).await?);
        expire();
        let before = sim.token_calls();
        expired.push(timed(actions).await?);
        token_calls.push(sim.token_calls() - before);
        one_valid.push(timed(1).await?);
        expire();
        one_expired.push(timed(1).await?);
    }
    Ok(Burst {
        processes,
        token_delay,
        actions,
        token_calls,
        expired: Samples::millis(expired),
        valid: Samples::millis(valid),
        one_expired: Samples::millis(one_expired),
        one_valid: Samples::millis(one_valid),
    })
}

/// The report's token-calls part: its summary rows (measure, homehook, beside it, target) and
/// its section, from simulations of `lifetimes` lifetimes and `burst_runs` burst rounds.
#[derive(Debug)]
pub struct Section {
    /// Rows for the summary table.
    pub summary: Vec<Vec<String>>,
    /// The "Token calls" section, markdown.
    pub details: String,
}

fn row(cells: &[&str; 4]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Runs every simulation and the bursts, and writes them up.
pub async fn section(lifetimes: i64, burst_runs: usize) -> Result<Section> {
    let mut summary = Vec::new();
    let mut details = String::new();
    let mut rows = Vec::new();
    // The worst calls per lifetime of each traffic for tokens whose lead is a tenth of their
    // lifetime (up to 5 min), and of any traffic for each longer one (renewed by the tick's
    // margin whatever the traffic).
    let mut short_worst = [0.0f64; 3];
    let mut long_worst = Vec::new();
    let traffics = [Traffic::Bursts, Traffic::Steady, Traffic::Idle];
    for lifetime in LIFETIMES_SECS {
        let mut worst: f64 = 0.0;
        for (t, &traffic) in traffics.iter().enumerate() {
            for processes in [1, 2] {
                let r = simulate(lifetime, traffic, processes, lifetimes).await?;
                if lifetime / 10 < REFRESH_MARGIN_SECS {
                    short_worst[t] = short_worst[t].max(r.per_lifetime());
                }
                worst = worst.max(r.per_lifetime());
                rows.push(vec![
                    lifetime_name(r.lifetime_secs),
                    r.traffic.name(),
                    r.processes.to_string(),
                    r.actions.to_string(),
                    r.token_calls.to_string(),
                    r.lifetimes.to_string(),
                    format!("{:.2}", r.per_lifetime()),
                ]);
            }
        }
        if lifetime / 10 >= REFRESH_MARGIN_SECS {
            long_worst.push(format!("{} {:.2}", lifetime_name(lifetime), worst));
        }
    }
    summary.push(row(&[
        "token calls per lifetime, 10-s to 5-min tokens, worst: bursts / steady / idle",
        &format!(
            "{:.2} / {:.2} / {:.2}",
            short_worst[0], short_worst[1], short_worst[2]
        ),
        &format!(
            "one and two processes on one store; any traffic: {}",
            long_worst.join(", ")
        ),
        "1.0 / ≤ 1.11 / ≤ 1",
    ]));
    details.push_str(&format!(
        "\n## Token calls\n\nhomehook and the fake vendor share one manual clock; the vendor gives access tokens of the lifetime in the first column (Netatmo's provider pointed at it). Each row simulates {n} lifetimes and counts token-endpoint calls (the connect's code exchange not counted): steady traffic is {steady} actions per lifetime, one at a time, evenly spread (at least 1 s apart: the clock counts seconds); bursts are {burst} concurrent actions once per lifetime, each just as the previous token expires; idle is the ticks alone. Two processes are two homehook instances on one SQLite file: steady actions alternate between them, each burst is split between them, and both tick on the same second (the lease decides who renews). The tick runs every {tick} s: `homehook serve`'s period, and the template's `RefreshSchedule` default, `rate(1 minute)`.\n\nHow to read it: a token is renewed a lead before it expires, the tick's {margin} s (`refresh_margin_secs`) or an action's 30 s, or a tenth of the lifetime when that is shorter (README, \"The token lifecycle\"). Up to 5 minutes, steady traffic renews at nine tenths of the lifetime (1.11 per lifetime by design; a little less here, the last partial lifetime not being counted), a burst on an expired token shares one call, and the tick renews an idle connection at most once per lifetime (10-s tokens: once per tick). From 1 hour on, the tick renews every token {margin} s ahead, whatever the traffic: 3600/3300 = 1.09 and 10800/10500 = 1.03 calls per lifetime, idle connections too.\n\n",
        n = lifetimes,
        steady = STEADY_PER_LIFETIME,
        burst = BURST,
        tick = TICK_SECS,
        margin = REFRESH_MARGIN_SECS,
    ));
    details.push_str(&table(
        &[
            "lifetime",
            "traffic",
            "processes",
            "actions",
            "token calls",
            "lifetimes",
            "calls per lifetime",
        ],
        &rows,
    ));
    let mut rows = Vec::new();
    let mut burst_cells = Vec::new();
    let mut valid_cells = Vec::new();
    for delay_ms in [0, TOKEN_DELAY_MS] {
        for processes in [1, 2] {
            let delay = std::time::Duration::from_millis(delay_ms);
            let b = burst(processes, 200, burst_runs, delay).await?;
            let calls_min = b.token_calls.iter().min().copied().unwrap_or(0);
            let calls_max = b.token_calls.iter().max().copied().unwrap_or(0);
            let calls = if calls_min == calls_max {
                calls_min.to_string()
            } else {
                format!("{calls_min}–{calls_max}")
            };
            if delay_ms == 0 {
                burst_cells.push(format!("{} ({calls} call)", ms(b.expired.median())));
                valid_cells.push(ms(b.valid.median()));
            }
            rows.push(vec![
                if b.token_delay.is_zero() {
                    "loopback".to_string()
                } else {
                    format!("+{} ms", b.token_delay.as_millis())
                },
                b.processes.to_string(),
                b.actions.to_string(),
                calls,
                format!(
                    "{} / {}",
                    ms(b.expired.median()),
                    ms(b.expired.percentile(90.0))
                ),
                format!(
                    "{} / {}",
                    ms(b.valid.median()),
                    ms(b.valid.percentile(90.0))
                ),
                format!(
                    "{} / {}",
                    ms(b.one_expired.median()),
                    ms(b.one_valid.median())
                ),
            ]);
        }
    }
    summary.push(row(&[
        "burst of 200 on an expired 10-s token, 1 / 2 processes (median)",
        &burst_cells.join(" / "),
        &format!("same burst, valid token: {}", valid_cells.join(" / ")),
        "one token round trip",
    ]));
    details.push_str(&format!(
        "\nA burst of 200 concurrent actions on an expired {}-s token, split between the processes, beside the same burst on a valid token and single actions; {} rounds after a warm-up burst (wall time, median / p90). Token calls: per burst on the expired token, in every round. The token endpoint is the fake vendor on loopback (about a millisecond a call), or behind a proxy that holds each token call {} ms, a vendor across the internet.\n\n",
        BURST_LIFETIME_SECS,
        burst_runs,
        TOKEN_DELAY_MS,
    ));
    details.push_str(&table(
        &[
            "token endpoint",
            "processes",
            "actions",
            "token calls",
            "burst, expired token",
            "burst, valid token",
            "one action: expired / valid token",
        ],
        &rows,
    ));
    Ok(Section { summary, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_say_them() {
        assert_eq!(lifetime_name(10), "10 s");
        assert_eq!(lifetime_name(60), "1 min");
        assert_eq!(lifetime_name(300), "5 min");
        assert_eq!(lifetime_name(10_800), "3 h");
    }

    /// The simulation counts what reaches the token endpoint: three bursts on 10-s tokens
    /// through two instances cost three calls, and an idle 1-min token is renewed once per
    /// lifetime by the ticks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_simulation_counts_token_calls() -> Result<()> {
        let bursts = simulate(10, Traffic::Bursts, 2, 3).await?;
        assert_eq!((bursts.actions, bursts.token_calls), (3 * BURST, 3));
        let idle = simulate(60, Traffic::Idle, 1, 3).await?;
        assert_eq!((idle.actions, idle.token_calls), (0, 3));
        Ok(())
    }
}
