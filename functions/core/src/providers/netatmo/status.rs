//! `home_status`: `homestatus` for the values, `homesdata` for the names it lacks.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::super::port::{Endpoint, VendorApi};
use super::super::{StepResult, StepRun, items, text};
use crate::vendor::VendorRequest;

/// `home_status`: the home's heating mode, each room's temperature (with the names from
/// `homesdata`, which `homestatus` lacks), who is home and what is offline, as data for the
/// answer template. A `homestatus` whose `body.errors` names unreachable modules still counts
/// when it carries the rest of the home (see `classify`).
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
/// `temperature`, `setpoint`, `setpoint_mode`; a room whose modules `body.errors` says are
/// unreachable has `temperature` null), `persons` (`name`, `home`), `at_home` (the names of who
/// is home) and `offline` (the names of the modules `body.errors` lists). Names come from
/// `homesdata` (`home`), values from `homestatus` (`status`).
pub(crate) fn home_summary(home: &Value, status: &Value) -> Value {
    let name_of = |list: &str, id: &str, field: &str| {
        items(home, list)
            .iter()
            .find(|x| x.get("id").map(text).as_deref() == Some(id))
            .and_then(|x| x.get(field))
            .map(text)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| id.to_string())
    };
    let errored: BTreeSet<String> = items(status, "/body/errors")
        .iter()
        .filter_map(|e| e.get("id").map(text))
        .collect();
    // A room is offline when one of its modules (homesdata `module_ids`) is in the errors.
    let room_offline = |room_id: &str| {
        items(home, "/rooms")
            .iter()
            .find(|r| r.get("id").map(text).as_deref() == Some(room_id))
            .map(|r| {
                items(r, "/module_ids")
                    .iter()
                    .any(|m| errored.contains(&text(m)))
            })
            .unwrap_or(false)
    };
    let rooms: Vec<Value> = items(status, "/body/home/rooms")
        .iter()
        .filter_map(|room| {
            let id = room.get("id").map(text)?;
            let measured = match room.get("therm_measured_temperature") {
                Some(t) if t.is_number() => t.clone(),
                _ if room_offline(&id) => Value::Null,
                _ => return None,
            };
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
    let offline: Vec<String> = errored
        .iter()
        .map(|id| name_of("/modules", id, "name"))
        .collect();
    json!({
        "id": home.get("id"),
        "name": home.get("name"),
        "therm_mode": home.get("therm_mode"),
        "rooms": rooms,
        "persons": persons,
        "at_home": at_home,
        "offline": offline,
    })
}
