//! Which keys open which actions: per-action keys (`[actions.x] key_hash`) and named keys
//! scoped to a list of actions (`[keys.<id>]`), each revocable and, for rotation, able to expire
//! at a set time while its successor already works.
//!
//! Every refusal (no such action, wrong key, a key of another action, an expired or revoked key)
//! is the same 401 to the caller, so nobody can probe which actions exist; the log says which
//! it was, by key id, for the owner.

use std::collections::BTreeSet;

use crate::clock::UnixTime;
use crate::guard::limits::RateLimit;
use crate::keys::KeyHash;

/// The actions a key opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// Every action (`actions = ["*"]`).
    All,
    /// These actions.
    Actions(BTreeSet<String>),
}

impl KeyScope {
    /// Whether the key opens `action`.
    pub fn covers(&self, action: &str) -> bool {
        match self {
            Self::All => true,
            Self::Actions(names) => names.contains(action),
        }
    }
}

/// One key that may call actions.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Non-secret id for logs and listings: the `[keys.<id>]` name, or `<action>:<hash prefix>`
    /// for a key written on the action itself.
    pub id: String,
    /// The key's hash.
    pub hash: KeyHash,
    /// What it opens.
    pub scope: KeyScope,
    /// From this time on the key no longer works (the end of a rotation's overlap).
    pub expires: Option<UnixTime>,
    /// Revoked: kept in config so its use is logged by name, but it opens nothing.
    pub revoked: bool,
    /// Calls this key may make (burst and sustained), over all the actions it opens.
    pub rate_limit: RateLimit,
}

/// Why a presented key was refused. The caller always gets the same 401; this is for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No configured key has this value (or there is no such action).
    Unknown,
    /// A real key, but not one of this action's.
    OutOfScope {
        /// The key's id.
        key_id: String,
    },
    /// The key expired (its rotation overlap ended).
    Expired {
        /// The key's id.
        key_id: String,
    },
    /// The key was revoked.
    Revoked {
        /// The key's id.
        key_id: String,
    },
}

impl KeyRefusal {
    /// A word for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown key",
            Self::OutOfScope { .. } => "key of other actions",
            Self::Expired { .. } => "expired key",
            Self::Revoked { .. } => "revoked key",
        }
    }

    /// The key's id, when the key is a real one.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Unknown => None,
            Self::OutOfScope { key_id } | Self::Expired { key_id } | Self::Revoked { key_id } => {
                Some(key_id)
            }
        }
    }
}

/// Every action key of the configuration.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

impl KeyRing {
    /// A key ring of these entries.
    pub fn new(entries: Vec<KeyEntry>) -> Self {
        Self { entries }
    }

