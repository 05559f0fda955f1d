//! Behaviour every [`Store`] implementation must have, written once and run against each
//! backend by its tests (memory and SQLite here, DynamoDB in the AWS adapter).

use std::pin::Pin;
use std::task::Poll;

use super::{Store, StoreError, Taken};
use crate::clock::UnixTime;
use crate::sensitive::SecretString;
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
        due_at: None,
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

/// Runs every check; the error names the first one that failed.
pub async fn run(store: &dyn Store) -> Result<(), String> {
    tokens_compare_and_swap(store).await?;
    due_tokens_follow_the_index(store).await?;
    items_are_taken_once(store).await?;
    items_are_inserted_once(store).await?;
    items_are_read_without_being_taken(store).await?;
    long_lived_items_leave_others_alone(store).await?;
    counters_count_and_restart(store).await?;
    concurrent_inserts_store_once(store).await?;
    concurrent_counts_are_distinct(store).await?;
    config_is_swapped_whole(store).await?;
    concurrent_config_writes_one_wins(store).await
}

/// The config document: none at first, versions counted from 1, a write against a stale
/// version refused without a trace, the text kept exactly (a large document included).
async fn config_is_swapped_whole(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    let now = UnixTime(2_000_000);
    check(
        store.get_config().await.map_err(e)?.is_none(),
        "a new store has no config",
    )?;
    check(
        matches!(
            store.swap_config(Some(1), "x = 1\n", now).await,
            Err(StoreError::Conflict)
        ),
        "a config write expecting a version that is not there conflicts",
    )?;
    let first = store.swap_config(None, "x = 1\n", now).await.map_err(e)?;
    check(first.version == 1, "the first config is version 1")?;
    check(
        matches!(
            store.swap_config(None, "x = 2\n", now).await,
            Err(StoreError::Conflict)
        ),
        "a second first write conflicts",
    )?;
    // Quotes, newlines, non-ASCII and 64 KiB: what a real homehook.toml may hold and more.
    let big = format!(
        "label = \"Maison d'été \\\"A\\\"\"\n# {}\n",
        "x".repeat(64 * 1024)
    );
    let later = now.plus_secs(60);
    let second = store.swap_config(Some(1), &big, later).await.map_err(e)?;
    check(
        second.version == 2 && second.written_at == later,
        "the next write is version 2",
    )?;
    check(
        matches!(
            store.swap_config(Some(1), "x = 3\n", later).await,
            Err(StoreError::Conflict)
        ),
        "a write from a stale version conflicts",
    )?;
    let read = store.get_config().await.map_err(e)?;
    check(
        read == Some(second),
        "the stored config is the last one written, text exactly as given",
    )
}

/// Two writers from the same version: exactly one wins, and the store holds its text.
async fn concurrent_config_writes_one_wins(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    let now = UnixTime(2_100_000);
    let seen = store.get_config().await.map_err(e)?.map(|c| c.version);
    let (a, b) = tokio::join!(
        store.swap_config(seen, "writer = \"a\"\n", now),
        store.swap_config(seen, "writer = \"b\"\n", now)
    );
    let won: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    check(won.len() == 1, "of two concurrent config writes, one wins")?;
    let read = store.get_config().await.map_err(e)?;
    check(
        read.as_ref() == won.first(),
        "the stored config is the winner's",
    )
}

/// An item kept for months (a schedule's last run) beside short-lived ones: storing it must
/// not sweep away the others while they live.
async fn long_lived_items_leave_others_alone(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    let now = UnixTime(1_000_000);
    store
        .insert_item("long:claim", "c", now.plus_secs(3_600), now)
        .await
        .map_err(e)?;
    store
        .put_item("long:kept", "k", now.plus_secs(400 * 86_400))
        .await
        .map_err(e)?;
    check(
        store.get_item("long:claim", now).await.map_err(e)? == Some("c".into()),
        "a long-lived item does not sweep away a live one",
    )?;
    check(
        store
            .insert_item("long:claim", "again", now.plus_secs(3_600), now)
            .await
            .map_err(e)?
            == Some("c".into()),
        "the live claim still refuses a second insert",
    )?;
    check(
        store
            .get_item("long:kept", now.plus_secs(300 * 86_400))
            .await
            .map_err(e)?
            == Some("k".into()),
        "a long-lived item lives its whole life",
    )
}

