//! Connecting an account: `GET /connect/{connection}` sends the owner to the vendor's consent
//! page; `GET /callback/{provider}` receives them back, consumes the single-use state, exchanges
//! the code and stores the tokens. Browsers get a small HTML page; other clients get JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{Admin, Current};
use super::pages;
use crate::app::App;
use crate::catalog::Grant;
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::connect::{CallbackQuery, begin, finish};
use crate::error::ErrorCode;
use crate::sensitive::Escaped;

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

/// `GET /connect/{connection}` (admin key): redirect to the provider's authorize URL.
pub async fn start(
    Current(app): Current,
    Path(connection): Path<String>,
    _owner: Admin,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
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
    let link = begin(&app.services, conn, &redirect).await?;
    // 302, the status OAuth2 (RFC 6749 §4.1.1) and every vendor expect.
    Ok((StatusCode::FOUND, [(header::LOCATION, link.url)]).into_response())
}

/// `GET /callback/{provider}`: finish connecting.
pub async fn callback(
    Current(app): Current,
    Path(provider): Path<String>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    match finish(&app.services, &provider, query.ok().map(|q| q.0)).await {
        Ok((conn, expires_at)) => respond_ok(&app, &headers, conn, expires_at),
        Err((e, conn)) => {
            // The provider segment is the caller's text: escaped, so it cannot forge a line.
            tracing::info!(
                provider = %Escaped(truncate(&provider)),
                error = %e.code,
                "connect failed"
            );
            let e = ApiError::from(e);
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
                command: &app.services.config.server.command,
            })
        }
    }
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
    app: &App,
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
            command: &app.services.config.server.command,
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
