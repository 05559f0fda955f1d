//! `/a/{action}` (and the IFTTT shapes in [`super::ifttt`]): the secret URLs. Every call passes
//! the gate ([`crate::gate`]); this module reads the request for it, runs what the gate cleared
//! and answers in the caller's format.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{CallQuery, CallSource, Current, presented_key};
use crate::action;
use crate::app::App;
use crate::clock::UnixTime;
use crate::config::Action;
use crate::error::ErrorCode;
use crate::gate::{self, Admitted, BodyValues, Cleared, Knock, Presented};
use crate::guard::idempotency::{self, KeptResponse};
use crate::guard::{pin, signature};
use crate::sensitive::SecretString;
use crate::store::ItemStore;

/// Largest request body an action accepts: parameters are small.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the URL of an action call says: the action, a key in the path (IFTTT's shape), and
/// how to read the values.
#[derive(Debug)]
pub struct ActionCall {
    /// The action's name (empty when the path did not decode: no action is named so).
    pub name: String,
    /// The key in the path, for IFTTT's shape.
    pub path_key: Option<SecretString>,
    /// Which names the body's values go by.
    pub values: BodyValues,
}

/// `/a/{action}`: runs an action for a caller holding a key that opens it.
pub async fn run_action(
    Current(app): Current,
    name: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    query: CallQuery,
    source: CallSource,
    body: Body,
) -> Result<Response, ApiError> {
    // A name that does not even decode is just one more unknown action (same 401 below).
    let call = ActionCall {
        name: name.map(|Path(n)| n).unwrap_or_default(),
        path_key: None,
        values: BodyValues::Named,
    };
    serve(app, call, method, headers, query, source, body).await
}

/// The gate and the run, for every URL shape of an action call.
pub(super) async fn serve(
    app: Arc<App>,
    call: ActionCall,
    method: Method,
    headers: HeaderMap,
    query: CallQuery,
    CallSource(source): CallSource,
    body: Body,
) -> Result<Response, ApiError> {
    let key = call
        .path_key
        .as_ref()
        .map(SecretString::expose)
        .filter(|k| !k.is_empty())
        .or_else(|| presented_key(&headers, query.key.as_ref().map(SecretString::expose)));
    let knock = Knock {
        action: &call.name,
        key,
        method: &method,
        source,
    };
    let admitted = gate::admit_action(&app.services, &app.guard, knock)?;
    let bytes = read_body(&headers, body).await?;
    let presented = Presented {
        body: &bytes,
        content_type: header_text(&headers, header::CONTENT_TYPE.as_str()),
        query: query.params,
        idempotency_key: headers.get(idempotency::HEADER).map(HeaderValue::as_bytes),
        signed_at: header_text(&headers, signature::TIMESTAMP_HEADER),
        signature: header_text(&headers, signature::SIGNATURE_HEADER),
        pin: header_text(&headers, pin::PIN_HEADER),
        values: call.values,
    };
    let (params, claim) =
        match gate::clear_action(&app.services, &app.guard, &admitted, &method, presented).await? {
            Cleared::Replay(answer) => return Ok(replayed(answer)),
            Cleared::Run { params, claim } => (params, claim),
        };
    // The Idempotency-Key's claim is renewed while the action runs, however long the vendor
    // takes, so a repeat meanwhile is told to wait instead of acting again.
    let holding = claim.as_ref().map(|c| {
        c.hold(
            Arc::clone(&app.services.store) as Arc<dyn ItemStore>,
            Arc::clone(&app.services.clock),
        )
    });
    let response = match params {
        Err(problem) => ApiError::from(problem).into_response(),
        Ok(params) => match action::run(&app.services, admitted.action, &params).await {
            Ok(outcome) => respond(&headers, query.format.as_deref(), admitted.action, outcome),
            Err(e) => ApiError::from(e).into_response(),
        },
    };
    if let Some(holding) = holding {
        holding.end().await;
    }
    Ok(match claim {
        None => response,
        Some(claim) => keep_answer(&app, claim, response, &admitted).await,
    })
}

/// The action's answer: JSON when asked for, the spoken text otherwise.
fn respond(
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
    app: &App,
    claim: idempotency::Claim,
    response: Response,
    admitted: &Admitted<'_>,
) -> Response {
    let now: UnixTime = admitted.now;
    let store = &*app.services.store;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let retry_later = matches!(
        parts.status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    );
    let kept = if retry_later {
        idempotency::release(store, claim, now).await
    } else {
        let answer = KeptResponse {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain; charset=utf-8")
                .to_string(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        idempotency::finish(store, claim, answer, now).await
    };
    if let Err(e) = kept {
        // The action ran: answer it. A repeat may then act again, which is logged here.
        tracing::error!(key_id = %admitted.key.id, error = %e, "could not keep the idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replayed(answer: KeptResponse) -> Response {
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

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
