//! IFTTT-style callers against the Netatmo fake: the Webhooks URL shape with the key in the
//! path, `value1`..`value3` filling the action's parameters (by its `ifttt` list, or its only
//! parameter), the `/json/` variant, the same body on `/a/{action}`, and clear refusals.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::MemoryStore;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{T0, World, secrets_for};
use serde_json::{Value, json};

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

[connections.home]
provider = "netatmo"
secret = "netatmo"

# One caller parameter: value1 fills it without a list.
[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "{{mode}}" }}
params.mode = {{ type = "enum", values = ["schedule", "away", "hg"], default = "away" }}
key_hash = "{{key}}"

# Two: the list says which value fills which.
[actions.room]
connection = "home"
path = "/api/setroomthermpoint"
body = {{ home = {{ id = "h1", room = "{{room}}", temp = "{{temp}}" }} }}
params.room = {{ type = "string", max_len = 32 }}
params.temp = {{ type = "number", min = 7, max = 30 }}
ifttt = ["room", "temp"]
key_hash = "{{key}}"
"#
    )
}

async fn world() -> World<FakeVendor> {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let text = config(&vendor.base);
    let w = World::with_vendor(
        clock,
        vendor,
        &text,
        secrets_for("netatmo", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    w
}

/// `POST {path}` where `{key}` in `path` is the action key, with no header.
async fn post(w: &World<FakeVendor>, path: &str, body: Value) -> (u16, String) {
    let url = format!(
        "{}{}",
        w.hh.base,
        path.replace("{key}", w.keys.action.expose())
    );
    let r = w.client.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn last_call(w: &World<FakeVendor>) -> homehook_tests::fake_vendor::ApiCall {
    w.vendor.api_calls().last().cloned().expect("a vendor call")
}

fn error_of(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error: {body}"));
    (
        v["error"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn the_webhooks_url_shape_maps_value1_to_value3_onto_parameters() {
    let w = world().await;
    // IFTTT sends all three values, the unused ones empty.
    let (status, _) = post(
        &w,
        "/trigger/heating/with/key/{key}",
        json!({"value1": "hg", "value2": "", "value3": ""}),
    )
    .await;
    assert_eq!(status, 200);
    let call = last_call(&w);
    assert_eq!(call.path, "/api/setthermmode");
    assert!(
        call.query.contains(&("mode".into(), "hg".into())),
        "{call:?}"
    );

    // Values are text in IFTTT; a number parameter still gets a number.
    let (status, _) = post(
        &w,
        "/trigger/room/with/key/{key}",
        json!({"value1": "living", "value2": "19.5"}),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&last_call(&w).body).unwrap();
    assert_eq!(
        body,
        json!({"home": {"id": "h1", "room": "living", "temp": 19.5}})
    );

    // Nothing sent: the parameter's default.
    assert_eq!(
        post(&w, "/trigger/heating/with/key/{key}", json!({}))
            .await
            .0,
        200
    );
    assert!(
        last_call(&w)
            .query
            .contains(&("mode".into(), "away".into()))
    );
}

#[tokio::test]
async fn the_json_variant_and_the_action_url_take_the_same_callers() {
    let w = world().await;
    let (status, _) = post(
        &w,
        "/trigger/room/json/with/key/{key}",
        json!({"room": "kitchen", "temp": 20}),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&last_call(&w).body).unwrap();
    assert_eq!(body["home"]["room"], "kitchen");

    // The JSON variant takes names only: value1 is not one of them.
    let (status, body) = post(
        &w,
        "/trigger/heating/json/with/key/{key}",
        json!({"value1": "hg"}),
    )
    .await;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (400, "unknown_parameter")
    );

    // value1..value3 work on /a/{action} with the key in the header too.
    let (status, _) = w.act_text("heating", json!({"value1": "schedule"})).await;
    assert_eq!(status, 200);
    assert!(
        last_call(&w)
            .query
            .contains(&("mode".into(), "schedule".into()))
    );
}

#[tokio::test]
async fn wrong_keys_unmapped_values_and_unsafe_methods_are_refused_without_acting() {
    let w = world().await;
    let calls = w.vendor.api_calls().len();

    // A wrong key in the path is a wrong key.
    let url = format!("{}/trigger/heating/with/key/hh_not-a-key", w.hh.base);
    let r = w
        .client
        .post(url)
        .json(&json!({"value1": "hg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_of(&r.text().await.unwrap()).0, "unauthorized");
    // So is an unknown event, with a good key.
    let (status, body) = post(&w, "/trigger/nope/with/key/{key}", json!({})).await;
    assert_eq!((status, error_of(&body).0.as_str()), (401, "unauthorized"));

    // value2 has nothing to fill on a one-parameter action: the message says how to map it.
    let (status, body) = post(
        &w,
        "/trigger/heating/with/key/{key}",
        json!({"value1": "hg", "value2": "extra"}),
    )
    .await;
    let (code, message) = error_of(&body);
    assert_eq!((status, code.as_str()), (400, "unknown_parameter"));
    assert!(message.contains("actions.heating.ifttt"), "{message}");

    // The same parameter by name and as a value: refused rather than guessed.
    let (status, body) = post(
        &w,
        "/trigger/heating/with/key/{key}",
        json!({"value1": "hg", "mode": "away"}),
    )
    .await;
    let (code, message) = error_of(&body);
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"));
    assert!(message.contains("sent twice"), "{message}");

    // A value outside the parameter's type is checked like any other.
    let (status, body) = post(
        &w,
        "/trigger/room/with/key/{key}",
        json!({"value1": "living", "value2": "hot"}),
    )
    .await;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (400, "invalid_parameter")
    );

    // GET acts only where the action allows it (heating is POST only), as on /a/.
    let url = format!(
        "{}/trigger/heating/with/key/{}?value1=hg",
        w.hh.base,
        w.keys.action.expose()
    );
    let r = w.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");

    assert_eq!(
        w.vendor.api_calls().len(),
        calls,
        "nothing reached the vendor"
    );
}
