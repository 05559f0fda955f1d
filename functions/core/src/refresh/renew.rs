//! One renewal: claim the connection's lease, call the token endpoint, store what came back
//! before anyone uses it.

use std::time::{Duration, Instant};

use super::failure::Failure;
use super::{TokenKeeper, lock, policy};
use crate::catalog::{Grant, ProviderSpec};
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::error::TokenError;
use crate::notify::Event;
use crate::oauth::{OAuthFlow, TokenGrant};
use crate::sensitive::SecretString;
use crate::store::StoreError;
use crate::token::{Health, Lease, Lifecycle, TokenRecord};

/// How often a process waiting for another's renewal looks at the record: soon at first (a
/// renewal is one token round trip, often tens of milliseconds), then every 100 ms, so a burst
/// split over two instances waits about one round trip rather than a whole poll period.
const POLLS: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(100),
];
/// Attempts to store renewed tokens before keeping them in memory (backoff 100 ms, doubling).
const WRITE_ATTEMPTS: u32 = 5;

/// Renewed tokens the store has not taken yet.
#[derive(Debug)]
pub(super) struct Unsaved {
    record: TokenRecord,
    /// The refresh token they replace: if the store holds another one, ours are obsolete.
    used_refresh: Option<SecretString>,
}

/// What the token endpoint gave.
enum Answer {
    /// New tokens.
    Tokens(TokenGrant),
    /// The refresh token was refused because another process had already rotated it: its
    /// record, with the new tokens, is the answer.
    AlreadyRotated(Box<TokenRecord>),
}

/// What claiming the lease found.
enum Claim {
    /// Someone renewed while we waited: use theirs.
    Done(TokenRecord),
    /// Nothing stored yet (a password-grant connection's first use).
    Fresh,
    /// The lease is ours, written into this record.
    Held {
        record: TokenRecord,
        /// We took over a lapsed lease: its holder's new tokens may still land.
        took_over: bool,
    },
}

/// How a store write of renewed tokens ended.
enum Stored {
    /// Ours were written.
    Ours(TokenRecord),
    /// The store already held newer tokens (a sibling renewed, the owner reconnected).
    Theirs(TokenRecord),
}

