//! The store ports on DynamoDB, in one table.
//!
//! | item                     | `pk`                  | other attributes                                      |
//! |--------------------------|-----------------------|-------------------------------------------------------|
//! | a connection's tokens    | `token#<connection>`  | `version` (N), `record` (S, the record as JSON), `expires_at` (N, access-token expiry), `due_shard` (S, `due`) and `due_at` (N) when something will come due |
//! | a short-lived item       | `item#<key>`          | `value` (S), `ttl` (N, Unix seconds: the table's TTL attribute) |
//! | a counter                | `item#<key>`          | `count` (N), `ttl` (N)                                 |
//! | the config document      | `config`              | `version` (N), `document` (S, the TOML text), `written_at` (N) |
//!
//! - Token writes are conditional on `version` (a compare-and-swap): `attribute_not_exists(pk)`
//!   for a first write, `version = :seen` after; a failed condition is
//!   [`StoreError::Conflict`].
//! - Token reads are strongly consistent: a refresh must see the last rotated refresh token.
//! - The tick reads the global secondary index `due` (partition `due_shard`, sort `due_at`,
//!   every attribute projected) with one `Query` for `due_at <= now`: it reads the due records
//!   only. The index is sparse — a record with nothing due has neither attribute — and one
//!   partition holds it all, which is plenty for the writes of token renewals (a few per
//!   connection and hour). Index reads are eventually consistent; the renewal's
//!   compare-and-swap on `version` makes a stale entry harmless.
//! - Items are taken with one `DeleteItem` returning the old item, so of two takers only one
//!   gets it; DynamoDB deletes expired items late (up to days), so an item read past its `ttl`
//!   counts as expired whether or not DynamoDB has deleted it yet.
//! - An item is inserted with a `PutItem` conditional on
//!   `attribute_not_exists(pk) OR #ttl <= :now`; when that fails, a strongly consistent read
//!   returns the live item's value (and if it has gone or expired meanwhile, the insert is tried
//!   again, a few times at most).
//! - A counter is counted with an `UpdateItem` `ADD #count :one` conditional on
//!   `attribute_exists(#count) AND #ttl > :now` (a live counter keeps its `ttl`); when that
//!   fails, a `PutItem` of `count` 1 conditional on `attribute_not_exists(pk) OR #ttl <= :now`
//!   restarts it; a race lost on both goes round again, a few times at most. Of n concurrent
//!   counts, DynamoDB applies each conditional write to the item one at a time: they return
//!   1..=n. A counter reads (`get_item`, `take_item`, a refused insert) as its count in decimal.
//! - Items are read with `ConsistentRead`, their `ttl` deciding whether they are live.
//! - The config document is written like a token record: conditional on `version`, read
//!   strongly consistently. DynamoDB's 400 KB item limit is far above any homehook.toml.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
};
use homehook_core::clock::UnixTime;
use homehook_core::store::{ConfigStore, ItemStore, StoreError, StoredConfig, Taken, TokenStore};
use homehook_core::token::TokenRecord;

type Item = HashMap<String, AttributeValue>;

/// homehook's table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn backend<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    StoreError::Backend(DisplayErrorContext(e).to_string())
}

fn token_key(connection: &str) -> AttributeValue {
    AttributeValue::S(format!("token#{connection}"))
}

/// The key of the one config document.
const CONFIG_KEY: &str = "config";

fn item_key(key: &str) -> AttributeValue {
    AttributeValue::S(format!("item#{key}"))
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// The value of an item: its `value`, or a counter's `count` in decimal.
fn item_value(item: &Item) -> Option<String> {
    match item.get("count") {
        Some(AttributeValue::N(n)) => Some(n.clone()),
        _ => text(item, "value").map(str::to_string),
    }
}

/// Whether an item is live at `now` (DynamoDB deletes expired items late: the `ttl` decides).
fn live(item: &Item, now: UnixTime) -> bool {
    number(item, "ttl").is_some_and(|ttl| now.0 < ttl)
}

/// The tick's index, its partition attribute and that attribute's one value.
pub const DUE_INDEX: &str = "due";
const DUE_SHARD: &str = "due_shard";
const DUE_SHARD_VALUE: &str = "due";

/// How many times an insert or a count goes round when other writers keep changing the item.
const ATTEMPTS: usize = 8;

fn decode(item: &Item) -> Result<TokenRecord, StoreError> {
    let json = text(item, "record").ok_or_else(|| StoreError::Corrupt("no record".into()))?;
    let mut record: TokenRecord =
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    record.version = number(item, "version")
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt("no version".into()))?;
    Ok(record)
}

impl DynamoStore {
    /// The store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// An item, read strongly consistently (expired or not).
    async fn read_item(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", item_key(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item.filter(|item| !item.is_empty()))
    }

