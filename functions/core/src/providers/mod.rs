//! The vendors homehook was made for. Each is one folder: `<vendor>/mod.rs` implements
//! [`Vendor`] (its catalog entries and the few things data cannot say: how to read its
//! answers, its code steps, discovery, a device session), and `<vendor>/recipes.toml` holds its
//! built-in actions as data (see [`crate::recipe`]). [`VENDORS`] lists them once.
//!
//! | module            | provider ids          | quirk                                              |
//! |-------------------|-----------------------|----------------------------------------------------|
//! | [`netatmo`]       | `netatmo`, `legrand`  | error codes in bodies, partial failures in 200s     |
//! | [`somfy_protect`] | `somfy_protect`       | `{"message":"error.…"}` errors, tiny token budget   |
//! | [`myfox`]         | `myfox`               | the `{"status":"OK"/"KO"}` envelope                 |
//! | [`homey`]         | `homey`               | delegation token → per-Homey session               |
//!
//! A vendor module reaches the network only through [`port::VendorApi`]; it never sees the
//! config, the store or the token keeper.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_trait::async_trait;
use serde_json::Value;

use crate::catalog::{ProviderSpec, VendorKind};
use crate::error::ActionError;
use crate::recipe::{self, Recipes};
use crate::token::DeviceSession;
use crate::vendor::{VendorRequest, VendorResponse};

pub mod discovery;
pub mod homey;
pub mod myfox;
pub mod netatmo;
pub mod port;
pub mod somfy_protect;

use discovery::Section;
use port::{Endpoint, VendorApi};

/// Every vendor, once. Adding a vendor is a folder beside these and a line here.
pub static VENDORS: &[VendorEntry] = &[
    netatmo::ENTRY,
    somfy_protect::ENTRY,
    myfox::ENTRY,
    homey::ENTRY,
];

/// A vendor in the registry: what it is as data, and its code.
#[derive(Clone, Copy)]
pub struct VendorEntry {
    /// Its id, which its catalog entries carry in [`ProviderSpec::kind`].
    pub kind: VendorKind,
    /// Its built-in catalog entries (Netatmo has two: Netatmo and Works with Legrand).
    pub specs: fn() -> Vec<ProviderSpec>,
    /// Its built-in actions: the text of its `recipes.toml`.
    pub recipes: &'static str,
    /// What data cannot say about it.
    pub code: &'static dyn Vendor,
}

impl VendorEntry {
    /// An entry (a `const` in each vendor's module).
    pub const fn new(
        kind: VendorKind,
        specs: fn() -> Vec<ProviderSpec>,
        recipes: &'static str,
        code: &'static dyn Vendor,
    ) -> Self {
        Self {
            kind,
            specs,
            recipes,
            code,
        }
    }
}

impl std::fmt::Debug for VendorEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorEntry")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What a vendor needs beyond its data; every method defaults to plain HTTP and no extras.
#[async_trait]
pub trait Vendor: Send + Sync {
    /// The code steps its recipes may name with `run = "..."`.
    fn steps(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads an answer its own way; `None` leaves it to [`standard`].
    fn classify(&self, _endpoint: Endpoint, _response: &VendorResponse) -> Option<Verdict> {
        None
    }

    /// Runs the code step `step`, one of [`Vendor::steps`] (the vendor client checks);
    /// `request` is the recipe's rendered request, which the step may use as its first call.
    async fn run_step(&self, api: &dyn VendorApi, step: &str, _request: &VendorRequest) -> StepRun {
        Err(no_step(api, step))
    }

    /// The ids a connection's actions need, grouped.
    async fn discover(&self, _api: &dyn VendorApi) -> Result<Vec<Section>, ActionError> {
        Ok(Vec::new())
    }

    /// Whether actions go to a device through a session this vendor opens
    /// ([`Vendor::open_session`]) rather than to the cloud with the access token.
    fn uses_device_session(&self) -> bool {
        false
    }

    /// Opens a device session through `api`'s cloud calls. The token keeper caches, locks and
    /// stores it (`refresh::session`); the vendor only logs in.
    async fn open_session(&self, api: &dyn VendorApi) -> Result<DeviceSession, ActionError> {
        Err(ActionError::Misconfigured(format!(
            "provider {} has no device session",
            api.spec().id
        )))
    }

    /// Whether a stored session still reaches the device the config chose (`chosen`).
    fn session_fits(&self, _session: &DeviceSession, _chosen: Option<&str>) -> bool {
        true
    }
}

/// What a provider defined in config gets: plain OAuth2 and HTTP status codes.
struct Standard;

impl Vendor for Standard {}

/// The code of the vendor `kind` (plain HTTP for providers from config).
pub fn vendor_of(kind: VendorKind) -> &'static dyn Vendor {
    VENDORS
        .iter()
        .find(|v| v.kind == kind)
        .map_or(&Standard, |v| v.code)
}

/// Every built-in provider.
pub fn specs() -> Vec<ProviderSpec> {
    VENDORS.iter().flat_map(|v| (v.specs)()).collect()
}

