//! The refresh tick at scale: 1,000 and 10,000 connections, 10% of them due, on the embedded
//! store and on DynamoDB (moto). The tick runs against the fake vendor (in this process, on a
//! manual clock); a counting wrapper around the real store tells what it read and wrote.
//! Beside it, what the old tick's read (every record, then filter) costs on the same data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use homehook_core::App;
use homehook_core::clock::{Clock, ManualClock, UnixTime};
use homehook_core::config::Config;
use homehook_core::sensitive::SecretString;
use homehook_core::services::Services;
use homehook_core::store::{
    ConfigStore, ItemStore, Store, StoreError, StoredConfig, Taken, TokenStore,
};
use homehook_core::token::{Health, TokenRecord};
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{T0, secrets_for};

/// Store calls, counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// `due_tokens` calls (index queries).
    pub index_queries: AtomicU64,
    /// Records those returned.
    pub index_records: AtomicU64,
    /// `list_tokens` calls (full scans).
    pub scans: AtomicU64,
    /// Records those returned.
    pub scan_records: AtomicU64,
    /// `get_token` calls.
    pub reads: AtomicU64,
    /// `swap_token` calls.
    pub writes: AtomicU64,
}

impl Counts {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

/// A store that counts the calls it passes on.
pub struct Counting {
    inner: Arc<dyn Store>,
    /// The counts so far.
    pub counts: Arc<Counts>,
}

#[async_trait]
impl TokenStore for Counting {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
        self.inner.get_token(connection).await
    }
    async fn swap_token(
        &self,
        expected: Option<u64>,
        record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        self.counts.writes.fetch_add(1, Relaxed);
        self.inner.swap_token(expected, record).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let all = self.inner.list_tokens().await?;
        self.counts.scans.fetch_add(1, Relaxed);
        self.counts
            .scan_records
            .fetch_add(all.len() as u64, Relaxed);
        Ok(all)
    }
    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        let due = self.inner.due_tokens(now).await?;
        self.counts.index_queries.fetch_add(1, Relaxed);
        self.counts
            .index_records
            .fetch_add(due.len() as u64, Relaxed);
        Ok(due)
    }
}

#[async_trait]
impl ItemStore for Counting {
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

/// What one tick over `connections` records did.
#[derive(Debug)]
pub struct Tick {
    /// The store's name.
    pub store: &'static str,
    /// Connections stored.
    pub connections: usize,
    /// Of which due.
    pub due: usize,
    /// The tick, start to end (renewals included).
    pub tick: Duration,
    /// Store calls: index queries, records read from the index, reads, writes.
    pub index_queries: u64,
    /// Records the tick read from the index.
    pub index_records: u64,
    /// Single-record reads.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// The index read alone, timed separately.
    pub index_read: Duration,
    /// The old tick's read (every record) on the same data.
    pub scan_read: Duration,
    /// Records that read returned.
    pub scan_records: usize,
}

fn config(vendor: &str, connections: usize) -> Result<Config> {
    let mut toml = format!(
        "[server]\nrefresh_margin_secs = 300\n\n[providers.netatmo]\nauthorize_url = \"{vendor}/oauth2/authorize\"\ntoken_url = \"{vendor}/oauth2/token\"\napi_base = \"{vendor}\"\n"
    );
    for i in 0..connections {
        toml.push_str(&format!(
            "\n[connections.c{i}]\nprovider = \"netatmo\"\nlabel = \"Home {i}\"\nsecret = \"netatmo\"\n"
        ));
    }
    Ok(Config::parse(&toml, "bench.toml", None)?)
}

/// Seeds `connections` records (every tenth due), runs one tick, and times both reads.
pub async fn measure(
    name: &'static str,
    store: Arc<dyn Store>,
    connections: usize,
) -> Result<Tick> {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let config = config(&vendor.base, connections)?;
    let now = clock.now();
    let client = reqwest::Client::new();
    // Filed as the keeper files them: due at expiry less the 5-minute margin.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..connections {
        let due = i % 10 == 0;
        let refresh = if due {
            crate::procs::password_grant(&client, &vendor.base).await?["refresh_token"]
                .as_str()
                .context("no refresh token")?
                .to_string()
        } else {
            format!("rt-not-due-{i}")
        };
        let expires = now.plus_secs(if due { 60 } else { 7_200 });
        let record = TokenRecord {
            connection: format!("c{i}"),
            access_token: SecretString::new(format!("at-{i}")),
            refresh_token: Some(SecretString::new(refresh)),
            expires_at: Some(expires),
            scopes: vec![],
            // Hour-long tokens issued an hour ago: the due ones are inside the 5-minute margin
            // (a short lifetime would be renewed only a tenth of it ahead of expiry).
            connected_at: expires.plus_secs(-3_600),
            refreshed_at: None,
            version: 0,
            health: Health::Healthy,
            session: None,
            lifecycle: Default::default(),
            due_at: Some(expires.plus_secs(-300)),
        };
        let store = Arc::clone(&store);
        writes.spawn(async move { store.swap_token(None, record).await });
        // A few writes in flight at a time: enough to seed quickly, not a flood for moto.
        if writes.len() >= 16
            && let Some(done) = writes.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }

    let t = Instant::now();
    let scanned = store.list_tokens().await?;
    let scan_read = t.elapsed();
    let t = Instant::now();
    let due_now = store.due_tokens(now).await?;
    let index_read = t.elapsed();

    let counting = Arc::new(Counting {
        inner: Arc::clone(&store),
        counts: Arc::default(),
    });
    let counts = Arc::clone(&counting.counts);
    let app = App::new(Services::new(
        config,
        counting,
        Arc::new(secrets_for("netatmo", &settings)),
        Arc::new(clock.clone()),
    )?);
    let t = Instant::now();
    let summary = app.tick().await?;
    let tick = t.elapsed();
    let due = connections.div_ceil(10);
    if summary.tokens.refreshed != due || due_now.len() != due {
        bail!(
            "{name}: {} due by the index, {} refreshed; expected {due}",
            due_now.len(),
            summary.tokens.refreshed
        );
    }
    Ok(Tick {
        store: name,
        connections,
        due,
        tick,
        index_queries: Counts::get(&counts.index_queries),
        index_records: Counts::get(&counts.index_records),
        reads: Counts::get(&counts.reads),
        writes: Counts::get(&counts.writes),
        index_read,
        scan_read,
        scan_records: scanned.len(),
    })
}

#[async_trait]
impl ConfigStore for Counting {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.counts.reads.fetch_add(1, Relaxed);
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
