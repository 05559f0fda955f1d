//! Test support for the core's unit tests: [`FakeVendor`], a scripted vendor on a loopback
//! port, and [`setup`], the [`Services`] of one connection (`conn`) to it over a
//! [`MemoryStore`], with a [`ManualClock`] and a healthy token record already stored.
//!
//! The vendor is real HTTP (axum on `127.0.0.1:0`): what is under test (the vendor client, an
//! action, a schedule) runs unchanged against it. Its server task is spawned on the test's
//! runtime and ends with it.
//!
//! This whole file is test code, mounted under `#[cfg(test)]` by `lib.rs` (and known as such to
//! `tests/architecture.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clock::{ManualClock, UnixTime};
use crate::config::Config;
use crate::oauth::TokenGrant;
use crate::secrets::{ClientCredentials, LocalSecrets};
use crate::sensitive::SecretString;
use crate::services::Services;
use crate::store::MemoryStore;

/// The time every test starts at: 2023-11-14T22:13:20Z.
pub(crate) const T0: UnixTime = UnixTime(1_700_000_000);

/// A key hash that config accepts (no test calls an action through its URL).
pub(crate) const KEY_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The access token stored for `conn` before the test starts.
pub(crate) const FIRST_ACCESS_TOKEN: &str = "at-initial";

/// The refresh token stored for `conn` before the test starts.
pub(crate) const FIRST_REFRESH_TOKEN: &str = "rt-initial";

/// Where the fake's token endpoint is.
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";

/// The answer `{"error": "invalid_token"}` with 401: the fake provider's expired-token signal.
pub(crate) fn expired_token_body() -> Value {
    json!({ "error": "invalid_token" })
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// An answer with `status` and the JSON `body`.
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// The same answer with one more header.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Received {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The `Authorization` header, if any.
    pub(crate) authorization: Option<String>,
    /// The body as text (JSON, or a form for the token endpoint).
    pub(crate) body: String,
}

#[derive(Debug, Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    received: Vec<Received>,
    tokens_issued: usize,
}

/// A vendor on loopback: answers each path with the replies queued for it, in order (200 `{}`
/// once they run out), serves a token endpoint at [`TOKEN_PATH`] issuing `at-<n>` and
/// `rt-<n>`, and records every request, the token endpoint's included.
#[derive(Debug, Clone)]
pub(crate) struct FakeVendor {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    script: Arc<Mutex<Script>>,
}

impl FakeVendor {
    /// Starts the fake on a free loopback port, on the current runtime.
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake vendor");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let fake = Self {
            base,
            script: Arc::default(),
        };
        let router = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        fake
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("the fake's script")
    }

    /// Queues `replies` for `path`, after any already queued.
    pub(crate) fn queue(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.script()
            .queued
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    /// Every request received on `path`, in order.
    pub(crate) fn requests_to(&self, path: &str) -> Vec<Received> {
        self.script()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests the token endpoint received.
    pub(crate) fn token_calls(&self) -> usize {
        self.requests_to(TOKEN_PATH).len()
    }
}

/// The fake's one handler: records the request, then answers from the script.
async fn answer(
    State(fake): State<FakeVendor>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: String,
) -> Response {
    let path = uri.path().to_string();
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut script = fake.script();
    script.received.push(Received {
        method: method.to_string(),
        path: path.clone(),
        authorization,
        body,
    });
    let reply = if path == TOKEN_PATH && method == http::Method::POST {
        script.tokens_issued += 1;
        let n = script.tokens_issued;
        Reply::json(
            200,
            json!({
                "access_token": format!("at-{n}"),
                "refresh_token": format!("rt-{n}"),
                "expires_in": 3600,
                "token_type": "Bearer",
            }),
        )
    } else {
        script
            .queued
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Reply::json(200, json!({})))
    };
    drop(script);
    let status = http::StatusCode::from_u16(reply.status).expect("a scripted status");
    let mut response = (status, axum::Json(reply.body)).into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a scripted header value"));
    }
    response
}

/// What a test works with: the services, the fake they call, and their clock.
#[derive(Debug)]
pub(crate) struct Setup {
    /// Services over a memory store, configured against [`Setup::vendor`].
    pub(crate) services: Services,
    /// The fake vendor.
    pub(crate) vendor: FakeVendor,
    /// The services' clock, standing at [`T0`].
    pub(crate) clock: ManualClock,
}

/// Starts a [`FakeVendor`] and builds [`Services`] on it: provider `fake` (defined in config,
/// so read as plain HTTP, with `401 {"error": "invalid_token"}` as its expired-token signal),
/// connection `conn` with client credentials in [`LocalSecrets`], and a token record for `conn`
/// stored through the token keeper ([`FIRST_ACCESS_TOKEN`], an hour of life). `more_toml` adds
/// actions and schedules; `{key_hash}` in it stands for [`KEY_HASH`].
pub(crate) async fn setup(more_toml: &str) -> Setup {
    let vendor = FakeVendor::start().await;
    let text = format!(
        r#"
        [providers.fake]
        authorize_url = "{base}/authorize"
        token_url = "{base}{TOKEN_PATH}"
        api_base = "{base}"
        expired_token = [{{ status = 401, pointer = "/error", equals = "invalid_token" }}]

        [connections.conn]
        provider = "fake"
        secret = "fake"
        {more}
        "#,
        base = vendor.base,
        more = more_toml.replace("{key_hash}", KEY_HASH),
    );
    let config = Config::parse(&text, "t.toml", None).unwrap_or_else(|e| panic!("{e}"));
    let secrets = LocalSecrets::from_entries(
        [(
            "fake".to_string(),
            ClientCredentials {
                client_id: "client".into(),
                client_secret: Some(SecretString::new("client-secret")),
                username: None,
                password: None,
            },
        )]
        .into(),
    );
    let clock = ManualClock::new(T0);
    let services = Services::new(
        config,
        Arc::new(MemoryStore::new()),
        Arc::new(secrets),
        Arc::new(clock.clone()),
    )
    .expect("services");
    let conn = &services.config.connections["conn"];
    services
        .keeper
        .store_connected(
            conn,
            TokenGrant {
                access_token: SecretString::new(FIRST_ACCESS_TOKEN),
                refresh_token: Some(SecretString::new(FIRST_REFRESH_TOKEN)),
                expires_in: Some(3600),
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .expect("store the first token record");
    Setup {
        services,
        vendor,
        clock,
    }
}
