//! The heating writes that need more than one fixed request: `therm_mode` (an end time only
//! with `away`/`hg`) and `room_setpoint` (`setroomthermpoint` or `setstate`, by the home's
//! modules).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::super::port::{Endpoint, VendorApi};
use super::super::{StepResult, StepRun, items, text};
use crate::error::ActionError;
use crate::params::ParamError;
use crate::vendor::{VendorBody, VendorRequest};

/// A field of the rendered form (the recipes' `form`).
fn field<'r>(request: &'r VendorRequest, name: &str) -> Option<&'r str> {
    match &request.body {
        VendorBody::Form(pairs) => pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

/// What a write step answers: the vendor's status and its JSON, as a plain action would.
fn written(response: crate::vendor::VendorResponse) -> StepResult {
    StepResult {
        vendor_status: response.status,
        data: response.json.unwrap_or(Value::Null),
    }
}

/// `therm_mode`: `setthermmode` with `endtime` only for `away` and `hg` (pyatmo home.py
/// `async_set_thermmode`, L290-294). `schedule` for a number of minutes means nothing to
/// Netatmo, so it is refused naming `minutes` rather than sent or silently shortened.
pub(crate) async fn therm_mode(api: &dyn VendorApi, request: &VendorRequest) -> StepRun {
    let mode = field(request, "mode").unwrap_or_default();
    if field(request, "endtime").is_some() && !matches!(mode, "away" | "hg") {
        return Err(ActionError::Param(ParamError::Invalid {
            name: "minutes".into(),
            problem: format!(
                "only goes with mode away or hg; mode {mode} lasts until the mode is changed"
            ),
        }));
    }
    Ok(written(api.send(Endpoint::Actions, request).await?))
}

/// The module types of a room: the modules its `module_ids` lists, or that name it in
/// `room_id` (homesdata carries both).
fn room_types(home: &Value, room: &Value) -> BTreeSet<String> {
    let room_id = room.get("id").map(text).unwrap_or_default();
    let listed: BTreeSet<String> = items(room, "/module_ids").iter().map(text).collect();
    items(home, "/modules")
        .iter()
        .filter(|m| {
            let id = m.get("id").map(text).unwrap_or_default();
            listed.contains(&id) || m.get("room_id").map(text).as_deref() == Some(&room_id)
        })
        .filter_map(|m| m.get("type").map(text))
        .collect()
}

/// Where a room's set point goes, as pyatmo room.py `async_therm_set` (L254-276, commit 420aa2e
/// "Fix therm point setting in homes with OTM") decides it: `setroomthermpoint` for a room with
/// a NATherm1 thermostat, or with NRV valves in a home without a Smart Modulating Thermostat
/// (OTM) or Smarther (BNS); `setstate` for every other room.
fn uses_setroomthermpoint(home: &Value, room: &Value) -> bool {
    let types = room_types(home, room);
    let home_has = |kind: &str| {
        items(home, "/rooms")
            .iter()
            .any(|r| room_types(home, r).contains(kind))
    };
    types.contains("NATherm1") || (types.contains("NRV") && !home_has("OTM") && !home_has("BNS"))
}

/// The `setstate` body for a room's set point (pyatmo room.py `_async_therm_set`, L278-338):
/// `{"home":{"id","rooms":[{"id","<p>_setpoint_mode","<p>_setpoint_temperature",
/// "<p>_setpoint_end_time"}]}}` where `<p>` is `cooling` in a home whose
/// `temperature_control_mode` is `cooling`, `therm` otherwise. Temperature and end time are
/// numbers and only sent when given.
fn setstate_body(home: &Value, request: &VendorRequest) -> Value {
    let prefix = match home.get("temperature_control_mode").and_then(Value::as_str) {
        Some("cooling") => "cooling",
        _ => "therm",
    };
    let mut room = Map::new();
    room.insert(
        "id".into(),
        json!(field(request, "room_id").unwrap_or_default()),
    );
    room.insert(
        format!("{prefix}_setpoint_mode"),
        json!(field(request, "mode").unwrap_or("manual")),
    );
    if let Some(temp) = field(request, "temp").and_then(|t| t.parse::<f64>().ok()) {
        room.insert(format!("{prefix}_setpoint_temperature"), json!(temp));
    }
    if let Some(end) = field(request, "endtime").and_then(|e| e.parse::<i64>().ok()) {
        room.insert(format!("{prefix}_setpoint_end_time"), json!(end));
    }
    json!({"home": {"id": home.get("id"), "rooms": [Value::Object(room)]}})
}

/// `room_setpoint` (and `room_schedule`): reads `homesdata` for the home's module types (one
/// more GET), then sends the recipe's `setroomthermpoint` form or the same set point as
/// `setstate`, as [`uses_setroomthermpoint`] says. A home or room that `homesdata` does not
/// list is refused before anything is sent.
pub(crate) async fn room_setpoint(api: &dyn VendorApi, request: &VendorRequest) -> StepRun {
    let home_id = field(request, "home_id").unwrap_or_default();
    let room_id = field(request, "room_id").unwrap_or_default();
    let data = api
        .get(Endpoint::Actions, "/api/homesdata", &[("home_id", home_id)])
        .await?;
    let home = items(&data, "/body/homes")
        .iter()
        .find(|h| h.get("id").map(text).as_deref() == Some(home_id))
        .ok_or_else(|| {
            ActionError::Misconfigured(format!(
                "home {home_id} is not in this Netatmo account (homehook discover lists its homes)"
            ))
        })?;
    let room = items(home, "/rooms")
        .iter()
        .find(|r| r.get("id").map(text).as_deref() == Some(room_id))
        .ok_or_else(|| {
            ActionError::Misconfigured(format!(
                "room {room_id} is not in home {home_id} (homehook discover lists its rooms)"
            ))
        })?;
    if uses_setroomthermpoint(home, room) {
        return Ok(written(api.send(Endpoint::Actions, request).await?));
    }
    let setstate = VendorRequest {
        method: http::Method::POST,
        path: "/api/setstate".into(),
        query: Vec::new(),
        body: VendorBody::Json(setstate_body(home, request)),
    };
    Ok(written(api.send(Endpoint::Actions, &setstate).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pyatmo's recorded `homesdata` (tests/fixtures/netatmo/SOURCES.md).
    fn recorded_home() -> Value {
        let data: Value = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/netatmo/homesdata.json"
        ))
        .expect("recorded homesdata");
        data["body"]["homes"][0].clone()
    }

    fn room<'h>(home: &'h Value, id: &str) -> &'h Value {
        items(home, "/rooms")
            .iter()
            .find(|r| r["id"] == id)
            .expect("room")
    }

    fn form(pairs: &[(&str, &str)]) -> VendorRequest {
        VendorRequest {
            method: http::Method::POST,
            path: "/api/setroomthermpoint".into(),
            query: Vec::new(),
            body: VendorBody::Form(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_recorded_home_sends_each_room_where_pyatmo_would() {
        let home = recorded_home();
        // Livingroom: a NATherm1.
        assert!(uses_setroomthermpoint(&home, room(&home, "2746182631")));
        // Entrada: NRV valves, but the home has an OTM (Bureau) and a BNS (Corridor).
        assert!(!uses_setroomthermpoint(&home, room(&home, "2833524037")));
        // Bureau: the OTM itself.
        assert!(!uses_setroomthermpoint(&home, room(&home, "222452125")));
        // Corridor: the Smarther.
        assert!(!uses_setroomthermpoint(&home, room(&home, "1002003001")));

        // Without the OTM and the Smarther, valves go to setroomthermpoint again.
        let mut plain = home.clone();
        if let Some(modules) = plain["modules"].as_array_mut() {
            modules.retain(|m| m["type"] != "OTM" && m["type"] != "BNS");
        }
        assert!(uses_setroomthermpoint(&plain, room(&plain, "2833524037")));
    }

    #[test]
    fn setstate_carries_the_set_point_with_the_homes_prefix() {
        let home = recorded_home();
        let request = form(&[
            ("home_id", "91763b24c43d3e344f424e8b"),
            ("room_id", "2833524037"),
            ("mode", "manual"),
            ("temp", "21.5"),
            ("endtime", "1700003600"),
        ]);
        // The recorded home is in cooling mode: pyatmo writes the cooling set point.
        assert_eq!(
            setstate_body(&home, &request),
            json!({"home": {"id": "91763b24c43d3e344f424e8b", "rooms": [{"id": "2833524037",
                "cooling_setpoint_mode": "manual", "cooling_setpoint_temperature": 21.5,
                "cooling_setpoint_end_time": 1_700_003_600}]}})
        );
        let mut heating = home.clone();
        heating["temperature_control_mode"] = json!("heating");
        let back = form(&[("room_id", "2833524037"), ("mode", "home")]);
        assert_eq!(
            setstate_body(&heating, &back),
            json!({"home": {"id": "91763b24c43d3e344f424e8b", "rooms": [{"id": "2833524037",
                "therm_setpoint_mode": "home"}]}})
        );
    }
}
