//! A fake Athom cloud and Homey: `/oauth2/authorise` (British) and `/oauth2/token` with HTTP
//! Basic client auth; `GET /user/me` listing the account's Homeys; `POST /delegation/token
//! ?audience=homey` answering a quoted JWT (single use); each Homey at `/homey/{id}` (its
//! `remoteUrl`; `/homey-forwarded/{id}` when a test gives it a `remoteUrlForwarded`) with
//! `GET /api/manager/system/ping`, `POST /api/manager/users/login {"token"}` answering a quoted
//! session bearer, and the Web API (session, devices, capabilities, flows, logic variables)
//! requiring that bearer and `X-Homey-ID`.
//!
//! Its bodies are tests/fixtures/homey (see SOURCES.md there): the devices are answers recorded
//! from real Homeys (published in two Homey apps' test data), the rest follows the API
//! specification shipped in Athom's `homey-api` package; the fake patches its state in (values,
//! URLs, ids). Athom's own client runs against it in tests/peers/homey.
//!
//! Two control paths exist for clients run out of process (tests/peers/homey):
//! `POST /fake/homey/expire-sessions` and `POST /fake/homey/expire-tokens`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use homehook_core::clock::ManualClock;
use serde_json::{Map, Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{
    Access, ClientAuthStyle, ExpiredStyle, FakeSettings, FakeVendor, OAuthHandle,
};

/// Recorded device listing (`GET /api/manager/devices/device`): a Hue bulb, a thermostat and a
/// Fibaro wall plug.
pub const DEVICES_JSON: &str = include_str!("../../fixtures/homey/devices.json");
/// Flow listing (`GET /api/manager/flow/flow`), after the spec's Flow schema.
pub const FLOWS_JSON: &str = include_str!("../../fixtures/homey/flows.json");
/// Advanced-flow listing (`GET /api/manager/flow/advancedflow`).
pub const ADVANCED_FLOWS_JSON: &str = include_str!("../../fixtures/homey/advancedflows.json");
/// Logic variables (`GET /api/manager/logic/variable`).
pub const VARIABLES_JSON: &str = include_str!("../../fixtures/homey/variables.json");
/// The cloud's `GET /user/me`, one Homey.
pub const USER_ME_JSON: &str = include_str!("../../fixtures/homey/user_me.json");
/// The Homey's `GET /api/manager/sessions/session/me`.
pub const SESSION_ME_JSON: &str = include_str!("../../fixtures/homey/session_me.json");
/// A Homey's error body (a flow that does not exist).
pub const ERROR_NOT_FOUND_JSON: &str = include_str!("../../fixtures/homey/error_not_found.json");
/// The cloud's expired-token body.
pub const ERROR_INVALID_TOKEN_JSON: &str =
    include_str!("../../fixtures/homey/error_invalid_token.json");

/// The Homey of a one-Homey account.
pub const HOMEY: &str = "5f8c0a1b2c3d4e5f6a7b8c9d";
/// A dimmable lamp ("Study Lamp": `onoff`, `dim`).
pub const LAMP: &str = "7c2b75c4-fb27-4206-ada3-26950feefa95";
/// A thermostat ("Room 1 VThermo": `vt_onoff`, `target_temperature`, `measure_temperature`).
pub const THERMOSTAT: &str = "1f4c5f56-150e-4ec8-9183-ef33022a5129";
/// A wall plug ("Room 1 Wallplug 1": `measure_power`, `meter_power`, `onoff`).
pub const PLUG: &str = "0afda5c4-5f67-42be-959e-dae52e0af455";
/// A flow ("Good night").
pub const FLOW: &str = "6c1a5f8e-3b2d-4e7f-9a10-2b3c4d5e6f70";
/// An advanced flow ("Away mode").
pub const ADVANCED_FLOW: &str = "8d2b6a9f-4c3e-4f80-8b21-3c4d5e6f7081";
/// A boolean variable ("Guests").
pub const GUESTS: &str = "a3e1c2d4-5b6f-4a70-9c81-4d5e6f708192";
/// A number variable ("Heating offset").
pub const HEATING_OFFSET: &str = "b4f2d3e5-6c7a-4b81-8d92-5e6f708192a3";
/// A text variable ("Welcome message").
pub const WELCOME: &str = "c5a3e4f6-7d8b-4c92-8ea3-6f708192a3b5";

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("a Homey fixture is JSON")
}

/// What the Homey holds.
#[derive(Debug, Clone)]
pub struct HomeyState {
    /// Device id → capability → value.
    pub capabilities: BTreeMap<String, BTreeMap<String, Value>>,
    /// Flows triggered, in order.
    pub triggered: Vec<String>,
    /// Variable id → value.
    pub variables: BTreeMap<String, Value>,
}