/// The built-in actions of a vendor (none for providers defined in config). Parsed once; a
/// broken recipe file is reported as a config error rather than a panic, and a unit test keeps
/// every file valid.
pub fn recipes(kind: VendorKind) -> Result<&'static Recipes, String> {
    static PARSED: OnceLock<BTreeMap<&'static str, Result<Recipes, String>>> = OnceLock::new();
    static EMPTY: OnceLock<Recipes> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        VENDORS
            .iter()
            .map(|v| {
                let file = format!("{}/recipes.toml", v.kind.as_str());
                (v.kind.as_str(), recipe::parse(&file, v.recipes))
            })
            .collect()
    });
    match all.get(kind.as_str()) {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(EMPTY.get_or_init(BTreeMap::new)),
    }
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
    vendor_of(spec.kind)
        .classify(endpoint, response)
        .unwrap_or_else(|| standard(spec, response))
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

/// What a code step found: the structured `data` its answer template reads (and JSON callers
/// get), with the status of its first vendor call.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The vendor's HTTP status.
    pub vendor_status: u16,
    /// What the step found, shaped for answers.
    pub data: Value,
}

/// What a code step answers.
pub type StepRun = Result<StepResult, ActionError>;

/// The refusal of a step the vendor does not have.
pub fn no_step(api: &dyn VendorApi, name: &str) -> ActionError {
    ActionError::Misconfigured(format!("provider {} has no step {name}", api.spec().id))
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
pub(crate) fn vendor_response(status: u16, json: Value) -> VendorResponse {
    VendorResponse {
        status,
        text: json.to_string(),
        json: Some(json),
        retry_after_secs: None,
    }
}

#[cfg(test)]
mod spoken_defaults_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// Every recipe of every provider parses, builds into an action when its setup values are
    /// given, and names only code steps its provider has.
    #[test]
    fn every_builtin_action_builds() {
        for (provider, kind) in [
            ("netatmo", netatmo::KIND),
            ("legrand", netatmo::KIND),
            ("somfy_protect", somfy_protect::KIND),
            ("myfox", myfox::KIND),
            ("homey", homey::KIND),
        ] {
            let recipes = recipes(kind).expect("recipes parse");
            assert!(!recipes.is_empty(), "{provider} has built-in actions");
            let mut toml = format!("[connections.c]\nprovider = \"{provider}\"\n");
            for (name, recipe) in recipes {
                if let Some(step) = &recipe.run {
                    assert!(
                        vendor_of(kind).steps().contains(&step.as_str()),
                        "{provider}.{name}: {step}"
                    );
                }
                let with: Vec<String> = recipe
                    .setup
                    .iter()
                    .filter(|(_, p)| !p.optional)
                    .map(|(k, _)| format!("{k} = \"x1\""))
                    .collect();
                toml.push_str(&format!(
                    "[actions.{name}]\nconnection = \"c\"\nbuiltin = \"{name}\"\nwith = {{ {} }}\nkey_hash = \"{HASH}\"\n",
                    with.join(", ")
                ));
            }
            let config =
                Config::parse(&toml, provider, None).unwrap_or_else(|e| panic!("{provider}: {e}"));
            assert_eq!(config.actions.len(), recipes.len());
        }
    }

    #[test]
    fn a_builtin_names_what_is_missing_and_what_exists() {
        let config = |body: &str| {
            Config::parse(
                &format!(
                    "[connections.alarm]\nprovider = \"somfy_protect\"\n[actions.a]\nconnection = \"alarm\"\nkey_hash = \"{HASH}\"\n{body}"
                ),
                "homehook.toml",
                None,
            )
        };
        let missing = config("builtin = \"armed\"").expect_err("site_id missing");
        assert_eq!(missing.field, "actions.a.with.site_id");
        assert!(
            missing.problem.contains("homehook discover alarm"),
            "{missing}"
        );
        let unknown = config("builtin = \"arm\"").expect_err("no such built-in");
        assert!(unknown.problem.contains("armed, disarmed"), "{unknown}");
        let both = config("builtin = \"armed\"\nwith = { site_id = \"s\" }\npath = \"/x\"")
            .expect_err("path and builtin");
        assert_eq!(both.field, "actions.a.path");
        let too_long = config("path = \"/x\"\nparams.m = { type = \"end_time\", max = 1e12 }")
            .expect_err("an end time past a year");
        assert_eq!(too_long.field, "actions.a.params.m.max");
        let extra = config("builtin = \"armed\"\nwith = { site_id = \"s\", volume = 3 }")
            .expect_err("unknown with");
        assert_eq!(extra.field, "actions.a.with.volume");
    }

    /// The docs page of each vendor names every one of its built-in actions.
    #[test]
    fn every_builtin_action_is_documented() {
        for (kind, page) in [
            (
                netatmo::KIND,
                include_str!("../../../../docs/providers/netatmo.md"),
            ),
            (
                somfy_protect::KIND,
                include_str!("../../../../docs/providers/somfy-protect.md"),
            ),
            (
                myfox::KIND,
                include_str!("../../../../docs/providers/myfox.md"),
            ),
            (
                homey::KIND,
                include_str!("../../../../docs/providers/homey.md"),
            ),
        ] {
            for name in recipes(kind).expect("recipes").keys() {
                assert!(
                    page.contains(&format!("`{name}`")),
                    "{kind:?}: {name} is not documented"
                );
            }
        }
    }

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