/// Awaits every future together (so a networked store sees the calls at the same time) and
/// returns their outputs in order.
async fn join_all<F: Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match Pin::new(future).poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
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

/// The tick's read: only records due by `now`, earliest first; a record filed under no time,
/// or refiled later, drops out.
async fn due_tokens_follow_the_index(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    let due = |connection: &str, at: Option<i64>| {
        let mut r = record(connection, "x");
        r.due_at = at.map(UnixTime);
        r
    };
    let names = |records: Vec<TokenRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.connection).collect()
    };
    store
        .swap_token(None, due("due-late", Some(9_200)))
        .await
        .map_err(e)?;
    store
        .swap_token(None, due("due-early", Some(9_100)))
        .await
        .map_err(e)?;
    let never = store
        .swap_token(None, due("due-never", None))
        .await
        .map_err(e)?;
    store
        .swap_token(None, due("due-later", Some(9_900)))
        .await
        .map_err(e)?;

    check(
        names(store.due_tokens(UnixTime(9_099)).await.map_err(e)?).is_empty(),
        "nothing is due before the earliest due time",
    )?;
    let at_late = store.due_tokens(UnixTime(9_200)).await.map_err(e)?;
    check(
        names(at_late.clone()) == ["due-early", "due-late"],
        "due records up to and including now, earliest first",
    )?;
    check(
        at_late[0].due_at == Some(UnixTime(9_100)) && at_late[0].version == 1,
        "a due record comes back whole, with its version",
    )?;
    // Refiled: a renewal moves a record to its next due time; one with nothing due leaves.
    let early = at_late[0].clone();
    store
        .swap_token(Some(early.version), due("due-early", Some(99_000)))
        .await
        .map_err(e)?;
    store
        .swap_token(Some(never.version), due("due-never", Some(9_000)))
        .await
        .map_err(e)?;
    let late = at_late[1].clone();
    store
        .swap_token(Some(late.version), due("due-late", None))
        .await
        .map_err(e)?;
    check(
        names(store.due_tokens(UnixTime(10_000)).await.map_err(e)?) == ["due-never", "due-later"],
        "a rewrite refiles the record (moved later, filed for the first time, taken out)",
    )
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

async fn items_are_inserted_once(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    check(
        store
            .insert_item("insert:a", "pending", UnixTime(100), UnixTime(10))
            .await
            .map_err(e)?
            .is_none(),
        "the first insert stores the item",
    )?;
    check(
        store
            .insert_item("insert:a", "second", UnixTime(200), UnixTime(20))
            .await
            .map_err(e)?
            == Some("pending".into()),
        "a second insert returns the live item's value",
    )?;
    check(
        store.get_item("insert:a", UnixTime(20)).await.map_err(e)? == Some("pending".into()),
        "a refused insert leaves the item as it was",
    )?;
    check(
        store
            .get_item("insert:a", UnixTime(150))
            .await
            .map_err(e)?
            .is_none(),
        "a refused insert leaves the item's expiry as it was",
    )?;

    // An idempotency record: inserted as pending, then completed in place.
    store
        .put_item("insert:a", "done", UnixTime(100))
        .await
        .map_err(e)?;
    check(
        store
            .insert_item("insert:a", "again", UnixTime(100), UnixTime(30))
            .await
            .map_err(e)?
            == Some("done".into()),
        "an insert returns the value a put wrote",
    )?;

    store
        .put_item("insert:b", "old", UnixTime(100))
        .await
        .map_err(e)?;
    check(
        store
            .insert_item("insert:b", "new", UnixTime(300), UnixTime(100))
            .await
            .map_err(e)?
            .is_none(),
        "an item at its expiry is replaced by an insert",
    )?;
    check(
        store.get_item("insert:b", UnixTime(200)).await.map_err(e)? == Some("new".into()),
        "the replacing insert's value and expiry are stored",
    )?;
    check(
        store
            .take_item("insert:b", UnixTime(200))
            .await
            .map_err(e)?
            == Taken::Value("new".into()),
        "an inserted item can be taken",
    )
}

