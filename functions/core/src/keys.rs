//! Action and admin keys: generated with 256 bits of entropy, stored only as SHA-256 hashes,
//! compared in constant time.
//!
//! A plain SHA-256 (not a password hash such as Argon2) is the right tool here: the keys are
//! random 256-bit values, so there is nothing for a slow hash to protect against brute force,
//! and a fast hash keeps every action call cheap.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::sensitive::SecretString;

/// Prefix of every generated key, so that secret scanners and people can recognise one.
const KEY_PREFIX: &str = "hh_";
/// Prefix of the hash format written in config files.
const HASH_PREFIX: &str = "sha256:";

/// A freshly generated key, to show once to its owner.
#[derive(Debug)]
pub struct ActionKey(SecretString);

impl ActionKey {
    /// A new random key: `hh_` + 32 random bytes, base64url (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(SecretString::new(format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// The key itself, to print once.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The hash to put in config.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(self.0.expose())
    }
}

/// The SHA-256 of a key, as stored in config (`sha256:<64 hex digits>`). No `PartialEq`: the
/// only comparison is [`KeyHash::verify`], in constant time.
#[derive(Clone)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of a presented key.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Whether `presented` is the key this hash was made from, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let candidate = Self::of(presented);
        bool::from(self.0.ct_eq(&candidate.0))
    }

    /// Whether two hashes are equal, compared in constant time.
    pub fn same_as(&self, other: &KeyHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }

    /// A short, non-secret id for logs: the first 8 hex digits of the hash.
    pub fn key_id(&self) -> String {
        hex(&self.0[..4])
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HASH_PREFIX}{}", hex(&self.0))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.key_id())
    }
}

/// Why a key hash in config could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected \"sha256:\" followed by 64 hex digits (run `homehook key new` to make one)")]
pub struct KeyHashParseError;

impl FromStr for KeyHash {
    type Err = KeyHashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix(HASH_PREFIX).ok_or(KeyHashParseError)?;
        if hex_part.len() != 64 {
            return Err(KeyHashParseError);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex_part.get(i * 2..i * 2 + 2).ok_or(KeyHashParseError)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| KeyHashParseError)?;
        }
        Ok(Self(out))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_url_safe_and_distinct() {
        let a = ActionKey::generate();
        let b = ActionKey::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 3 + 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn hash_round_trips_and_verifies_only_its_key() {
        let key = ActionKey::generate();
        let text = key.hash().to_string();
        let parsed: KeyHash = text.parse().expect("hash parses");
        assert!(parsed.verify(key.expose()));
        assert!(!parsed.verify("hh_wrong"));
        assert!(!parsed.verify(""));
        assert_eq!(
            format!("{parsed:?}"),
            format!("KeyHash({})", parsed.key_id())
        );
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "sha256:",
            "md5:00",
            "sha256:zz",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<KeyHash>().is_err(), "{bad}");
        }
    }
}
