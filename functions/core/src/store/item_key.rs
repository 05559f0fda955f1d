//! Every kind of item in the item store, by its key: one place that says what the store holds
//! besides tokens and the config document. The spellings are stored data: changing one orphans
//! the items already written under it.
//!
//! | key                              | what                                  | written by            |
//! |----------------------------------|---------------------------------------|-----------------------|
//! | `oauth_state:<state>`            | a connect link's state and verifier   | [`crate::connect`]    |
//! | `schedule:<name>:<due>`          | the claim of one scheduled run        | [`crate::schedule`]   |
//! | `schedule_last:<name>`           | a schedule's latest outcome           | [`crate::schedule`]   |
//! | `sig#<action>#<digest>`          | a signature already used              | [`crate::gate`]       |
//! | `idem#<hash>`                    | an `Idempotency-Key`'s claim, answer  | [`crate::guard::idempotency`] |
//! | `pin-fail#<action>#<window>`     | wrong PINs in a 15-minute window      | [`crate::guard::pin`] |
//! | `pin-lock#<action>`              | an action locked for wrong PINs       | [`crate::guard::pin`] |
//! | `key-used#<key id>`              | when an action key was last used      | [`crate::guard::key_use`] |

use crate::clock::UnixTime;

/// A connect link's single-use `state`.
pub fn oauth_state(state: &str) -> String {
    format!("oauth_state:{state}")
}

/// The claim of `schedule`'s run due at `due`.
pub fn schedule_claim(schedule: &str, due: UnixTime) -> String {
    format!("schedule:{schedule}:{}", due.0)
}

/// The latest outcome of `schedule`.
pub fn schedule_last_run(schedule: &str) -> String {
    format!("schedule_last:{schedule}")
}

/// A signature of `action` already received (`digest`: the signature's hex digits).
pub fn seen_signature(action: &str, digest: &str) -> String {
    format!("sig#{action}#{digest}")
}

/// An `Idempotency-Key`'s record (`hash`: hex of the key's id, action and key, hashed).
pub fn idempotency(hash: &str) -> String {
    format!("idem#{hash}")
}

/// The wrong PINs of `action` in the 15-minute window starting at `start` (Unix seconds): one
/// counter per action and window (atomic on every backend), kept for two windows.
pub fn pin_failures(action: &str, start: i64) -> String {
    format!("pin-fail#{action}#{start}")
}

/// The lock of `action` after too many wrong PINs, until the item expires.
pub fn pin_lock(action: &str) -> String {
    format!("pin-lock#{action}")
}

/// When the action key `id` was last used.
pub fn key_used(id: &str) -> String {
    format!("key-used#{id}")
}
