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
    let hash = homehook_core::guard::pin::PinHash::of("482193").unwrap();
    let wrong = || Some(homehook_core::sensitive::SecretString::new("0000"));
    for _ in 0..5 {
        let _ = homehook_core::guard::pin::check(&one, "disarm", &hash, wrong(), now).await;
    }
    let right = Some(homehook_core::sensitive::SecretString::new("482193"));
    assert!(matches!(
        homehook_core::guard::pin::check(&other, "disarm", &hash, right, now).await,
        Err(homehook_core::guard::pin::PinRefusal::Locked { .. })
    ));
}

/// Two instances (two `Live` apps, as two Lambda containers would hold) on one table: a config
/// that revokes a key, published once, is refused by both within `CHECK_EVERY_SECS` and some
/// reads, and well inside the 5 s the product promises. The figure is printed.
#[tokio::test]
async fn a_published_revocation_reaches_two_instances_on_one_table_within_seconds() {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use homehook_core::App;
    use homehook_core::clock::{Clock, SystemClock};
    use homehook_core::config::Config;
    use homehook_core::error::ErrorCode;
    use homehook_core::gate::{self, Knock};
    use homehook_core::keys::{ActionKey, KeyHash};
    use homehook_core::live::{CHECK_EVERY_SECS, Live};
    use homehook_core::publish::publish;
    use homehook_core::secrets::LocalSecrets;
    use homehook_core::services::Services;
    use homehook_core::store::Store;

    let moto = moto();
    let store: Arc<dyn Store> = Arc::new(store(&moto).await);
    let phone = ActionKey::generate();
    let text = |revoked: bool| {
        format!(
            "[connections.home]\nprovider = \"netatmo\"\n[actions.away]\nconnection = \"home\"\npath = \"/api/setthermmode\"\nkey_hash = \"{}\"\n[keys.phone]\nhash = \"{}\"\nactions = [\"away\"]\nrevoked = {revoked}\n",
            KeyHash::of("the action's own key"),
            KeyHash::of(phone.expose())
        )
    };
    let instance = || {
        let config = Config::parse(&text(false), "t.toml", None).expect("config");
        let secrets = Arc::new(LocalSecrets::from_entries(Default::default()));
        App::new(
            Services::new(config, Arc::clone(&store), secrets, Arc::new(SystemClock))
                .expect("services"),
        )
    };
    let opens = |live: &Arc<Live>| {
        let live = Arc::clone(live);
        let key = phone.expose().to_string();
        async move {
            let app = live.app().await;
            let knock = Knock {
                action: "away",
                key: Some(&key),
                method: &http::Method::POST,
                source: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            };
            // Polled fast, the key meets its rate limit: only the refusal of the key counts.
            !matches!(
                gate::admit_action(&app.services, &app.guard, knock),
                Err(p) if p.code == ErrorCode::Unauthorized
            )
        }
    };
    publish(&*store, &text(false), "t.toml", None, SystemClock.now())
        .await
        .expect("v1");
    let a = Live::following(instance(), Box::new(|c| c)).await;
    let b = Live::following(instance(), Box::new(|c| c)).await;
    assert!(opens(&a).await && opens(&b).await);

    publish(&*store, &text(true), "t.toml", Some(1), SystemClock.now())
        .await
        .expect("v2 revokes the phone's key");
    let published = Instant::now();
    let mut refused: [Option<Duration>; 2] = [None, None];
    while refused.iter().any(Option::is_none) && published.elapsed() < Duration::from_secs(10) {
        for (i, live) in [&a, &b].into_iter().enumerate() {
            if refused[i].is_none() && !opens(live).await {
                refused[i] = Some(published.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let [Some(first), Some(second)] = refused else {
        panic!("not refused within 10 s: {refused:?}");
    };
    println!(
        "revoked key refused after {:.2} s and {:.2} s on two instances (checks every {CHECK_EVERY_SECS} s)",
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    assert!(first.max(second) < Duration::from_secs(5), "{refused:?}");
    assert_eq!((a.version(), b.version()), (Some(2), Some(2)));
}
