//! Myfox API v2 (api.myfox.me). Password grant for personal apps, authorization code for
//! commercial ones, HTTP Basic client authentication. Every answer is an envelope:
//! `{"status":"OK","payload":…}` or `{"status":"KO","error":…,"error_description":…}`, and a KO
//! can come with HTTP 200. `invalid_token` means refresh and retry once; "(632)" is Myfox's
//! temporary error, carried in the `error` field (myfox-api myfoxapi.py L283). Myfox
//! deactivates apps that request too many tokens, so tokens are cached for their whole life.
//! The evidence for each of these is in docs/providers/myfox.md.

use serde_json::Value;

use async_trait::async_trait;

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{Vendor, VendorEntry, Verdict, items, text};
use crate::catalog::{
    CallBudget, ClientAuth, ExpiredTokenSignal, Grant, Pkce, ProviderSpec, RefreshPolicy,
    TokenPlacement, VendorKind,
};
use crate::error::ActionError;
use crate::vendor::{VendorResponse, path_segment};

/// Myfox API v2's id in the registry.
pub const KIND: VendorKind = VendorKind("myfox");

/// Myfox API v2.
pub struct Myfox;

/// Myfox in the registry.
pub const ENTRY: VendorEntry =
    VendorEntry::new(KIND, || vec![spec()], include_str!("recipes.toml"), &Myfox);

#[async_trait]
impl Vendor for Myfox {
    /// Reads the envelope: a KO is an error whatever the HTTP status.
    fn classify(&self, _endpoint: Endpoint, r: &VendorResponse) -> Option<Verdict> {
        let json = r.json.as_ref()?;
        match json.get("status").and_then(Value::as_str)? {
            "KO" => {
                let error = json.get("error").map(text).unwrap_or_default();
                let description = json.get("error_description").map(text).unwrap_or_default();
                if error == "invalid_token" {
                    return Some(Verdict::TokenExpired);
                }
                // The maintained client looks for "(632)" in `error` (myfox-api myfoxapi.py L283,
                // commit 6703b14); `error_description` is checked too, in case it moves there.
                let in_error = error.contains("(632)");
                let temporary = in_error || description.contains("(632)");
                let said = match (in_error, description.is_empty()) {
                    (true, false) => format!("{error}: {description}"),
                    (_, true) => error.clone(),
                    (false, false) => description.clone(),
                };
                if temporary || r.status >= 500 {
                    return Some(Verdict::Transient {
                        reason: format!("Myfox says: {said}"),
                        retryable: true,
                    });
                }
                Some(Verdict::Rejected {
                    status: r.status,
                    reason: Some(format!("Myfox says: {said}")),
                })
            }
            _ => None,
        }
    }

    /// Sites, then each site's scenarios and devices.
    async fn discover(&self, api: &dyn VendorApi) -> Result<Vec<Section>, ActionError> {
        let sites = api
            .get(Endpoint::Actions, "/client/site/items", &[])
            .await?;
        let mut site_list = Section::new("Sites", "site_id");
        let mut scenarios = Section::new("Scenarios", "scenario_id");
        let mut devices = Section::new("Devices (sockets, shutters, gates, heaters)", "device_id");
        for site in items(&sites, "/payload/items") {
            let site_id = text(&site["siteId"]);
            site_list.push(&site["siteId"], &site["label"], "");
            let base = format!("/site/{}", path_segment(&site_id));
            let listed = api
                .get(Endpoint::Actions, &format!("{base}/scenario/items"), &[])
                .await?;
            for s in items(&listed, "/payload/items") {
                scenarios.push(
                    &s["scenarioId"],
                    &s["label"],
                    format!("{} site_id={site_id}", text(&s["typeLabel"])),
                );
            }
            // Heaters take on/off/eco/frost; heaters with a virtual thermostat (their own list)
            // take auto/away/boost/thermostatoff (myfox-api const.py L83-94).
            for (kind, list) in [
                ("socket", "socket/items"),
                ("shutter", "shutter/items"),
                ("gate", "gate/items"),
                ("heater", "heater/items"),
                ("thermostat", "heater/items/withthermostat"),
            ] {
                // Not every account has every kind; a refusal here only means "none".
                let Ok(listed) = api
                    .get(Endpoint::Actions, &format!("{base}/device/{list}"), &[])
                    .await
                else {
                    continue;
                };
                for d in items(&listed, "/payload/items") {
                    let modes = match kind {
                        "heater" => " modes on/off/eco/frost",
                        "thermostat" => " modes auto/away/boost/thermostatoff",
                        _ => "",
                    };
                    devices.push(
                        &d["deviceId"],
                        &d["label"],
                        format!(
                            "{kind} ({}){modes} site_id={site_id}",
                            text(&d["modelLabel"])
                        ),
                    );
                }
            }
        }
        let mut sections = vec![site_list, scenarios, devices];
        sections.retain(|s| !s.items.is_empty());
        Ok(sections)
    }
}

/// The built-in entry.
pub fn spec() -> ProviderSpec {
    ProviderSpec {
        id: "myfox".into(),
        display_name: "Myfox".into(),
        authorize_url: Some("https://api.myfox.me/oauth2/authorize".into()),
        token_url: "https://api.myfox.me/oauth2/token".into(),
        api_base: "https://api.myfox.me/v2".into(),
        grants: vec![Grant::Password, Grant::AuthorizationCode],
        client_auth: ClientAuth::Basic,
        default_scopes: vec![],
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 401,
            pointer: Some("/error".into()),
            equals: Some("invalid_token".into()),
        }],
        // No Myfox client sends PKCE (myfox-api, MyFox2MQTT, the Jeedom plugin).
        pkce: Pkce::Unverified,
        scope_separator: ' ',
        kind: KIND,
        refresh: RefreshPolicy {
            // Myfox deactivates an app that asks for too many tokens; one an hour is plenty
            // for hour-long tokens, and a few more leave room for early expiries.
            token_budget: Some(CallBudget {
                max: 4,
                window_secs: 3600,
            }),
            refresh_token_lifetime_secs: None,
        },
        api_budget: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::providers::vendor_response as response;

    #[test]
    fn a_ko_envelope_is_an_error_even_with_http_200() {
        let expired = response(
            401,
            json!({"status": "KO", "error": "invalid_token", "error_description": "expired"}),
        );
        assert_eq!(
            Myfox.classify(Endpoint::Actions, &expired),
            Some(Verdict::TokenExpired)
        );
        let ko = response(
            200,
            json!({"status": "KO", "error": "invalid_request", "error_description": "Unknown device"}),
        );
        assert_eq!(
            Myfox.classify(Endpoint::Actions, &ko),
            Some(Verdict::Rejected {
                status: 200,
                reason: Some("Myfox says: Unknown device".into())
            })
        );
        // "(632)" where the maintained client finds it (`error`), and where homehook looked
        // before (`error_description`): both temporary.
        for temporary in [
            json!({"status": "KO", "error": "Erreur temporaire (632)", "error_description": "retry"}),
            json!({"status": "KO", "error": "error", "error_description": "Temporary error (632)"}),
        ] {
            let verdict = Myfox.classify(Endpoint::Actions, &response(200, temporary));
            assert!(
                matches!(&verdict, Some(Verdict::Transient { retryable: true, reason }) if reason.contains("(632)")),
                "{verdict:?}"
            );
        }
        assert_eq!(
            Myfox.classify(
                Endpoint::Actions,
                &response(200, json!({"status": "OK", "payload": {}}))
            ),
            None
        );
    }
}
