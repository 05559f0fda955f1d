//! A fake Myfox API v2: HTTP Basic client auth at `/oauth2/token` (password, authorization code,
//! refresh), the token as `?access_token=` or a bearer, every answer in the
//! `{"status":"OK","payload":…}` / `{"status":"KO","error":…,"error_description":…}` envelope
//! (a KO can come with HTTP 200), `invalid_token` for an expired token, "(632)" in the `error`
//! field for Myfox's temporary error (where myfox-api looks for it).
//!
//! Its bodies are tests/fixtures/myfox (see SOURCES.md there): no answer recorded from the live
//! API is public, so they follow the vendor's published models (ids are integers) and the
//! envelope its clients read, with the fake's state patched in.

use std::collections::BTreeMap;
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

/// The site.
pub const SITE: &str = "13579";
/// A scenario.
pub const SCENARIO: &str = "2468";
/// A socket.
pub const SOCKET: &str = "9001";
/// A shutter.
pub const SHUTTER: &str = "9002";
/// A gate.
pub const GATE: &str = "9003";
/// A heater.
pub const HEATER: &str = "9004";
/// A heater with a virtual thermostat (listed by `/device/heater/items/withthermostat`).
pub const THERMOSTAT: &str = "9005";

const SITES: &str = include_str!("../../fixtures/myfox/client_site_items.json");
const SECURITY: &str = include_str!("../../fixtures/myfox/site_security.json");
const SCENARIOS: &str = include_str!("../../fixtures/myfox/scenario_items.json");
const SOCKETS: &str = include_str!("../../fixtures/myfox/device_socket_items.json");
const SHUTTERS: &str = include_str!("../../fixtures/myfox/device_shutter_items.json");
const GATES: &str = include_str!("../../fixtures/myfox/device_gate_items.json");
const HEATERS: &str = include_str!("../../fixtures/myfox/device_heater_items.json");
const THERMOSTATS: &str =
    include_str!("../../fixtures/myfox/device_heater_items_withthermostat.json");
const COMMAND_OK: &str = include_str!("../../fixtures/myfox/command_ok.json");
const TEMPORARY: &str = include_str!("../../fixtures/myfox/ko_temporary_632.json");

/// A fixture body; a broken fixture serves `null`, which every test would notice.
fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A fixture answered as it is, HTTP 200.
fn served(text: &str) -> Response {
    axum::Json(fixture(text)).into_response()
}

/// The home as the Myfox app would show it.
#[derive(Debug, Clone, Default)]
pub struct MyfoxHome {
    /// 1 disarmed, 2 partial, 4 armed.
    pub security: u8,
    /// Scenarios played, in order.
    pub played: Vec<String>,
    /// Device id → last command.
    pub devices: BTreeMap<String, String>,
    /// Answer every command with the temporary error "(632)" (in `error`, HTTP 200).
    pub temporary_error: bool,
}

#[derive(Debug, Default)]
struct Inner {
    home: Mutex<MyfoxHome>,
    faults: Faults,
}

/// A running fake Myfox.
#[derive(Debug)]
pub struct FakeMyfox {
    /// The OAuth server and counters.
    pub vendor: FakeVendor,
    inner: Arc<Inner>,
}

impl FakeMyfox {
    /// Myfox's token endpoint: HTTP Basic, 1 h tokens, refresh tokens kept.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            client_auth: ClientAuthStyle::Basic,
            access_ttl_secs: 3_600,
            rotate_refresh_tokens: false,
            expired_style: ExpiredStyle::InvalidToken401,
            query_token: true,
            scopes: None,
            ..FakeSettings::default()
        }
    }

    /// Starts it.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        let inner = Arc::new(Inner {
            home: Mutex::new(MyfoxHome {
                security: 1,
                ..MyfoxHome::default()
            }),
            faults: Faults::default(),
        });
        let vendor = super::serve(clock, settings, &inner, api).await;
        Self { vendor, inner }
    }

    /// The API base homehook is configured with.
    pub fn api_base(&self) -> String {
        format!("{}/v2", self.vendor.base)
    }

    /// The home now.
    pub fn home(&self) -> MyfoxHome {
        lock(&self.inner.home).clone()
    }

    /// Changes the home.
    pub fn update(&self, f: impl FnOnce(&mut MyfoxHome)) {
        f(&mut lock(&self.inner.home));
    }

    /// Queue failures.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

