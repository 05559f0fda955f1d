//! Step-up for sensitive actions: a PIN the caller sends with the call (`X-Homehook-Pin`, or a
//! `pin` field in the body), checked against an Argon2id hash from config, with a lockout after
//! repeated wrong PINs that every instance sees (the failures are counted in the store).
//!
//! Why Argon2id here when keys use plain SHA-256: a PIN has a few digits of entropy, so its hash
//! must be slow to brute-force if the config leaks. The online guard is the lockout: 5 wrong PINs
//! lock the action for 15 minutes. The offline guard is the search's size and cost: at least
//! [`MIN_PIN_CHARS`] characters (10^6 tries for digits), each try costing [`MEMORY_KIB`] KiB and
//! [`PASSES`] passes: about 0.19 s on one core of the machine `examples/pin_cost.rs` ran on, so
//! the whole 6-digit space takes that core over two days (the old 7 MiB/5 passes on a 4-digit PIN:
//! minutes). A hash with weaker settings (every hash made before) is refused at load: it would
//! keep the old search cost whatever the PIN.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::clock::UnixTime;
use crate::sensitive::SecretString;
use crate::store::{ItemStore, StoreError, item_key};

/// Header a caller may send the PIN in.
pub const PIN_HEADER: &str = "x-homehook-pin";
/// Body field a caller may send the PIN in (never passed on as a parameter).
pub const PIN_FIELD: &str = "pin";
/// Wrong PINs tolerated in a window before the action locks.
pub const MAX_WRONG_PINS: u64 = 5;
/// The lockout window, in seconds.
pub const LOCKOUT_SECS: i64 = 15 * 60;

/// Fewest characters in a PIN: six digits are 10^6 tries for an offline search.
pub const MIN_PIN_CHARS: usize = 6;
/// Argon2id memory per try, in KiB: 64 MiB. What a 128 MB Lambda can spare beside its ~10 MiB
/// (docs/benchmarks.md: peak RSS), and what makes a GPU or a cluster pay in memory per guess.
pub const MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes over that memory: with 64 MiB, 4 passes take about 0.19 s per try on one core
/// (`cargo run -p homehook-core --example pin_cost`), so 10^6 tries take that core 2.2 days.
pub const PASSES: u32 = 4;

/// The settings of new PIN hashes: [`MEMORY_KIB`], [`PASSES`], one lane (a search runs one lane
/// per core anyway; more lanes would only make the server's own check use more threads).
fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An Argon2id hash of a PIN, in the PHC form written in config (`$argon2id$v=19$...`).
#[derive(Clone)]
pub struct PinHash(String);

impl PinHash {
    /// Hashes a new PIN ([`MIN_PIN_CHARS`] to 64 characters), with a random salt.
    pub fn of(pin: &str) -> Result<Self, PinHashError> {
        check_shape(pin)?;
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(pin.as_bytes(), &salt)
            .map(|h| Self(h.to_string()))
            .map_err(|_| PinHashError::Malformed)
    }

    /// Whether `pin` is the PIN. Slow on purpose (a fifth of a second on a server core, a few
    /// seconds on a 128 MB Lambda): run it off the async threads
    /// ([`tokio::task::spawn_blocking`]).
    pub fn verify(&self, pin: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(&self.0) else {
            return false;
        };
        // Parameters come from the hash itself (a stronger hash still verifies); weaker ones
        // never get here: `from_str` refuses them.
        Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    }
}

fn check_shape(pin: &str) -> Result<(), PinHashError> {
    let n = pin.chars().count();
    if !(MIN_PIN_CHARS..=64).contains(&n) || pin.chars().any(char::is_control) {
        return Err(PinHashError::BadPin);
    }
    Ok(())
}

impl fmt::Display for PinHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PinHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinHash([redacted])")
    }
}

