//! Myfox API v2 against its fake (bodies in tests/fixtures/myfox): password grant (personal
//! apps) and authorization code (commercial apps) with HTTP Basic client auth, the
//! `{"status":"OK"|"KO"}` envelope, `invalid_token` → refresh and retry once, "(632)" temporary
//! errors in the `error` field, heaters with and without a thermostat.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::MemoryStore;
use homehook_tests::fakes::myfox::{
    FakeMyfox, GATE, HEATER, SCENARIO, SHUTTER, SITE, SOCKET, THERMOSTAT,
};
use homehook_tests::harness::{
    T0, World, discovered_ids, secrets_for, token_endpoint_rate_limit_is_honoured,
};
use serde_json::{Value, json};

fn config(vendor: &str, api_base: &str) -> String {
    let action = |name: &str, conn: &str, builtin: &str, with: &str| {
        format!(
            "[actions.{name}]\nconnection = \"{conn}\"\nbuiltin = \"{builtin}\"\nwith = {{ site_id = \"{SITE}\"{with} }}\nkey_hash = \"{{key}}\"\n"
        )
    };
    let device = |id: &str| format!(", device_id = \"{id}\"");
    [
        format!(
            r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.myfox]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{api_base}"

[connections.myfox]
provider = "myfox"
grant = "password"
secret = "myfox"

[connections.commercial]
provider = "myfox"
grant = "authorization_code"
secret = "myfox"
"#
        ),
        action("armed", "myfox", "armed", ""),
        action("partial", "myfox", "partial", ""),
        action("disarmed", "myfox", "disarmed", ""),
        action("status", "myfox", "status", ""),
        action("commercial_status", "commercial", "status", ""),
        action(
            "good_night",
            "myfox",
            "scenario_play",
            &format!(", scenario_id = \"{SCENARIO}\", name = \"Good night\""),
        ),
        // `name` is what the spoken answer calls the device.
        action(
            "lamp_on",
            "myfox",
            "socket_on",
            &format!("{}, name = \"Lamp socket\"", device(SOCKET)),
        ),
        action("lamp_off", "myfox", "socket_off", &device(SOCKET)),
        action("shutter_open", "myfox", "shutter_open", &device(SHUTTER)),
        action("gate", "myfox", "gate", &device(GATE)),
        action(
            "heater",
            "myfox",
            "heater",
            &format!("{}, name = \"Bathroom heater\"", device(HEATER)),
        ),
        action(
            "living_room",
            "myfox",
            "heater",
            &format!("{}, name = \"Living room heater\"", device(THERMOSTAT)),
        ),
        action("ghost", "myfox", "socket_on", &device("404404")),
    ]
    .concat()
}

async fn world() -> World<FakeMyfox> {
    let clock = ManualClock::new(T0);
    let settings = FakeMyfox::settings();
    let fake = FakeMyfox::start(clock.clone(), settings.clone()).await;
    let config = config(&fake.vendor.base, &fake.api_base());
    World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("myfox", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await
}

#[tokio::test]
async fn security_scenarios_and_devices_through_the_envelope() {
    let w = world().await;
    assert_eq!(
        w.act_text("armed", json!({})).await,
        (200, "Alarm armed".into())
    );
    assert_eq!(w.vendor.home().security, 4);
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is armed".into())
    );
    assert_eq!(w.act_text("partial", json!({})).await.0, 200);
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is partially armed".into())
    );
    assert_eq!(
        w.act_text("disarmed", json!({})).await,
        (200, "Alarm disarmed".into())
    );
    assert_eq!(w.vendor.home().security, 1);

    assert_eq!(
        w.act_text("good_night", json!({})).await,
        (200, "Good night started".into())
    );
    assert_eq!(w.vendor.home().played, [SCENARIO]);
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Lamp socket on".into())
    );
    assert_eq!(w.vendor.home().devices[SOCKET], "socket/on");
    assert_eq!(w.act_text("lamp_off", json!({})).await.0, 200);
    assert_eq!(w.vendor.home().devices[SOCKET], "socket/off");
    assert_eq!(w.act_text("shutter_open", json!({})).await.0, 200);
    assert_eq!(w.vendor.home().devices[SHUTTER], "shutter/open");
    assert_eq!(
        w.act_text("gate", json!({"command": "two"})).await,
        (200, "Gate: command two sent".into())
    );
    assert_eq!(w.vendor.home().devices[GATE], "gate/perform/two");
    assert_eq!(
        w.act_text("heater", json!({"mode": "eco"})).await,
        (200, "Bathroom heater set to eco".into())
    );
    assert_eq!(w.vendor.home().devices[HEATER], "heater/eco");
    let (status, body) = w.act_json("heater", json!({"mode": "sauna"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_parameter"))
    );

    // One password grant for all of that: Myfox deactivates apps that ask for too many tokens.
    assert_eq!(w.vendor.vendor.token_calls(), 1);
    // The JSON answer carries the vendor's payload.
    let (_, body) = w.act_json("status", json!({})).await;
    assert_eq!(body["data"]["payload"]["statusLabel"], "disarmed");
}

#[tokio::test]
async fn invalid_token_refreshes_once_and_ko_envelopes_become_clear_errors() {
    let w = world().await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    w.clock.advance(1_800);
    w.vendor.vendor.expire_access_tokens();
    assert_eq!(
        w.act_text("disarmed", json!({})).await,
        (200, "Alarm disarmed".into())
    );
    assert_eq!(
        w.vendor.vendor.token_calls(),
        2,
        "password, then one refresh"
    );

    // KO with a reason: readable, with the vendor's status.
    let (status, body) = w.act_json("ghost", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "vendor_rejected");
    assert_eq!(
        body["message"],
        "the vendor refused the request (HTTP 400): Myfox says: Unknown device"
    );

    // "(632)" is temporary: retried, then a 503 if it lasts.
    w.vendor.update(|h| h.temporary_error = true);
    let before = w.vendor.vendor.api_calls().len();
    let r = w.act("armed", json!({})).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("(632)"),
        "{body}"
    );
    assert_eq!(w.vendor.vendor.api_calls().len() - before, 3);
    w.vendor.update(|h| h.temporary_error = false);

    // A 503 ("not done") that passes is invisible to the caller.
    w.vendor.faults().fail_next(503, 1);
    assert_eq!(
        w.act_text("armed", json!({})).await,
        (200, "Alarm armed".into())
    );
    // A 500 on a command may come after Myfox acted (a gate toggles): never sent twice.
    let before = w.vendor.vendor.api_calls().len();
    w.vendor.faults().fail_next(500, 1);
    let (status, body) = w.act_json("gate", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("vendor_unavailable"))
    );
    assert_eq!(w.vendor.vendor.api_calls().len() - before, 1);

    // Revoked: password fallback; with a changed password, reconnect needed.
    w.vendor.vendor.update(|s| s.account.1 = "changed".into());
    w.vendor.vendor.revoke_refresh_tokens();
    w.clock.advance(3_600);
    let (status, body) = w.act_json("status", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reauth_needed")),
        "{body}"
    );
    assert_eq!(
        w.connection_status("myfox").await["health"],
        "reauth_needed"
    );
}

