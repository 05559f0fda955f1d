//! A fake Netatmo Connect API (also Works with Legrand): `homesdata`, `homestatus`,
//! `getstationsdata`, `setthermmode`, `setroomthermpoint`, `setstate`, `setpersonsaway`,
//! `setpersonshome`. Answers `{"status":"ok","time_server":…,"body":…}`; an expired token is
//! 403 code 3, an unknown one 403 code 2; 50 requests per 10 s and 500 per hour per user, then
//! 429 code 26; an unknown module in `setstate` is a partial failure inside a 200.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use homehook_core::clock::{Clock, ManualClock, UnixTime};
use serde_json::{Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{Access, FakeSettings, FakeVendor, OAuthHandle};

/// The home the fake knows.
pub const HOME: &str = "5a1b2c3d4e5f";
/// Its living room.
pub const LIVING: &str = "2255031728";
/// Its bedroom.
pub const BEDROOM: &str = "3366142839";
/// A light behind a bridge (Legrand style).
pub const LIGHT: &str = "00:04:74:00:00:aa";
/// The light's bridge.
pub const BRIDGE: &str = "00:04:74:00:00:01";
/// A shutter.
pub const SHUTTER: &str = "00:04:74:00:00:bb";
/// The weather station.
pub const STATION: &str = "70:ee:50:00:00:01";
/// Persons.
pub const ALICE: &str = "p-alice";
/// Persons.
pub const BOB: &str = "p-bob";

/// What the home looks like now.
#[derive(Debug, Clone)]
pub struct Home {
    /// `schedule`, `away` or `hg`, with its end time.
    pub therm_mode: (String, Option<i64>),
    /// Room set points: (mode, temperature, end time).
    pub rooms: BTreeMap<String, (String, Option<f64>, Option<i64>)>,
    /// Lights: (on, brightness).
    pub lights: BTreeMap<String, (bool, Option<i64>)>,
    /// Shutter positions.
    pub shutters: BTreeMap<String, i64>,
    /// Persons away.
    pub away: BTreeSet<String>,
}

impl Default for Home {
    fn default() -> Self {
        Self {
            therm_mode: ("schedule".into(), None),
            rooms: BTreeMap::from([
                (LIVING.into(), ("home".into(), Some(21.0), None)),
                (BEDROOM.into(), ("home".into(), Some(18.0), None)),
            ]),
            lights: BTreeMap::from([(LIGHT.into(), (false, None))]),
            shutters: BTreeMap::from([(SHUTTER.into(), 0)]),
            away: BTreeSet::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    home: Mutex<Home>,
    calls: Mutex<Vec<UnixTime>>,
    faults: Faults,
}

/// A running fake Netatmo.
#[derive(Debug)]
pub struct FakeNetatmo {
    /// The OAuth server and counters.
    pub vendor: FakeVendor,
    inner: Arc<Inner>,
    clock: ManualClock,
}

impl FakeNetatmo {
    /// Netatmo's token endpoint: form client auth, 3 h tokens, rotating refresh tokens.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            scopes: Some(json!([
                "read_station",
                "read_thermostat",
                "write_thermostat"
            ])),
            ..FakeSettings::default()
        }
    }

    /// Starts it.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        let inner = Arc::new(Inner::default());
        let vendor = super::serve(clock.clone(), settings, &inner, api).await;
        Self {
            vendor,
            inner,
            clock,
        }
    }

    /// The home now.
    pub fn home(&self) -> Home {
        lock(&self.inner.home).clone()
    }

    /// Another app of the same user spends this hour's 500 requests.
    pub fn spend_budget(&self) {
        let now = self.clock.now();
        lock(&self.inner.calls).extend(std::iter::repeat_n(now, 500));
    }

    /// Queue failures.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

