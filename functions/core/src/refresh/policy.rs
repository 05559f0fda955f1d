//! Each provider's pace: when a connection is due for renewal, and whether the token endpoint
//! may be called now. Pure functions of the record, the provider's [`RefreshPolicy`] and the
//! time, so they are tested without a vendor.

use crate::catalog::RefreshPolicy;
use crate::clock::UnixTime;
use crate::config::ServerConfig;
use crate::token::{Health, TokenRecord};

/// Before a refresh token lapses, the password grant takes over this long ahead (when the
/// vendor keeps handing back the same refresh token).
pub(super) const LAPSE_MARGIN_SECS: i64 = 2 * 24 * 3600;

/// Whether the tick should renew `record` now: its access token is within the margin of
/// expiry, or its refresh token has lived half its life (keep-alive), and it is not waiting
/// for a retry time, its owner, or another process's renewal.
pub(super) fn due(
    record: &TokenRecord,
    policy: &RefreshPolicy,
    server: &ServerConfig,
    now: UnixTime,
) -> bool {
    let waiting = match &record.health {
        Health::Healthy => false,
        Health::Degraded { until, .. } | Health::Misconfigured { until, .. } => now < *until,
        Health::ReauthNeeded { .. } => true,
    };
    let leased = record
        .lifecycle
        .lease
        .as_ref()
        .is_some_and(|l| now < l.until);
    if waiting || leased {
        return false;
    }
    record.expires_within(now, server.refresh_margin_secs) || keep_alive_due(record, policy, now)
}

/// A refresh token that lapses (Somfy: 14 days) is renewed at half its age, whatever the
/// access token says, so a connection nobody uses for two weeks still works.
pub(super) fn keep_alive_due(record: &TokenRecord, policy: &RefreshPolicy, now: UnixTime) -> bool {
    match (policy.refresh_token_lifetime_secs, issued_at(record)) {
        (Some(lifetime), Some(issued)) if record.refresh_token.is_some() => {
            now >= issued.plus_secs(lifetime / 2)
        }
        _ => false,
    }
}

/// The refresh token is about to lapse (and refreshing did not replace it): time for the
/// password grant, where the connection has one.
pub(super) fn near_lapse(record: &TokenRecord, policy: &RefreshPolicy, now: UnixTime) -> bool {
    match (policy.refresh_token_lifetime_secs, issued_at(record)) {
        (Some(lifetime), Some(issued)) => {
            now >= issued.plus_secs(lifetime - LAPSE_MARGIN_SECS.min(lifetime / 4))
        }
        _ => false,
    }
}

fn issued_at(record: &TokenRecord) -> Option<UnixTime> {
    record
        .lifecycle
        .refresh_issued_at
        .or(Some(record.connected_at))
}

/// `Some(seconds to wait)` when another token call now would exceed the provider's budget.
pub(super) fn budget_wait(
    record: &TokenRecord,
    policy: &RefreshPolicy,
    now: UnixTime,
) -> Option<u64> {
    let budget = policy.token_budget?;
    let recent = record.lifecycle.calls_within(now, budget.window_secs);
    if recent.len() < budget.max as usize {
        return None;
    }
    let oldest = recent.iter().min().copied()?;
    Some(now.secs_until(oldest.plus_secs(budget.window_secs)).max(1) as u64)
}

/// The token calls to remember after one made at `now`: those still inside the budget window.
pub(super) fn calls_after(
    record: &TokenRecord,
    policy: &RefreshPolicy,
    now: UnixTime,
) -> Vec<UnixTime> {
    match policy.token_budget {
        Some(budget) => {
            let mut calls = record.lifecycle.calls_within(now, budget.window_secs);
            calls.push(now);
            calls
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CallBudget;
    use crate::token::Lease;

    const DAY: i64 = 24 * 3600;

    fn record(now: UnixTime) -> TokenRecord {
        let mut r = crate::store::conformance_record();
        r.refresh_token = Some(crate::secret::SecretString::new("rt"));
        r.expires_at = Some(now.plus_secs(3600));
        r.connected_at = now;
        r.lifecycle.refresh_issued_at = Some(now);
        r
    }

    fn somfy() -> RefreshPolicy {
        RefreshPolicy {
            token_budget: Some(CallBudget {
                max: 4,
                window_secs: 600,
            }),
            refresh_token_lifetime_secs: Some(14 * DAY),
        }
    }

    #[test]
    fn a_fourteen_day_refresh_token_is_renewed_at_seven_days_and_replaced_before_it_lapses() {
        let t0 = UnixTime(1_700_000_000);
        let mut r = record(t0);
        // A long-lived access token, so only the refresh token's age makes it due.
        r.expires_at = Some(t0.plus_secs(30 * DAY));
        let server = crate::config::Config::empty().expect("defaults").server;
        assert!(!due(&r, &somfy(), &server, t0.plus_secs(7 * DAY - 1)));
        assert!(due(&r, &somfy(), &server, t0.plus_secs(7 * DAY)));
        assert!(!keep_alive_due(
            &r,
            &RefreshPolicy::default(),
            t0.plus_secs(13 * DAY)
        ));
        assert!(!near_lapse(&r, &somfy(), t0.plus_secs(11 * DAY)));
        assert!(near_lapse(&r, &somfy(), t0.plus_secs(12 * DAY)));
    }

    #[test]
    fn the_budget_counts_calls_inside_its_window() {
        let t0 = UnixTime(1_700_000_000);
        let mut r = record(t0);
        let p = somfy();
        for i in 0..4 {
            assert_eq!(
                budget_wait(&r, &p, t0.plus_secs(i * 10)),
                None,
                "call {i} fits"
            );
            r.lifecycle.token_calls = calls_after(&r, &p, t0.plus_secs(i * 10));
        }
        assert_eq!(
            budget_wait(&r, &p, t0.plus_secs(40)),
            Some(560),
            "the fifth waits for the first to age out"
        );
        assert_eq!(budget_wait(&r, &p, t0.plus_secs(600)), None);
        assert_eq!(
            calls_after(&r, &RefreshPolicy::default(), t0),
            vec![],
            "no budget, nothing kept"
        );
    }

    #[test]
    fn nothing_is_due_while_waiting_or_leased() {
        let t0 = UnixTime(1_700_000_000);
        let server = crate::config::Config::empty().expect("defaults").server;
        let mut r = record(t0);
        let soon = t0.plus_secs(3500);
        assert!(due(&r, &RefreshPolicy::default(), &server, soon));
        r.lifecycle.lease = Some(Lease {
            holder: "other".into(),
            until: soon.plus_secs(10),
        });
        assert!(
            !due(&r, &RefreshPolicy::default(), &server, soon),
            "another process renews it"
        );
        assert!(
            due(&r, &RefreshPolicy::default(), &server, soon.plus_secs(10)),
            "its lease lapsed"
        );
        r.lifecycle.lease = None;
        r.health = Health::Degraded {
            until: soon.plus_secs(60),
            reason: "busy".into(),
        };
        assert!(!due(&r, &RefreshPolicy::default(), &server, soon));
        r.health = Health::ReauthNeeded {
            reason: "revoked".into(),
        };
        assert!(!due(
            &r,
            &RefreshPolicy::default(),
            &server,
            soon.plus_secs(99_999)
        ));
    }
}
