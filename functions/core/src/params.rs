//! Action parameters: what a caller sent, checked against the action's declared types before
//! any of it reaches a vendor URL, path or body.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::clock::UnixTime;

/// Longest `end_time` a parameter may accept: a year, in minutes.
const MAX_END_TIME_MINUTES: i64 = 366 * 24 * 60;

/// A declared action parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its type and constraints.
    pub kind: ParamKind,
    /// Value used when the caller sends none; without one, the parameter is required.
    pub default: Option<serde_json::Value>,
    /// The caller may leave it out; the field that uses it is then left out of the request.
    pub optional: bool,
    /// Set by config (`with`), not by callers.
    pub fixed: bool,
    /// What it is, for listings and errors.
    pub doc: Option<String>,
}

/// Parameter types.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// Text up to `max_len` characters (default 128), no control characters.
    String {
        /// Longest accepted value, in characters.
        max_len: usize,
    },
    /// A whole number within bounds.
    Integer {
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
    /// A number within bounds.
    Number {
        /// Smallest accepted value.
        min: Option<f64>,
        /// Largest accepted value.
        max: Option<f64>,
    },
    /// `true` or `false`.
    Boolean,
    /// One of a fixed list of words.
    Enum {
        /// The accepted words.
        values: Vec<String>,
    },
    /// A duration in minutes from now, sent to the vendor as the Unix time it ends
    /// (Netatmo's `endtime`).
    EndTime {
        /// Longest accepted duration, in minutes.
        max_minutes: i64,
    },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ParamDeclType {
    String,
    Integer,
    Number,
    Boolean,
    Enum,
    EndTime,
}

/// A parameter as written (in config or in a built-in recipe): one flat table, so unknown
/// fields can be refused. [`ParamDecl::resolve`] checks it into a [`ParamSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    #[serde(rename = "type")]
    ty: ParamDeclType,
    max_len: Option<usize>,
    min: Option<f64>,
    max: Option<f64>,
    values: Option<Vec<String>>,
    default: Option<serde_json::Value>,
    /// The caller (or config, for a setup value) may leave it out.
    #[serde(default)]
    pub optional: bool,
    doc: Option<String>,
}

impl ParamDecl {
    /// What the parameter is, for error messages about a missing setup value.
    pub fn doc(&self) -> Option<&str> {
        self.doc.as_deref()
    }

    /// Checks the declaration; an error names the field under `field` and the problem.
    pub fn resolve(self, field: &str) -> Result<ParamSpec, (String, String)> {
        let misplaced = |name: &str| {
            (
                format!("{field}.{name}"),
                "not used by this type".to_string(),
            )
        };
        let whole = |v: Option<f64>, name: &str| -> Result<Option<i64>, (String, String)> {
            match v {
                Some(f) if f.fract() != 0.0 => {
                    Err((format!("{field}.{name}"), "must be a whole number".into()))
                }
                Some(f) => Ok(Some(f as i64)),
                None => Ok(None),
            }
        };
        let bounds_unused = self.min.is_some() || self.max.is_some();
        let kind = match self.ty {
            ParamDeclType::String => {
                if bounds_unused {
                    return Err(misplaced(if self.min.is_some() { "min" } else { "max" }));
                }
                ParamKind::String {
                    max_len: self.max_len.unwrap_or(128),
                }
            }
            ParamDeclType::Integer => ParamKind::Integer {
                min: whole(self.min, "min")?,
                max: whole(self.max, "max")?,
            },
            ParamDeclType::Number => ParamKind::Number {
                min: self.min,
                max: self.max,
            },
            ParamDeclType::Boolean => {
                if bounds_unused {
                    return Err(misplaced("min"));
                }
                ParamKind::Boolean
            }
            ParamDeclType::Enum => {
                let values = self.values.clone().unwrap_or_default();
                if values.is_empty() {
                    return Err((
                        format!("{field}.values"),
                        "an enum needs at least one value".into(),
                    ));
                }
                ParamKind::Enum { values }
            }
            ParamDeclType::EndTime => {
                if self.min.is_some() {
                    return Err(misplaced("min"));
                }
                let max_minutes = whole(self.max, "max")?.unwrap_or(7 * 24 * 60);
                // A year at most: no vendor keeps a temporary mode longer.
                if !(1..=MAX_END_TIME_MINUTES).contains(&max_minutes) {
                    return Err((
                        format!("{field}.max"),
                        format!("must be between 1 and {MAX_END_TIME_MINUTES} minutes"),
                    ));
                }
                ParamKind::EndTime { max_minutes }
            }
        };
        if self.values.is_some() && !matches!(kind, ParamKind::Enum { .. }) {
            return Err(misplaced("values"));
        }
        if self.max_len.is_some() && !matches!(kind, ParamKind::String { .. }) {
            return Err(misplaced("max_len"));
        }
        if self.optional && self.default.is_some() {
            return Err((
                format!("{field}.optional"),
                "a parameter with a default is never missing; drop `optional` or `default`".into(),
            ));
        }
        Ok(ParamSpec {
            kind,
            default: self.default,
            optional: self.optional,
            fixed: false,
            doc: self.doc,
        })
    }
}

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
    specs: &BTreeMap<String, ParamSpec>,
    provided: BTreeMap<String, Value>,
    now: UnixTime,
) -> Result<Params, ParamError> {
    for name in provided.keys() {
        if specs.get(name).is_none_or(|p| p.fixed) {
            let accepted: Vec<_> = specs
                .iter()
                .filter(|(_, p)| !p.fixed)
                .map(|(n, _)| n.clone())
                .collect();
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
    for (name, spec) in specs {
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

/// The names IFTTT gives its three values.
pub const IFTTT_VALUES: [&str; 3] = ["value1", "value2", "value3"];

/// Moves IFTTT's `value1`..`value3` in `provided` to the parameters they fill: those named in
/// `ifttt` (the action's `ifttt = [...]` list), in order. Empty
/// values are dropped; a value with no parameter to fill, or one that collides with the same
/// parameter sent by name, is refused.
pub fn map_ifttt_values(
    action: &str,
    ifttt: &[String],
    provided: &mut BTreeMap<String, Value>,
) -> Result<(), ParamError> {
    for (i, value_name) in IFTTT_VALUES.iter().enumerate() {
        let Some(value) = provided.remove(*value_name) else {
            continue;
        };
        if matches!(&value, Value::Null) || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let Some(target) = ifttt.get(i) else {
            return Err(ParamError::Unknown {
                name: (*value_name).to_string(),
                accepted: format!(
                    "{}; list the parameters value1..value3 fill as actions.{}.ifttt = [...]",
                    if ifttt.is_empty() {
                        "no IFTTT values".to_string()
                    } else {
                        IFTTT_VALUES[..ifttt.len()].join(", ")
                    },
                    action
                ),
            });
        };
        if provided.contains_key(target) {
            return Err(ParamError::Invalid {
                name: target.clone(),
                problem: format!("sent twice, by name and as {value_name}"),
            });
        }
        provided.insert(target.clone(), value);
    }
    Ok(())
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
