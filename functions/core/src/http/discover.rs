//! `GET /discover/{connection}` (admin key): the sites, homes, rooms, devices, flows... a
//! connection's actions can use, with their ids, asked from the vendor's API.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

use super::AppState;
use super::auth::{presented_key, require_admin, split_query};
use super::error::ApiError;
use crate::api::ApiClient;
use crate::error::ErrorCode;
use crate::providers::{self, Discovery};

/// `GET /discover/{connection}`.
pub async fn discover(
    State(app): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Discovery>, ApiError> {
    let (key, _, _) = split_query(raw.as_deref());
    require_admin(&app, presented_key(&headers, key.as_deref())).await?;
    if !app.config.connections.contains_key(&connection) {
        return Err(ApiError::coded(
            ErrorCode::UnknownConnection,
            "No connection of that name in homehook.toml.",
        ));
    }
    let client = ApiClient::new(&app, &connection)?;
    Ok(Json(providers::discover(&client).await?))
}
