//! A fake Athom cloud and Homey: `/oauth2/authorise` (British) and `/oauth2/token` with HTTP
//! Basic client auth; `GET /user/me` listing the account's Homeys; `POST /delegation/token
//! ?audience=homey` answering a quoted JWT (single use); each Homey at `/homey/{id}` with
//! `POST /api/manager/users/login {"token"}` answering a quoted session bearer, and the Web API
//! (devices, capabilities, flows, logic variables) requiring that bearer and `X-Homey-ID`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use homehook_core::clock::ManualClock;
use serde_json::{Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{
    Access, ClientAuthStyle, ExpiredStyle, FakeSettings, FakeVendor, OAuthHandle,
};

/// The Homey of a one-Homey account.
pub const HOMEY: &str = "5f8c0a1b2c3d4e5f6a7b8c9d";
/// A dimmable lamp.
pub const LAMP: &str = "0b3a7c1e-lamp";
/// A thermostat.
pub const THERMOSTAT: &str = "9d2f4a6b-thermo";
/// A flow.
pub const FLOW: &str = "flow-good-night";
/// An advanced flow.
pub const ADVANCED_FLOW: &str = "aflow-away";
/// A boolean variable.
pub const GUESTS: &str = "var-guests";

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
    fn default() -> Self {
        Self {
            capabilities: BTreeMap::from([
                (
                    LAMP.into(),
                    BTreeMap::from([("onoff".into(), json!(false)), ("dim".into(), json!(1.0))]),
                ),
                (
                    THERMOSTAT.into(),
                    BTreeMap::from([
                        ("target_temperature".into(), json!(19.0)),
                        ("measure_temperature".into(), json!(20.4)),
                    ]),
                ),
            ]),
            triggered: Vec::new(),
            variables: BTreeMap::from([(GUESTS.into(), json!(false))]),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    homeys: Mutex<Vec<(String, String)>>,
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
    /// Athom's token endpoint: HTTP Basic, ~1 h tokens, rotating refresh tokens.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            client_auth: ClientAuthStyle::Basic,
            access_ttl_secs: 3_660,
            rotate_refresh_tokens: true,
            expired_style: ExpiredStyle::InvalidToken401,
            authorize_path: "/oauth2/authorise".into(),
            scopes: None,
            ..FakeSettings::default()
        }
    }

    /// Starts it with one Homey.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        let inner = Arc::new(Inner {
            homeys: Mutex::new(vec![(HOMEY.into(), "Homey Pro".into())]),
            ..Inner::default()
        });
        let vendor = super::serve(clock, settings, &inner, api).await;
        Self { vendor, inner }
    }

    /// Adds a second Homey to the account.
    pub fn add_homey(&self, id: &str, name: &str) {
        lock(&self.inner.homeys).push((id.into(), name.into()));
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

fn homey_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    if let Some(rest) = req.path.strip_prefix("/homey/") {
        let (id, path) = rest.split_once('/').unwrap_or((rest, ""));
        return homey_api(&oauth, &inner, id, &format!("/{path}"), &req);
    }
    // The cloud.
    if oauth.access(req.token.as_deref()) != Access::Valid {
        return homey_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token provided has expired",
        );
    }
    oauth.record(req.call());
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/user/me") => {
            let homeys: Vec<Value> = lock(&inner.homeys)
                .iter()
                .map(|(id, name)| {
                    json!({
                        "_id": id, "name": name, "platform": "local", "apiVersion": 3,
                        "remoteUrl": format!("{}/homey/{id}", base_of(&req)),
                        "localUrl": "http://192.168.1.20"
                    })
                })
                .collect();
            axum::Json(json!({"_id": "user-1", "firstname": "Owner", "homeys": homeys}))
                .into_response()
        }
        (&Method::POST, "/delegation/token") if req.param("audience") == Some("homey") => {
            inner.delegation_calls.fetch_add(1, Ordering::SeqCst);
            let jwt = random("eyJhbGciOiJIUzI1NiJ9.");
            crate::leak_watch::issued("homey_delegation_token", &jwt);
            lock(&inner.delegations).insert(jwt.clone());
            axum::Json(Value::String(jwt)).into_response()
        }
        _ => homey_error(StatusCode::NOT_FOUND, "not_found", "Not found"),
    }
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

