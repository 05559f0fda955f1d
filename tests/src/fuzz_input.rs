//! The entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the normal
//! test that replays their corpora (`tests/tests/fuzz_corpus.rs`), so a crash found by fuzzing
//! reproduces in `cargo test` once its input is in the corpus.
//!
//! - [`config_text`]: any bytes as `homehook.toml` ([`Config::parse`], then what start-up builds
//!   from a valid config). Errors are fine; a panic is a bug.
//! - [`request`]: any bytes as one HTTP request to homehook's whole router ([`fuzz_app`]). The
//!   answer must not be a 500 and nothing may panic: [`acceptable`] says which statuses are
//!   fine (everything below 500, and the 502 and 503 of a vendor or store that cannot be had).
//!
//! # The request format
//!
//! ```text
//! POST /a/heating?format=json HTTP/1.1      <- method, target; the rest of the line is ignored
//! Authorization: Bearer hh_fuzz_action_key  <- headers, one a line, until an empty line
//! Content-Type: application/json
//!
//! {"mode": "away"}                          <- the body: everything after the empty line
//! ```
//!
//! Lines end with `\n` or `\r\n`. The decoder never refuses: an unusable method becomes `POST`,
//! bytes a URI cannot hold are percent-encoded (a target that still does not parse becomes `/`),
//! unusable header lines are dropped. Two header lines are instructions to the decoder, not
//! headers:
//!
//! - `X-Fuzz-Sign: <seconds>` signs the body (and the `Idempotency-Key`, if the request has
//!   one) with [`SIGNING_KEY`] at [`NOW`] + seconds (0 is a fresh signature, 400 a stale one)
//!   and sends `X-Homehook-Timestamp` and
//!   `X-Homehook-Signature`, so the fuzzer gets past signed mode without computing an HMAC;
//! - `X-Fuzz-Peer: <ip>` sets the request's [`ClientSource`], so wrong keys count towards that
//!   address's lockout.
//!
//! # The app
//!
//! [`fuzz_app`] is homehook on a memory store at a fixed time ([`NOW`]), with fixed keys so
//! corpus files can hold valid ones ([`ACTION_KEY`], [`PHONE_KEY`], [`ADMIN_KEY`], ...: test
//! secrets that open nothing anywhere else). Its vendor is `http://127.0.0.1:9`, where nothing
//! listens: every vendor call fails fast, which must answer 502/503. The `home` connection
//! (Netatmo) has a stored token, so actions reach the vendor; `alarm` (Somfy Protect, password
//! grant) has none, so its actions try the token endpoint first.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use homehook_core::App;
use homehook_core::clock::{ManualClock, UnixTime};
use homehook_core::config::Config;
use homehook_core::guard::pin::PinHash;
use homehook_core::guard::{ClientSource, action_limiter, key_limiter, signature};
use homehook_core::keys::KeyHash;
use homehook_core::live::Live;
use homehook_core::secrets::{ClientCredentials, LocalSecrets};
use homehook_core::sensitive::SecretString;
use homehook_core::services::Services;
use homehook_core::store::{MemoryStore, TokenStore};
use homehook_core::token::TokenRecord;
use tower::ServiceExt;

/// The app's clock, which never moves: 2023-11-14T22:13:20Z (the harness's `T0`).
pub const NOW: UnixTime = crate::harness::T0;
/// Where the vendor would be: nothing listens on the discard port.
pub const VENDOR: &str = "http://127.0.0.1:9";

/// Opens every action (each action's own `key_hash`). Test-only.
pub const ACTION_KEY: &str = "hh_fuzz_action_key_test_only";
/// The previous key of `heating` (`key_hash = [new, old]`, a rotation). Test-only.
pub const OLD_ACTION_KEY: &str = "hh_fuzz_old_action_key_test_only";
/// `[keys.phone]`: opens `heating` and `temperature` only. Test-only.
pub const PHONE_KEY: &str = "hh_fuzz_phone_key_test_only";
/// `[keys.everything]`: `actions = ["*"]`. Test-only.
pub const WILDCARD_KEY: &str = "hh_fuzz_wildcard_key_test_only";
/// `[keys.old_phone]`: expired before [`NOW`]. Test-only.
pub const EXPIRED_KEY: &str = "hh_fuzz_expired_key_test_only";
/// `[keys.lost]`: revoked. Test-only.
pub const REVOKED_KEY: &str = "hh_fuzz_revoked_key_test_only";
/// `server.admin_key_hash`: `/status`, `/discover`, `/connect`. Test-only.
pub const ADMIN_KEY: &str = "hh_fuzz_admin_key_test_only";
/// The PIN of `disarm` and `alarm_off`.
pub const PIN: &str = "482193";
/// The `signing_key` of the `signer` secret entry, which signs `signed`'s calls. Test-only.
pub const SIGNING_KEY: &str = "fuzz-signing-key-test-only";

