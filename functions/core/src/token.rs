//! What homehook keeps per connection: its tokens, their expiry, and the connection's health.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::sensitive::SecretString;

/// A connection's stored tokens. Written only through a compare-and-swap on `version`
/// (see [`crate::store::TokenStore::swap_token`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Connection id.
    pub connection: String,
    /// Current access token.
    pub access_token: SecretString,
    /// Current refresh token, if the provider issued one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires; `None` if the provider did not say.
    pub expires_at: Option<UnixTime>,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When the owner connected the account.
    pub connected_at: UnixTime,
    /// When the access token was last renewed.
    #[serde(default)]
    pub refreshed_at: Option<UnixTime>,
    /// Version of the record in the store; the store sets it on every write.
    #[serde(default)]
    pub version: u64,
    /// Whether the connection works.
    #[serde(default)]
    pub health: Health,
    /// A second-stage credential derived from the access token (Homey's per-Homey session),
    /// kept across access-token refreshes until the device refuses it.
    #[serde(default)]
    pub session: Option<DeviceSession>,
    /// Renewal bookkeeping shared by every process on the store.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// When the scheduled tick next has work here (a renewal, a keep-alive, a retry, a lapsed
    /// lease); `None` when nothing will come due (no expiry, or the owner must reconnect). The
    /// [`crate::refresh::TokenKeeper`] sets it on every write and the stores index it, so a
    /// tick reads the due records only ([`crate::store::TokenStore::due_tokens`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<UnixTime>,
}

/// The bookkeeping of renewals, kept with the tokens so that every process (Lambda instances,
/// several `homehook` processes on one store) sees it and changes it through the same
/// compare-and-swap as the tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Who is calling the token endpoint for this connection right now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// When the current refresh token was first seen (for refresh tokens that lapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_issued_at: Option<UnixTime>,
    /// Recent token-endpoint calls, for providers with a token budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_calls: Vec<UnixTime>,
    /// Renewals that failed in a row.
    #[serde(default)]
    pub failures: u32,
    /// What the owner was last told about (`reauth_needed`, `misconfigured`, `failing`), so
    /// each problem is notified once and its end is notified too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<String>,
}

impl Lifecycle {
    /// The token calls made less than `window_secs` before `now`.
    pub fn calls_within(&self, now: UnixTime, window_secs: i64) -> Vec<UnixTime> {
        self.token_calls
            .iter()
            .copied()
            .filter(|t| t.plus_secs(window_secs) > now)
            .collect()
    }
}

/// A claim on the token endpoint: until `until`, only `holder` renews the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The process (random id per [`crate::refresh::TokenKeeper`]).
    pub holder: String,
    /// When the claim lapses, whether or not the holder finished.
    pub until: UnixTime,
}

/// A session on a device reached through the vendor's cloud (Homey: the session bearer of one
/// Homey, obtained with a delegation token).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceSession {
    /// Base URL of the device's API.
    pub base_url: String,
    /// The session bearer.
    pub bearer: SecretString,
    /// Headers every call carries (`X-Homey-ID`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// What the session reaches, for people ("Homey Pro (Living room)").
    pub label: String,
    /// When it was obtained.
    pub obtained_at: UnixTime,
    /// When homehook renews it even if the device has not refused it yet.
    pub renew_after: UnixTime,
}

impl TokenRecord {
    /// Whether the access token expires within `secs` seconds of `now` (or already has).
    pub fn expires_within(&self, now: UnixTime, secs: i64) -> bool {
        self.expires_at.is_some_and(|at| now.plus_secs(secs) >= at)
    }

    /// How long the vendor granted the access token for: from its issue (the last renewal,
    /// or the connection) to its expiry; `None` when the vendor did not say.
    pub fn lifetime_secs(&self) -> Option<i64> {
        let issued = self.refreshed_at.unwrap_or(self.connected_at);
        self.expires_at
            .map(|at| issued.secs_until(at))
            .filter(|secs| *secs > 0)
    }
}

/// Health of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Tokens work.
    #[default]
    Healthy,
    /// The last renewal failed for a passing reason; homehook tries again after `until`.
    Degraded {
        /// Next attempt.
        until: UnixTime,
        /// What failed.
        reason: String,
    },
    /// The owner must connect again (refresh token rejected, revoked or lapsed).
    ReauthNeeded {
        /// What the vendor said.
        reason: String,
    },
    /// The vendor refused homehook's own settings (client id or secret, scopes, redirect URI).
    /// The tokens are kept: once the setting is fixed, renewal resumes after `until`.
    Misconfigured {
        /// Next attempt.
        until: UnixTime,
        /// What to fix.
        reason: String,
    },
}

impl Health {
    /// Short word for tables and JSON: `healthy`, `degraded`, `reauth_needed`, `misconfigured`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded { .. } => "degraded",
            Health::ReauthNeeded { .. } => "reauth_needed",
            Health::Misconfigured { .. } => "misconfigured",
        }
    }

    /// When homehook tries again, for the states that wait.
    pub fn retry_at(&self) -> Option<UnixTime> {
        match self {
            Health::Degraded { until, .. } | Health::Misconfigured { until, .. } => Some(*until),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_record_hides_tokens() {
        let r = TokenRecord {
            connection: "home".into(),
            access_token: SecretString::new("at-secret"),
            refresh_token: Some(SecretString::new("rt-secret")),
            expires_at: Some(UnixTime(100)),
            scopes: vec![],
            connected_at: UnixTime(0),
            refreshed_at: None,
            version: 1,
            health: Health::Healthy,
            session: None,
            lifecycle: Lifecycle::default(),
            due_at: None,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(r.expires_within(UnixTime(50), 60));
        assert!(!r.expires_within(UnixTime(50), 10));
    }
}
