//! Netatmo Connect (api.netatmo.com), which Works with Legrand shares. Authorization code with
//! scopes; refresh tokens rotate (the old one dies at once, which [`crate::refresh`] handles);
//! errors are `{"error":{"code":N,"message":…}}` (Netatmo-API-PHP `NARestErrorCode.php`): 2
//! invalid token, 3 expired token, 13 missing scope, 26 usage limit (HTTP 403), 11 internal
//! error, 21 invalid argument or device id, 31 not found. A 200 can still carry `body.errors`
//! (`[{code, id}]`): on a read the data is there and the errored modules are only unreachable
//! (code 6); on a write the modules named did not obey, except code 23 ("already on"), which
//! leaves them as asked.
//!
//! The code steps live beside this file: [`status`] (`home_status`) and [`setpoint`]
//! (`therm_mode`, and `room_setpoint` which chooses between `setroomthermpoint` and `setstate`
//! the way pyatmo does).

use serde_json::Value;

use async_trait::async_trait;

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{StepRun, Vendor, VendorEntry, Verdict, items, no_step, text};
use crate::catalog::{
    CallBudget, ClientAuth, ExpiredTokenSignal, Grant, Pkce, ProviderSpec, RefreshPolicy,
    TokenPlacement, VendorKind,
};
use crate::error::ActionError;
use crate::vendor::{VendorRequest, VendorResponse};

mod setpoint;
mod status;

#[cfg(test)]
pub(crate) use status::home_summary;

/// Netatmo's id in the registry.
pub const KIND: VendorKind = VendorKind("netatmo");

/// Code steps of Netatmo's built-in actions.
const STEPS: &[&str] = &["home_status", "room_setpoint", "therm_mode"];

/// Code 23 in `body.errors`: "Already on" (pyatmo `archive/camera_set_state_error_already_on.json`),
/// the module already is as asked.
const ALREADY_SO: i64 = 23;

/// Netatmo and Works with Legrand.
pub struct Netatmo;

/// Netatmo in the registry.
pub const ENTRY: VendorEntry = VendorEntry::new(
    KIND,
    || vec![spec(), legrand_spec()],
    include_str!("recipes.toml"),
    &Netatmo,
);

