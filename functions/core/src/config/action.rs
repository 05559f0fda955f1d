//! `[actions.<name>]`: one secret URL each. An action is either a request written out in config
//! (`path`, `query`, `body`, ...) or one of its provider's built-in actions
//! (`builtin = "armed"`), whose setup values (site, home, device ids) go under `with`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Connection, FieldError};
use crate::answer::AnswerTemplate;
use crate::catalog::ProviderSpec;
use crate::guard::limits::RateLimit;
use crate::guard::pin::PinHash;
use crate::keys::KeyHash;
use crate::params::{ParamDecl, ParamSpec};
use crate::template::{RequestTemplate, is_identifier};

/// `[actions.<name>]`: one secret URL.
#[derive(Debug, Clone)]
pub struct Action {
    /// The action's name (`/a/{name}`).
    pub name: String,
    /// Connection it acts through.
    pub connection: String,
    /// HTTP method of the vendor call.
    pub method: http::Method,
    /// Path appended to the provider's API base.
    pub path: RequestTemplate,
    /// Query parameters of the vendor call.
    pub query: Vec<(String, RequestTemplate)>,
    /// JSON body of the vendor call: strings in it are templates.
    pub body: Option<serde_json::Value>,
    /// Form body of the vendor call.
    pub form: Vec<(String, RequestTemplate)>,
    /// Parameters: the ones callers may send, and the ones fixed by config.
    pub params: BTreeMap<String, ParamSpec>,
    /// Spoken answer (a minijinja template, see [`crate::answer`]); `None` answers "OK".
    pub answer: Option<AnswerTemplate>,
    /// Hashes of the action's own keys (several during a rotation); keys scoped to several
    /// actions are in [`crate::config::Config::keys`].
    pub key_hashes: Vec<KeyHash>,
    /// Disarms or opens something: POST only, a lower default rate limit, and a PIN if one is set.
    pub sensitive: bool,
    /// The PIN callers must send (step-up), hashed.
    pub pin_hash: Option<PinHash>,
    /// Signed mode: the secret entry holding the `signing_key` callers sign requests with.
    pub signing_secret: Option<String>,
    /// Calls this action may take (burst and sustained), from every key together.
    pub rate_limit: RateLimit,
    /// Methods a caller may use: POST, and GET only if the action opts in.
    pub methods: Vec<http::Method>,
    /// The built-in action this one uses, if any.
    pub builtin: Option<String>,
    /// A step of the provider's quirk module that runs instead of the single request
    /// (answers that need more than one call).
    pub run: Option<String>,
    /// What the action does, in a line.
    pub summary: Option<String>,
    /// The parameters IFTTT-style `value1`, `value2`, `value3` fill, in that order.
    pub ifttt: Vec<String>,
}

impl Action {
    /// Parameters a caller may send (the others are fixed by config).
    pub fn caller_params(&self) -> impl Iterator<Item = (&String, &ParamSpec)> {
        self.params.iter().filter(|(_, p)| !p.fixed)
    }
}

/// An action as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    connection: String,
    builtin: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, serde_json::Value>,
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
    #[serde(default)]
    form: BTreeMap<String, String>,
    #[serde(default)]
    params: BTreeMap<String, ParamDecl>,
    answer: Option<String>,
    summary: Option<String>,
    key_hash: Option<OneOrMany>,
    methods: Option<Vec<String>>,
    sensitive: Option<bool>,
    pin_hash: Option<String>,
    signing_secret: Option<String>,
    rate_limit: Option<RateLimit>,
    ifttt: Option<Vec<String>>,
}

/// A value written as one string or a list of them (`key_hash = "..."` or, during a rotation,
/// `key_hash = ["new", "old"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The request an action makes, before checking: from config or from a built-in recipe.
struct Shape {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
    form: BTreeMap<String, String>,
    params: BTreeMap<String, ParamDecl>,
    /// Parameters whose value config must give under `with`.
    setup: BTreeSet<String>,
    answer: Option<String>,
    run: Option<String>,
    read_only: bool,
    sensitive: bool,
    summary: Option<String>,
}

