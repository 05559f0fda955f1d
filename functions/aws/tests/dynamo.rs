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

#[tokio::test]
async fn idempotency_records_and_pin_lockouts_live_in_dynamodb_for_every_instance() {
    use homehook_core::guard::idempotency::{self, Claimed, KeptResponse};
    use std::collections::BTreeMap;

    let moto = moto();
    let one = store(&moto).await;
    // A second instance: its own client, same table.
    let other = DynamoStore::new(local::dynamodb(&moto.endpoint), "homehook-test");
    let now = UnixTime(1_700_000_000);
    let fp = idempotency::fingerprint("POST", &BTreeMap::new());
    let Claimed::New(claim) = idempotency::claim(&one, "phone", "arm", "k-1", fp.clone(), now)
        .await
        .unwrap()
    else {
        panic!("the first claim is new");
    };
    // While the first instance runs the action, a repeat on the other is told to wait.
    assert!(matches!(
        idempotency::claim(&other, "phone", "arm", "k-1", fp.clone(), now)
            .await
            .unwrap(),
        Claimed::InProgress
    ));
    let answer = KeptResponse {
        status: 200,
        content_type: "text/plain; charset=utf-8".into(),
        body: "Alarm armed".into(),
    };
    idempotency::finish(&one, claim, answer.clone(), now)
        .await
        .unwrap();
    match idempotency::claim(&other, "phone", "arm", "k-1", fp.clone(), now.plus_secs(60))
        .await
        .unwrap()
    {
        Claimed::Replay(kept) => assert_eq!(kept, answer),
        other => panic!("{other:?}"),
    }
    // The record carries DynamoDB's TTL attribute: a day later it is gone for homehook too.
    assert!(matches!(
        idempotency::claim(&other, "phone", "arm", "k-1", fp, now.plus_secs(24 * 3600))
            .await
            .unwrap(),
        Claimed::New(_)
    ));

    // Wrong PINs counted on one instance lock the action on the other.
    let hash = homehook_core::guard::pin::PinHash::of("4821").unwrap();
    let wrong = || Some(homehook_core::sensitive::SecretString::new("0000"));
    for _ in 0..5 {
        let _ = homehook_core::guard::pin::check(&one, "disarm", &hash, wrong(), now).await;
    }
    let right = Some(homehook_core::sensitive::SecretString::new("4821"));
    assert!(matches!(
        homehook_core::guard::pin::check(&other, "disarm", &hash, right, now).await,
        Err(homehook_core::guard::pin::PinRefusal::Locked { .. })
    ));
}
