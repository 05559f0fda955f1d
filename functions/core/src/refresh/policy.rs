//! Each provider's pace: when a connection is due for renewal, and whether the token endpoint
//! may be called now. Pure functions of the record, the provider's [`RefreshPolicy`] and the
//! time, so they are tested without a vendor.

use super::ACTION_MARGIN_SECS;
use crate::catalog::RefreshPolicy;
use crate::clock::UnixTime;
use crate::config::ServerConfig;
use crate::token::{Health, TokenRecord};

/// Before a refresh token lapses, the password grant takes over this long ahead (when the
/// vendor keeps handing back the same refresh token).
pub(super) const LAPSE_MARGIN_SECS: i64 = 2 * 24 * 3600;

/// How long before its expiry `record`'s access token is renewed, given a `margin` (the tick's
/// `refresh_margin_secs`, or what an action needs left): the margin, or a tenth of the token's
/// lifetime, whichever is shorter. Long-lived tokens keep the margin (a 3-hour token is renewed
/// 300 s ahead, as always); a short one is used for nine tenths of its life, so steady traffic
/// costs at most 1.11 token calls per lifetime and a burst on an expired token exactly one,
/// while the last tenth (one second of a 10-s token) still covers a vendor round trip. Tokens
/// without a stated lifetime keep the margin.
pub(super) fn lead_secs(record: &TokenRecord, margin: i64) -> i64 {
    match record.lifetime_secs() {
        Some(lifetime) => margin.min(lifetime / 10),
        None => margin,
    }
}

/// Whether `record`'s access token is good for an action now: it has more than its lead left
/// ([`lead_secs`] with [`ACTION_MARGIN_SECS`]), so a token issued moments ago is always used.
pub(super) fn usable_for_action(record: &TokenRecord, now: UnixTime) -> bool {
    !record.expires_within(now, lead_secs(record, ACTION_MARGIN_SECS))
}

/// Whether the tick should renew `record` now: its access token is within the margin of
/// expiry, or its refresh token has lived half its life (keep-alive), and it is not waiting
/// for a retry time, its owner, or another process's renewal.
pub(super) fn due(
    record: &TokenRecord,
    policy: &RefreshPolicy,
    server: &ServerConfig,
    now: UnixTime,
) -> bool {
    due_at(record, policy, server).is_some_and(|at| at <= now)
}

/// When [`due`] becomes true for `record` as it is (`None`: never, as it stands). Stored with
/// the record as [`TokenRecord::due_at`], the key of the stores' index that the tick reads.
pub(super) fn due_at(
    record: &TokenRecord,
    policy: &RefreshPolicy,
    server: &ServerConfig,
) -> Option<UnixTime> {
    let renewal = record
        .expires_at
        .map(|at| at.plus_secs(-lead_secs(record, server.refresh_margin_secs)));
    let keep_alive = keep_alive_at(record, policy);
    let work = match (renewal, keep_alive) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    // Not before the retry time, nor before another process's lease lapses.
    let waiting = match &record.health {
        Health::Healthy => None,
        Health::Degraded { until, .. } | Health::Misconfigured { until, .. } => Some(*until),
        Health::ReauthNeeded { .. } => return None,
    };
    let lease = record.lifecycle.lease.as_ref().map(|l| l.until);
    // `None` orders before any time: the later of the two, if either.
    Some(match waiting.max(lease) {
        Some(not_before) => work.max(not_before),
        None => work,
    })
}

/// When a lapsing refresh token reaches half its life (`None`: it does not lapse): from then
/// on it is renewed whatever the access token says (keep-alive), so a connection nobody uses
/// for two weeks (Somfy's refresh tokens lapse at 14 days) still works.
fn keep_alive_at(record: &TokenRecord, policy: &RefreshPolicy) -> Option<UnixTime> {
    match (policy.refresh_token_lifetime_secs, issued_at(record)) {
        (Some(lifetime), Some(issued)) if record.refresh_token.is_some() => {
            Some(issued.plus_secs(lifetime / 2))
        }
        _ => None,
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
        let mut r = crate::store::conformance::plain_record();
        r.refresh_token = Some(crate::sensitive::SecretString::new("rt"));
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
        assert_eq!(keep_alive_at(&r, &RefreshPolicy::default()), None);
        assert!(!near_lapse(&r, &somfy(), t0.plus_secs(11 * DAY)));
        assert!(near_lapse(&r, &somfy(), t0.plus_secs(12 * DAY)));
    }

    /// Renewal points scale with the lifetime: a 3-hour token keeps the 300-s and 30-s margins;
    /// a 5-minute one is no longer due the moment it is issued; a 10-second one is used for 9 s.
    #[test]
    fn renewal_points_scale_with_the_tokens_lifetime() {
        let t0 = UnixTime(1_700_000_000);
        let server = crate::config::Config::empty().expect("defaults").server;
        let plain = RefreshPolicy::default();
        let issued = |lifetime: i64| {
            let mut r = record(t0);
            r.refreshed_at = Some(t0);
            r.expires_at = Some(t0.plus_secs(lifetime));
            r
        };
        let long = issued(3 * 3600);
        assert_eq!(
            due_at(&long, &plain, &server),
            Some(t0.plus_secs(3 * 3600 - 300))
        );
        assert!(usable_for_action(&long, t0.plus_secs(3 * 3600 - 31)));
        assert!(!usable_for_action(&long, t0.plus_secs(3 * 3600 - 30)));

        let five_minutes = issued(300);
        assert_eq!(
            due_at(&five_minutes, &plain, &server),
            Some(t0.plus_secs(270))
        );
        assert!(!due(&five_minutes, &plain, &server, t0.plus_secs(60)));

        let ten_seconds = issued(10);
        assert!(usable_for_action(&ten_seconds, t0), "issued moments ago");
        assert!(usable_for_action(&ten_seconds, t0.plus_secs(8)));
        assert!(!usable_for_action(&ten_seconds, t0.plus_secs(9)));
        assert_eq!(due_at(&ten_seconds, &plain, &server), Some(t0.plus_secs(9)));

        // Without a stated lifetime: the margins as they were.
        let mut unknown = issued(10);
        unknown.expires_at = None;
        assert_eq!(lead_secs(&unknown, 300), 300);
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