/// A request written out in config.
fn written_shape(ra: &mut RawAction, field: &dyn Fn(&str) -> String) -> Result<Shape, FieldError> {
    let Some(path) = ra.path.take() else {
        return Err((
            field("path"),
            "required: the vendor path to call (or use `builtin = \"...\"`)".into(),
        ));
    };
    if !ra.with.is_empty() {
        return Err((
            field("with"),
            "`with` sets the values of a built-in action; for your own request use parameter defaults".into(),
        ));
    }
    Ok(Shape {
        method: ra.method.take().unwrap_or_else(|| "POST".into()),
        path,
        query: std::mem::take(&mut ra.query),
        body: ra.body.take(),
        form: std::mem::take(&mut ra.form),
        params: std::mem::take(&mut ra.params),
        setup: BTreeSet::new(),
        answer: ra.answer.take(),
        run: None,
        read_only: false,
        sensitive: false,
        summary: ra.summary.take(),
    })
}

/// A provider's built-in action.
fn builtin_shape(
    name: &str,
    ra: &mut RawAction,
    spec: &ProviderSpec,
    field: &dyn Fn(&str) -> String,
) -> Result<Shape, FieldError> {
    let recipes = crate::providers::recipes(spec.kind).map_err(|e| (field("builtin"), e))?;
    let Some(recipe) = ra.builtin.as_deref().and_then(|b| recipes.get(b)) else {
        let known: Vec<_> = recipes.keys().cloned().collect();
        return Err((
            field("builtin"),
            format!(
                "\"{}\" is not a built-in action of {} (it has: {})",
                ra.builtin.as_deref().unwrap_or_default(),
                spec.id,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let written = [
        ("method", ra.method.is_some()),
        ("path", ra.path.is_some()),
        ("query", !ra.query.is_empty()),
        ("body", ra.body.is_some()),
        ("form", !ra.form.is_empty()),
        ("params", !ra.params.is_empty()),
    ];
    if let Some((f, _)) = written.iter().find(|(_, set)| *set) {
        return Err((
            field(f),
            format!(
                "built-in action {name} defines its own request: remove `{f}` (or `builtin` to write the request yourself)"
            ),
        ));
    }
    let mut params = recipe.params.clone();
    params.extend(recipe.setup.clone());
    Ok(Shape {
        method: recipe.method.clone(),
        path: recipe.path.clone(),
        query: recipe.query.clone(),
        body: recipe.body.clone(),
        form: recipe.form.clone(),
        params,
        setup: recipe.setup.keys().cloned().collect(),
        answer: ra.answer.take().or_else(|| recipe.answer.clone()),
        run: recipe.run.clone(),
        read_only: recipe.read_only,
        sensitive: recipe.sensitive,
        summary: ra.summary.take().or_else(|| Some(recipe.summary.clone())),
    })
}

fn vendor_method(text: &str, field: String) -> Result<http::Method, FieldError> {
    Ok(match text.to_ascii_uppercase().as_str() {
        "GET" => http::Method::GET,
        "POST" => http::Method::POST,
        "PUT" => http::Method::PUT,
        "PATCH" => http::Method::PATCH,
        "DELETE" => http::Method::DELETE,
        other => {
            return Err((
                field,
                format!("\"{other}\" is not one of GET, POST, PUT, PATCH, DELETE"),
            ));
        }
    })
}

fn caller_methods(
    written: Option<Vec<String>>,
    read_only: bool,
    field: String,
) -> Result<Vec<http::Method>, FieldError> {
    // Reading actions answer GET too (a bookmark); anything that changes a home needs POST
    // unless config opts in, so a link preview or prefetch never acts.
    let written = written.unwrap_or_else(|| {
        if read_only {
            vec!["GET".into(), "POST".into()]
        } else {
            vec!["POST".into()]
        }
    });
    let mut methods = Vec::new();
    for m in &written {
        match m.to_ascii_uppercase().as_str() {
            "POST" => methods.push(http::Method::POST),
            "GET" => methods.push(http::Method::GET),
            other => {
                return Err((
                    field,
                    format!(
                        "\"{other}\": an action can be called only with POST, or GET if it opts in"
                    ),
                ));
            }
        }
    }
    if methods.is_empty() {
        return Err((field, "list at least one method (POST)".into()));
    }
    Ok(methods)
}

pub(super) fn build_action(
    name: &str,
    mut ra: RawAction,
    connections: &BTreeMap<String, Connection>,
    providers: &BTreeMap<String, ProviderSpec>,
) -> Result<Action, FieldError> {
    let field = |f: &str| format!("actions.{name}.{f}");
    let Some(conn) = connections.get(&ra.connection) else {
        let known: Vec<_> = connections.keys().cloned().collect();
        return Err((
            field("connection"),
            format!(
                "unknown connection \"{}\" (known: {})",
                ra.connection,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let key_hashes = ra
        .key_hash
        .take()
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
        .iter()
        .map(|h| h.parse::<KeyHash>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (field("key_hash"), e.to_string()))?;
    let pin_hash = ra
        .pin_hash
        .take()
        .map(|h| h.parse::<PinHash>())
        .transpose()
        .map_err(|e| (field("pin_hash"), e.to_string()))?;
    if let Some(secret) = &ra.signing_secret
        && !is_identifier(secret)
    {
        return Err((field("signing_secret"), "not a usable secret name".into()));
    }
    let shape = match (&ra.builtin, providers.get(&conn.provider)) {
        (Some(_), Some(spec)) => builtin_shape(name, &mut ra, spec, &field)?,
        (Some(_), None) => return Err((field("builtin"), "the connection has no provider".into())),
        (None, _) => written_shape(&mut ra, &field)?,
    };
    let method = vendor_method(&shape.method, field("method"))?;
    let methods = caller_methods(ra.methods.take(), shape.read_only, field("methods"))?;
    let sensitive = ra.sensitive.unwrap_or(shape.sensitive);
    if sensitive && methods.contains(&http::Method::GET) {
        return Err((
            field("methods"),
            "a sensitive action answers POST only: a link preview must never disarm an alarm"
                .into(),
        ));
    }
    let rate_limit = ra.rate_limit.unwrap_or(if sensitive {
        RateLimit::SENSITIVE
    } else {
        RateLimit::default()
    });
    rate_limit
        .validate()
        .map_err(|p| (field("rate_limit"), p))?;

    // Parameters, with the values config fixes under `with`.
    let mut params = BTreeMap::new();
    for (pname, raw) in shape.params {
        let pfield = format!("actions.{name}.params.{pname}");
        if !is_identifier(&pname) || ["key", "format", "pin"].contains(&pname.as_str()) {
            return Err((
                pfield,
                "not a usable parameter name (reserved or invalid)".into(),
            ));
        }
        let doc = raw.doc().map(str::to_string);
        let mut spec = raw.resolve(&pfield)?;
        if let Some(default) = &spec.default
            && let Err(problem) = crate::params::check_value(&spec, default)
        {
            return Err((format!("{pfield}.default"), problem));
        }
        if let Some(value) = ra.with.remove(&pname) {
            crate::params::check_value(&spec, &value)
                .map_err(|problem| (format!("actions.{name}.with.{pname}"), problem))?;
            spec.default = Some(value);
            spec.optional = false;
            spec.fixed = true;
        } else if shape.setup.contains(&pname) && spec.optional {
            // An optional setup value config left out stays out; callers cannot send it.
            spec.fixed = true;
        } else if shape.setup.contains(&pname) {
            return Err((
                format!("actions.{name}.with.{pname}"),
                format!(
                    "required by built-in action {}{}; `homehook discover {}` lists the ids",
                    ra.builtin.as_deref().unwrap_or_default(),
                    doc.map(|d| format!(" ({d})")).unwrap_or_default(),
                    conn.id
                ),
            ));
        }
        params.insert(pname, spec);
    }
    if let Some(extra) = ra.with.keys().next() {
        return Err((
            format!("actions.{name}.with.{extra}"),
            format!(
                "not a parameter of this action (it has: {})",
                params.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }

    let check_params = |t: &RequestTemplate, f: String| -> Result<(), FieldError> {
        for p in t.params() {
            if !params.contains_key(p) {
                return Err((
                    f,
                    format!("{{{p}}} is not a declared parameter (add params.{p})"),
                ));
            }
        }
        Ok(())
    };
    let template = |text: &str, f: String| -> Result<RequestTemplate, FieldError> {
        let t = RequestTemplate::parse(text).map_err(|p| (f.clone(), p))?;
        check_params(&t, f)?;
        Ok(t)
    };

    if !shape.path.starts_with('/')
        || shape.path.contains("..")
        || shape.path.contains('?')
        || shape.path.contains('#')
    {
        return Err((
            field("path"),
            "must start with '/' and hold no '..', '?' or '#' (put query parameters under `query`)"
                .into(),
        ));
    }
    let path = template(&shape.path, field("path"))?;
    if let Some(p) = path
        .params()
        .find(|p| params.get(*p).is_some_and(|s| s.optional))
    {
        return Err((
            field("path"),
            format!("{{{p}}} is optional, so it cannot be part of the path"),
        ));
    }
    let query = shape
        .query
        .iter()
        .map(|(k, v)| Ok((k.clone(), template(v, format!("actions.{name}.query.{k}"))?)))
        .collect::<Result<Vec<_>, FieldError>>()?;
    let form = shape
        .form
        .iter()
        .map(|(k, v)| Ok((k.clone(), template(v, format!("actions.{name}.form.{k}"))?)))
        .collect::<Result<Vec<_>, FieldError>>()?;
    if shape.body.is_some() && !form.is_empty() {
        return Err((
            field("form"),
            "an action has a JSON `body` or a `form`, not both".into(),
        ));
    }
    if let Some(body) = &shape.body {
        check_body_templates(body, &field("body"), &check_params)?;
    }
    let answer = shape
        .answer
        .as_deref()
        .map(|a| {
            AnswerTemplate::compile(a, params.keys().map(String::as_str))
                .map_err(|p| (field("answer"), p))
        })
        .transpose()?;
    let ifttt = ifttt_values(ra.ifttt.take(), &params, &field("ifttt"))?;

    Ok(Action {
        name: name.to_string(),
        connection: ra.connection,
        method,
        path,
        query,
        body: shape.body,
        form,
        params,
        answer,
        key_hashes,
        sensitive,
        pin_hash,
        signing_secret: ra.signing_secret,
        rate_limit,
        methods,
        builtin: ra.builtin,
        run: shape.run,
        summary: shape.summary,
        ifttt,
    })
}

/// Which parameters `value1`..`value3` fill: the `ifttt` list, or the only caller parameter.
fn ifttt_values(
    written: Option<Vec<String>>,
    params: &BTreeMap<String, ParamSpec>,
    field: &str,
) -> Result<Vec<String>, FieldError> {
    let callers: Vec<&String> = params
        .iter()
        .filter(|(_, p)| !p.fixed)
        .map(|(n, _)| n)
        .collect();
    let Some(list) = written else {
        return Ok(match callers.as_slice() {
            [only] => vec![(*only).clone()],
            _ => vec![],
        });
    };
    if list.len() > 3 {
        return Err((
            field.to_string(),
            "IFTTT sends three values at most (value1, value2, value3)".into(),
        ));
    }
    for (i, name) in list.iter().enumerate() {
        if !callers.contains(&name) {
            return Err((
                format!("{field}[{i}]"),
                format!(
                    "\"{name}\" is not a parameter callers may send (they may send: {})",
                    if callers.is_empty() {
                        "none".to_string()
                    } else {
                        callers
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
        if list[..i].contains(name) {
            return Err((
                format!("{field}[{i}]"),
                format!("\"{name}\" is listed twice"),
            ));
        }
    }
    Ok(list)
}

fn check_body_templates(
    value: &serde_json::Value,
    field: &str,
    check: &dyn Fn(&RequestTemplate, String) -> Result<(), FieldError>,
) -> Result<(), FieldError> {
    match value {
        serde_json::Value::String(s) => {
            let t = RequestTemplate::parse(s).map_err(|p| (field.to_string(), p))?;
            check(&t, field.to_string())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_body_templates(v, &format!("{field}[{i}]"), check)),
        serde_json::Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_body_templates(v, &format!("{field}.{k}"), check)),
        _ => Ok(()),
    }
}