/// Decoder instruction: sign the body at [`NOW`] + this many seconds.
pub const SIGN_INSTRUCTION: &str = "x-fuzz-sign";
/// Decoder instruction: the request comes from this address.
pub const PEER_INSTRUCTION: &str = "x-fuzz-peer";

/// Headers beyond this many are dropped (a `HeaderMap` has a hard limit).
const MAX_HEADERS: usize = 256;
/// Longest answer body read back.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Whether a status may answer a fuzzed request: anything below 500, and 502/503 (the vendor or
/// the store cannot be had). A 500 (or 501, 504, ...) means homehook failed in a way it did not
/// foresee.
pub fn acceptable(status: u16) -> bool {
    status < 500 || status == 502 || status == 503
}

/// Parses `data` as `homehook.toml` (invalid UTF-8 is replaced, not refused) and, when it is a
/// valid config, builds what start-up builds from it (the gate's limiters, the URLs). Returns
/// whether the config is valid. Must never panic.
pub fn config_text(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, "fuzz.toml", Some(Path::new("/fuzz/homehook.toml"))) {
        Ok(config) => {
            let guard = homehook_core::app::guard_of(&config);
            for entry in config.keys.entries() {
                let _ = guard.limits.check(&key_limiter(&entry.id));
            }
            for action in config.actions.values() {
                let _ = guard.limits.check(&action_limiter(&action.name));
                let _ = config.keys.opens(&action.name);
            }
            for connection in config.connections.values() {
                let _ = config.reconnect_url(connection);
                let _ = config.provider_of(connection);
            }
            for provider in config.providers.keys() {
                let _ = config.callback_url(provider);
            }
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

/// What the router answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The body (up to 1 MiB).
    pub body: Vec<u8>,
    /// The body could be read to its end.
    pub body_complete: bool,
}

impl Answer {
    /// The invariant of the request target: an [`acceptable`] status and a readable body.
    pub fn is_acceptable(&self) -> bool {
        acceptable(self.status) && self.body_complete
    }
}

/// Decodes `data` into a request (see the module doc), sends it through `router` and returns
/// the answer. The decoder never panics; the router must not either.
pub async fn request(router: &Router, data: &[u8]) -> Answer {
    let response = match router.clone().oneshot(decode(data)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let (body, body_complete) =
        match axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
            Ok(bytes) => (bytes.to_vec(), true),
            Err(_) => (Vec::new(), false),
        };
    Answer {
        status,
        body,
        body_complete,
    }
}

/// The request `data` describes.
pub fn decode(data: &[u8]) -> Request<Body> {
    let (head, body) = split_head(data);
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let method = words
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::POST);
    let uri = target(words.next().unwrap_or(b"/"));

    let mut headers = HeaderMap::new();
    let mut sign_at: Option<i64> = None;
    let mut peer: Option<IpAddr> = None;
    for line in lines.take(MAX_HEADERS) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (trim(&line[..colon]), trim(&line[colon + 1..]));
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        let text = std::str::from_utf8(value).unwrap_or_default();
        if name == SIGN_INSTRUCTION {
            sign_at = Some(NOW.0.saturating_add(text.parse::<i64>().unwrap_or(0)));
            continue;
        }
        if name == PEER_INSTRUCTION {
            peer = text.parse().ok();
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let _ = headers.try_append(name, value);
        }
    }
    if let Some(at) = sign_at {
        // The Idempotency-Key is part of the signed text when the request carries one.
        let idempotency_key = headers
            .get(homehook_core::guard::idempotency::HEADER)
            .and_then(|v| v.to_str().ok());
        let signature = signature::sign_request(SIGNING_KEY.as_bytes(), at, idempotency_key, body);
        for (name, value) in [
            (signature::TIMESTAMP_HEADER, at.to_string()),
            (signature::SIGNATURE_HEADER, signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                let _ = headers.try_insert(HeaderName::from_static(name), value);
            }
        }
    }

    let mut request = Request::new(Body::from(body.to_vec()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    if let Some(ip) = peer {
        request.extensions_mut().insert(ClientSource(ip));
    }
    request
}

/// The head (request line and headers) and the body: split at the first empty line.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    let mut start = 0;
    while start <= data.len() {
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| start + i);
        if start > 0 && trim_cr(&data[start..end]).is_empty() {
            let head = &data[..start.saturating_sub(1)];
            let body = data.get(end + 1..).unwrap_or_default();
            return (head, body);
        }
        start = end + 1;
    }
    (data, &[])
}

