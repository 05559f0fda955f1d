//! Keys on requests: where a caller may put one, and the admin check.

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::app::{ADMIN_KEY_ENTRY, App};
use crate::keys::KeyHash;
use crate::secrets::SecretsError;

/// The key a caller presented: `Authorization: Bearer <key>`, else `?key=`.
pub fn presented_key<'a>(headers: &'a HeaderMap, query_key: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(query_key)
        .filter(|k| !k.is_empty())
}

/// Checks the admin key; the error says how to set one up when none is configured.
pub async fn require_admin(app: &App, presented: Option<&str>) -> Result<(), ApiError> {
    let from_secrets;
    let hash = match &app.services.config.server.admin_key_hash {
        Some(hash) => Some(hash),
        None if app.admin_key_from_secrets => {
            from_secrets = admin_key_in_secrets(app).await?;
            from_secrets.as_ref()
        }
        None => None,
    };
    let Some(hash) = hash else {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "admin_disabled",
            "No admin key is configured: run `homehook key new`, put the hash in homehook.toml as server.admin_key_hash, and restart.",
        ));
    };
    let presented = presented.ok_or_else(ApiError::missing_key)?;
    if hash.verify(presented) {
        Ok(())
    } else {
        tracing::info!("admin request with a wrong key");
        Err(ApiError::unauthorized())
    }
}

/// The admin key's hash from the secrets (cached there), if the entry exists.
async fn admin_key_in_secrets(app: &App) -> Result<Option<KeyHash>, ApiError> {
    let value = match app.services.secrets.entry(ADMIN_KEY_ENTRY).await {
        Ok(value) => value,
        Err(SecretsError::NoEntry { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    value
        .as_str()
        .and_then(|text| text.parse::<KeyHash>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::misconfigured(format!(
                "the secrets entry {ADMIN_KEY_ENTRY} is not a key hash (sha256:<64 hex digits>)"
            ))
        })
}

/// Splits a raw query string into `key`, `format` and the remaining parameters.
pub fn split_query(raw: Option<&str>) -> (Option<String>, Option<String>, Vec<(String, String)>) {
    let mut key = None;
    let mut format = None;
    let mut rest = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "key" => key = Some(v.into_owned()),
            "format" => format = Some(v.into_owned()),
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    (key, format, rest)
}
