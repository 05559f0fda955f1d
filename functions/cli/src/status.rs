//! `homehook status`: each connection's health and token expiry, read from the store directly
//! (so it works whether or not a server runs).

use anyhow::Result;
use homehook_core::schedule::ScheduleStatus;
use homehook_core::status::{ConnectionStatus, StatusReport};

use crate::{settings, table, when};

/// Columns of the connections table.
const CONNECTION_COLUMNS: &[&str] = &["CONNECTION", "PROVIDER", "HEALTH", "EXPIRES", "REFRESHED"];

/// Columns of the scheduled actions table.
const SCHEDULE_COLUMNS: &[&str] = &["SCHEDULE", "ACTION", "WHEN", "NEXT RUN", "LAST RUN"];

/// `homehook status [--json]`.
pub(crate) async fn run(ctx: settings::Context<'_>, json: bool) -> Result<()> {
    let (app, place) = settings::open_place(ctx, false).await?;
    let report = homehook_core::status::report(&app.services).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!(
        "{}",
        render(&report, jiff::Timestamp::now(), &place.command())
    );
    Ok(())
}

/// The readable report: the connections table, then what needs attention, row by row. Other
/// tables (scheduled actions) go through [`table::render`] the same way.
pub(crate) fn render(report: &StatusReport, now: jiff::Timestamp, cmd: &str) -> String {
    if report.connections.is_empty() {
        return "no connections configured\n".into();
    }
    let rows: Vec<Vec<String>> = report
        .connections
        .iter()
        .map(|c| connection_row(c, now))
        .collect();
    let mut out = table::render(CONNECTION_COLUMNS, &rows);
    let notes: Vec<String> = report
        .connections
        .iter()
        .flat_map(|c| notes(c, cmd))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    if !report.schedules.is_empty() {
        let rows: Vec<Vec<String>> = report.schedules.iter().map(schedule_row).collect();
        out.push('\n');
        out.push_str(&table::render(SCHEDULE_COLUMNS, &rows));
        for s in &report.schedules {
            if let Some(last) = s.last_run.as_ref().filter(|l| !l.ok) {
                out.push_str(&format!(
                    "{}: the run due {} failed: {}\n",
                    s.name,
                    last.due,
                    last.message.as_deref().unwrap_or("unknown error")
                ));
            }
        }
    }
    out
}

/// One scheduled action: its cron in its time zone, the next run (local time there, and how
/// soon), the last run's outcome.
fn schedule_row(s: &ScheduleStatus) -> Vec<String> {
    let next = match (&s.next_run, s.next_run_in_secs) {
        // "2026-11-24T23:00:00+01:00" → "2026-11-24 23:00 (in 9 h 12 min)"
        (Some(at), Some(secs)) => format!(
            "{} ({})",
            at.get(..16).unwrap_or(at).replace('T', " "),
            when::expires(secs)
        ),
        _ => "never".into(),
    };
    let last = match &s.last_run {
        None => "-".to_string(),
        Some(l) if l.ok => format!(
            "ok {}: {}",
            l.due.get(..16).unwrap_or(&l.due).replace('T', " "),
            l.answer.as_deref().unwrap_or("")
        ),
        Some(l) => format!(
            "FAILED {}: {}",
            l.due.get(..16).unwrap_or(&l.due).replace('T', " "),
            l.error.as_deref().unwrap_or("error")
        ),
    };
    vec![
        s.name.clone(),
        s.action.clone(),
        format!("{} {}", s.cron, s.time_zone),
        next,
        last,
    ]
}

fn connection_row(c: &ConnectionStatus, now: jiff::Timestamp) -> Vec<String> {
    let expires = match (&c.expires_at, c.expires_in_secs) {
        (Some(_), Some(s)) if s <= 0 => "expired".to_string(),
        (Some(_), Some(s)) => when::expires(s),
        _ => "-".into(),
    };
    vec![
        c.id.clone(),
        c.provider.clone(),
        c.health.replace('_', " "),
        expires,
        c.refreshed_at
            .as_deref()
            .map(|t| when::ago(t, now))
            .unwrap_or_else(|| "-".into()),
    ]
}