fn ko(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"status": "KO", "error": error, "error_description": description})),
    )
        .into_response()
}

fn label(level: u8) -> &'static str {
    match level {
        4 => "armed",
        2 => "partial",
        _ => "disarmed",
    }
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    match oauth.access(req.token.as_deref()) {
        Access::Expired => {
            return ko(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token provided has expired.",
            );
        }
        Access::Unknown => {
            return ko(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token provided is invalid.",
            );
        }
        Access::Valid => {}
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return ko(status, "server_error", "Internal error");
    }
    let mut home = lock(&inner.home);
    let Some(rest) = req.path.strip_prefix("/v2") else {
        return ko(StatusCode::NOT_FOUND, "not_found", "Unknown method");
    };
    if rest == "/client/site/items" {
        return served(SITES);
    }
    let Some(site_rest) = rest.strip_prefix(&format!("/site/{SITE}")) else {
        return ko(StatusCode::BAD_REQUEST, "invalid_request", "Unknown site");
    };
    let post = req.method == Method::POST;
    if post && home.temporary_error {
        return served(TEMPORARY);
    }
    match (post, site_rest) {
        (false, "/security") => {
            let mut answer = fixture(SECURITY);
            answer["payload"] =
                json!({"status": home.security, "statusLabel": label(home.security)});
            axum::Json(answer).into_response()
        }
        (true, s) if s.starts_with("/security/set/") => {
            home.security = match &s["/security/set/".len()..] {
                "armed" => 4,
                "partial" => 2,
                "disarmed" => 1,
                _ => {
                    return ko(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Unknown security level",
                    );
                }
            };
            served(COMMAND_OK)
        }
        (false, "/scenario/items") => served(SCENARIOS),
        (true, s) if s == format!("/scenario/{SCENARIO}/play") => {
            home.played.push(SCENARIO.into());
            served(COMMAND_OK)
        }
        (false, "/device/socket/items") => served(SOCKETS),
        (false, "/device/shutter/items") => served(SHUTTERS),
        (false, "/device/gate/items") => served(GATES),
        (false, "/device/heater/items") => served(HEATERS),
        (false, "/device/heater/items/withthermostat") => served(THERMOSTATS),
        (true, s) if s.starts_with("/device/") => {
            let mut parts = s.trim_start_matches("/device/").splitn(2, '/');
            let (id, command) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let valid = match id {
                SOCKET => ["socket/on", "socket/off"].contains(&command),
                SHUTTER => ["shutter/open", "shutter/close", "shutter/my"].contains(&command),
                GATE => ["gate/perform/one", "gate/perform/two"].contains(&command),
                // Whether Myfox refuses thermostat modes on a plain heater is unknown: both
                // take all eight here.
                HEATER | THERMOSTAT => command.strip_prefix("heater/").is_some_and(|m| {
                    [
                        "on",
                        "off",
                        "eco",
                        "frost",
                        "auto",
                        "away",
                        "boost",
                        "thermostatoff",
                    ]
                    .contains(&m)
                }),
                _ => return ko(StatusCode::BAD_REQUEST, "invalid_request", "Unknown device"),
            };
            if !valid {
                return ko(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Unsupported command for this device",
                );
            }
            home.devices.insert(id.to_string(), command.to_string());
            served(COMMAND_OK)
        }
        _ => ko(StatusCode::NOT_FOUND, "not_found", "Unknown method"),
    }
}