/// A PIN, or a PIN hash in config, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinHashError {
    /// Not an Argon2id hash in the PHC form.
    #[error(
        "expected an Argon2id hash (\"$argon2id$...\") of a PIN of at least 6 digits: make one with `echo 'your PIN' | homehook pin new`"
    )]
    Malformed,
    /// An Argon2id hash made with weaker settings than [`MEMORY_KIB`] and [`PASSES`]: every hash
    /// `homehook pin new` made before them (7 MiB, 5 passes), whose PIN a leaked config gives
    /// up in minutes.
    #[error(
        "this PIN hash uses weaker Argon2id settings (m={memory_kib} KiB, t={passes}) than homehook now requires (m=65536, t=4): from a leaked config its PIN is found offline in minutes. Choose a new PIN of at least 6 digits and replace the hash with the output of `echo 'your PIN' | homehook pin new`"
    )]
    Weak {
        /// The hash's memory, in KiB.
        memory_kib: u32,
        /// The hash's passes.
        passes: u32,
    },
    /// An Argon2id hash whose settings would take more memory or time than a server (or a
    /// 128 MB Lambda) can give one verification: every PIN call would fail, or exhaust it.
    #[error(
        "this PIN hash asks for more than homehook spends on one PIN check (at most 256 MiB, 64 passes, 8 lanes): make one with `echo 'your PIN' | homehook pin new`"
    )]
    TooCostly,
    /// The PIN given to hash is too short or too long, or has control characters.
    #[error("a PIN is 6 to 64 characters (6 digits or more), without control characters")]
    BadPin,
}

impl FromStr for PinHash {
    type Err = PinHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = PasswordHash::new(s).map_err(|_| PinHashError::Malformed)?;
        if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
            return Err(PinHashError::Malformed);
        }
        let params = Params::try_from(&parsed).map_err(|_| PinHashError::Malformed)?;
        // The search cost is the hash's own settings, whatever the PIN: a weaker hash is
        // refused, not used, so an old config cannot keep a PIN that falls in minutes.
        if params.m_cost() > 256 * 1024 || params.t_cost() > 64 || params.p_cost() > 8 {
            return Err(PinHashError::TooCostly);
        }
        if params.m_cost() < MEMORY_KIB || params.t_cost() < PASSES {
            return Err(PinHashError::Weak {
                memory_kib: params.m_cost(),
                passes: params.t_cost(),
            });
        }
        Ok(Self(s.to_string()))
    }
}