impl TokenKeeper {
    /// Renews the token of `conn`, which the caller last saw as `seen`. Runs as its own task:
    /// once the vendor has rotated a refresh token, the new one must be stored even if the
    /// caller (an HTTP request whose client went away) is dropped.
    pub(super) async fn renew(
        &self,
        conn: &Connection,
        seen: Option<&TokenRecord>,
    ) -> Result<TokenRecord, TokenError> {
        let keeper = self.clone();
        let conn = conn.clone();
        let seen = seen.cloned();
        tokio::spawn(async move { keeper.renew_now(&conn, seen.as_ref()).await })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a token renewal stopped unexpectedly");
                Err(TokenError::Unavailable {
                    detail: "the token renewal stopped unexpectedly".into(),
                    retry_after_secs: 5,
                })
            })
    }

    async fn renew_now(
        &self,
        conn: &Connection,
        seen: Option<&TokenRecord>,
    ) -> Result<TokenRecord, TokenError> {
        let lock = self.lock_for(&conn.id);
        let _one_at_a_time = lock.lock().await;

        if let Some(stored) = self.flush_unsaved(conn).await? {
            return Ok(stored);
        }
        let spec = self
            .config
            .provider_of(conn)
            .ok_or_else(|| TokenError::Misconfigured {
                connection: conn.id.clone(),
                detail: format!("unknown provider {}", conn.provider),
            })?;
        let (claimed, took_over) = match self.claim(conn, spec, seen).await? {
            Claim::Done(record) => return Ok(record),
            Claim::Fresh => (None, false),
            Claim::Held { record, took_over } => (Some(record), took_over),
        };
        let now = self.clock.now();
        match self.call_vendor(conn, spec, claimed.as_ref(), now).await {
            Ok(Answer::Tokens(grant)) => {
                self.store_renewed(conn, claimed.as_ref(), grant, now).await
            }
            Ok(Answer::AlreadyRotated(stored)) => {
                tracing::info!(connection = %conn.id, "refresh token already rotated by another instance; using its tokens");
                Ok(*stored)
            }
            Err(failure) => {
                self.record_failure(conn, claimed, failure, took_over, now)
                    .await
            }
        }
    }

    /// Takes the lease on the connection's record, or waits for the process holding it.
    async fn claim(
        &self,
        conn: &Connection,
        spec: &ProviderSpec,
        seen: Option<&TokenRecord>,
    ) -> Result<Claim, TokenError> {
        let started = Instant::now();
        let mut polls = 0;
        let max_wait = Duration::from_secs(self.lease_secs.unsigned_abs());
        loop {
            let now = self.clock.now();
            let Some(current) = self.store.get_token(&conn.id).await? else {
                return match conn.grant {
                    Grant::Password => Ok(Claim::Fresh),
                    Grant::AuthorizationCode => Err(TokenError::NotConnected(conn.id.clone())),
                };
            };
            if renewed_since(&current, seen, now) {
                return Ok(Claim::Done(current));
            }
            match &current.health {
                Health::ReauthNeeded { reason } => {
                    return Err(TokenError::ReauthNeeded {
                        connection: conn.id.clone(),
                        reason: reason.clone(),
                    });
                }
                // The vendor asked us to wait (a 429 with its retry-after, an outage): asking
                // again before then only spends the token budget.
                Health::Degraded { until, reason } if now < *until => {
                    return Err(TokenError::Unavailable {
                        detail: reason.clone(),
                        retry_after_secs: now.secs_until(*until).max(1) as u64,
                    });
                }
                Health::Misconfigured { until, reason } if now < *until => {
                    return Err(TokenError::Misconfigured {
                        connection: conn.id.clone(),
                        detail: reason.clone(),
                    });
                }
                _ => {}
            }
            let holder_gone =
                current.lifecycle.lease.as_ref().is_some_and(|l| {
                    *l.holder != *self.holder && self.holder_gone(conn, &l.holder)
                });
            if let Some(lease) = &current.lifecycle.lease
                && *lease.holder != *self.holder
                && now < lease.until
                && !holder_gone
            {
                // Another process is calling the token endpoint: wait for its tokens.
                if started.elapsed() >= max_wait {
                    return Err(TokenError::Unavailable {
                        detail: "another homehook instance is renewing this connection's token"
                            .into(),
                        retry_after_secs: 2,
                    });
                }
                tokio::time::sleep(POLLS[polls.min(POLLS.len() - 1)]).await;
                polls += 1;
                continue;
            }
            if let Some(wait) = policy::budget_wait(&current, &spec.refresh, now) {
                tracing::info!(connection = %conn.id, wait_secs = wait, "token budget spent; waiting");
                return Err(TokenError::Unavailable {
                    detail: format!(
                        "homehook keeps within {}'s limit on token requests",
                        spec.display_name
                    ),
                    retry_after_secs: wait,
                });
            }
            // A lapsed lease's holder may still store its tokens; one whose process is gone
            // cannot, so what the vendor answers now is the whole truth.
            let took_over = current.lifecycle.lease.is_some() && !holder_gone;
            let mut claim = current.clone();
            claim.lifecycle.lease = Some(Lease {
                holder: self.holder.to_string(),
                until: now.plus_secs(self.lease_secs),
            });
            claim.lifecycle.token_calls = policy::calls_after(&current, &spec.refresh, now);
            match self.write(conn, Some(current.version), claim).await {
                Ok(record) => return Ok(Claim::Held { record, took_over }),
                // Someone else wrote first (maybe their own claim): look again.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether the process holding a lease on `conn` is known to be gone (a `homehook serve`
    /// killed mid-renewal, on a store only this machine uses).
    fn holder_gone(&self, conn: &Connection, holder: &str) -> bool {
        let gone = self.store.holders_on_this_machine() && super::holder::gone(holder);
        if gone {
            tracing::warn!(connection = %conn.id, "the process that was renewing this token is gone; renewing now");
        }
        gone
    }

    /// Calls the token endpoint: refresh grant, or the password grant where the connection has
    /// one and it has no refresh token, its refresh token was refused, or it is about to lapse.
    async fn call_vendor(
        &self,
        conn: &Connection,
        spec: &ProviderSpec,
        claimed: Option<&TokenRecord>,
        now: UnixTime,
    ) -> Result<Answer, Failure> {
        let creds = self
            .secrets
            .client_credentials(&conn.secret)
            .await
            .map_err(Failure::Secrets)?;
        let flow = OAuthFlow::new(spec, &creds, None, &self.http).map_err(Failure::Endpoint)?;
        let old_refresh = claimed.and_then(|r| r.refresh_token.as_ref());
        let lapsing = claimed.is_some_and(|r| policy::near_lapse(r, &spec.refresh, now));
        let password = conn.grant == Grant::Password;
        let result = match old_refresh {
            Some(_) if lapsing && password => {
                tracing::info!(connection = %conn.id, "refresh token about to lapse; using the password grant");
                flow.password(&conn.scopes).await
            }
            Some(rt) => flow.refresh(rt).await,
            None if password => flow.password(&conn.scopes).await,
            None => return Err(Failure::NoRefreshToken),
        };
        match result {
            Err(e) if e.is_invalid_grant() && old_refresh.is_some() => {
                // Before believing the refresh token is dead: a sibling may have rotated it
                // (its lease lapsed and ours started from the old one).
                if let Some(stored) = self.store.get_token(&conn.id).await.ok().flatten()
                    && stored.refresh_token.as_ref() != old_refresh
                {
                    return Ok(Answer::AlreadyRotated(Box::new(stored)));
                }
                if password {
                    tracing::info!(connection = %conn.id, "refresh token refused; using the password grant");
                    return flow
                        .password(&conn.scopes)
                        .await
                        .map(Answer::Tokens)
                        .map_err(Failure::Endpoint);
                }
                Err(Failure::Endpoint(e))
            }
            other => other.map(Answer::Tokens).map_err(Failure::Endpoint),
        }
    }

    /// Stores renewed tokens (before anything uses them) and says "works again" if the owner
    /// had been told otherwise.
    async fn store_renewed(
        &self,
        conn: &Connection,
        claimed: Option<&TokenRecord>,
        grant: TokenGrant,
        now: UnixTime,
    ) -> Result<TokenRecord, TokenError> {
        let used_refresh = claimed.and_then(|r| r.refresh_token.clone());
        let connected_at = claimed.map(|r| r.connected_at).unwrap_or(now);
        let mut record = new_record(conn, grant, used_refresh.clone(), connected_at, now);
        let mut was_notified = false;
        match claimed {
            Some(c) => {
                // A device session outlives access tokens; it is dropped when the device
                // refuses it.
                record.session = c.session.clone();
                record.lifecycle.token_calls = c.lifecycle.token_calls.clone();
                record.lifecycle.refresh_issued_at = if record.refresh_token != c.refresh_token {
                    Some(now)
                } else {
                    c.lifecycle.refresh_issued_at.or(Some(c.connected_at))
                };
                was_notified = c.lifecycle.notified.is_some();
            }
            None => record.lifecycle.refresh_issued_at = Some(now),
        }
        let expected = claimed.map(|r| r.version);
        match self.persist(conn, expected, record, used_refresh).await? {
            Stored::Ours(stored) => {
                tracing::info!(connection = %conn.id, expires_at = ?stored.expires_at, "token refreshed");
                if was_notified {
                    self.notify(conn, Event::Recovered, None).await;
                }
                Ok(stored)
            }
            Stored::Theirs(stored) => Ok(stored),
        }
    }

    /// Writes renewed tokens, retrying a failing store with backoff; if it keeps failing,
    /// keeps them in memory (the vendor has already rotated: they are the only live ones).
    async fn persist(
        &self,
        conn: &Connection,
        expected: Option<u64>,
        record: TokenRecord,
        used_refresh: Option<SecretString>,
    ) -> Result<Stored, TokenError> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=WRITE_ATTEMPTS {
            let outcome = match self.write(conn, expected, record.clone()).await {
                Ok(stored) => Ok(Stored::Ours(stored)),
                // Another process wrote since our claim (its lapsed-lease renewal, a Homey
                // session, the owner reconnecting): reconcile instead of overwriting.
                Err(StoreError::Conflict) => {
                    self.reconcile(conn, record.clone(), used_refresh.as_ref())
                        .await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(stored) => return Ok(stored),
                Err(e) => {
                    tracing::error!(critical = true, connection = %conn.id, attempt, error = %e, "renewed tokens not stored yet; retrying");
                    if attempt < WRITE_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
        tracing::error!(critical = true, connection = %conn.id, "renewed tokens could not be stored; kept in memory and stored on the next use");
        lock(&self.unsaved).insert(
            conn.id.clone(),
            Unsaved {
                record,
                used_refresh,
            },
        );
        Err(TokenError::Unavailable {
            detail: "homehook's store is failing; the renewed tokens are kept and will be stored as soon as it answers".into(),
            retry_after_secs: 5,
        })
    }

    /// Stores `record` over whatever is stored now, unless the store already holds newer
    /// tokens than the ones this renewal started from (`used_refresh`).
    async fn reconcile(
        &self,
        conn: &Connection,
        mut record: TokenRecord,
        used_refresh: Option<&SecretString>,
    ) -> Result<Stored, StoreError> {
        for _ in 0..5 {
            let stored = self.store.get_token(&conn.id).await?;
            let expected = stored.as_ref().map(|s| s.version);
            if let Some(stored) = stored {
                if stored.refresh_token.as_ref() != used_refresh {
                    return Ok(Stored::Theirs(stored));
                }
                record.session = stored.session.clone();
                record.lifecycle.token_calls = stored.lifecycle.token_calls.clone();
            }
            match self.write(conn, expected, record.clone()).await {
                Err(StoreError::Conflict) => continue,
                Ok(written) => {
                    tracing::info!(connection = %conn.id, "token refreshed (stored after a concurrent write)");
                    return Ok(Stored::Ours(written));
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Stores tokens an earlier renewal could not, before anything else happens to `conn`.
    async fn flush_unsaved(&self, conn: &Connection) -> Result<Option<TokenRecord>, TokenError> {
        let Some(pending) = lock(&self.unsaved).remove(&conn.id) else {
            return Ok(None);
        };
        match self
            .reconcile(conn, pending.record.clone(), pending.used_refresh.as_ref())
            .await
        {
            Ok(Stored::Ours(stored)) => {
                tracing::warn!(connection = %conn.id, "renewed tokens kept in memory are now stored");
                Ok(Some(stored))
            }
            // Newer tokens landed meanwhile (the owner reconnected): ours are obsolete.
            Ok(Stored::Theirs(_)) => Ok(None),
            Err(e) => {
                lock(&self.unsaved).insert(conn.id.clone(), pending);
                tracing::error!(critical = true, connection = %conn.id, error = %e, "renewed tokens kept in memory still cannot be stored");
                Err(TokenError::Unavailable {
                    detail: "homehook's store is failing; the renewed tokens are kept and will be stored as soon as it answers".into(),
                    retry_after_secs: 5,
                })
            }
        }
    }
}

/// Whether `current` holds tokens renewed since the caller saw `seen`, usable now.
fn renewed_since(current: &TokenRecord, seen: Option<&TokenRecord>, now: UnixTime) -> bool {
    let usable = current.health == Health::Healthy
        && policy::usable_for_action(current, now)
        && current.lifecycle.lease.is_none();
    usable && seen.is_none_or(|s| current.access_token.expose() != s.access_token.expose())
}

/// The record a token answer makes.
pub(super) fn new_record(
    conn: &Connection,
    grant: TokenGrant,
    old_refresh: Option<SecretString>,
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
        lifecycle: Lifecycle::default(),
        due_at: None,
    }
}
