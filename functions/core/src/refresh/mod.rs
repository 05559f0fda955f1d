//! Where a token is refreshed. Everything that needs an access token asks the [`TokenKeeper`].
//!
//! The lifecycle, and why:
//!
//! - **One renewal at a time.** In a process, concurrent callers queue on one lock per
//!   connection and the first one renews. Across processes (Lambda instances, several
//!   `homehook` on one store), a lease written into the token record with a compare-and-swap
//!   decides who calls the token endpoint; the others poll the record until the new tokens land
//!   (`renew.rs`). The final write is a compare-and-swap on the lease's version, so a slow holder
//!   whose lease lapsed cannot overwrite newer tokens.
//! - **Nothing rotated is lost.** New tokens are stored before anyone uses them; a failing
//!   store is retried with backoff, and then the tokens are kept in memory and stored first
//!   thing on the next use. A refused refresh token is checked against the store first: a
//!   sibling may have rotated it.
//! - **Failures are classed** (`failure.rs`): transient (wait, keep tokens), reauth needed
//!   (mark, tell the owner, keep the data), misconfigured (name the setting).
//! - **One renewal per lifetime** (`policy.rs`, `lead_secs`): renew a lead ahead of expiry —
//!   the margin or a tenth of the token's lifetime, whichever is shorter — so a 10-s token is
//!   renewed once per lifetime under traffic, not once per action, and a token issued moments
//!   ago is always used.
//! - **Each provider's pace** (`policy.rs`): renew ahead of expiry, keep lapsing refresh tokens
//!   alive, stay inside token budgets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::catalog::Grant;
use crate::clock::{Clock, UnixTime};
use crate::config::{Config, Connection};
use crate::error::TokenError;
use crate::notify::{Event, Notifiers};
use crate::oauth::TokenGrant;
use crate::secrets::Secrets;
use crate::store::{Store, StoreError};
use crate::token::{Health, TokenRecord};

mod failure;
mod holder;
mod policy;
mod renew;
mod session;

/// A record whose connection is gone from the config is looked at again this much later.
const ORPHAN_RECHECK_SECS: i64 = 24 * 3600;

/// An action needs at least this much life left in its token (or a tenth of the token's
/// lifetime, if shorter: see `policy::lead_secs`); less and it refreshes first.
const ACTION_MARGIN_SECS: i64 = 30;

/// What one pass over the due tokens did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefreshSummary {
    /// Records the due index gave (the only ones the tick read).
    pub due: usize,
    /// Connections refreshed.
    pub refreshed: usize,
    /// Records the index named that turned out not to be due (filed again under their real
    /// due time) or whose connection is no longer configured.
    pub skipped: usize,
    /// Connections whose refresh failed.
    pub failed: usize,
    /// The failures by class (`transient`, `reauth_needed`, `misconfigured`, `store`), so an
    /// alarm can tell "the vendor is down" from "the owner must reconnect".
    pub failed_by_class: std::collections::BTreeMap<&'static str, usize>,
}

/// The class of a renewal failure, as the tick summary counts it (`transient`,
/// `reauth_needed`, `misconfigured`, `store`).
pub fn failure_class(e: &TokenError) -> &'static str {
    match e {
        TokenError::Unavailable { .. } => "transient",
        TokenError::ReauthNeeded { .. } | TokenError::NotConnected(_) => "reauth_needed",
        TokenError::Misconfigured { .. } | TokenError::Secrets(_) => "misconfigured",
        TokenError::Store(_) => "store",
    }
}

/// Keeps every connection's token fresh. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct TokenKeeper {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    secrets: Arc<dyn Secrets>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    notifiers: Notifiers,
    /// This process's name in leases.
    holder: Arc<str>,
    /// How long a lease holds: the token call's timeout and some slack.
    lease_secs: i64,
    /// One async lock per connection: concurrent callers share one refresh.
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Renewed tokens the store would not take, kept until a write succeeds (the vendor has
    /// already rotated the refresh token: these are the only live ones).
    unsaved: Arc<Mutex<HashMap<String, renew::Unsaved>>>,
}

