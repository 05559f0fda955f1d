//! `homehook status`: each connection's health and token expiry, read from the store directly
//! (so it works whether or not a server runs).

use std::path::Path;

use anyhow::Result;
use homehook_core::http::status::{ConnectionStatus, StatusReport};

use crate::{settings, table, when};

/// Columns of the connections table.
const CONNECTION_COLUMNS: &[&str] = &["CONNECTION", "PROVIDER", "HEALTH", "EXPIRES", "REFRESHED"];

/// `homehook status [--json]`.
pub(crate) async fn run(
    config_path: Option<&Path>,
    data_dir: Option<&Path>,
    json: bool,
) -> Result<()> {
    let config = settings::load_config(config_path)?;
    let app = settings::open_app(data_dir, config, false)?;
    let report = homehook_core::http::status::report(&app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", render(&report, jiff::Timestamp::now()));
    Ok(())
}

/// The readable report: the connections table, then what needs attention, row by row. Other
/// tables (scheduled actions) go through [`table::render`] the same way.
pub(crate) fn render(report: &StatusReport, now: jiff::Timestamp) -> String {
    if report.connections.is_empty() {
        return "no connections configured\n".into();
    }
    let rows: Vec<Vec<String>> = report
        .connections
        .iter()
        .map(|c| connection_row(c, now))
        .collect();
    let mut out = table::render(CONNECTION_COLUMNS, &rows);
    let notes: Vec<String> = report.connections.iter().flat_map(notes).collect();
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    out
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
fn notes(c: &ConnectionStatus) -> Vec<String> {
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
            "{}: reconnect: {url}?key=<admin key> (or run `homehook connect {}`)",
            c.id, c.id
        ));
    } else if c.health == "not_connected" {
        notes.push(format!(
            "{}: connects on first use, or now with `homehook connect {}`",
            c.id, c.id
        ));
    }
    notes
}
