//! Behaviour every [`Store`] implementation must have, written once and run against each
//! backend by its tests (memory and SQLite here, DynamoDB in the AWS adapter).

use super::{Store, StoreError, Taken};
use crate::clock::UnixTime;
use crate::secret::SecretString;
use crate::token::{Health, TokenRecord};

fn record(connection: &str, access: &str) -> TokenRecord {
    TokenRecord {
        connection: connection.into(),
        access_token: SecretString::new(access),
        refresh_token: Some(SecretString::new(format!("rt-{access}"))),
        expires_at: Some(UnixTime(1_000)),
        scopes: vec!["read".into()],
        connected_at: UnixTime(10),
        refreshed_at: None,
        version: 0,
        health: Health::Healthy,
        session: None,
        lifecycle: Default::default(),
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

/// Runs every check; the error names the first one that failed.
pub async fn run(store: &dyn Store) -> Result<(), String> {
    tokens_compare_and_swap(store).await?;
    items_are_taken_once(store).await
}

async fn tokens_compare_and_swap(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    check(
        store.get_token("c1").await.map_err(e)?.is_none(),
        "empty store has no record",
    )?;

    let v1 = store
        .swap_token(None, record("c1", "a1"))
        .await
        .map_err(e)?;
    check(v1.version == 1, "first write gets version 1")?;
    check(
        matches!(
            store.swap_token(None, record("c1", "x")).await,
            Err(StoreError::Conflict)
        ),
        "create over an existing record is a conflict",
    )?;

    let v2 = store
        .swap_token(Some(1), record("c1", "a2"))
        .await
        .map_err(e)?;
    check(v2.version == 2, "second write gets version 2")?;
    check(
        matches!(
            store.swap_token(Some(1), record("c1", "stale")).await,
            Err(StoreError::Conflict)
        ),
        "a write with a stale version is a conflict",
    )?;
    check(
        matches!(
            store.swap_token(Some(7), record("nobody", "x")).await,
            Err(StoreError::Conflict)
        ),
        "an update of a missing record is a conflict",
    )?;

    let read = store
        .get_token("c1")
        .await
        .map_err(e)?
        .ok_or("record vanished")?;
    check(read.access_token.expose() == "a2", "the newest write wins")?;

    check(read.version == 2, "read returns the version")?;
    check(
        read.refresh_token.as_ref().map(SecretString::expose) == Some("rt-a2"),
        "refresh token round-trips",
    )?;

    // The renewal bookkeeping (a lease, budget calls, the notified problem) travels with the
    // tokens: every process must see another's lease.
    let mut leased = read.clone();
    leased.lifecycle = crate::token::Lifecycle {
        lease: Some(crate::token::Lease {
            holder: "proc-a".into(),
            until: UnixTime(2_000),
        }),
        refresh_issued_at: Some(UnixTime(5)),
        token_calls: vec![UnixTime(1_500)],
        failures: 2,
        notified: Some("failing".into()),
    };
    let written = store
        .swap_token(Some(read.version), leased.clone())
        .await
        .map_err(e)?;
    let back = store
        .get_token("c1")
        .await
        .map_err(e)?
        .ok_or("record vanished")?;
    check(
        back.lifecycle == leased.lifecycle && back.version == written.version,
        "the lifecycle (lease, calls, failures, notified) is stored with the tokens",
    )?;

    store
        .swap_token(None, record("c2", "b1"))
        .await
        .map_err(e)?;
    let mut all: Vec<_> = store
        .list_tokens()
        .await
        .map_err(e)?
        .into_iter()
        .map(|r| r.connection)
        .collect();
    all.sort();
    check(all == ["c1", "c2"], "list returns every record")
}

async fn items_are_taken_once(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    store
        .put_item("state:a", "payload", UnixTime(100))
        .await
        .map_err(e)?;
    check(
        store.take_item("state:a", UnixTime(50)).await.map_err(e)?
            == Taken::Value("payload".into()),
        "a live item is returned",
    )?;
    check(
        store.take_item("state:a", UnixTime(50)).await.map_err(e)? == Taken::Missing,
        "an item is taken only once",
    )?;
    store
        .put_item("state:b", "old", UnixTime(100))
        .await
        .map_err(e)?;
    check(
        store.take_item("state:b", UnixTime(100)).await.map_err(e)? == Taken::Expired,
        "an item at its expiry is expired",
    )?;
    check(
        store.take_item("state:b", UnixTime(50)).await.map_err(e)? == Taken::Missing,
        "an expired item is gone once seen",
    )?;
    check(
        store.take_item("never", UnixTime(0)).await.map_err(e)? == Taken::Missing,
        "unknown items are missing",
    )
}
