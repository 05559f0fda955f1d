//! `[schedules.<name>]`: an action fired at the times of a cron expression, in a time zone
//! ("arm at 23:00 Europe/Paris on weekdays").

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::Deserialize;

use super::{Action, FieldError};
use crate::clock::UnixTime;
use crate::cron::Cron;

/// Default of `grace_secs`: a tick up to 10 minutes late still fires the run it owes.
pub const DEFAULT_GRACE_SECS: i64 = 600;

/// A scheduled action.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule's name (`[schedules.<name>]`), in logs, `/status` and notifications.
    pub name: String,
    /// The action it fires.
    pub action: String,
    /// When, as written (`0 23 * * mon-fri`).
    pub cron: Cron,
    /// The time zone the cron expression is read in.
    pub time_zone: TimeZone,
    /// The time zone's IANA name (`Europe/Paris`).
    pub time_zone_name: String,
    /// Parameters the action is called with.
    pub params: BTreeMap<String, serde_json::Value>,
    /// How late a tick may be and still fire a run; older runs are skipped.
    pub grace_secs: i64,
    /// What the schedule is for, in a line.
    pub summary: Option<String>,
}

/// A schedule as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    action: String,
    cron: String,
    time_zone: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    grace_secs: Option<i64>,
    summary: Option<String>,
}

/// Checks a schedule against the actions it may fire.
pub(super) fn build_schedule(
    name: &str,
    raw: RawSchedule,
    actions: &BTreeMap<String, Action>,
) -> Result<Schedule, FieldError> {
    let field = |f: &str| format!("schedules.{name}.{f}");
    let Some(action) = actions.get(&raw.action) else {
        return Err((
            field("action"),
            format!(
                "unknown action \"{}\" (known: {})",
                raw.action,
                actions.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let cron = raw.cron.parse::<Cron>().map_err(|p| (field("cron"), p))?;
    let time_zone_name = raw.time_zone.unwrap_or_else(|| "UTC".into());
    let time_zone = TimeZone::get(&time_zone_name).map_err(|_| {
        let problem = if jiff::tz::db().is_definitively_empty() {
            // A machine without tzdata (and a build without jiff's bundled copy): the name may
            // be right, the data is missing.
            format!(
                "time zone \"{time_zone_name}\": this machine has no time-zone database (install the tzdata package)"
            )
        } else {
            format!(
                "unknown time zone \"{time_zone_name}\": use an IANA name such as \"Europe/Paris\" or \"UTC\""
            )
        };
        (field("time_zone"), problem)
    })?;
    // The same check a caller's parameters get; the time only matters for end times,
    // which are relative anyway.
    crate::params::check(&action.params, raw.params.clone(), UnixTime(0))
        .map_err(|e| (field("params"), e.to_string()))?;
    let grace_secs = raw.grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if !(60..=86_400).contains(&grace_secs) {
        return Err((
            field("grace_secs"),
            "must be between 60 and 86400 seconds".into(),
        ));
    }
    if cron
        .next_after(jiff::Timestamp::UNIX_EPOCH, &time_zone)
        .is_none()
    {
        return Err((field("cron"), "this expression never fires".into()));
    }
    Ok(Schedule {
        name: name.to_string(),
        action: raw.action,
        cron,
        time_zone,
        time_zone_name,
        params: raw.params,
        grace_secs,
        summary: raw.summary,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(schedule: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!(
                r#"
                [connections.home]
                provider = "netatmo"
                [actions.away]
                connection = "home"
                builtin = "therm_mode"
                with = {{ home_id = "h1", mode = "away" }}
                key_hash = "{HASH}"
                [schedules.s]
                {schedule}
                "#
            ),
            "homehook.toml",
            None,
        )
    }

    #[test]
    fn a_schedule_names_an_action_a_cron_and_a_time_zone() {
        let c = parse(
            "action = \"away\"\ncron = \"0 8 * * mon-fri\"\ntime_zone = \"Europe/Paris\"\nparams = { minutes = 90 }",
        )
        .expect("valid");
        let s = &c.schedules["s"];
        assert_eq!(s.cron.to_string(), "0 8 * * mon-fri");
        assert_eq!(s.time_zone_name, "Europe/Paris");
        assert_eq!(s.grace_secs, super::DEFAULT_GRACE_SECS);
        let utc = parse("action = \"away\"\ncron = \"@daily\"").expect("UTC by default");
        assert_eq!(utc.schedules["s"].time_zone_name, "UTC");
    }

    #[test]
    fn schedule_mistakes_name_the_field() {
        for (text, field, problem) in [
            (
                "action = \"nope\"\ncron = \"@daily\"",
                "schedules.s.action",
                "unknown action",
            ),
            (
                "action = \"away\"\ncron = \"0 25 * * *\"",
                "schedules.s.cron",
                "hour field",
            ),
            (
                "action = \"away\"\ncron = \"0 0 30 2 *\"",
                "schedules.s.cron",
                "never fires",
            ),
            (
                "action = \"away\"\ncron = \"@daily\"\ntime_zone = \"Europe/Pariss\"",
                "schedules.s.time_zone",
                "unknown time zone",
            ),
            (
                "action = \"away\"\ncron = \"@daily\"\nparams = { mode = \"hg\" }",
                "schedules.s.params",
                "mode",
            ),
            (
                "action = \"away\"\ncron = \"@daily\"\nparams = { minutes = \"soon\" }",
                "schedules.s.params",
                "minutes",
            ),
            (
                "action = \"away\"\ncron = \"@daily\"\ngrace_secs = 5",
                "schedules.s.grace_secs",
                "between",
            ),
            (
                "action = \"away\"\ncron = \"@daily\"\nat = \"23:00\"",
                "schedules.s.at",
                "unknown field",
            ),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.problem.contains(problem), "{text}: {e}");
        }
    }
}
