//! Connecting an account: `GET /connect/{connection}` sends the owner to the vendor's consent
//! page; `GET /callback/{provider}` receives them back, consumes the single-use state, exchanges
//! the code and stores the tokens. Browsers get a small HTML page; other clients get JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{presented_key, require_admin, split_query};
use super::error::ApiError;
use super::pages;
use crate::catalog::Grant;
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::error::ErrorCode;
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

/// Where people and vendors reach this server for this request: `public_url`, or, where the
/// public URL follows the request (Lambda behind API Gateway), `https://{Host}` when the host is
/// a plain host name.
fn public_base(app: &crate::App, headers: &HeaderMap) -> String {
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
        Some(host) if app.services.config.server.public_url_from_host => format!("https://{host}"),
        _ => app.services.config.base_url(),
    }
}

/// The callback URL for this connect request: `{public base}/callback/{provider}`.
fn redirect_uri(app: &crate::App, headers: &HeaderMap, provider: &str) -> String {
    format!("{}/callback/{provider}", public_base(app, headers))
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
    let conn = app
        .services
        .config
        .connections
        .get(&connection)
        .ok_or_else(|| {
            ApiError::coded(
                ErrorCode::UnknownConnection,
                format!(
                    "No connection named \"{}\" in the config.",
                    truncate(&connection)
                ),
            )
        })?;
    if conn.grant == Grant::Password {
        // Nothing to consent to: the credentials are in the secret. Connect now.
        let record = app.services.keeper.fresh_token(conn).await?;
        return Ok(respond_ok(&app, &headers, conn, record.expires_at));
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
    let spec =
        app.services.config.provider_of(conn).ok_or_else(|| {
            ApiError::misconfigured(format!("unknown provider {}", conn.provider))
        })?;
    let creds = app
        .services
        .secrets
        .client_credentials(&conn.secret)
        .await?;
    let flow = OAuthFlow::new(spec, &creds, Some(redirect_uri), &app.services.http)
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
        .map_err(|e| ApiError::coded(ErrorCode::Internal, e.to_string()))?;
    let expires_at = app
        .services
        .clock
        .now()
        .plus_secs(app.services.config.server.state_ttl_secs);
    app.services
        .store
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
    let now = app.services.clock.now();
    Ok(app
        .services
        .store
        .get_item(&state_key(state), now)
        .await?
        .is_some())
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
        Ok((conn, expires_at)) => respond_ok(&app, &headers, conn, expires_at),
        Err((e, conn)) => {
            tracing::info!(provider = %truncate(&provider), error = e.code, "connect failed");
            if !wants_html(&headers) {
                return e.into_response();
            }
            let connect_url = format!(
                "{}/connect/{}",
                public_base(&app, &headers),
                conn.map_or("<connection>", |c| c.id.as_str())
            );
            let vendor = conn
                .and_then(|c| app.services.config.provider_of(c))
                .or_else(|| app.services.config.providers.get(&provider))
                .map(|spec| spec.display_name.as_str());
            pages::not_connected_page(&pages::NotConnected {
                error: &e,
                connect_url: &connect_url,
                provider: vendor,
                link_lifetime_secs: app.services.config.server.state_ttl_secs,
            })
        }
    }
}

/// The callback's work: the connection and its new token's expiry, or what went wrong and,
/// once the state named it, for which connection.
async fn finish<'a>(
    app: &'a AppState,
    provider: &str,
    query: Option<CallbackQuery>,
) -> Result<(&'a Connection, Option<UnixTime>), (ApiError, Option<&'a Connection>)> {
    let query = query.ok_or_else(|| {
        (
            ApiError::coded(
                ErrorCode::MalformedCallback,
                "The callback's query string could not be read.",
            ),
            None,
        )
    })?;
    let (conn, pending) = take_state(app, provider, &query)
        .await
        .map_err(|e| (e, None))?;
    let expires_at = exchange(app, conn, query, pending)
        .await
        .map_err(|e| (e, Some(conn)))?;
    Ok((conn, expires_at))
}