fn ok(clock: &ManualClock, body: Value) -> Response {
    axum::Json(json!({"status": "ok", "time_server": clock.now().0, "body": body})).into_response()
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    let clock = oauth.clock();
    match oauth.access(req.token.as_deref()) {
        Access::Unknown => return error(StatusCode::FORBIDDEN, 2, "Invalid access_token"),
        Access::Expired => return error(StatusCode::FORBIDDEN, 3, "Access token expired"),
        Access::Valid => {}
    }
    // Per user: 50 requests per 10 s and 500 per hour.
    {
        let now = clock.now();
        let mut calls = lock(&inner.calls);
        calls.retain(|t| t.plus_secs(3600) > now);
        let last_10s = calls.iter().filter(|t| t.plus_secs(10) > now).count();
        if last_10s >= 50 || calls.len() >= 500 {
            return error(StatusCode::TOO_MANY_REQUESTS, 26, "User usage reached");
        }
        calls.push(now);
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, 0, "Internal server error");
    }
    let mut home = lock(&inner.home);
    let home_id_ok = |req: &Incoming| {
        req.param("home_id") == Some(HOME) || req.json.pointer("/home/id") == Some(&json!(HOME))
    };
    match req.path.as_str() {
        "/api/homesdata" => ok(
            &clock,
            json!({"homes": [homes_data(&home)], "user": {"email": "owner@example.com"}}),
        ),
        "/api/homestatus" if home_id_ok(&req) => ok(&clock, json!({"home": home_status(&home)})),
        "/api/getstationsdata" => ok(
            &clock,
            json!({"devices": [{
                "_id": STATION, "station_name": "Home (Indoor)", "module_name": "Living room",
                "type": "NAMain",
                "dashboard_data": {"Temperature": 21.4, "Humidity": 48, "CO2": 640, "Noise": 38, "Pressure": 1013.2},
                "modules": [{"_id": "02:00:00:00:00:01", "module_name": "Garden", "type": "NAModule1",
                             "dashboard_data": {"Temperature": 7.5, "Humidity": 81}}]
            }]}),
        ),
        "/api/setthermmode" if home_id_ok(&req) => {
            let mode = req.param("mode").unwrap_or_default();
            if !["schedule", "away", "hg"].contains(&mode) {
                return error(StatusCode::BAD_REQUEST, 21, "Invalid mode");
            }
            let end = req.param("endtime").and_then(|e| e.parse().ok());
            home.therm_mode = (mode.to_string(), end);
            ok(&clock, json!({}))
        }
        "/api/setroomthermpoint" if home_id_ok(&req) => {
            let room = req.param("room_id").unwrap_or_default().to_string();
            if !home.rooms.contains_key(&room) {
                return error(StatusCode::NOT_FOUND, 9, "Room not found");
            }
            let mode = req.param("mode").unwrap_or_default().to_string();
            let temp = req.param("temp").and_then(|t| t.parse().ok());
            if mode == "manual" && temp.is_none() {
                return error(StatusCode::BAD_REQUEST, 10, "Missing temp");
            }
            let end = req.param("endtime").and_then(|e| e.parse().ok());
            home.rooms.insert(room, (mode, temp, end));
            ok(&clock, json!({}))
        }
        "/api/setstate" if home_id_ok(&req) => {
            let mut errors = Vec::new();
            for module in req
                .json
                .pointer("/home/modules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let id = module["id"].as_str().unwrap_or_default().to_string();
                if let Some(light) = home.lights.get_mut(&id) {
                    if module.get("bridge") != Some(&json!(BRIDGE)) {
                        errors.push(json!({"code": 21, "id": id}));
                        continue;
                    }
                    if let Some(on) = module["on"].as_bool() {
                        light.0 = on;
                    }
                    if let Some(b) = module["brightness"].as_i64() {
                        light.1 = Some(b);
                    }
                } else if let Some(position) = home.shutters.get_mut(&id) {
                    if let Some(p) = module["target_position"].as_i64() {
                        *position = p;
                    }
                } else {
                    errors.push(json!({"code": 31, "id": id}));
                }
            }
            if errors.is_empty() {
                ok(&clock, json!({}))
            } else {
                ok(&clock, json!({"errors": errors}))
            }
        }
        "/api/setpersonsaway" if home_id_ok(&req) => {
            match req.param("person_id") {
                Some(p) => {
                    home.away.insert(p.to_string());
                }
                None => {
                    home.away.extend([ALICE.to_string(), BOB.to_string()]);
                }
            }
            ok(&clock, json!({}))
        }
        "/api/setpersonshome" if home_id_ok(&req) => match req.param("person_ids[]") {
            Some(p) => {
                home.away.remove(p);
                ok(&clock, json!({}))
            }
            None => error(StatusCode::BAD_REQUEST, 10, "Missing person_ids"),
        },
        p if p.starts_with("/api/") => {
            error(StatusCode::BAD_REQUEST, 21, "Invalid home id or parameters")
        }
        _ => error(StatusCode::NOT_FOUND, 404, "Not found"),
    }
}

fn homes_data(home: &Home) -> Value {
    json!({
        "id": HOME, "name": "Home", "therm_mode": home.therm_mode.0,
        "rooms": [
            {"id": LIVING, "name": "Living room", "type": "livingroom"},
            {"id": BEDROOM, "name": "Bedroom", "type": "bedroom"}
        ],
        "modules": [
            {"id": "70:ee:50:00:00:10", "type": "NAPlug", "name": "Relay"},
            {"id": "04:00:00:00:00:11", "type": "NATherm1", "name": "Thermostat", "bridge": "70:ee:50:00:00:10", "room_id": LIVING},
            {"id": LIGHT, "type": "BNLD", "name": "Kitchen light", "bridge": BRIDGE},
            {"id": SHUTTER, "type": "NBR", "name": "Bay window"}
        ],
        "persons": [{"id": ALICE, "pseudo": "Alice"}, {"id": BOB, "pseudo": "Bob"}]
    })
}

fn home_status(home: &Home) -> Value {
    let measured = |room: &str| if room == LIVING { 20.5 } else { 18.5 };
    let persons: Vec<Value> = [ALICE, BOB]
        .iter()
        .map(|p| json!({"id": p, "out_of_sight": home.away.contains(*p)}))
        .collect();
    json!({
        "id": HOME,
        "rooms": home.rooms.iter().map(|(id, (mode, temp, _))| json!({
            "id": id, "therm_measured_temperature": measured(id),
            "therm_setpoint_temperature": temp, "therm_setpoint_mode": mode
        })).collect::<Vec<_>>(),
        "persons": persons,
    })
}