    /// Every entry.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Whether some key that is not revoked (in any of its entries) opens `action`.
    pub fn opens(&self, action: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.scope.covers(action) && self.revoked_as(&e.hash).is_none())
    }

    /// The id of an entry that revokes the key of `hash`, if one does (a revocation is of the
    /// key, wherever else it is listed).
    pub fn revoked_as(&self, hash: &KeyHash) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.revoked && e.hash.same_as(hash))
            .map(|e| e.id.as_str())
    }

    /// The entry that lets `presented` call `action` at `now`.
    ///
    /// The presented key is hashed once and compared, in constant time, with every configured
    /// hash whatever the action: the time taken does not depend on which action was named, nor
    /// on which (if any) stored hash it resembles.
    pub fn admit(
        &self,
        presented: &str,
        action: &str,
        now: UnixTime,
    ) -> Result<&KeyEntry, KeyRefusal> {
        let candidate = KeyHash::of(presented);
        let mut matched: Vec<&KeyEntry> = Vec::new();
        for entry in &self.entries {
            if entry.hash.same_as(&candidate) {
                matched.push(entry);
            }
        }
        // A revocation is of the key, not of one entry: the same key may sit in several entries
        // (a named key and an action's own), and if any of them is revoked the key opens
        // nothing, and the refusal names the revoked entry.
        if let Some(revoked) = matched.iter().find(|e| e.revoked) {
            return Err(KeyRefusal::Revoked {
                key_id: revoked.id.clone(),
            });
        }
        // Otherwise any entry that opens the action and has not expired lets it in.
        let usable = |e: &KeyEntry| e.scope.covers(action) && e.expires.is_none_or(|at| now < at);
        if let Some(entry) = matched.iter().copied().find(|e| usable(e)) {
            return Ok(entry);
        }
        let Some(first) = matched
            .iter()
            .find(|e| e.scope.covers(action))
            .or(matched.first())
        else {
            return Err(KeyRefusal::Unknown);
        };
        let key_id = first.id.clone();
        Err(if !first.scope.covers(action) {
            KeyRefusal::OutOfScope { key_id }
        } else {
            KeyRefusal::Expired { key_id }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ActionKey;

    fn entry(id: &str, key: &ActionKey, scope: KeyScope) -> KeyEntry {
        KeyEntry {
            id: id.into(),
            hash: key.hash(),
            scope,
            expires: None,
            revoked: false,
            rate_limit: RateLimit::default(),
        }
    }

    fn only(names: &[&str]) -> KeyScope {
        KeyScope::Actions(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_scoped_key_opens_its_actions_only() {
        let phone = ActionKey::generate();
        let ring = KeyRing::new(vec![entry("phone", &phone, only(&["arm", "disarm"]))]);
        let now = UnixTime(100);
        assert_eq!(
            ring.admit(phone.expose(), "arm", now)
                .map(|e| e.id.as_str()),
            Ok("phone")
        );
        assert_eq!(
            ring.admit(phone.expose(), "disarm", now)
                .map(|e| e.id.as_str()),
            Ok("phone")
        );
        assert_eq!(
            ring.admit(phone.expose(), "lights", now)
                .map(|e| e.id.clone()),
            Err(KeyRefusal::OutOfScope {
                key_id: "phone".into()
            })
        );
        assert_eq!(
            ring.admit("hh_not-a-key", "arm", now).map(|e| e.id.clone()),
            Err(KeyRefusal::Unknown)
        );
        assert_eq!(
            ring.admit(phone.expose(), "no_such_action", now)
                .map(|e| e.id.clone()),
            Err(KeyRefusal::OutOfScope {
                key_id: "phone".into()
            })
        );
    }

    #[test]
    fn rotation_overlap_then_only_the_new_key() {
        let old = ActionKey::generate();
        let new = ActionKey::generate();
        let mut retiring = entry("old", &old, KeyScope::All);
        retiring.expires = Some(UnixTime(1_000));
        let ring = KeyRing::new(vec![retiring, entry("new", &new, KeyScope::All)]);
        // During the overlap both work.
        assert!(ring.admit(old.expose(), "arm", UnixTime(999)).is_ok());
        assert!(ring.admit(new.expose(), "arm", UnixTime(999)).is_ok());
        // After it, only the new one.
        assert_eq!(
            ring.admit(old.expose(), "arm", UnixTime(1_000))
                .map(|e| e.id.clone()),
            Err(KeyRefusal::Expired {
                key_id: "old".into()
            })
        );
        assert!(ring.admit(new.expose(), "arm", UnixTime(1_000)).is_ok());
    }

    #[test]
    fn a_revoked_key_opens_nothing_but_is_named_in_the_refusal() {
        let k = ActionKey::generate();
        let mut revoked = entry("lost-phone", &k, KeyScope::All);
        revoked.revoked = true;
        let ring = KeyRing::new(vec![revoked]);
        assert_eq!(
            ring.admit(k.expose(), "arm", UnixTime(0))
                .map(|e| e.id.clone()),
            Err(KeyRefusal::Revoked {
                key_id: "lost-phone".into()
            })
        );
        assert!(!ring.opens("arm"));
    }

    #[test]
    fn a_revoked_key_listed_again_elsewhere_still_opens_nothing_and_is_named_as_revoked() {
        let k = ActionKey::generate();
        let other = ActionKey::generate();
        let mut lost = entry("lost_phone", &k, KeyScope::All);
        lost.revoked = true;
        // The same key copied into an action's own key_hash, before and after the revocation.
        let own = entry("arm:abcd", &k, only(&["arm"]));
        for ring in [
            KeyRing::new(vec![
                lost.clone(),
                own.clone(),
                entry("x", &other, only(&["arm"])),
            ]),
            KeyRing::new(vec![own, lost, entry("x", &other, only(&["arm"]))]),
        ] {
            assert_eq!(
                ring.admit(k.expose(), "arm", UnixTime(0))
                    .map(|e| e.id.clone()),
                Err(KeyRefusal::Revoked {
                    key_id: "lost_phone".into()
                })
            );
            assert!(ring.admit(other.expose(), "arm", UnixTime(0)).is_ok());
            assert_eq!(ring.revoked_as(&k.hash()), Some("lost_phone"));
        }
        // An action whose only key is revoked elsewhere is opened by nothing.
        let mut lost = entry("lost_phone", &k, KeyScope::All);
        lost.revoked = true;
        let ring = KeyRing::new(vec![lost, entry("arm:abcd", &k, only(&["arm"]))]);
        assert!(!ring.opens("arm"));
    }
}
