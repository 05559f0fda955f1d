//! `Idempotency-Key`: a caller that may repeat a call (a shortcut retried on a flaky network, a
//! webhook delivered twice) sends a key of its choice; the first call acts and its answer is kept
//! for 24 hours in the store; a repeat with the same key and the same request gets that answer
//! back (`Idempotent-Replayed: true`) without acting again. The same key with a different request
//! is refused, and a repeat while the first is still running is told to wait.
//!
//! Records live in the item store (SQLite locally, DynamoDB with its TTL on AWS), so a repeat that
//! reaches another instance is caught too: the claim is one atomic insert.
//!
//! A claim must last as long as its call runs, or a repeat acts a second time. It is renewed
//! while the call runs ([`Claim::hold`]) rather than given a lifetime long enough for the longest
//! call, because that lifetime has no honest bound: one action call may wait for a renewal
//! (another instance's lease, up to `vendor_timeout_secs` + 10 s, then its own token call), make
//! its call, renew again on "expired", repeat the call, retry passing failures twice (0.2 s and
//! 0.6 s apart), wait for the vendor's pace (up to 1 s before each call), and for Homey run the
//! login chain (user/me with its own renewal and retries, the delegation token, the login) once
//! more after "session expired"; each exchange is allowed `vendor_timeout_secs` (up to 60 s).
//! Counted out, that is over 40 exchanges, about 45 minutes at 60 s, for a claim that otherwise
//! lasts a second; and a vendor step with one more call, or a store that retries, would break
//! the count unseen. Renewed, the claim lasts exactly as long as its call, however long, and a
//! process that dies mid-call frees the key [`PENDING_SECS`] later.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use tokio::sync::oneshot;

use crate::clock::{Clock, UnixTime};
use crate::store::{ItemStore, StoreError, item_key};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const TTL_SECS: i64 = 24 * 3600;
/// How long a claim without an answer blocks repeats once nothing renews it: a call that died
/// half way (a crashed process, a Lambda cut at its timeout) frees its key after this, instead
/// of blocking it for a day. A running call renews it every [`RENEW_EVERY_SECS`].
pub const PENDING_SECS: i64 = 30;
/// How often a running call renews its claim: six renewals per [`PENDING_SECS`], so a store
/// write delayed by up to 25 s still lands before the claim would lapse.
pub const RENEW_EVERY_SECS: u64 = 5;
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

impl Claim {
    /// Keeps the claim alive while its call runs: every [`RENEW_EVERY_SECS`] its pending record
    /// is written again to last [`PENDING_SECS`] more. [`Holding::end`] stops it before the
    /// answer is kept.
    pub fn hold(&self, store: Arc<dyn ItemStore>, clock: Arc<dyn Clock>) -> Holding {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let item = self.item.clone();
        let pending = serde_json::to_string(&Record::Pending {
            fingerprint: self.fingerprint.clone(),
        })
        .unwrap_or_default();
        let task = tokio::spawn(async move {
            let every = Duration::from_secs(RENEW_EVERY_SECS);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(every) => {}
                }
                // A write once started is awaited, never dropped: dropped, it could still land
                // after the answer is kept and turn it back into a claim.
                let now = clock.now();
                if let Err(e) = store
                    .put_item(&item, &pending, now.plus_secs(PENDING_SECS))
                    .await
                {
                    tracing::warn!(error = %e, "could not renew an idempotency claim");
                }
            }
        });
        Holding {
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A claim being kept alive by [`Claim::hold`].
#[derive(Debug)]
pub struct Holding {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Holding {
    /// Stops renewing, and waits for a renewal under way: after this nothing writes the
    /// pending record again, so [`finish`] or [`release`] has the last word.
    pub async fn end(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        // Dropped without `end` (the request was cancelled): stop renewing; the claim then
        // lapses after PENDING_SECS like a crashed call's.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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
