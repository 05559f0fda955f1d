//! Somfy Protect (api.myfox.io/v3), where the Somfy Home Alarm lives since the Somfy Open API
//! closed in 2022. Password grant with the mobile app's client id at
//! `sso.myfox.io/oauth/oauth/v2/token/jwt` (the legacy `…/v2/token` stopped carrying an access
//! token on 2025-12-26); the token endpoint grants about five tokens per ten minutes and then
//! answers 429 with `X-RateLimit-Retry-After`, so tokens are cached and renewals honour that
//! wait (see [`crate::refresh`]). Errors are `{"message":"error.…","data":…,"uid":…}`. A 401
//! or a 403 means "renew the token and try once more", as the maintained client does.
//!
//! The evidence for each of these (client library, file, line) is in
//! docs/providers/somfy-protect.md.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{StepResult, StepRun, Vendor, VendorEntry, Verdict, items, text};
use crate::catalog::{
    CallBudget, ClientAuth, ExpiredTokenSignal, Grant, Pkce, ProviderSpec, RefreshPolicy,
    TokenPlacement, VendorKind,
};
use crate::error::ActionError;
use crate::vendor::{VendorBody, VendorRequest, VendorResponse, path_segment};

/// Somfy Protect's id in the registry.
pub const KIND: VendorKind = VendorKind("somfy_protect");

/// Somfy Protect.
pub struct SomfyProtect;

/// The code steps of Somfy's recipes.
const STEPS: &[&str] = &["siren_sound"];

/// SomfyProtect in the registry.
pub const ENTRY: VendorEntry = VendorEntry::new(
    KIND,
    || vec![spec()],
    include_str!("recipes.toml"),
    &SomfyProtect,
);

#[async_trait]
impl Vendor for SomfyProtect {
    fn steps(&self) -> &'static [&'static str] {
        STEPS
    }

    /// Somfy's `{"message":"error.…"}` errors in words; a restoring site is a passing state.
    /// 401 and 403 are left to the provider's expired-token signals (renew once, then refuse).
    fn classify(&self, _endpoint: Endpoint, r: &VendorResponse) -> Option<Verdict> {
        if r.status < 400 || r.status == 401 || r.status == 403 || r.status == 429 {
            return None;
        }
        let code = r.json.as_ref()?.get("message")?.as_str()?;
        if code == "error.site.restoration.running" {
            return Some(Verdict::Transient {
                reason: "the alarm is restoring its settings; try again in a minute".into(),
                retryable: false,
            });
        }
        if r.status >= 500 {
            return None;
        }
        Some(Verdict::Rejected {
            status: r.status,
            reason: Some(format!("Somfy says: {} ({code})", words(code))),
        })
    }

    /// `siren_sound`, the one step (`notif_on`, `notif_off`).
    async fn run_step(&self, api: &dyn VendorApi, _: &str, request: &VendorRequest) -> StepRun {
        siren_sound(api, request).await
    }

    /// Sites (with their security level) and their devices; sirens get their own list because
    /// `notif_on`/`notif_off` need a siren's id.
    async fn discover(&self, api: &dyn VendorApi) -> Result<Vec<Section>, ActionError> {
        let sites = api.get(Endpoint::Actions, "/site", &[]).await?;
        let mut site_list = Section::new("Sites", "site_id");
        let mut devices = Section::new("Devices", "device_id");
        let mut sirens = Section::new("Sirens (for notif_on / notif_off)", "siren_id");
        for site in items(&sites, "/items") {
            let site_id = text(&site["site_id"]);
            site_list.push(
                &site["site_id"],
                &site["label"],
                format!("security {}", text(&site["security_level"])),
            );
            let path = format!("/site/{}/device", path_segment(&site_id));
            let listed = api.get(Endpoint::Actions, &path, &[]).await?;
            for device in items(&listed, "/items") {
                let kind = device
                    .pointer("/device_definition/device_definition_id")
                    .map(text)
                    .unwrap_or_default();
                devices.push(
                    &device["device_id"],
                    &device["label"],
                    format!("{kind} site_id={site_id}"),
                );
                let siren = kind.contains("siren")
                    || device
                        .pointer("/device_definition/type")
                        .map(text)
                        .as_deref()
                        == Some("siren");
                if siren {
                    sirens.push(
                        &device["device_id"],
                        &device["label"],
                        format!("site_id={site_id} ({kind})"),
                    );
                }
            }
        }
        let mut sections = vec![site_list, devices, sirens];
        sections.retain(|s| !s.items.is_empty());
        Ok(sections)
    }
}

