//! The vendors homehook was made for. Each module holds one provider's catalog entry and the
//! few things data cannot say (its quirks); its built-in actions are data in the `.toml` file
//! of the same name (see [`crate::builtin`]).
//!
//! | module            | provider ids          | quirk                                              |
//! |-------------------|-----------------------|----------------------------------------------------|
//! | [`netatmo`]       | `netatmo`, `legrand`  | error codes in bodies, partial failures in 200s     |
//! | [`somfy_protect`] | `somfy_protect`       | `{"message":"error.…"}` errors, tiny token budget   |
//! | [`myfox`]         | `myfox`               | the `{"status":"OK"/"KO"}` envelope                 |
//! | [`homey`]         | `homey`               | delegation token → per-Homey session               |

use serde_json::Value;

use crate::api::{ApiClient, Endpoint};
use crate::catalog::{ProviderSpec, Quirk};
use crate::config::Action;
use crate::error::ActionError;
use crate::vendor::{VendorRequest, VendorResponse};

pub mod homey;
pub mod myfox;
pub mod netatmo;
pub mod somfy_protect;

/// Every built-in provider.
pub fn specs() -> Vec<ProviderSpec> {
    vec![
        netatmo::spec(),
        netatmo::legrand_spec(),
        somfy_protect::spec(),
        myfox::spec(),
        homey::spec(),
    ]
}

/// What a vendor's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It worked.
    Ok,
    /// The access token has expired: refresh and retry once.
    TokenExpired,
    /// The device session has expired (Homey): log in again and retry once.
    SessionExpired,
    /// The vendor asks to slow down.
    Busy {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The vendor refused the request; retrying will not help.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The vendor's words, made readable.
        reason: Option<String>,
    },
    /// A passing failure.
    Transient {
        /// What happened.
        reason: String,
        /// Whether trying again soon cannot act twice.
        retryable: bool,
    },
}

/// Reads an answer the provider's way, falling back to [`standard`].
pub fn classify(spec: &ProviderSpec, endpoint: Endpoint, response: &VendorResponse) -> Verdict {
    let quirk = match spec.quirk {
        Quirk::Netatmo => netatmo::classify(response),
        Quirk::SomfyProtect => somfy_protect::classify(response),
        Quirk::Myfox => myfox::classify(response),
        Quirk::Homey => homey::classify(endpoint, response),
        Quirk::Standard => None,
    };
    quirk.unwrap_or_else(|| standard(spec, response))
}

/// Plain HTTP: the provider's expired-token signals, 2xx success, 429 busy, other 4xx
/// refused, 5xx passing.
pub fn standard(spec: &ProviderSpec, response: &VendorResponse) -> Verdict {
    if spec
        .expired_token
        .iter()
        .any(|s| s.matches(response.status, response.json.as_ref()))
    {
        return Verdict::TokenExpired;
    }
    match response.status {
        200..=299 => Verdict::Ok,
        429 => Verdict::Busy {
            retry_after_secs: response.retry_after_secs.unwrap_or(60),
        },
        500..=599 => Verdict::Transient {
            reason: format!(
                "HTTP {}{}",
                response.status,
                response
                    .reason()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            retryable: true,
        },
        status => Verdict::Rejected {
            status,
            reason: response.reason(),
        },
    }
}

/// Whether the provider's quirk module has a step called `name` (checked at config load).
pub fn has_step(quirk: Quirk, name: &str) -> bool {
    match quirk {
        Quirk::Netatmo => netatmo::STEPS.contains(&name),
        Quirk::Homey => homey::STEPS.contains(&name),
        _ => false,
    }
}

/// What a code step found: the structured `data` its answer template reads (and JSON callers
/// get), with the status of its first vendor call.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The vendor's HTTP status.
    pub vendor_status: u16,
    /// What the step found, shaped for answers.
    pub data: Value,
}

/// Runs a built-in action's code step (`run = "..."` in its recipe). `request` is the recipe's
/// rendered request, which the step may use as its first call.
pub async fn run_step(
    client: &ApiClient<'_>,
    action: &Action,
    request: &VendorRequest,
) -> Result<StepResult, ActionError> {
    let name = action.run.as_deref().unwrap_or_default();
    match client.spec.quirk {
        Quirk::Netatmo if name == "home_status" => netatmo::home_status(client, request).await,
        Quirk::Homey if name == "device_state" => homey::device_state(client, request).await,
        _ => Err(ActionError::Misconfigured(format!(
            "provider {} has no step {name}",
            client.spec.id
        ))),
    }
}