impl Default for HomeyState {
    /// The values the fixtures were recorded with.
    fn default() -> Self {
        let capabilities = fixture(DEVICES_JSON)
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, device)| {
                let caps = device["capabilitiesObj"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(cap, obj)| (cap.clone(), obj["value"].clone()))
                    .collect();
                (id.clone(), caps)
            })
            .collect();
        let variables = fixture(VARIABLES_JSON)
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, v)| (id.clone(), v["value"].clone()))
            .collect();
        Self {
            capabilities,
            triggered: Vec::new(),
            variables,
        }
    }
}

/// How the cloud reports a Homey's internet URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteUrls {
    /// `remoteUrl` (Athom's relay, `https://<id>.connect.athom.com` for real): `/homey/{id}`.
    pub remote: bool,
    /// `remoteUrlForwarded` (the owner's router forwards a port): `/homey-forwarded/{id}`.
    pub forwarded: bool,
}

#[derive(Debug)]
struct Homey {
    id: String,
    name: String,
    urls: RemoteUrls,
}

#[derive(Debug, Default)]
struct Inner {
    homeys: Mutex<Vec<Homey>>,
    state: Mutex<HomeyState>,
    delegations: Mutex<HashSet<String>>,
    /// Session bearer → Homey id.
    sessions: Mutex<HashMap<String, String>>,
    logins: AtomicUsize,
    delegation_calls: AtomicUsize,
    forget_next_login: AtomicBool,
    faults: Faults,
}

/// A running fake Athom cloud with its Homeys.
#[derive(Debug)]
pub struct FakeHomey {
    /// The OAuth server and counters.
    pub vendor: FakeVendor,
    inner: Arc<Inner>,
}

impl FakeHomey {
    /// Athom's token endpoint: HTTP Basic, ~1 h tokens, rotating refresh tokens; a code
    /// exchange without `redirect_uri` is accepted, as Athom's own client sends none.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            client_auth: ClientAuthStyle::Basic,
            access_ttl_secs: 3_660,
            rotate_refresh_tokens: true,
            expired_style: ExpiredStyle::InvalidToken401,
            authorize_path: "/oauth2/authorise".into(),
            scopes: None,
            redirect_uri_optional: true,
            ..FakeSettings::default()
        }
    }

    /// Starts it with one Homey.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        let inner = Arc::new(Inner {
            homeys: Mutex::new(Vec::new()),
            ..Inner::default()
        });
        let vendor = super::serve(clock, settings, &inner, api).await;
        let fake = Self { vendor, inner };
        fake.add_homey(HOMEY, "Homey Pro");
        fake
    }

    /// Adds a Homey to the account (reachable at its `remoteUrl`).
    pub fn add_homey(&self, id: &str, name: &str) {
        lock(&self.inner.homeys).push(Homey {
            id: id.into(),
            name: name.into(),
            urls: RemoteUrls {
                remote: true,
                forwarded: false,
            },
        });
    }

    /// Changes which internet URLs the cloud reports for Homey `id`.
    pub fn set_remote_urls(&self, id: &str, urls: RemoteUrls) {
        if let Some(h) = lock(&self.inner.homeys).iter_mut().find(|h| h.id == id) {
            h.urls = urls;
        }
    }

    /// The Homey now.
    pub fn state(&self) -> HomeyState {
        lock(&self.inner.state).clone()
    }

    /// Every Homey forgets its sessions (as after a reboot, or a day later).
    pub fn expire_sessions(&self) {
        lock(&self.inner.sessions).clear();
    }

    /// The next session the Homey hands out is forgotten at once (a reboot right after login).
    pub fn forget_next_login(&self) {
        self.inner.forget_next_login.store(true, Ordering::SeqCst);
    }

    /// Session logins so far.
    pub fn logins(&self) -> usize {
        self.inner.logins.load(Ordering::SeqCst)
    }

    /// Delegation-token calls so far.
    pub fn delegations(&self) -> usize {
        self.inner.delegation_calls.load(Ordering::SeqCst)
    }

    /// Queue failures (on the Homey's Web API).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

