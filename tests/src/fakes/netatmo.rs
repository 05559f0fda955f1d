//! A fake Netatmo Connect API (also Works with Legrand) driven by answers recorded from the live
//! API: `homesdata`, `homestatus` and `getstationsdata` are pyatmo's recorded bodies
//! (tests/fixtures/netatmo/SOURCES.md) with the fake's state patched in, and the writes
//! (`setthermmode`, `setroomthermpoint`, `setstate`, `setpersonsaway`, `setpersonshome`) change
//! that state and answer the recorded `status_ok` body.
//!
//! As the real API: an expired token is 403 code 3, an unknown one 403 code 2; past 50 requests
//! per 10 s or 500 per hour per user, 403 code 26 (pyatmo `auth.py`); an unknown module in
//! `setstate` is a top-level `{"error":{"code":21,"message":"Invalid device_id, …"}}` (pyatmo
//! `archive/camera_set_state_error.json`), a property a module does not have is code 21
//! "cannot set property …" (`archive/camera_set_state_error_wrong_parameter.json`); a module
//! taken offline ([`FakeNetatmo::set_offline`]) is listed in `homestatus`'s `body.errors` with
//! code 6 next to the rest of the home (`archive/home_status_error_and_data.json`); a client
//! in another process flips the same switch with `POST`/`DELETE /_fake/offline/<module>`. The
//! recorded cameras' `vpn_url` points at the fake, which answers their `/command/ping` outside
//! the API budget (Netatmo's relay is not the API).
//!
//! The fake's own choices where no recording says (docs/providers/netatmo.md): error statuses
//! (400 for codes 10/21, 403 for tokens and throttling); `setroomthermpoint` for a room that an
//! OTM or Smarther home drives through `setstate` is refused (code 21) rather than accepted
//! and ignored; `setthermmode` with `endtime` for `schedule` is refused; a `setstate` to an
//! offline module answers 200 with `body.errors` code 6; a bridged module sent without its
//! `bridge` is refused (code 21).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use homehook_core::clock::{Clock, ManualClock, UnixTime};
use serde_json::{Map, Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{Access, FakeSettings, FakeVendor, OAuthHandle};

/// pyatmo's recorded `homesdata` (the whole answer).
const HOMESDATA: &str = include_str!("../../fixtures/netatmo/homesdata.json");
/// pyatmo's recorded `homestatus` of [`HOME`].
const HOMESTATUS: &str =
    include_str!("../../fixtures/netatmo/homestatus_91763b24c43d3e344f424e8b.json");
/// pyatmo's recorded `getstationsdata`.
const STATIONSDATA: &str = include_str!("../../fixtures/netatmo/getstationsdata.json");
/// The recorded answer of a write.
const STATUS_OK: &str = include_str!("../../fixtures/netatmo/status_ok.json");
/// The recorded refusal of an unknown module.
const INVALID_DEVICE: &str = include_str!("../../fixtures/netatmo/camera_set_state_error.json");
/// The recorded refusal of an unknown home.
const INVALID_ID: &str = include_str!("../../fixtures/netatmo/home_status_error_invalid_id.json");
/// A camera's recorded answer to `<vpn_url>/command/ping`.
const PING: &str = include_str!("../../fixtures/netatmo/ping.json");
/// The recorded refusal of `setthermmode` without a mode.
const MODE_MISSING: &str =
    include_str!("../../fixtures/netatmo/home_status_error_mode_is_missing.json");

/// The recorded home, `MYHOME`: in cooling mode, with a NATherm1, NRV valves, an OTM and a
/// Smarther, Legrand and Bubendorff lights and shutters, a weather station, three persons.
pub const HOME: &str = "91763b24c43d3e344f424e8b";
/// The account's second recorded home: no name, no rooms, no modules.
pub const EMPTY_HOME: &str = "91763b24c43d3e344f424e8c";
/// `Livingroom`, heated by a NATherm1 thermostat: set points go to `setroomthermpoint`.
pub const LIVING: &str = "2746182631";
/// `Entrada`, heated by an NRV valve; as the home has an OTM and a Smarther, its set points go
/// to `setstate` (until [`FakeNetatmo::remove_module_types`] takes those out).
pub const BEDROOM: &str = "2833524037";
/// `Entrada` by its recorded name (the same room as [`BEDROOM`]).
pub const ENTRADA: &str = BEDROOM;
/// `Bureau`, heated by the OTM (Smart Modulating Thermostat).
pub const OTM_ROOM: &str = "222452125";
/// An NRV valve of `Entrada` (`Valve1`).
pub const VALVE: &str = "12:34:56:03:a5:54";
/// A Legrand dimmer (NLF) behind the gateway [`BRIDGE`]; recorded off, at 63 %.
pub const LIGHT: &str = "00:11:22:33:00:11:45:fe";
/// The Legrand gateway (NLG) the light and the shutter are behind.
pub const BRIDGE: &str = "12:34:56:80:60:40";
/// A Legrand shutter (Z3V, `Entrance shutter`) behind [`BRIDGE`]; recorded closed.
pub const SHUTTER: &str = "12:34:56:80:00:c3:69:3d";
/// The weather station of the home (`Palier`): its outdoor module is unreachable.
pub const STATION: &str = "12:34:56:80:bb:26";
/// A recorded station whose modules all answer (`NetatmoIndoor`).
pub const FULL_STATION: &str = "12:34:56:37:11:ca";
/// `Jane Doe`, recorded at home.
pub const ALICE: &str = "91827375-7e04-5298-83ae-a0cb8372dff2";
/// `John Doe`, recorded away.
pub const BOB: &str = "91827374-7e04-5298-83ad-a0cb8372dff1";

/// What the home looks like now, read from the recorded bodies with the fake's changes.
#[derive(Debug, Clone)]
pub struct Home {
    /// `schedule`, `away` or `hg`, with its end time.
    pub therm_mode: (String, Option<i64>),
    /// Room heating set points (`therm_setpoint_*`): (mode, temperature, end time).
    pub rooms: BTreeMap<String, (String, Option<f64>, Option<i64>)>,
    /// Room cooling set points (`cooling_setpoint_*`), for the rooms that have one.
    pub cooling: BTreeMap<String, (String, Option<f64>, Option<i64>)>,
    /// Modules with an `on` state: (on, brightness).
    pub lights: BTreeMap<String, (bool, Option<i64>)>,
    /// Modules with a `target_position`.
    pub shutters: BTreeMap<String, i64>,
    /// Persons away (`out_of_sight`).
    pub away: BTreeSet<String>,
}

/// The fake's state: the recorded bodies, changed by the writes.
#[derive(Debug)]
struct Recorded {
    /// The whole `homesdata` answer.
    homes: Value,
    /// `body.home` of [`HOME`]'s `homestatus`.
    status: Value,
    /// The whole `getstationsdata` answer.
    stations: Value,
    /// The end of the current heating mode.
    therm_end: Option<i64>,
    /// Modules taken offline.
    offline: BTreeSet<String>,
}

impl Default for Recorded {
    fn default() -> Self {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        Self {
            homes: parse(HOMESDATA),
            status: parse(HOMESTATUS)["body"]["home"].clone(),
            stations: parse(STATIONSDATA),
            therm_end: None,
            offline: BTreeSet::new(),
        }
    }
}

impl Recorded {
    fn home(&self) -> &Value {
        self.homes.pointer("/body/homes/0").unwrap_or(&Value::Null)
    }

    fn home_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.homes
            .pointer_mut("/body/homes/0")
            .and_then(Value::as_object_mut)
    }

    fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
        value
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A module of `homesdata`.
    fn module(&self, id: &str) -> Option<&Value> {
        Self::list(self.home(), "modules")
            .iter()
            .find(|m| m["id"] == id)
    }

    /// A room of `homesdata`.
    fn room(&self, id: &str) -> Option<&Value> {
        Self::list(self.home(), "rooms")
            .iter()
            .find(|r| r["id"] == id)
    }

    /// The module types of a room (its `module_ids`).
    fn room_types(&self, room: &Value) -> BTreeSet<String> {
        Self::list(room, "module_ids")
            .iter()
            .filter_map(|id| id.as_str().and_then(|id| self.module(id)))
            .filter_map(|m| m["type"].as_str().map(str::to_string))
            .collect()
    }

    /// Whether Netatmo takes this room's set point through `setroomthermpoint`: a NATherm1
    /// room, or NRV valves in a home without an OTM or a Smarther (pyatmo room.py L268-276).
    fn thermpoint_room(&self, room: &Value) -> bool {
        let types = self.room_types(room);
        let home_has = |kind: &str| {
            Self::list(self.home(), "rooms")
                .iter()
                .any(|r| self.room_types(r).contains(kind))
        };
        types.contains("NATherm1")
            || (types.contains("NRV") && !home_has("OTM") && !home_has("BNS"))
    }

    /// The status entry of a module (`homestatus` `modules[]`).
    fn module_status_mut(&mut self, id: &str) -> Option<&mut Map<String, Value>> {
        self.status
            .get_mut("modules")
            .and_then(Value::as_array_mut)?
            .iter_mut()
            .find(|m| m["id"] == id)
            .and_then(Value::as_object_mut)
    }

    /// The status entry of a room, added when the recording has none (`Bureau`).
    fn room_status_mut(&mut self, id: &str) -> Option<&mut Map<String, Value>> {
        let rooms = self.status.get_mut("rooms")?.as_array_mut()?;
        let at = match rooms.iter().position(|r| r["id"] == id) {
            Some(at) => at,
            None => {
                rooms.push(json!({"id": id, "reachable": true}));
                rooms.len() - 1
            }
        };
        rooms.get_mut(at).and_then(Value::as_object_mut)
    }

    /// The `homestatus` body of [`HOME`] now: offline modules leave `modules` for
    /// `errors` (code 6), and their rooms lose their reading. The cameras' recorded `vpn_url`
    /// (Netatmo's relay) points at the fake (`base`), which answers their ping, so a client
    /// that checks its cameras stays on loopback.
    fn status_body(&self, base: &str) -> Value {
        let mut home = self.status.clone();
        if let Some(modules) = home.get_mut("modules").and_then(Value::as_array_mut) {
            for module in modules.iter_mut() {
                let relayed = module["vpn_url"]
                    .as_str()
                    .and_then(|url| url.strip_prefix("https://"))
                    .and_then(|url| url.split_once('/'))
                    .map(|(_, rest)| format!("{base}/vpn/{rest}"));
                if let Some(url) = relayed {
                    module["vpn_url"] = json!(url);
                }
            }
        }
        if let Some(modules) = home.get_mut("modules").and_then(Value::as_array_mut) {
            modules.retain(|m| !m["id"].as_str().is_some_and(|id| self.offline.contains(id)));
        }
        let dark_rooms: BTreeSet<String> = Self::list(self.home(), "rooms")
            .iter()
            .filter(|r| {
                Self::list(r, "module_ids")
                    .iter()
                    .any(|m| m.as_str().is_some_and(|m| self.offline.contains(m)))
            })
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        if let Some(rooms) = home.get_mut("rooms").and_then(Value::as_array_mut) {
            for room in rooms.iter_mut() {
                let dark = room["id"]
                    .as_str()
                    .is_some_and(|id| dark_rooms.contains(id));
                if let (true, Some(room)) = (dark, room.as_object_mut()) {
                    room.insert("reachable".into(), json!(false));
                    room.remove("therm_measured_temperature");
                }
            }
        }
        let mut body = json!({"home": home});
        if !self.offline.is_empty() {
            body["errors"] = self
                .offline
                .iter()
                .map(|id| json!({"code": 6, "id": id}))
                .collect();
        }
        body
    }

    fn view(&self) -> Home {
        let number = |v: &Value| v.as_f64();
        let setpoints = |prefix: &str| {
            Self::list(&self.status, "rooms")
                .iter()
                .filter_map(|r| {
                    let mode = r.get(format!("{prefix}_setpoint_mode"))?.as_str()?;
                    Some((
                        r["id"].as_str()?.to_string(),
                        (
                            mode.to_string(),
                            r.get(format!("{prefix}_setpoint_temperature"))
                                .and_then(number),
                            r.get(format!("{prefix}_setpoint_end_time"))
                                .and_then(Value::as_i64)
                                .filter(|end| *end > 0),
                        ),
                    ))
                })
                .collect()
        };
        let modules = Self::list(&self.status, "modules");
        Home {
            therm_mode: (
                self.home()["therm_mode"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                self.therm_end,
            ),
            rooms: setpoints("therm"),
            cooling: setpoints("cooling"),
            lights: modules
                .iter()
                .filter_map(|m| {
                    Some((
                        m["id"].as_str()?.to_string(),
                        (m.get("on")?.as_bool()?, m["brightness"].as_i64()),
                    ))
                })
                .collect(),
            shutters: modules
                .iter()
                .filter_map(|m| {
                    Some((
                        m["id"].as_str()?.to_string(),
                        m.get("target_position")?.as_i64()?,
                    ))
                })
                .collect(),
            away: Self::list(&self.status, "persons")
                .iter()
                .filter(|p| p["out_of_sight"] == true)
                .filter_map(|p| p["id"].as_str().map(str::to_string))
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    home: Mutex<Recorded>,
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
        lock(&self.inner.home).view()
    }

    /// A module drops off (unplugged, out of radio range) or comes back: `homestatus` lists it
    /// in `body.errors` with code 6 and its room has no reading; `setstate` answers it the same
    /// way.
    pub fn set_offline(&self, module_id: &str, offline: bool) {
        let mut home = lock(&self.inner.home);
        if offline {
            home.offline.insert(module_id.to_string());
        } else {
            home.offline.remove(module_id);
        }
    }

    /// The owner removes every module of these types from the home (`["OTM", "BNS"]`: the
    /// home without a Smart Modulating Thermostat or a Smarther).
    pub fn remove_module_types(&self, types: &[&str]) {
        let mut recorded = lock(&self.inner.home);
        let removed: BTreeSet<String> = Recorded::list(recorded.home(), "modules")
            .iter()
            .filter(|m| m["type"].as_str().is_some_and(|t| types.contains(&t)))
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        if let Some(home) = recorded.home_mut() {
            if let Some(modules) = home.get_mut("modules").and_then(Value::as_array_mut) {
                modules.retain(|m| !m["id"].as_str().is_some_and(|id| removed.contains(id)));
            }
            if let Some(rooms) = home.get_mut("rooms").and_then(Value::as_array_mut) {
                for room in rooms.iter_mut() {
                    if let Some(ids) = room.get_mut("module_ids").and_then(Value::as_array_mut) {
                        ids.retain(|id| !id.as_str().is_some_and(|id| removed.contains(id)));
                    }
                }
            }
        }
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

/// A recorded body, with `time_server` now.
fn recorded(clock: &ManualClock, mut answer: Value) -> Response {
    if let Some(o) = answer.as_object_mut()
        && o.contains_key("time_server")
    {
        o.insert("time_server".into(), json!(clock.now().0));
    }
    axum::Json(answer).into_response()
}

fn ok(clock: &ManualClock, body: Value) -> Response {
    axum::Json(json!({"status": "ok", "time_server": clock.now().0, "body": body})).into_response()
}

fn written(clock: &ManualClock) -> Response {
    recorded(
        clock,
        serde_json::from_str(STATUS_OK).unwrap_or(json!({"status": "ok"})),
    )
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// A recorded error body, as it was.
fn recorded_error(status: StatusCode, body: &str) -> Response {
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, axum::Json(body)).into_response()
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    let clock = oauth.clock();
    // The test's own switch, for clients in another process (tests/peers/netatmo): `POST`
    // takes a module offline ([`FakeNetatmo::set_offline`]), `DELETE` brings it back. Not a
    // Netatmo path.
    if let Some(module) = req.path.strip_prefix("/_fake/offline/") {
        let offline = req.method == axum::http::Method::POST;
        let mut home = lock(&inner.home);
        if offline {
            home.offline.insert(module.to_string());
        } else {
            home.offline.remove(module);
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    match oauth.access(req.token.as_deref()) {
        Access::Unknown => return error(StatusCode::FORBIDDEN, 2, "Invalid access_token"),
        Access::Expired => return error(StatusCode::FORBIDDEN, 3, "Access token expired"),
        Access::Valid => {}
    }
    // A camera's ping goes to Netatmo's VPN relay, not to the API: outside its budget.
    if req.path.starts_with("/vpn/") && req.path.ends_with("/command/ping") {
        let url = req.path.trim_end_matches("/command/ping");
        let mut answer: Value = serde_json::from_str(PING).unwrap_or(json!({}));
        answer["local_url"] = json!(format!("{}{url}", base_of(&req)));
        return axum::Json(answer).into_response();
    }
    // Per user: 50 requests per 10 s and 500 per hour; throttling is HTTP 403 with code 26
    // (pyatmo const.py THROTTLING_ERROR_CODE, auth.py handle_error_response).
    {
        let now = clock.now();
        let mut calls = lock(&inner.calls);
        calls.retain(|t| t.plus_secs(3600) > now);
        let last_10s = calls.iter().filter(|t| t.plus_secs(10) > now).count();
        if last_10s >= 50 || calls.len() >= 500 {
            return error(StatusCode::FORBIDDEN, 26, "User usage reached");
        }
        calls.push(now);
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, 11, "Internal server error");
    }
    let mut home = lock(&inner.home);
    let home_id = req
        .param("home_id")
        .map(str::to_string)
        .or_else(|| req.json["home"]["id"].as_str().map(str::to_string));
    let ours = home_id.as_deref() == Some(HOME);
    match req.path.as_str() {
        "/api/homesdata" => homes_data(&clock, &home, home_id.as_deref()),
        "/api/homestatus" if ours => ok(&clock, home.status_body(&base_of(&req))),
        "/api/homestatus" if home_id.as_deref() == Some(EMPTY_HOME) => {
            ok(&clock, json!({"home": {"id": EMPTY_HOME}}))
        }
        "/api/getstationsdata" => stations(&clock, &home, req.param("device_id")),
        "/api/setthermmode" if ours => therm_mode(&clock, &mut home, &req),
        "/api/setroomthermpoint" if ours => room_thermpoint(&clock, &mut home, &req),
        "/api/setstate" if ours => set_state(&clock, &mut home, &req),
        "/api/setpersonsaway" if ours => {
            let person = req.param("person_id");
            let known = |p: &str| {
                Recorded::list(home.home(), "persons")
                    .iter()
                    .any(|x| x["id"] == p)
            };
            if let Some(p) = person
                && !known(p)
            {
                return error(StatusCode::BAD_REQUEST, 21, "Invalid person_id");
            }
            set_persons(&mut home, |id| person.is_none_or(|p| p == id), true);
            written(&clock)
        }
        "/api/setpersonshome" if ours => {
            // `person_ids[]` may repeat (pyatmo sends a list).
            let mut ids: BTreeSet<String> = form_urlencoded::parse(req.body.as_bytes())
                .filter(|(k, _)| k == "person_ids[]")
                .map(|(_, v)| v.into_owned())
                .collect();
            ids.extend(req.param("person_ids[]").map(str::to_string));
            if ids.is_empty() {
                return error(StatusCode::BAD_REQUEST, 10, "Missing person_ids");
            }
            set_persons(&mut home, |id| ids.contains(id), false);
            written(&clock)
        }
        "/api/homestatus"
        | "/api/setthermmode"
        | "/api/setroomthermpoint"
        | "/api/setstate"
        | "/api/setpersonsaway"
        | "/api/setpersonshome" => recorded_error(StatusCode::BAD_REQUEST, INVALID_ID),
        _ => error(StatusCode::NOT_FOUND, 404, "Not found"),
    }
}

/// The fake's own base URL, as the client reached it.
fn base_of(req: &Incoming) -> String {
    let host = req
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `homesdata`, all homes or the one asked for, with the heating mode now.
fn homes_data(clock: &ManualClock, home: &Recorded, home_id: Option<&str>) -> Response {
    let mut answer = home.homes.clone();
    if let Some(id) = home_id
        && let Some(homes) = answer
            .pointer_mut("/body/homes")
            .and_then(Value::as_array_mut)
    {
        homes.retain(|h| h["id"] == id);
        if homes.is_empty() {
            return recorded_error(StatusCode::BAD_REQUEST, INVALID_ID);
        }
    }
    recorded(clock, answer)
}

/// `getstationsdata`: the station asked for (`device_id`), or all of them.
fn stations(clock: &ManualClock, home: &Recorded, device_id: Option<&str>) -> Response {
    let mut answer = home.stations.clone();
    if let Some(id) = device_id
        && let Some(devices) = answer
            .pointer_mut("/body/devices")
            .and_then(Value::as_array_mut)
    {
        devices.retain(|d| d["_id"] == id);
        if devices.is_empty() {
            return error(StatusCode::BAD_REQUEST, 9, "Device not found");
        }
    }
    recorded(clock, answer)
}

fn therm_mode(clock: &ManualClock, home: &mut Recorded, req: &Incoming) -> Response {
    let Some(mode) = req.param("mode") else {
        return recorded_error(StatusCode::BAD_REQUEST, MODE_MISSING);
    };
    if !["schedule", "away", "hg"].contains(&mode) {
        return error(StatusCode::BAD_REQUEST, 21, "mode not authorized");
    }
    let end = req.param("endtime").and_then(|e| e.parse().ok());
    // pyatmo sends an end time only with away and hg (home.py L290-294); the fake refuses
    // one with schedule rather than guess what Netatmo makes of it.
    if end.is_some() && mode == "schedule" {
        return error(
            StatusCode::BAD_REQUEST,
            21,
            "endtime only goes with away or hg",
        );
    }
    if let Some(h) = home.home_mut() {
        h.insert("therm_mode".into(), json!(mode));
    }
    home.therm_end = end;
    written(clock)
}

fn room_thermpoint(clock: &ManualClock, home: &mut Recorded, req: &Incoming) -> Response {
    let room_id = req.param("room_id").unwrap_or_default().to_string();
    let Some(room) = home.room(&room_id).cloned() else {
        return error(StatusCode::BAD_REQUEST, 21, "Invalid room_id");
    };
    if !home.thermpoint_room(&room) {
        // The fake's fail-safe: a room an OTM or Smarther home drives through setstate would
        // be ineffective here (pyatmo commit 420aa2e); a refusal shows the mistake.
        return error(
            StatusCode::BAD_REQUEST,
            21,
            "this room's set point goes through setstate in a home with an OTM or Smarther",
        );
    }
    let mode = req.param("mode").unwrap_or_default().to_string();
    if !["manual", "max", "home", "hg", "off"].contains(&mode.as_str()) {
        return error(StatusCode::BAD_REQUEST, 21, "mode not authorized");
    }
    let temp = req.param("temp").and_then(|t| t.parse::<f64>().ok());
    if mode == "manual" && temp.is_none() {
        return error(StatusCode::BAD_REQUEST, 10, "Missing parameters");
    }
    let end = req.param("endtime").and_then(|e| e.parse::<i64>().ok());
    set_room(home, &room_id, "therm", &mode, temp, end);
    written(clock)
}

/// Writes a room's set point into its status.
fn set_room(
    home: &mut Recorded,
    room_id: &str,
    prefix: &str,
    mode: &str,
    temp: Option<f64>,
    end: Option<i64>,
) {
    if let Some(room) = home.room_status_mut(room_id) {
        room.insert(format!("{prefix}_setpoint_mode"), json!(mode));
        if let Some(t) = temp {
            room.insert(format!("{prefix}_setpoint_temperature"), json!(t));
        }
        room.insert(format!("{prefix}_setpoint_end_time"), json!(end));
    }
}

fn set_persons(home: &mut Recorded, which: impl Fn(&str) -> bool, away: bool) {
    if let Some(persons) = home.status.get_mut("persons").and_then(Value::as_array_mut) {
        for p in persons.iter_mut() {
            if p["id"].as_str().is_some_and(&which)
                && let Some(p) = p.as_object_mut()
            {
                p.insert("out_of_sight".into(), json!(away));
            }
        }
    }
}

/// `setstate`: every module and room is checked first (a refusal changes nothing), then
/// applied; an offline module is a partial failure inside the 200.
fn set_state(clock: &ManualClock, home: &mut Recorded, req: &Incoming) -> Response {
    let modules = Recorded::list(&req.json["home"], "modules").to_vec();
    let rooms = Recorded::list(&req.json["home"], "rooms").to_vec();
    for module in &modules {
        let id = module["id"].as_str().unwrap_or_default();
        let Some(known) = home.module(id) else {
            let mut body: Value = serde_json::from_str(INVALID_DEVICE).unwrap_or(Value::Null);
            body["error"]["message"] = json!(format!("Invalid device_id, {id}"));
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        };
        if known.get("bridge").is_some() && module.get("bridge") != known.get("bridge") {
            return error(
                StatusCode::BAD_REQUEST,
                21,
                &format!("missing or wrong bridge for module {id}"),
            );
        }
        let state = Recorded::list(&home.status, "modules")
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or(Value::Null);
        for property in ["on", "brightness", "target_position"] {
            if module.get(property).is_some() && state.get(property).is_none() {
                return error(
                    StatusCode::BAD_REQUEST,
                    21,
                    &format!("cannot set property {property} for module {id}"),
                );
            }
        }
    }
    for room in &rooms {
        let id = room["id"].as_str().unwrap_or_default();
        if home.room(id).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                21,
                &format!("Invalid room id {id}"),
            );
        }
    }
    let mut errors = Vec::new();
    for module in &modules {
        let id = module["id"].as_str().unwrap_or_default();
        if home.offline.contains(id) {
            errors.push(json!({"code": 6, "id": id}));
            continue;
        }
        if let Some(state) = home.module_status_mut(id) {
            if let Some(on) = module["on"].as_bool() {
                state.insert("on".into(), json!(on));
            }
            if let Some(b) = module["brightness"].as_i64() {
                state.insert("brightness".into(), json!(b.clamp(0, 100)));
            }
            // 0..100 is a position; -1 (stop) and -2 (preferred position) leave it as it is.
            if let Some(p) = module["target_position"].as_i64().filter(|p| *p >= 0) {
                state.insert("target_position".into(), json!(p));
                state.insert("current_position".into(), json!(p));
            }
        }
    }
    for room in &rooms {
        let id = room["id"].as_str().unwrap_or_default();
        for prefix in ["therm", "cooling"] {
            if let Some(mode) = room[format!("{prefix}_setpoint_mode")].as_str() {
                set_room(
                    home,
                    id,
                    prefix,
                    mode,
                    room[format!("{prefix}_setpoint_temperature")].as_f64(),
                    room[format!("{prefix}_setpoint_end_time")].as_i64(),
                );
            }
        }
    }
    if errors.is_empty() {
        written(clock)
    } else {
        // The shape of pyatmo's `archive/camera_set_state_error_already_on.json`.
        ok(clock, json!({"home": {"id": HOME}, "errors": errors}))
    }
}