/// The built-in entry.
pub fn spec() -> ProviderSpec {
    ProviderSpec {
        id: "somfy_protect".into(),
        display_name: "Somfy Protect".into(),
        authorize_url: None,
        // The legacy `…/oauth/v2/token` answers without an access token since 2025-12-26
        // (SomfyProtect2MQTT sso/__init__.py L22, commit e945a89; its issue #223).
        token_url: "https://sso.myfox.io/oauth/oauth/v2/token/jwt".into(),
        api_base: "https://api.myfox.io/v3".into(),
        grants: vec![Grant::Password],
        client_auth: ClientAuth::Form,
        default_scopes: vec![],
        token_placement: TokenPlacement::Bearer,
        // SomfyProtect2MQTT renews on 401 or 403 and sends the request once more (sso
        // request() L250-279, commit ad79944); a second refusal is final (vendor_client).
        expired_token: vec![
            ExpiredTokenSignal {
                status: 401,
                pointer: None,
                equals: None,
            },
            ExpiredTokenSignal {
                status: 403,
                pointer: None,
                equals: None,
            },
        ],
        pkce: Pkce::Off,
        scope_separator: ' ',
        kind: KIND,
        refresh: RefreshPolicy {
            // The token endpoint answers 429 after about 5 calls in 10 minutes: keep one spare.
            token_budget: Some(CallBudget {
                max: 4,
                window_secs: 600,
            }),
            // Refresh tokens lapse after 14 days.
            refresh_token_lifetime_secs: Some(14 * 24 * 3600),
        },
        api_budget: vec![],
    }
}