fn random(prefix: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// A Homey's error, in the recorded shape (`error`, `error_description`, `statusCode`: the
/// fields homey-api reads, HomeyAPIV3.js and DiscoveryManager.js).
fn homey_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut body = fixture(ERROR_NOT_FOUND_JSON);
    body["error"] = json!(error);
    body["error_description"] = json!(description);
    body["statusCode"] = json!(status.as_u16());
    (status, axum::Json(body)).into_response()
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    for prefix in ["/homey/", "/homey-forwarded/"] {
        if let Some(rest) = req.path.strip_prefix(prefix) {
            let (id, path) = rest.split_once('/').unwrap_or((rest, ""));
            return homey_api(&oauth, &inner, id, &format!("/{path}"), &req);
        }
    }
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/fake/homey/expire-sessions") => {
            lock(&inner.sessions).clear();
            return StatusCode::NO_CONTENT.into_response();
        }
        (&Method::POST, "/fake/homey/expire-tokens") => {
            oauth.expire_access_tokens();
            return StatusCode::NO_CONTENT.into_response();
        }
        _ => {}
    }
    // The cloud.
    if oauth.access(req.token.as_deref()) != Access::Valid {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(fixture(ERROR_INVALID_TOKEN_JSON)),
        )
            .into_response();
    }
    oauth.record(req.call());
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/user/me") => axum::Json(user_me(&inner, &base_of(&req))).into_response(),
        (&Method::POST, "/delegation/token") if req.param("audience") == Some("homey") => {
            inner.delegation_calls.fetch_add(1, Ordering::SeqCst);
            // The recorded shape: a bare JSON string (fixtures/homey/delegation_token.json).
            let jwt = random("eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.");
            crate::leak_watch::issued("homey_delegation_token", &jwt);
            lock(&inner.delegations).insert(jwt.clone());
            axum::Json(Value::String(jwt)).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not_found", "error_description": "Not Found"})),
        )
            .into_response(),
    }
}

/// `/user/me` from the fixture, its Homey repeated for each of the account's Homeys, with this
/// fake's URLs patched in.
fn user_me(inner: &Inner, base: &str) -> Value {
    let mut me = fixture(USER_ME_JSON);
    let template = me["homeys"][0].clone();
    let homeys: Vec<Value> = lock(&inner.homeys)
        .iter()
        .map(|h| {
            let mut entry = template.clone();
            entry["_id"] = json!(h.id);
            entry["name"] = json!(h.name);
            entry["remoteUrl"] = match h.urls.remote {
                true => json!(format!("{base}/homey/{}", h.id)),
                false => Value::Null,
            };
            entry["remoteUrlForwarded"] = match h.urls.forwarded {
                true => json!(format!("{base}/homey-forwarded/{}", h.id)),
                false => Value::Null,
            };
            entry
        })
        .collect();
    me["homeys"] = Value::Array(homeys);
    me
}

/// The Homey's own base URL, as the cloud reports it: the address this request came to.
fn base_of(req: &Incoming) -> String {
    let host = req
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A listing fixture (object keyed by id), its `value`s replaced by the state's.
fn listing_with(text: &str, values: &BTreeMap<String, Value>) -> Value {
    let mut all = fixture(text);
    if let Some(map) = all.as_object_mut() {
        for (id, item) in map.iter_mut() {
            if let Some(v) = values.get(id) {
                item["value"] = v.clone();
            }
        }
    }
    all
}

/// The recorded devices with the state's capability values.
fn devices(state: &HomeyState) -> Map<String, Value> {
    let mut all = fixture(DEVICES_JSON);
    let map = all.as_object_mut().map(std::mem::take).unwrap_or_default();
    map.into_iter()
        .map(|(id, mut device)| {
            for (cap, value) in state.capabilities.get(&id).into_iter().flatten() {
                device["capabilitiesObj"][cap]["value"] = value.clone();
            }
            (id, device)
        })
        .collect()
}

/// Why the fake refuses `value` for the capability described by `cap`, or `None`. It reads the
/// limits a recorded `capabilitiesObj` states (`type`, `setable`, `min`, `max`); whether a real
/// Homey refuses the same way is not recorded (docs/providers/homey.md, "Still unknown").
fn refuse_capability_value(cap: &Value, value: &Value) -> Option<&'static str> {
    if cap["setable"] == json!(false) {
        return Some("Capability is not setable");
    }
    let type_ok = match cap["type"].as_str() {
        Some("boolean") => value.is_boolean(),
        Some("number") => value.is_number(),
        Some("string") | Some("enum") => value.is_string(),
        _ => !value.is_null(),
    };
    if !type_ok {
        return Some("Invalid value type");
    }
    if let Some(v) = value.as_f64() {
        let below = cap["min"].as_f64().is_some_and(|min| v < min);
        let above = cap["max"].as_f64().is_some_and(|max| v > max);
        if below || above {
            return Some("Value out of range");
        }
    }
    None
}

