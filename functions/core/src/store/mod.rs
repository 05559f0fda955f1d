//! Storage ports: tokens (versioned, compare-and-swap) and short-lived items (OAuth states,
//! idempotency records, replay guards, counters).
//!
//! [`MemoryStore`] lives here, for tests; `homehook-local` holds SQLite, the embedded default of
//! `homehook serve`, and `homehook-aws` holds DynamoDB. All of them pass the same
//! `conformance` checks (compiled for tests, and for other crates' tests with the
//! `conformance` feature: it is not shipped).

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::token::TokenRecord;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod item_key;
mod memory;

pub use memory::MemoryStore;

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

    /// Every record (a full scan: for listings, never for the tick).
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Whether every process using this store runs on this machine (a local file): then a
    /// renewal lease whose holder process is gone is taken over at once rather than waited
    /// out (`refresh/holder.rs`).
    fn holders_on_this_machine(&self) -> bool {
        false
    }

    /// The records whose [`TokenRecord::due_at`] is at or before `now`, earliest first. Read
    /// through an index on `due_at`: the cost follows the due records, not all of them. Records
    /// without `due_at` are never returned.
    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError>;
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

/// Short-lived items: OAuth states with their PKCE verifiers (each usable once), idempotency
/// records, signature-replay guards and failure counters. An item is live until its expiry
/// time, exclusive: at `expires_at` it has expired.
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

    /// Stores an item only if no live item (one not expired at `now`) has this key: `None` when
    /// stored, `Some(existing value)` otherwise. Atomic: of two concurrent inserters, exactly one
    /// gets `None`. An expired item with the key is replaced.
    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError>;

    /// The value of a live item, without removing it (`None` if missing or expired at `now`).
    /// A counter (see `count_item`) reads as its count in decimal.
    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError>;

    /// Adds one to a counter item and returns the new count. A missing or expired counter
    /// restarts at 1 and expires at `expires_at`; a live counter keeps its expiry. Atomic: n
    /// concurrent calls on a fresh key return 1..=n, each once. A live item that is not a
    /// counter is [`StoreError::Corrupt`].
    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError>;
}

/// The config document as stored: the `homehook.toml` text people wrote, checked before it was
/// written, and its version. Its `Debug` gives the text's size, not the text: it holds key and
/// PIN hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// 1 for the first document, one more for each write.
    pub version: u64,
    /// The TOML text.
    pub text: String,
    /// When it was written.
    pub written_at: UnixTime,
}

impl std::fmt::Debug for StoredConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConfig")
            .field("version", &self.version)
            .field("bytes", &self.text.len())
            .field("written_at", &self.written_at)
            .finish()
    }
}

/// The config document: one per store, versioned, replaced whole with a compare-and-swap so
/// that of two concurrent writers one wins and the other is told ([`StoreError::Conflict`]).
/// The store keeps what it is given; checking the text is the writer's job.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// The current document, if one was ever written.
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError>;

    /// Writes `text` if the stored version is `expected` (`None`: no document yet), as the next
    /// version; [`StoreError::Conflict`] otherwise, and nothing is written.
    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError>;
}

/// The count a counter item holds (its value in decimal); [`StoreError::Corrupt`] for an item
/// that is not a counter.
pub fn parse_count(key: &str, value: &str) -> Result<u64, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("item {key} is not a counter")))
}

/// Everything homehook stores.
pub trait Store: TokenStore + ItemStore + ConfigStore {}

impl<T: TokenStore + ItemStore + ConfigStore> Store for T {}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
