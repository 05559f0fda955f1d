//! `GET /discover/{connection}` (admin key): the sites, homes, rooms, devices, flows... a
//! connection's actions can use, with their ids, asked from the vendor's API.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

use super::AppState;
use super::auth::{presented_key, require_admin, split_query};
use super::error::ApiError;
use crate::error::ErrorCode;
use crate::providers::discovery::Discovery;
use crate::vendor_client::VendorClient;

/// `GET /discover/{connection}`.
pub async fn discover(
    State(app): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Discovery>, ApiError> {
    let (key, _, _) = split_query(raw.as_deref());
    require_admin(&app, presented_key(&headers, key.as_deref())).await?;
    if !app.services.config.connections.contains_key(&connection) {
        return Err(ApiError::coded(
            ErrorCode::UnknownConnection,
            "No connection of that name in homehook.toml.",
        ));
    }
    let client = VendorClient::new(&app.services, &connection)?;
    Ok(Json(client.discover().await?))
}
