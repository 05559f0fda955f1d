//! Step-up for sensitive actions: a PIN the caller sends with the call (`X-Homehook-Pin`, or a
//! `pin` field in the body), checked against an Argon2id hash from config, with a lockout after
//! repeated wrong PINs that every instance sees (the failures are counted in the store).
//!
//! Why Argon2id here when keys use plain SHA-256: a PIN has a few digits of entropy, so its hash
//! must be slow to brute-force if the config leaks. The online guard is the lockout: 5 wrong PINs
//! lock the action for 15 minutes.

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

/// OWASP's minimum for Argon2id: 7 MiB, 5 passes, one lane. Small enough for a 128 MB Lambda.
fn hasher() -> Argon2<'static> {
    let params = Params::new(7 * 1024, 5, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An Argon2id hash of a PIN, in the PHC form written in config (`$argon2id$v=19$...`).
#[derive(Clone)]
pub struct PinHash(String);

impl PinHash {
    /// Hashes a new PIN (4 to 64 characters), with a random salt.
    pub fn of(pin: &str) -> Result<Self, PinHashError> {
        check_shape(pin)?;
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(pin.as_bytes(), &salt)
            .map(|h| Self(h.to_string()))
            .map_err(|_| PinHashError)
    }

    /// Whether `pin` is the PIN. Slow on purpose (tens of milliseconds): run it off the async
    /// threads ([`tokio::task::spawn_blocking`]).
    pub fn verify(&self, pin: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(&self.0) else {
            return false;
        };
        // Parameters come from the hash itself, so an older, stronger or weaker hash still verifies.
        Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    }
}

fn check_shape(pin: &str) -> Result<(), PinHashError> {
    let n = pin.chars().count();
    if !(4..=64).contains(&n) || pin.chars().any(char::is_control) {
        return Err(PinHashError);
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

/// A PIN hash in config that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected an Argon2id hash (\"$argon2id$...\") of a PIN of 4 to 64 characters: run `homehook pin new`"
)]
pub struct PinHashError;

impl FromStr for PinHash {
    type Err = PinHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = PasswordHash::new(s).map_err(|_| PinHashError)?;
        if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
            return Err(PinHashError);
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
        let hash = PinHash::of("4821").expect("hash");
        let text = hash.to_string();
        assert!(text.starts_with("$argon2id$"));
        let parsed: PinHash = text.parse().expect("parses");
        assert!(parsed.verify("4821"));
        assert!(!parsed.verify("4822"));
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
        assert!(PinHash::of("12").is_err(), "too short");
    }

    #[tokio::test]
    async fn five_wrong_pins_lock_the_action_until_the_window_ends() {
        let store = MemoryStore::new();
        let hash = PinHash::of("4821").expect("hash");
        let now = UnixTime(1_700_000_100);
        let pin = |p: &str| Some(SecretString::new(p));
        assert!(matches!(
            check(&store, "disarm", &hash, None, now).await,
            Err(PinRefusal::Required)
        ));
        for left in (1..MAX_WRONG_PINS).rev() {
            match check(&store, "disarm", &hash, pin("0000"), now).await {
                Err(PinRefusal::Wrong { left: l }) => assert_eq!(l, left),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            check(&store, "disarm", &hash, pin("0000"), now).await,
            Err(PinRefusal::Locked { .. })
        ));
        // Even the right PIN is refused while locked.
        assert!(matches!(
            check(&store, "disarm", &hash, pin("4821"), now).await,
            Err(PinRefusal::Locked { .. })
        ));
        // Another action is not locked.
        assert!(check(&store, "gate", &hash, pin("4821"), now).await.is_ok());
        // After the window, the right PIN works again.
        let later = now.plus_secs(LOCKOUT_SECS);
        assert!(
            check(&store, "disarm", &hash, pin("4821"), later)
                .await
                .is_ok()
        );
    }
}