/// A request target as a URI with a path: as written if it parses, else with the bytes a URI
/// cannot hold percent-encoded, else `/`.
fn target(raw: &[u8]) -> Uri {
    if let Ok(uri) = Uri::try_from(raw)
        && uri.path().starts_with('/')
    {
        return uri;
    }
    let mut text = String::with_capacity(raw.len() + 1);
    if raw.first() != Some(&b'/') {
        text.push('/');
    }
    for &b in raw {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            text.push(char::from(b));
        } else {
            text.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::try_from(text).unwrap_or_else(|_| Uri::from_static("/"))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The config of [`fuzz_app`]. Its PIN hash is made once per process (Argon2id is slow on
/// purpose).
pub fn fuzz_config() -> String {
    static PIN_HASH: OnceLock<String> = OnceLock::new();
    let pin_hash = PIN_HASH.get_or_init(|| {
        PinHash::of(PIN)
            .map(|h| h.to_string())
            .unwrap_or_else(|_| panic!("hash the fuzz PIN"))
    });
    let h = |key: &str| KeyHash::of(key).to_string();
    format!(
        r#"
[server]
public_url = "http://127.0.0.1:8080"
admin_key_hash = "{admin}"
vendor_timeout_secs = 2

[providers.netatmo]
authorize_url = "{VENDOR}/oauth2/authorize"
token_url = "{VENDOR}/oauth2/token"
api_base = "{VENDOR}"

[providers.somfy_protect]
token_url = "{VENDOR}/oauth/oauth/v2/token/jwt"
api_base = "{VENDOR}"

[connections.home]
provider = "netatmo"
secret = "netatmo"

[connections.alarm]
provider = "somfy_protect"
secret = "somfy"
grant = "password"

# A plain action: every parameter type, parameters in the query, the form and the body.
[actions.heating]
connection = "home"
path = "/api/setthermmode/{{home}}"
query = {{ mode = "{{mode}}", endtime = "{{minutes}}" }}
body = {{ temp = "{{temp}}", count = "{{count}}", note = "note: {{note}}", on = "{{on}}" }}
params.home = {{ type = "string", max_len = 32, default = "h1" }}
params.mode = {{ type = "enum", values = ["schedule", "away", "hg"], default = "away" }}
params.minutes = {{ type = "end_time", optional = true, max = 1440 }}
params.temp = {{ type = "number", min = 7, max = 30, optional = true }}
params.count = {{ type = "integer", min = -5, max = 10, optional = true }}
params.note = {{ type = "string", max_len = 16, optional = true }}
params.on = {{ type = "boolean", default = true }}
answer = "Heating set to {{{{ mode }}}}"
key_hash = ["{action}", "{old_action}"]
rate_limit = {{ burst = 100000, per_minute = 60000 }}

# A read action: GET too, an answer reading the vendor's JSON.
[actions.temperature]
connection = "home"
method = "GET"
path = "/api/getstationsdata"
answer = "Living room {{{{ data.body.devices[0].dashboard_data.Temperature }}}} °C"
methods = ["GET", "POST"]
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

# Sensitive, with a PIN, on the connection without a token (the token call fails first).
[actions.disarm]
connection = "alarm"
method = "PUT"
path = "/site/{{site}}/security"
body = {{ status = "disarmed" }}
params.site = {{ type = "string", max_len = 64, default = "site-1" }}
sensitive = true
pin_hash = "{pin_hash}"
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

# A sensitive built-in with its own (low) rate limit and a PIN.
[actions.alarm_off]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "site-1" }}
pin_hash = "{pin_hash}"
key_hash = "{action}"

# Signed mode.
[actions.signed]
connection = "home"
path = "/api/setpersonsaway"
form = {{ home_id = "h1", person_id = "{{person}}" }}
params.person = {{ type = "string", max_len = 40, optional = true }}
signing_secret = "signer"
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

# Built-ins of the token-holding connection: a write and a read (GET by default).
[actions.living_room]
connection = "home"
builtin = "room_setpoint"
with = {{ home_id = "h1", room_id = "r1" }}
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[actions.home_status]
connection = "home"
builtin = "home_status"
with = {{ home_id = "h1" }}
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

# One call a minute: the second answers 429.
[actions.limited]
connection = "home"
path = "/api/limited"
key_hash = "{action}"
rate_limit = {{ burst = 1, per_minute = 1 }}

[keys.phone]
hash = "{phone}"
actions = ["heating", "temperature"]
expires = "2030-01-01T00:00:00Z"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[keys.everything]
hash = "{wildcard}"
actions = ["*"]
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[keys.old_phone]
hash = "{expired}"
actions = ["heating"]
expires = "2020-01-01T00:00:00Z"

[keys.lost]
hash = "{revoked}"
actions = ["*"]
revoked = true
"#,
        admin = h(ADMIN_KEY),
        action = h(ACTION_KEY),
        old_action = h(OLD_ACTION_KEY),
        phone = h(PHONE_KEY),
        wildcard = h(WILDCARD_KEY),
        expired = h(EXPIRED_KEY),
        revoked = h(REVOKED_KEY),
    )
}

/// homehook's whole router (`/a/{action}`, `/status`, `/discover`, `/connect`, `/callback`,
/// `/healthz`, `/`) over [`fuzz_config`]: a memory store in which `home` has a token valid for a
/// year, a clock stopped at [`NOW`], and secrets for both connections and the `signer` entry.
/// Panics if the fixture itself is broken.
pub fn fuzz_app() -> Router {
    let config = Config::parse(&fuzz_config(), "fuzz.toml", None)
        .unwrap_or_else(|e| panic!("the fuzz config is valid: {e}"));
    let store = Arc::new(MemoryStore::new());
    let record = TokenRecord {
        connection: "home".into(),
        access_token: SecretString::new("fuzz-access-token"),
        refresh_token: Some(SecretString::new("fuzz-refresh-token")),
        expires_at: Some(NOW.plus_secs(365 * 24 * 3600)),
        scopes: Vec::new(),
        connected_at: NOW,
        refreshed_at: None,
        version: 0,
        health: Default::default(),
        session: None,
        lifecycle: Default::default(),
        due_at: None,
    };
    // The memory store answers at once: one poll runs the write.
    {
        let mut write = pin!(store.swap_token(None, record));
        match write.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => panic!("store the fuzz token: {e}"),
            Poll::Pending => panic!("the memory store answered later"),
        }
    }
    let creds = |user: Option<&str>| ClientCredentials {
        client_id: "fuzz-client".into(),
        client_secret: Some(SecretString::new("fuzz-client-secret")),
        username: user.map(str::to_string),
        password: user.map(|_| SecretString::new("fuzz-password")),
    };
    let secrets = LocalSecrets::from_entries(BTreeMap::from([
        ("netatmo".to_string(), creds(None)),
        ("somfy".to_string(), creds(Some("me@example.com"))),
    ]))
    .with_entry("signer", serde_json::json!({ "signing_key": SIGNING_KEY }));
    let app = App::new(
        Services::new(
            config,
            store,
            Arc::new(secrets),
            Arc::new(ManualClock::new(NOW)),
        )
        .unwrap_or_else(|e| panic!("build the fuzz app: {e}")),
    );
    homehook_core::http::router(Live::fixed(Arc::new(app)))
}

/// Sends `tracing` output at every level to nowhere, so the fuzz targets also run the code
/// that formats log fields (disabled events skip it). Does nothing if a subscriber is set.
pub fn log_to_sink() {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::sink)
        .try_init();
}
