//! Faithful fakes of the four vendor APIs, each on top of [`crate::fake_vendor`]'s OAuth2
//! server, reproducing what ../shared/providers.md lists: envelopes, error bodies and status
//! codes, expiry, rotation, rate limits. Each keeps the state an action changes (the alarm's
//! level, a light), so tests assert what a user would see at home.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use homehook_core::clock::ManualClock;
use serde_json::Value;

use crate::fake_vendor::{ApiCall, FakeSettings, FakeVendor, OAuthHandle};

pub mod homey;
pub mod myfox;
pub mod netatmo;
pub mod somfy;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Failures a test queues for the next API calls (a vendor outage).
#[derive(Debug, Default)]
pub struct Faults {
    queue: Mutex<VecDeque<u16>>,
}

impl Faults {
    /// The next `times` API calls answer `status`.
    pub fn fail_next(&self, status: u16, times: usize) {
        lock(&self.queue).extend(std::iter::repeat_n(status, times));
    }

    /// The status to fail this call with, if one is queued.
    pub(crate) fn take(&self) -> Option<u16> {
        lock(&self.queue).pop_front()
    }
}

/// An API request, read once: query, form and JSON parameters merged into `params`.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Bearer or `access_token` query token.
    pub token: Option<String>,
    /// Query and form parameters (without `access_token`).
    pub params: HashMap<String, String>,
    /// The JSON body, or null.
    pub json: Value,
    /// The raw body.
    pub body: String,
}

impl Incoming {
    /// Reads a request.
    pub async fn read(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        let token = crate::fake_vendor::OAuthHandle::token_of(&parts);
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let mut params: HashMap<String, String> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let is_form = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            params.extend(form_urlencoded::parse(&bytes).into_owned());
        }
        params.remove("access_token");
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            token,
            params,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// What tests see of it.
    pub fn call(&self) -> ApiCall {
        let mut query: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.sort();
        ApiCall {
            method: self.method.to_string(),
            path: self.path.clone(),
            query,
            body: self.body.clone(),
        }
    }

    /// A parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Starts the OAuth server with a vendor API: every path it does not serve goes to `api`,
/// which sees the OAuth side and the vendor's own state.
pub(crate) async fn serve<S, H, T>(
    clock: ManualClock,
    settings: FakeSettings,
    state: &Arc<S>,
    api: H,
) -> FakeVendor
where
    S: Send + Sync + 'static,
    H: axum::handler::Handler<T, (OAuthHandle, Arc<S>)>,
    T: 'static,
{
    let state = Arc::clone(state);
    FakeVendor::start_with(clock, settings, move |oauth| {
        Router::new().fallback(api).with_state((oauth, state))
    })
    .await
}
