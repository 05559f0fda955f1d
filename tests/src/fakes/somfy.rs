//! A fake Somfy Protect: token endpoints at `/oauth/oauth/v2/token` and `/token/jwt` (the latter
//! issuing JWT access tokens without `expires_in`), password and refresh grants, at most five
//! token requests per ten minutes (then 429 with `X-RateLimit-Retry-After`), errors as
//! `{"message":"error.…","data":[],"uid":…}`; the API under `/v3`: sites, devices, security
//! level, siren settings.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use homehook_core::clock::ManualClock;
use serde_json::{Value, json};

use super::{Faults, Incoming, lock};
use crate::fake_vendor::{
    Access, CallBudget, ClientAuthStyle, FakeSettings, FakeVendor, OAuthHandle, TokenErrorStyle,
};

/// The site.
pub const SITE: &str = "site-4f7a";
/// The indoor siren.
pub const SIREN: &str = "dev-siren-01";
/// Its label.
pub const SIREN_LABEL: &str = "Indoor siren";

/// The alarm as the owner would see it in the Somfy app.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// `armed`, `partial` or `disarmed`.
    pub security_level: String,
    /// The siren's `sound_enabled` setting.
    pub siren_sound: bool,
    /// The label last sent with the siren's settings.
    pub siren_label: String,
    /// The site is restoring (answers 404 `error.site.restoration.running`).
    pub restoring: bool,
}

impl Default for Alarm {
    fn default() -> Self {
        Self {
            security_level: "disarmed".into(),
            siren_sound: true,
            siren_label: SIREN_LABEL.into(),
            restoring: false,
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
    /// Somfy Protect's token endpoint: password grant, form client auth, 1 h tokens, 5 token
    /// requests per 10 minutes, Somfy-worded errors.
    pub fn settings() -> FakeSettings {
        FakeSettings {
            client_id: "84eddf48-2b8e-11e5-b2a5-124cfab25595_475buqrf8v8kgwoo4gow08gkkc0ck80488wo44s8o48sg84k40".into(),
            client_auth: ClientAuthStyle::Form,
            access_ttl_secs: 3_600,
            rotate_refresh_tokens: true,
            account: ("owner@example.com".into(), "correct horse".into()),
            token_paths: vec!["/oauth/oauth/v2/token".into(), "/token/jwt".into()],
            jwt_token_path: Some("/token/jwt".into()),
            token_budget: Some(CallBudget {
                max: 5,
                window_secs: 600,
            }),
            token_error_style: TokenErrorStyle::Somfy,
            scopes: None,
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

fn site_json(alarm: &Alarm) -> Value {
    json!({
        "site_id": SITE, "label": "Maison", "brand": "myfox",
        "security_level": alarm.security_level, "alarm": {"status": "none"}, "exit_delay": 30
    })
}

async fn api(
    State((oauth, inner)): State<(OAuthHandle, Arc<Inner>)>,
    request: Request,
) -> Response {
    let req = Incoming::read(request).await;
    if oauth.access(req.token.as_deref()) != Access::Valid {
        return somfy_error(StatusCode::UNAUTHORIZED, "error.unauthorized");
    }
    oauth.record(req.call());
    if let Some(status) = inner.faults.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return somfy_error(status, "error.internal");
    }
    let mut alarm = lock(&inner.alarm);
    let site_path = format!("/v3/site/{SITE}");
    let path = req.path.as_str();
    if path.starts_with(&site_path) && alarm.restoring {
        return somfy_error(StatusCode::NOT_FOUND, "error.site.restoration.running");
    }
    match (&req.method, path) {
        (&Method::GET, "/v3/site") => axum::Json(json!({"items": [site_json(&alarm)]})).into_response(),
        (&Method::GET, p) if p == site_path => axum::Json(site_json(&alarm)).into_response(),
        (&Method::GET, p) if p == format!("{site_path}/device") => axum::Json(json!({
            "object": "list",
            "items": [
                {"device_id": SIREN, "label": SIREN_LABEL,
                 "device_definition": {"device_definition_id": "mss_siren"},
                 "status": {}, "settings": {"global": {"sound_enabled": alarm.siren_sound}}},
                {"device_id": "dev-pir-02", "label": "Hallway motion",
                 "device_definition": {"device_definition_id": "mss_pir"}, "status": {}, "settings": {"global": {}}}
            ]
        }))
        .into_response(),
        (&Method::PUT, p) if p == format!("{site_path}/security") => {
            let status = req.json["status"].as_str().unwrap_or_default();
            if !["armed", "partial", "disarmed"].contains(&status) {
                return somfy_error(StatusCode::BAD_REQUEST, "error.invalid.security.level");
            }
            alarm.security_level = status.to_string();
            axum::Json(json!({"job_id": "job-1", "site_id": SITE, "user_id": "u-1", "state": "pending", "created_at": "2023-11-14T22:13:20Z"}))
                .into_response()
        }
        (&Method::PUT, p) if p == format!("{site_path}/device/{SIREN}") => {
            let Some(sound) = req.json.pointer("/settings/global/sound_enabled").and_then(Value::as_bool) else {
                return somfy_error(StatusCode::BAD_REQUEST, "error.invalid.settings");
            };
            if req.json["label"].as_str().is_none_or(str::is_empty) {
                return somfy_error(StatusCode::BAD_REQUEST, "error.label.required");
            }
            alarm.siren_sound = sound;
            alarm.siren_label = req.json["label"].as_str().unwrap_or_default().to_string();
            axum::Json(json!({"job_id": "job-2"})).into_response()
        }
        (_, p) if p.starts_with("/v3/site/") && p.contains("/device/") => {
            somfy_error(StatusCode::NOT_FOUND, "error.device.not_found")
        }
        (_, p) if p.starts_with("/v3/site/") => somfy_error(StatusCode::NOT_FOUND, "error.site.not_found"),
        _ => somfy_error(StatusCode::NOT_FOUND, "error.not_found"),
    }
}
