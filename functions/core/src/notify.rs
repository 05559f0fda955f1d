//! Telling the owner. When a connection needs them (reconnect, fix a setting), keeps failing,
//! or works again, a [`Notification`] goes to every configured sink: a webhook (POST, signed
//! with HMAC-SHA256 over timestamp and body, shaped as plain JSON or for ntfy, Slack or
//! Pushover) and, on AWS, an SNS topic (in the AWS adapter).
//!
//! Each problem is notified once, by the process whose write recorded it (see
//! [`crate::refresh`]). A notification that cannot be delivered is logged and dropped: telling
//! the owner must never stop a renewal.
//!
//! # Signature
//!
//! With a `signing_key` in the webhook's secret, every POST carries
//! `X-Homehook-Timestamp: <unix seconds>` and
//! `X-Homehook-Signature: sha256=<hex of HMAC-SHA256(signing_key, "<timestamp>.<body>")>`.
//! A receiver recomputes it over the raw body, compares in constant time, and refuses
//! timestamps more than 5 minutes old.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::Grant;
use crate::clock::{Clock, UnixTime};
use crate::config::{Config, Connection, WebhookFormat};
use crate::secrets::{Secrets, SecretsError};

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The vendor refused the refresh token (or password): the owner must connect again.
    ReauthNeeded,
    /// homehook's settings for the vendor are wrong (client id or secret, scopes, redirect URI).
    Misconfigured,
    /// Renewals keep failing for a passing reason (vendor down, rate limited).
    Failing,
    /// The connection works again after one of the above.
    Recovered,
    /// A scheduled action did not run or failed.
    ScheduleFailed,
}

impl Event {
    /// The event's name, as in the JSON body and the `X-Homehook-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::ReauthNeeded => "reauth_needed",
            Event::Misconfigured => "misconfigured",
            Event::Failing => "failing",
            Event::Recovered => "recovered",
            Event::ScheduleFailed => "schedule_failed",
        }
    }
}

/// One message to the owner. Never holds a token or a secret: reasons are the vendor's error
/// codes and homehook's own words.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: Event,
    /// Connection id.
    pub connection: String,
    /// Connection label ("Home").
    pub label: String,
    /// Provider id.
    pub provider: String,
    /// A short title ("homehook: Home needs you").
    pub title: String,
    /// What happened and what to do, in one paragraph.
    pub message: String,
    /// What the vendor or homehook said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the owner reconnects (opens with the admin key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_url: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

impl Notification {
    /// The notification for `event` on `conn` (whose provider is called `provider`).
    pub fn about(
        config: &Config,
        conn: &Connection,
        provider: &str,
        event: Event,
        reason: Option<String>,
        now: UnixTime,
    ) -> Self {
        let name = format!("{} ({provider})", conn.label);
        let because = reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let (title, message) = match (event, conn.grant) {
            (Event::ReauthNeeded, Grant::AuthorizationCode) => (
                format!("homehook: reconnect {}", conn.label),
                format!(
                    "{name} no longer accepts homehook's access{because}. Its actions fail until you connect it again: open /connect/{} with the admin key.",
                    conn.id
                ),
            ),
            (Event::ReauthNeeded, Grant::Password) => (
                format!("homehook: {} refused the login", conn.label),
                format!(
                    "{name} refused homehook's login{because}. Check the username and password in secret \"{}\"; homehook tries again on the next action.",
                    conn.secret
                ),
            ),
            (Event::Misconfigured, _) => (
                format!("homehook: fix the settings of {}", conn.label),
                format!("{name} refused homehook's app settings{because}."),
            ),
            (Event::Failing, _) => (
                format!("homehook: {} keeps failing", conn.label),
                format!(
                    "Renewing the access to {name} keeps failing{because}. homehook keeps its tokens and keeps trying; actions answer \"try again later\" meanwhile."
                ),
            ),
            (Event::Recovered, _) => (
                format!("homehook: {} works again", conn.label),
                format!("{name} works again."),
            ),
            (Event::ScheduleFailed, _) => (
                format!("homehook: a scheduled action on {} failed", conn.label),
                format!("A scheduled action on {name} failed{because}."),
            ),
        };
        Self {
            event,
            connection: conn.id.clone(),
            label: conn.label.clone(),
            provider: conn.provider.clone(),
            title,
            message,
            reason,
            reconnect_url: if event == Event::ReauthNeeded {
                config.reconnect_url(conn)
            } else {
                None
            },
            at: now.to_rfc3339(),
        }
    }
}

impl Notification {
    /// The notification for a scheduled run of `action` (on `conn`) that failed at `due`.
    pub fn schedule_failed(
        config: &Config,
        schedule: &crate::config::Schedule,
        conn: &Connection,
        due: &str,
        reason: String,
        now: UnixTime,
    ) -> Self {
        let mut n = Self::about(
            config,
            conn,
            &conn.provider,
            Event::ScheduleFailed,
            Some(reason),
            now,
        );
        n.title = format!("homehook: \"{}\" did not run", schedule.name);
        n.message = format!(
            "The scheduled action \"{}\" ({} at {}, {}) failed at its {due} run: {}. It runs again at its next time; `homehook status` shows the last result.",
            schedule.name,
            schedule.action,
            schedule.cron,
            schedule.time_zone_name,
            n.reason.as_deref().unwrap_or("unknown error"),
        );
        n
    }
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The sink's secret is missing or malformed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The receiver could not be reached or refused it.
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// A place notifications go.
#[async_trait]
pub trait Notify: Send + Sync {
    /// Delivers one notification.
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
    /// What the sink is, for logs ("webhook (ntfy)", "SNS").
    fn describe(&self) -> String;
}

/// Every configured sink.
#[derive(Clone, Default)]
pub struct Notifiers {
    sinks: Vec<Arc<dyn Notify>>,
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.sinks.iter().map(|s| s.describe()).collect();
        f.debug_tuple("Notifiers").field(&names).finish()
    }
}