async fn items_are_read_without_being_taken(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    store
        .put_item("get:a", "kept", UnixTime(100))
        .await
        .map_err(e)?;
    check(
        store.get_item("get:a", UnixTime(50)).await.map_err(e)? == Some("kept".into()),
        "a live item is read",
    )?;
    check(
        store.get_item("get:a", UnixTime(99)).await.map_err(e)? == Some("kept".into()),
        "reading an item does not remove it",
    )?;
    check(
        store
            .get_item("get:a", UnixTime(100))
            .await
            .map_err(e)?
            .is_none(),
        "an item at its expiry is not read",
    )?;
    check(
        store
            .get_item("get:missing", UnixTime(0))
            .await
            .map_err(e)?
            .is_none(),
        "an unknown item is not read",
    )
}

async fn counters_count_and_restart(store: &dyn Store) -> Result<(), String> {
    let e = |e: StoreError| e.to_string();
    let mut counts = Vec::new();
    for now in [10, 20, 30] {
        // Later calls name a later expiry: a live counter keeps the first one.
        counts.push(
            store
                .count_item("count:a", UnixTime(100 + now), UnixTime(now))
                .await
                .map_err(e)?,
        );
    }
    check(counts == [1, 2, 3], "a counter counts 1, 2, 3")?;
    check(
        store.get_item("count:a", UnixTime(40)).await.map_err(e)? == Some("3".into()),
        "a counter reads as its count in decimal",
    )?;
    check(
        store
            .get_item("count:a", UnixTime(110))
            .await
            .map_err(e)?
            .is_none(),
        "a live counter keeps the expiry it started with",
    )?;
    check(
        store
            .count_item("count:a", UnixTime(500), UnixTime(110))
            .await
            .map_err(e)?
            == 1,
        "an expired counter restarts at 1",
    )?;
    check(
        store
            .count_item("count:a", UnixTime(900), UnixTime(400))
            .await
            .map_err(e)?
            == 2,
        "a restarted counter counts on",
    )?;
    check(
        store.get_item("count:a", UnixTime(499)).await.map_err(e)? == Some("2".into())
            && store
                .get_item("count:a", UnixTime(500))
                .await
                .map_err(e)?
                .is_none(),
        "a restarted counter expires at its new expiry",
    )?;
    check(
        store
            .insert_item("count:a", "x", UnixTime(900), UnixTime(450))
            .await
            .map_err(e)?
            == Some("2".into()),
        "an insert over a live counter returns its count",
    )
}

async fn concurrent_inserts_store_once(store: &dyn Store) -> Result<(), String> {
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    let results = join_all(
        values
            .iter()
            .map(|v| store.insert_item("race:insert", v, UnixTime(100), UnixTime(10)))
            .collect(),
    )
    .await;
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for (value, result) in values.iter().zip(results) {
        match result.map_err(|e| e.to_string())? {
            None => winners.push(value.clone()),
            Some(existing) => seen.push(existing),
        }
    }
    check(
        winners.len() == 1,
        &format!(
            "of 20 concurrent inserts exactly one stores (stored: {})",
            winners.len()
        ),
    )?;
    check(
        seen.iter().all(|s| Some(s) == winners.first()),
        "every refused concurrent insert returns the stored value",
    )?;
    check(
        store
            .get_item("race:insert", UnixTime(10))
            .await
            .map_err(|e| e.to_string())?
            .as_ref()
            == winners.first(),
        "the stored value is the one whose insert succeeded",
    )
}

async fn concurrent_counts_are_distinct(store: &dyn Store) -> Result<(), String> {
    let results = join_all(
        (0..20)
            .map(|_| store.count_item("race:count", UnixTime(100), UnixTime(10)))
            .collect(),
    )
    .await;
    let mut counts = results
        .into_iter()
        .collect::<Result<Vec<u64>, StoreError>>()
        .map_err(|e| e.to_string())?;
    counts.sort_unstable();
    check(
        counts == (1..=20).collect::<Vec<u64>>(),
        &format!("20 concurrent counts return 1..=20, each once (got {counts:?})"),
    )?;
    check(
        store
            .get_item("race:count", UnixTime(10))
            .await
            .map_err(|e| e.to_string())?
            == Some("20".into()),
        "20 concurrent counts leave the counter at 20",
    )
}

/// A plain record of connection `c1` (no refresh token, no expiry), for store tests to write.
pub fn plain_record() -> TokenRecord {
    TokenRecord {
        refresh_token: None,
        expires_at: None,
        scopes: vec![],
        connected_at: UnixTime(0),
        ..record("c1", "a")
    }
}
