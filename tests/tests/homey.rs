//! Homey against its fake: authorization code at `/oauth2/authorise` with HTTP Basic, then the
//! chain user/me → delegation token → session login on the Homey; the session is kept, sent
//! with `X-Homey-ID`, renewed once when the Homey refuses it; the cloud token is refreshed once
//! when the cloud says `invalid_token`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::MemoryStore;
use homehook_tests::fakes::homey::{
    ADVANCED_FLOW, FLOW, FakeHomey, GUESTS, HEATING_OFFSET, HOMEY, LAMP, PLUG, RemoteUrls,
    THERMOSTAT, WELCOME,
};
use homehook_tests::harness::{
    Homehook, T0, World, discovered_ids, secrets_for, token_endpoint_rate_limit_is_honoured,
};
use serde_json::{Value, json};

fn config(vendor: &str, homey: Option<&str>) -> String {
    config_with(vendor, homey, "")
}

/// The test config; `connection` adds lines to `[connections.homey]`.
fn config_with(vendor: &str, homey: Option<&str>, connection: &str) -> String {
    let action = |name: &str, builtin: &str, with: &str| {
        format!(
            "[actions.{name}]\nconnection = \"homey\"\nbuiltin = \"{builtin}\"\nwith = {{ {with} }}\nkey_hash = \"{{key}}\"\n"
        )
    };
    // `name` is what the spoken answer calls the device.
    let lamp = format!("device_id = \"{LAMP}\", name = \"Living lamp\"");
    [
        format!(
            r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.homey]
authorize_url = "{vendor}/oauth2/authorise"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[connections.homey]
provider = "homey"
label = "Homey"
{}
{connection}
"#,
            homey
                .map(|h| format!("homey = \"{h}\""))
                .unwrap_or_default()
        ),
        action("lamp_on", "device_on", &lamp),
        action("lamp_off", "device_off", &lamp),
        action("lamp_dim", "device_dim", &lamp),
        action("lamp_state", "device_state", &lamp),
        action(
            "thermostat",
            "device_temperature",
            &format!("device_id = \"{THERMOSTAT}\""),
        ),
        action("good_night", "flow", &format!("flow_id = \"{FLOW}\"")),
        action(
            "away_mode",
            "advanced_flow",
            &format!("flow_id = \"{ADVANCED_FLOW}\""),
        ),
        action(
            "guests",
            "variable_boolean",
            &format!("variable_id = \"{GUESTS}\", name = \"Guests\""),
        ),
        action("missing_flow", "flow", "flow_id = \"no-such-flow\""),
        action(
            "thermostat_state",
            "device_state",
            &format!("device_id = \"{THERMOSTAT}\""),
        ),
        action(
            "plug_state",
            "device_state",
            &format!("device_id = \"{PLUG}\""),
        ),
        action(
            "room_temperature",
            "device_capability",
            &format!("device_id = \"{THERMOSTAT}\", capability = \"measure_temperature\""),
        ),
        action(
            "thermostat_raw",
            "device_capability",
            &format!("device_id = \"{THERMOSTAT}\", capability = \"target_temperature\""),
        ),
        action(
            "guests_as_number",
            "variable_number",
            &format!("variable_id = \"{GUESTS}\""),
        ),
        action(
            "heating_offset",
            "variable_number",
            &format!("variable_id = \"{HEATING_OFFSET}\""),
        ),
        action(
            "welcome",
            "variable_text",
            &format!("variable_id = \"{WELCOME}\""),
        ),
    ]
    .concat()
}

