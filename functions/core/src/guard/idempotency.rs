//! `Idempotency-Key`: a caller that may repeat a call (a shortcut retried on a flaky network, a
//! webhook delivered twice) sends a key of its choice; the first call acts and its answer is kept
//! for 24 hours in the store; a repeat with the same key and the same request gets that answer
//! back (`Idempotent-Replayed: true`) without acting again. The same key with a different request
//! is refused, and a repeat while the first is still running is told to wait.
//!
//! Records live in the item store (SQLite locally, DynamoDB with its TTL on AWS), so a repeat that
//! reaches another instance is caught too: the claim is one atomic insert.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::store::{ItemStore, StoreError, item_key};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const TTL_SECS: i64 = 24 * 3600;
/// How long a claim without an answer blocks repeats: a call that died half way (a crashed
/// process) frees its key after this, instead of blocking it for a day.
pub const PENDING_SECS: i64 = 120;
/// Longest answer body kept; longer ones are kept without their body.
const MAX_KEPT_BODY: usize = 64 * 1024;

/// An answer as kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptResponse {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body.
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    Pending {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        answer: KeptResponse,
    },
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claimed {
    /// The key is new: act, then [`finish`] (or [`release`] if the call may be retried).
    New(Claim),
    /// The key was used for this same request: here is its answer.
    Replay(KeptResponse),
    /// The key's first call is still running.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

/// A claimed key, to finish or release.
#[derive(Debug)]
pub struct Claim {
    item: String,
    fingerprint: String,
}

/// Why an `Idempotency-Key` header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
pub struct InvalidKey;

/// Checks the header's shape.
pub fn validate(key: &str) -> Result<(), InvalidKey> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidKey);
    }
    Ok(())
}

