//! Connecting an account: `GET /connect/{connection}` sends the owner to the vendor's consent
//! page; `GET /callback/{provider}` receives them back, consumes the single-use state, exchanges
//! the code and stores the tokens. Browsers get a small HTML page; other clients get JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{presented_key, require_admin, split_query};
use super::error::ApiError;
use super::pages;
use crate::catalog::Grant;
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::oauth::{OAuthFlow, TokenEndpointError};
use crate::store::{StoreError, Taken};

/// What is kept under a `state` until the owner comes back.
#[derive(Debug, Serialize, Deserialize)]
struct PendingConnect {
    connection: String,
    provider: String,
    pkce_verifier: Option<String>,
    /// The redirect URI sent with the authorization request: the code exchange must send the
    /// same one.
    #[serde(default)]
    redirect_uri: Option<String>,
}

/// The callback URL for this connect request: `{public_url}/callback/{provider}`, or, where
/// the public URL follows the request (Lambda behind API Gateway), `https://{Host}/callback/…`
/// when the host is a plain host name.
fn redirect_uri(app: &crate::App, headers: &HeaderMap, provider: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        });
    match host {
        Some(host) if app.config.server.public_url_from_host => {
            format!("https://{host}/callback/{provider}")
        }
        _ => app.config.callback_url(provider),
    }
}

fn state_key(state: &str) -> String {
    format!("oauth_state:{state}")
}

/// `GET /connect/{connection}` (admin key): redirect to the provider's authorize URL.
pub async fn start(
    State(app): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (key, _, _) = split_query(raw.as_deref());
    require_admin(&app, presented_key(&headers, key.as_deref())).await?;
    let conn = app.config.connections.get(&connection).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_connection",
            format!(
                "No connection named \"{}\" in the config.",
                truncate(&connection)
            ),
        )
    })?;
    let spec = app
        .config
        .provider_of(conn)
        .ok_or_else(|| ApiError::misconfigured(format!("unknown provider {}", conn.provider)))?;
    if conn.grant == Grant::Password {
        // Nothing to consent to: the credentials are in the secret. Connect now.
        let record = app.keeper.fresh_token(conn).await?;
        return Ok(respond_ok(
            &headers,
            &conn.label,
            &spec.display_name,
            record.expires_at.map(|t| t.to_rfc3339()),
        ));
    }
    let redirect = redirect_uri(&app, &headers, &conn.provider);
    let link = begin(&app, conn, &redirect).await?;
    // 302, the status OAuth2 (RFC 6749 §4.1.1) and every vendor expect.
    Ok((StatusCode::FOUND, [(header::LOCATION, link.url)]).into_response())
}

/// A connect link that was just issued: the vendor's authorize URL, and the single-use
/// `state` it carries, kept in the store until the owner comes back or it expires.
#[derive(Debug, Clone)]
pub struct ConnectLink {
    /// The vendor's authorize URL to open in a browser.
    pub url: String,
    /// The `state` parameter of `url`.
    pub state: String,
    /// When the link stops working.
    pub expires_at: UnixTime,
}

/// Starts an authorization-code connect of `conn`: builds the vendor's authorize URL (with
/// PKCE where the provider wants it) and stores the single-use state and verifier under the
/// state for [`callback`] to consume. `redirect_uri` is where the vendor sends the owner back;
/// the code exchange repeats it. Shared by `GET /connect/{connection}` and `homehook connect`
/// (which writes into the same store the server reads).
pub async fn begin(
    app: &crate::App,
    conn: &Connection,
    redirect_uri: &str,
) -> Result<ConnectLink, ApiError> {
    let spec = app
        .config
        .provider_of(conn)
        .ok_or_else(|| ApiError::misconfigured(format!("unknown provider {}", conn.provider)))?;
    let creds = app.secrets.client_credentials(&conn.secret).await?;
    let flow = OAuthFlow::new(spec, &creds, Some(redirect_uri), &app.http)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;
    let started = flow
        .start(&conn.scopes, spec.pkce)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;
    let pending = PendingConnect {
        connection: conn.id.clone(),
        provider: conn.provider.clone(),
        pkce_verifier: started.pkce_verifier,
        redirect_uri: Some(redirect_uri.to_string()),
    };
    let value = serde_json::to_string(&pending)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let expires_at = app.clock.now().plus_secs(app.config.server.state_ttl_secs);
    app.store
        .put_item(&state_key(&started.state), &value, expires_at)
        .await?;
    tracing::info!(connection = %conn.id, "connect started");
    Ok(ConnectLink {
        url: started.url.to_string(),
        state: started.state,
        expires_at,
    })
}