/// How long one sink may take; a slow receiver must not hold a renewal (or a Lambda) hostage.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl Notifiers {
    /// Sinks to send to.
    pub fn new(sinks: Vec<Arc<dyn Notify>>) -> Self {
        Self { sinks }
    }

    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn Notify>) {
        self.sinks.push(sink);
    }

    /// Adds every sink of `other`.
    pub fn extend(&mut self, other: &Notifiers) {
        self.sinks.extend(other.sinks.iter().cloned());
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Sends to every sink; failures are logged, not returned.
    pub async fn send(&self, notification: &Notification) {
        for sink in &self.sinks {
            let outcome = tokio::time::timeout(SEND_TIMEOUT, sink.send(notification)).await;
            match outcome {
                Ok(Ok(())) => tracing::info!(
                    connection = %notification.connection,
                    event = notification.event.as_str(),
                    sink = %sink.describe(),
                    "owner notified"
                ),
                Ok(Err(e)) => tracing::warn!(
                    connection = %notification.connection,
                    event = notification.event.as_str(),
                    sink = %sink.describe(),
                    error = %e,
                    "notification not delivered"
                ),
                Err(_) => tracing::warn!(
                    connection = %notification.connection,
                    event = notification.event.as_str(),
                    sink = %sink.describe(),
                    "notification not delivered: the receiver took too long"
                ),
            }
        }
    }
}

/// POSTs notifications to a URL kept in a secret.
pub struct Webhook {
    secret: String,
    format: WebhookFormat,
    secrets: Arc<dyn Secrets>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl Webhook {
    /// A webhook whose URL (and signing key) live in secret entry `secret`.
    pub fn new(
        secret: impl Into<String>,
        format: WebhookFormat,
        secrets: Arc<dyn Secrets>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            secret: secret.into(),
            format,
            secrets,
            http,
            clock,
        }
    }
}

#[async_trait]
impl Notify for Webhook {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let hook = self.secrets.webhook(&self.secret).await?;
        let with_link = match &n.reconnect_url {
            Some(url) => format!("{} {url}", n.message),
            None => n.message.clone(),
        };
        let mut headers: Vec<(&str, String)> = vec![("x-homehook-event", n.event.as_str().into())];
        let (body, content_type) = match self.format {
            WebhookFormat::Json => (serde_json::to_vec(n), "application/json"),
            WebhookFormat::Slack => (
                serde_json::to_vec(
                    &serde_json::json!({ "text": format!("*{}*\n{with_link}", n.title) }),
                ),
                "application/json",
            ),
            WebhookFormat::Ntfy => {
                headers.push(("title", n.title.clone()));
                headers.push(("tags", "house,warning".into()));
                let priority = if n.event == Event::Recovered {
                    "3"
                } else {
                    "4"
                };
                headers.push(("priority", priority.into()));
                if let Some(url) = &n.reconnect_url {
                    headers.push(("click", url.clone()));
                }
                (
                    Ok(n.message.clone().into_bytes()),
                    "text/plain; charset=utf-8",
                )
            }
            WebhookFormat::Pushover => {
                let (Some(token), Some(user)) = (&hook.pushover_token, &hook.pushover_user) else {
                    return Err(SecretsError::Malformed {
                        name: self.secret.clone(),
                        problem: "format \"pushover\" needs pushover_token and pushover_user in the entry".into(),
                    }
                    .into());
                };
                let mut body = serde_json::json!({
                    "token": token.expose(),
                    "user": user.expose(),
                    "title": n.title,
                    "message": n.message,
                });
                if let Some(url) = &n.reconnect_url {
                    body["url"] = url.clone().into();
                    body["url_title"] = "Reconnect".into();
                }
                (serde_json::to_vec(&body), "application/json")
            }
        };
        let body = body.map_err(|e| NotifyError::Delivery(e.to_string()))?;
        let mut request = self
            .http
            .post(hook.url.expose())
            .header("content-type", content_type)
            .timeout(SEND_TIMEOUT);
        if let Some(key) = &hook.signing_key {
            let ts = self.clock.now().0;
            request = request
                .header("x-homehook-timestamp", ts.to_string())
                .header(
                    "x-homehook-signature",
                    crate::guard::signature::sign(key.expose().as_bytes(), ts, &body),
                );
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // reqwest's errors quote the URL, and a webhook URL is a credential: drop it.
        let answer = request
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::Delivery(e.without_url().to_string()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(NotifyError::Delivery(format!(
                "the receiver answered HTTP {}",
                answer.status().as_u16()
            )))
        }
    }

    fn describe(&self) -> String {
        let format = match self.format {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Ntfy => "ntfy",
            WebhookFormat::Pushover => "pushover",
        };
        format!("webhook \"{}\" ({format})", self.secret)
    }
}
