//! Spoken answers: an action's `answer` is a minijinja template, compiled once when config
//! loads and rendered after the vendor answered, for a phone to speak. The text is plain (no
//! HTML escaping) and bounded, and a template can neither fail an action nor run forever:
//! missing values render empty, fuel bounds the work, and [`crate::action::render_answer`]
//! answers "OK" if rendering fails anyway.
//!
//! What a template sees: each parameter by its name (`{{ mode }}`) and under `params`, `data`
//! (the vendor's JSON answer, or the structured result of a built-in code step), `action` (the
//! action's name) and `connection` (the connection's label).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

use crate::params::Params;
use crate::template::is_identifier;

/// Longest answer, in characters: a sentence or two to speak, not a report.
pub const MAX_ANSWER_CHARS: usize = 1000;

/// Work one rendering may do: about one unit per instruction and per 64 bytes of data, so
/// about 50,000 steps or 3 MB. A few rooms and devices take a few hundred.
const FUEL: u64 = 50_000;

/// The names every answer can use besides the action's parameters.
pub const CONTEXT_NAMES: [&str; 4] = ["data", "params", "action", "connection"];

/// The one template in each answer's environment.
const NAME: &str = "answer";

/// A compiled answer template.
#[derive(Clone)]
pub struct AnswerTemplate {
    env: Arc<Environment<'static>>,
    source: Arc<str>,
}

impl fmt::Debug for AnswerTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnswerTemplate").field(&self.source).finish()
    }
}

/// What one answer is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct AnswerContext<'a> {
    /// The action's name.
    pub action: &'a str,
    /// The connection's label.
    pub connection: &'a str,
    /// The checked parameters, fixed ones included.
    pub params: &'a Params,
    /// The vendor's JSON answer, or a code step's structured result.
    pub data: Option<&'a serde_json::Value>,
}

