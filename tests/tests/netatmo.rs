//! Netatmo and Works with Legrand against their fake: authorization code with scopes, rotating
//! refresh tokens, 403 code 3 for an expired token, the per-user rate limit (429 code 26),
//! partial failures inside a 200, and the built-in actions people use.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::{MemoryStore, Store};
use homehook_local::SqliteStore;
use homehook_tests::fakes::netatmo::{
    ALICE, BEDROOM, BRIDGE, FakeNetatmo, HOME, LIGHT, LIVING, SHUTTER, STATION,
};
use homehook_tests::harness::{
    T0, World, discovered_ids, secrets_for, token_endpoint_rate_limit_is_honoured,
};
use serde_json::{Value, json};

fn config(vendor: &str) -> String {
    let action = |name: &str, builtin: &str, with: &str| {
        format!(
            "[actions.{name}]\nconnection = \"home\"\nbuiltin = \"{builtin}\"\nwith = {{ {with} }}\nkey_hash = \"{{key}}\"\n"
        )
    };
    let home = format!("home_id = \"{HOME}\"");
    // `name` is what the spoken answer calls the light.
    let light =
        format!("{home}, module_id = \"{LIGHT}\", bridge = \"{BRIDGE}\", name = \"Kitchen light\"");
    [
        format!(
            r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[providers.legrand]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[connections.lights]
provider = "legrand"
label = "Lights"
secret = "netatmo"

[actions.legrand_light_on]
connection = "lights"
builtin = "light_on"
with = {{ home_id = "{HOME}", module_id = "{LIGHT}", bridge = "{BRIDGE}" }}
key_hash = "{{key}}"
"#
        ),
        action("heating", "therm_mode", &home),
        action(
            "heating_away",
            "therm_mode",
            &format!("{home}, mode = \"away\""),
        ),
        action(
            "living",
            "room_setpoint",
            &format!("{home}, room_id = \"{LIVING}\", name = \"Living room\""),
        ),
        action("light_on", "light_on", &light),
        action("light_dim", "light_brightness", &light),
        action(
            "light_no_bridge",
            "light_on",
            &format!("{home}, module_id = \"{LIGHT}\""),
        ),
        action(
            "shutter",
            "shutter_position",
            &format!("{home}, module_id = \"{SHUTTER}\""),
        ),
        action("away", "persons_away", &home),
        action("back", "persons_home", &home),
        action("station", "station", &format!("device_id = \"{STATION}\""))
            // The budget tests call it 51 times in a row: above its own default rate limit.
            + "rate_limit = { burst = 100, per_minute = 6000 }\n",
        action("home_status", "home_status", &home),
    ]
    .concat()
}

async fn world_on(store: Arc<dyn Store>) -> World<FakeNetatmo> {
    let clock = ManualClock::new(T0);
    let settings = FakeNetatmo::settings();
    let fake = FakeNetatmo::start(clock.clone(), settings.clone()).await;
    let config = config(&fake.vendor.base);
    World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("netatmo", &settings),
        store,
    )
    .await
}

async fn connected() -> World<FakeNetatmo> {
    let w = world_on(Arc::new(MemoryStore::new())).await;
    assert_eq!(w.connect("home").await.status(), 200);
    w
}