async fn world_with(homey: Option<&str>, second_homey: bool) -> World<FakeHomey> {
    let clock = ManualClock::new(T0);
    let settings = FakeHomey::settings();
    let fake = FakeHomey::start(clock.clone(), settings.clone()).await;
    if second_homey {
        fake.add_homey("6a7b8c9d0e1f2a3b4c5d6e7f", "Holiday Homey");
    }
    let config = config(&fake.vendor.base, homey);
    let w = World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("homey", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_eq!(w.connect("homey").await.status(), 200);
    w
}

#[tokio::test]
async fn devices_flows_and_variables_through_one_session() {
    let w = world_with(None, false).await;
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Living lamp on".into())
    );
    assert_eq!(w.vendor.state().capabilities[LAMP]["onoff"], json!(true));
    assert_eq!(
        w.act_text("lamp_dim", json!({"level": 0.4})).await,
        (200, "Living lamp dimmed to 40 %".into())
    );
    assert_eq!(w.vendor.state().capabilities[LAMP]["dim"], json!(0.4));
    assert_eq!(
        w.act_text("lamp_state", json!({})).await,
        (200, "Study Lamp: on, dimmed to 40 %".into()),
        "Homey's own name for the device, its capabilities in Homey's order"
    );
    assert_eq!(
        w.act_text("thermostat", json!({"temperature": 21.5})).await,
        (200, "Thermostat set to 21.5 °C".into())
    );
    assert_eq!(
        w.vendor.state().capabilities[THERMOSTAT]["target_temperature"],
        json!(21.5)
    );
    assert_eq!(
        w.act_text("good_night", json!({})).await,
        (200, "Flow started".into())
    );
    assert_eq!(
        w.act_text("away_mode", json!({})).await,
        (200, "Flow started".into())
    );
    assert_eq!(w.vendor.state().triggered, [FLOW, ADVANCED_FLOW]);
    let triggers: Vec<_> = w
        .vendor
        .vendor
        .api_calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/trigger"))
        .collect();
    assert_eq!(triggers.len(), 2);
    for call in triggers {
        assert_eq!(
            (call.method.as_str(), call.body.as_str()),
            ("POST", "{}"),
            "a trigger carries the empty JSON object Athom's client sends"
        );
    }
    assert_eq!(
        w.act_text("guests", json!({"value": true})).await,
        (200, "Guests set to yes".into())
    );
    assert_eq!(w.vendor.state().variables[GUESTS], json!(true));

    // One delegation and one login served every call; the session is stored with the token.
    assert_eq!((w.vendor.delegations(), w.vendor.logins()), (1, 1));
    let record = w.hh.store.get_token("homey").await.unwrap().unwrap();
    let session = record.session.expect("a session is stored");
    assert_eq!(session.label, "Homey Pro");
    assert!(session.base_url.ends_with(&format!("/homey/{HOMEY}")));
    assert!(
        !format!("{session:?}").contains("session-"),
        "the bearer is redacted"
    );

    // A Homey error in its own envelope, readable.
    let (status, body) = w.act_json("missing_flow", json!({})).await;
    assert_eq!(
        (status, body["vendor_status"].as_u64()),
        (502, Some(404)),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("Flow Not Found"),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_session_is_renewed_once_and_an_expired_cloud_token_refreshed_once() {
    let w = world_with(None, false).await;
    assert_eq!(w.act_text("lamp_on", json!({})).await.0, 200);

    // The Homey forgot its sessions: one new login, the action still works.
    w.vendor.expire_sessions();
    assert_eq!(
        w.act_text("lamp_off", json!({})).await,
        (200, "Living lamp off".into())
    );
    assert_eq!(w.vendor.logins(), 2);
    assert_eq!(
        w.vendor.vendor.token_calls(),
        1,
        "the cloud token was still good"
    );

    // Both gone: the Homey refuses the session, the cloud refuses the token; homehook
    // refreshes the token once, redoes the chain once, and acts.
    w.clock.advance(1_800);
    w.vendor.expire_sessions();
    w.vendor.vendor.expire_access_tokens();
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Living lamp on".into())
    );
    assert_eq!(w.vendor.logins(), 3);
    assert_eq!(w.vendor.vendor.token_calls(), 2);
    assert_eq!(w.vendor.state().capabilities[LAMP]["onoff"], json!(true));

    // The OAuth token's hourly refresh keeps the session (no new login).
    w.clock.advance(3_600);
    w.hh.app.tick().await.unwrap();
    assert_eq!(w.act_text("lamp_off", json!({})).await.0, 200);
    assert_eq!(w.vendor.logins(), 3);

    // An outage of the Homey that passes is retried through.
    w.vendor.faults().fail_next(500, 1);
    assert_eq!(w.act_text("lamp_on", json!({})).await.0, 200);
}

#[tokio::test]
async fn a_session_refused_right_after_login_is_replaced_once_and_posts_are_not_repeated() {
    let w = world_with(None, false).await;
    w.vendor.forget_next_login();
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Living lamp on".into())
    );
    assert_eq!(
        w.vendor.logins(),
        2,
        "the refused new session was not sent again"
    );

    // A 502 on a flow trigger may come after the flow ran: not sent twice.
    let before = w.vendor.vendor.api_calls().len();
    w.vendor.faults().fail_next(502, 1);
    let (status, body) = w.act_json("good_night", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("vendor_unavailable"))
    );
    assert_eq!(w.vendor.vendor.api_calls().len() - before, 1);
}

#[tokio::test]
async fn concurrent_first_actions_share_one_login() {
    let w = world_with(None, false).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let client = w.client.clone();
            let url = format!("{}/a/lamp_on", w.hh.base);
            let key = w.keys.action.expose().to_string();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(w.vendor.logins(), 1);
}

