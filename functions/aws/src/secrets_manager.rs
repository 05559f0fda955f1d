//! The secrets port on Secrets Manager: one JSON secret holds every vendor's client
//! credentials, by the names connections use, and may hold the admin key's hash:
//!
//! ```json
//! { "netatmo": { "client_id": "…", "client_secret": "…" },
//!   "somfy":   { "client_id": "…", "client_secret": "…", "username": "…", "password": "…" },
//!   "admin_key_hash": "sha256:…" }
//! ```
//!
//! The secret is read once per container and kept for a TTL (5 minutes by default), so a warm
//! invocation makes no Secrets Manager call; a rotated value is seen within the TTL.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use homehook_core::clock::{Clock, UnixTime};
use homehook_core::secrets::{Secrets, SecretsError};
use serde_json::Value;

/// How long a read secret is kept.
pub const DEFAULT_TTL_SECS: i64 = 300;

/// What was read; no `Debug`: it holds the secret's values.
#[derive(Clone)]
struct Cached {
    read_at: UnixTime,
    entries: BTreeMap<String, Value>,
}

/// Client credentials from one Secrets Manager secret, cached per container.
pub struct SecretsManagerSecrets {
    client: Client,
    secret_id: String,
    ttl_secs: i64,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerSecrets")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerSecrets {
    /// Secrets from `secret_id` (a name or ARN), kept for [`DEFAULT_TTL_SECS`].
    pub fn new(client: Client, secret_id: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            ttl_secs: DEFAULT_TTL_SECS,
            clock,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Changes how long a read secret is kept.
    pub fn with_ttl_secs(mut self, secs: i64) -> Self {
        self.ttl_secs = secs;
        self
    }

    /// Writes `entries` into the secret, keeping the entries it has that `entries` does not
    /// name (the admin key's hash, another vendor's credentials). Returns the names written.
    /// The next read sees the new value at once in this process; other containers within
    /// their cache's TTL.
    pub async fn merge(
        &self,
        entries: &BTreeMap<String, Value>,
    ) -> Result<Vec<String>, SecretsError> {
        // Read fresh: a cached value may be older than the secret.
        *self.cache.lock().await = None;
        let mut all = self.entries().await?;
        for (name, value) in entries {
            all.insert(name.clone(), value.clone());
        }
        let text = serde_json::to_string(&all).map_err(|e| SecretsError::Malformed {
            name: self.secret_id.clone(),
            problem: e.to_string(),
        })?;
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| SecretsError::Backend(DisplayErrorContext(e).to_string()))?;
        *self.cache.lock().await = None;
        Ok(entries.keys().cloned().collect())
    }

    /// The secret's entries, from the cache while it is fresh. One reader at a time, so a cold
    /// container that gets several requests at once reads the secret once.
    async fn entries(&self) -> Result<BTreeMap<String, Value>, SecretsError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && now < c.read_at.plus_secs(self.ttl_secs)
        {
            return Ok(c.entries.clone());
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretsError::Backend(DisplayErrorContext(e).to_string()))?;
        let text = out.secret_string().ok_or_else(|| SecretsError::Malformed {
            name: self.secret_id.clone(),
            problem: "the secret has no string value (a JSON object is expected)".into(),
        })?;
        // The value is never echoed: serde's message for a bad document names a position only.
        let entries: BTreeMap<String, Value> =
            serde_json::from_str(text).map_err(|e| SecretsError::Malformed {
                name: self.secret_id.clone(),
                problem: format!(
                    "not a JSON object (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        *cache = Some(Cached {
            read_at: now,
            entries: entries.clone(),
        });
        Ok(entries)
    }
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn entry(&self, name: &str) -> Result<Value, SecretsError> {
        let mut entries = self.entries().await?;
        entries.remove(name).ok_or_else(|| SecretsError::NoEntry {
            name: name.to_string(),
            store: self.secret_id.clone(),
        })
    }
}