/// What `homehook discover` shows: the ids an action's config needs, grouped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Discovery {
    /// The connection.
    pub connection: String,
    /// The provider.
    pub provider: String,
    /// Groups of things (sites, homes, rooms, devices, ...).
    pub sections: Vec<Section>,
}

/// One group of things with ids.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Section {
    /// What they are ("Rooms of Home").
    pub title: String,
    /// The `with` key their id goes under (`room_id`).
    pub key: String,
    /// The things.
    pub items: Vec<Item>,
}

/// One thing with an id.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Item {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Other ids or facts an action needs with it (`home_id=…`, `bridge=…`, a state).
    pub detail: String,
}

impl Discovery {
    /// A config snippet using one of the provider's built-in actions with ids found here,
    /// to copy into homehook.toml.
    pub fn example(&self, quirk: Quirk) -> Option<String> {
        let recipes = crate::builtin::recipes(quirk).ok()?;
        let first_id = |key: &str| {
            self.sections
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.items.first())
                .map(|i| i.id.clone())
        };
        recipes.iter().find_map(|(name, recipe)| {
            let with = recipe
                .required_setup()
                .map(|k| Some(format!("{k} = {:?}", first_id(k)?)))
                .collect::<Option<Vec<_>>>()?;
            Some(format!(
                "[actions.{name}]\nconnection = \"{}\"\nbuiltin = \"{name}\"\nwith = {{ {} }}\nkey_hash = \"<the hash from `homehook key new`>\"",
                self.connection,
                with.join(", ")
            ))
        })
    }
}

impl Section {
    fn new(title: impl Into<String>, key: &str) -> Self {
        Self {
            title: title.into(),
            key: key.into(),
            items: Vec::new(),
        }
    }

    fn push(&mut self, id: &Value, name: &Value, detail: impl Into<String>) {
        self.items.push(Item {
            id: text(id),
            name: text(name),
            detail: detail.into(),
        });
    }
}

/// Lists what the actions of a connection need, by asking its API.
pub async fn discover(client: &ApiClient<'_>) -> Result<Discovery, ActionError> {
    let sections = match client.spec.quirk {
        Quirk::Netatmo => netatmo::discover(client).await?,
        Quirk::SomfyProtect => somfy_protect::discover(client).await?,
        Quirk::Myfox => myfox::discover(client).await?,
        Quirk::Homey => homey::discover(client).await?,
        Quirk::Standard => Vec::new(),
    };
    Ok(Discovery {
        connection: client.conn.id.clone(),
        provider: client.spec.id.clone(),
        sections,
    })
}

/// A JSON value as short text: strings as they are, numbers and booleans printed, nothing for
/// null or missing.
pub(crate) fn text(value: &Value) -> String {
    crate::params::as_text(value)
}

/// The items of a JSON array at `pointer`, or none.
pub(crate) fn items<'v>(value: &'v Value, pointer: &str) -> &'v [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A vendor answer with a JSON body, for the quirk modules' tests.
#[cfg(test)]
pub(crate) fn answer(status: u16, json: Value) -> VendorResponse {
    VendorResponse {
        status,
        text: json.to_string(),
        json: Some(json),
        retry_after_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netatmo_expired_signal_needs_code_3() {
        let spec = specs()
            .into_iter()
            .find(|p| p.id == "netatmo")
            .expect("netatmo");
        let signal = &spec.expired_token[0];
        let expired = serde_json::json!({"error": {"code": 3, "message": "Access token expired"}});
        let scope = serde_json::json!({"error": {"code": 13, "message": "Missing scope"}});
        assert!(signal.matches(403, Some(&expired)));
        assert!(!signal.matches(403, Some(&scope)));
        assert!(!signal.matches(401, Some(&expired)));
    }

    #[test]
    fn builtin_ids_are_unique() {
        let mut ids: Vec<_> = specs().into_iter().map(|p| p.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