fn homey_api(
    oauth: &OAuthHandle,
    inner: &Inner,
    homey: &str,
    path: &str,
    req: &Incoming,
) -> Response {
    if !lock(&inner.homeys).iter().any(|h| h.id == homey) {
        return homey_error(StatusCode::NOT_FOUND, "not_found", "No such Homey");
    }
    if path == "/api/manager/system/ping" {
        // homey-api pings every candidate URL with `?id=` before it uses one: `false` means
        // "not the Homey you asked for" (DiscoveryManager.js).
        let same = req.param("id").is_none_or(|id| id == homey);
        return (
            [
                ("x-homey-id", homey.to_string()),
                ("x-homey-version", "12.4.0".into()),
            ],
            axum::Json(json!(same)),
        )
            .into_response();
    }
    if path == "/api/manager/users/login" && req.method == Method::POST {
        let token = req.json["token"].as_str().unwrap_or_default();
        if !lock(&inner.delegations).remove(token) {
            return homey_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Invalid delegation token",
            );
        }
        inner.logins.fetch_add(1, Ordering::SeqCst);
        let session = random("session-");
        crate::leak_watch::issued("homey_session", &session);
        if !inner.forget_next_login.swap(false, Ordering::SeqCst) {
            lock(&inner.sessions).insert(session.clone(), homey.to_string());
        }
        return axum::Json(Value::String(session)).into_response();
    }
    let bearer = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let homey_header = req.headers.get("x-homey-id").and_then(|v| v.to_str().ok());
    let session_ok = lock(&inner.sessions).get(bearer).map(String::as_str) == Some(homey);
    if !session_ok || homey_header != Some(homey) {
        return homey_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Missing or invalid session",
        );
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return homey_error(status, "server_error", "Homey is busy");
    }
    let mut state = lock(&inner.state);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&req.method, segments.as_slice()) {
        (&Method::GET, ["api", "manager", "sessions", "session", "me"]) => {
            axum::Json(fixture(SESSION_ME_JSON)).into_response()
        }
        (&Method::GET, ["api", "manager", "devices", "device"]) => {
            axum::Json(Value::Object(devices(&state))).into_response()
        }
        (&Method::GET, ["api", "manager", "devices", "device", id]) => {
            match devices(&state).remove(*id) {
                Some(device) => axum::Json(device).into_response(),
                None => homey_error(StatusCode::NOT_FOUND, "not_found", "Device Not Found"),
            }
        }
        (&Method::PUT, ["api", "manager", "devices", "device", id, "capability", cap]) => {
            let Some(device) = devices(&state).remove(*id) else {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Device Not Found");
            };
            let described = &device["capabilitiesObj"][*cap];
            if described.is_null() {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Capability Not Found");
            }
            let value = req.json["value"].clone();
            if let Some(why) = refuse_capability_value(described, &value) {
                return homey_error(StatusCode::BAD_REQUEST, "invalid_value", why);
            }
            state
                .capabilities
                .entry(id.to_string())
                .or_default()
                .insert(cap.to_string(), value);
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, ["api", "manager", "flow", "flow"]) => {
            axum::Json(fixture(FLOWS_JSON)).into_response()
        }
        (&Method::GET, ["api", "manager", "flow", "advancedflow"]) => {
            axum::Json(fixture(ADVANCED_FLOWS_JSON)).into_response()
        }
        (
            &Method::POST,
            [
                "api",
                "manager",
                "flow",
                kind @ ("flow" | "advancedflow"),
                id,
                "trigger",
            ],
        ) => {
            let listing = fixture(if *kind == "flow" {
                FLOWS_JSON
            } else {
                ADVANCED_FLOWS_JSON
            });
            match listing.get(*id) {
                None => homey_error(StatusCode::NOT_FOUND, "not_found", "Flow Not Found"),
                Some(flow) if flow["enabled"] == json!(false) => {
                    homey_error(StatusCode::BAD_REQUEST, "flow_disabled", "Flow is disabled")
                }
                Some(_) => {
                    state.triggered.push(id.to_string());
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
        (&Method::GET, ["api", "manager", "logic", "variable"]) => {
            axum::Json(listing_with(VARIABLES_JSON, &state.variables)).into_response()
        }
        (&Method::GET, ["api", "manager", "logic", "variable", id]) => {
            match listing_with(VARIABLES_JSON, &state.variables).get(*id) {
                Some(v) => axum::Json(v.clone()).into_response(),
                None => homey_error(StatusCode::NOT_FOUND, "not_found", "Variable Not Found"),
            }
        }
        (&Method::PUT, ["api", "manager", "logic", "variable", id]) => {
            let Some(mut variable) = fixture(VARIABLES_JSON).get(*id).cloned() else {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Variable Not Found");
            };
            // The spec's updateVariable: the body is the variable (`root: true`); a value must
            // match the variable's `type`.
            let value = req.json["value"].clone();
            let type_ok = match variable["type"].as_str() {
                Some("boolean") => value.is_boolean(),
                Some("number") => value.is_number(),
                _ => value.is_string(),
            };
            if !type_ok {
                return homey_error(StatusCode::BAD_REQUEST, "invalid_value", "Invalid type");
            }
            state.variables.insert(id.to_string(), value.clone());
            variable["value"] = value;
            axum::Json(variable).into_response()
        }
        _ => homey_error(StatusCode::NOT_FOUND, "not_found", "Not Found"),
    }
}
