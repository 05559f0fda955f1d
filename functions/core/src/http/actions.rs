//! `/a/{action}`: the secret URLs. Every call passes the gate described in [`crate::guard`], in
//! that order; the first check that fails answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::auth::{presented_key, split_query};
use super::error::ApiError;
use crate::action;
use crate::clock::UnixTime;
use crate::config::Action;
use crate::error::ErrorCode;
use crate::guard::idempotency::{self, Claimed, KeptAnswer};
use crate::guard::keyring::KeyEntry;
use crate::guard::limits::retry_secs;
use crate::guard::{ClientSource, action_limiter, key_limiter, pin, signature};
use crate::params;
use crate::secret::SecretString;

/// Largest request body an action accepts: parameters are small.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Which names the body's values go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// `/a/{action}`: parameters by name, and IFTTT's `value1`..`value3` for an action that
    /// does not declare parameters with those names.
    Named,
    /// IFTTT's Webhooks shape: `value1`..`value3` fill the action's parameters.
    Ifttt,
    /// IFTTT's JSON variant: parameters by name only.
    AsNamed,
}

/// What the URL of an action call says: the action, a key in the path (IFTTT's shape), and
/// how to read the values.
#[derive(Debug)]
pub struct ActionCall {
    name: String,
    path_key: Option<String>,
    values: Values,
}

impl ActionCall {
    /// From `/trigger/{event}/…/with/key/{key}`. A path that does not decode names no action
    /// and no key (answered like a missing key).
    pub fn from_path(path: Result<Path<(String, String)>, PathRejection>, values: Values) -> Self {
        let (name, path_key) = match path {
            Ok(Path((name, key))) => (name, Some(key)),
            Err(_) => (String::new(), None),
        };
        Self {
            name,
            path_key,
            values,
        }
    }
}

