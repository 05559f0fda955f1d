//! `GET /discover/{connection}` (admin key): the sites, homes, rooms, devices, flows... a
//! connection's actions can use, with their ids, asked from the vendor's API.

use axum::Json;
use axum::extract::Path;

use super::error::ApiError;
use super::extract::{Admin, Current};
use crate::error::ErrorCode;
use crate::providers::discovery::Discovery;
use crate::vendor_client::VendorClient;

/// `GET /discover/{connection}`.
pub async fn discover(
    Current(app): Current,
    Path(connection): Path<String>,
    _owner: Admin,
) -> Result<Json<Discovery>, ApiError> {
    if !app.services.config.connections.contains_key(&connection) {
        return Err(ApiError::coded(
            ErrorCode::UnknownConnection,
            "No connection of that name in homehook.toml.",
        ));
    }
    let client = VendorClient::new(&app.services, &connection)?;
    Ok(Json(client.discover().await?))
}
