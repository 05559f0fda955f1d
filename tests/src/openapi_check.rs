//! Checks answers of homehook's HTTP surface against `docs/openapi.json`, so any test that
//! sends requests can also hold the document to what the server really does.
//!
//! - [`check_response`]: the status is documented for the operation, and a JSON body matches the
//!   documented schema (for an error: `error` in the operation's codes, which are in the
//!   `Error` schema's enum, and the required fields present).
//! - [`check_answer`]: the same with the answer's headers: the content type must be a
//!   documented one and required headers (`Retry-After`, `Allow`, `Location`) present.
//! - [`match_path`]: the path template a concrete path is served under.
//!
//! Requests that no operation covers follow the document's stated rules: a path that matches no
//! route must get 404 (`components.responses.NotFound`); a method the path does not serve gets
//! the path's `x-other-methods` answers if it has them (`/a/{action}`), else `HEAD` is answered
//! as `GET` on `/` and `/healthz`, else 405 (`components.responses.MethodNotAllowed`).
//!
//! The schema check understands the JSON Schema the document uses: `$ref` (with sibling
//! keywords), `type`, `const`, `enum`, `required`, `properties`, `additionalProperties`,
//! `items`, `minimum`, `allOf`, `anyOf`, `oneOf`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};

/// The HTTP methods an OpenAPI path item can hold, lowercase as in the document.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where the document is: `docs/openapi.json` at the workspace root.
pub fn document_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// Reads and parses the document; panics with the reason if it cannot.
pub fn load_document() -> Value {
    let path = document_path();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Every (path, METHOD) the document has an operation for, methods uppercase.
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((path.clone(), m.to_ascii_uppercase()));
            }
        }
    }
    ops
}

/// The `Error` schema's `error` enum: every stable error code.
pub fn error_codes(doc: &Value) -> Vec<String> {
    doc.pointer("/components/schemas/Error/properties/error/enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The documented path template that serves `path` (no query), as the router matches it: the
/// same number of segments, literals equal, and a `{param}` matching one non-empty segment.
/// A literal template wins over one with parameters.
pub fn match_path(doc: &Value, path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut found: Option<(usize, String)> = None;
    for template in doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut params = 0;
        let fits = parts.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') && t.ends_with('}') {
                params += 1;
                !s.is_empty()
            } else {
                t == s
            }
        });
        if fits && found.as_ref().is_none_or(|(p, _)| params < *p) {
            found = Some((params, template.clone()));
        }
    }
    found.map(|(_, t)| t)
}

/// One answer to check: status, headers (names in any case) and body.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body as received.
    pub body: Vec<u8>,
}

