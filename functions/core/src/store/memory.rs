//! In-memory store, for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ConfigStore, ItemStore, StoreError, StoredConfig, Taken, TokenStore, parse_count};
use crate::clock::UnixTime;
use crate::token::TokenRecord;

/// A store that lives in this process only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, TokenRecord>>,
    items: Mutex<HashMap<String, (String, UnixTime)>>,
    config: Mutex<Option<StoredConfig>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("memory store lock poisoned".into())
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .map_err(poisoned)?
            .get(connection)
            .cloned())
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        let mut tokens = self.tokens.lock().map_err(poisoned)?;
        let current = tokens.get(&record.connection).map(|r| r.version);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        record.version = expected.unwrap_or(0) + 1;
        tokens.insert(record.connection.clone(), record.clone());
        Ok(record)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .map_err(poisoned)?
            .values()
            .cloned()
            .collect())
    }

    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        // Tests keep a handful of records: a scan stands in for the index here.
        let mut due: Vec<TokenRecord> = self
            .tokens
            .lock()
            .map_err(poisoned)?
            .values()
            .filter(|r| r.due_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by_key(|r| (r.due_at, r.connection.clone()));
        Ok(due)
    }
}

#[async_trait]
impl ItemStore for MemoryStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.items
            .lock()
            .map_err(poisoned)?
            .insert(key.to_string(), (value.to_string(), expires_at));
        Ok(())
    }

    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError> {
        Ok(match self.items.lock().map_err(poisoned)?.remove(key) {
            Some((value, expires_at)) if now < expires_at => Taken::Value(value),
            Some(_) => Taken::Expired,
            None => Taken::Missing,
        })
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        match items.get(key) {
            Some((existing, until)) if now < *until => Ok(Some(existing.clone())),
            _ => {
                items.insert(key.to_string(), (value.to_string(), expires_at));
                Ok(None)
            }
        }
    }

    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        Ok(match self.items.lock().map_err(poisoned)?.get(key) {
            Some((value, expires_at)) if now < *expires_at => Some(value.clone()),
            _ => None,
        })
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let mut items = self.items.lock().map_err(poisoned)?;
        let (count, until) = match items.get(key) {
            Some((value, until)) if now < *until => {
                (parse_count(key, value)?.saturating_add(1), *until)
            }
            _ => (1, expires_at),
        };
        items.insert(key.to_string(), (count.to_string(), until));
        Ok(count)
    }
}

#[async_trait]
impl ConfigStore for MemoryStore {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        Ok(self.config.lock().map_err(poisoned)?.clone())
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError> {
        let mut config = self.config.lock().map_err(poisoned)?;
        if config.as_ref().map(|c| c.version) != expected {
            return Err(StoreError::Conflict);
        }
        let stored = StoredConfig {
            version: expected.unwrap_or(0) + 1,
            text: text.to_string(),
            written_at: now,
        };
        *config = Some(stored.clone());
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conforms() {
        let store = super::MemoryStore::new();
        if let Err(e) = crate::store::conformance::run(&store).await {
            panic!("{e}");
        }
    }
}
