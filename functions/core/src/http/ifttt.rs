//! IFTTT-style callers, unchanged: the Webhooks URL shape `/trigger/{event}/with/key/{key}`
//! (and its `/json/` variant), and the `{"value1", "value2", "value3"}` body IFTTT's "Make a
//! web request" sends. `{event}` is the action's name, `{key}` one of its keys; the call then
//! passes the same gate as `/a/{action}` (see [`super::actions`]).
//!
//! `value1`..`value3` fill the parameters the action's `ifttt = [...]` list names, in order,
//! or the action's only caller parameter. IFTTT sends every value, empty when unused, so an
//! empty value counts as not sent.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path};
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::actions::{ActionCall, serve};
use super::error::ApiError;
use super::extract::{CallQuery, CallSource, Current};
use crate::gate::BodyValues;
use crate::sensitive::SecretString;

/// The JSON variant's route, whose body members are the parameters by name.
pub const JSON_ROUTE: &str = "/trigger/{event}/json/with/key/{key}";

/// `/trigger/{event}/with/key/{key}`, where `value1`..`value3` fill the action's parameters,
/// and [`JSON_ROUTE`], where the body's members are the parameters as named.
#[allow(clippy::too_many_arguments)] // axum extractors, one per part of the request
pub async fn trigger(
    Current(app): Current,
    route: MatchedPath,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    query: CallQuery,
    source: CallSource,
    body: Body,
) -> Result<Response, ApiError> {
    let values = if route.as_str() == JSON_ROUTE {
        BodyValues::AsNamed
    } else {
        BodyValues::Ifttt
    };
    // A path that does not decode names no action and no key (answered like a missing key).
    let (name, path_key) = match path {
        Ok(Path((name, key))) => (name, Some(SecretString::new(key))),
        Err(_) => (String::new(), None),
    };
    let call = ActionCall {
        name,
        path_key,
        values,
    };
    serve(app, call, method, headers, query, source, body).await
}
