//! Somfy Protect (api.myfox.io/v3), where the Somfy Home Alarm lives since the Somfy Open API
//! closed in 2022. Password grant with the mobile app's client id; the token endpoint grants
//! about five tokens per ten minutes and then answers 429 with `X-RateLimit-Retry-After`, so
//! tokens are cached and renewals honour that wait (see [`crate::refresh`]). Errors are
//! `{"message":"error.…","data":…,"uid":…}`.

use async_trait::async_trait;

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{Vendor, VendorEntry, Verdict, items, text};
use crate::catalog::{
    Pkce,
    CallBudget, ClientAuth, ExpiredTokenSignal, Grant, ProviderSpec, RefreshPolicy, TokenPlacement,
    VendorKind,
};
use crate::error::ActionError;
use crate::vendor::{VendorResponse, path_segment};

/// Somfy Protect's id in the registry.
pub const KIND: VendorKind = VendorKind("somfy_protect");

/// Somfy Protect.
pub struct SomfyProtect;

/// SomfyProtect in the registry.
pub const ENTRY: VendorEntry = VendorEntry::new(
    KIND,
    || vec![spec()],
    include_str!("recipes.toml"),
    &SomfyProtect,
);

#[async_trait]
impl Vendor for SomfyProtect {
    /// Somfy's `{"message":"error.…"}` errors in words; a restoring site is a passing state.
    fn classify(&self, _endpoint: Endpoint, r: &VendorResponse) -> Option<Verdict> {
        if r.status < 400 || r.status == 401 || r.status == 429 {
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

    /// Sites (with their security level) and their devices; sirens get their own list because
    /// `notif_on`/`notif_off` need a siren's id and label.
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
                if kind.contains("siren") {
                    sirens.push(
                        &device["device_id"],
                        &device["label"],
                        format!("site_id={site_id} siren_label={}", text(&device["label"])),
                    );
                }
            }
        }
        let mut sections = vec![site_list, devices, sirens];
        sections.retain(|s| !s.items.is_empty());
        Ok(sections)
    }
}

/// The built-in entry. The token path is configurable: `/oauth/oauth/v2/token` (legacy) or
/// `/token/jwt` (current), both on sso.myfox.io.
pub fn spec() -> ProviderSpec {
    ProviderSpec {
        id: "somfy_protect".into(),
        display_name: "Somfy Protect".into(),
        authorize_url: None,
        token_url: "https://sso.myfox.io/oauth/oauth/v2/token".into(),
        api_base: "https://api.myfox.io/v3".into(),
        grants: vec![Grant::Password],
        client_auth: ClientAuth::Form,
        default_scopes: vec![],
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 401,
            pointer: None,
            equals: None,
        }],
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

/// `error.site.restoration.running` → "site restoration running".
fn words(code: &str) -> String {
    code.trim_start_matches("error.").replace(['.', '_'], " ")
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
        assert_eq!(
            SomfyProtect.classify(
                Endpoint::Actions,
                &response(401, json!({"message": "error.unauthorized"}))
            ),
            None
        );
    }
}
