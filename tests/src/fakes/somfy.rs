//! A fake Somfy Protect, serving answers recorded from the live API (tests/fixtures/somfy_protect,
//! see its SOURCES.md) with the fake's state patched in.
//!
//! - Tokens at `/oauth/oauth/v2/token/jwt` ([`TOKEN_PATH`]): password and refresh grants, JWT
//!   access tokens (their expiry in the `exp` claim and, by default, in `expires_in` too:
//!   whether the live answer carries it is unknown, see
//!   [`crate::fake_vendor::FakeSettings::jwt_expires_in`]), `scope` as an array, at most five
//!   token requests per ten minutes (then 429 with `X-RateLimit-Retry-After`).
//! - The legacy `/oauth/oauth/v2/token` ([`LEGACY_TOKEN_PATH`]) answers 200 without an access
//!   token, as the live one has since 2025-12-26.
//! - The API under `/v3`: sites, devices, one device, security level, device settings. A PUT of
//!   a device's settings **replaces** its `settings.global` (whether Somfy merges is unknown;
//!   replacing is the reading under which a partial body does harm). Errors are
//!   `{"message":"error.…","data":[],"uid":…}`.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use homehook_core::clock::{Clock, ManualClock};
use serde_json::{Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{
    Access, CallBudget, ClientAuthStyle, FakeSettings, FakeVendor, OAuthHandle, TokenErrorStyle,
};

/// The site (the recorded site's id).
pub const SITE: &str = "Szr5IxqYraaPqh2FFGNms2BQUT0R0hNT";
/// The site's label, as the owner named it in the app.
pub const SITE_LABEL: &str = "Maison";
/// The indoor siren (`mss_siren` in the recorded device list).
pub const SIREN: &str = "MCzYWIDNuWNn5qfdUK5U2HiM0iDXQzMA";
/// Its label.
pub const SIREN_LABEL: &str = "Innensirene";
/// The outdoor siren (`mss_outdoor_siren`).
pub const OUTDOOR_SIREN: &str = "BStcq4XsKYBOdwspLS9TG8B9cZzEmCFO";
/// The keypad: it has a `sound_enabled` setting too, but it is no siren.
pub const KEYPAD: &str = "BayzpyoOyvZYMQwqsnmmu3FBHHz9cuLX";
/// The token endpoint clients use since 2025-12-26 (SomfyProtect2MQTT commit e945a89).
pub const TOKEN_PATH: &str = "/oauth/oauth/v2/token/jwt";
/// The token endpoint before that; its answers no longer carry an access token.
pub const LEGACY_TOKEN_PATH: &str = "/oauth/oauth/v2/token";

const LIST_SITES: &str = include_str!("../../fixtures/somfy_protect/list_sites.json");
const LIST_DEVICES: &str = include_str!("../../fixtures/somfy_protect/list_devices.json");
const JOB: &str = include_str!("../../fixtures/somfy_protect/job.json");
const TOKEN: &str = include_str!("../../fixtures/somfy_protect/token.json");
const SITE_NOT_FOUND: &str = include_str!("../../fixtures/somfy_protect/site_not_found.json");
const UNAUTHORIZED: &str = include_str!("../../fixtures/somfy_protect/unauthorized.json");

/// A recorded body; a broken fixture serves `null`, which every test would notice.
fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The alarm as the owner would see it in the Somfy app.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// `armed`, `partial` or `disarmed`.
    pub security_level: String,
    /// The site's label.
    pub site_label: String,
    /// The site is restoring (answers 404 `error.site.restoration.running`).
    pub restoring: bool,
    /// The status an expired access token is answered with: 401 (what the fake saw so far) or
    /// 403 (which SomfyProtect2MQTT also renews on, commit ad79944).
    pub expired_status: u16,
    /// The site's devices, as `GET /site/{id}/device` lists them: the recorded list, changed by
    /// the PUTs the fake received.
    pub devices: Vec<Value>,
}

impl Alarm {
    /// A device by id.
    pub fn device(&self, id: &str) -> Option<&Value> {
        self.devices
            .iter()
            .find(|d| d["device_id"].as_str() == Some(id))
    }