#[async_trait]
impl Vendor for Netatmo {
    fn steps(&self) -> &'static [&'static str] {
        STEPS
    }

    /// Reads Netatmo's error codes (any status) and the partial failures inside a 200.
    fn classify(&self, _endpoint: Endpoint, r: &VendorResponse) -> Option<Verdict> {
        let json = r.json.as_ref()?;
        if let Some(code) = json.pointer("/error/code").and_then(Value::as_i64) {
            let message = json.pointer("/error/message").map(text).unwrap_or_default();
            return Some(match code {
                2 | 3 => Verdict::TokenExpired,
                // 50 requests per 10 s or 500 per hour; Netatmo answers HTTP 403 (pyatmo
                // const.py, auth.py), but the code is what counts, whatever the status.
                26 => Verdict::Busy {
                    retry_after_secs: r.retry_after_secs.unwrap_or(60),
                },
                // INTERNAL_ERROR: Netatmo's side failed. Every Netatmo write sets a state
                // ("on", "away", 21 °C), so doing it twice is harmless; the vendor client
                // still sends a POST again only where the status allows it.
                11 => Verdict::Transient {
                    reason: format!("Netatmo internal error (error 11: {message})"),
                    retryable: true,
                },
                _ if r.status >= 500 => Verdict::Transient {
                    reason: format!("HTTP {}: {message}", r.status),
                    retryable: true,
                },
                _ => Verdict::Rejected {
                    status: r.status,
                    reason: Some(match code_text(code) {
                        Some(t) => format!("{t} (Netatmo error {code}: {message})"),
                        None => format!("Netatmo error {code}: {message}"),
                    }),
                },
            });
        }
        if !(200..300).contains(&r.status) {
            return None;
        }
        let failed: Vec<&Value> = items(json, "/body/errors")
            .iter()
            .filter(|e| e.get("code").and_then(Value::as_i64) != Some(ALREADY_SO))
            .collect();
        // A read that came back with data: the errored modules are unreachable, the rest of
        // the home is there (pyatmo home.py `update` uses it and raises only when nothing
        // came back). A write's answer never carries data, only the home's id.
        if failed.is_empty() || carries_data(json) {
            return None;
        }
        let described: Vec<String> = failed
            .iter()
            .map(|e| {
                let code = e.get("code").and_then(Value::as_i64).unwrap_or_default();
                let what = module_error_text(code);
                format!(
                    "module {}: {what}",
                    e.get("id").map(text).unwrap_or_default()
                )
            })
            .collect();
        Some(Verdict::Rejected {
            status: r.status,
            reason: Some(described.join("; ")),
        })
    }

    /// `home_status`, `room_setpoint` and `therm_mode`.
    async fn run_step(&self, api: &dyn VendorApi, step: &str, request: &VendorRequest) -> StepRun {
        match step {
            "home_status" => status::home_status(api, request).await,
            "room_setpoint" => setpoint::room_setpoint(api, request).await,
            "therm_mode" => setpoint::therm_mode(api, request).await,
            other => Err(no_step(api, other)),
        }
    }

    /// Homes, rooms, modules and persons (`homesdata`), and weather stations (`getstationsdata`).
    async fn discover(&self, api: &dyn VendorApi) -> Result<Vec<Section>, ActionError> {
        let data = api.get(Endpoint::Actions, "/api/homesdata", &[]).await?;
        let mut homes = Section::new("Homes", "home_id");
        let mut rooms = Section::new("Rooms", "room_id");
        let mut modules = Section::new("Modules (lights, shutters, thermostats)", "module_id");
        let mut persons = Section::new("Persons", "person_id");
        for home in items(&data, "/body/homes") {
            let home_id = home.get("id").map(text).unwrap_or_default();
            homes.push(
                &home["id"],
                &home["name"],
                format!("heating {}", text(&home["therm_mode"])),
            );
            for room in items(home, "/rooms") {
                rooms.push(&room["id"], &room["name"], format!("home_id={home_id}"));
            }
            for module in items(home, "/modules") {
                let mut detail = format!("{} home_id={home_id}", text(&module["type"]));
                if let Some(bridge) = module.get("bridge") {
                    detail.push_str(&format!(" bridge={}", text(bridge)));
                }
                modules.push(&module["id"], &module["name"], detail);
            }
            for person in items(home, "/persons") {
                persons.push(
                    &person["id"],
                    &person["pseudo"],
                    format!("home_id={home_id}"),
                );
            }
        }
        let mut sections = vec![homes, rooms, modules, persons];
        // Stations need the read_station scope; a Legrand or thermostat-only connection lacks it.
        if let Ok(stations_data) = api
            .get(Endpoint::Actions, "/api/getstationsdata", &[])
            .await
        {
            let mut stations = Section::new("Weather stations", "device_id");
            for device in items(&stations_data, "/body/devices") {
                stations.push(
                    &device["_id"],
                    &device["station_name"],
                    format!("indoor module: {}", text(&device["module_name"])),
                );
            }
            sections.push(stations);
        }
        sections.retain(|s| !s.items.is_empty());
        Ok(sections)
    }
}

/// Whether a 2xx body carries data beside its `errors`: homes, devices, or a home with more
/// than its id (what reads answer). The answer of a write carries at most `home.id`.
fn carries_data(json: &Value) -> bool {
    let Some(body) = json.get("body").and_then(Value::as_object) else {
        return false;
    };
    body.iter().any(|(key, value)| match (key.as_str(), value) {
        ("errors", _) => false,
        ("home", Value::Object(home)) => home.keys().any(|k| k != "id"),
        (_, Value::Array(list)) => !list.is_empty(),
        (_, Value::Object(map)) => !map.is_empty(),
        (_, Value::Null) => false,
        _ => true,
    })
}

fn netatmo_like(id: &str, name: &str, scopes: &[&str]) -> ProviderSpec {
    ProviderSpec {
        id: id.into(),
        display_name: name.into(),
        authorize_url: Some("https://api.netatmo.com/oauth2/authorize".into()),
        token_url: "https://api.netatmo.com/oauth2/token".into(),
        api_base: "https://api.netatmo.com".into(),
        grants: vec![Grant::AuthorizationCode],
        client_auth: ClientAuth::Form,
        default_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 403,
            pointer: Some("/error/code".into()),
            equals: Some(3.into()),
        }],
        // No client of Netatmo's sends PKCE (not its PHP SDK, not pyatmo).
        pkce: Pkce::Unverified,
        scope_separator: ' ',
        kind: KIND,
        refresh: RefreshPolicy::default(),
        // Per user: 50 requests per 10 s and 500 per hour (providers.md).
        api_budget: vec![
            CallBudget {
                max: 50,
                window_secs: 10,
            },
            CallBudget {
                max: 500,
                window_secs: 3600,
            },
        ],
    }
}

/// Netatmo: weather stations, thermostats, cameras.
pub fn spec() -> ProviderSpec {
    netatmo_like(
        "netatmo",
        "Netatmo",
        &["read_station", "read_thermostat", "write_thermostat"],
    )
}

