//! A renewal that failed: its class, the health it leaves the connection in, the answer the
//! caller gets, and whether the owner is told.
//!
//! | class | health | caller gets | next |
//! |---|---|---|---|
//! | transient (5xx, timeout, reset, malformed answer, 429) | degraded until the retry time (the vendor's `Retry-After` / `X-RateLimit-Retry-After`, else 60 s) | 503 + `Retry-After` | tokens kept; retried after that time; "keeps failing" sent after `notify.failing_after` in a row |
//! | reauth needed (refresh token refused, revoked, lapsed) | reauth needed, with the vendor's reason | 409 `reauth_needed` | data kept; the owner is told, with the reconnect link |
//! | misconfigured (invalid_client, invalid_scope, redirect mismatch, secret missing) | misconfigured until 15 min later | 502 `misconfigured` naming the setting | tokens kept; retried after 15 min, so a fixed secret heals it |

use super::TokenKeeper;
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::error::TokenError;
use crate::notify::Event;
use crate::oauth::TokenEndpointError;
use crate::secrets::SecretsError;
use crate::store::StoreError;
use crate::token::{Health, TokenRecord};

/// After a passing failure, wait this long before trying again (unless the vendor said).
const DEGRADED_RETRY_SECS: i64 = 60;
/// After a settings failure, wait this long: a fixed secret is picked up by then.
const MISCONFIGURED_RETRY_SECS: i64 = 900;

/// Why a renewal did not produce tokens.
#[derive(Debug)]
pub(super) enum Failure {
    /// The token endpoint refused or failed.
    Endpoint(TokenEndpointError),
    /// The connection's secret could not be read.
    Secrets(SecretsError),
    /// Nothing to renew with: no refresh token and no password grant.
    NoRefreshToken,
}

impl TokenKeeper {
    /// Classifies a failed renewal, records the connection's health (releasing the lease),
    /// tells the owner if this is news, and returns the caller's answer.
    pub(super) async fn record_failure(
        &self,
        conn: &Connection,
        claimed: Option<TokenRecord>,
        failure: Failure,
        took_over: bool,
        now: UnixTime,
    ) -> Result<TokenRecord, TokenError> {
        let (health, answer) = self.classify(conn, &failure, took_over, now);
        let reason = match &health {
            Health::Degraded { reason, .. }
            | Health::Misconfigured { reason, .. }
            | Health::ReauthNeeded { reason } => reason.clone(),
            Health::Healthy => String::new(),
        };
        tracing::warn!(connection = %conn.id, health = health.label(), class = super::failure_class(&answer), reason = %reason, "token renewal failed");
        let Some(claimed) = claimed else {
            // A first connection that failed: nothing is stored, nothing to mark.
            return Err(answer);
        };
        let failures = claimed.lifecycle.failures.saturating_add(1);
        let event = match &health {
            Health::ReauthNeeded { .. } => Some(Event::ReauthNeeded),
            Health::Misconfigured { .. } => Some(Event::Misconfigured),
            Health::Degraded { .. } if failures >= self.config.notify.failing_after => {
                Some(Event::Failing)
            }
            _ => None,
        }
        .filter(|e| claimed.lifecycle.notified.as_deref() != Some(e.as_str()));

        let mut base = claimed.clone();
        let mut written = false;
        for _ in 0..5 {
            let mut record = base.clone();
            record.health = health.clone();
            record.lifecycle.lease = None;
            record.lifecycle.failures = failures;
            if let Some(e) = event {
                record.lifecycle.notified = Some(e.as_str().to_string());
            }
            match self.write(conn, Some(base.version), record).await {
                Ok(_) => {
                    written = true;
                    break;
                }
                Err(StoreError::Conflict) => match self.store.get_token(&conn.id).await {
                    // New tokens landed meanwhile (a sibling whose lease had lapsed, the owner
                    // reconnecting): the connection is fine, whatever we just saw.
                    Ok(Some(now_stored))
                        if now_stored.refresh_token != claimed.refresh_token
                            && now_stored.health == Health::Healthy =>
                    {
                        return Ok(now_stored);
                    }
                    Ok(Some(now_stored)) => base = now_stored,
                    _ => break,
                },
                Err(e) => {
                    tracing::error!(connection = %conn.id, error = %e, "could not record the connection's health");
                    break;
                }
            }
        }
        // Only the process that recorded the verdict tells the owner: once per problem.
        if written && let Some(event) = event {
            self.notify(conn, event, Some(reason)).await;
        }
        Err(answer)
    }

    /// The health a failure leaves and the caller's answer.
    fn classify(
        &self,
        conn: &Connection,
        failure: &Failure,
        took_over: bool,
        now: UnixTime,
    ) -> (Health, TokenError) {
        let degraded = |secs: i64, reason: String| {
            (
                Health::Degraded {
                    until: now.plus_secs(secs),
                    reason: reason.clone(),
                },
                TokenError::Unavailable {
                    detail: reason,
                    retry_after_secs: secs.max(1) as u64,
                },
            )
        };
        let misconfigured = |detail: String| {
            (
                Health::Misconfigured {
                    until: now.plus_secs(MISCONFIGURED_RETRY_SECS),
                    reason: detail.clone(),
                },
                TokenError::Misconfigured {
                    connection: conn.id.clone(),
                    detail,
                },
            )
        };
        let reauth = |reason: String| {
            (
                Health::ReauthNeeded {
                    reason: reason.clone(),
                },
                TokenError::ReauthNeeded {
                    connection: conn.id.clone(),
                    reason,
                },
            )
        };
        match failure {
            Failure::Endpoint(e @ TokenEndpointError::RateLimited { retry_after_secs }) => {
                degraded(*retry_after_secs as i64, e.to_string())
            }
            Failure::Endpoint(
                e @ (TokenEndpointError::Unavailable(_) | TokenEndpointError::Malformed(_)),
            ) => degraded(DEGRADED_RETRY_SECS, e.to_string()),
            Failure::Secrets(SecretsError::Backend(detail)) => degraded(
                DEGRADED_RETRY_SECS,
                format!("secrets unavailable: {detail}"),
            ),
            Failure::Secrets(e) => misconfigured(e.to_string()),
            Failure::Endpoint(e @ TokenEndpointError::NoAccessToken { .. }) => {
                misconfigured(format!("{e} (providers.{}.token_url)", conn.provider))
            }
            Failure::Endpoint(e) if e.is_misconfiguration() => misconfigured(format!(
                "{e}; check client_id and client_secret in secret \"{}\", the scopes of connection \"{}\", and that the redirect URI registered with the vendor is this server's /callback/{} URL",
                conn.secret, conn.id, conn.provider
            )),
            // Our lease had lapsed and we took over: the earlier holder's renewal may have
            // rotated the refresh token and still be storing it. Look again shortly rather
            // than declare the connection dead.
            Failure::Endpoint(e) if took_over && e.is_invalid_grant() => degraded(
                self.lease_secs,
                format!("{e}; an earlier renewal may still be storing new tokens, checking again"),
            ),
            Failure::Endpoint(e) => reauth(e.to_string()),
            Failure::NoRefreshToken => reauth("the vendor issued no refresh token".into()),
        }
    }
}
