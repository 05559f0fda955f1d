//! The HTTP surface, as axum routers over the current [`crate::app::App`]. The same routers
//! are served by `homehook serve` locally and by the Lambda functions.
//!
//! - [`oauth_router`]: `GET /connect/{connection}`, `GET /callback/{provider}`
//! - [`actions_router`]: `/a/{action}` (and IFTTT's `/trigger/{event}/with/key/{key}` shapes),
//!   `GET /status`, `GET /discover/{connection}`, `GET /healthz`
//! - [`router`]: both, plus the root page and JSON answers for unknown paths and methods.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::live::Live;

pub mod actions;
pub mod connect;
pub mod discover;
pub mod error;
pub mod extract;
pub mod ifttt;
pub mod pages;
pub mod status;

pub use error::ApiError;

/// Every route [`router`] registers, as (path pattern in axum syntax, methods). It must list every
/// route registered in [`router`] (and so in [`oauth_router`] and [`actions_router`]):
/// `tests/tests/openapi.rs` checks both `docs/openapi.json` and the live router against it.
/// `/a/{action}` and the `/trigger/…` shapes take any method; `GET` works only for actions that
/// opt in, and every other method is refused with 405 without acting.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/healthz", &["GET"]),
    ("/status", &["GET"]),
    ("/discover/{connection}", &["GET"]),
    ("/connect/{connection}", &["GET"]),
    ("/callback/{provider}", &["GET"]),
    ("/a/{action}", &["POST", "GET"]),
    ("/trigger/{event}/with/key/{key}", &["POST", "GET"]),
    ("/trigger/{event}/json/with/key/{key}", &["POST", "GET"]),
];

/// Shared state of every handler: the process's [`Live`] app (handlers take the current
/// [`crate::app::App`] with the [`extract::Current`] extractor).
pub type AppState = Arc<Live>;

/// Connect and callback routes (the `oauth-callback` function).
pub fn oauth_router(state: AppState) -> Router {
    with_json_fallbacks(oauth_routes(state))
}

/// Action, status and health routes (the `actions` function).
pub fn actions_router(state: AppState) -> Router {
    with_json_fallbacks(actions_routes(state))
}

/// Everything, for one local process.
pub fn router(state: AppState) -> Router {
    let root = Router::new()
        .route("/", get(pages::root))
        .with_state(Arc::clone(&state));
    with_json_fallbacks(
        root.merge(oauth_routes(Arc::clone(&state)))
            .merge(actions_routes(state)),
    )
}

fn oauth_routes(app: AppState) -> Router {
    Router::new()
        .route("/connect/{connection}", get(connect::start))
        .route("/callback/{provider}", get(connect::callback))
        .with_state(app)
}

fn actions_routes(app: AppState) -> Router {
    Router::new()
        .route("/a/{action}", axum::routing::any(actions::run_action))
        .route(
            "/trigger/{event}/with/key/{key}",
            axum::routing::any(ifttt::trigger),
        )
        .route(ifttt::JSON_ROUTE, axum::routing::any(ifttt::trigger))
        .route("/status", get(status::status))
        .route("/discover/{connection}", get(discover::discover))
        .route("/healthz", get(status::healthz))
        .with_state(app)
}

/// JSON answers for unknown paths and methods, and the request log.
fn with_json_fallbacks(router: Router) -> Router {
    router
        .fallback(fallback_not_found)
        .method_not_allowed_fallback(fallback_method_not_allowed)
        .layer(middleware::map_response(json_rejections))
        .layer(middleware::from_fn(refuse_head))
        .layer(middleware::from_fn(log_request))
}

/// axum answers `HEAD` on every GET route by running its handler. Only `/` and `/healthz` are
/// free of side effects: anywhere else (a connect link stores a state, discover calls the
/// vendor) `HEAD` runs nothing. `/a/{action}` and `/trigger/…` refuse it themselves, with the
/// action's `Allow`.
async fn refuse_head(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if request.method() == axum::http::Method::HEAD
        && !matches!(path, "/" | "/healthz")
        && !path.starts_with("/a/")
        && !path.starts_with("/trigger/")
    {
        return ApiError::method_not_allowed("GET").into_response();
    }
    next.run(request).await
}

/// axum's own extractor rejections (an undecodable path segment, a query that is not a form)
/// are plain text; every error homehook answers is JSON with a stable code, so they are turned
/// into one here.
async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() && plain) {
        return response;
    }
    let (code, message) = match status {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "The body is too large."),
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "Send a JSON object or a form.")
        }
        _ => (
            "bad_request",
            "The request cannot be read: check the URL's encoding and the parameters.",
        ),
    };
    let mut error = ApiError::new(status, code, message);
    if status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        error.code = "method_not_allowed";
    }
    error.into_response()
}

async fn fallback_not_found() -> ApiError {
    ApiError::not_found()
}

async fn fallback_method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("GET")
}

/// One log line per request: method, route pattern (never the raw URI, which may hold a key),
/// status and time taken.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".into());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}