/// Works with Legrand: lights, shutters, sockets (Home + Control), same API.
pub fn legrand_spec() -> ProviderSpec {
    netatmo_like(
        "legrand",
        "Works with Legrand",
        &["read_magellan", "write_magellan"],
    )
}

/// Netatmo's top-level error codes (`{"error":{"code":N}}`), in words: Netatmo-API-PHP
/// `src/Netatmo/Common/NARestErrorCode.php`.
fn code_text(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "access token missing",
        2 => "invalid access token",
        3 => "access token expired",
        7 => "nothing to modify",
        9 => "device not found",
        10 => "missing argument",
        11 => "Netatmo internal error",
        13 => "the connection lacks the scope this needs: reconnect it with that scope",
        21 => "invalid argument or device id (check the ids with homehook discover)",
        25 => "invalid date",
        26 => "usage limit reached",
        31 => "not found",
        35 => "unable to execute",
        _ => return None,
    })
}

/// The codes of `body.errors` entries, which name a module: 6 is an unreachable module
/// (pyatmo `home_status_error_disconnected.json`, `archive/home_status_error_and_data.json`),
/// the rest read as the top-level codes (23, a module already as asked, is never described: it
/// is left out before, as no failure).
fn module_error_text(code: i64) -> String {
    match code {
        6 => "the module is unreachable (offline, unplugged or out of radio range)".into(),
        _ => code_text(code)
            .map(str::to_string)
            .unwrap_or_else(|| format!("error {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::providers::vendor_response as response;

    /// A body pyatmo recorded from the live API (tests/fixtures/netatmo/SOURCES.md).
    fn recorded(status: u16, body: &str) -> VendorResponse {
        response(status, serde_json::from_str(body).expect("recorded JSON"))
    }

    fn rejected_reason(verdict: Option<Verdict>) -> String {
        match verdict {
            Some(Verdict::Rejected {
                reason: Some(r), ..
            }) => r,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn reads_error_codes_and_partial_failures() {
        let expired = response(
            403,
            json!({"error": {"code": 3, "message": "Access token expired"}}),
        );
        assert_eq!(
            Netatmo.classify(Endpoint::Actions, &expired),
            Some(Verdict::TokenExpired)
        );
        // Throttling is HTTP 403 with code 26 (pyatmo const.py, auth.py); any status counts.
        for status in [403, 429] {
            let busy = response(
                status,
                json!({"error": {"code": 26, "message": "User usage reached"}}),
            );
            assert_eq!(
                Netatmo.classify(Endpoint::Actions, &busy),
                Some(Verdict::Busy {
                    retry_after_secs: 60
                })
            );
        }
        // A write's answer: a module that did not obey.
        let partial = response(
            200,
            json!({"status": "ok", "body": {"home": {"id": "h1"}, "errors": [{"code": 6, "id": "12:34"}]}}),
        );
        let reason = rejected_reason(Netatmo.classify(Endpoint::Actions, &partial));
        assert!(
            reason.contains("12:34") && reason.contains("unreachable"),
            "{reason}"
        );
        assert_eq!(
            Netatmo.classify(Endpoint::Actions, &response(200, json!({"status": "ok"}))),
            None
        );
    }

    #[test]
    fn code_11_is_an_internal_error_and_31_is_not_found() {
        let internal = response(
            500,
            json!({"error": {"code": 11, "message": "Internal error"}}),
        );
        match Netatmo.classify(Endpoint::Actions, &internal) {
            Some(Verdict::Transient { reason, retryable }) => {
                assert!(retryable && reason.contains("internal error"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let not_found = response(404, json!({"error": {"code": 31, "message": "Not found"}}));
        let reason = rejected_reason(Netatmo.classify(Endpoint::Actions, &not_found));
        assert!(
            reason.starts_with("not found") && !reason.contains("unreachable"),
            "{reason}"
        );
    }

    #[test]
    fn recorded_error_bodies_read_as_the_vendor_means_them() {
        let device = recorded(
            400,
            include_str!("../../../../../tests/fixtures/netatmo/camera_set_state_error.json"),
        );
        let reason = rejected_reason(Netatmo.classify(Endpoint::Actions, &device));
        assert!(
            reason.contains("invalid argument or device id")
                && reason.contains("12:34:56:00:f1:ff"),
            "{reason}"
        );
        let scope = recorded(
            403,
            include_str!("../../../../../tests/fixtures/netatmo/error_scope.json"),
        );
        assert!(rejected_reason(Netatmo.classify(Endpoint::Actions, &scope)).contains("scope"));
    }

    #[test]
    fn a_read_with_data_and_errors_is_the_data() {
        // pyatmo home.py `update`: the home is there, the errored module is only unreachable.
        let status = recorded(
            200,
            include_str!("../../../../../tests/fixtures/netatmo/home_status_error_and_data.json"),
        );
        assert_eq!(Netatmo.classify(Endpoint::Actions, &status), None);
        // The home's id and nothing else came back: nothing is reachable, which is a failure.
        let nothing = recorded(
            200,
            include_str!(
                "../../../../../tests/fixtures/netatmo/home_status_error_disconnected.json"
            ),
        );
        let reason = rejected_reason(Netatmo.classify(Endpoint::Actions, &nothing));
        assert!(
            reason.contains("12:34:56:00:fa:d0") && reason.contains("unreachable"),
            "{reason}"
        );
        // Reads of stations and homes with errors beside their data.
        for data in [
            json!({"status": "ok", "body": {"devices": [{"_id": "s"}], "errors": [{"code": 6, "id": "m"}]}}),
            json!({"status": "ok", "body": {"homes": [{"id": "h"}], "errors": [{"code": 6, "id": "m"}]}}),
        ] {
            assert_eq!(
                Netatmo.classify(Endpoint::Actions, &response(200, data)),
                None
            );
        }
    }

    #[test]
    fn already_on_is_not_a_failure_but_its_neighbours_are() {
        let already = recorded(
            200,
            include_str!(
                "../../../../../tests/fixtures/netatmo/camera_set_state_error_already_on.json"
            ),
        );
        assert_eq!(Netatmo.classify(Endpoint::Actions, &already), None);
        let mixed = response(
            200,
            json!({"status": "ok", "body": {"home": {"id": "h"}, "errors": [
                {"code": 23, "id": "m1"}, {"code": 21, "id": "m2"}]}}),
        );
        let reason = rejected_reason(Netatmo.classify(Endpoint::Actions, &mixed));
        assert!(reason.contains("m2") && !reason.contains("m1"), "{reason}");
    }

    #[test]
    fn sums_a_home_up_with_the_names_from_homesdata() {
        let home = json!({"id": "h1", "name": "Home", "therm_mode": "schedule",
            "rooms": [{"id": "r1", "name": "Living room"}],
            "persons": [{"id": "p1", "pseudo": "Alice"}, {"id": "p2", "pseudo": "Bob"}]});
        let status = json!({"body": {"home": {"rooms": [
            {"id": "r1", "therm_measured_temperature": 20.5, "therm_setpoint_temperature": 21},
            {"id": "r2", "reachable": false}],
            "persons": [{"id": "p1", "out_of_sight": false}, {"id": "p2", "out_of_sight": true}]}}});
        assert_eq!(
            home_summary(&home, &status),
            json!({"id": "h1", "name": "Home", "therm_mode": "schedule",
                "rooms": [{"id": "r1", "name": "Living room", "temperature": 20.5, "setpoint": 21, "setpoint_mode": null}],
                "persons": [{"id": "p1", "name": "Alice", "home": true}, {"id": "p2", "name": "Bob", "home": false}],
                "at_home": ["Alice"], "offline": []})
        );
    }

    #[test]
    fn a_recorded_home_with_an_offline_module_is_summed_up() {
        let data: Value = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/netatmo/homesdata.json"
        ))
        .expect("homesdata");
        let status: Value = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/netatmo/home_status_error_and_data.json"
        ))
        .expect("homestatus");
        let summary = home_summary(&data["body"]["homes"][0], &status);
        // The errored module is the Hall camera; the rooms' readings are all there.
        assert_eq!(summary["offline"], json!(["Hall"]));
        assert_eq!(summary["rooms"][0]["name"], "Livingroom");
        assert_eq!(summary["rooms"][0]["temperature"], 19.8);
        assert_eq!(summary["at_home"], json!(["Jane Doe"]));
        // A valve that drops out leaves its room without a reading, named.
        let mut lost = status.clone();
        lost["body"]["errors"] = json!([{"code": 6, "id": "12:34:56:03:a5:54"}]);
        if let Some(rooms) = lost["body"]["home"]["rooms"].as_array_mut() {
            for room in rooms.iter_mut().filter(|r| r["id"] == "2833524037") {
                room["reachable"] = json!(false);
                if let Some(r) = room.as_object_mut() {
                    r.remove("therm_measured_temperature");
                }
            }
        }
        let summary = home_summary(&data["body"]["homes"][0], &lost);
        let entrada = summary["rooms"]
            .as_array()
            .and_then(|rooms| rooms.iter().find(|r| r["name"] == "Entrada"))
            .cloned();
        assert_eq!(entrada.map(|r| r["temperature"].clone()), Some(Value::Null));
        assert_eq!(summary["offline"], json!(["Valve1"]));
    }
}
