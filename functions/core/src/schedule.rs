//! **Where a scheduled action fires**: every tick (the local interval of `homehook serve`, the
//! EventBridge schedule of the `token-refresh` function) asks [`fire_due`] to run the
//! `[schedules.<name>]` whose time has come.
//!
//! Exactly once per due time: before acting, a tick claims `schedule:<name>:<due time>` with
//! [`ItemStore::insert_item`](crate::store::ItemStore::insert_item), which only one writer
//! wins (a SQLite transaction, a DynamoDB conditional put). A doubled tick, a second
//! `homehook serve` on the same store, or a retried Lambda invocation finds the claim and
//! does nothing. A run whose claim was taken is never run again, even if it failed: arming an
//! alarm twice is worse than telling the owner it did not arm, which [`fire_due`] does
//! through the notifiers.
//!
//! A tick that comes late (a stopped laptop, a throttled Lambda) still fires the latest run it
//! owes within the schedule's `grace_secs`; older ones are skipped.

use serde::{Deserialize, Serialize};

use crate::action;
use crate::clock::UnixTime;
use crate::config::Schedule;
use crate::error::Problem;
use crate::notify::Notification;
use crate::services::Services;
use crate::store::item_key;

/// How long a run's outcome is kept for `/status` without a newer run.
const LAST_RUN_KEEP_SECS: i64 = 400 * 86_400;

/// What one tick did with the schedules.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleSummary {
    /// Runs this tick made that succeeded.
    pub fired: usize,
    /// Runs this tick made (or could not make) that failed.
    pub failed: usize,
    /// Runs that were due but already claimed by another tick.
    pub already_claimed: usize,
}

/// The outcome of a schedule's latest run, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The time it was due (RFC 3339, in the schedule's time zone).
    pub due: String,
    /// When it ran (RFC 3339).
    pub ran_at: String,
    /// Whether the action succeeded.
    pub ok: bool,
    /// The action's answer ("Alarm armed").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The error code (as an action URL would answer it), when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went wrong, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One schedule in the status report.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    /// The schedule's name.
    pub name: String,
    /// The action it fires.
    pub action: String,
    /// The cron expression.
    pub cron: String,
    /// Its time zone.
    pub time_zone: String,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The next run (RFC 3339, in the schedule's time zone).
    pub next_run: Option<String>,
    /// Seconds until the next run.
    pub next_run_in_secs: Option<i64>,
    /// The latest run's outcome, if it ran.
    pub last_run: Option<LastRun>,
}

fn timestamp(t: UnixTime) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// RFC 3339 with the schedule's own offset (`2026-11-24T23:00:00+01:00`): the time the owner
/// wrote, as the owner reads it.
fn local_rfc3339(schedule: &Schedule, t: jiff::Timestamp) -> String {
    let offset = schedule.time_zone.to_offset(t);
    t.display_with_offset(offset).to_string()
}

/// The run `schedule` owes at `now`: the latest due time within its grace.
pub fn owed_run(schedule: &Schedule, now: UnixTime) -> Option<UnixTime> {
    let now = timestamp(now);
    let since = now - jiff::SignedDuration::from_secs(schedule.grace_secs);
    schedule
        .cron
        .latest_in(since, now, &schedule.time_zone)
        .map(|t| UnixTime(t.as_second()))
}

/// The next run of `schedule` after `now`.
pub fn next_run(schedule: &Schedule, now: UnixTime) -> Option<UnixTime> {
    schedule
        .cron
        .next_after(timestamp(now), &schedule.time_zone)
        .map(|t| UnixTime(t.as_second()))
}

/// Fires every schedule that is due and not yet claimed. Never fails as a whole: a schedule
/// that cannot be claimed or run is logged, counted, recorded and notified, and the others go on.
pub async fn fire_due(services: &Services) -> ScheduleSummary {
    let mut summary = ScheduleSummary::default();
    for schedule in services.config.schedules.values() {
        let now = services.clock.now();
        let Some(due) = owed_run(schedule, now) else {
            continue;
        };
        // The claim outlives the grace window, so no late tick can run this due time again.
        let until = due.plus_secs(schedule.grace_secs + 86_400);
        let claimed = services
            .store
            .insert_item(
                &item_key::schedule_claim(&schedule.name, due),
                &now.0.to_string(),
                until,
                now,
            )
            .await;
        match claimed {
            Ok(None) => {}
            Ok(Some(_)) => {
                summary.already_claimed += 1;
                continue;
            }
            Err(e) => {
                // Without the claim, running could run twice: skip, and say so.
                tracing::warn!(schedule = %schedule.name, error = %e, "could not claim a scheduled run; not run");
                summary.failed += 1;
                continue;
            }
        }
        let run = run_once(services, schedule, now).await;
        let due_text = local_rfc3339(schedule, timestamp(due));
        let last = match run {
            Ok(answer) => {
                tracing::info!(schedule = %schedule.name, action = %schedule.action, due = %due_text, "scheduled action ran");
                summary.fired += 1;
                LastRun {
                    due: due_text,
                    ran_at: now.to_rfc3339(),
                    ok: true,
                    answer: Some(answer),
                    error: None,
                    message: None,
                }
            }
            Err(e) => {
                tracing::warn!(schedule = %schedule.name, action = %schedule.action, due = %due_text, error = %e.code, "scheduled action failed");
                summary.failed += 1;
                notify_failure(services, schedule, &due_text, &e, now).await;
                LastRun {
                    due: due_text,
                    ran_at: now.to_rfc3339(),
                    ok: false,
                    answer: None,
                    error: Some(e.code.as_str().to_string()),
                    message: Some(e.message),
                }
            }
        };
        record_last_run(services, schedule, &last, now).await;
    }
    summary
}

