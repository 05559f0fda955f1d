//! How often callers may act: a burst-and-sustained limit per key and per action, and a lockout
//! of a source address that keeps presenting wrong keys.
//!
//! The limits live in the process (governor's GCRA, no store round trip on the hot path). On AWS
//! each warm Lambda instance counts for itself, so the template also sets API Gateway's stage
//! throttling as the fleet-wide ceiling; a 256-bit key cannot be guessed either way, and the
//! lockout is there to keep a scanner's noise off the logs and the vendor.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// A burst-and-sustained limit, as written in config (`rate_limit = { burst = 10, per_minute = 30 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls allowed at once.
    pub burst: u32,
    /// Calls allowed per minute, sustained.
    pub per_minute: u32,
}

impl Default for RateLimit {
    /// 10 at once, 30 a minute: far above what a person tapping a shortcut does.
    fn default() -> Self {
        Self {
            burst: 10,
            per_minute: 30,
        }
    }
}

impl RateLimit {
    /// The default of an action marked sensitive (disarm): 3 at once, 6 a minute.
    pub const SENSITIVE: Self = Self {
        burst: 3,
        per_minute: 6,
    };

    /// Checks both numbers are usable; the error says which is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.burst == 0 || self.per_minute == 0 {
            return Err("burst and per_minute must be at least 1".into());
        }
        if self.per_minute > 60_000 {
            return Err("per_minute must be at most 60000".into());
        }
        // governor keeps burst × (60 s / per_minute) in u64 nanoseconds: a larger burst
        // overflows it (fuzz/corpus/config/rate-limit-huge-burst: 4294967295 at 1 a minute).
        if self.burst > 100_000 {
            return Err("burst must be at most 100000".into());
        }
        Ok(())
    }

    fn quota(&self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let per_minute = NonZeroU32::new(self.per_minute).unwrap_or(NonZeroU32::MIN);
        Quota::per_minute(per_minute).allow_burst(burst)
    }
}

/// One limiter per key id and per action, made when the config is loaded.
#[derive(Debug, Default)]
pub struct CallLimits {
    limiters: HashMap<String, DefaultDirectRateLimiter>,
}

impl CallLimits {
    /// Adds a limiter named `name` (`key:<id>` or `action:<name>`).
    pub fn add(&mut self, name: String, limit: RateLimit) {
        self.limiters
            .insert(name, RateLimiter::direct(limit.quota()));
    }

    /// Counts one call on `name`; `Err(wait)` when the limit is reached.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        match self.limiters.get(name) {
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }
}

/// Bad keys a source may present before it is locked out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Wrong keys tolerated at once (one more is forgiven each `forgive_every`).
    pub tolerated: u32,
    /// One wrong key is forgiven this often.
    pub forgive_every: Duration,
    /// How long a source that went past it is refused.
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    /// 10 wrong keys (one forgiven a minute), then 15 minutes out.
    fn default() -> Self {
        Self {
            tolerated: 10,
            forgive_every: Duration::from_secs(60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Sources that present wrong keys; past the policy's tolerance they are refused for a while.
#[derive(Debug)]
pub struct SourceLockout {
    policy: LockoutPolicy,
    wrong_keys: governor::DefaultKeyedRateLimiter<IpAddr>,
    locked: Mutex<HashMap<IpAddr, Instant>>,
}

/// Sources remembered at most; beyond it, the oldest state is dropped (bounded memory under a
/// scan from many addresses).
const MAX_SOURCES: usize = 10_000;

impl SourceLockout {
    /// A lockout with `policy`.
    pub fn new(policy: LockoutPolicy) -> Self {
        let tolerated = NonZeroU32::new(policy.tolerated).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(policy.forgive_every)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(tolerated);
        Self {
            policy,
            wrong_keys: RateLimiter::hashmap(quota),
            locked: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `source` is locked out.
    pub fn check(&self, source: IpAddr) -> Result<(), Duration> {
        let Ok(mut locked) = self.locked.lock() else {
            return Ok(());
        };
        match locked.get(&source) {
            Some(until) if *until > Instant::now() => Err(*until - Instant::now()),
            Some(_) => {
                locked.remove(&source);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a wrong key from `source`; `true` when this one locked it out.
    pub fn wrong_key(&self, source: IpAddr) -> bool {
        if self.wrong_keys.len() > MAX_SOURCES {
            self.wrong_keys.retain_recent();
        }
        if self.wrong_keys.check_key(&source).is_ok() {
            return false;
        }
        let Ok(mut locked) = self.locked.lock() else {
            return false;
        };
        if locked.len() > MAX_SOURCES {
            let now = Instant::now();
            locked.retain(|_, until| *until > now);
        }
        locked.insert(source, Instant::now() + self.policy.lockout);
        true
    }
}

impl Default for SourceLockout {
    fn default() -> Self {
        Self::new(LockoutPolicy::default())
    }
}

/// Whole seconds to tell a caller to wait (at least 1).
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_with_a_wait() {
        let mut limits = CallLimits::default();
        limits.add(
            "action:arm".into(),
            RateLimit {
                burst: 3,
                per_minute: 6,
            },
        );
        for _ in 0..3 {
            assert!(limits.check("action:arm").is_ok());
        }
        let wait = limits.check("action:arm").expect_err("4th call refused");
        // Sustained rate 6 a minute: the next call is allowed within ~10 s.
        assert!(
            wait <= Duration::from_secs(10) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(retry_secs(wait) >= 1);
        assert!(
            limits.check("action:other").is_ok(),
            "unknown names are not limited"
        );
    }

    #[test]
    fn a_source_is_locked_out_after_the_tolerated_wrong_keys() {
        let lockout = SourceLockout::new(LockoutPolicy {
            tolerated: 3,
            forgive_every: Duration::from_secs(60),
            lockout: Duration::from_secs(900),
        });
        let attacker: IpAddr = [203, 0, 113, 9].into();
        let neighbour: IpAddr = [203, 0, 113, 10].into();
        for _ in 0..3 {
            assert!(!lockout.wrong_key(attacker));
            assert!(lockout.check(attacker).is_ok());
        }
        assert!(
            lockout.wrong_key(attacker),
            "the 4th wrong key locks the source"
        );
        let wait = lockout.check(attacker).expect_err("locked");
        assert!(wait > Duration::from_secs(890));
        assert!(lockout.check(neighbour).is_ok(), "only that source");
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(
            RateLimit {
                burst: 0,
                per_minute: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            RateLimit {
                burst: 1,
                per_minute: 0
            }
            .validate()
            .is_err()
        );
        assert!(RateLimit::default().validate().is_ok());
    }
}
