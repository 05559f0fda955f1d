//! A real store with injected write failures, for "the store failed right after the vendor
//! rotated the refresh token". Reads and every other write go to the real store underneath.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use homehook_core::clock::UnixTime;
use homehook_core::store::{
    ConfigStore, ItemStore, Store, StoreError, StoredConfig, Taken, TokenStore,
};
use homehook_core::token::TokenRecord;

/// Wraps a store; fails the next N writes of renewed tokens.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fail_renewal_writes: AtomicUsize,
    failed: AtomicUsize,
}

impl FaultyStore {
    /// Over `inner`, failing nothing yet.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            fail_renewal_writes: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// The next `n` writes that store new tokens (a different access token than stored, no
    /// lease: the write right after a token call) fail as a broken disk or network would.
    pub fn fail_renewal_writes(&self, n: usize) {
        self.fail_renewal_writes.store(n, Ordering::SeqCst);
    }

    /// Writes failed so far.
    pub fn failed_writes(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for FaultyStore {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.get_token(connection).await
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        if record.lifecycle.lease.is_none() && self.fail_renewal_writes.load(Ordering::SeqCst) > 0 {
            let stored = self.inner.get_token(&record.connection).await?;
            let renewal = stored.is_some_and(|s| s.access_token != record.access_token);
            if renewal
                && self
                    .fail_renewal_writes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                self.failed.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Backend("injected: disk I/O error".into()));
            }
        }
        self.inner.swap_token(expected, record).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens().await
    }

    fn holders_on_this_machine(&self) -> bool {
        self.inner.holders_on_this_machine()
    }

    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.due_tokens(now).await
    }
}

#[async_trait]
impl ItemStore for FaultyStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner.put_item(key, value, expires_at).await
    }

    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError> {
        self.inner.take_item(key, now).await
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        self.inner.insert_item(key, value, expires_at, now).await
    }

    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.inner.get_item(key, now).await
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        self.inner.count_item(key, expires_at, now).await
    }
}

/// The config document passes through: the faults are the token writes'.
#[async_trait]
impl ConfigStore for FaultyStore {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.inner.get_config().await
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError> {
        self.inner.swap_config(expected, text, now).await
    }
}
