//! Running an action: checked parameters → vendor request → call with a fresh token → on an
//! expired-token answer, renew once and retry once → an answer for the caller.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::config::{Action, Config};
use crate::params::{ParamError, Params, as_text};
use crate::refresh::{TokenError, TokenKeeper};
use crate::template::{Part, Template};
use crate::vendor::{self, VendorBody, VendorCallError, VendorRequest, VendorResponse};

pub use crate::params::check_value;

/// Characters left as they are in a path segment (RFC 3986 unreserved): a parameter can never
/// add a `/`, `?`, `#` or `..` to a vendor path.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the caller gets back after the vendor answered 2xx.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// The vendor's HTTP status.
    pub vendor_status: u16,
    /// Short text answer (for phone shortcuts).
    pub answer: String,
    /// The vendor's JSON answer, if any.
    pub data: Option<Value>,
}

/// Why an action did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No usable token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The vendor refused the request (4xx other than an expired token).
    #[error("the vendor refused the request (HTTP {status}){}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    VendorRejected {
        /// Vendor status.
        status: u16,
        /// The vendor's words.
        reason: Option<String>,
    },
    /// The vendor is rate limiting.
    #[error("the vendor asks to slow down; try again in {retry_after_secs} s")]
    VendorBusy {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The vendor failed (5xx) or could not be reached.
    #[error("the vendor is unavailable: {0}")]
    VendorUnavailable(String),
    /// A parameter value cannot be used.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The action's config produced an unusable request.
    #[error("the action is misconfigured: {0}")]
    Misconfigured(String),
}

/// Renders the vendor request of `action` with checked `params`. A value placed in the path
/// must be a real segment: empty, `.` and `..` are refused.
pub fn render_request(action: &Action, params: &Params) -> Result<VendorRequest, ParamError> {
    for name in action.path.params() {
        let text = params.get(name).map(as_text).unwrap_or_default();
        if matches!(text.as_str(), "" | "." | "..") {
            return Err(ParamError::Invalid {
                name: name.to_string(),
                problem: "this value cannot be used in a URL path".into(),
            });
        }
    }
    let path = action.path.render(|part| match part {
        Part::Param(name) => params
            .get(name)
            .map(|v| utf8_percent_encode(&as_text(v), PATH_SEGMENT).to_string())
            .unwrap_or_default(),
        _ => String::new(),
    });
    let fill = |t: &Template| t.render(|part| fill_param(part, params));
    let query = action
        .query
        .iter()
        .map(|(k, t)| (k.clone(), fill(t)))
        .collect();
    let body = if let Some(body) = &action.body {
        VendorBody::Json(render_json(body, params))
    } else if !action.form.is_empty() {
        VendorBody::Form(
            action
                .form
                .iter()
                .map(|(k, t)| (k.clone(), fill(t)))
                .collect(),
        )
    } else {
        VendorBody::Empty
    };
    Ok(VendorRequest {
        method: action.method.clone(),
        path,
        query,
        body,
    })
}

fn fill_param(part: &Part, params: &Params) -> String {
    match part {
        Part::Param(name) => params.get(name).map(as_text).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Fills string templates inside a JSON body. A string that is exactly one `{param}` takes the
/// parameter's JSON value (numbers stay numbers); values are inserted as JSON values, never
/// spliced into JSON text, so a parameter cannot add fields.
fn render_json(value: &Value, params: &Params) -> Value {
    match value {
        Value::String(s) => match Template::parse(s) {
            Ok(t) => match t.sole_param().and_then(|p| params.get(p)) {
                Some(v) => v.clone(),
                None => Value::String(t.render(|part| fill_param(part, params))),
            },
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| render_json(v, params)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_json(v, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The text answer: the action's `answer` template, or "OK".
pub fn render_answer(action: &Action, params: &Params, response: &VendorResponse) -> String {
    match &action.answer {
        None => "OK".into(),
        Some(t) => t.render(|part| match part {
            Part::Param(name) => params.get(name).map(as_text).unwrap_or_default(),
            Part::Pointer(p) => response
                .json
                .as_ref()
                .and_then(|j| j.pointer(p))
                .map(as_text)
                .unwrap_or_else(|| "?".into()),
            Part::Literal(_) => String::new(),
        }),
    }
}

/// Runs `action` with checked `params`.
pub async fn run(
    config: &Config,
    keeper: &TokenKeeper,
    http: &reqwest::Client,
    action: &Action,
    params: &Params,
) -> Result<ActionOutcome, ActionError> {
    let conn = config.connections.get(&action.connection).ok_or_else(|| {
        ActionError::Misconfigured(format!("unknown connection {}", action.connection))
    })?;
    let spec = config
        .provider_of(conn)
        .ok_or_else(|| ActionError::Misconfigured(format!("unknown provider {}", conn.provider)))?;
    let request = render_request(action, params)?;

    let mut token = keeper.fresh_token(conn).await?;
    let mut response = vendor::call(http, spec, &token.access_token, &request)
        .await
        .map_err(call_error)?;
    if response.is_expired_token(spec) {
        tracing::info!(connection = %conn.id, action = %action.name, "vendor says the token expired; renewing once");
        token = keeper.renew_rejected(conn, &token).await?;
        response = vendor::call(http, spec, &token.access_token, &request)
            .await
            .map_err(call_error)?;
    }
    match response.status {
        200..=299 => Ok(ActionOutcome {
            vendor_status: response.status,
            answer: render_answer(action, params, &response),
            data: response.json,
        }),
        429 => Err(ActionError::VendorBusy {
            retry_after_secs: response.retry_after_secs.unwrap_or(60),
        }),
        400..=499 => Err(ActionError::VendorRejected {
            status: response.status,
            reason: response.reason(),
        }),
        status => Err(ActionError::VendorUnavailable(format!(
            "HTTP {status}{}",
            response
                .reason()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ))),
    }
}

fn call_error(e: VendorCallError) -> ActionError {
    match e {
        VendorCallError::BadUrl(p) => ActionError::Misconfigured(format!("bad vendor path {p}")),
        VendorCallError::Unreachable(d) => ActionError::VendorUnavailable(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn parameters_cannot_escape_their_place() {
        let config = Config::parse(
            &format!(
                r#"
                [connections.c]
                provider = "netatmo"
                [actions.a]
                connection = "c"
                path = "/device/{{dev}}/set"
                query = {{ note = "{{dev}}" }}
                body = {{ home = {{ id = "h1", temp = "{{temp}}", label = "t={{dev}}" }} }}
                params.dev = {{ type = "string" }}
                params.temp = {{ type = "number" }}
                key_hash = "{HASH}"
                "#
            ),
            "t.toml",
            None,
        )
        .expect("config");
        let action = &config.actions["a"];
        let params = crate::params::check(
            action,
            [
                ("dev".to_string(), json!("../x?y#\"z")),
                ("temp".to_string(), json!(19.5)),
            ]
            .into_iter()
            .collect(),
        )
        .expect("params");
        let r = render_request(action, &params).expect("renders");
        assert_eq!(r.path, "/device/..%2Fx%3Fy%23%22z/set");
        assert_eq!(r.query, [("note".to_string(), "../x?y#\"z".to_string())]);
        assert_eq!(
            r.body,
            VendorBody::Json(json!({"home": {"id": "h1", "temp": 19.5, "label": "t=../x?y#\"z"}}))
        );
    }
}