/// Lines about a connection that needs something: why, when homehook tries again, how to
/// reconnect.
fn notes(c: &ConnectionStatus, cmd: &str) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(reason) = &c.reason {
        notes.push(format!("{}: {reason}", c.id));
    }
    if let Some(at) = &c.retry_at {
        notes.push(format!(
            "{}: next try at {at} ({} failed in a row)",
            c.id, c.failures
        ));
    }
    if c.renewing {
        notes.push(format!(
            "{}: being renewed by another instance right now",
            c.id
        ));
    }
    if let Some(url) = &c.reconnect_url {
        notes.push(format!(
            "{}: reconnect: {url}?key=<admin key> (or run `{cmd} connect {}`)",
            c.id, c.id
        ));
    } else if c.health == "not_connected" {
        notes.push(format!(
            "{}: connects on first use, or now with `{cmd} connect {}`",
            c.id, c.id
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use homehook_core::schedule::LastRun;

    fn schedule(last_run: Option<LastRun>) -> ScheduleStatus {
        ScheduleStatus {
            name: "night".into(),
            action: "armed".into(),
            cron: "0 23 * * mon-fri".into(),
            time_zone: "Europe/Paris".into(),
            summary: None,
            next_run: Some("2026-11-24T23:00:00+01:00".into()),
            next_run_in_secs: Some(3 * 3600 + 600),
            last_run,
        }
    }

    fn report(schedules: Vec<ScheduleStatus>) -> StatusReport {
        StatusReport {
            connections: vec![ConnectionStatus {
                id: "alarm".into(),
                label: "Alarm".into(),
                provider: "somfy_protect".into(),
                connected: true,
                health: "healthy".into(),
                reason: None,
                retry_at: None,
                failures: 0,
                renewing: false,
                reconnect_url: None,
                expires_at: Some("2026-11-24T21:00:00Z".into()),
                expires_in_secs: Some(3000),
                refreshed_at: None,
            }],
            actions: vec!["armed".into()],
            schedules,
        }
    }

    #[test]
    fn schedules_show_their_next_run_and_last_result() {
        let now: jiff::Timestamp = "2026-11-24T19:10:00Z".parse().expect("time");
        let ok = LastRun {
            answer: Some("Alarm armed".into()),
            ..schedule_last()
        };
        let text = render(&report(vec![schedule(Some(ok))]), now, "homehook");
        let row = text
            .lines()
            .find(|l| l.starts_with("night"))
            .expect("a row");
        assert!(row.contains("2026-11-24 23:00 (in 3 h 10 min)"), "{row}");
        assert!(row.contains("ok 2026-11-23 23:00: Alarm armed"), "{row}");

        let failed = LastRun {
            ok: false,
            answer: None,
            error: Some("vendor_unavailable".into()),
            message: Some("the vendor is unavailable: HTTP 503".into()),
            ..schedule_last()
        };
        let text = render(&report(vec![schedule(Some(failed))]), now, "homehook");
        assert!(
            text.contains("FAILED 2026-11-23 23:00: vendor_unavailable"),
            "{text}"
        );
        assert!(
            text.contains(
                "night: the run due 2026-11-23T23:00:00+01:00 failed: the vendor is unavailable"
            ),
            "{text}"
        );
        // No schedules: no second table.
        assert!(!render(&report(vec![]), now, "homehook").contains("SCHEDULE"));
    }

    fn schedule_last() -> LastRun {
        LastRun {
            due: "2026-11-23T23:00:00+01:00".into(),
            ran_at: "2026-11-23T22:00:01Z".into(),
            ok: true,
            answer: None,
            error: None,
            message: None,
        }
    }
}