#[tokio::test]
async fn a_commercial_app_connects_with_the_authorization_code() {
    let w = world().await;
    let (status, body) = w.act_json("commercial_status", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_connected"))
    );
    assert_eq!(w.connect("commercial").await.status(), 200);
    assert_eq!(
        w.act_text("commercial_status", json!({})).await,
        (200, "The alarm is disarmed".into())
    );
}

#[tokio::test]
async fn discover_lists_sites_scenarios_and_devices() {
    let w = world().await;
    let found: Value = w.admin_get("/discover/myfox").await.json().await.unwrap();
    let ids = |key: &str| discovered_ids(&found, key);
    assert_eq!(ids("site_id"), [SITE]);
    assert_eq!(ids("scenario_id"), [SCENARIO]);
    assert_eq!(
        ids("device_id"),
        [SOCKET, SHUTTER, GATE, HEATER, THERMOSTAT]
    );
    // Which modes go with which device: the thermostat list is its own (myfox-api const.py).
    let detail = |id: &str| {
        found["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["items"].as_array().unwrap())
            .find(|i| i["id"] == id)
            .map(|i| i["detail"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(detail(HEATER).contains("on/off/eco/frost"), "{found}");
    assert!(
        detail(THERMOSTAT).contains("auto/away/boost/thermostatoff"),
        "{found}"
    );
}

#[tokio::test]
async fn a_thermostat_takes_its_modes() {
    let w = world().await;
    assert_eq!(
        w.act_text("living_room", json!({"mode": "boost"})).await,
        (200, "Living room heater set to boost".into())
    );
    assert_eq!(w.vendor.home().devices[THERMOSTAT], "heater/boost");
}

#[tokio::test]
async fn a_632_in_the_error_field_is_retried_then_a_503() {
    let w = world().await;
    assert_eq!(w.act_text("status", json!({})).await.0, 200);
    // Myfox's temporary error comes in `error`, with HTTP 200 (myfox-api myfoxapi.py L283).
    w.vendor.update(|h| h.temporary_error = true);
    let before = w.vendor.vendor.api_calls().len();
    let (status, body) = w.act_json("lamp_on", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("vendor_unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("(632)"),
        "{body}"
    );
    assert_eq!(w.vendor.vendor.api_calls().len() - before, 3, "three tries");
    // Once it passes, the same action works and the socket is on.
    w.vendor.update(|h| h.temporary_error = false);
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Lamp socket on".into())
    );
    assert_eq!(w.vendor.home().devices[SOCKET], "socket/on");
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_waited_for() {
    let w = world().await;
    assert_eq!(w.act_text("status", json!({})).await.0, 200);
    token_endpoint_rate_limit_is_honoured(&w, &w.vendor.vendor, "status").await;
}
