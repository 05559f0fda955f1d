//! `GET /status` (admin key): every connection's health and token expiry, every scheduled
//! action's next run and latest outcome. `GET /healthz`.

use axum::Json;

use super::error::ApiError;
use super::extract::{Admin, Current};
use crate::status::{StatusReport, report};

/// `GET /status`.
pub async fn status(Current(app): Current, _owner: Admin) -> Result<Json<StatusReport>, ApiError> {
    let report = report(&app.services).await?;
    Ok(Json(report))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
