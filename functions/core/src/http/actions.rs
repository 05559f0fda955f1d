//! `/a/{action}`: the secret URLs.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::auth::{presented_key, split_query, verify_action_key};
use super::error::ApiError;
use crate::action;
use crate::params;

/// Largest request body an action accepts: parameters are small.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Runs an action for a caller holding its key.
pub async fn run_action(
    State(app): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let (query_key, format, query_params) = split_query(raw_query.as_deref());
    let key = presented_key(&headers, query_key.as_deref()).ok_or_else(ApiError::missing_key)?;
    let action = app.config.actions.get(&name);
    if !verify_action_key(action.map(|a| &a.key_hash), key) {
        return Err(ApiError::unauthorized());
    }
    let Some(action) = action else {
        return Err(ApiError::unauthorized());
    };
    // HEAD and OPTIONS never run an action, nor does GET unless the action opts in: a link
    // preview or a prefetch must not disarm an alarm.
    if !action.methods.contains(&method) {
        let allow: Vec<_> = action.methods.iter().map(Method::as_str).collect();
        return Err(ApiError::method_not_allowed(&allow.join(", ")));
    }
    tracing::info!(action = %action.name, key_id = %action.key_hash.key_id(), "action called");

    let mut provided: BTreeMap<String, Value> = query_params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    provided.extend(read_body_params(&headers, body).await?);
    let params = params::check(action, provided, app.clock.now())?;
    let outcome = action::run(&app, action, &params).await?;

    if wants_json(&headers, format.as_deref()) {
        let body = serde_json::json!({
            "ok": true,
            "action": action.name,
            "answer": outcome.answer,
            "vendor_status": outcome.vendor_status,
            "data": outcome.data,
        });
        Ok((StatusCode::OK, no_store(), axum::Json(body)).into_response())
    } else {
        Ok((
            StatusCode::OK,
            no_store(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            outcome.answer,
        )
            .into_response())
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// JSON when asked by `?format=json` or an `Accept` that prefers JSON; text otherwise (a
/// phone shortcut speaks text).
fn wants_json(headers: &HeaderMap, format: Option<&str>) -> bool {
    match format {
        Some(f) => f.eq_ignore_ascii_case("json"),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.starts_with("text/")),
    }
}

/// Parameters from the body: a JSON object or a form; empty is fine.
async fn read_body_params(
    headers: &HeaderMap,
    body: Body,
) -> Result<BTreeMap<String, Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("The body is over {MAX_BODY_BYTES} bytes."),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    if !(content_type.starts_with("application/json") || content_type.starts_with("text/plain")) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send parameters as a JSON object or a form.",
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(_) => Err(ApiError::bad_request(
            "malformed_body",
            "The body must be a JSON object of parameters, like {\"mode\": \"away\"}.",
        )),
        Err(e) => Err(ApiError::bad_request(
            "malformed_body",
            format!(
                "The body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )),
    }
}