/// Whether the link with this `state` still waits for the owner (not used yet, not expired).
pub async fn link_pending(app: &crate::App, state: &str) -> Result<bool, StoreError> {
    let now = app.clock.now();
    Ok(app.store.get_item(&state_key(state), now).await?.is_some())
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /callback/{provider}`: finish connecting.
pub async fn callback(
    State(app): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    match finish(&app, &provider, query.ok().map(|q| q.0)).await {
        Ok((label, provider_name, expires)) => {
            respond_ok(&headers, &label, &provider_name, expires)
        }
        Err(e) => {
            tracing::info!(provider = %truncate(&provider), error = e.code, "connect failed");
            if wants_html(&headers) {
                let page = pages::result_page(false, "Not connected", &e.message);
                (e.status, Html(page)).into_response()
            } else {
                e.into_response()
            }
        }
    }
}

async fn finish(
    app: &AppState,
    provider: &str,
    query: Option<CallbackQuery>,
) -> Result<(String, String, Option<String>), ApiError> {
    let query = query.ok_or_else(|| {
        ApiError::bad_request(
            "malformed_callback",
            "The callback's query string could not be read.",
        )
    })?;
    let state = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_state",
                "This link has no state: start again from the connect link.",
            )
        })?;
    let now = app.clock.now();
    let taken = app.store.take_item(&state_key(state), now).await?;
    let pending: PendingConnect = match taken {
        Taken::Value(v) => serde_json::from_str(&v).map_err(|_| invalid_state())?,
        Taken::Expired => {
            return Err(ApiError::bad_request(
                "expired_state",
                format!(
                    "This connect link expired (links last {} minutes). Start again from the connect link.",
                    app.config.server.state_ttl_secs / 60
                ),
            ));
        }
        Taken::Missing => return Err(invalid_state()),
    };
    if pending.provider != provider {
        return Err(invalid_state());
    }
    let conn = app
        .config
        .connections
        .get(&pending.connection)
        .ok_or_else(invalid_state)?;
    let spec = app.config.provider_of(conn).ok_or_else(invalid_state)?;

    if let Some(error) = query.error.as_deref() {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        if code == "access_denied" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                format!(
                    "Access was declined at {}. Nothing changed; to connect {}, start again and choose Allow.",
                    spec.display_name, conn.label
                ),
            ));
        }
        let description: String = query
            .error_description
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Err(ApiError::bad_request(
            "vendor_error",
            format!(
                "{} answered with an error: {code} {description}",
                spec.display_name
            ),
        ));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_code",
                "The vendor sent no authorization code. Start again from the connect link.",
            )
        })?;

    let creds = app.secrets.client_credentials(&conn.secret).await?;
    let redirect = pending
        .redirect_uri
        .clone()
        .unwrap_or_else(|| app.config.callback_url(&conn.provider));
    let flow = OAuthFlow::new(spec, &creds, Some(&redirect), &app.http)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;
    let grant = flow.exchange_code(code, pending.pkce_verifier).await.map_err(|e| match &e {
        e if e.is_invalid_grant() => ApiError::bad_request(
            "invalid_code",
            format!("{} refused the authorization code (expired or already used). Start again from the connect link.", spec.display_name),
        ),
        e if e.is_misconfiguration() => ApiError::misconfigured(format!(
                "{} refused homehook's client settings ({e}). Check client_id and client_secret in secret \"{}\", and that {redirect} is registered as the redirect URI.",
                spec.display_name, conn.secret
            ),
        ),
        TokenEndpointError::RateLimited { retry_after_secs } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vendor_busy",
            e.to_string(),
        )
        .retry_after(*retry_after_secs),
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "vendor_unavailable", e.to_string()),
    })?;
    let record = app.keeper.store_connected(conn, grant).await?;
    tracing::info!(connection = %conn.id, "connected");
    Ok((
        conn.label.clone(),
        spec.display_name.clone(),
        record.expires_at.map(|t| t.to_rfc3339()),
    ))
}

fn invalid_state() -> ApiError {
    ApiError::bad_request(
        "invalid_state",
        "This connect link was already used or was not issued by this server. Start again from the connect link.",
    )
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn respond_ok(
    headers: &HeaderMap,
    label: &str,
    provider: &str,
    expires_at: Option<String>,
) -> Response {
    if wants_html(headers) {
        let page = pages::result_page(
            true,
            &format!("Connected {label}"),
            &format!("homehook can now reach {provider} for {label}. You can close this page."),
        );
        Html(page).into_response()
    } else {
        axum::Json(serde_json::json!({
            "connected": label,
            "provider": provider,
            "expires_at": expires_at,
        }))
        .into_response()
    }
}
