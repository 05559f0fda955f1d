//! Where a token is refreshed. Everything that needs an access token asks the [`TokenKeeper`];
//! it refreshes when the token is within the margin of expiry, at most one refresh per
//! connection at a time in this process, and writes the result with a compare-and-swap so that
//! a concurrent writer (another process on the same store) is never overwritten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::catalog::Grant;
use crate::clock::{Clock, UnixTime};
use crate::config::{Config, Connection};
use crate::oauth::{OAuthFlow, TokenEndpointError, TokenGrant};
use crate::secrets::{Secrets, SecretsError};
use crate::store::{Store, StoreError};
use crate::token::{ApiSession, Health, TokenRecord};

/// An action needs at least this much life left in its token; less and it refreshes first.
const ACTION_MARGIN_SECS: i64 = 30;
/// After a passing failure, wait this long before the tick tries again (unless told otherwise).
const DEGRADED_RETRY_SECS: i64 = 60;

/// Why no usable token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The connection was never connected.
    #[error("connection \"{0}\" is not connected yet")]
    NotConnected(String),
    /// The owner must connect again.
    #[error("connection \"{connection}\" must be connected again: {reason}")]
    ReauthNeeded {
        /// The connection.
        connection: String,
        /// What the vendor said.
        reason: String,
    },
    /// homehook's client settings for this vendor are wrong.
    #[error("connection \"{connection}\" is misconfigured: {detail}")]
    Misconfigured {
        /// The connection.
        connection: String,
        /// What to fix.
        detail: String,
    },
    /// The vendor is busy or down; try again later.
    #[error("the vendor is unavailable: {detail}")]
    Unavailable {
        /// What happened.
        detail: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection's secret could not be read.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// What one refresh tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickSummary {
    /// Connections refreshed.
    pub refreshed: usize,
    /// Connections not due.
    pub skipped: usize,
    /// Connections whose refresh failed.
    pub failed: usize,
    /// The failures by class (`transient`, `reauth_needed`, `misconfigured`, `store`), so an
    /// alarm can tell "the vendor is down" from "the owner must reconnect".
    pub failed_by_class: std::collections::BTreeMap<&'static str, usize>,
}

impl TokenError {
    /// The failure's class, as the tick summary counts it.
    pub fn class(&self) -> &'static str {
        match self {
            TokenError::Unavailable { .. } => "transient",
            TokenError::ReauthNeeded { .. } | TokenError::NotConnected(_) => "reauth_needed",
            TokenError::Misconfigured { .. } | TokenError::Secrets(_) => "misconfigured",
            TokenError::Store(_) => "store",
        }
    }
}

/// Keeps every connection's token fresh. Cheap to share (`Arc`).
pub struct TokenKeeper {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    secrets: Arc<dyn Secrets>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// One async lock per connection: concurrent callers share one refresh.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeeper").finish_non_exhaustive()
    }
}

impl TokenKeeper {
    /// A keeper over the given services.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config,
            store,
            secrets,
            http,
            clock,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `conn` with at least 30 s of life left, refreshing first if needed. For a
    /// password-grant connection never connected before, this connects it. A connection that
    /// needs its owner, or that failed recently, answers at once without calling the vendor.
    pub async fn fresh_token(&self, conn: &Connection) -> Result<TokenRecord, TokenError> {
        let now = self.clock.now();
        let Some(record) = self.store.get_token(&conn.id).await? else {
            return match conn.grant {
                Grant::Password => self.renew(conn, None).await,
                Grant::AuthorizationCode => Err(TokenError::NotConnected(conn.id.clone())),
            };
        };
        match &record.health {
            Health::ReauthNeeded { reason } => Err(TokenError::ReauthNeeded {
                connection: conn.id.clone(),
                reason: reason.clone(),
            }),
            _ if !record.expires_within(now, ACTION_MARGIN_SECS) => Ok(record),
            Health::Degraded { until, reason } if now < *until => Err(TokenError::Unavailable {
                detail: reason.clone(),
                retry_after_secs: now.secs_until(*until).max(1) as u64,
            }),
            _ => self.renew(conn, Some(record.version)).await,
        }
    }

    /// The vendor said `stale`'s access token has expired (whatever its expiry claimed):
    /// renew it, unless someone already has.
    pub async fn renew_rejected(
        &self,
        conn: &Connection,
        stale: &TokenRecord,
    ) -> Result<TokenRecord, TokenError> {
        self.renew(conn, Some(stale.version)).await
    }

