//! Netatmo and Works with Legrand against their fake, which serves pyatmo's answers recorded
//! from the live API (tests/fixtures/netatmo/SOURCES.md): authorization code with scopes,
//! rotating refresh tokens, 403 code 3 for an expired token, the per-user rate limit (403 code
//! 26), unreachable modules inside a 200, room set points in a home with a Smart Modulating
//! Thermostat, and the built-in actions people use, each heard as its spoken answer.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::{MemoryStore, Store};
use homehook_local::SqliteStore;
use homehook_tests::fakes::netatmo::{
    ALICE, BRIDGE, EMPTY_HOME, ENTRADA, FULL_STATION, FakeNetatmo, HOME, LIGHT, LIVING, OTM_ROOM,
    SHUTTER, STATION, VALVE,
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
        action("light_off", "light_off", &light),
        action(
            "shutter_open",
            "shutter_open",
            &format!(
                "{home}, module_id = \"{SHUTTER}\", bridge = \"{BRIDGE}\", name = \"Entrance shutter\""
            ),
        ),
        action(
            "shutter_close",
            "shutter_close",
            &format!(
                "{home}, module_id = \"{SHUTTER}\", bridge = \"{BRIDGE}\", name = \"Entrance shutter\""
            ),
        ),
        action(
            "light_no_bridge",
            "light_on",
            &format!("{home}, module_id = \"{LIGHT}\""),
        ),
        action(
            "shutter",
            "shutter_position",
            &format!("{home}, module_id = \"{SHUTTER}\", bridge = \"{BRIDGE}\""),
        ),
        action(
            "shutter_no_bridge",
            "shutter_open",
            &format!("{home}, module_id = \"{SHUTTER}\""),
        ),
        action(
            "unknown_light",
            "light_on",
            &format!("{home}, module_id = \"00:00:00:00:00:0f\", bridge = \"{BRIDGE}\""),
        ),
        action(
            "entrada",
            "room_setpoint",
            &format!("{home}, room_id = \"{ENTRADA}\", name = \"Entrada\""),
        ),
        action(
            "entrada_schedule",
            "room_schedule",
            &format!("{home}, room_id = \"{ENTRADA}\", name = \"Entrada\""),
        ),
        action(
            "bureau",
            "room_setpoint",
            &format!("{home}, room_id = \"{OTM_ROOM}\", name = \"Bureau\""),
        ),
        action(
            "no_such_room",
            "room_setpoint",
            &format!("{home}, room_id = \"1234567890\""),
        ),
        action(
            "full_station",
            "station",
            &format!("device_id = \"{FULL_STATION}\""),
        ),
        // What homehook sent before: setroomthermpoint whatever the room.
        format!(
            "[actions.entrada_thermpoint]\nconnection = \"home\"\npath = \"/api/setroomthermpoint\"\nform = {{ home_id = \"{HOME}\", room_id = \"{ENTRADA}\", mode = \"manual\", temp = \"21\" }}\nkey_hash = \"{{key}}\"\n"
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

/// The paths of the API calls since `from`.
fn paths_since(w: &World<FakeNetatmo>, from: usize) -> Vec<String> {
    w.vendor.vendor.api_calls()[from..]
        .iter()
        .map(|c| c.path.clone())
        .collect()
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

    // Livingroom has a NATherm1: setroomthermpoint, after one homesdata read.
    let from = w.vendor.vendor.api_calls().len();
    assert_eq!(
        w.act_text("living", json!({"temp": 22, "minutes": 60}))
            .await,
        (200, "Living room set to 22 °C".into())
    );
    assert_eq!(
        paths_since(&w, from),
        ["/api/homesdata", "/api/setroomthermpoint"]
    );
    assert_eq!(
        w.vendor.home().rooms[LIVING],
        ("manual".into(), Some(22.0), Some(T0.plus_secs(3_600).0))
    );

    // The recorded dimmer is off at 63 %.
    assert_eq!(w.vendor.home().lights[LIGHT], (false, Some(63)));
    assert_eq!(
        w.act_text("light_on", json!({})).await,
        (200, "Kitchen light on".into())
    );
    assert_eq!(w.vendor.home().lights[LIGHT], (true, Some(63)));
    assert_eq!(
        w.act_text("light_dim", json!({"brightness": 40})).await,
        (200, "Kitchen light at 40 %".into())
    );
    assert_eq!(w.vendor.home().lights[LIGHT], (true, Some(40)));
    assert_eq!(w.vendor.home().shutters[SHUTTER], 0, "recorded closed");
    assert_eq!(
        w.act_text("shutter", json!({"position": 50})).await,
        (200, "Shutter 50 % open".into())
    );
    assert_eq!(w.vendor.home().shutters[SHUTTER], 50);
    assert_eq!(
        w.act_text("shutter_open", json!({})).await,
        (200, "Entrance shutter opening".into())
    );
    assert_eq!(w.vendor.home().shutters[SHUTTER], 100);
    assert_eq!(
        w.act_text("shutter_close", json!({})).await,
        (200, "Entrance shutter closing".into())
    );
    assert_eq!(w.vendor.home().shutters[SHUTTER], 0);
    assert_eq!(
        w.act_text("light_off", json!({})).await,
        (200, "Kitchen light off".into())
    );
    assert_eq!(w.vendor.home().lights[LIGHT], (false, Some(40)));
    assert_eq!(
        w.act_text("light_on", json!({})).await,
        (200, "Kitchen light on".into())
    );

    // Recorded: Jane Doe home, John and Richard away.
    assert_eq!(w.vendor.home().away.len(), 2);
    assert_eq!(
        w.act_text("away", json!({})).await,
        (200, "Everybody marked away".into())
    );
    assert_eq!(
        w.vendor.home().away.len(),
        3,
        "everybody, when no person is named"
    );
    assert_eq!(
        w.act_text("back", json!({"person_id": ALICE})).await,
        (200, "Welcome home".into())
    );
    assert!(!w.vendor.home().away.contains(ALICE));

    // The recorded station of the home: its outdoor module does not answer, its rain gauge and
    // anemometer have no temperature.
    assert_eq!(
        w.act_text("station", json!({})).await,
        (
            200,
            "Palier 21.1 °C, humidity 45 %, CO2 1339 ppm. Outdoor: no reading. Rain: no reading. \
             Bedroom 19.3 °C, humidity 53 %, CO2 1076 ppm. Bathroom 19.4 °C, humidity 55 %, CO2 1930 ppm. \
             Garden: no reading."
                .into()
        )
    );
    assert_eq!(
        w.act_text("full_station", json!({})).await,
        (
            200,
            "NetatmoIndoor 24.6 °C, humidity 36 %, CO2 749 ppm. NetatmoOutdoor 28.6 °C, humidity 24 %. \
             Kitchen 28 °C, humidity 26 %, CO2 503 ppm. Livingroom 26.4 °C, humidity 31 %, CO2 451 ppm. \
             Garden: no reading. Yard: no reading."
                .into()
        )
    );
    // The recorded homestatus with what was changed above.
    assert_eq!(
        w.act_text("home_status", json!({})).await,
        (
            200,
            "MYHOME: heating on schedule. Livingroom 19.8 °C, set to 22 °C. Cocina 27 °C, set to 7 °C. \
             Entrada 24.5 °C, set to 7 °C. Corridor 22 °C, set to 22 °C. Jane Doe is home."
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
async fn room_set_points_go_where_a_home_with_an_otm_takes_them() {
    let w = connected().await;
    // Entrada's valve is in a home with an OTM and a Smarther: setstate, as pyatmo sends it.
    // The recorded home is in cooling mode, so the cooling set point is the one written.
    let from = w.vendor.vendor.api_calls().len();
    assert_eq!(
        w.act_text("entrada", json!({"temp": 21, "minutes": 30}))
            .await,
        (200, "Entrada set to 21 °C".into())
    );
    assert_eq!(paths_since(&w, from), ["/api/homesdata", "/api/setstate"]);
    assert_eq!(
        w.vendor.home().cooling[ENTRADA],
        ("manual".into(), Some(21.0), Some(T0.plus_secs(1_800).0))
    );
    assert_eq!(
        w.act_text("entrada_schedule", json!({})).await,
        (200, "Entrada back on schedule".into())
    );
    assert_eq!(w.vendor.home().cooling[ENTRADA].0, "home");
    // The OTM's own room.
    assert_eq!(
        w.act_text("bureau", json!({"temp": 19.5})).await,
        (200, "Bureau set to 19.5 °C".into())
    );
    assert_eq!(
        w.vendor.home().cooling[OTM_ROOM],
        ("manual".into(), Some(19.5), None)
    );
    // What homehook used to send for that room is refused (the fake's fail-safe stand-in for
    // "ineffective"), and changes nothing.
    let before = w.vendor.home().rooms.get(ENTRADA).cloned();
    let (status, body) = w.act_json("entrada_thermpoint", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("vendor_rejected"))
    );
    assert_eq!(w.vendor.home().rooms.get(ENTRADA).cloned(), before);

    // A room the home does not have: said before any write is sent.
    let from = w.vendor.vendor.api_calls().len();
    let (status, body) = w.act_json("no_such_room", json!({"temp": 20})).await;
    assert_eq!(body["error"], "misconfigured", "{status} {body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("1234567890") && message.contains("homehook discover"),
        "{message}"
    );
    assert_eq!(paths_since(&w, from), ["/api/homesdata"]);

    // Without the OTM and the Smarther, valves take setroomthermpoint again.
    w.vendor.remove_module_types(&["OTM", "BNS"]);
    let from = w.vendor.vendor.api_calls().len();
    assert_eq!(
        w.act_text("entrada", json!({"temp": 20})).await,
        (200, "Entrada set to 20 °C".into())
    );
    assert_eq!(
        paths_since(&w, from),
        ["/api/homesdata", "/api/setroomthermpoint"]
    );
    assert_eq!(
        w.vendor.home().rooms[ENTRADA],
        ("manual".into(), Some(20.0), None)
    );
}

#[tokio::test]
async fn an_offline_module_leaves_the_rest_of_the_home_readable() {
    let w = connected().await;
    // Entrada's valve drops off: homestatus is a 200 with the home and body.errors code 6.
    w.vendor.set_offline(VALVE, true);
    assert_eq!(
        w.act_text("home_status", json!({})).await,
        (
            200,
            "MYHOME: heating on schedule. Livingroom 19.8 °C, set to 12 °C. Cocina 27 °C, set to 7 °C. \
             Entrada: no reading. Corridor 22 °C, set to 22 °C. Jane Doe is home. Offline: Valve1."
                .into()
        )
    );
    w.vendor.set_offline(VALVE, false);
    assert!(
        !w.act_text("home_status", json!({}))
            .await
            .1
            .contains("Offline"),
        "back online"
    );

    // A write to an offline module is a failure that says so.
    w.vendor.set_offline(LIGHT, true);
    let (status, body) = w.act_json("light_on", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("vendor_rejected"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(LIGHT) && message.contains("unreachable"),
        "{message}"
    );
    assert!(!w.vendor.home().lights[LIGHT].0, "still off");
}

#[tokio::test]
async fn an_end_time_only_goes_with_away_or_frost_guard() {
    let w = connected().await;
    let calls = w.vendor.vendor.api_calls().len();
    let (status, body) = w
        .act_json("heating", json!({"mode": "schedule", "minutes": 30}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("minutes") && message.contains("away or hg"),
        "{message}"
    );
    assert_eq!(w.vendor.vendor.api_calls().len(), calls, "nothing sent");
    assert_eq!(
        w.act_text("heating", json!({"mode": "hg", "minutes": 30}))
            .await,
        (200, "Heating set to frost guard".into())
    );
    assert_eq!(
        w.vendor.home().therm_mode,
        ("hg".into(), Some(T0.plus_secs(1_800).0))
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
async fn the_vendor_budget_is_kept_so_the_vendor_never_throttles() {
    let w = connected().await;
    let api_calls = w.vendor.vendor.api_calls().len();
    for _ in 0..50 {
        assert_eq!(w.act_text("station", json!({})).await.0, 200);
    }
    // The 51st call in 10 s is held back by homehook: 429 with the wait, and the vendor never
    // sees it (it would have answered 403 code 26 "User usage reached" and counted it against
    // the app).
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
async fn a_vendor_403_code_26_is_passed_on_and_rests_the_connection() {
    // Another app of the same user spent the budget: the vendor answers 403 code 26 itself.
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
    // Refusals Netatmo words as code 21 (a top-level error, as recorded): a bridged module
    // sent without its bridge, and a module the home does not have.
    for (action, module) in [
        ("light_no_bridge", LIGHT),
        ("shutter_no_bridge", SHUTTER),
        ("unknown_light", "00:00:00:00:00:0f"),
    ] {
        let (status, body) = w.act_json(action, json!({})).await;
        assert_eq!(status, 502, "{action}: {body}");
        assert_eq!(body["error"], "vendor_rejected");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(module) && message.contains("invalid argument or device id"),
            "{action}: {message}"
        );
    }

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
    // The recorded account: MYHOME and a second home without rooms.
    assert_eq!(ids("home_id"), [HOME, EMPTY_HOME]);
    assert!(ids("room_id").contains(&LIVING.to_string()));
    assert!(ids("room_id").contains(&ENTRADA.to_string()));
    assert!(ids("module_id").contains(&LIGHT.to_string()));
    assert_eq!(ids("person_id").len(), 3);
    assert!(ids("device_id").contains(&STATION.to_string()));
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
