//! Four independent homehook instances (own DynamoDB client, own token keeper, own HTTP
//! server) share one DynamoDB-compatible table, as Lambda instances do. 200 concurrent actions
//! each on an expired token must make exactly one token call: the lease in the record decides
//! who renews, the others wait for its tokens. With 10-second tokens, two instances renew once
//! per lifetime.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod moto;

use std::sync::Arc;

use homehook_aws::{DynamoStore, local};
use homehook_core::clock::ManualClock;
use homehook_core::store::Store;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{Homehook, T0, World, secrets_for, write_report};

fn config(vendor: &str) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"
# These suites measure token calls under a thousand concurrent actions; the API budget
# (50 per 10 s) and the action's rate limit are tested elsewhere (tests/tests/attacks.rs).
api_budget = []

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[actions.temperature]
connection = "home"
path = "/api/getstationsdata"
answer = "Living room {{{{ data.body.devices[0].dashboard_data.Temperature }}}} °C"
key_hash = "{{key}}"
rate_limit = {{ burst = 5000, per_minute = 60000 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_instances_on_one_table_make_one_token_call_for_800_actions() {
    let moto = moto::moto();
    let table = "homehook-reliability";
    let first = DynamoStore::new(local::dynamodb(&moto.endpoint), table);
    first.create_table().await.expect("table");
    let store = |_: usize| -> Arc<dyn Store> {
        Arc::new(DynamoStore::new(local::dynamodb(&moto.endpoint), table))
    };

    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let text = config(&vendor.base);
    let w = World::with_vendor(
        clock.clone(),
        vendor,
        &text,
        secrets_for("netatmo", &settings),
        store(0),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    let filled = text
        .replace("{admin}", &w.keys.admin.hash().to_string())
        .replace("{key}", &w.keys.action.hash().to_string());
    let mut bases = vec![w.hh.base.clone()];
    let mut others = Vec::new();
    for i in 1..4 {
        let hh = Homehook::start(
            &filled,
            store(i),
            secrets_for("netatmo", &settings),
            clock.clone(),
        )
        .await
        .expect("instance");
        bases.push(hh.base.clone());
        others.push(hh);
    }

    clock.advance(4 * 3600);
    let before = w.vendor.token_calls();
    let mut calls = tokio::task::JoinSet::new();
    for base in &bases {
        for _ in 0..200 {
            let request = w
                .client
                .post(format!("{base}/a/temperature"))
                .bearer_auth(w.keys.action.expose());
            calls.spawn(async move {
                let r = request.send().await.expect("act");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            });
        }
    }
    let answers = calls.join_all().await;
    let ok = answers
        .iter()
        .filter(|(s, t)| *s == 200 && t.contains("21.4"))
        .count();
    let token_calls = w.vendor.token_calls() - before;
    let health = w.connection_status("home").await["health"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    write_report(
        "reliability-dynamodb",
        &format!(
            "### 4 instances sharing one DynamoDB table (moto), 200 concurrent actions each, expired token\n\n| instances × actions | token calls | successes | final health |\n|---|---|---|---|\n| 4 × 200 | {token_calls} | {ok} | {health} |\n"
        ),
    );
    let failures: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).take(3).collect();
    assert_eq!(ok, 800, "every action answered: {failures:?}");
    assert_eq!(
        token_calls, 1,
        "one instance renewed, the others waited for its tokens"
    );
    assert_eq!(health, "healthy");
    assert_eq!(w.vendor.live_refresh_tokens(), 1);
    drop(others);
}

/// The same on DynamoDB with 10-second access tokens, as Lambda instances of a vendor with
/// short tokens see it: two instances, a burst of 100 actions each on an expired token, then
/// steady traffic alternating between them for three lifetimes: one renewal per lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_table_renew_a_ten_second_token_once_per_lifetime() {
    let moto = moto::moto();
    let table = "homehook-short-tokens";
    let first = DynamoStore::new(local::dynamodb(&moto.endpoint), table);
    first.create_table().await.expect("table");
    let store =
        || -> Arc<dyn Store> { Arc::new(DynamoStore::new(local::dynamodb(&moto.endpoint), table)) };
    let clock = ManualClock::new(T0);
    let settings = FakeSettings {
        access_ttl_secs: 10,
        ..FakeSettings::default()
    };
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let text = config(&vendor.base);
    let w = World::with_vendor(
        clock.clone(),
        vendor,
        &text,
        secrets_for("netatmo", &settings),
        store(),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    let filled = text
        .replace("{admin}", &w.keys.admin.hash().to_string())
        .replace("{key}", &w.keys.action.hash().to_string());
    let second = Homehook::start(
        &filled,
        store(),
        secrets_for("netatmo", &settings),
        clock.clone(),
    )
    .await
    .expect("second instance");
    let bases = [w.hh.base.clone(), second.base.clone()];

    clock.advance(60);
    let before = w.vendor.token_calls();
    let mut calls = tokio::task::JoinSet::new();
    for base in &bases {
        for _ in 0..100 {
            let request = w
                .client
                .post(format!("{base}/a/temperature"))
                .bearer_auth(w.keys.action.expose());
            calls.spawn(async move { request.send().await.expect("act").status().as_u16() });
        }
    }
    let statuses = calls.join_all().await;
    let burst_calls = w.vendor.token_calls() - before;
    let before = w.vendor.token_calls();
    let mut steady_ok = 0;
    for i in 0..30 {
        let r = w
            .client
            .post(format!("{}/a/temperature", bases[i % 2]))
            .bearer_auth(w.keys.action.expose())
            .send()
            .await
            .expect("act");
        steady_ok += usize::from(r.status() == 200);
        clock.advance(1);
    }
    let steady_calls = w.vendor.token_calls() - before;
    write_report(
        "reliability-dynamodb-short-tokens",
        &format!(
            "### 10-second access tokens, two instances on one DynamoDB table (moto)\n\n| traffic | actions | token calls | lifetimes with traffic |\n|---|---|---|---|\n| one burst on an expired token, 100 per instance | 200 | {burst_calls} | 1 |\n| one action a second, alternating, 30 s | 30 | {steady_calls} | 3 |\n"
        ),
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(burst_calls, 1, "one renewal for both instances");
    assert_eq!(steady_ok, 30);
    assert_eq!(steady_calls, 3, "one renewal per lifetime");
}