/// Runs the action with the schedule's parameters, as a caller with its key would.
async fn run_once(
    services: &Services,
    schedule: &Schedule,
    now: UnixTime,
) -> Result<String, Problem> {
    let action = services
        .config
        .actions
        .get(&schedule.action)
        .ok_or_else(|| {
            Problem::misconfigured(format!("no action named \"{}\"", schedule.action))
        })?;
    let params = crate::params::check(&action.params, schedule.params.clone(), now)?;
    let outcome = action::run(services, action, &params).await?;
    Ok(outcome.answer)
}

async fn notify_failure(
    services: &Services,
    schedule: &Schedule,
    due: &str,
    e: &Problem,
    now: UnixTime,
) {
    if services.notifiers.is_empty() {
        return;
    }
    let conn = services
        .config
        .actions
        .get(&schedule.action)
        .and_then(|a| services.config.connections.get(&a.connection));
    if let Some(conn) = conn {
        let reason = format!("{} ({})", e.message, e.code);
        let n = Notification::schedule_failed(&services.config, schedule, conn, due, reason, now);
        services.notifiers.send(&n).await;
    }
}

async fn record_last_run(services: &Services, schedule: &Schedule, last: &LastRun, now: UnixTime) {
    let Ok(json) = serde_json::to_string(last) else {
        return;
    };
    let until = now.plus_secs(LAST_RUN_KEEP_SECS);
    if let Err(e) = services
        .store
        .put_item(&item_key::schedule_last_run(&schedule.name), &json, until)
        .await
    {
        tracing::warn!(schedule = %schedule.name, error = %e, "could not record a scheduled run's outcome");
    }
}

/// Every schedule with its next run and its latest outcome (for `/status` and
/// `homehook status`).
pub async fn status(services: &Services) -> Result<Vec<ScheduleStatus>, crate::store::StoreError> {
    let now = services.clock.now();
    let mut out = Vec::new();
    for schedule in services.config.schedules.values() {
        let next = next_run(schedule, now);
        let last_run = services
            .store
            .get_item(&item_key::schedule_last_run(&schedule.name), now)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok());
        out.push(ScheduleStatus {
            name: schedule.name.clone(),
            action: schedule.action.clone(),
            cron: schedule.cron.to_string(),
            time_zone: schedule.time_zone_name.clone(),
            summary: schedule.summary.clone(),
            next_run: next.map(|t| local_rfc3339(schedule, timestamp(t))),
            next_run_in_secs: next.map(|t| now.secs_until(t)),
            last_run,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::{Reply, setup};

    /// `arm`, fired by `nightly` at 22:13 UTC: the minute of [`crate::test_support::T0`].
    const NIGHTLY: &str = r#"
        [actions.arm]
        connection = "conn"
        path = "/alarm/arm"
        body = { mode = "{mode}" }
        params.mode = { type = "enum", values = ["away", "night"] }
        answer = "Armed for the {{ mode }}"
        key_hash = "{key_hash}"

        [schedules.nightly]
        action = "arm"
        cron = "13 22 * * *"
        params = { mode = "night" }
    "#;

    async fn last_run(services: &Services) -> Option<LastRun> {
        let report = status(services).await.expect("status");
        assert_eq!(report.len(), 1);
        report.into_iter().next().and_then(|s| s.last_run)
    }

    #[tokio::test]
    async fn a_due_schedule_fires_once_per_due_time() {
        let s = setup(NIGHTLY).await;
        assert_eq!(
            fire_due(&s.services).await,
            ScheduleSummary {
                fired: 1,
                failed: 0,
                already_claimed: 0
            }
        );
        let sent = s.vendor.requests_to("/alarm/arm");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        let body: Value = serde_json::from_str(&sent[0].body).expect("a JSON body");
        assert_eq!(body, json!({"mode": "night"}));
        let last = last_run(&s.services).await.expect("a recorded run");
        assert!(last.ok);
        assert_eq!(last.answer.as_deref(), Some("Armed for the night"));
        assert_eq!(last.due, "2023-11-14T22:13:00+00:00");

        // The same tick again, and a later one within the grace: the run is claimed.
        for _ in 0..2 {
            assert_eq!(
                fire_due(&s.services).await,
                ScheduleSummary {
                    fired: 0,
                    failed: 0,
                    already_claimed: 1
                }
            );
            s.clock.advance(60);
        }
        assert_eq!(s.vendor.requests_to("/alarm/arm").len(), 1);
    }

    #[tokio::test]
    async fn a_failed_run_is_recorded_with_its_error_code() {
        let s = setup(NIGHTLY).await;
        s.vendor.queue(
            "/alarm/arm",
            [Reply::json(400, json!({"message": "door open"}))],
        );
        assert_eq!(
            fire_due(&s.services).await,
            ScheduleSummary {
                fired: 0,
                failed: 1,
                already_claimed: 0
            }
        );
        assert_eq!(s.vendor.requests_to("/alarm/arm").len(), 1);
        let last = last_run(&s.services).await.expect("a recorded run");
        assert!(!last.ok);
        assert_eq!(last.error.as_deref(), Some("vendor_rejected"));
        assert_eq!(last.answer, None);
        assert!(
            last.message
                .as_deref()
                .is_some_and(|m| m.contains("door open")),
            "{last:?}"
        );
    }
}
