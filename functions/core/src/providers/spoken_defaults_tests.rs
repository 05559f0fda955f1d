//! The default answer of every built-in action, rendered against what the vendor really
//! answers, must be the sentence a phone should speak. A built-in without a case here fails
//! [`every_builtin_action_says_a_sentence`]: a new built-in comes with its spoken answer.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::recipes;
use crate::config::Config;
use crate::providers::{homey, myfox, netatmo, somfy_protect};

const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// One built-in, set up with `with`, called with `params`, the vendor answering `data`.
struct Case {
    builtin: &'static str,
    with: Value,
    params: Value,
    data: Option<Value>,
    says: &'static str,
}

fn case(
    builtin: &'static str,
    with: Value,
    params: Value,
    data: Option<Value>,
    says: &'static str,
) -> Case {
    Case {
        builtin,
        with,
        params,
        data,
        says,
    }
}

/// A JSON object as a TOML inline table (strings and numbers are written alike).
fn inline_table(object: &Value) -> String {
    let pairs: Vec<String> = object
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// Renders the case's answer as `POST /a/...` would.
fn spoken(provider: &str, c: &Case) -> String {
    let toml = format!(
        "[connections.c]\nprovider = \"{provider}\"\nlabel = \"Home\"\n[actions.a]\nconnection = \"c\"\nbuiltin = \"{}\"\nwith = {}\nkey_hash = \"{HASH}\"\n",
        c.builtin,
        inline_table(&c.with)
    );
    let config = Config::parse(&toml, "t.toml", None)
        .unwrap_or_else(|e| panic!("{provider}.{}: {e}", c.builtin));
    let action = &config.actions["a"];
    let provided: BTreeMap<String, Value> = c
        .params
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let params = crate::params::check(
        &action.params,
        provided,
        crate::clock::UnixTime(1_700_000_000),
    )
    .unwrap_or_else(|e| panic!("{provider}.{}: {e}", c.builtin));
    crate::action::render_answer(action, "Home", &params, c.data.as_ref())
}

fn netatmo_ok() -> Option<Value> {
    Some(json!({"status": "ok", "time_exec": 0.021, "time_server": 1_700_000_000}))
}

fn somfy_job() -> Option<Value> {
    Some(json!({"job_id": "5a1b2c3d-job", "site_id": "site-1", "state": "pending"}))
}

fn myfox_ok() -> Option<Value> {
    Some(json!({"status": "OK", "timestamp": 1_700_000_000, "payload": {"request": "OK"}}))
}

fn station() -> Value {
    json!({"status": "ok", "time_server": 1_700_000_000, "body": {"devices": [{
        "_id": "70:ee:50:00:00:01", "station_name": "Home (Indoor)", "module_name": "Living room",
        "type": "NAMain", "reachable": true,
        "dashboard_data": {"time_utc": 1_700_000_000_i64, "Temperature": 21.43, "CO2": 612,
            "Humidity": 45, "Noise": 38, "Pressure": 1013.2, "temp_trend": "stable"},
        "modules": [
            {"_id": "02:00:00:00:00:01", "module_name": "Garden", "type": "NAModule1",
             "dashboard_data": {"Temperature": 7.5, "Humidity": 81}},
            {"_id": "05:00:00:00:00:01", "module_name": "Rain gauge", "type": "NAModule3",
             "dashboard_data": {"Rain": 0.0, "sum_rain_24": 1.2}}]
    }], "user": {"mail": "owner@example.com"}}})
}

fn home_status(persons_home: [bool; 2]) -> Value {
    let home = json!({"id": "h1", "name": "Maison", "therm_mode": "schedule",
        "rooms": [{"id": "r1", "name": "Living room"}, {"id": "r2", "name": "Bedroom"}, {"id": "r3", "name": "Hall"}],
        "persons": [{"id": "p1", "pseudo": "Alice"}, {"id": "p2", "pseudo": "Bob"}]});
    let status = json!({"status": "ok", "body": {"home": {"id": "h1",
        "rooms": [
            {"id": "r1", "reachable": true, "therm_measured_temperature": 20.5,
             "therm_setpoint_temperature": 21, "therm_setpoint_mode": "schedule"},
            {"id": "r2", "reachable": true, "therm_measured_temperature": 18.25,
             "therm_setpoint_temperature": 17.5, "therm_setpoint_mode": "manual"},
            {"id": "r3", "reachable": false}],
        "persons": [{"id": "p1", "out_of_sight": !persons_home[0]}, {"id": "p2", "out_of_sight": !persons_home[1]}]}}});
    netatmo::home_summary(&home, &status)
}

fn homey_lamp() -> Value {
    homey::device_summary(
        &json!({"id": "d1", "name": "Living room lamp", "class": "light",
        "capabilities": ["onoff", "dim", "measure_power", "alarm_generic", "button"],
        "capabilitiesObj": {
            "onoff": {"id": "onoff", "value": true, "title": "Turned on", "units": null},
            "dim": {"id": "dim", "value": 0.4, "title": "Dim level", "units": null},
            "measure_power": {"id": "measure_power", "value": 7.25, "title": "Power", "units": "W"},
            "alarm_generic": {"id": "alarm_generic", "value": false, "title": "Alarm", "units": null},
            "button": {"id": "button", "value": null, "title": "Button"}}}),
    )
}

fn netatmo_cases() -> Vec<Case> {
    let home = json!({"home_id": "h1"});
    let room = json!({"home_id": "h1", "room_id": "r1", "name": "Living room"});
    let light =
        json!({"home_id": "h1", "module_id": "m1", "bridge": "b1", "name": "Kitchen light"});
    let shutter = json!({"home_id": "h1", "module_id": "m2", "name": "Bay window"});
    vec![
        case(
            "therm_mode",
            home.clone(),
            json!({"mode": "away", "minutes": 60}),
            netatmo_ok(),
            "Heating set to away",
        ),
        case(
            "therm_mode",
            home.clone(),
            json!({"mode": "hg"}),
            netatmo_ok(),
            "Heating set to frost guard",
        ),
        case(
            "therm_mode",
            home.clone(),
            json!({"mode": "schedule"}),
            netatmo_ok(),
            "Heating back on schedule",
        ),
        case(
            "room_setpoint",
            room.clone(),
            json!({"temp": 21}),
            netatmo_ok(),
            "Living room set to 21 °C",
        ),
        case(
            "room_setpoint",
            json!({"home_id": "h1", "room_id": "r1"}),
            json!({"temp": 19.5}),
            netatmo_ok(),
            "Room set to 19.5 °C",
        ),
        case(
            "room_schedule",
            room,
            json!({}),
            netatmo_ok(),
            "Living room back on schedule",
        ),
        case(
            "light_on",
            light.clone(),
            json!({}),
            netatmo_ok(),
            "Kitchen light on",
        ),
        case(
            "light_on",
            json!({"home_id": "h1", "module_id": "m1"}),
            json!({}),
            netatmo_ok(),
            "Light on",
        ),
        case(
            "light_off",
            light.clone(),
            json!({}),
            netatmo_ok(),
            "Kitchen light off",
        ),
        case(
            "light_brightness",
            light,
            json!({"brightness": 40}),
            netatmo_ok(),
            "Kitchen light at 40 %",
        ),
        case(
            "shutter_position",
            shutter.clone(),
            json!({"position": 30}),
            netatmo_ok(),
            "Bay window 30 % open",
        ),
        case(
            "shutter_position",
            shutter.clone(),
            json!({"position": 0}),
            netatmo_ok(),
            "Bay window closed",
        ),
        case(
            "shutter_position",
            shutter.clone(),
            json!({"position": 100}),
            netatmo_ok(),
            "Bay window open",
        ),
        case(
            "shutter_open",
            shutter.clone(),
            json!({}),
            netatmo_ok(),
            "Bay window opening",
        ),
        case(
            "shutter_close",
            shutter,
            json!({}),
            netatmo_ok(),
            "Bay window closing",
        ),
        case(
            "persons_away",
            home.clone(),
            json!({}),
            netatmo_ok(),
            "Everybody marked away",
        ),
        case(
            "persons_away",
            home.clone(),
            json!({"person_id": "p1"}),
            netatmo_ok(),
            "Marked away",
        ),
        case(
            "persons_home",
            home.clone(),
            json!({"person_id": "p1"}),
            netatmo_ok(),
            "Welcome home",
        ),
        case(
            "station",
            json!({"device_id": "70:ee:50:00:00:01"}),
            json!({}),
            Some(station()),
            "Living room 21.4 °C, humidity 45 %, CO2 612 ppm. Garden 7.5 °C, humidity 81 %. Rain gauge: no reading.",
        ),
        case(
            "home_status",
            home.clone(),
            json!({}),
            Some(home_status([true, false])),
            "Maison: heating on schedule. Living room 20.5 °C, set to 21 °C. Bedroom 18.3 °C, set to 17.5 °C. Alice is home.",
        ),
        case(
            "home_status",
            home.clone(),
            json!({}),
            Some(home_status([true, true])),
            "Maison: heating on schedule. Living room 20.5 °C, set to 21 °C. Bedroom 18.3 °C, set to 17.5 °C. Alice and Bob are home.",
        ),
        case(
            "home_status",
            home,
            json!({}),
            Some(home_status([false, false])),
            "Maison: heating on schedule. Living room 20.5 °C, set to 21 °C. Bedroom 18.3 °C, set to 17.5 °C. Nobody is home.",
        ),
    ]
}

fn somfy_cases() -> Vec<Case> {
    let site = json!({"site_id": "site-1"});
    let siren = json!({"site_id": "site-1", "siren_id": "dev-1", "siren_label": "Indoor siren"});
    let status = |level: &str| {
        Some(
            json!({"site_id": "site-1", "label": "Maison", "brand": "myfox",
            "security_level": level, "alarm": {"status": "none"}, "exit_delay": 30}),
        )
    };
    vec![
        case("armed", site.clone(), json!({}), somfy_job(), "Alarm armed"),
        case(
            "partial",
            site.clone(),
            json!({}),
            somfy_job(),
            "Alarm partially armed",
        ),
        case(
            "disarmed",
            site.clone(),
            json!({}),
            somfy_job(),
            "Alarm disarmed",
        ),
        case(
            "notif_on",
            siren.clone(),
            json!({}),
            somfy_job(),
            "Siren sound on",
        ),
        case(
            "notif_off",
            siren,
            json!({}),
            somfy_job(),
            "Siren sound off",
        ),
        case(
            "status",
            site.clone(),
            json!({}),
            status("armed"),
            "The alarm is armed",
        ),
        case(
            "status",
            site.clone(),
            json!({}),
            status("partial"),
            "The alarm is partially armed",
        ),
        case(
            "status",
            site.clone(),
            json!({}),
            status("disarmed"),
            "The alarm is disarmed",
        ),
        case(
            "status",
            site,
            json!({}),
            Some(json!({"label": "Maison"})),
            "The alarm is in an unknown state",
        ),
    ]
}

fn myfox_cases() -> Vec<Case> {
    let site = json!({"site_id": "1234"});
    let device = |name: &str| json!({"site_id": "1234", "device_id": "56", "name": name});
    let status = |value: i64, label: &str| {
        Some(
            json!({"status": "OK", "timestamp": 1_700_000_000, "payload": {"statusValue": value, "statusLabel": label}}),
        )
    };
    vec![
        case("armed", site.clone(), json!({}), myfox_ok(), "Alarm armed"),
        case(
            "partial",
            site.clone(),
            json!({}),
            myfox_ok(),
            "Alarm partially armed",
        ),
        case(
            "disarmed",
            site.clone(),
            json!({}),
            myfox_ok(),
            "Alarm disarmed",
        ),
        case(
            "status",
            site.clone(),
            json!({}),
            status(4, "armed"),
            "The alarm is armed",
        ),
        case(
            "status",
            site.clone(),
            json!({}),
            status(2, "partial"),
            "The alarm is partially armed",
        ),
        case(
            "status",
            site,
            json!({}),
            status(1, "disarmed"),
            "The alarm is disarmed",
        ),
        case(
            "scenario_play",
            json!({"site_id": "1234", "scenario_id": "9", "name": "Good night"}),
            json!({}),
            myfox_ok(),
            "Good night started",
        ),
        case(
            "scenario_play",
            json!({"site_id": "1234", "scenario_id": "9"}),
            json!({}),
            myfox_ok(),
            "Scenario started",
        ),
        case(
            "socket_on",
            device("Lamp socket"),
            json!({}),
            myfox_ok(),
            "Lamp socket on",
        ),
        case(
            "socket_off",
            device("Lamp socket"),
            json!({}),
            myfox_ok(),
            "Lamp socket off",
        ),
        case(
            "shutter_open",
            device("Kitchen shutter"),
            json!({}),
            myfox_ok(),
            "Kitchen shutter opening",
        ),
        case(
            "shutter_close",
            device("Kitchen shutter"),
            json!({}),
            myfox_ok(),
            "Kitchen shutter closing",
        ),
        case(
            "gate",
            device("Front gate"),
            json!({}),
            myfox_ok(),
            "Front gate: command one sent",
        ),
        case(
            "gate",
            device("Front gate"),
            json!({"command": "two"}),
            myfox_ok(),
            "Front gate: command two sent",
        ),
        case(
            "heater",
            device("Bathroom heater"),
            json!({"mode": "eco"}),
            myfox_ok(),
            "Bathroom heater set to eco",
        ),
        case(
            "heater",
            device("Bathroom heater"),
            json!({"mode": "on"}),
            myfox_ok(),
            "Bathroom heater on",
        ),
        case(
            "heater",
            device("Bathroom heater"),
            json!({"mode": "frost"}),
            myfox_ok(),
            "Bathroom heater set to frost protection",
        ),
        case(
            "heater",
            json!({"site_id": "1234", "device_id": "56"}),
            json!({"mode": "thermostatoff"}),
            myfox_ok(),
            "Heater thermostat off",
        ),
    ]
}

fn homey_cases() -> Vec<Case> {
    let lamp = json!({"device_id": "d1", "name": "Living room lamp"});
    let variable = |value: Value| {
        Some(json!({"id": "v1", "name": "Guests", "type": "boolean", "value": value}))
    };
    vec![
        case(
            "device_on",
            lamp.clone(),
            json!({}),
            None,
            "Living room lamp on",
        ),
        case(
            "device_on",
            json!({"device_id": "d1"}),
            json!({}),
            None,
            "Switched on",
        ),
        case(
            "device_off",
            lamp.clone(),
            json!({}),
            None,
            "Living room lamp off",
        ),
        case(
            "device_dim",
            lamp.clone(),
            json!({"level": 0.4}),
            None,
            "Living room lamp dimmed to 40 %",
        ),
        case(
            "device_dim",
            json!({"device_id": "d1"}),
            json!({"level": 0.07}),
            None,
            "Dimmed to 7 %",
        ),
        case(
            "device_temperature",
            json!({"device_id": "d2", "name": "Hall thermostat"}),
            json!({"temperature": 21.5}),
            None,
            "Hall thermostat set to 21.5 °C",
        ),
        case(
            "device_capability",
            json!({"device_id": "d3", "capability": "volume_set", "name": "Kitchen speaker"}),
            json!({"value": 0.5}),
            None,
            "Kitchen speaker volume set to 0.5",
        ),
        case(
            "device_capability",
            json!({"device_id": "d3", "capability": "target_temperature"}),
            json!({"value": 19}),
            None,
            "Target temperature set to 19",
        ),
        case(
            "device_state",
            json!({"device_id": "d1"}),
            json!({}),
            Some(homey_lamp()),
            "Living room lamp: on, dimmed to 40 %, Power 7.3 W, Alarm no",
        ),
        case(
            "flow",
            json!({"flow_id": "f1", "name": "Good night"}),
            json!({}),
            None,
            "Good night started",
        ),
        case(
            "flow",
            json!({"flow_id": "f1"}),
            json!({}),
            None,
            "Flow started",
        ),
        case(
            "advanced_flow",
            json!({"flow_id": "f2", "name": "Away mode"}),
            json!({}),
            None,
            "Away mode started",
        ),
        case(
            "variable_number",
            json!({"variable_id": "v2"}),
            json!({"value": 3}),
            Some(json!({"id": "v2", "name": "Guests", "type": "number", "value": 3})),
            "Guests set to 3",
        ),
        case(
            "variable_boolean",
            json!({"variable_id": "v1"}),
            json!({"value": true}),
            variable(json!(true)),
            "Guests set to yes",
        ),
        case(
            "variable_text",
            json!({"variable_id": "v3", "name": "Message"}),
            json!({"value": "back at six"}),
            None,
            "Message set to back at six",
        ),
    ]
}

#[test]
fn every_builtin_action_says_a_sentence() {
    for (provider, kind, cases) in [
        ("netatmo", netatmo::KIND, netatmo_cases()),
        ("somfy_protect", somfy_protect::KIND, somfy_cases()),
        ("myfox", myfox::KIND, myfox_cases()),
        ("homey", homey::KIND, homey_cases()),
    ] {
        let mut covered = BTreeSet::new();
        for c in &cases {
            assert_eq!(spoken(provider, c), c.says, "{provider}.{}", c.builtin);
            covered.insert(c.builtin);
        }
        for (name, recipe) in recipes(kind).expect("recipes") {
            assert!(
                recipe.answer.is_some(),
                "{provider}.{name} has no default answer: it would only say OK"
            );
            assert!(
                covered.contains(name.as_str()),
                "{provider}.{name}: add a case with its spoken answer here"
            );
        }
    }
}

/// A user's `answer` replaces a built-in's default, code steps included.
#[test]
fn config_overrides_a_builtin_answer() {
    let toml = format!(
        "[connections.c]\nprovider = \"netatmo\"\nlabel = \"Cottage\"\n[actions.a]\nconnection = \"c\"\nbuiltin = \"home_status\"\nwith = {{ home_id = \"h1\" }}\nkey_hash = \"{HASH}\"\n\
         answer = \"{{{{ connection }}}}: {{% for r in data.rooms %}}{{{{ r.name }}}} {{{{ r.temperature | round }}}}{{{{ ', ' if not loop.last }}}}{{% endfor %}}\"\n"
    );
    let config = Config::parse(&toml, "t.toml", None).expect("config");
    let params = crate::params::check(
        &config.actions["a"].params,
        BTreeMap::new(),
        crate::clock::UnixTime(0),
    )
    .expect("params");
    assert_eq!(
        crate::action::render_answer(
            &config.actions["a"],
            "Cottage",
            &params,
            Some(&home_status([true, true]))
        ),
        "Cottage: Living room 21, Bedroom 18"
    );
}

/// The answers homehook.example.toml shows say what its comments promise.
#[test]
fn the_example_config_answers_read_well() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../homehook.example.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let say = |action: &str, params: Value, data: Option<Value>| {
        let params = crate::params::check(
            &config.actions[action].params,
            params
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            crate::clock::UnixTime(0),
        )
        .expect("params");
        crate::action::render_answer(&config.actions[action], "Home", &params, data.as_ref())
    };
    assert_eq!(
        say("heating_away", json!({}), netatmo_ok()),
        "Heating set to away"
    );
    assert_eq!(
        say("temperature", json!({}), Some(station())),
        "Living room 21.4 °C"
    );
    let cold = json!({"body": {"devices": [{"dashboard_data": {"Temperature": 16.04}}]}});
    assert_eq!(
        say("temperature", json!({}), Some(cold)),
        "Living room 16 °C, a bit cold"
    );
    assert_eq!(
        say(
            "temperature",
            json!({}),
            Some(json!({"body": {"devices": []}}))
        ),
        "The station has no reading"
    );
    assert_eq!(
        say("living_room", json!({"temp": 21}), netatmo_ok()),
        "Living room set to 21 °C"
    );
    assert_eq!(
        say("home_status", json!({}), Some(home_status([false, false]))),
        "Living room 20.5 °C, Bedroom 18.3 °C. Nobody is home."
    );
    assert_eq!(
        say("home_status", json!({}), Some(home_status([true, false]))),
        "Living room 20.5 °C, Bedroom 18.3 °C"
    );
}

/// Every one-line `answer = "..."` the README and the vendor pages show compiles.
#[test]
fn the_documented_answer_examples_compile() {
    let pages = [
        include_str!("../../../../README.md"),
        include_str!("../../../../docs/providers/netatmo.md"),
        include_str!("../../../../docs/providers/somfy-protect.md"),
        include_str!("../../../../docs/providers/myfox.md"),
        include_str!("../../../../docs/providers/homey.md"),
    ];
    let mut seen = 0;
    for page in pages {
        for (start, _) in page.match_indices("answer = \"") {
            let rest = &page[start + "answer = \"".len()..];
            if rest.starts_with("\"\"") {
                continue; // a multi-line example: homehook.example.toml's, tested above
            }
            let Some(end) = rest.find('"') else { continue };
            let source = &rest[..end];
            crate::answer::AnswerTemplate::compile(source, ["mode"])
                .unwrap_or_else(|e| panic!("{source}: {e}"));
            seen += 1;
        }
    }
    assert!(seen >= 5, "{seen} examples");
}
