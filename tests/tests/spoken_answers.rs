//! What an iPhone Shortcut speaks: the `text/plain` body of `POST /a/<action>`, rendered from
//! the action's answer template against what the (fake) vendor answered. Built-in defaults,
//! a config `answer` with a conditional, an override of a built-in's default, and a template
//! that fails at run time (the caller still hears "OK", never a 500).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::MemoryStore;
use homehook_tests::fakes::netatmo::{FakeNetatmo, HOME, LIVING, STATION};
use homehook_tests::fakes::somfy::{FakeSomfy, SITE};
use homehook_tests::harness::{T0, World, secrets_for};
use serde_json::json;

/// The text a Shortcut's "Get contents of URL" receives, and that it is plain text.
async fn spoken<V>(w: &World<V>, action: &str, body: serde_json::Value) -> String {
    let r = w
        .client
        .post(format!("{}/a/{action}", w.hh.base))
        .bearer_auth(w.keys.action.expose())
        .json(&body)
        .send()
        .await
        .expect("action");
    assert_eq!(r.status(), 200, "{action}");
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; charset=utf-8",
        "{action}"
    );
    r.text().await.expect("text")
}

async fn netatmo() -> World<FakeNetatmo> {
    let clock = ManualClock::new(T0);
    let settings = FakeNetatmo::settings();
    let fake = FakeNetatmo::start(clock.clone(), settings.clone()).await;
    let vendor = &fake.vendor.base;
    let config = format!(
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
label = "Maison"
secret = "netatmo"

# Built-ins with their spoken defaults.
[actions.station]
connection = "home"
builtin = "station"
with = {{ device_id = "{STATION}" }}
key_hash = "{{key}}"

[actions.living]
connection = "home"
builtin = "room_setpoint"
with = {{ home_id = "{HOME}", room_id = "{LIVING}", name = "Living room" }}
key_hash = "{{key}}"

[actions.home_status]
connection = "home"
builtin = "home_status"
with = {{ home_id = "{HOME}" }}
key_hash = "{{key}}"

# A request of one's own, with a conditional answer reading the vendor's JSON.
[actions.comfort]
connection = "home"
method = "GET"
path = "/api/getstationsdata"
params.threshold = {{ type = "number", default = 19 }}
answer = """
{{% set inside = data.body.devices[0] %}}
{{{{ inside.module_name }}}} {{{{ inside.dashboard_data.Temperature | round(1) }}}} °C:
{{%- if inside.dashboard_data.Temperature < threshold %}} put a sweater on
{{%- else %}} comfortable
{{%- endif %}}, says {{{{ connection }}}}"""
key_hash = "{{key}}"

# A built-in's default replaced, with a conditional on who is home.
[actions.who]
connection = "home"
builtin = "home_status"
with = {{ home_id = "{HOME}" }}
answer = "{{% if data.at_home %}}{{{{ data.at_home | join(' and ') }}}} at home{{% else %}}The house is empty{{% endif %}}"
key_hash = "{{key}}"

# Valid when config loads, failing on the vendor's real answer: the caller still hears OK.
[actions.broken]
connection = "home"
method = "GET"
path = "/api/getstationsdata"
answer = "{{{{ data.body.devices[0].dashboard_data.Temperature | join(', ') }}}}"
key_hash = "{{key}}"
"#
    );
    let w = World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("netatmo", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    w
}

#[tokio::test]
async fn netatmo_answers_read_well_aloud() {
    let w = netatmo().await;
    assert_eq!(
        spoken(&w, "station", json!({})).await,
        "Palier 21.1 °C, humidity 45 %, CO2 1339 ppm. Outdoor: no reading. Rain: no reading. Bedroom 19.3 °C, humidity 53 %, CO2 1076 ppm. Bathroom 19.4 °C, humidity 55 %, CO2 1930 ppm. Garden: no reading."
    );
    assert_eq!(
        spoken(&w, "living", json!({"temp": 21})).await,
        "Living room set to 21 °C"
    );
    assert_eq!(
        spoken(&w, "home_status", json!({})).await,
        "MYHOME: heating on schedule. Livingroom 19.8 °C, set to 21 °C. Cocina 27 °C, set to 7 °C. Entrada 24.5 °C, set to 7 °C. Corridor 22 °C, set to 22 °C. Jane Doe is home."
    );

    // The config's own answer, both branches of its conditional, with the connection's label.
    assert_eq!(
        spoken(&w, "comfort", json!({})).await,
        "NetatmoIndoor 24.6 °C: comfortable, says Maison"
    );
    assert_eq!(
        spoken(&w, "comfort", json!({"threshold": 25})).await,
        "NetatmoIndoor 24.6 °C: put a sweater on, says Maison"
    );

    // A built-in's default replaced in config: the code step's structured data.
    assert_eq!(spoken(&w, "who", json!({})).await, "Jane Doe at home");

    // JSON callers get the same answer, with the data the template read.
    let (status, body) = w.act_json("home_status", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["answer"], spoken(&w, "home_status", json!({})).await);
    assert_eq!(body["data"]["rooms"][0]["name"], "Livingroom");
    assert_eq!(body["data"]["at_home"], json!(["Jane Doe"]));

    // A template that fails on the vendor's answer: 200 "OK", never a 500 or the vendor's data.
    assert_eq!(spoken(&w, "broken", json!({})).await, "OK");
}

async fn somfy() -> World<FakeSomfy> {
    let clock = ManualClock::new(T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let config = format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.somfy_protect]
token_url = "{token}/oauth/oauth/v2/token/jwt"
api_base = "{api}"

[connections.alarm]
provider = "somfy_protect"
label = "Maison"
secret = "somfy"

[actions.armed]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.partial]
connection = "alarm"
builtin = "partial"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.status]
connection = "alarm"
builtin = "status"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"
"#,
        token = fake.vendor.base,
        api = fake.api_base(),
    );
    World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("somfy", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await
}

#[tokio::test]
async fn the_alarm_says_what_it_did_and_how_it_is() {
    let w = somfy().await;
    assert_eq!(spoken(&w, "armed", json!({})).await, "Alarm armed");
    assert_eq!(spoken(&w, "status", json!({})).await, "The alarm is armed");
    assert_eq!(
        spoken(&w, "partial", json!({})).await,
        "Alarm partially armed"
    );
    assert_eq!(
        spoken(&w, "status", json!({})).await,
        "The alarm is partially armed"
    );
}
