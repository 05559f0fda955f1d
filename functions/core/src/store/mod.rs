//! Storage ports: tokens (versioned, compare-and-swap) and short-lived items (OAuth states).
//!
//! Two implementations live here: [`MemoryStore`] for tests and [`SqliteStore`], the embedded
//! default of `homehook serve`. The AWS adapter adds DynamoDB. All of them pass the same
//! [`conformance`] checks.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::token::TokenRecord;

pub mod conformance;
mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{DB_FILE, SqliteStore};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record's version was not the expected one: someone else wrote it first.
    #[error("the record changed meanwhile (version conflict)")]
    Conflict,
    /// The backend failed (I/O, database locked, network).
    #[error("store unavailable: {0}")]
    Backend(String),
    /// Stored data could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Tokens, one record per connection.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The record of a connection, if any.
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Writes `record` if the stored version is `expected` (`None`: no record exists yet).
    /// Returns the record as stored, with its new version; [`StoreError::Conflict`] otherwise.
    async fn swap_token(
        &self,
        expected: Option<u64>,
        record: TokenRecord,
    ) -> Result<TokenRecord, StoreError>;

    /// Every record.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
}

/// What [`ItemStore::take_item`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The item, now deleted: nobody else can take it.
    Value(String),
    /// The item existed but had expired (it is deleted too).
    Expired,
    /// No such item (never stored, or already taken).
    Missing,
}

/// Short-lived items, each usable once (OAuth states with their PKCE verifiers).
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Stores an item until `expires_at`, replacing any item with the same key.
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError>;

    /// Removes and returns an item, atomically: of two concurrent takers, one gets it.
    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError>;
}

/// Everything homehook stores.
pub trait Store: TokenStore + ItemStore {}

impl<T: TokenStore + ItemStore> Store for T {}

#[cfg(test)]
pub(crate) fn conformance_record() -> TokenRecord {
    TokenRecord {
        connection: "c1".into(),
        access_token: crate::secret::SecretString::new("a"),
        refresh_token: None,
        expires_at: None,
        scopes: vec![],
        connected_at: UnixTime(0),
        refreshed_at: None,
        version: 0,
        health: crate::token::Health::Healthy,
        session: None,
        lifecycle: Default::default(),
    }
}