    /// A key of a device's `settings.global` (`None`: the key is gone).
    pub fn setting(&self, device: &str, key: &str) -> Option<&Value> {
        self.device(device)?
            .pointer(&format!("/settings/global/{key}"))
    }

    /// The indoor siren's `sound_enabled`.
    pub fn siren_sound(&self) -> Option<bool> {
        self.setting(SIREN, "sound_enabled")
            .and_then(Value::as_bool)
    }

    /// The indoor siren's label now.
    pub fn siren_label(&self) -> String {
        self.device(SIREN)
            .and_then(|d| d["label"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

impl Default for Alarm {
    fn default() -> Self {
        let listed = fixture(LIST_DEVICES);
        Self {
            security_level: "disarmed".into(),
            site_label: SITE_LABEL.into(),
            restoring: false,
            expired_status: 401,
            devices: listed["items"].as_array().cloned().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    alarm: Mutex<Alarm>,
    faults: Faults,
}

/// A running fake Somfy Protect.
#[derive(Debug)]
pub struct FakeSomfy {
    /// The OAuth server and counters.
    pub vendor: FakeVendor,
    inner: Arc<Inner>,
}

impl FakeSomfy {
    /// Somfy Protect's token endpoint: [`TOKEN_PATH`], password grant, form client auth, 1 h
    /// JWT access tokens, scopes as an array, 5 token requests per 10 minutes, Somfy-worded
    /// errors.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            client_id: "84eddf48-2b8e-11e5-b2a5-124cfab25595_475buqrf8v8kgwoo4gow08gkkc0ck80488wo44s8o48sg84k40".into(),
            client_auth: ClientAuthStyle::Form,
            access_ttl_secs: 3_600,
            rotate_refresh_tokens: true,
            account: ("owner@example.com".into(), "correct horse".into()),
            token_paths: vec![TOKEN_PATH.into()],
            jwt_token_path: Some(TOKEN_PATH.into()),
            token_budget: Some(CallBudget {
                max: 5,
                window_secs: 600,
            }),
            token_error_style: TokenErrorStyle::Somfy,
            scopes: Some(fixture(TOKEN)["scope"].clone()),
            // Unknown: Somfy's own 429 guidance (SomfyProtect2MQTT issue #244) tells clients to
            // "save the returned expires_in/expiresAt on the login", so by default the answer
            // carries it; tests set `false` for the other reading (expiry from `exp` only).
            jwt_expires_in: true,
            ..FakeSettings::default()
        }
    }

    /// Starts it.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        let inner = Arc::new(Inner::default());
        let vendor = super::serve(clock, settings, &inner, api).await;
        Self { vendor, inner }
    }

    /// The API base homehook is configured with.
    pub fn api_base(&self) -> String {
        format!("{}/v3", self.vendor.base)
    }

    /// The token URL homehook is configured with (the current endpoint).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.vendor.base)
    }

    /// The alarm now.
    pub fn alarm(&self) -> Alarm {
        lock(&self.inner.alarm).clone()
    }

    /// Changes the alarm (e.g. start a restoration).
    pub fn update(&self, f: impl FnOnce(&mut Alarm)) {
        f(&mut lock(&self.inner.alarm));
    }

    /// Queue failures.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

fn somfy_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "data": [], "uid": "0f9c2e"})),
    )
        .into_response()
}

/// The recorded site with the fake's state in it.
fn site_json(alarm: &Alarm) -> Value {
    let mut site = fixture(LIST_SITES)["items"][0].clone();
    site["site_id"] = json!(SITE);
    site["label"] = json!(alarm.site_label);
    site["name"] = json!(alarm.site_label);
    site["security_level"] = json!(alarm.security_level);
    site["restoration_active"] = json!(alarm.restoring);
    site
}

/// A Job, as `PUT …/security` and `PUT …/device/{id}` answer (swagger `Job`: `created_at` in
/// integer milliseconds).
fn job(oauth: &OAuthHandle) -> Response {
    let mut job = fixture(JOB);
    job["site_id"] = json!(SITE);
    job["created_at"] = json!(oauth.clock().now().0 * 1000);
    axum::Json(job).into_response()
}