#[tokio::test]
async fn an_account_with_several_homeys_must_say_which() {
    let w = world_with(None, true).await;
    let (status, body) = w.act_json("lamp_on", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("misconfigured")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("connections.homey.homey") && message.contains("homehook discover homey"),
        "{message}"
    );
    assert!(
        !message.contains(HOMEY),
        "the action answer does not list the account's Homeys"
    );
    // discover lists the Homeys to choose from.
    let found: Value = w.admin_get("/discover/homey").await.json().await.unwrap();
    assert_eq!(found["sections"][0]["items"].as_array().unwrap().len(), 2);

    let chosen = world_with(Some("Holiday Homey"), true).await;
    assert_eq!(
        chosen.act_text("lamp_on", json!({})).await,
        (200, "Living lamp on".into())
    );
    let stored = chosen
        .hh
        .app
        .services
        .store
        .get_token("homey")
        .await
        .unwrap()
        .unwrap();
    let session = stored.session.unwrap();
    assert_eq!(session.label, "Holiday Homey");
    assert!(
        session
            .base_url
            .ends_with("/homey/6a7b8c9d0e1f2a3b4c5d6e7f")
    );

    // The owner switches to the other Homey: the stored session is not reused for it.
    let config = config(&chosen.vendor.vendor.base, Some("Homey Pro"))
        .replace("{admin}", &chosen.keys.admin.hash().to_string())
        .replace("{key}", &chosen.keys.action.hash().to_string());
    let switched = Homehook::start(
        &config,
        Arc::clone(&chosen.hh.store),
        secrets_for("homey", &FakeHomey::settings()),
        chosen.clock.clone(),
    )
    .await
    .unwrap();
    let r = chosen
        .client
        .post(format!("{}/a/lamp_on", switched.base))
        .bearer_auth(chosen.keys.action.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = switched
        .app
        .services
        .store
        .get_token("homey")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.session.unwrap().label, "Homey Pro");
    assert_eq!(chosen.vendor.logins(), 2);
}

#[tokio::test]
async fn a_revoked_connection_needs_the_owner_and_discover_lists_everything() {
    let w = world_with(None, false).await;
    let found: Value = w.admin_get("/discover/homey").await.json().await.unwrap();
    let ids = |key: &str| discovered_ids(&found, key);
    assert_eq!(ids("homey"), [HOMEY]);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(ids("device_id")),
        sorted(vec![LAMP.into(), THERMOSTAT.into(), PLUG.into()])
    );
    assert_eq!(ids("flow_id"), [FLOW, ADVANCED_FLOW]);
    assert_eq!(
        sorted(ids("variable_id")),
        sorted(vec![GUESTS.into(), HEATING_OFFSET.into(), WELCOME.into()])
    );
    let listed = found.to_string();
    assert!(
        listed.contains("Study Lamp") && listed.contains("light: onoff, dim"),
        "discover shows the recorded device with its capabilities: {listed}"
    );

    w.vendor.vendor.revoke_refresh_tokens();
    w.vendor.expire_sessions();
    w.clock.advance(3_700);
    let (status, body) = w.act_json("lamp_on", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reauth_needed")),
        "{body}"
    );
    assert_eq!(
        w.connection_status("homey").await["health"],
        "reauth_needed"
    );
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_waited_for() {
    let w = world_with(None, false).await;
    assert_eq!(w.act_text("lamp_on", json!({})).await.0, 200);
    // With a live session the Homey needs no cloud token; without one the chain needs it.
    w.vendor.expire_sessions();
    token_endpoint_rate_limit_is_honoured(&w, &w.vendor.vendor, "lamp_on").await;
}

