//! Homey, through the Athom cloud. Authorization code at `/oauth2/authorise` (British spelling)
//! with HTTP Basic client authentication gives a cloud access token; acting on a Homey takes a
//! chain: `GET /user/me` (pick the Homey) → `POST /delegation/token?audience=homey` (a JWT) →
//! `POST {remoteUrl}/api/manager/users/login` (the Homey's session bearer; `remoteUrlForwarded`
//! when a Homey has no `remoteUrl`, never a LAN URL: `internet_url`). The session is stored
//! with the token record and sent with `X-Homey-ID`; a 401 from the Homey redoes the chain
//! once, a 401 `invalid_token` from the cloud refreshes the OAuth token once. The evidence for
//! each request (Athom's own client, npm `homey-api`, and the API specification it ships) is in
//! docs/providers/homey.md.

use serde_json::{Value, json};

use async_trait::async_trait;

use super::discovery::Section;
use super::port::{Endpoint, VendorApi};
use super::{StepResult, StepRun, Vendor, VendorEntry, Verdict, items, standard, text};
use crate::catalog::{
    ClientAuth, ExpiredTokenSignal, Grant, Pkce, ProviderSpec, RefreshPolicy, TokenPlacement,
    VendorKind,
};
use crate::error::ActionError;
use crate::sensitive::SecretString;
use crate::token::DeviceSession;
use crate::vendor::{TargetAuth, VendorBody, VendorRequest, VendorResponse, VendorTarget};

/// Homey's id in the registry.
pub const KIND: VendorKind = VendorKind("homey");

/// Code steps of Homey's built-in actions.
const STEPS: &[&str] = &["device_state"];

/// The header naming the Homey on every call.
const HOMEY_ID_HEADER: &str = "X-Homey-ID";

/// Sessions are reported to last about a day; renew well before, in case.
const SESSION_RENEW_AFTER_SECS: i64 = 12 * 3600;

/// Homey, through the Athom cloud.
pub struct Homey;

/// Homey in the registry.
pub const ENTRY: VendorEntry =
    VendorEntry::new(KIND, || vec![spec()], include_str!("recipes.toml"), &Homey);

#[async_trait]
impl Vendor for Homey {
    fn steps(&self) -> &'static [&'static str] {
        STEPS
    }

    /// On the Homey itself, any 401 means the session is over; the cloud follows the data.
    fn classify(&self, endpoint: Endpoint, r: &VendorResponse) -> Option<Verdict> {
        (endpoint == Endpoint::Actions && r.status == 401).then_some(Verdict::SessionExpired)
    }

    /// `device_state`, the one step.
    async fn run_step(&self, api: &dyn VendorApi, _: &str, request: &VendorRequest) -> StepRun {
        device_state(api, request).await
    }

    /// The account's Homeys, then the chosen Homey's devices, flows and variables.
    async fn discover(&self, api: &dyn VendorApi) -> Result<Vec<Section>, ActionError> {
        let me = api.get(Endpoint::Cloud, "/user/me", &[]).await?;
        let mut homeys = Section::new("Homeys (connections.<id>.homey)", "homey");
        for h in items(&me, "/homeys") {
            homeys.push(&h["_id"], &h["name"], text(&h["platform"]));
        }
        let mut sections = vec![homeys];
        if pick_homey(api, &me).is_err() {
            // Several Homeys and none chosen: the list above is what to choose from.
            return Ok(sections);
        }
        let devices = api
            .get(Endpoint::Actions, "/api/manager/devices/device", &[])
            .await?;
        let mut device_list = Section::new("Devices", "device_id");
        for d in listing(&devices) {
            let caps: Vec<String> = items(d, "/capabilities").iter().map(text).collect();
            device_list.push(
                &d["id"],
                &d["name"],
                format!("{}: {}", text(&d["class"]), caps.join(", ")),
            );
        }
        sections.push(device_list);
        for (path, title) in [
            ("/api/manager/flow/flow", "Flows"),
            ("/api/manager/flow/advancedflow", "Advanced flows"),
        ] {
            let flows = api.get(Endpoint::Actions, path, &[]).await?;
            let mut section = Section::new(title, "flow_id");
            for f in listing(&flows) {
                section.push(&f["id"], &f["name"], "");
            }
            sections.push(section);
        }
        let variables = api
            .get(Endpoint::Actions, "/api/manager/logic/variable", &[])
            .await?;
        let mut variable_list = Section::new("Variables", "variable_id");
        for v in listing(&variables) {
            variable_list.push(
                &v["id"],
                &v["name"],
                format!("{} = {}", text(&v["type"]), text(&v["value"])),
            );
        }
        sections.push(variable_list);
        sections.retain(|s| !s.items.is_empty());
        Ok(sections)
    }

    fn uses_device_session(&self) -> bool {
        true
    }

    async fn open_session(&self, api: &dyn VendorApi) -> Result<DeviceSession, ActionError> {
        let session = login(api).await?;
        tracing::info!(connection = %api.connection_id(), homey = %session.label, "Homey session started");
        Ok(session)
    }

    /// A session fits while it is for the Homey config names (the owner may have changed
    /// `homey = "…"`), by id or by name.
    fn session_fits(&self, session: &DeviceSession, chosen: Option<&str>) -> bool {
        let homey_id = session
            .headers
            .iter()
            .find(|(k, _)| k == HOMEY_ID_HEADER)
            .map(|(_, v)| v.as_str());
        chosen.is_none_or(|wanted| Some(wanted) == homey_id || wanted == session.label)
    }
}