/// `error.site.restoration.running` → "site restoration running"; Somfy's three spellings of a
/// missing site (swagger: getSite `error.notFound.site`, updateSite `error.site.not_found`,
/// the users list `error.unknown.site`) all read "site not found".
fn words(code: &str) -> String {
    match code {
        "error.notFound.site" | "error.site.not_found" | "error.unknown.site" => {
            return "site not found".into();
        }
        _ => {}
    }
    let mut out = String::new();
    for c in code.trim_start_matches("error.").chars() {
        match c {
            '.' | '_' => out.push(' '),
            // camelCase → two words (`notFound` → "not found").
            c if c.is_ascii_uppercase() => {
                out.push(' ');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

/// `notif_on` / `notif_off`: reads the siren (`GET /site/{site}/device/{siren}`), sets
/// `sound_enabled` in its settings and PUTs the whole settings object back with the siren's own
/// label, as SomfyProtect2MQTT does (business/mqtt.py L252-270, api update_device L305-331)
/// and the PHP control page's full `global` body suggests. Sending only `sound_enabled` would
/// reset the siren's light and auto-protection if Somfy replaces `settings.global`, which
/// nothing public rules out. `request` is the recipe's rendered PUT: its path, the wanted
/// `sound_enabled`, and the configured `siren_label` (only a fallback now).
async fn siren_sound(api: &dyn VendorApi, request: &VendorRequest) -> StepRun {
    let VendorBody::Json(body) = &request.body else {
        return Err(ActionError::Misconfigured(
            "siren_sound needs the recipe's JSON body".into(),
        ));
    };
    let Some(sound) = body
        .pointer("/settings/global/sound_enabled")
        .and_then(Value::as_bool)
    else {
        return Err(ActionError::Misconfigured(
            "siren_sound needs settings.global.sound_enabled".into(),
        ));
    };
    let device = api.get(Endpoint::Actions, &request.path, &[]).await?;
    let settings = settings_with(&device, sound);
    // The device's own label, so a rename in the app is never undone; the configured one only
    // if Somfy gave none.
    let label = device
        .get("label")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .or_else(|| body.get("label").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    if label.is_empty() {
        return Err(ActionError::Misconfigured(
            "Somfy's siren has no label to send back: set siren_label in the action's `with`"
                .into(),
        ));
    }
    let put = VendorRequest {
        method: http::Method::PUT,
        path: request.path.clone(),
        query: Vec::new(),
        body: VendorBody::Json(json!({"settings": settings, "label": label})),
    };
    let response = api.send(Endpoint::Actions, &put).await?;
    Ok(StepResult {
        vendor_status: response.status,
        data: json!({
            "label": label,
            "sound_enabled": sound,
            "settings": settings.get("global"),
            "job": response.json,
        }),
    })
}

/// The device's settings as a client sends them back: without Somfy's `object` tag and null
/// members (SomfyProtect2MQTT drops both), `global.sound_enabled` set to `sound`.
fn settings_with(device: &Value, sound: bool) -> Map<String, Value> {
    let mut settings: Map<String, Value> = device
        .get("settings")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, v)| k.as_str() != "object" && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let global = settings
        .entry("global")
        .or_insert_with(|| Value::Object(Map::new()));
    if !global.is_object() {
        *global = Value::Object(Map::new());
    }
    if let Some(global) = global.as_object_mut() {
        global.insert("sound_enabled".into(), Value::Bool(sound));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::providers::vendor_response as response;

    #[test]
    fn somfy_errors_read_as_words() {
        let restoring = response(
            404,
            json!({"message": "error.site.restoration.running", "data": [], "uid": "u"}),
        );
        assert!(matches!(
            SomfyProtect.classify(Endpoint::Actions, &restoring),
            Some(Verdict::Transient {
                retryable: false,
                ..
            })
        ));
        let missing = response(404, json!({"message": "error.site.not_found", "uid": "u"}));
        assert_eq!(
            SomfyProtect.classify(Endpoint::Actions, &missing),
            Some(Verdict::Rejected {
                status: 404,
                reason: Some("Somfy says: site not found (error.site.not_found)".into())
            })
        );
        // 401 and 403 go to the expired-token signals: renewed once by the vendor client.
        for status in [401, 403] {
            let refused = response(status, json!({"message": "error.unauthorized"}));
            assert_eq!(SomfyProtect.classify(Endpoint::Actions, &refused), None);
            assert_eq!(
                crate::providers::classify(&spec(), Endpoint::Actions, &refused),
                Verdict::TokenExpired
            );
        }
        let unknown = response(404, json!({"message": "error.notFound.site", "uid": "u"}));
        assert_eq!(
            SomfyProtect.classify(Endpoint::Actions, &unknown),
            Some(Verdict::Rejected {
                status: 404,
                reason: Some("Somfy says: site not found (error.notFound.site)".into())
            })
        );
        assert_eq!(
            words("error.invalid.securityLevel"),
            "invalid security level"
        );
    }

    #[test]
    fn a_sirens_settings_go_back_whole_with_one_change() {
        let device = json!({"label": "Innensirene", "settings": {
            "object": "DeviceSettings",
            "global": {"light_enabled": false, "sound_enabled": true, "auto_protect_enabled": true},
            "disarmed": {"auto_protect_enabled": true}, "partial": null}});
        assert_eq!(
            Value::Object(settings_with(&device, false)),
            json!({
                "global": {"light_enabled": false, "sound_enabled": false, "auto_protect_enabled": true},
                "disarmed": {"auto_protect_enabled": true}})
        );
        assert_eq!(
            Value::Object(settings_with(&json!({}), true)),
            json!({"global": {"sound_enabled": true}})
        );
    }
}