impl std::fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeeper")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TokenKeeper {
    /// A keeper over the given services; `notifiers` hear about connections that need the owner.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        notifiers: Notifiers,
    ) -> Self {
        let lease_secs = config.server.vendor_timeout_secs as i64 + 10;
        Self {
            config,
            store,
            secrets,
            http,
            clock,
            notifiers,
            holder: holder::new_id().into(),
            lease_secs,
            in_flight: Arc::default(),
            unsaved: Arc::default(),
        }
    }

    /// The same keeper under a new config (a new version published): the renewals in flight,
    /// the tokens the store has not taken yet and the lease holder's name carry over.
    pub fn reconfigured(
        &self,
        config: Arc<Config>,
        http: reqwest::Client,
        notifiers: Notifiers,
    ) -> Self {
        Self {
            lease_secs: config.server.vendor_timeout_secs as i64 + 10,
            config,
            http,
            notifiers,
            ..self.clone()
        }
    }

    /// A token for `conn` with life left for the call (30 s, or a tenth of a short token's
    /// lifetime), refreshing first if needed. For a password-grant connection never connected
    /// before, this connects it. A connection that needs its owner, or that failed recently,
    /// answers at once without calling the vendor.
    pub async fn fresh_token(&self, conn: &Connection) -> Result<TokenRecord, TokenError> {
        let now = self.clock.now();
        let Some(record) = self.store.get_token(&conn.id).await? else {
            return match conn.grant {
                Grant::Password => self.renew(conn, None).await,
                Grant::AuthorizationCode => Err(TokenError::NotConnected(conn.id.clone())),
            };
        };
        let pending = lock(&self.unsaved).contains_key(&conn.id);
        match &record.health {
            Health::ReauthNeeded { reason } => Err(TokenError::ReauthNeeded {
                connection: conn.id.clone(),
                reason: reason.clone(),
            }),
            _ if !pending && policy::usable_for_action(&record, now) => Ok(record),
            Health::Degraded { until, reason } if now < *until => Err(TokenError::Unavailable {
                detail: reason.clone(),
                retry_after_secs: now.secs_until(*until).max(1) as u64,
            }),
            Health::Misconfigured { until, reason } if now < *until => {
                Err(TokenError::Misconfigured {
                    connection: conn.id.clone(),
                    detail: reason.clone(),
                })
            }
            _ => self.renew(conn, Some(&record)).await,
        }
    }

    /// The vendor said `stale`'s access token has expired (whatever its expiry claimed):
    /// renew it, unless someone already has.
    pub async fn renew_rejected(
        &self,
        conn: &Connection,
        stale: &TokenRecord,
    ) -> Result<TokenRecord, TokenError> {
        self.renew(conn, Some(stale)).await
    }

    /// One tick: renews every connection that is due (access token within its margin of
    /// expiry, or a lapsing refresh token at half its life), skipping those another process is
    /// renewing and those waiting for their retry time or their owner. It reads the due records
    /// only, through the stores' index on [`TokenRecord::due_at`].
    pub async fn refresh_due(&self) -> Result<RefreshSummary, TokenError> {
        let now = self.clock.now();
        let mut summary = RefreshSummary::default();
        for record in self.store.due_tokens(now).await? {
            summary.due += 1;
            let known = self
                .config
                .connections
                .get(&record.connection)
                .and_then(|conn| Some((conn, self.config.provider_of(conn)?)));
            let Some((conn, spec)) = known else {
                // A connection no longer configured: look again in a day rather than every
                // tick (it comes back to life if the config names it again).
                self.refile(&record, Some(now.plus_secs(ORPHAN_RECHECK_SECS)))
                    .await;
                summary.skipped += 1;
                continue;
            };
            if !policy::due(&record, &spec.refresh, &self.config.server, now) {
                // Filed under an older due time (a changed margin, a store from before the
                // index): file it under the right one.
                self.refile(
                    &record,
                    policy::due_at(&record, &spec.refresh, &self.config.server),
                )
                .await;
                summary.skipped += 1;
                continue;
            }
            match self.renew(conn, Some(&record)).await {
                Ok(_) => summary.refreshed += 1,
                Err(e) => {
                    tracing::warn!(connection = %conn.id, error = %e, class = failure_class(&e), "scheduled refresh failed");
                    summary.failed += 1;
                    *summary
                        .failed_by_class
                        .entry(failure_class(&e))
                        .or_default() += 1;
                }
            }
        }
        Ok(summary)
    }

    /// At start-up: renews now every connection whose renewal lease is held by a process that
    /// is gone (a `homehook serve` killed between the vendor's answer and the store write). A
    /// refresh token the vendor rotated away is then found at once — the connection is marked
    /// `reauth_needed` and its owner told, with the reconnect link — instead of at its next
    /// renewal. Only on stores whose processes all run on this machine. Returns how many
    /// connections it looked at again.
    pub async fn recover_abandoned(&self) -> Result<usize, TokenError> {
        if !self.store.holders_on_this_machine() {
            return Ok(0);
        }
        let mut found = 0;
        for record in self.store.list_tokens().await? {
            let Some(lease) = &record.lifecycle.lease else {
                continue;
            };
            if *lease.holder == *self.holder || !holder::gone(&lease.holder) {
                continue;
            }
            let Some(conn) = self.config.connections.get(&record.connection) else {
                continue;
            };
            found += 1;
            tracing::warn!(connection = %conn.id, "a renewal was interrupted (its process is gone); renewing now");
            if let Err(e) = self.renew(conn, Some(&record)).await {
                tracing::warn!(connection = %conn.id, error = %e, class = failure_class(&e), "renewal after an interrupted one failed");
            }
        }
        Ok(found)
    }

    /// Writes `record` if the stored version is `expected`, filed under its due time. Every
    /// token write of the keeper goes through here, so the tick's index follows the records.
    async fn write(
        &self,
        conn: &Connection,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        record.due_at = self
            .config
            .provider_of(conn)
            .and_then(|spec| policy::due_at(&record, &spec.refresh, &self.config.server));
        self.store.swap_token(expected, record).await
    }

    /// Files `record` under another due time, unless it changed meanwhile (then its writer
    /// filed it).
    async fn refile(&self, record: &TokenRecord, due_at: Option<UnixTime>) {
        let mut refiled = record.clone();
        refiled.due_at = due_at;
        match self.store.swap_token(Some(record.version), refiled).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => {
                tracing::warn!(connection = %record.connection, error = %e, "could not refile a token record in the due index");
            }
        }
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
            let was_notified = current
                .as_ref()
                .is_some_and(|r| r.lifecycle.notified.is_some());
            let mut record = renew::new_record(conn, grant.clone(), None, now, now);
            record.lifecycle.refresh_issued_at = Some(now);
            match self.write(conn, current.map(|r| r.version), record).await {
                Err(StoreError::Conflict) if attempts < 5 => continue,
                Ok(stored) => {
                    lock(&self.unsaved).remove(&conn.id);
                    if was_notified {
                        self.notify(conn, Event::Recovered, None).await;
                    }
                    return Ok(stored);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The current record of a connection, as stored.
    pub async fn stored(&self, conn: &Connection) -> Result<Option<TokenRecord>, TokenError> {
        Ok(self.store.get_token(&conn.id).await?)
    }

    /// One async lock per key: callers sharing a key do one piece of work at a time (a refresh
    /// per connection, a session login per connection).
    fn lock_for(&self, connection: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            lock(&self.in_flight)
                .entry(connection.to_string())
                .or_default(),
        )
    }

    /// Tells the owner about `conn`.
    async fn notify(&self, conn: &Connection, event: Event, reason: Option<String>) {
        if self.notifiers.is_empty() {
            return;
        }
        let provider = self
            .config
            .provider_of(conn)
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| conn.provider.clone());
        let notification = crate::notify::Notification::about(
            &self.config,
            conn,
            &provider,
            event,
            reason,
            self.clock.now(),
        );
        self.notifiers.send(&notification).await;
    }
}
