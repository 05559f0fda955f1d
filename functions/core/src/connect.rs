//! Connecting an account: the connect link (the vendor's authorize URL with a single-use
//! `state`, and PKCE where the vendor wants it), and the vendor's answer at the callback
//! (the state consumed, the code exchanged, the tokens stored). `GET /connect/{connection}`,
//! `GET /callback/{provider}` and `homehook connect` all go through here.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config::Connection;
use crate::error::{ErrorCode, Problem};
use crate::oauth::{OAuthFlow, TokenEndpointError};
use crate::services::Services;
use crate::store::{StoreError, Taken, item_key};

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
/// state for [`finish`] to consume. `redirect_uri` is where the vendor sends the owner back;
/// the code exchange repeats it. Shared by `GET /connect/{connection}` and `homehook connect`
/// (which writes into the same store the server reads).
pub async fn begin(
    services: &Services,
    conn: &Connection,
    redirect_uri: &str,
) -> Result<ConnectLink, Problem> {
    let spec = services
        .config
        .provider_of(conn)
        .ok_or_else(|| Problem::misconfigured(format!("unknown provider {}", conn.provider)))?;
    let creds = services.secrets.client_credentials(&conn.secret).await?;
    let flow = OAuthFlow::new(spec, &creds, Some(redirect_uri), &services.http)
        .map_err(|e| Problem::misconfigured(e.to_string()))?;
    let started = flow
        .start(&conn.scopes, spec.pkce.sent(), spec.scope_separator)
        .map_err(|e| Problem::misconfigured(e.to_string()))?;
    let pending = PendingConnect {
        connection: conn.id.clone(),
        provider: conn.provider.clone(),
        pkce_verifier: started.pkce_verifier,
        redirect_uri: Some(redirect_uri.to_string()),
    };
    let value = serde_json::to_string(&pending)
        .map_err(|e| Problem::new(ErrorCode::Internal, e.to_string()))?;
    let expires_at = services
        .clock
        .now()
        .plus_secs(services.config.server.state_ttl_secs);
    services
        .store
        .put_item(&item_key::oauth_state(&started.state), &value, expires_at)
        .await?;
    tracing::info!(connection = %conn.id, "connect started");
    Ok(ConnectLink {
        url: started.url.to_string(),
        state: started.state,
        expires_at,
    })
}

/// Whether the link with this `state` still waits for the owner (not used yet, not expired).
pub async fn link_pending(services: &Services, state: &str) -> Result<bool, StoreError> {
    let now = services.clock.now();
    Ok(services
        .store
        .get_item(&item_key::oauth_state(state), now)
        .await?
        .is_some())
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state the link carried.
    pub state: Option<String>,
    /// The vendor's error (`access_denied` when the owner declined).
    pub error: Option<String>,
    /// The vendor's words about it.
    pub error_description: Option<String>,
}

/// The callback's work for `provider`: the connection and its new token's expiry, or what went wrong and,
/// once the state named it, for which connection.
pub async fn finish<'a>(
    services: &'a Services,
    provider: &str,
    query: Option<CallbackQuery>,
) -> Result<(&'a Connection, Option<UnixTime>), (Problem, Option<&'a Connection>)> {
    let query = query.ok_or_else(|| {
        (
            Problem::new(
                ErrorCode::MalformedCallback,
                "The callback's query string could not be read.",
            ),
            None,
        )
    })?;
    let (conn, pending) = take_state(services, provider, &query)
        .await
        .map_err(|e| (e, None))?;
    let expires_at = exchange(services, conn, query, pending)
        .await
        .map_err(|e| (e, Some(conn)))?;
    Ok((conn, expires_at))
}

/// Consumes the callback's state: the connection it was issued for.
async fn take_state<'a>(
    services: &'a Services,
    provider: &str,
    query: &CallbackQuery,
) -> Result<(&'a Connection, PendingConnect), Problem> {
    let state = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Problem::new(
                ErrorCode::MissingState,
                "This link has no state: start again from the connect link.",
            )
        })?;
    let now = services.clock.now();
    let taken = services
        .store
        .take_item(&item_key::oauth_state(state), now)
        .await?;
    let pending: PendingConnect = match taken {
        Taken::Value(v) => serde_json::from_str(&v).map_err(|_| invalid_state())?,
        Taken::Expired => {
            return Err(Problem::new(
                ErrorCode::ExpiredState,
                format!(
                    "This connect link expired (links last {} minutes). Start again from the connect link.",
                    services.config.server.state_ttl_secs / 60
                ),
            ));
        }
        Taken::Missing => return Err(invalid_state()),
    };
    if pending.provider != provider {
        return Err(invalid_state());
    }
    let conn = services
        .config
        .connections
        .get(&pending.connection)
        .ok_or_else(invalid_state)?;
    Ok((conn, pending))
}

/// The vendor's answer for a known connection: its error, or the code to exchange for tokens,
/// which are then stored.
async fn exchange(
    services: &Services,
    conn: &Connection,
    query: CallbackQuery,
    pending: PendingConnect,
) -> Result<Option<UnixTime>, Problem> {
    let spec = services
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
            return Err(Problem::new(
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
        return Err(Problem::new(
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
            Problem::new(
                ErrorCode::MissingCode,
                "The vendor sent no authorization code. Start again from the connect link.",
            )
        })?;

    let creds = services.secrets.client_credentials(&conn.secret).await?;
    let redirect = pending
        .redirect_uri
        .clone()
        .unwrap_or_else(|| services.config.callback_url(&conn.provider));
    let flow = OAuthFlow::new(spec, &creds, Some(&redirect), &services.http)
        .map_err(|e| Problem::misconfigured(e.to_string()))?;
    let grant = flow.exchange_code(code, pending.pkce_verifier).await.map_err(|e| match &e {
        e if e.is_invalid_grant() => Problem::new(
            ErrorCode::InvalidCode,
            format!("{} refused the authorization code (expired or already used). Start again from the connect link.", spec.display_name),
        ),
        e if e.is_misconfiguration() => Problem::misconfigured(format!(
                "{} refused homehook's client settings ({e}). Check client_id and client_secret in secret \"{}\", and that {redirect} is registered as the redirect URI.",
                spec.display_name, conn.secret
            ),
        ),
        TokenEndpointError::RateLimited { retry_after_secs } => Problem::new(
            ErrorCode::TokenEndpointBusy,
            e.to_string(),
        )
        .retry_after(*retry_after_secs),
        _ => Problem::new(ErrorCode::TokenEndpointFailed, e.to_string()),
    })?;
    let record = services.keeper.store_connected(conn, grant).await?;
    tracing::info!(connection = %conn.id, "connected");
    Ok(record.expires_at)
}

fn invalid_state() -> Problem {
    Problem::new(
        ErrorCode::InvalidState,
        "This connect link was already used or was not issued by this server. Start again from the connect link.",
    )
}