/// The legacy token endpoint since 2025-12-26: an answer without an access token (its exact
/// body is not recorded anywhere public; clients fail on the missing `access_token`).
fn legacy_token_answer() -> Response {
    axum::Json(json!({
        "token_type": "bearer",
        "scope": fixture(TOKEN)["scope"],
        "expires_in": 3600,
    }))
    .into_response()
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    if req.method == Method::POST && req.path == LEGACY_TOKEN_PATH {
        return legacy_token_answer();
    }
    match oauth.access(req.token.as_deref()) {
        Access::Valid => {}
        Access::Expired => {
            let status = lock(&inner.alarm).expired_status;
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            return (status, axum::Json(fixture(UNAUTHORIZED))).into_response();
        }
        Access::Unknown => {
            return (StatusCode::UNAUTHORIZED, axum::Json(fixture(UNAUTHORIZED))).into_response();
        }
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Somfy's wording of a refusal is not recorded; these only need to be Somfy-shaped.
        let message = if status == StatusCode::FORBIDDEN {
            "error.forbidden"
        } else {
            "error.internal"
        };
        return somfy_error(status, message);
    }
    let mut alarm = lock(&inner.alarm);
    let path = req.path.as_str();
    if path == "/v3/site" && req.method == Method::GET {
        return axum::Json(json!({"items": [site_json(&alarm)], "default": null})).into_response();
    }
    let Some(rest) = path.strip_prefix("/v3/site/") else {
        return somfy_error(StatusCode::NOT_FOUND, "error.not_found");
    };
    let (site, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if site != SITE {
        // getSite words it `error.notFound.site`; other operations `error.site.not_found`.
        return if req.method == Method::GET && rest.is_empty() {
            (StatusCode::NOT_FOUND, axum::Json(fixture(SITE_NOT_FOUND))).into_response()
        } else {
            somfy_error(StatusCode::NOT_FOUND, "error.site.not_found")
        };
    }
    if alarm.restoring {
        return somfy_error(StatusCode::NOT_FOUND, "error.site.restoration.running");
    }
    match (&req.method, rest) {
        (&Method::GET, "") => axum::Json(site_json(&alarm)).into_response(),
        (&Method::GET, "device") => {
            axum::Json(json!({"object": "list", "items": alarm.devices})).into_response()
        }
        (&Method::PUT, "security") => {
            let status = req.json["status"].as_str().unwrap_or_default();
            if !["armed", "partial", "disarmed"].contains(&status) {
                return somfy_error(StatusCode::BAD_REQUEST, "error.invalid_arguments");
            }
            alarm.security_level = status.to_string();
            job(&oauth)
        }
        (method, device_path) if device_path.starts_with("device/") => {
            let id = &device_path["device/".len()..];
            let Some(device) = alarm
                .devices
                .iter_mut()
                .find(|d| d["device_id"].as_str() == Some(id))
            else {
                return somfy_error(StatusCode::NOT_FOUND, "error.device.not_found");
            };
            match *method {
                Method::GET => axum::Json(device.clone()).into_response(),
                Method::PUT => {
                    // swagger DeviceInput: `settings` requires `global`.
                    let Some(global) = req
                        .json
                        .pointer("/settings/global")
                        .filter(|g| g.is_object())
                    else {
                        return somfy_error(StatusCode::BAD_REQUEST, "error.invalid_arguments");
                    };
                    let Some(label) = req.json["label"].as_str().filter(|l| !l.is_empty()) else {
                        return somfy_error(StatusCode::BAD_REQUEST, "error.invalid_arguments");
                    };
                    // Replaced, not merged: keys left out are gone.
                    device["settings"]["global"] = global.clone();
                    device["label"] = json!(label);
                    job(&oauth)
                }
                _ => somfy_error(StatusCode::METHOD_NOT_ALLOWED, "error.method.not_allowed"),
            }
        }
        _ => somfy_error(StatusCode::NOT_FOUND, "error.not_found"),
    }
}
