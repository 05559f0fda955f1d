//! When each action key was last used, for `homehook key list`: one item per key in the store
//! (`key-used#<id>`), so every instance's calls count. Written at most once per
//! [`RECORD_EVERY_SECS`] per key and process: a busy key costs one store write per interval,
//! not one per call, and "last used" is exact to that interval.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;
use crate::store::{ItemStore, StoreError, item_key};

/// How often a process records one key's use, at most.
pub const RECORD_EVERY_SECS: i64 = 600;
/// How long a key's last use is remembered after it (a key unused for longer shows "never").
const KEEP_SECS: i64 = 400 * 86_400;

/// The last write per key id, in this process (shared by the gates of every config version).
#[derive(Debug, Default)]
pub struct KeyUse {
    written: Mutex<HashMap<String, UnixTime>>,
}

impl KeyUse {
    /// Notes that key `id` opened an action at `now`. A store failure is logged, never the
    /// caller's problem: the call itself goes on.
    pub async fn note(&self, store: &dyn ItemStore, id: &str, now: UnixTime) {
        {
            let mut written = self
                .written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match written.get(id) {
                Some(at) if now.0 - at.0 < RECORD_EVERY_SECS => return,
                _ => {
                    written.insert(id.to_string(), now);
                }
            }
        }
        let key = item_key::key_used(id);
        if let Err(e) = store
            .put_item(&key, &now.0.to_string(), now.plus_secs(KEEP_SECS))
            .await
        {
            tracing::warn!(key_id = %id, error = %e, "could not record the key's use");
        }
    }
}

/// When key `id` was last recorded as used, if within the remembered time.
pub async fn last_use(
    store: &dyn ItemStore,
    id: &str,
    now: UnixTime,
) -> Result<Option<UnixTime>, StoreError> {
    Ok(store
        .get_item(&item_key::key_used(id), now)
        .await?
        .and_then(|v| v.parse().ok())
        .map(UnixTime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_use_is_recorded_once_per_interval_and_read_back() {
        let store = MemoryStore::new();
        let uses = KeyUse::default();
        let t0 = UnixTime(1_000_000);
        assert_eq!(last_use(&store, "phone", t0).await.expect("read"), None);
        uses.note(&store, "phone", t0).await;
        uses.note(&store, "phone", t0.plus_secs(RECORD_EVERY_SECS - 1))
            .await;
        assert_eq!(last_use(&store, "phone", t0).await.expect("read"), Some(t0));
        let later = t0.plus_secs(RECORD_EVERY_SECS);
        uses.note(&store, "phone", later).await;
        assert_eq!(
            last_use(&store, "phone", later).await.expect("read"),
            Some(later)
        );
        assert_eq!(last_use(&store, "watch", later).await.expect("read"), None);
    }
}
