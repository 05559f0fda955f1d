//! The DynamoDB store against a real DynamoDB-compatible server (moto, started per test on
//! 127.0.0.1 by this file; `infra/test` installs it and names it in `HOMEHOOK_MOTO_SERVER`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod moto;

use homehook_aws::{DynamoStore, local};
use homehook_core::clock::UnixTime;
use homehook_core::store::{ItemStore, Taken, conformance};
use moto::{Moto, moto};

async fn store(moto: &Moto) -> DynamoStore {
    let store = DynamoStore::new(local::dynamodb(&moto.endpoint), "homehook-test");
    store.create_table().await.expect("create table");
    store
}

#[tokio::test]
async fn the_dynamodb_store_conforms() {
    let moto = moto();
    let store = store(&moto).await;
    conformance::run(&store).await.expect("conformance");
}

#[tokio::test]
async fn an_expired_state_that_dynamodb_has_not_deleted_yet_is_refused() {
    let moto = moto();
    let store = store(&moto).await;
    store.put_item("state-1", "v", UnixTime(100)).await.unwrap();
    // Moto, like DynamoDB, has not deleted it: the read must still say expired.
    assert_eq!(
        store.take_item("state-1", UnixTime(150)).await.unwrap(),
        Taken::Expired
    );
    assert_eq!(
        store.take_item("state-1", UnixTime(50)).await.unwrap(),
        Taken::Missing
    );
}