    /// Creates the table as template.yaml declares it (for local emulators and tests).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.create_table_without_ttl().await?;
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend(e.to_string());
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Creates the table without turning TTL on (dynalite has no TTL API; homehook never relies
    /// on TTL deletion anyway).
    pub async fn create_table_without_ttl(&self) -> Result<(), StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend(e.to_string());
        self.client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute(DUE_SHARD, ScalarAttributeType::S)?)
            .attribute_definitions(attribute("due_at", ScalarAttributeType::N)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(DUE_INDEX)
                    .key_schema(key(DUE_SHARD, KeyType::Hash)?)
                    .key_schema(key("due_at", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl ConfigStore for DynamoStore {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(CONFIG_KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let Some(item) = out.item.filter(|item| !item.is_empty()) else {
            return Ok(None);
        };
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("the config document has no {what}"));
        Ok(Some(StoredConfig {
            version: number(&item, "version")
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| corrupt("version"))?,
            text: text(&item, "document")
                .ok_or_else(|| corrupt("text"))?
                .to_string(),
            written_at: UnixTime(number(&item, "written_at").ok_or_else(|| corrupt("time"))?),
        }))
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        document: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError> {
        let stored = StoredConfig {
            version: expected.map_or(1, |v| v + 1),
            text: document.to_string(),
            written_at: now,
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(CONFIG_KEY.into()))
            .item("version", AttributeValue::N(stored.version.to_string()))
            .item("document", AttributeValue::S(stored.text.clone()))
            .item("written_at", AttributeValue::N(now.0.to_string()));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(v.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(stored),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(backend(e)),
        }
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", token_key(connection))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item().map(decode).transpose()
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        let next = expected.map_or(1, |v| v + 1);
        record.version = next;
        let json =
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", token_key(&record.connection))
            .item("version", AttributeValue::N(next.to_string()))
            .item("record", AttributeValue::S(json));
        if let Some(at) = record.expires_at {
            put = put.item("expires_at", AttributeValue::N(at.0.to_string()));
        }
        if let Some(at) = record.due_at {
            put = put
                .item(DUE_SHARD, AttributeValue::S(DUE_SHARD_VALUE.into()))
                .item("due_at", AttributeValue::N(at.0.to_string()));
        }
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(v.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(record),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        records_of_pages(|start| async move {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :tokens)")
                .expression_attribute_values(":tokens", AttributeValue::S("token#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
        })
        .await
    }

    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        records_of_pages(|start| async move {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#shard = :shard AND due_at <= :now")
                .expression_attribute_names("#shard", DUE_SHARD)
                .expression_attribute_values(":shard", AttributeValue::S(DUE_SHARD_VALUE.into()))
                .expression_attribute_values(":now", AttributeValue::N(now.0.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
        })
        .await
    }
}

/// The token records of every page of a scan or query: `page(start)` reads one page from
/// `start` and gives its items and the key to go on from.
async fn records_of_pages<F, Fut>(mut page: F) -> Result<Vec<TokenRecord>, StoreError>
where
    F: FnMut(Option<Item>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<Item>), StoreError>>,
{
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let (items, next) = page(start.take()).await?;
        for item in &items {
            out.push(decode(item)?);
        }
        match next {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

#[async_trait]
impl ItemStore for DynamoStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", item_key(key))
            .item("value", AttributeValue::S(value.to_string()))
            .item("ttl", AttributeValue::N(expires_at.0.to_string()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", item_key(key))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(backend)?;
        let Some(old) = out.attributes().filter(|a| !a.is_empty()) else {
            return Ok(Taken::Missing);
        };
        // DynamoDB deletes expired items late: the ttl decides, not the item's presence.
        if number(old, "ttl").is_none_or(|ttl| now.0 >= ttl) {
            return Ok(Taken::Expired);
        }
        Ok(item_value(old).map(Taken::Value).unwrap_or(Taken::Missing))
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        for _ in 0..ATTEMPTS {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", item_key(key))
                .item("value", AttributeValue::S(value.to_string()))
                .item("ttl", AttributeValue::N(expires_at.0.to_string()))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", AttributeValue::N(now.0.to_string()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(None),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(backend(e)),
            }
            // A live item refused the insert; unless it has been taken or has expired since,
            // its value is the answer.
            if let Some(existing) = self.read_item(key).await?
                && live(&existing, now)
            {
                return item_value(&existing)
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt(format!("item {key} has no value")));
            }
        }
        Err(StoreError::Backend(format!(
            "item {key} kept changing: not inserted after {ATTEMPTS} attempts"
        )))
    }

    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        Ok(self
            .read_item(key)
            .await?
            .filter(|item| live(item, now))
            .as_ref()
            .and_then(item_value))
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let count = |item: &Item| {
            number(item, "count")
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| StoreError::Corrupt(format!("counter {key} has no count")))
        };
        for _ in 0..ATTEMPTS {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", item_key(key))
                .update_expression("ADD #count :one")
                .condition_expression("attribute_exists(#count) AND #ttl > :now")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":now", AttributeValue::N(now.0.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match update {
                Ok(out) => return count(&out.attributes.unwrap_or_default()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(backend(e)),
            }
            // No live counter: start one, unless another writer just did.
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", item_key(key))
                .item("count", AttributeValue::N("1".into()))
                .item("ttl", AttributeValue::N(expires_at.0.to_string()))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", AttributeValue::N(now.0.to_string()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(1),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(backend(e)),
            }
            // Both refused: a counter started meanwhile (count it next time round), or a live
            // item that is not a counter holds the key.
            if let Some(existing) = self.read_item(key).await?
                && live(&existing, now)
                && !existing.contains_key("count")
            {
                return Err(StoreError::Corrupt(format!("item {key} is not a counter")));
            }
        }
        Err(StoreError::Backend(format!(
            "counter {key} kept changing: not counted after {ATTEMPTS} attempts"
        )))
    }
}
