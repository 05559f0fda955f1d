//! Action parameters: what a caller sent, checked against the action's declared types before
//! any of it reaches a vendor URL, path or body.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::clock::UnixTime;
use crate::config::{Action, ParamKind, ParamSpec};

/// A parameter problem, answered to the caller as a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The caller sent a parameter the action does not declare.
    #[error("unknown parameter \"{name}\" (this action accepts: {accepted})")]
    Unknown {
        /// The name sent (truncated).
        name: String,
        /// The declared names.
        accepted: String,
    },
    /// A required parameter is missing.
    #[error("missing parameter \"{0}\"")]
    Missing(String),
    /// A value does not fit its declared type.
    #[error("parameter \"{name}\": {problem}")]
    Invalid {
        /// The parameter.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// Checked parameter values, by name.
pub type Params = BTreeMap<String, Value>;

/// Checks what a caller sent (`provided`) against the action's declarations: unknown names are
/// refused (and so are values config fixed), defaults filled in, optional values left out when
/// absent, values converted to their declared type. `now` turns durations into end times.
pub fn check(
    action: &Action,
    provided: BTreeMap<String, Value>,
    now: UnixTime,
) -> Result<Params, ParamError> {
    for name in provided.keys() {
        if action.params.get(name).is_none_or(|p| p.fixed) {
            let accepted: Vec<_> = action.caller_params().map(|(n, _)| n.clone()).collect();
            return Err(ParamError::Unknown {
                name: name.chars().take(64).collect(),
                accepted: if accepted.is_empty() {
                    "no parameters".into()
                } else {
                    accepted.join(", ")
                },
            });
        }
    }
    let mut out = Params::new();
    for (name, spec) in &action.params {
        let value = match provided.get(name).or(spec.default.as_ref()) {
            Some(v) => v,
            None if spec.optional => continue,
            None => return Err(ParamError::Missing(name.clone())),
        };
        let mut value = coerce(spec, value).map_err(|problem| ParamError::Invalid {
            name: name.clone(),
            problem,
        })?;
        if let (ParamKind::EndTime { .. }, Some(minutes)) = (&spec.kind, value.as_i64()) {
            value = Value::from(now.plus_secs(minutes.saturating_mul(60)).0);
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Checks one value against its declaration (used for config defaults too).
pub fn check_value(spec: &ParamSpec, value: &Value) -> Result<(), String> {
    coerce(spec, value).map(|_| ())
}

/// Converts `value` to the declared type. Text is accepted for numbers and booleans, because
/// query strings and forms carry only text.
fn coerce(spec: &ParamSpec, value: &Value) -> Result<Value, String> {
    match &spec.kind {
        ParamKind::String { max_len } => {
            let s = value.as_str().ok_or("expected text")?;
            if s.chars().count() > *max_len {
                return Err(format!("longer than {max_len} characters"));
            }
            if s.chars().any(char::is_control) {
                return Err("control characters are not allowed".into());
            }
            Ok(Value::String(s.to_string()))
        }
        ParamKind::Integer { min, max } => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or("expected a whole number")?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(range(min.map(|v| v as f64), max.map(|v| v as f64)));
            }
            Ok(Value::from(n))
        }
        ParamKind::Number { min, max } => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or("expected a number")?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(range(*min, *max));
            }
            // 22 stays 22 (not 22.0) in answers, URLs and bodies.
            if n.fract() == 0.0 && n.abs() < 1e15 {
                return Ok(Value::from(n as i64));
            }
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| "expected a number".into())
        }
        ParamKind::Boolean => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if matches!(s.as_str(), "true" | "1" | "on") => Ok(Value::Bool(true)),
            Value::String(s) if matches!(s.as_str(), "false" | "0" | "off") => {
                Ok(Value::Bool(false))
            }
            _ => Err("expected true or false".into()),
        },
        ParamKind::EndTime { max_minutes } => {
            let minutes = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or("expected a number of minutes")?;
            if !(1..=*max_minutes).contains(&minutes) {
                return Err(range(Some(1.0), Some(*max_minutes as f64)));
            }
            Ok(Value::from(minutes))
        }
        ParamKind::Enum { values } => {
            let s = value.as_str().ok_or("expected text")?;
            if values.iter().any(|v| v == s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err(format!("expected one of: {}", values.join(", ")))
            }
        }
    }
}

fn range(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("must be between {a} and {b}"),
        (Some(a), None) => format!("must be at least {a}"),
        (None, Some(b)) => format!("must be at most {b}"),
        (None, None) => "out of range".into(),
    }
}

/// A value as text, for URLs, forms and answers. Whole numbers lose their `.0` (a vendor's
/// `22.0` is said "22").
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: ParamKind) -> ParamSpec {
        ParamSpec {
            kind,
            default: None,
            optional: false,
            fixed: false,
            doc: None,
        }
    }

    #[test]
    fn coerces_text_from_query_strings() {
        let n = spec(ParamKind::Number {
            min: Some(5.0),
            max: Some(30.0),
        });
        assert_eq!(coerce(&n, &json!("21.5")), Ok(json!(21.5)));
        assert!(coerce(&n, &json!("NaN")).is_err());
        assert!(
            coerce(&n, &json!(31))
                .expect_err("range")
                .contains("between")
        );
        let b = spec(ParamKind::Boolean);
        assert_eq!(coerce(&b, &json!("on")), Ok(json!(true)));
        let e = spec(ParamKind::Enum {
            values: vec!["away".into(), "schedule".into()],
        });
        assert!(coerce(&e, &json!("../../x")).is_err());
        let s = spec(ParamKind::String { max_len: 4 });
        assert!(coerce(&s, &json!("abcde")).is_err());
        assert!(coerce(&s, &json!("a\nb")).is_err());
        let i = spec(ParamKind::Integer {
            min: None,
            max: None,
        });
        assert!(coerce(&i, &json!(1.5)).is_err());
    }
}
