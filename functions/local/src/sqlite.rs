//! The embedded store: one SQLite file (rusqlite), safe for several `homehook` processes on the
//! same file (WAL mode, busy timeout, versioned `UPDATE ... WHERE version = ?`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use homehook_core::clock::UnixTime;
use homehook_core::store::{
    ConfigStore, ItemStore, StoreError, StoredConfig, Taken, TokenStore, parse_count,
};
use homehook_core::token::TokenRecord;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "homehook.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    connection TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    expires_at INTEGER,
    record     TEXT NOT NULL,
    due_at     INTEGER
);
DROP INDEX IF EXISTS tokens_by_expiry;
CREATE TABLE IF NOT EXISTS items (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS config (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    text       TEXT NOT NULL,
    written_at INTEGER NOT NULL
);
";

/// A store in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    // rusqlite is blocking: every call runs on tokio's blocking pool, one at a time per process;
    // SQLite itself serialises writers across processes.
    conn: Arc<Mutex<Connection>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir`, creating the directory with owner-only
    /// permissions: the file holds tokens.
    pub fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| backend(format!("cannot create {}: {e}", data_dir.display())))?;
        restrict_to_owner(data_dir, 0o700)?;
        let path = data_dir.join(DB_FILE);
        let store = Self::open(&path)?;
        restrict_to_owner(&path, 0o600)?;
        Ok(store)
    }

    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        add_due_index(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| backend("sqlite connection lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| backend(format!("cannot set permissions of {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn restrict_to_owner(_: &Path, _: u32) -> Result<(), StoreError> {
    Ok(())
}

/// The index the tick reads (partial: records with nothing due are not in it). A file written
/// before it existed gets the column, and every record is marked due once, so the first tick
/// looks at each and files it under its real due time.
fn add_due_index(c: &Connection) -> Result<(), StoreError> {
    let has_column: bool = c
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('tokens') WHERE name = 'due_at'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(backend)?
        > 0;
    if !has_column {
        c.execute_batch(
            "ALTER TABLE tokens ADD COLUMN due_at INTEGER;
             UPDATE tokens SET due_at = 0;",
        )
        .map_err(backend)?;
    }
    c.execute_batch(
        "CREATE INDEX IF NOT EXISTS tokens_due ON tokens (due_at) WHERE due_at IS NOT NULL;",
    )
    .map_err(backend)
}

/// Removes items that expired more than a day before `now`, so the table never grows without
/// bound (an item expired for less than that still reads as expired rather than missing).
fn sweep_items(c: &Connection, now: i64) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM items WHERE expires_at < ?1",
        params![now.saturating_sub(86_400)],
    )
    .map_err(backend)?;
    Ok(())
}

fn select_records(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<TokenRecord>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (v, json) = row.map_err(backend)?;
        out.push(decode(v, &json)?);
    }
    Ok(out)
}

fn decode(version: i64, json: &str) -> Result<TokenRecord, StoreError> {
    let mut record: TokenRecord =
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    record.version = u64::try_from(version).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(record)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        let connection = connection.to_string();
        self.with(move |c| {
            let row: Option<(i64, String)> = c
                .query_row(
                    "SELECT version, record FROM tokens WHERE connection = ?1",
                    params![connection],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(v, json)| decode(v, &json)).transpose()
        })
        .await
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        let next = expected.unwrap_or(0) + 1;
        record.version = next;
        let json =
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let expires = record.expires_at.map(|t| t.0);
        let due = record.due_at.map(|t| t.0);
        let key = record.connection.clone();
        let (next_i, expected_i) = (next as i64, expected.map(|v| v as i64));
        let changed = self
            .with(move |c| {
                let n = match expected_i {
                    None => c.execute(
                        "INSERT INTO tokens (connection, version, expires_at, record, due_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (connection) DO NOTHING",
                        params![key, next_i, expires, json, due],
                    ),
                    Some(v) => c.execute(
                        "UPDATE tokens SET version = ?2, expires_at = ?3, record = ?4, due_at = ?5
                         WHERE connection = ?1 AND version = ?6",
                        params![key, next_i, expires, json, due, v],
                    ),
                };
                n.map_err(backend)
            })
            .await?;
        if changed == 1 {
            Ok(record)
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// A SQLite file is used by processes of this machine only.
    fn holders_on_this_machine(&self) -> bool {
        true
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with(|c| {
            select_records(
                c,
                "SELECT version, record FROM tokens ORDER BY connection",
                [],
            )
        })
        .await
    }

    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        self.with(move |c| {
            // Served by the partial index tokens_due (a range scan, not a table scan).
            select_records(
                c,
                "SELECT version, record FROM tokens
                 WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at",
                params![now.0],
            )
        })
        .await
    }
}

#[async_trait]
impl ItemStore for SqliteStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| {
            // No sweep here: without `now`, the expiry would have to stand for it, and an item
            // kept for months (a schedule's last run) would sweep away every live one. The
            // calls that know the time (take, insert, count) sweep.
            c.execute(
                "INSERT INTO items (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                params![key, value, expires_at.0],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            sweep_items(c, now.0)?;
            // DELETE ... RETURNING is one statement: of two processes, only one gets the row.
            let row: Option<(String, i64)> = c
                .query_row(
                    "DELETE FROM items WHERE key = ?1 RETURNING value, expires_at",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            Ok(match row {
                Some((value, expires_at)) if now.0 < expires_at => Taken::Value(value),
                Some(_) => Taken::Expired,
                None => Taken::Missing,
            })
        })
        .await
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with(move |c| {
            // An immediate transaction takes SQLite's write lock first: the row read after a
            // refused insert is the one that refused it, whichever process wrote it.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            sweep_items(&tx, now.0)?;
            let stored = tx
                .execute(
                    "INSERT INTO items (key, value, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE
                     SET value = excluded.value, expires_at = excluded.expires_at
                     WHERE items.expires_at <= ?4",
                    params![key, value, expires_at.0, now.0],
                )
                .map_err(backend)?;
            let existing = if stored == 1 {
                None
            } else {
                let value: String = tx
                    .query_row(
                        "SELECT value FROM items WHERE key = ?1",
                        params![key],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                Some(value)
            };
            tx.commit().map_err(backend)?;
            Ok(existing)
        })
        .await
    }

    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM items WHERE key = ?1 AND expires_at > ?2",
                params![key, now.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            // Read and write under SQLite's write lock, taken first: no other process can count
            // in between.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            sweep_items(&tx, now.0)?;
            let row: Option<(String, i64)> = tx
                .query_row(
                    "SELECT value, expires_at FROM items WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let (count, until) = match row {
                Some((value, until)) if now.0 < until => {
                    (parse_count(&key, &value)?.saturating_add(1), until)
                }
                _ => (1, expires_at.0),
            };
            tx.execute(
                "INSERT INTO items (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE
                 SET value = excluded.value, expires_at = excluded.expires_at",
                params![key, count.to_string(), until],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(count)
        })
        .await
    }
}

/// The one config row (`id` 1), replaced with a compare-and-swap on `version`.
#[async_trait]
impl ConfigStore for SqliteStore {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT version, text, written_at FROM config WHERE id = 1",
                [],
                |r| {
                    Ok(StoredConfig {
                        version: r.get::<_, i64>(0)? as u64,
                        text: r.get(1)?,
                        written_at: UnixTime(r.get(2)?),
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError> {
        let stored = StoredConfig {
            version: expected.unwrap_or(0) + 1,
            text: text.to_string(),
            written_at: now,
        };
        let row = stored.clone();
        let expected = expected.map(|v| v as i64);
        let changed = self
            .with(move |c| {
                let next = row.version as i64;
                let n = match expected {
                    None => c.execute(
                        "INSERT INTO config (id, version, text, written_at) VALUES (1, ?1, ?2, ?3)
                         ON CONFLICT (id) DO NOTHING",
                        params![next, row.text, row.written_at.0],
                    ),
                    Some(v) => c.execute(
                        "UPDATE config SET version = ?1, text = ?2, written_at = ?3
                         WHERE id = 1 AND version = ?4",
                        params![next, row.text, row.written_at.0, v],
                    ),
                };
                n.map_err(backend)
            })
            .await?;
        if changed == 1 {
            Ok(stored)
        } else {
            Err(StoreError::Conflict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_in(&dir.path().join("data")).expect("open");
        if let Err(e) = homehook_core::store::conformance::run(&store).await {
            panic!("{e}");
        }
    }

    #[tokio::test]
    async fn a_file_from_before_the_due_index_has_every_record_looked_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        {
            // The schema homehook 0.1 wrote, with one record in it.
            let old = Connection::open(&path).expect("open");
            old.execute_batch(
                "CREATE TABLE tokens (connection TEXT PRIMARY KEY, version INTEGER NOT NULL,
                                      expires_at INTEGER, record TEXT NOT NULL);
                 CREATE INDEX tokens_by_expiry ON tokens (expires_at);",
            )
            .expect("old schema");
            let json = serde_json::to_string(&homehook_core::store::conformance::plain_record())
                .expect("json");
            old.execute(
                "INSERT INTO tokens VALUES ('c1', 3, NULL, ?1)",
                params![json],
            )
            .expect("old record");
        }
        let store = SqliteStore::open(&path).expect("migrates");
        let due = store.due_tokens(UnixTime(0)).await.expect("due");
        assert_eq!(due.len(), 1, "the old record is due at once");
        assert_eq!(due[0].version, 3);
        // Opening again does not mark it due again once it has been filed.
        let mut filed = due[0].clone();
        filed.due_at = None;
        store.swap_token(Some(3), filed).await.expect("refile");
        drop(store);
        let again = SqliteStore::open(&path).expect("reopen");
        assert!(
            again
                .due_tokens(UnixTime(i64::MAX))
                .await
                .expect("due")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn two_handles_on_one_file_see_each_others_writes_and_conflicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SqliteStore::open_in(dir.path()).expect("open a");
        let b = SqliteStore::open_in(dir.path()).expect("open b");
        let mut rec = homehook_core::store::conformance::plain_record();
        a.swap_token(None, rec.clone()).await.expect("create");
        rec.access_token = homehook_core::sensitive::SecretString::new("from-b");
        b.swap_token(Some(1), rec.clone()).await.expect("b updates");
        assert!(matches!(
            a.swap_token(Some(1), rec).await,
            Err(StoreError::Conflict)
        ));
        let seen = a.get_token("c1").await.expect("read").expect("exists");
        assert_eq!(seen.access_token.expose(), "from-b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_insert_once_and_count_each_call_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SqliteStore::open_in(dir.path()).expect("open a");
        let b = SqliteStore::open_in(dir.path()).expect("open b");
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let inserted = store
                    .insert_item("k", &format!("v{i}"), UnixTime(100), UnixTime(10))
                    .await
                    .expect("insert");
                let count = store
                    .count_item("n", UnixTime(100), UnixTime(10))
                    .await
                    .expect("count");
                (inserted, count)
            }));
        }
        let mut stored = 0;
        let mut counts = Vec::new();
        for task in tasks {
            let (inserted, count) = task.await.expect("task");
            stored += usize::from(inserted.is_none());
            counts.push(count);
        }
        counts.sort_unstable();
        assert_eq!(stored, 1, "exactly one insert stores the item");
        assert_eq!(counts, (1..=20).collect::<Vec<u64>>());
    }

    #[cfg(unix)]
    #[test]
    fn data_dir_and_file_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("d");
        SqliteStore::open_in(&data).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    }
}