/// `/a/{action}`: runs an action for a caller holding a key that opens it.
#[allow(clippy::too_many_arguments)] // axum extractors, one per part of the request
pub async fn run_action(
    State(app): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    source: Option<Extension<ClientSource>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Result<Response, ApiError> {
    // A name that does not even decode is just one more unknown action (same 401 below).
    let call = ActionCall {
        name: name.map(|Path(n)| n).unwrap_or_default(),
        path_key: None,
        values: Values::Named,
    };
    serve(app, call, method, headers, raw_query, source, peer, body).await
}

/// The gate and the run, for every URL shape of an action call.
#[allow(clippy::too_many_arguments)] // the parts of the request, as the extractors gave them
pub(super) async fn serve(
    app: AppState,
    call: ActionCall,
    method: Method,
    headers: HeaderMap,
    raw_query: Option<String>,
    source: Option<Extension<ClientSource>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Result<Response, ApiError> {
    let name = call.name;
    let source = source
        .map(|Extension(s)| s.0)
        .or(peer.map(|Extension(ConnectInfo(addr))| addr.ip()));
    if let Some(ip) = source
        && let Err(wait) = app.guard.lockout.check(ip)
    {
        return Err(ApiError::source_locked(retry_secs(wait)));
    }

    let (query_key, format, query_params) = split_query(raw_query.as_deref());
    let key = call
        .path_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .or_else(|| presented_key(&headers, query_key.as_deref()))
        .ok_or_else(ApiError::missing_key)?;
    let now = app.services.clock.now();
    let admitted = app.services.config.keys.admit(key, &name, now);
    let (entry, action) = match (admitted, app.services.config.actions.get(&name)) {
        (Ok(entry), Some(action)) => (entry, action),
        (refused, _) => {
            let refusal = refused.err();
            // Only a configured action is named: an unknown "name" is the caller's text, and may
            // be a key pasted into the path.
            let shown = if app.services.config.actions.contains_key(&name) {
                name.as_str()
            } else {
                "(unknown)"
            };
            tracing::info!(
                action = shown,
                reason = refusal.as_ref().map_or("no such action", |r| r.reason()),
                key_id = refusal.as_ref().and_then(|r| r.key_id()).unwrap_or("-"),
                "refused a key"
            );
            if let Some(ip) = source
                && app.guard.lockout.wrong_key(ip)
            {
                tracing::warn!(%ip, "source locked out after repeated wrong keys");
            }
            return Err(ApiError::unauthorized());
        }
    };
    // HEAD and OPTIONS never run an action, nor does GET unless the action opts in: a link
    // preview or a prefetch must not disarm an alarm.
    if !action.methods.contains(&method) {
        let allow: Vec<_> = action.methods.iter().map(Method::as_str).collect();
        return Err(ApiError::method_not_allowed(&allow.join(", ")));
    }
    for limiter in [key_limiter(&entry.id), action_limiter(&action.name)] {
        if let Err(wait) = app.guard.limits.check(&limiter) {
            tracing::info!(action = %action.name, key_id = %entry.id, limiter, "rate limited");
            return Err(ApiError::rate_limited(retry_secs(wait)));
        }
    }
    tracing::info!(action = %action.name, key_id = %entry.id, "action called");

    let bytes = read_body(&headers, body).await?;
    let idempotency_key = idempotency_key(&headers)?;
    if let Some(secret) = &action.signing_secret {
        check_signature(
            &app,
            action,
            secret,
            &headers,
            &query_params,
            &bytes,
            idempotency_key.is_some(),
            now,
        )
        .await?;
    }
    let (mut provided, body_pin) = body_params(&headers, &bytes)?;
    if let Some(hash) = &action.pin_hash {
        let presented = header_text(&headers, pin::PIN_HEADER)
            .map(SecretString::new)
            .or(body_pin);
        pin::check(&*app.services.store, &action.name, hash, presented, now).await?;
    }
    for (k, v) in &query_params {
        provided
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    let ifttt_values = match call.values {
        Values::Ifttt => true,
        // An action may name its own parameters value1..value3; then they are just names.
        Values::Named => !params::IFTTT_VALUES
            .iter()
            .any(|v| action.params.contains_key(*v)),
        Values::AsNamed => false,
    };
    if ifttt_values {
        params::map_ifttt_values(&action.name, &action.ifttt, &mut provided)?;
    }

    // Claimed before the parameters are checked, so a key reused for other parameters is
    // told so even when those parameters are wrong.
    let claim = match idempotency_key {
        None => None,
        Some(k) => {
            let fingerprint = idempotency::fingerprint(method.as_str(), &provided);
            match idempotency::claim(
                &*app.services.store,
                &entry.id,
                &action.name,
                k,
                fingerprint,
                now,
            )
            .await?
            {
                Claimed::New(claim) => Some(claim),
                Claimed::Replay(answer) => return Ok(replayed(answer)),
                Claimed::InProgress => return Err(ApiError::idempotency_in_progress()),
                Claimed::Reused => return Err(ApiError::idempotency_key_reused()),
            }
        }
    };
    let params = match params::check(&action.params, provided, now) {
        Ok(params) => params,
        Err(e) => {
            let response = ApiError::from(e).into_response();
            return Ok(match claim {
                None => response,
                Some(claim) => keep_answer(&app, claim, response, entry, now).await,
            });
        }
    };

    let response = match action::run(&app.services, action, &params).await {
        Ok(outcome) => answer(&headers, format.as_deref(), action, outcome),
        Err(e) => ApiError::from(e).into_response(),
    };
    match claim {
        None => Ok(response),
        Some(claim) => Ok(keep_answer(&app, claim, response, entry, now).await),
    }
}

fn answer(
    headers: &HeaderMap,
    format: Option<&str>,
    action: &Action,
    outcome: action::ActionOutcome,
) -> Response {
    if wants_json(headers, format) {
        let body = serde_json::json!({
            "ok": true,
            "action": action.name,
            "answer": outcome.answer,
            "vendor_status": outcome.vendor_status,
            "data": outcome.data,
        });
        (StatusCode::OK, no_store(), axum::Json(body)).into_response()
    } else {
        (
            StatusCode::OK,
            no_store(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            outcome.answer,
        )
            .into_response()
    }
}

/// Keeps the answer of an idempotent call, or frees its key when the answer says "try again".
async fn keep_answer(
    app: &AppState,
    claim: idempotency::Claim,
    response: Response,
    entry: &KeyEntry,
    now: UnixTime,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let retry_later = matches!(
        parts.status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    );
    let kept = if retry_later {
        idempotency::release(&*app.services.store, claim, now).await
    } else {
        let answer = KeptAnswer {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain; charset=utf-8")
                .to_string(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        idempotency::finish(&*app.services.store, claim, answer, now).await
    };
    if let Err(e) = kept {
        // The action ran: answer it. A repeat may then act again, which is logged here.
        tracing::error!(key_id = %entry.id, error = %e, "could not keep the idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replayed(answer: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, no_store(), answer.body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        idempotency::REPLAYED_HEADER,
        HeaderValue::from_static("true"),
    );
    response
}

#[allow(clippy::too_many_arguments)]
async fn check_signature(
    app: &AppState,
    action: &Action,
    secret: &str,
    headers: &HeaderMap,
    query_params: &[(String, String)],
    body: &Bytes,
    idempotent: bool,
    now: UnixTime,
) -> Result<(), ApiError> {
    if !query_params.is_empty() {
        return Err(ApiError::coded(
            ErrorCode::UnsignedParameters,
            "A signed action takes its parameters in the body only: the signature covers the body, not the URL.",
        ));
    }
    let key = app.services.secrets.signing_key(secret).await?;
    let verified = signature::verify(
        key.expose().as_bytes(),
        header_text(headers, signature::TIMESTAMP_HEADER),
        header_text(headers, signature::SIGNATURE_HEADER),
        body,
        now,
    )
    .map_err(ApiError::from)?;
    // A signature is good for one call. A repeat that carries an Idempotency-Key is answered
    // from the kept answer instead, so it may pass here.
    if !idempotent {
        let seen = format!("sig#{}#{}", action.name, verified.digest);
        let until = now.plus_secs(2 * signature::WINDOW_SECS + 1);
        if app
            .services
            .store
            .insert_item(&seen, "1", until, now)
            .await?
            .is_some()
        {
            return Err(signature::SignatureRefusal::Replayed.into());
        }
    }
    Ok(())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(idempotency::HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_idempotency_key())?;
    idempotency::validate(text).map_err(|_| ApiError::invalid_idempotency_key())?;
    Ok(Some(text))
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

/// Longest a caller may take to send its body: a slow sender must not hold a connection (and an
/// idempotency claim) open.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::coded(
            ErrorCode::BodyTooLarge,
            format!("The body is over {MAX_BODY_BYTES} bytes."),
        )
    };
    // A declared length over the limit is refused at once, without waiting for the bytes.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::coded(
            ErrorCode::BodyTimeout,
            "The body took too long to arrive.",
        )),
    }
}

/// Parameters from the body (a JSON object or a form; empty is fine), and the PIN if the body
/// carries one (it is never a parameter).
fn body_params(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<(BTreeMap<String, Value>, Option<SecretString>), ApiError> {
    let mut params = parse_body(headers, bytes)?;
    let pin = match params.remove(pin::PIN_FIELD) {
        None => None,
        Some(Value::String(s)) => Some(SecretString::new(s)),
        Some(Value::Number(n)) => Some(SecretString::new(n.to_string())),
        Some(_) => {
            return Err(ApiError::coded(
                ErrorCode::InvalidPin,
                "\"pin\" must be text or a number.",
            ));
        }
    };
    Ok((params, pin))
}

fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<BTreeMap<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    if !(content_type.starts_with("application/json") || content_type.starts_with("text/plain")) {
        return Err(ApiError::coded(
            ErrorCode::UnsupportedMediaType,
            "Send parameters as a JSON object or a form.",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(_) => Err(ApiError::coded(
            ErrorCode::MalformedBody,
            "The body must be a JSON object of parameters, like {\"mode\": \"away\"}.",
        )),
        Err(e) => Err(ApiError::coded(
            ErrorCode::MalformedBody,
            format!(
                "The body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )),
    }
}