/// What makes two calls "the same request": the method and the parameters sent (from the
/// query and the body, as parsed: `{"a":1}` and `{ "a": 1 }` are the same request).
pub fn fingerprint(method: &str, params: &BTreeMap<String, serde_json::Value>) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    // A BTreeMap serialises in key order: one text per set of parameters.
    h.update(serde_json::to_string(params).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

/// Claims `key` for a call by `key_id` to `action`. The store item is named by a hash, so the
/// caller's key text never lands in the store.
pub async fn claim(
    store: &dyn ItemStore,
    key_id: &str,
    action: &str,
    key: &str,
    fingerprint: String,
    now: UnixTime,
) -> Result<Claimed, StoreError> {
    let item = item_name(key_id, action, key);
    let pending = serde_json::to_string(&Record::Pending {
        fingerprint: fingerprint.clone(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let Some(existing) = store
        .insert_item(&item, &pending, now.plus_secs(PENDING_SECS), now)
        .await?
    else {
        return Ok(Claimed::New(Claim { item, fingerprint }));
    };
    Ok(match serde_json::from_str::<Record>(&existing) {
        Ok(Record::Pending { fingerprint: f }) if f == fingerprint => Claimed::InProgress,
        Ok(Record::Done {
            fingerprint: f,
            answer,
        }) if f == fingerprint => Claimed::Replay(answer),
        Ok(_) => Claimed::Reused,
        Err(e) => return Err(StoreError::Corrupt(e.to_string())),
    })
}

/// What a key already holds, read without claiming it.
#[derive(Debug)]
pub enum Kept {
    /// The key's call with this same request was answered: here is its answer.
    Answer(KeptResponse),
    /// The key's call with this same request is still running.
    InProgress,
    /// Nothing for this request: the key is unused, released, or used for another request.
    Nothing,
}

/// What `key` (of `key_id` calling `action`) holds for the request `fingerprint`, without
/// claiming it: for a repeat that may only be answered, never run (a signed request seen
/// before).
pub async fn kept(
    store: &dyn ItemStore,
    key_id: &str,
    action: &str,
    key: &str,
    fingerprint: &str,
    now: UnixTime,
) -> Result<Kept, StoreError> {
    let item = item_name(key_id, action, key);
    let Some(existing) = store.get_item(&item, now).await? else {
        return Ok(Kept::Nothing);
    };
    Ok(match serde_json::from_str::<Record>(&existing) {
        Ok(Record::Pending { fingerprint: f }) if f == fingerprint => Kept::InProgress,
        Ok(Record::Done {
            fingerprint: f,
            answer,
        }) if f == fingerprint => Kept::Answer(answer),
        Ok(_) => Kept::Nothing,
        Err(e) => return Err(StoreError::Corrupt(e.to_string())),
    })
}

/// The store item of a key: named by a hash, so the caller's key text never lands in the store.
fn item_name(key_id: &str, action: &str, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [key_id, action, key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    item_key::idempotency(&hex::encode(h.finalize()))
}

/// Keeps the answer of a claimed call for [`TTL_SECS`].
pub async fn finish(
    store: &dyn ItemStore,
    claim: Claim,
    mut answer: KeptResponse,
    now: UnixTime,
) -> Result<(), StoreError> {
    if answer.body.len() > MAX_KEPT_BODY {
        answer.body = String::new();
    }
    let done = serde_json::to_string(&Record::Done {
        fingerprint: claim.fingerprint,
        answer,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .put_item(&claim.item, &done, now.plus_secs(TTL_SECS))
        .await
}

/// Frees a claimed key whose call should be retried (the vendor was busy or down): the
/// caller's repeat then acts.
pub async fn release(store: &dyn ItemStore, claim: Claim, now: UnixTime) -> Result<(), StoreError> {
    store.take_item(&claim.item, now).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn answer() -> KeptResponse {
        KeptResponse {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            body: "Alarm armed".into(),
        }
    }

    #[tokio::test]
    async fn same_key_same_request_replays_the_first_answer() {
        let store = MemoryStore::new();
        let now = UnixTime(1_000);
        let fp = fingerprint("POST", &BTreeMap::new());
        let Claimed::New(c) = claim(&store, "phone", "arm", "k-1", fp.clone(), now)
            .await
            .expect("claim")
        else {
            panic!("first claim is new")
        };
        assert!(matches!(
            claim(&store, "phone", "arm", "k-1", fp.clone(), now).await,
            Ok(Claimed::InProgress)
        ));
        finish(&store, c, answer(), now).await.expect("finish");
        match claim(
            &store,
            "phone",
            "arm",
            "k-1",
            fp.clone(),
            now.plus_secs(3600),
        )
        .await
        {
            Ok(Claimed::Replay(a)) => assert_eq!(a, answer()),
            other => panic!("{other:?}"),
        }
        let other_body = fingerprint("POST", &BTreeMap::from([("x".to_string(), 1.into())]));
        assert!(matches!(
            claim(&store, "phone", "arm", "k-1", other_body, now).await,
            Ok(Claimed::Reused)
        ));
        // Another action, or after 24 h: a new call.
        assert!(matches!(
            claim(&store, "phone", "disarm", "k-1", fp.clone(), now).await,
            Ok(Claimed::New(_))
        ));
        assert!(matches!(
            claim(&store, "phone", "arm", "k-1", fp, now.plus_secs(TTL_SECS)).await,
            Ok(Claimed::New(_))
        ));
    }

    #[tokio::test]
    async fn a_released_or_abandoned_claim_lets_the_repeat_act() {
        let store = MemoryStore::new();
        let now = UnixTime(1_000);
        let fp = fingerprint("POST", &BTreeMap::new());
        let Ok(Claimed::New(c)) = claim(&store, "k", "arm", "r", fp.clone(), now).await else {
            panic!("new")
        };
        release(&store, c, now).await.expect("release");
        let Ok(Claimed::New(_abandoned)) = claim(&store, "k", "arm", "r", fp.clone(), now).await
        else {
            panic!("new again after release")
        };
        assert!(matches!(
            claim(&store, "k", "arm", "r", fp, now.plus_secs(PENDING_SECS)).await,
            Ok(Claimed::New(_))
        ));
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(validate("2f1c-retry").is_ok());
        for bad in ["", "has space", "tab\t", "é", &"x".repeat(256)] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
