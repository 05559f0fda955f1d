//! The status report: every connection's health and token expiry, every scheduled action's
//! next run and latest outcome. Served at `GET /status` and printed by `homehook status`.

use serde::Serialize;

use crate::services::Services;
use crate::token::Health;

/// One connection in the status report.
#[derive(Debug, Serialize)]
pub struct ConnectionStatus {
    /// Connection id.
    pub id: String,
    /// Display name.
    pub label: String,
    /// Provider id.
    pub provider: String,
    /// Whether tokens are stored.
    pub connected: bool,
    /// Health (`healthy` when connected and fine; `not_connected` when never connected).
    pub health: String,
    /// Details of an unhealthy state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When homehook tries again (degraded, misconfigured), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// Renewals that failed in a row.
    pub failures: u32,
    /// Whether another instance is renewing the token right now.
    pub renewing: bool,
    /// Where the owner reconnects, when the connection needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_url: Option<String>,
    /// Access token expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Seconds until expiry.
    pub expires_in_secs: Option<i64>,
    /// Last renewal (RFC 3339).
    pub refreshed_at: Option<String>,
}

/// The status report.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Every configured connection.
    pub connections: Vec<ConnectionStatus>,
    /// Names of the configured actions.
    pub actions: Vec<String>,
    /// Every scheduled action, with its next run and its latest outcome.
    pub schedules: Vec<crate::schedule::ScheduleStatus>,
}

/// Builds the status report (shared by `/status` and `homehook status`).
pub async fn report(services: &Services) -> Result<StatusReport, crate::store::StoreError> {
    let now = services.clock.now();
    let mut connections = Vec::new();
    for conn in services.config.connections.values() {
        let record = services.store.get_token(&conn.id).await?;
        let (health, reason) = match record.as_ref().map(|r| &r.health) {
            None => ("not_connected".to_string(), None),
            Some(h @ Health::Healthy) => (h.label().to_string(), None),
            Some(
                h @ (Health::Degraded { reason, .. }
                | Health::Misconfigured { reason, .. }
                | Health::ReauthNeeded { reason }),
            ) => (h.label().to_string(), Some(reason.clone())),
        };
        let needs_owner = matches!(health.as_str(), "not_connected" | "reauth_needed");
        let reconnect_url = needs_owner
            .then(|| services.config.reconnect_url(conn))
            .flatten();
        connections.push(ConnectionStatus {
            id: conn.id.clone(),
            label: conn.label.clone(),
            provider: conn.provider.clone(),
            connected: record.is_some(),
            health,
            reason,
            retry_at: record
                .as_ref()
                .and_then(|r| r.health.retry_at())
                .map(|t| t.to_rfc3339()),
            failures: record.as_ref().map_or(0, |r| r.lifecycle.failures),
            renewing: record
                .as_ref()
                .and_then(|r| r.lifecycle.lease.as_ref())
                .is_some_and(|l| now < l.until),
            reconnect_url,
            expires_at: record
                .as_ref()
                .and_then(|r| r.expires_at)
                .map(|t| t.to_rfc3339()),
            expires_in_secs: record
                .as_ref()
                .and_then(|r| r.expires_at)
                .map(|t| now.secs_until(t)),
            refreshed_at: record
                .as_ref()
                .and_then(|r| r.refreshed_at)
                .map(|t| t.to_rfc3339()),
        });
    }
    Ok(StatusReport {
        connections,
        actions: services.config.actions.keys().cloned().collect(),
        schedules: crate::schedule::status(services).await?,
    })
}