impl Answer {
    /// Reads a whole reqwest answer.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Self {
            status,
            headers,
            body,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `error` code of a JSON error body.
    pub fn error_code(&self) -> Option<String> {
        self.json()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Checks a status and body against the operation `method path_template` (template as in the
/// document, e.g. `/a/{action}`; one not in the document must be a 404). Without the answer's
/// `Content-Type`, a body that is a JSON object is held to the documented JSON schema; anything
/// else must have a documented non-JSON media type.
pub fn check_response(
    doc: &Value,
    path_template: &str,
    method: &str,
    status: u16,
    body: &[u8],
) -> Result<(), String> {
    check(doc, path_template, method, status, None, body)
}

/// [`check_response`] with the answer's headers: its `Content-Type` must be documented and
/// picks the schema, and every documented required header must be present (and equal a
/// documented `const`).
pub fn check_answer(
    doc: &Value,
    path_template: &str,
    method: &str,
    answer: &Answer,
) -> Result<(), String> {
    check(
        doc,
        path_template,
        method,
        answer.status,
        Some(&answer.headers),
        &answer.body,
    )
}

/// The documented response object for `status` of `method path_template`, `$ref`s resolved,
/// following the rules for undocumented paths and methods.
pub fn documented_response(
    doc: &Value,
    path_template: &str,
    method: &str,
    status: u16,
) -> Result<Value, String> {
    let responses = responses_for(doc, path_template, method)?;
    let code = status.to_string();
    let range = format!("{}XX", status / 100);
    let response = responses
        .get(&code)
        .or_else(|| responses.get(&range))
        .or_else(|| responses.get("default"))
        .ok_or_else(|| {
            let listed: Vec<&String> = responses
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            format!("status {status} is not documented (documented: {listed:?})")
        })?;
    resolve(doc, response).cloned()
}

fn responses_for(doc: &Value, path_template: &str, method: &str) -> Result<Value, String> {
    let Some(item) = doc["paths"].get(path_template) else {
        return Ok(json!({ "404": { "$ref": "#/components/responses/NotFound" } }));
    };
    let m = method.to_ascii_lowercase();
    if let Some(op) = item.get(&m) {
        return op
            .get("responses")
            .cloned()
            .ok_or_else(|| format!("{method} {path_template} has no responses"));
    }
    if let Some(other) = item.get("x-other-methods") {
        return other
            .get("responses")
            .cloned()
            .ok_or_else(|| format!("x-other-methods of {path_template} has no responses"));
    }
    // HEAD is answered as GET only where GET has no side effects (`/`, `/healthz`).
    if m == "head"
        && ["/", "/healthz"].contains(&path_template)
        && let Some(get) = item.get("get")
    {
        return get
            .get("responses")
            .cloned()
            .ok_or_else(|| format!("GET {path_template} has no responses"));
    }
    Ok(json!({ "405": { "$ref": "#/components/responses/MethodNotAllowed" } }))
}

fn check(
    doc: &Value,
    path_template: &str,
    method: &str,
    status: u16,
    headers: Option<&BTreeMap<String, String>>,
    body: &[u8],
) -> Result<(), String> {
    let at = |e: String| {
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        format!("{method} {path_template} -> {status}: {e} (body: {shown:?})")
    };
    let response = documented_response(doc, path_template, method, status).map_err(at)?;
    if let Some(headers) = headers {
        check_headers(doc, &response, headers).map_err(at)?;
    }
    check_body(doc, &response, method, headers, body).map_err(at)
}

fn check_headers(
    doc: &Value,
    response: &Value,
    headers: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        let header = resolve(doc, header)?;
        let value = headers.get(&name.to_ascii_lowercase());
        if header["required"] == true && value.is_none() {
            return Err(format!("the documented header {name} is missing"));
        }
        if let (Some(value), Some(want)) = (value, header.pointer("/schema/const"))
            && want.as_str() != Some(value.as_str())
        {
            return Err(format!("header {name} is {value:?}, documented as {want}"));
        }
    }
    Ok(())
}

fn check_body(
    doc: &Value,
    response: &Value,
    method: &str,
    headers: Option<&BTreeMap<String, String>>,
    body: &[u8],
) -> Result<(), String> {
    let content = response.get("content").and_then(Value::as_object);
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err("a body where the document says there is none".into())
        };
    };
    let has_text = content.keys().any(|k| k != "application/json");
    if method.eq_ignore_ascii_case("HEAD") {
        return Ok(());
    }
    let content_type = headers.and_then(|h| h.get("content-type"));
    if let Some(ct) = content_type {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(media) = content.get(&essence) else {
            let listed: Vec<&String> = content.keys().collect();
            return Err(format!(
                "content type {ct:?} is not documented (documented: {listed:?})"
            ));
        };
        if essence == "application/json" {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| format!("the body is not the documented JSON: {e}"))?;
            validate(doc, &media["schema"], &value, "body")?;
        }
        return Ok(());
    }
    if body.is_empty() {
        return if has_text {
            Ok(())
        } else {
            Err("no body where the document says JSON".into())
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => match content.get("application/json") {
            Some(media) => validate(doc, &media["schema"], &value, "body"),
            None => Err("a JSON object where the document says text".into()),
        },
        _ if has_text => Ok(()),
        _ => Err("the body is not the documented JSON object".into()),
    }
}

/// Follows a `$ref` (`#/...` inside the document) until the value is not one.
pub fn resolve<'a>(doc: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    let mut value = value;
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        value = lookup(doc, reference)?;
    }
    Err("a $ref loop".into())
}

/// The value a `#/...` reference points at.
pub fn lookup<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("only local references are used: {reference}"))?;
    doc.pointer(pointer)
        .ok_or_else(|| format!("{reference} points at nothing"))
}

/// Checks `value` against `schema` (the subset of JSON Schema the document uses).
pub fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        validate(doc, lookup(doc, reference)?, value, at)?;
    }
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            return Err(format!("{at} is {value}, not of type {allowed:?}"));
        }
    }
    if let Some(want) = schema.get("const")
        && want != value
    {
        return Err(format!("{at} is {value}, not {want}"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        return Err(format!("{at} is {value}, not one of {values:?}"));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && value.as_f64().is_some_and(|v| v < min)
    {
        return Err(format!("{at} is {value}, under the minimum {min}"));
    }
    if let Value::Object(members) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !members.contains_key(name) {
                return Err(format!("{at} lacks the required {name:?}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, member) in members {
            let here = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, member, &here)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        // Only where this schema object says so: a `$ref` sibling narrowing
                        // one property does not close the object.
                        return Err(format!("{here} is not a documented property"));
                    }
                    Some(s @ Value::Object(_)) => validate(doc, s, member, &here)?,
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, s, item, &format!("{at}[{i}]"))?;
        }
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        validate(doc, s, value, at)?;
    }
    for (keyword, need_one) in [("anyOf", false), ("oneOf", true)] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let passing = options
                .iter()
                .filter(|s| validate(doc, s, value, at).is_ok())
                .count();
            if passing == 0 || (need_one && passing > 1) {
                return Err(format!("{at} matches {passing} of the {keyword} schemas"));
            }
        }
    }
    Ok(())
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

/// Every `$ref` in the document, with where it is.
pub fn references(doc: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(members) => {
                for (k, v) in members {
                    if k == "$ref"
                        && let Some(r) = v.as_str()
                    {
                        out.push((at.to_string(), r.to_string()));
                    }
                    walk(v, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, "", &mut out);
    out
}