/// The devices are answers recorded from real Homeys (tests/fixtures/homey): each is spoken
/// the way its owner would hear it, and what an action changed is heard next time.
#[tokio::test]
async fn recorded_devices_are_spoken_as_their_owner_would_hear_them() {
    let w = world_with(None, false).await;
    assert_eq!(
        w.act_text("lamp_state", json!({})).await,
        (200, "Study Lamp: off, dimmed to 50 %".into())
    );
    assert_eq!(
        w.act_text("thermostat_state", json!({})).await,
        (
            200,
            "Room 1 VThermo: Idle, Target temperature 17.5 °C, Temperature 17.9 °C".into()
        ),
        "a yes/no capability in the words Homey gives it (titleFalse)"
    );
    assert_eq!(
        w.act_text("plug_state", json!({})).await,
        (
            200,
            "Room 1 Wallplug 1: Power 0 W, Power Meter 718.6 KWh, off".into()
        )
    );
    assert_eq!(
        w.act_text("thermostat", json!({"temperature": 21.5})).await,
        (200, "Thermostat set to 21.5 °C".into())
    );
    assert_eq!(
        w.act_text("thermostat_state", json!({})).await.1,
        "Room 1 VThermo: Idle, Target temperature 21.5 °C, Temperature 17.9 °C"
    );
    assert_eq!(
        w.act_text("heating_offset", json!({"value": -1.5})).await,
        (200, "Heating offset set to -1.5".into()),
        "the variable's own name when config gives none"
    );
    assert_eq!(w.vendor.state().variables[HEATING_OFFSET], json!(-1.5));
    assert_eq!(
        w.act_text("welcome", json!({"value": "Welcome home"}))
            .await,
        (200, "Welcome message set to Welcome home".into())
    );
    assert_eq!(w.vendor.state().variables[WELCOME], json!("Welcome home"));
    assert_eq!(
        w.act_text("thermostat_raw", json!({"value": 19})).await,
        (200, "Target temperature set to 19".into())
    );
    assert_eq!(
        w.vendor.state().capabilities[THERMOSTAT]["target_temperature"],
        json!(19)
    );
}

/// What Homey refuses (a read-only capability, a value past the device's range, a value of the
/// wrong type for a variable) reaches the caller in Homey's words, and nothing changes.
#[tokio::test]
async fn what_homey_refuses_is_said_and_changes_nothing() {
    let w = world_with(None, false).await;
    let before = w.vendor.state();
    for (action, value, words) in [
        ("room_temperature", json!(30), "not setable"),
        ("thermostat_raw", json!(45), "out of range"),
        ("guests_as_number", json!(3), "Invalid type"),
    ] {
        let (status, body) = w.act_json(action, json!({ "value": value })).await;
        assert_eq!(
            (status, body["vendor_status"].as_u64()),
            (502, Some(400)),
            "{action}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{action}: {body}"
        );
    }
    let after = w.vendor.state();
    assert_eq!(after.capabilities, before.capabilities);
    assert_eq!(after.variables, before.variables);
}

/// A cloud service reaches a Homey from the internet only: its relay (`remoteUrl`), else the
/// port its owner forwards (`remoteUrlForwarded`); never its LAN URLs.
#[tokio::test]
async fn a_homey_without_a_relay_url_is_reached_at_its_forwarded_port() {
    let clock = ManualClock::new(T0);
    let settings = FakeHomey::settings();
    let fake = FakeHomey::start(clock.clone(), settings.clone()).await;
    fake.set_remote_urls(
        HOMEY,
        RemoteUrls {
            remote: false,
            forwarded: true,
        },
    );
    let config = config(&fake.vendor.base, None);
    let w = World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("homey", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_eq!(w.connect("homey").await.status(), 200);
    assert_eq!(
        w.act_text("lamp_on", json!({})).await,
        (200, "Living lamp on".into())
    );
    let session =
        w.hh.store
            .get_token("homey")
            .await
            .unwrap()
            .unwrap()
            .session
            .unwrap();
    assert!(
        session
            .base_url
            .ends_with(&format!("/homey-forwarded/{HOMEY}")),
        "{}",
        session.base_url
    );

    // Neither: a clear refusal, no delegation token sent anywhere.
    w.vendor.set_remote_urls(
        HOMEY,
        RemoteUrls {
            remote: false,
            forwarded: false,
        },
    );
    w.vendor.expire_sessions();
    let delegations = w.vendor.delegations();
    let (status, body) = w.act_json("lamp_on", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no usable https remote URL"),
        "{body}"
    );
    assert_eq!(w.vendor.delegations(), delegations);
}

/// Athom's consent page gets the scopes joined with commas, as Athom's own client sends them,
/// and the fake (like Athom) accepts them.
#[tokio::test]
async fn consent_asks_for_scopes_joined_with_commas() {
    let clock = ManualClock::new(T0);
    let settings = FakeHomey::settings();
    let fake = FakeHomey::start(clock.clone(), settings.clone()).await;
    let config = config_with(
        &fake.vendor.base,
        None,
        r#"scopes = ["homey.device.control", "homey.flow.start"]"#,
    );
    let w = World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("homey", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    let authorize = w.start_connect("homey").await;
    let url = url::Url::parse(&authorize).unwrap();
    assert_eq!(url.path(), "/oauth2/authorise");
    let scope: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(scope, ["homey.device.control,homey.flow.start"]);
    assert_eq!(w.connect("homey").await.status(), 200);
    assert_eq!(w.act_text("lamp_on", json!({})).await.0, 200);
}
