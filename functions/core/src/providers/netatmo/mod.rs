//! Netatmo Connect (api.netatmo.com), which Works with Legrand shares. Authorization code with
//! scopes; refresh tokens rotate (the old one dies at once, which [`crate::refresh`] handles);
//! errors are `{"error":{"code":N,"message":…}}`: 3 expired token, 2 invalid token, 13 missing
//! scope, 26 usage limit, 11 concurrency limit; a 200 can still carry `body.errors` for the
//! modules that did not obey.

use serde_json::{Value, json};

use async_trait::async_trait;

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{StepResult, StepRun, Vendor, VendorEntry, Verdict, items, text};
use crate::catalog::{
    Pkce,
    CallBudget, ClientAuth, ExpiredTokenSignal, Grant, ProviderSpec, RefreshPolicy, TokenPlacement,
    VendorKind,
};
use crate::error::ActionError;
use crate::vendor::{VendorRequest, VendorResponse};

/// Netatmo's id in the registry.
pub const KIND: VendorKind = VendorKind("netatmo");

/// Code steps of Netatmo's built-in actions.
const STEPS: &[&str] = &["home_status"];

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
                // 26: 50 requests per 10 s or 500 per hour; 11: too many at once.
                26 | 11 => Verdict::Busy {
                    retry_after_secs: r.retry_after_secs.unwrap_or(if code == 11 {
                        10
                    } else {
                        60
                    }),
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
        let errors = items(json, "/body/errors");
        if (200..300).contains(&r.status) && !errors.is_empty() {
            let described: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(Value::as_i64).unwrap_or_default();
                    let what = code_text(code)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("error {code}"));
                    format!(
                        "module {}: {what}",
                        e.get("id").map(text).unwrap_or_default()
                    )
                })
                .collect();
            return Some(Verdict::Rejected {
                status: r.status,
                reason: Some(described.join("; ")),
            });
        }
        None
    }

    /// `home_status`, the one step.
    async fn run_step(&self, api: &dyn VendorApi, _: &str, request: &VendorRequest) -> StepRun {
        home_status(api, request).await
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

/// Netatmo's error codes, in words.
fn code_text(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "access token missing",
        2 => "invalid access token",
        3 => "access token expired",
        9 => "device not found",
        10 => "missing argument",
        13 => "the connection lacks the scope this needs: reconnect it with that scope",
        21 => "invalid argument",
        25 => "invalid date",
        26 => "usage limit reached",
        31 => "the device is unreachable",
        _ => return None,
    })
}

/// `home_status`: the home's heating mode, each room's temperature (with the names from
/// `homesdata`, which `homestatus` lacks) and who is home, as data for the answer template.
pub(crate) async fn home_status(api: &dyn VendorApi, request: &VendorRequest) -> StepRun {
    let status = api.send(Endpoint::Actions, request).await?;
    let status_json = status.json.clone().unwrap_or(Value::Null);
    let home_id = request
        .query
        .iter()
        .find(|(k, _)| k == "home_id")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let data = api
        .get(Endpoint::Actions, "/api/homesdata", &[("home_id", home_id)])
        .await?;
    let home = items(&data, "/body/homes")
        .iter()
        .find(|h| h.get("id").map(text).as_deref() == Some(home_id))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(StepResult {
        vendor_status: status.status,
        data: home_summary(&home, &status_json),
    })
}

/// The home in one object: `name`, `therm_mode`, `rooms` (those with a thermometer: `name`,
/// `temperature`, `setpoint`, `setpoint_mode`), `persons` (`name`, `home`) and `at_home` (the
/// names of who is home). Names come from `homesdata` (`home`), values from `homestatus`.
pub(crate) fn home_summary(home: &Value, status: &Value) -> Value {
    let name_of = |list: &str, id: &str, field: &str| {
        items(home, list)
            .iter()
            .find(|x| x.get("id").map(text).as_deref() == Some(id))
            .and_then(|x| x.get(field))
            .map(text)
            .unwrap_or_else(|| id.to_string())
    };
    let rooms: Vec<Value> = items(status, "/body/home/rooms")
        .iter()
        .filter_map(|room| {
            let id = room.get("id").map(text)?;
            let measured = room.get("therm_measured_temperature")?;
            Some(json!({
                "id": id,
                "name": name_of("/rooms", &id, "name"),
                "temperature": measured,
                "setpoint": room.get("therm_setpoint_temperature"),
                "setpoint_mode": room.get("therm_setpoint_mode"),
            }))
        })
        .collect();
    let persons: Vec<Value> = items(status, "/body/home/persons")
        .iter()
        .filter_map(|p| {
            let id = p.get("id").map(text)?;
            Some(json!({
                "id": id,
                "name": name_of("/persons", &id, "pseudo"),
                "home": p.get("out_of_sight") == Some(&Value::Bool(false)),
            }))
        })
        .collect();
    let at_home: Vec<&Value> = persons
        .iter()
        .filter(|p| p["home"] == Value::Bool(true))
        .map(|p| &p["name"])
        .collect();
    json!({
        "id": home.get("id"),
        "name": home.get("name"),
        "therm_mode": home.get("therm_mode"),
        "rooms": rooms,
        "persons": persons,
        "at_home": at_home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::providers::vendor_response as response;

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
        let busy = response(
            429,
            json!({"error": {"code": 26, "message": "Maximum api usage reached"}}),
        );
        assert_eq!(
            Netatmo.classify(Endpoint::Actions, &busy),
            Some(Verdict::Busy {
                retry_after_secs: 60
            })
        );
        let partial = response(
            200,
            json!({"status": "ok", "body": {"errors": [{"code": 31, "id": "12:34"}]}}),
        );
        match Netatmo.classify(Endpoint::Actions, &partial) {
            Some(Verdict::Rejected {
                reason: Some(r), ..
            }) => {
                assert!(r.contains("12:34") && r.contains("unreachable"), "{r}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Netatmo.classify(Endpoint::Actions, &response(200, json!({"status": "ok"}))),
            None
        );
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
                "at_home": ["Alice"]})
        );
    }
}