/// Consumes the callback's state: the connection it was issued for.
async fn take_state<'a>(
    app: &'a AppState,
    provider: &str,
    query: &CallbackQuery,
) -> Result<(&'a Connection, PendingConnect), ApiError> {
    let state = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::coded(
                ErrorCode::MissingState,
                "This link has no state: start again from the connect link.",
            )
        })?;
    let now = app.services.clock.now();
    let taken = app.services.store.take_item(&state_key(state), now).await?;
    let pending: PendingConnect = match taken {
        Taken::Value(v) => serde_json::from_str(&v).map_err(|_| invalid_state())?,
        Taken::Expired => {
            return Err(ApiError::coded(
                ErrorCode::ExpiredState,
                format!(
                    "This connect link expired (links last {} minutes). Start again from the connect link.",
                    app.services.config.server.state_ttl_secs / 60
                ),
            ));
        }
        Taken::Missing => return Err(invalid_state()),
    };
    if pending.provider != provider {
        return Err(invalid_state());
    }
    let conn = app
        .services
        .config
        .connections
        .get(&pending.connection)
        .ok_or_else(invalid_state)?;
    Ok((conn, pending))
}

/// The vendor's answer for a known connection: its error, or the code to exchange for tokens,
/// which are then stored.
async fn exchange(
    app: &AppState,
    conn: &Connection,
    query: CallbackQuery,
    pending: PendingConnect,
) -> Result<Option<UnixTime>, ApiError> {
    let spec = app
        .services
        .config
        .provider_of(conn)
        .ok_or_else(invalid_state)?;
    if let Some(error) = query.error.as_deref() {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        if code == "access_denied" {
            return Err(ApiError::coded(
                ErrorCode::AccessDenied,
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
        return Err(ApiError::coded(
            ErrorCode::VendorError,
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
            ApiError::coded(
                ErrorCode::MissingCode,
                "The vendor sent no authorization code. Start again from the connect link.",
            )
        })?;

    let creds = app
        .services
        .secrets
        .client_credentials(&conn.secret)
        .await?;
    let redirect = pending
        .redirect_uri
        .clone()
        .unwrap_or_else(|| app.services.config.callback_url(&conn.provider));
    let flow = OAuthFlow::new(spec, &creds, Some(&redirect), &app.services.http)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;
    let grant = flow.exchange_code(code, pending.pkce_verifier).await.map_err(|e| match &e {
        e if e.is_invalid_grant() => ApiError::coded(
            ErrorCode::InvalidCode,
            format!("{} refused the authorization code (expired or already used). Start again from the connect link.", spec.display_name),
        ),
        e if e.is_misconfiguration() => ApiError::misconfigured(format!(
                "{} refused homehook's client settings ({e}). Check client_id and client_secret in secret \"{}\", and that {redirect} is registered as the redirect URI.",
                spec.display_name, conn.secret
            ),
        ),
        TokenEndpointError::RateLimited { retry_after_secs } => ApiError::coded(
            ErrorCode::TokenEndpointBusy,
            e.to_string(),
        )
        .retry_after(*retry_after_secs),
        _ => ApiError::coded(ErrorCode::TokenEndpointFailed, e.to_string()),
    })?;
    let record = app.services.keeper.store_connected(conn, grant).await?;
    tracing::info!(connection = %conn.id, "connected");
    Ok(record.expires_at)
}

fn invalid_state() -> ApiError {
    ApiError::coded(
        ErrorCode::InvalidState,
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

/// The answer to a connection made: a page for a browser, JSON for anything else.
fn respond_ok(
    app: &AppState,
    headers: &HeaderMap,
    conn: &Connection,
    expires_at: Option<UnixTime>,
) -> Response {
    let provider = app
        .services
        .config
        .provider_of(conn)
        .map_or(conn.provider.as_str(), |spec| spec.display_name.as_str());
    if wants_html(headers) {
        pages::connected_page(&pages::Connected {
            connection: &conn.id,
            label: &conn.label,
            provider,
            expires_in_secs: expires_at.map(|t| app.services.clock.now().secs_until(t)),
            actions: app
                .services
                .config
                .actions
                .values()
                .filter(|a| a.connection == conn.id)
                .count(),
        })
    } else {
        axum::Json(serde_json::json!({
            "connected": conn.label,
            "provider": provider,
            "expires_at": expires_at.map(UnixTime::to_rfc3339),
        }))
        .into_response()
    }
}