impl AnswerTemplate {
    /// Compiles `source`. `params` are the action's parameter names: any other name the
    /// template reads (besides [`CONTEXT_NAMES`] and what it sets itself) is a typo, refused
    /// here rather than spoken as nothing. Errors are plain words with minijinja's line.
    pub fn compile<'p>(
        source: &str,
        params: impl IntoIterator<Item = &'p str>,
    ) -> Result<Self, String> {
        if let Some(rewritten) = old_syntax(source) {
            return Err(format!(
                "answers are minijinja templates now: write \"{rewritten}\""
            ));
        }
        let mut env = environment();
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        let template = Self {
            env: Arc::new(env),
            source: source.into(),
        };
        template.check_names(params.into_iter().collect())?;
        // A dry run with no values finds misspelt filters, tests and functions on the way
        // every call takes (branches not taken are not checked).
        match template.render_value(Value::from(BTreeMap::<String, Value>::new())) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
                ) =>
            {
                Err(describe(&e))
            }
            _ => Ok(template),
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the answer: trimmed, at most [`MAX_ANSWER_CHARS`] characters.
    pub fn render(&self, ctx: &AnswerContext<'_>) -> Result<String, Error> {
        let text = self.render_value(context(ctx))?;
        let text = text.trim();
        Ok(match text.char_indices().nth(MAX_ANSWER_CHARS) {
            Some((cut, _)) => text[..cut].trim_end().to_string(),
            None => text.to_string(),
        })
    }

    fn render_value(&self, ctx: Value) -> Result<String, Error> {
        self.env.get_template(NAME)?.render(ctx)
    }

    fn check_names(&self, params: BTreeSet<&str>) -> Result<(), String> {
        let template = self.env.get_template(NAME).map_err(|e| describe(&e))?;
        let globals: BTreeSet<&str> = self.env.globals().map(|(name, _)| name).collect();
        let mut read: Vec<String> = template.undeclared_variables(false).into_iter().collect();
        read.sort();
        match read.iter().find(|name| {
            !params.contains(name.as_str())
                && !CONTEXT_NAMES.contains(&name.as_str())
                && !globals.contains(name.as_str())
        }) {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "{{{{ {unknown} }}}}: \"{unknown}\" is not a parameter of this action ({}) nor one of {}",
                if params.is_empty() {
                    "it has none".to_string()
                } else {
                    format!(
                        "it has: {}",
                        params.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                },
                CONTEXT_NAMES.join(", ")
            )),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Plain text for a phone to speak, not HTML: "R&D" stays "R&D".
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // `{{ data.body.x.y }}` is empty when the vendor left `body` out, not an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_formatter(spoken);
    env.add_filter("round", round);
    env.add_filter("default", default);
    env.add_filter("d", default);
    // A block tag alone on its line leaves no blank line behind.
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// How values print: JSON null says nothing ("none" is no answer), a whole number given as a
/// float says "21" (not "21.0"); the rest as minijinja prints them.
fn spoken(out: &mut Output<'_>, state: &mut State<'_, '_>, value: &Value) -> Result<(), Error> {
    if value.is_none() {
        return Ok(());
    }
    if value.is_number()
        && !value.is_integer()
        && let Ok(f) = f64::try_from(value.clone())
        && f.is_finite()
        && f.fract() == 0.0
        && f.abs() < 1e15
    {
        return out
            .write_str(&(f as i64).to_string())
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write the answer"));
    }
    minijinja::escape_formatter(out, state, value)
}

/// `round(n)`: to `n` decimals (none by default), halves away from zero as people say them
/// (7.25 → 7.3, where minijinja's builtin gives 7.2); a missing or non-numeric value stays what
/// it is (the builtin fails on it, and a missing reading must not cost the whole answer).
fn round(value: Value, precision: Option<i32>) -> Value {
    if value.is_integer() || !value.is_number() {
        return value;
    }
    let Ok(f) = f64::try_from(value.clone()) else {
        return value;
    };
    let scale = 10f64.powi(precision.unwrap_or(0).clamp(0, 10));
    let rounded = (f * scale).round() / scale;
    Value::from(if rounded.is_finite() { rounded } else { f })
}

/// `default(x)`: `x` when the value is missing or JSON null (minijinja's builtin keeps null,
/// which would say nothing); `default(x, true)`: also when it is empty or false.
fn default(value: Value, fallback: Option<Value>, falsy_too: Option<bool>) -> Value {
    let missing = value.is_undefined() || value.is_none();
    if missing || (falsy_too == Some(true) && !value.is_true()) {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value
    }
}

fn context(ctx: &AnswerContext<'_>) -> Value {
    let params: BTreeMap<String, Value> = ctx
        .params
        .iter()
        .map(|(k, v)| (k.clone(), from_json(v)))
        .collect();
    let mut top = params.clone();
    top.insert("params".into(), Value::from(params));
    if let Some(data) = ctx.data {
        top.insert("data".into(), from_json(data));
    }
    top.insert("action".into(), Value::from(ctx.action));
    top.insert("connection".into(), Value::from(ctx.connection));
    Value::from(top)
}

/// A JSON value as a template value.
fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, f) => Value::from(f.unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(from_json).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// An error as plain words with its line: "syntax error: unexpected end of input, expected
/// end of block (line 1)".
fn describe(e: &Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// The answer rewritten in minijinja, if it is written in homehook's former `{param}` /
/// `{/json/pointer}` syntax (single braces, and no `{{` or `{%` anywhere).
fn old_syntax(source: &str) -> Option<String> {
    if source.contains("{{") || source.contains("{%") {
        return None;
    }
    let mut rewritten = String::new();
    let mut rest = source;
    let mut found = false;
    while let Some(open) = rest.find('{') {
        rewritten.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let inside = after.find('}').map(|close| (close, after[..close].trim()));
        match inside.and_then(|(close, name)| Some((close, old_placeholder(name)?))) {
            Some((close, expression)) => {
                rewritten.push_str(&format!("{{{{ {expression} }}}}"));
                rest = &after[close + 1..];
                found = true;
            }
            None => {
                rewritten.push('{');
                rest = after;
            }
        }
    }
    rewritten.push_str(rest);
    found.then_some(rewritten)
}

/// `mode` → `mode`; `/body/devices/0/module_name` → `data.body.devices[0].module_name`.
fn old_placeholder(name: &str) -> Option<String> {
    let Some(pointer) = name.strip_prefix('/') else {
        return is_identifier(name).then(|| name.to_string());
    };
    if name.chars().any(|c| c.is_whitespace() || c == '{') {
        return None;
    }
    let mut expression = "data".to_string();
    for segment in pointer.split('/') {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) {
            expression.push_str(&format!("[{segment}]"));
        } else if segment
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            expression.push('.');
            expression.push_str(&segment);
        } else {
            expression.push_str(&format!("[{segment:?}]"));
        }
    }
    Some(expression)
}

#[cfg(test)]
mod tests;