/// The built-in entry: `api_base` is the Athom cloud; actions go to the chosen Homey.
pub fn spec() -> ProviderSpec {
    ProviderSpec {
        id: "homey".into(),
        display_name: "Homey".into(),
        authorize_url: Some("https://api.athom.com/oauth2/authorise".into()),
        token_url: "https://api.athom.com/oauth2/token".into(),
        api_base: "https://api.athom.com".into(),
        grants: vec![Grant::AuthorizationCode],
        client_auth: ClientAuth::Basic,
        default_scopes: vec![],
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 401,
            pointer: Some("/error".into()),
            equals: Some("invalid_token".into()),
        }],
        // Athom's own client (homey-api, AthomCloudAPI.js) sends no PKCE.
        pkce: Pkce::Unverified,
        // homey-api's AthomCloudAPI.js: `params.scope = scopes.join(',')`.
        scope_separator: ',',
        kind: KIND,
        refresh: RefreshPolicy::default(),
        api_budget: vec![],
    }
}

fn post_json(path: &str, query: &[(&str, &str)], body: Value) -> VendorRequest {
    VendorRequest {
        method: http::Method::POST,
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: VendorBody::Json(body),
    }
}

/// The Homey this connection means: the one named in config, or the only one.
fn pick_homey<'v>(api: &dyn VendorApi, me: &'v Value) -> Result<&'v Value, ActionError> {
    let homeys = items(me, "/homeys");
    let describe = || {
        homeys
            .iter()
            .map(|h| format!("{} ({})", text(&h["name"]), text(&h["_id"])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (api.chosen_device(), homeys) {
        (_, []) => Err(ActionError::Misconfigured(
            "this Homey account has no Homey".into(),
        )),
        (Some(wanted), _) => homeys
            .iter()
            .find(|h| text(&h["_id"]) == wanted || text(&h["name"]) == wanted)
            .ok_or_else(|| {
                tracing::warn!(connection = %api.connection_id(), homeys = %describe(), "no Homey matches connections.<id>.homey");
                ActionError::Misconfigured(format!(
                    "connections.{0}.homey matches none of this account's Homeys; `homehook discover {0}` lists them",
                    api.connection_id()
                ))
            }),
        (None, [only]) => Ok(only),
        (None, _) => {
            tracing::warn!(connection = %api.connection_id(), homeys = %describe(), "several Homeys and none chosen");
            Err(ActionError::Misconfigured(format!(
                "this account has several Homeys: set connections.{0}.homey to the name or id of one (`homehook discover {0}` lists them)",
                api.connection_id()
            )))
        }
    }
}

/// The URL homehook reaches a Homey at from the internet: `remoteUrl` (Athom's relay, which
/// every Homey with cloud access has; the only URL homey-api uses for Homey Cloud and its last
/// resort for a Homey Pro), else `remoteUrlForwarded` (a port the owner's router forwards, which
/// homey-api also tries for a Homey Pro). The LAN URLs (`localUrl`, `localUrlSecure`, mDNS)
/// homey-api prefers at home are never reachable from a cloud service, so they are not tried.
fn internet_url(homey: &Value, plain_allowed: bool) -> Option<String> {
    ["remoteUrl", "remoteUrlForwarded"]
        .iter()
        .map(|key| text(&homey[*key]))
        .find(|url| url.starts_with("https://") || (plain_allowed && url.starts_with("http://")))
}

/// A JSON string answer (delegation token, session bearer), or a clear refusal.
fn string_answer(r: &VendorResponse, what: &str) -> Result<SecretString, ActionError> {
    match &r.json {
        Some(Value::String(s)) if !s.is_empty() => Ok(SecretString::new(s.clone())),
        _ => Err(ActionError::VendorRejected {
            status: r.status,
            reason: Some(format!("Homey's {what} answer is not a token")),
        }),
    }
}

/// The chain: user/me → delegation token → session login on the Homey.
async fn login(api: &dyn VendorApi) -> Result<DeviceSession, ActionError> {
    let me = api.get(Endpoint::Cloud, "/user/me", &[]).await?;
    let homey = pick_homey(api, &me)?;
    let homey_id = text(&homey["_id"]);
    let name = text(&homey["name"]);
    // The delegation token and the session travel to this URL: TLS only, unless the cloud
    // itself is plain HTTP (a local test server).
    let plain_allowed = api.spec().api_base.starts_with("http://");
    let Some(remote) = internet_url(homey, plain_allowed) else {
        return Err(ActionError::VendorRejected {
            status: 200,
            reason: Some(format!(
                "Homey {name} has no usable https remote URL (remoteUrl, remoteUrlForwarded)"
            )),
        });
    };
    let delegation = api
        .send(
            Endpoint::Cloud,
            &post_json("/delegation/token", &[("audience", "homey")], json!({})),
        )
        .await?;
    let jwt = string_answer(&delegation, "delegation")?;
    let target = VendorTarget {
        base: remote.clone(),
        auth: TargetAuth::None,
        headers: vec![(HOMEY_ID_HEADER.into(), homey_id.clone())],
    };
    let request = post_json(
        "/api/manager/users/login",
        &[],
        json!({ "token": jwt.expose() }),
    );
    let answer = api
        .send_to(&target, &request)
        .await
        .map_err(|e| ActionError::VendorUnavailable(e.to_string()))?;
    match standard(api.spec(), &answer) {
        Verdict::Ok => {}
        Verdict::Transient { reason, .. } => return Err(ActionError::VendorUnavailable(reason)),
        Verdict::Busy { retry_after_secs } => {
            return Err(ActionError::VendorBusy { retry_after_secs });
        }
        _ => {
            return Err(ActionError::VendorRejected {
                status: answer.status,
                reason: Some(format!(
                    "Homey {name} refused the login{}",
                    answer
                        .reason()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )),
            });
        }
    }
    let bearer = string_answer(&answer, "login")?;
    let now = api.now();
    Ok(DeviceSession {
        base_url: remote,
        bearer,
        headers: vec![(HOMEY_ID_HEADER.into(), homey_id)],
        label: name,
        obtained_at: now,
        renew_after: now.plus_secs(SESSION_RENEW_AFTER_SECS),
    })
}

/// `device_state`: the device's name and capabilities, as data for the answer template.
pub(crate) async fn device_state(api: &dyn VendorApi, request: &VendorRequest) -> StepRun {
    let response = api.send(Endpoint::Actions, request).await?;
    let device = response.json.clone().unwrap_or(Value::Null);
    Ok(StepResult {
        vendor_status: response.status,
        data: device_summary(&device),
    })
}

/// The device in one object: `id`, `name`, `class`, `capabilities` (in Homey's display order,
/// those with a value: `id`, `title`, `value`, `units`, and for a yes/no capability that names
/// its two states, like a thermostat's "Active"/"Idle", `state`) and `values` (capability id →
/// value).
pub(crate) fn device_summary(device: &Value) -> Value {
    let caps = device.get("capabilitiesObj").and_then(Value::as_object);
    // Homey lists capabilities in display order in `capabilities`.
    let order: Vec<String> = match device.get("capabilities").and_then(Value::as_array) {
        Some(list) => list.iter().map(text).collect(),
        None => caps
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let capabilities: Vec<Value> = order
        .iter()
        .filter_map(|id| {
            let cap = caps?.get(id)?;
            let value = cap.get("value").filter(|v| !v.is_null())?;
            let mut summary = json!({
                "id": id,
                "title": cap.get("title").map(text).unwrap_or_else(|| id.clone()),
                "value": value,
                "units": cap.get("units").map(text).unwrap_or_default(),
            });
            // Homey words some yes/no capabilities itself (`titleTrue`/`titleFalse`, recorded
            // on real devices); "Idle" says more than "State no".
            let state_key = match value.as_bool() {
                Some(true) => "titleTrue",
                Some(false) => "titleFalse",
                None => "",
            };
            if let Some(state) = cap.get(state_key).and_then(Value::as_str) {
                summary["state"] = json!(state);
            }
            Some(summary)
        })
        .collect();
    let values: serde_json::Map<String, Value> = capabilities
        .iter()
        .map(|c| (text(&c["id"]), c["value"].clone()))
        .collect();
    json!({
        "id": device.get("id"),
        "name": device.get("name"),
        "class": device.get("class"),
        "capabilities": capabilities,
        "values": values,
    })
}

/// Values of a Homey listing, which is an object keyed by id (or, in older versions, an array).
fn listing(value: &Value) -> Vec<&Value> {
    match value {
        Value::Object(map) => map.values().collect(),
        Value::Array(list) => list.iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Devices recorded from real Homeys (tests/fixtures/homey/SOURCES.md).
    fn recorded_devices() -> Value {
        serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/homey/devices.json"
        ))
        .expect("fixture")
    }

    #[test]
    fn a_recorded_thermostat_says_its_state_in_homeys_words() {
        let devices = recorded_devices();
        let summary = device_summary(&devices["1f4c5f56-150e-4ec8-9183-ef33022a5129"]);
        assert_eq!(summary["name"], "Room 1 VThermo");
        let caps = summary["capabilities"].as_array().expect("capabilities");
        assert_eq!(
            caps.iter().map(|c| text(&c["id"])).collect::<Vec<_>>(),
            ["vt_onoff", "target_temperature", "measure_temperature"],
            "Homey's display order"
        );
        assert_eq!(caps[0]["state"], "Idle");
        assert_eq!(caps[1]["units"], "°C");
        assert_eq!(summary["values"]["measure_temperature"], json!(17.9));
        // A yes/no capability Homey does not word keeps no `state`.
        let lamp = device_summary(&devices["7c2b75c4-fb27-4206-ada3-26950feefa95"]);
        assert!(lamp["capabilities"][0].get("state").is_none(), "{lamp}");
    }

    #[test]
    fn a_homey_is_reached_at_its_relay_then_its_forwarded_port_never_the_lan() {
        let homey = |remote: Value, forwarded: Value| {
            json!({"_id": "h", "remoteUrl": remote, "remoteUrlForwarded": forwarded,
                   "localUrl": "http://192.168.1.20",
                   "localUrlSecure": "https://192-168-1-20.homey.homeylocal.com"})
        };
        let relay = json!("https://h.connect.athom.com");
        let forwarded = json!("https://203-0-113-7.homey.homeylocal.com:4443");
        assert_eq!(
            internet_url(&homey(relay.clone(), forwarded.clone()), false),
            Some(text(&relay)),
            "the relay first, as homey-api's cloud strategy"
        );
        assert_eq!(
            internet_url(&homey(Value::Null, forwarded.clone()), false),
            Some(text(&forwarded))
        );
        assert_eq!(internet_url(&homey(Value::Null, Value::Null), false), None);
        assert_eq!(
            internet_url(&homey(json!("http://h.example"), Value::Null), false),
            None,
            "the delegation token never travels in clear"
        );
    }

    #[test]
    fn sums_a_device_up_in_display_order() {
        let lamp = json!({"id": "d1", "name": "Living lamp", "class": "light",
            "capabilities": ["onoff", "dim", "button"],
            "capabilitiesObj": {"onoff": {"value": true, "title": "Turned on"},
                                "dim": {"value": 0.4, "title": "Dim level", "units": null},
                                "button": {"value": null, "title": "Button"}}});
        assert_eq!(
            device_summary(&lamp),
            json!({"id": "d1", "name": "Living lamp", "class": "light",
                "capabilities": [
                    {"id": "onoff", "title": "Turned on", "value": true, "units": ""},
                    {"id": "dim", "title": "Dim level", "value": 0.4, "units": ""}],
                "values": {"onoff": true, "dim": 0.4}})
        );
    }
}