/// Why a call to a PIN-guarded action was refused.
#[derive(Debug, thiserror::Error)]
pub enum PinRefusal {
    /// No PIN was sent.
    #[error("this action needs its PIN: send it as X-Homehook-Pin or as \"pin\" in the body")]
    Required,
    /// The PIN is wrong.
    #[error("wrong PIN ({left} more tries before the action locks for 15 minutes)")]
    Wrong {
        /// Tries left before the lockout.
        left: u64,
    },
    /// Too many wrong PINs: the action is locked for a while.
    #[error("too many wrong PINs: this action is locked; try again in {retry_after_secs} s")]
    Locked {
        /// Seconds until it unlocks.
        retry_after_secs: u64,
    },
    /// The store could not count.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Wrong PINs of `action` in the current window and the one before it, so that a window
/// boundary does not reset the count: 5 wrong PINs within 15 minutes always lock.
async fn recent_failures(
    store: &dyn ItemStore,
    action: &str,
    start: i64,
    now: UnixTime,
) -> Result<u64, StoreError> {
    let mut total = 0;
    for s in [start, start - LOCKOUT_SECS] {
        total += store
            .get_item(&item_key::pin_failures(action, s), now)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// Checks a presented PIN for `action`: locked → refused without looking at the PIN; wrong →
/// counted, and the fifth wrong PIN in 15 minutes locks the action for 15 minutes; right → `Ok`.
pub async fn check(
    store: &dyn ItemStore,
    action: &str,
    hash: &PinHash,
    presented: Option<SecretString>,
    now: UnixTime,
) -> Result<(), PinRefusal> {
    if let Some(until) = store
        .get_item(&item_key::pin_lock(action), now)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
    {
        return Err(PinRefusal::Locked {
            retry_after_secs: now.secs_until(UnixTime(until)).max(1) as u64,
        });
    }
    let Some(pin) = presented else {
        return Err(PinRefusal::Required);
    };
    let hash = hash.clone();
    let right = tokio::task::spawn_blocking(move || hash.verify(pin.expose()))
        .await
        .unwrap_or(false);
    if right {
        return Ok(());
    }
    let start = now.0 - now.0.rem_euclid(LOCKOUT_SECS);
    store
        .count_item(
            &item_key::pin_failures(action, start),
            UnixTime(start + 2 * LOCKOUT_SECS),
            now,
        )
        .await?;
    let failures = recent_failures(store, action, start, now).await?;
    tracing::warn!(action, failures, "wrong PIN");
    if failures >= MAX_WRONG_PINS {
        let until = now.plus_secs(LOCKOUT_SECS);
        store
            .put_item(&item_key::pin_lock(action), &until.0.to_string(), until)
            .await?;
        tracing::warn!(
            action,
            "PIN locked for 15 minutes after repeated wrong PINs"
        );
        return Err(PinRefusal::Locked {
            retry_after_secs: LOCKOUT_SECS as u64,
        });
    }
    Err(PinRefusal::Wrong {
        left: MAX_WRONG_PINS - failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_hash_verifies_its_pin_only_and_round_trips_through_config_text() {
        let hash = PinHash::of("482193").expect("hash");
        let text = hash.to_string();
        assert!(text.starts_with("$argon2id$"));
        let parsed: PinHash = text.parse().expect("parses");
        assert!(parsed.verify("482193"));
        assert!(!parsed.verify("482194"));
        assert!(
            !format!("{parsed:?}").contains("argon2"),
            "Debug is redacted"
        );
        assert!("sha256:00".parse::<PinHash>().is_err());
        assert!(
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
                .parse::<PinHash>()
                .is_err()
        );
        assert!(
            matches!(PinHash::of("12345"), Err(PinHashError::BadPin)),
            "too short"
        );
    }

    #[test]
    fn a_hash_with_the_old_weaker_settings_is_refused_naming_the_command() {
        // What `homehook pin new` wrote before (homehook.example.toml had this one).
        let old = "$argon2id$v=19$m=7168,t=5,p=1$93QTXuT/BnIAM4zLn3ibJQ$CXXVILpSPKVN/6KJq3Y8vZg3fnohdl5OI7iaBFL0vU8";
        let err = old.parse::<PinHash>().expect_err("refused");
        assert_eq!(
            err,
            PinHashError::Weak {
                memory_kib: 7168,
                passes: 5
            }
        );
        assert!(err.to_string().contains("homehook pin new"), "{err}");
        let huge = "$argon2id$v=19$m=4194304,t=4,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(huge.parse::<PinHash>().err(), Some(PinHashError::TooCostly));
        let made = PinHash::of("482193").expect("hash").to_string();
        assert!(made.contains("m=65536,t=4,p=1"), "{made}");
    }

    #[tokio::test]
    async fn five_wrong_pins_lock_the_action_until_the_window_ends() {
        let store = MemoryStore::new();
        let hash = PinHash::of("482193").expect("hash");
        let now = UnixTime(1_700_000_100);
        let pin = |p: &str| Some(SecretString::new(p));
        assert!(matches!(
            check(&store, "disarm", &hash, None, now).await,
            Err(PinRefusal::Required)
        ));
        for left in (1..MAX_WRONG_PINS).rev() {
            match check(&store, "disarm", &hash, pin("000000"), now).await {
                Err(PinRefusal::Wrong { left: l }) => assert_eq!(l, left),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            check(&store, "disarm", &hash, pin("000000"), now).await,
            Err(PinRefusal::Locked { .. })
        ));
        // Even the right PIN is refused while locked.
        assert!(matches!(
            check(&store, "disarm", &hash, pin("482193"), now).await,
            Err(PinRefusal::Locked { .. })
        ));
        // Another action is not locked.
        assert!(
            check(&store, "gate", &hash, pin("482193"), now)
                .await
                .is_ok()
        );
        // After the window, the right PIN works again.
        let later = now.plus_secs(LOCKOUT_SECS);
        assert!(
            check(&store, "disarm", &hash, pin("482193"), later)
                .await
                .is_ok()
        );
    }
}
