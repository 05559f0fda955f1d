//! How often callers may act: a burst-and-sustained limit per key and per action, and a lockout
//! of a source (an address, an IPv6 /64) or a network that keeps presenting wrong keys.
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

/// A block of addresses: one address, an IPv6 /64, a network, or a `trusted_proxies` entry
/// (`203.0.113.0/24`, `2001:db8::/32`, `127.0.0.1`). IPv4-mapped IPv6 addresses
/// (`::ffff:203.0.113.9`, what a dual-stack listener reports) are taken as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// The first address of the block (host bits cleared).
    addr: IpAddr,
    /// The prefix length.
    prefix: u8,
}

impl IpRange {
    /// The block of `prefix` bits around `ip` (a prefix past the address's width is the address).
    pub fn around(ip: IpAddr, prefix: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let prefix = prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                Self {
                    addr: IpAddr::V4((u32::from(v4) & mask).into()),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                Self {
                    addr: IpAddr::V6((u128::from(v6) & mask).into()),
                    prefix,
                }
            }
        }
    }

    /// The lockout's unit of one source: an IPv4 address, or an IPv6 /64. A /64 is what one
    /// home, phone or server is given (SLAAC and privacy addresses rotate inside it), so
    /// counting per IPv6 address would give one attacker 2^64 fresh starts. IPv4 is counted per
    /// address: addresses are scarce, households behind one carrier NAT share them already, and
    /// a scanner rotating through its /24 is caught by [`IpRange::network`] instead.
    pub fn source(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(_) => Self::around(ip, 32),
            IpAddr::V6(_) => Self::around(ip, 64),
        }
    }

    /// The lockout's unit of a network: an IPv4 /24, an IPv6 /48 (a site's allocation).
    pub fn network(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(_) => Self::around(ip, 24),
            IpAddr::V6(_) => Self::around(ip, 48),
        }
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && Self::around(ip, self.prefix) == *self
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    /// `203.0.113.7`, `203.0.113.0/24`, `::1`, `2001:db8::/32`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{text:?} is not an address or a CIDR block such as \"203.0.113.0/24\"");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        Ok(Self::around(ip, prefix))
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == width {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Wrong keys tolerated before a source (or its network) is locked out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Wrong keys tolerated at once from one source ([`IpRange::source`]); one more is forgiven
    /// each `forgive_every`.
    pub tolerated: u32,
    /// Wrong keys tolerated at once from one network ([`IpRange::network`]), however many of
    /// its addresses they come from.
    pub network_tolerated: u32,
    /// One wrong key is forgiven this often.
    pub forgive_every: Duration,
    /// How long a source or network that went past its tolerance is locked out, counted from
    /// its last wrong key (a scanner that keeps going stays locked out).
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    /// 10 wrong keys from a source, 30 from a network (one forgiven a minute), then 15 minutes
    /// out.
    fn default() -> Self {
        Self {
            tolerated: 10,
            network_tolerated: 30,
            forgive_every: Duration::from_secs(60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// A wrong key that met a lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// How long wrong keys from there are refused yet.
    pub wait: Duration,
    /// The source or network this wrong key just locked (`None`: it was locked already).
    pub newly: Option<IpRange>,
}

/// Sources and networks that present wrong keys; past the policy's tolerance, their wrong keys
/// are answered `429 source_locked` instead of 401 for a while.
///
/// **A lockout never refuses a key that opens the action**: the gate checks the key first and
/// asks the lockout only about wrong ones. Behind a proxy, a carrier NAT or one household's
/// address, the owner shares a source with whoever guesses, and a lockout that refused every
/// key from a source would let any stranger switch off every URL with 11 requests. What the
/// lockout does is keep a scanner's noise off the logs (one line when it is locked, none per
/// guess after) and tell it to stop; guessing is made hopeless by the 256-bit keys, not by it.
///
/// Memory is bounded ([`MAX_TRACKED`] entries) and each wrong key costs one lookup under one of
/// [`SHARDS`] locks. When a shard is full: entries with nothing to remember go first, then
/// those still counting (forgetting a count gives a source no more than a fresh address has);
/// a live lockout is never dropped before its time, so no flood of fresh addresses can unlock
/// an attacker. A shard full of live lockouts counts every further source together, in one
/// shared entry, which then locks them all: that only changes what their wrong keys are told.
#[derive(Debug)]
pub struct SourceLockout {
    policy: LockoutPolicy,
    shards: Vec<Mutex<Shard>>,
    hasher: std::hash::RandomState,
}

/// Locks the table is split over: one scanner's wrong keys wait only for their shard's.
pub const SHARDS: usize = 16;

/// Sources and networks remembered at most (a fixed bound whatever a scan sends).
pub const MAX_TRACKED: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<IpRange, Entry>,
    /// Every source that found the shard full of live lockouts.
    overflow: Entry,
    /// The shard was found full of live lockouts: until the first of them ends, new sources
    /// go to `overflow` without another pass over the shard.
    full_until: Option<Instant>,
}

/// One source's (or network's) count, as the time its wrong keys will all be forgiven (a
/// generic cell rate: each wrong key pushes it one `forgive_every` further), and its lockout.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    forgiven_at: Option<Instant>,
    locked_until: Option<Instant>,
}

impl Entry {
    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn idle(&self, now: Instant) -> bool {
        self.forgiven_at.is_none_or(|t| t <= now) && self.locked(now).is_none()
    }

    /// Counts one wrong key; `Some((wait, newly))` when the entry is (now) locked.
    fn count(
        &mut self,
        now: Instant,
        tolerated: u32,
        policy: &LockoutPolicy,
    ) -> Option<(Duration, bool)> {
        let every = policy.forgive_every;
        let tolerance = every.saturating_mul(tolerated);
        let from = self.forgiven_at.filter(|t| *t > now).unwrap_or(now);
        // Never more than one past the tolerance: a long scan leaves a bounded debt.
        let cap = now + tolerance + every;
        let forgiven_at = (from + every).min(cap);
        self.forgiven_at = Some(forgiven_at);
        let was_locked = self.locked(now).is_some();
        if forgiven_at > now + tolerance {
            self.locked_until = Some(now + policy.lockout);
            return Some((policy.lockout, !was_locked));
        }
        self.locked(now).map(|wait| (wait, false))
    }
}

impl SourceLockout {
    /// A lockout with `policy`.
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn shard(&self, range: &IpRange) -> std::sync::MutexGuard<'_, Shard> {
        use std::hash::BuildHasher as _;
        let i = usize::try_from(self.hasher.hash_one(range) % SHARDS as u64).unwrap_or(0);
        // A panic elsewhere while holding a shard leaves counts that are still counts.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` while wrong keys from `source` (or its network) are refused.
    pub fn check(&self, source: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut wait = None;
        for range in [IpRange::source(source), IpRange::network(source)] {
            let shard = self.shard(&range);
            let entry = match shard.entries.get(&range) {
                Some(entry) => entry.locked(now),
                None if shard.entries.len() >= MAX_TRACKED / SHARDS => shard.overflow.locked(now),
                None => None,
            };
            wait = wait.max(entry);
        }
        wait.map_or(Ok(()), Err)
    }

    /// Counts a wrong key from `source`, against the source and its network; `Some` when wrong
    /// keys from there are refused now (this one included).
    pub fn wrong_key(&self, source: IpAddr) -> Option<Locked> {
        let now = Instant::now();
        let tiers = [
            (IpRange::source(source), self.policy.tolerated),
            (IpRange::network(source), self.policy.network_tolerated),
        ];
        let mut locked: Option<Locked> = None;
        for (range, tolerated) in tiers {
            let tolerated = tolerated.max(1);
            let mut shard = self.shard(&range);
            let counted = match shard.entry_for(range, now) {
                Some(entry) => entry.count(now, tolerated, &self.policy),
                None => shard.overflow.count(now, tolerated, &self.policy),
            };
            if let Some((wait, newly)) = counted {
                let previous = locked.take();
                locked = Some(Locked {
                    wait: previous.map_or(wait, |p| p.wait.max(wait)),
                    newly: previous.and_then(|p| p.newly).or(newly.then_some(range)),
                });
            }
        }
        locked
    }

    /// How many sources and networks are remembered (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }
}

impl Shard {
    /// The entry of `range`, made room for if needed; `None` when the shard is full of live
    /// lockouts (the caller then counts on the overflow entry).
    fn entry_for(&mut self, range: IpRange, now: Instant) -> Option<&mut Entry> {
        let full = MAX_TRACKED / SHARDS;
        if !self.entries.contains_key(&range) && self.entries.len() >= full {
            if self.full_until.is_some_and(|t| t > now) {
                return None;
            }
            // One pass frees room for many new entries; a pass that frees nothing (a shard of
            // live lockouts) is not repeated before the first of them ends.
            self.entries.retain(|_, e| !e.idle(now));
            if self.entries.len() >= full {
                self.entries.retain(|_, e| e.locked(now).is_some());
            }
            if self.entries.len() >= full {
                self.full_until = self.entries.values().filter_map(|e| e.locked_until).min();
                return None;
            }
        }
        Some(self.entries.entry(range).or_default())
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

    fn policy(tolerated: u32, network_tolerated: u32) -> LockoutPolicy {
        LockoutPolicy {
            tolerated,
            network_tolerated,
            forgive_every: Duration::from_secs(60),
            lockout: Duration::from_secs(900),
        }
    }

    #[test]
    fn a_source_is_locked_out_after_the_tolerated_wrong_keys() {
        let lockout = SourceLockout::new(policy(3, 100));
        let attacker: IpAddr = [203, 0, 113, 9].into();
        let neighbour: IpAddr = [203, 0, 113, 10].into();
        for _ in 0..3 {
            assert_eq!(lockout.wrong_key(attacker), None);
            assert!(lockout.check(attacker).is_ok());
        }
        let locked = lockout
            .wrong_key(attacker)
            .expect("the 4th wrong key locks");
        assert_eq!(locked.newly, Some(IpRange::source(attacker)));
        assert!(locked.wait > Duration::from_secs(890));
        let wait = lockout.check(attacker).expect_err("locked");
        assert!(wait > Duration::from_secs(890));
        assert!(lockout.check(neighbour).is_ok(), "only that source");
        let again = lockout.wrong_key(attacker).expect("still locked");
        assert_eq!(again.newly, None, "said once");
    }

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        let lockout = SourceLockout::new(policy(3, 100));
        // Four addresses of one /64 (privacy addresses rotate inside it): one source.
        for i in 1..=3u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert_eq!(lockout.wrong_key(ip), None);
        }
        let fourth: IpAddr = "2001:db8:1:2:aaaa::9".parse().unwrap();
        assert!(lockout.wrong_key(fourth).is_some());
        assert!(lockout.check("2001:db8:1:2::77".parse().unwrap()).is_err());
        assert!(lockout.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        // What a dual-stack listener reports for an IPv4 caller is that IPv4 address.
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        for _ in 0..4 {
            lockout.wrong_key(mapped);
        }
        assert!(lockout.check([198, 51, 100, 7].into()).is_err());
        assert!(lockout.check([198, 51, 100, 8].into()).is_ok());
    }

    #[test]
    fn a_network_is_locked_out_however_many_of_its_addresses_guess() {
        let lockout = SourceLockout::new(policy(10, 30));
        let mut locked = None;
        // 5 wrong keys from each of 20 addresses of one /24: no address reaches 10.
        'scan: for host in 1..=20u8 {
            for _ in 0..5 {
                if let Some(l) = lockout.wrong_key([198, 51, 100, host].into()) {
                    locked = Some((host, l));
                    break 'scan;
                }
            }
        }
        let (host, l) = locked.expect("the /24 is locked");
        assert_eq!(host, 7, "the 31st wrong key of the network");
        assert_eq!(l.newly, Some(IpRange::network([198, 51, 100, 0].into())));
        assert!(lockout.check([198, 51, 100, 200].into()).is_err());
        assert!(
            lockout.check([198, 51, 101, 1].into()).is_ok(),
            "not the next /24"
        );
    }

    #[test]
    fn the_table_is_bounded_and_a_flood_does_not_unlock_an_attacker() {
        let lockout = SourceLockout::new(policy(2, 1_000_000));
        let attacker: IpAddr = "2001:db8:bad::1".parse().unwrap();
        for _ in 0..3 {
            lockout.wrong_key(attacker);
        }
        assert!(lockout.check(attacker).is_err());
        // A wide scan: one wrong key from each of 100k /64s of many /48s.
        for i in 0..100_000u32 {
            let ip = IpAddr::V6((0x2001_0db8_u128 << 96 | u128::from(i) << 64 | 1).into());
            lockout.wrong_key(ip);
        }
        assert!(lockout.tracked() <= MAX_TRACKED, "{}", lockout.tracked());
        assert!(lockout.check(attacker).is_err(), "still locked");
    }

    #[test]
    fn addresses_and_blocks_parse_and_match() {
        let block: IpRange = "203.0.113.77/24".parse().unwrap();
        assert_eq!(block.to_string(), "203.0.113.0/24");
        assert!(block.contains([203, 0, 113, 1].into()));
        assert!(block.contains("::ffff:203.0.113.9".parse().unwrap()));
        assert!(!block.contains([203, 0, 114, 1].into()));
        let one: IpRange = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1");
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains([127, 0, 0, 1].into()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains([8, 8, 8, 8].into()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0.0/x",
            "1.2.3",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
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
