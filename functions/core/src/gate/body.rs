//! An action call's body: its parameters (a JSON object or a form; empty is fine), the PIN it
//! may carry, and which names IFTTT-style values go by.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Action;
use crate::error::{ErrorCode, Problem};
use crate::guard::pin;
use crate::params::IFTTT_VALUES;
use crate::sensitive::SecretString;

/// Which names the body's values go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyValues {
    /// `/a/{action}`: parameters by name, and IFTTT's `value1`..`value3` for an action that
    /// does not declare parameters with those names.
    Named,
    /// IFTTT's Webhooks shape: `value1`..`value3` fill the action's parameters.
    Ifttt,
    /// IFTTT's JSON variant: parameters by name only.
    AsNamed,
}

impl BodyValues {
    /// Whether `value1`..`value3` fill `action`'s parameters (see
    /// [`crate::params::map_ifttt_values`]).
    pub fn fill_ifttt(self, action: &Action) -> bool {
        match self {
            BodyValues::Ifttt => true,
            // An action may name its own parameters value1..value3; then they are just names.
            BodyValues::Named => !IFTTT_VALUES.iter().any(|v| action.params.contains_key(*v)),
            BodyValues::AsNamed => false,
        }
    }
}

/// Parameters from the body, and the PIN if the body carries one (it is never a parameter).
pub(super) fn params(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(BTreeMap<String, Value>, Option<SecretString>), Problem> {
    let mut params = parse(content_type, bytes)?;
    let pin = match params.remove(pin::PIN_FIELD) {
        None => None,
        Some(Value::String(s)) => Some(SecretString::new(s)),
        Some(Value::Number(n)) => Some(SecretString::new(n.to_string())),
        Some(_) => {
            return Err(Problem::new(
                ErrorCode::InvalidPin,
                "\"pin\" must be text or a number.",
            ));
        }
    };
    Ok((params, pin))
}

fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<BTreeMap<String, Value>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let content_type = content_type
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    if !(content_type.starts_with("application/json") || content_type.starts_with("text/plain")) {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "Send parameters as a JSON object or a form.",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(_) => Err(Problem::new(
            ErrorCode::MalformedBody,
            "The body must be a JSON object of parameters, like {\"mode\": \"away\"}.",
        )),
        Err(e) => Err(Problem::new(
            ErrorCode::MalformedBody,
            format!(
                "The body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )),
    }
}
