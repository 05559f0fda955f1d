//! Keeping within a vendor's API budget: Netatmo allows a user 50 requests per 10 seconds and
//! 500 per hour, and answers more with 429 (and, kept up, bans the app). Every vendor call of a
//! connection passes [`VendorPace::admit`] first: within budget it goes; if room comes back within
//! a second it waits for it (spacing the calls); otherwise the caller gets 429 with the wait,
//! and the vendor never sees the call. After a vendor 429, the connection rests for the time
//! the vendor asked.
//!
//! Why a call log and not governor's GCRA (used for homehook's own limits): a vendor counts
//! calls per sliding window, and GCRA with a burst allows up to burst + rate × window calls in
//! a window, which would overshoot "50 in any 10 s". A log of call times per connection (at most
//! 500 entries) is exact. Each process keeps its own log; several Lambda instances share the
//! budget only through the vendor's 429, which then rests every instance that sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::catalog::CallBudget;
use crate::clock::{Clock, UnixTime};

/// Longest wait for room before answering 429 instead: someone is waiting on a phone.
pub const MAX_SPACING_SECS: i64 = 1;

#[derive(Debug, Default)]
struct Calls {
    /// When each call counts from. Times are whole seconds, so a call is recorded at the next
    /// whole second: it then leaves a window no earlier than the vendor lets it go.
    log: VecDeque<UnixTime>,
    rest_until: Option<UnixTime>,
}

impl Calls {
    /// Seconds until one more call fits every window (0: now).
    fn wait(&mut self, budget: &[CallBudget], now: UnixTime) -> i64 {
        let longest = budget.iter().map(|b| b.window_secs).max().unwrap_or(0);
        while self
            .log
            .front()
            .is_some_and(|t| t.plus_secs(longest) <= now)
        {
            self.log.pop_front();
        }
        let mut wait = self
            .rest_until
            .map_or(0, |until| now.secs_until(until).max(0));
        for b in budget {
            let in_window: Vec<UnixTime> = self
                .log
                .iter()
                .copied()
                .filter(|t| t.plus_secs(b.window_secs) > now)
                .collect();
            let max = b.max as usize;
            if in_window.len() >= max {
                // Room comes back when enough of the calls that still count have left the
                // window (more than max may count, after a rest).
                if let Some(t) = in_window.get(in_window.len() - max) {
                    wait = wait.max(now.secs_until(t.plus_secs(b.window_secs)));
                }
            }
        }
        wait
    }
}

/// Calls made per connection, against its provider's budget.
#[derive(Debug)]
pub struct VendorPace {
    clock: Arc<dyn Clock>,
    calls: Mutex<HashMap<String, Calls>>,
}

impl VendorPace {
    /// A pace with no calls made, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one call of `connection` within `budget`, waiting up to [`MAX_SPACING_SECS`]
    /// for room; `Err(seconds)` when it would take longer.
    pub async fn admit(&self, connection: &str, budget: &[CallBudget]) -> Result<(), u64> {
        if budget.is_empty() {
            return Ok(());
        }
        let mut waited = 0;
        loop {
            let wait = {
                let Ok(mut calls) = self.calls.lock() else {
                    return Ok(());
                };
                let now = self.clock.now();
                let entry = calls.entry(connection.to_string()).or_default();
                let wait = entry.wait(budget, now);
                if wait <= 0 {
                    entry.log.push_back(now.plus_secs(1));
                    return Ok(());
                }
                wait
            };
            if waited + wait > MAX_SPACING_SECS {
                return Err(wait.max(1) as u64);
            }
            tokio::time::sleep(Duration::from_secs(wait as u64)).await;
            waited += wait;
        }
    }

    /// The vendor answered 429: rest `connection` for `secs`.
    pub fn rest(&self, connection: &str, secs: u64) {
        if let Ok(mut calls) = self.calls.lock() {
            let until = self.clock.now().plus_secs(secs.min(86_400) as i64);
            let entry = calls.entry(connection.to_string()).or_default();
            entry.rest_until = Some(entry.rest_until.map_or(until, |u| u.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const NETATMO: [CallBudget; 2] = [
        CallBudget {
            max: 50,
            window_secs: 10,
        },
        CallBudget {
            max: 500,
            window_secs: 3600,
        },
    ];

    fn pace() -> (VendorPace, ManualClock) {
        let clock = ManualClock::new(UnixTime(1_700_000_000));
        (VendorPace::new(Arc::new(clock.clone())), clock)
    }

    #[tokio::test]
    async fn fifty_go_at_once_then_calls_are_refused_with_the_wait() {
        let (pace, clock) = pace();
        for _ in 0..50 {
            assert_eq!(pace.admit("home", &NETATMO).await, Ok(()));
        }
        // The 51st would wait ~10 s: refused with the wait, the vendor never sees it.
        assert_eq!(pace.admit("home", &NETATMO).await, Err(11));
        assert_eq!(
            pace.admit("cottage", &NETATMO).await,
            Ok(()),
            "per connection"
        );
        clock.advance(11);
        assert_eq!(pace.admit("home", &NETATMO).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn room_within_a_second_is_waited_for() {
        let (pace, clock) = pace();
        for _ in 0..50 {
            assert_eq!(pace.admit("home", &NETATMO).await, Ok(()));
        }
        clock.advance(10);
        // One second to go: the call waits for it rather than failing. (The manual clock does
        // not move while it sleeps, so it is refused after the wait; what matters is that it
        // waited, and asked for 1 s, not 11.)
        let started = tokio::time::Instant::now();
        assert_eq!(pace.admit("home", &NETATMO).await, Err(1));
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    // Paused: calls that find room within a second wait for it, and that wait is virtual here.
    #[tokio::test(start_paused = true)]
    async fn the_hourly_budget_holds_in_any_hour() {
        let (pace, clock) = pace();
        let mut admitted_at = Vec::new();
        // Two hours of calls, 50 attempts a second.
        for second in 0..7_200 {
            for _ in 0..50 {
                if pace.admit("home", &NETATMO).await.is_ok() {
                    admitted_at.push(second);
                }
            }
            clock.advance(1);
        }
        for start in 0..3_600 {
            let in_hour = admitted_at
                .iter()
                .filter(|t| (start..start + 3_600).contains(*t))
                .count();
            assert!(in_hour <= 500, "{in_hour} calls in the hour from {start}");
        }
        for start in 0..7_190 {
            let in_10s = admitted_at
                .iter()
                .filter(|t| (start..start + 10).contains(*t))
                .count();
            assert!(in_10s <= 50, "{in_10s} calls in the 10 s from {start}");
        }
        assert!(
            admitted_at.len() >= 900,
            "the budget is used: {}",
            admitted_at.len()
        );
    }

    #[tokio::test]
    async fn a_vendor_429_rests_the_connection() {
        let (pace, clock) = pace();
        pace.rest("home", 30);
        assert_eq!(pace.admit("home", &NETATMO).await, Err(30));
        clock.advance(30);
        assert_eq!(pace.admit("home", &NETATMO).await, Ok(()));
    }
}