#[tokio::test]
async fn heating_lights_shutters_persons_and_readings() {
    let w = connected().await;
    // Scopes asked at connect time: the provider's defaults.
    let authorize = w.start_connect("home").await;
    assert!(
        authorize.contains("scope=read_station+read_thermostat+write_thermostat"),
        "{authorize}"
    );

    assert_eq!(
        w.act_text("heating_away", json!({"minutes": 120})).await,
        (200, "Heating set to away".into())
    );
    assert_eq!(
        w.vendor.home().therm_mode,
        ("away".into(), Some(T0.plus_secs(7_200).0))
    );
    assert_eq!(
        w.act_text("heating", json!({"mode": "schedule"})).await,
        (200, "Heating back on schedule".into())
    );
    assert_eq!(
        w.vendor.home().therm_mode,
        ("schedule".into(), None),
        "no end time sent"
    );
    let (status, body) = w.act_json("heating", json!({"mode": "cozy"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_parameter"))
    );

    assert_eq!(
        w.act_text("living", json!({"temp": 22, "minutes": 60}))
            .await,
        (200, "Living room set to 22 °C".into())
    );
    assert_eq!(
        w.vendor.home().rooms[LIVING],
        ("manual".into(), Some(22.0), Some(T0.plus_secs(3_600).0))
    );

    assert_eq!(
        w.act_text("light_on", json!({})).await,
        (200, "Kitchen light on".into())
    );
    assert_eq!(
        w.act_text("light_dim", json!({"brightness": 40})).await,
        (200, "Kitchen light at 40 %".into())
    );
    assert_eq!(w.vendor.home().lights[LIGHT], (true, Some(40)));
    assert_eq!(
        w.act_text("shutter", json!({"position": 50})).await,
        (200, "Shutter 50 % open".into())
    );
    assert_eq!(w.vendor.home().shutters[SHUTTER], 50);

    assert_eq!(
        w.act_text("away", json!({})).await,
        (200, "Everybody marked away".into())
    );
    assert_eq!(
        w.vendor.home().away.len(),
        2,
        "everybody, when no person is named"
    );
    assert_eq!(
        w.act_text("back", json!({"person_id": ALICE})).await,
        (200, "Welcome home".into())
    );

    assert_eq!(
        w.act_text("station", json!({})).await,
        (
            200,
            "Living room 21.4 °C, humidity 48 %, CO2 640 ppm. Garden 7.5 °C, humidity 81 %.".into()
        )
    );
    assert_eq!(
        w.act_text("home_status", json!({})).await,
        (
            200,
            "Home: heating on schedule. Living room 20.5 °C, set to 22 °C. Bedroom 18.5 °C, set to 18 °C. Alice is home."
                .into()
        )
    );
    assert_eq!(
        w.vendor.vendor.token_calls(),
        1,
        "one code exchange, no refresh needed"
    );
}

#[tokio::test]
async fn rotating_refresh_tokens_survive_a_week_of_expiries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let w = world_on(Arc::new(SqliteStore::open_in(dir.path()).unwrap())).await;
    assert_eq!(w.connect("home").await.status(), 200);
    // A week of ticks every 10 minutes: the token is renewed before each 3-hour expiry, each
    // rotation kills the old refresh token, and homehook always holds the live one.
    for _ in 0..(7 * 24 * 6) {
        w.clock.advance(600);
        w.hh.app.tick().await.unwrap();
    }
    assert_eq!(w.vendor.vendor.live_refresh_tokens(), 1);
    let calls = w.vendor.vendor.token_calls();
    // The floor: one renewal per 3-hour token lifetime, 56 in a week (plus the code exchange).
    assert_eq!(calls - 1, 56, "{calls} token calls");
    // Mid-use expiry: the vendor says code 3 before our clock does; one renewal, one retry.
    w.vendor.vendor.expire_access_tokens();
    assert_eq!(w.act_text("station", json!({})).await.0, 200);
    assert_eq!(w.vendor.vendor.token_calls(), calls + 1);
    assert_eq!(w.vendor.vendor.live_refresh_tokens(), 1);
}

#[tokio::test]
async fn the_vendor_budget_is_kept_so_the_vendor_never_answers_429() {
    let w = connected().await;
    let api_calls = w.vendor.vendor.api_calls().len();
    for _ in 0..50 {
        assert_eq!(w.act_text("station", json!({})).await.0, 200);
    }
    // The 51st call in 10 s is held back by homehook: 429 with the wait, and the vendor never
    // sees it (it would have answered 429 "User usage reached" and counted it against the app).
    let r = w.act("station", json!({})).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "11");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "vendor_budget");
    assert_eq!(w.vendor.vendor.api_calls().len(), api_calls + 50);
    // Once the window has moved on, calls go again.
    w.clock.advance(11);
    assert_eq!(w.act_text("station", json!({})).await.0, 200);
}