    /// Refreshes every connection whose token expires within the configured margin.
    pub async fn refresh_due(&self) -> Result<TickSummary, TokenError> {
        let now = self.clock.now();
        let margin = self.config.server.refresh_margin_secs;
        let mut summary = TickSummary::default();
        for record in self.store.list_tokens().await? {
            let Some(conn) = self.config.connections.get(&record.connection) else {
                summary.skipped += 1;
                continue;
            };
            let due = record.expires_within(now, margin)
                && match &record.health {
                    Health::Healthy => true,
                    Health::Degraded { until, .. } => now >= *until,
                    Health::ReauthNeeded { .. } => false,
                };
            if !due {
                summary.skipped += 1;
                continue;
            }
            match self.renew(conn, Some(record.version)).await {
                Ok(_) => summary.refreshed += 1,
                Err(e) => {
                    tracing::warn!(connection = %conn.id, error = %e, class = e.class(), "scheduled refresh failed");
                    summary.failed += 1;
                    *summary.failed_by_class.entry(e.class()).or_default() += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Stores tokens from a code exchange (a new or renewed connection), replacing any record.
    pub async fn store_connected(
        &self,
        conn: &Connection,
        grant: TokenGrant,
    ) -> Result<TokenRecord, TokenError> {
        let now = self.clock.now();
        // Replaces whatever is stored; a conflict means a refresh landed meanwhile, so read the
        // new version and replace that (a newly connected account wins over older tokens).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.store.get_token(&conn.id).await?;
            let record = new_record(conn, grant.clone(), None, now, now);
            match self
                .store
                .swap_token(current.map(|r| r.version), record)
                .await
            {
                Err(StoreError::Conflict) if attempts < 5 => continue,
                other => return Ok(other?),
            }
        }
    }

    /// Stores (or, with `None`, forgets) the connection's device session, on the latest record.
    pub async fn save_session(
        &self,
        conn: &Connection,
        session: Option<ApiSession>,
    ) -> Result<TokenRecord, TokenError> {
        for _ in 0..5 {
            let Some(mut record) = self.store.get_token(&conn.id).await? else {
                return Err(TokenError::NotConnected(conn.id.clone()));
            };
            let version = record.version;
            record.session = session.clone();
            match self.store.swap_token(Some(version), record).await {
                Err(StoreError::Conflict) => continue,
                other => return Ok(other?),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// The current record of a connection, as stored.
    pub async fn stored(&self, conn: &Connection) -> Result<Option<TokenRecord>, TokenError> {
        Ok(self.store.get_token(&conn.id).await?)
    }

    /// One async lock per key: callers sharing a key do one piece of work at a time (a refresh
    /// per connection, a session login per connection).
    pub(crate) fn lock_for(&self, connection: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = match self.in_flight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(map.entry(connection.to_string()).or_default())
    }

    /// Renews the token of `conn`, which the caller last saw at `seen_version`.
    async fn renew(
        &self,
        conn: &Connection,
        seen_version: Option<u64>,
    ) -> Result<TokenRecord, TokenError> {
        let lock = self.lock_for(&conn.id);
        let _one_at_a_time = lock.lock().await;

        let now = self.clock.now();
        let current = self.store.get_token(&conn.id).await?;
        if let Some(r) = &current
            && Some(r.version) != seen_version
            && !r.expires_within(now, ACTION_MARGIN_SECS)
            && r.health == Health::Healthy
        {
            // Someone renewed it while we waited for the lock.
            return Ok(r.clone());
        }
        // The vendor asked us to wait (a 429 with its retry-after, an outage): asking again
        // before then only spends the token budget (Somfy: 5 per 10 minutes).
        if let Some(TokenRecord {
            health: Health::Degraded { until, reason },
            ..
        }) = &current
            && now < *until
        {
            return Err(TokenError::Unavailable {
                detail: reason.clone(),
                retry_after_secs: now.secs_until(*until).max(1) as u64,
            });
        }
        let spec = self
            .config
            .provider_of(conn)
            .ok_or_else(|| TokenError::Misconfigured {
                connection: conn.id.clone(),
                detail: format!("unknown provider {}", conn.provider),
            })?;
        let creds = self.secrets.client_credentials(&conn.secret).await?;
        let flow =
            OAuthFlow::new(spec, &creds, None, &self.http).map_err(|e| misconfigured(conn, &e))?;

        let old_refresh = current.as_ref().and_then(|r| r.refresh_token.clone());
        let result = match &old_refresh {
            Some(rt) => flow.refresh(rt).await,
            None if conn.grant == Grant::Password => flow.password(&conn.scopes).await,
            None => {
                return Err(TokenError::ReauthNeeded {
                    connection: conn.id.clone(),
                    reason: "no refresh token was issued".into(),
                });
            }
        };
        let result = match result {
            // The refresh token is dead; a password-grant connection can start over.
            Err(e)
                if e.is_invalid_grant()
                    && old_refresh.is_some()
                    && conn.grant == Grant::Password =>
            {
                tracing::info!(connection = %conn.id, "refresh token rejected; using the password grant");
                flow.password(&conn.scopes).await
            }
            other => other,
        };
        match result {
            Ok(grant) => {
                let connected_at = current.as_ref().map(|r| r.connected_at).unwrap_or(now);
                let mut record = new_record(conn, grant, old_refresh.clone(), connected_at, now);
                // A device session outlives access tokens; it is dropped when the device refuses it.
                record.session = current.as_ref().and_then(|r| r.session.clone());
                match self
                    .store
                    .swap_token(current.as_ref().map(|r| r.version), record.clone())
                    .await
                {
                    Ok(stored) => {
                        tracing::info!(connection = %conn.id, expires_at = ?stored.expires_at, "token refreshed");
                        Ok(stored)
                    }
                    // Another process wrote meanwhile. If it renewed the tokens, its record is
                    // the one to use; if it only touched the record (a Homey session, a health
                    // verdict) while the vendor has already rotated the refresh token to ours,
                    // ours must still be stored, or the connection dies.
                    Err(StoreError::Conflict) => {
                        self.store_after_conflict(conn, record, old_refresh.as_ref())
                            .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(self.record_failure(conn, current, e, now).await),
        }
    }

    /// Stores a fresh `record` after a write conflict, unless the stored record already holds
    /// newer tokens than the ones this renewal started from (`used_refresh`).
    async fn store_after_conflict(
        &self,
        conn: &Connection,
        mut record: TokenRecord,
        used_refresh: Option<&crate::secret::SecretString>,
    ) -> Result<TokenRecord, TokenError> {
        for _ in 0..5 {
            let Some(stored) = self.store.get_token(&conn.id).await? else {
                return Err(TokenError::NotConnected(conn.id.clone()));
            };
            if stored.refresh_token.as_ref() != used_refresh {
                // A sibling renewed (or the owner reconnected): its tokens are the newer ones.
                return Ok(stored);
            }
            record.session = stored.session.clone();
            match self
                .store
                .swap_token(Some(stored.version), record.clone())
                .await
            {
                Err(StoreError::Conflict) => continue,
                Ok(written) => {
                    tracing::info!(connection = %conn.id, "token refreshed (stored after a concurrent write)");
                    return Ok(written);
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::error!(connection = %conn.id, "could not store a renewed token after repeated write conflicts");
        Err(StoreError::Conflict.into())
    }

    /// Classifies a failed renewal, records the connection's health and returns the error.
    async fn record_failure(
        &self,
        conn: &Connection,
        current: Option<TokenRecord>,
        error: TokenEndpointError,
        now: UnixTime,
    ) -> TokenError {
        let (health, err) = match &error {
            TokenEndpointError::RateLimited { retry_after_secs } => (
                Health::Degraded {
                    until: now.plus_secs(*retry_after_secs as i64),
                    reason: error.to_string(),
                },
                TokenError::Unavailable {
                    detail: error.to_string(),
                    retry_after_secs: *retry_after_secs,
                },
            ),
            TokenEndpointError::Unavailable(_) | TokenEndpointError::Malformed(_) => (
                Health::Degraded {
                    until: now.plus_secs(DEGRADED_RETRY_SECS),
                    reason: error.to_string(),
                },
                TokenError::Unavailable {
                    detail: error.to_string(),
                    retry_after_secs: DEGRADED_RETRY_SECS as u64,
                },
            ),
            e if e.is_misconfiguration() => (
                Health::ReauthNeeded {
                    reason: error.to_string(),
                },
                misconfigured(conn, e),
            ),
            _ => (
                Health::ReauthNeeded {
                    reason: error.to_string(),
                },
                TokenError::ReauthNeeded {
                    connection: conn.id.clone(),
                    reason: error.to_string(),
                },
            ),
        };
        tracing::warn!(connection = %conn.id, health = health.label(), error = %error, "token renewal failed");
        if let Some(mut record) = current {
            let version = record.version;
            record.health = health;
            // Best effort: if someone wrote meanwhile, their record is newer than our verdict.
            let _ = self.store.swap_token(Some(version), record).await;
        }
        err
    }
}

fn misconfigured(conn: &Connection, e: &TokenEndpointError) -> TokenError {
    TokenError::Misconfigured {
        connection: conn.id.clone(),
        detail: format!(
            "{e}; check client_id and client_secret in secret \"{}\", the scopes of connection \"{}\", and that the redirect URI registered with the vendor is this server's /callback/{} URL",
            conn.secret, conn.id, conn.provider
        ),
    }
}

fn new_record(
    conn: &Connection,
    grant: TokenGrant,
    old_refresh: Option<crate::secret::SecretString>,
    connected_at: UnixTime,
    now: UnixTime,
) -> TokenRecord {
    TokenRecord {
        connection: conn.id.clone(),
        access_token: grant.access_token,
        // A refresh answer without a refresh token means "keep using the old one".
        refresh_token: grant.refresh_token.or(old_refresh),
        expires_at: grant
            .expires_in
            .map(|s| now.plus_secs(s))
            .or(grant.expires_at),
        scopes: grant.scopes.unwrap_or_else(|| conn.scopes.clone()),
        connected_at,
        refreshed_at: Some(now),
        version: 0,
        health: Health::Healthy,
        session: None,
    }
}