fn homey_api(
    oauth: &OAuthHandle,
    inner: &Inner,
    homey: &str,
    path: &str,
    req: &Incoming,
) -> Response {
    if !lock(&inner.homeys).iter().any(|(id, _)| id == homey) {
        return homey_error(StatusCode::NOT_FOUND, "not_found", "No such Homey");
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
    let device_json = |id: &str, caps: &BTreeMap<String, Value>| {
        let (name, class) = if id == LAMP {
            ("Living lamp", "light")
        } else {
            ("Hall thermostat", "thermostat")
        };
        let objs: serde_json::Map<String, Value> = caps
            .iter()
            .map(|(c, v)| {
                let (title, units) = match c.as_str() {
                    "onoff" => ("Turned on", Value::Null),
                    "dim" => ("Dim level", Value::Null),
                    "target_temperature" => ("Target temperature", json!("°C")),
                    _ => ("Temperature", json!("°C")),
                };
                (
                    c.clone(),
                    json!({"id": c, "value": v, "title": title, "units": units}),
                )
            })
            .collect();
        json!({"id": id, "name": name, "class": class, "capabilities": caps.keys().collect::<Vec<_>>(), "capabilitiesObj": objs})
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&req.method, segments.as_slice()) {
        (&Method::GET, ["api", "manager", "devices", "device"]) => {
            let all: serde_json::Map<String, Value> = state
                .capabilities
                .iter()
                .map(|(id, caps)| (id.clone(), device_json(id, caps)))
                .collect();
            axum::Json(Value::Object(all)).into_response()
        }
        (&Method::GET, ["api", "manager", "devices", "device", id]) => {
            match state.capabilities.get(*id) {
                Some(caps) => axum::Json(device_json(id, caps)).into_response(),
                None => homey_error(StatusCode::NOT_FOUND, "not_found", "Device not found"),
            }
        }
        (&Method::PUT, ["api", "manager", "devices", "device", id, "capability", cap]) => {
            let Some(caps) = state.capabilities.get_mut(*id) else {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Device not found");
            };
            let Some(slot) = caps.get_mut(*cap) else {
                return homey_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_capability",
                    "Invalid capability",
                );
            };
            let value = req.json["value"].clone();
            if value.is_null() || std::mem::discriminant(&value) != std::mem::discriminant(slot) {
                return homey_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_value",
                    "Invalid value type",
                );
            }
            *slot = value;
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, ["api", "manager", "flow", "flow"]) => {
            axum::Json(json!({FLOW: {"id": FLOW, "name": "Good night", "enabled": true}}))
                .into_response()
        }
        (&Method::GET, ["api", "manager", "flow", "advancedflow"]) => axum::Json(
            json!({ADVANCED_FLOW: {"id": ADVANCED_FLOW, "name": "Away mode", "enabled": true}}),
        )
        .into_response(),
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
            let known = (*kind == "flow" && *id == FLOW)
                || (*kind == "advancedflow" && *id == ADVANCED_FLOW);
            if !known {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Flow not found");
            }
            state.triggered.push(id.to_string());
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, ["api", "manager", "logic", "variable"]) => {
            let all: serde_json::Map<String, Value> = state
                .variables
                .iter()
                .map(|(id, v)| {
                    (
                        id.clone(),
                        json!({"id": id, "name": "Guests", "type": "boolean", "value": v}),
                    )
                })
                .collect();
            axum::Json(Value::Object(all)).into_response()
        }
        (&Method::PUT, ["api", "manager", "logic", "variable", id]) => {
            let Some(slot) = state.variables.get_mut(*id) else {
                return homey_error(StatusCode::NOT_FOUND, "not_found", "Variable not found");
            };
            *slot = req.json["value"].clone();
            axum::Json(json!({"id": id, "value": slot})).into_response()
        }
        _ => homey_error(StatusCode::NOT_FOUND, "not_found", "Not found"),
    }
}
