//! The store ports on DynamoDB, in one table.
//!
//! | item                     | `pk`                  | other attributes                                      |
//! |--------------------------|-----------------------|-------------------------------------------------------|
//! | a connection's tokens    | `token#<connection>`  | `version` (N), `record` (S, the record as JSON), `expires_at` (N, access-token expiry) |
//! | a short-lived item       | `item#<key>`          | `value` (S), `ttl` (N, Unix seconds: the table's TTL attribute) |
//!
//! - Token writes are conditional on `version` (a compare-and-swap): `attribute_not_exists(pk)`
//!   for a first write, `version = :seen` after; a failed condition is
//!   [`StoreError::Conflict`].
//! - Token reads are strongly consistent: a refresh must see the last rotated refresh token.
//! - Items are taken with one `DeleteItem` returning the old item, so of two takers only one
//!   gets it; DynamoDB deletes expired items late (up to days), so an item read past its `ttl`
//!   counts as expired whether or not DynamoDB has deleted it yet.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TimeToLiveSpecification,
};
use homehook_core::clock::UnixTime;
use homehook_core::store::{ItemStore, StoreError, Taken, TokenStore};
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
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
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
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :tokens)")
                .expression_attribute_values(":tokens", AttributeValue::S("token#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in page.items() {
                out.push(decode(item)?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(out),
            }
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
        Ok(text(old, "value")
            .map(|v| Taken::Value(v.to_string()))
            .unwrap_or(Taken::Missing))
    }
}