#[tokio::test]
async fn a_vendor_429_is_passed_on_and_rests_the_connection() {
    // Another app of the same user spent the budget: the vendor answers 429 itself.
    let w = connected().await;
    w.vendor.spend_budget();
    let r = w.act("station", json!({})).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "vendor_busy");
    // The next call does not knock again before the wait is over.
    let api_calls = w.vendor.vendor.api_calls().len();
    assert_eq!(w.act("station", json!({})).await.status(), 429);
    assert_eq!(w.vendor.vendor.api_calls().len(), api_calls);
    w.clock.advance(3600);
    assert_eq!(w.act_text("station", json!({})).await.0, 200);
}

#[tokio::test]
async fn partial_failures_outages_and_rejected_refresh_tokens_are_explained() {
    let w = connected().await;
    // A 200 that says one module did not obey is not a success.
    let (status, body) = w.act_json("light_no_bridge", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "vendor_rejected");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(LIGHT) && message.contains("invalid argument"),
        "{message}"
    );

    // A 503 means "not done": even a POST is sent again (three tries at most).
    w.vendor.faults().fail_next(503, 2);
    assert_eq!(
        w.act_text("light_on", json!({})).await,
        (200, "Kitchen light on".into())
    );
    w.vendor.faults().fail_next(503, 3);
    let (status, body) = w.act_json("light_on", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("vendor_unavailable"))
    );

    // The owner revoked homehook in their Netatmo account: reconnect needed, with the reason.
    w.vendor.vendor.revoke_refresh_tokens();
    w.clock.advance(3 * 3600);
    // The tick finds out first, and its summary says what kind of failure it is.
    let summary = w.hh.app.tick().await.unwrap();
    assert_eq!(summary.tokens.failed, 1);
    assert_eq!(
        summary.tokens.failed_by_class.get("reauth_needed"),
        Some(&1)
    );
    let (status, body) = w.act_json("station", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reauth_needed"))
    );
    let conn = w.connection_status("home").await;
    assert_eq!(conn["health"], "reauth_needed");
    assert!(
        conn["reason"].as_str().unwrap().contains("invalid_grant"),
        "{conn}"
    );
    // Reconnecting brings it back.
    assert_eq!(w.connect("home").await.status(), 200);
    assert_eq!(w.act_text("station", json!({})).await.0, 200);
    assert_eq!(w.connection_status("home").await["health"], "healthy");
}

#[tokio::test]
async fn legrand_shares_the_api_and_discover_lists_every_id() {
    let w = connected().await;
    assert_eq!(w.connect("lights").await.status(), 200);
    let authorize = w.start_connect("lights").await;
    assert!(
        authorize.contains("scope=read_magellan+write_magellan"),
        "{authorize}"
    );
    assert_eq!(
        w.act_text("legrand_light_on", json!({})).await,
        (200, "Light on".into()),
        "without a `name`, the light is a light"
    );
    assert!(w.vendor.home().lights[LIGHT].0);

    let found: Value = w.admin_get("/discover/home").await.json().await.unwrap();
    let ids = |key: &str| discovered_ids(&found, key);
    assert_eq!(ids("home_id"), [HOME]);
    assert_eq!(ids("room_id"), [LIVING, BEDROOM]);
    assert!(ids("module_id").contains(&LIGHT.to_string()));
    assert_eq!(ids("person_id").len(), 2);
    assert_eq!(ids("device_id"), [STATION]);
    let modules = found["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "module_id")
        .unwrap();
    let light = modules["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == LIGHT)
        .unwrap();
    assert!(
        light["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("bridge={BRIDGE}"))
    );
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_waited_for() {
    let w = connected().await;
    token_endpoint_rate_limit_is_honoured(&w, &w.vendor.vendor, "station").await;
}
