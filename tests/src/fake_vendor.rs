//! A fake OAuth2 vendor on loopback, behaving as ../shared/providers.md describes: codes are
//! single use and bound to the redirect URI and PKCE challenge; access tokens expire on the
//! shared clock; refresh tokens rotate (the old one dies at once, like Netatmo); an expired
//! token is answered the vendor's way (Netatmo: 403 `{"error":{"code":3}}`; others: 401
//! `{"error":"invalid_token"}`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use homehook_core::clock::{Clock, ManualClock, UnixTime};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How the fake says "expired token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredStyle {
    /// Netatmo: HTTP 403 `{"error":{"code":3,"message":"Access token expired"}}`.
    Netatmo403,
    /// Homey, Myfox: HTTP 401 `{"error":"invalid_token"}`.
    InvalidToken401,
}

/// How the client must authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthStyle {
    /// `Authorization: Basic`.
    Basic,
    /// `client_id`/`client_secret` in the form.
    Form,
}

/// How the token endpoint words its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorStyle {
    /// RFC 6749: `{"error":"invalid_grant","error_description":…}`.
    Rfc6749,
    /// Somfy Protect: `{"message":"error.invalid.grant","data":[],"uid":…}`.
    Somfy,
}

/// A token-endpoint budget: at most `max` calls per `window_secs`, then 429 (Somfy Protect:
/// 5 per 10 minutes, with `X-RateLimit-Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    /// Calls allowed per window.
    pub max: usize,
    /// The window, in seconds.
    pub window_secs: i64,
}

/// A failure the token endpoint answers one call with (a fault matrix entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// That HTTP status, with a JSON error body, without doing the grant.
    Status(u16),
    /// Answers 504 only after this many milliseconds (longer than homehook waits).
    Hang(u64),
    /// Starts a 200 answer, then breaks the connection in the middle of the body.
    Reset,
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
    /// 400 `invalid_grant`, whatever was sent.
    InvalidGrant,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Does the grant (rotating the refresh token), then holds the answer until
    /// [`FakeVendor::release_held_answer`]: a rotation whose answer arrives late.
    HoldAnswer,
}

/// What the fake accepts and how it behaves.
#[derive(Debug, Clone)]
pub struct FakeSettings {
    /// Accepted client id.
    pub client_id: String,
    /// Accepted client secret.
    pub client_secret: String,
    /// Required client authentication.
    pub client_auth: ClientAuthStyle,
    /// Lifetime of access tokens.
    pub access_ttl_secs: i64,
    /// Issue a new refresh token on refresh and kill the old one.
    pub rotate_refresh_tokens: bool,
    /// Expired-token answer.
    pub expired_style: ExpiredStyle,
    /// Accepted username/password for the password grant.
    pub account: (String, String),
    /// The owner clicks "Deny" on the consent page.
    pub deny_consent: bool,
    /// Accept the access token as `?access_token=` too.
    pub query_token: bool,
    /// Answer refresh requests without a `refresh_token` field ("keep using the one you have").
    pub omit_refresh_token_on_refresh: bool,
    /// Path of the authorize endpoint (Homey: `/oauth2/authorise`).
    pub authorize_path: String,
    /// Paths of the token endpoint (Somfy has two).
    pub token_paths: Vec<String>,
    /// A token path that issues JWT access tokens and says nothing of `expires_in` (Somfy's
    /// `/token/jwt`): clients must read the `exp` claim.
    pub jwt_token_path: Option<String>,
    /// Token-endpoint rate limit.
    pub token_budget: Option<CallBudget>,
    /// How token refusals are worded.
    pub token_error_style: TokenErrorStyle,
    /// Scopes in token answers (`None`: no `scope` field).
    pub scopes: Option<Value>,
    /// Accept a code exchange that carries no `redirect_uri` (Athom's own client, homey-api's
    /// `authenticateWithAuthorizationCode`, sends only `grant_type` and `code`); one that
    /// carries it must still match the authorization request's.
    pub redirect_uri_optional: bool,
    /// Whether answers of `jwt_token_path` carry `expires_in` too (unknown for Somfy's JWT
    /// endpoint, so its tests run both ways; default: they do not).
    pub jwt_expires_in: bool,
}

impl Default for FakeSettings {
    fn default() -> Self {
        Self {
            client_id: "fake-client".into(),
            client_secret: "fake-client-secret".into(),
            client_auth: ClientAuthStyle::Form,
            access_ttl_secs: 10_800,
            rotate_refresh_tokens: true,
            expired_style: ExpiredStyle::Netatmo403,
            account: ("owner@example.com".into(), "correct horse".into()),
            deny_consent: false,
            query_token: false,
            omit_refresh_token_on_refresh: false,
            authorize_path: "/oauth2/authorize".into(),
            token_paths: vec!["/oauth2/token".into()],
            jwt_token_path: None,
            token_budget: None,
            token_error_style: TokenErrorStyle::Rfc6749,
            scopes: Some(json!(["read_station", "write_thermostat"])),
            redirect_uri_optional: false,
            jwt_expires_in: false,
        }
    }
}

/// A request the fake's API received.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query parameters (without any access token).
    pub query: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

#[derive(Debug)]
struct PendingCode {
    redirect_uri: String,
    challenge: Option<String>,
}

#[derive(Debug, Default)]
struct Tokens {
    codes: HashMap<String, PendingCode>,
    access: HashMap<String, UnixTime>,
    refresh: HashSet<String>,
}

#[derive(Debug)]
struct Shared {
    clock: ManualClock,
    settings: Mutex<FakeSettings>,
    tokens: Mutex<Tokens>,
    token_calls: AtomicUsize,
    /// Failures queued for the next token calls.
    token_faults: Mutex<std::collections::VecDeque<TokenFault>>,
    /// Answers held by [`TokenFault::HoldAnswer`] wait on this.
    release: tokio::sync::Notify,
    /// How many answers are being held right now.
    held: AtomicUsize,
    /// When each token call arrived, for the budget.
    token_call_times: Mutex<Vec<UnixTime>>,
    api_calls: Mutex<Vec<ApiCall>>,
}

/// What the fake thinks of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Issued and still valid.
    Valid,
    /// Issued, now expired.
    Expired,
    /// Never issued (or missing).
    Unknown,
}

/// The OAuth side of a fake, for the vendor API routers built on it.
#[derive(Debug, Clone)]
pub struct OAuthHandle(Arc<Shared>);

impl OAuthHandle {
    /// Whether `token` is a valid access token now.
    pub fn access(&self, token: Option<&str>) -> Access {
        let Some(token) = token else {
            return Access::Unknown;
        };
        match lock(&self.0.tokens).access.get(token) {
            None => Access::Unknown,
            Some(at) if self.0.clock.now() >= *at => Access::Expired,
            Some(_) => Access::Valid,
        }
    }

    /// The bearer token of a request, or its `access_token` query parameter.
    pub fn token_of(parts: &axum::http::request::Parts) -> Option<String> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        bearer.or_else(|| {
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
        })
    }

    /// The shared clock.
    pub fn clock(&self) -> ManualClock {
        self.0.clock.clone()
    }

    /// The vendor expires every access token now (a fake's control endpoint, for clients
    /// that run out of process).
    pub fn expire_access_tokens(&self) {
        let now = self.0.clock.now();
        for at in lock(&self.0.tokens).access.values_mut() {
            *at = now;
        }
    }

    /// Records an API call (for tests that look at what was sent).
    pub fn record(&self, call: ApiCall) {
        lock(&self.0.api_calls).push(call);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake vendor; stops when dropped.
#[derive(Debug)]
pub struct FakeVendor {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeVendor {
    /// Starts a fake on a free loopback port, with a generic API that echoes what it gets.
    pub async fn start(clock: ManualClock, settings: FakeSettings) -> Self {
        Self::start_with(clock, settings, |oauth| {
            Router::new().fallback(api).with_state(oauth.0)
        })
        .await
    }

    /// Starts a fake whose API is the router `api` builds (a vendor's own fake API).
    pub async fn start_with(
        clock: ManualClock,
        settings: FakeSettings,
        api: impl FnOnce(OAuthHandle) -> Router,
    ) -> Self {
        crate::leak_watch::init();
        issue_credentials(&settings);
        let mut oauth = Router::new().route(&settings.authorize_path, get(authorize));
        for path in &settings.token_paths {
            oauth = oauth.route(path, post(token));
        }
        let shared = Arc::new(Shared {
            clock,
            settings: Mutex::new(settings),
            tokens: Mutex::new(Tokens::default()),
            token_calls: AtomicUsize::new(0),
            token_faults: Mutex::new(Default::default()),
            release: tokio::sync::Notify::new(),
            held: AtomicUsize::new(0),
            token_call_times: Mutex::new(Vec::new()),
            api_calls: Mutex::new(Vec::new()),
        });
        let router = oauth
            .with_state(Arc::clone(&shared))
            .merge(api(OAuthHandle(Arc::clone(&shared))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake vendor");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base, shared, task }
    }

    /// Token-endpoint calls so far.
    pub fn token_calls(&self) -> usize {
        self.shared.token_calls.load(Ordering::SeqCst)
    }

    /// API calls so far.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        lock(&self.shared.api_calls).clone()
    }

    /// Changes the fake's behaviour.
    pub fn update(&self, f: impl FnOnce(&mut FakeSettings)) {
        let mut settings = lock(&self.shared.settings);
        f(&mut settings);
        issue_credentials(&settings);
    }

    /// The vendor expires every access token now (whatever their stated lifetime).
    pub fn expire_access_tokens(&self) {
        let now = self.shared.clock.now();
        for at in lock(&self.shared.tokens).access.values_mut() {
            *at = now;
        }
    }

    /// The owner revokes homehook's access: every refresh token dies.
    pub fn revoke_refresh_tokens(&self) {
        lock(&self.shared.tokens).refresh.clear();
    }

    /// The next `times` token calls answer with `fault`.
    pub fn fail_token_calls(&self, fault: TokenFault, times: usize) {
        lock(&self.shared.token_faults).extend(std::iter::repeat_n(fault, times));
    }

    /// Token answers being held by [`TokenFault::HoldAnswer`] now.
    pub fn held_answers(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Lets one held answer go.
    pub fn release_held_answer(&self) {
        self.shared.release.notify_one();
    }

    /// Number of refresh tokens the fake would still accept.
    pub fn live_refresh_tokens(&self) -> usize {
        lock(&self.shared.tokens).refresh.len()
    }
}

/// Records the client secret and the account's password the fake accepts.
fn issue_credentials(settings: &FakeSettings) {
    crate::leak_watch::issued("client_secret", &settings.client_secret);
    crate::leak_watch::issued("password", &settings.account.1);
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}|{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let settings = lock(&s.settings).clone();
    let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri or state").into_response();
    };
    if q.get("client_id") != Some(&settings.client_id)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "unknown client or response_type").into_response();
    }
    let mut target = url::Url::parse(redirect_uri).expect("redirect_uri is a URL");
    if settings.deny_consent {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied access")
            .append_pair("state", state);
        return Redirect::to(target.as_str()).into_response();
    }
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), Some(m)) if m == "S256" => Some(c.clone()),
        (Some(_), _) => return (StatusCode::BAD_REQUEST, "only S256").into_response(),
        _ => None,
    };
    let code = random_token("code");
    crate::leak_watch::issued("authorization_code", &code);
    lock(&s.tokens).codes.insert(
        code.clone(),
        PendingCode {
            redirect_uri: redirect_uri.clone(),
            challenge,
        },
    );
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    Redirect::to(target.as_str()).into_response()
}

fn oauth_error(style: TokenErrorStyle, status: StatusCode, error: &str) -> Response {
    let body = match style {
        TokenErrorStyle::Rfc6749 => {
            json!({ "error": error, "error_description": format!("fake vendor: {error}") })
        }
        TokenErrorStyle::Somfy => json!({
            "message": format!("error.{}", error.replace('_', ".")),
            "data": [],
            "uid": "6c1e4b3a",
        }),
    };
    (status, Json(body)).into_response()
}

/// A JWT-shaped access token with an `exp` claim (unsigned: only its shape matters here).
fn jwt(exp: UnixTime) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({ "exp": exp.0, "jti": random_token("jti"), "sub": "owner" })
            .to_string()
            .as_bytes(),
    );
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

fn client_ok(settings: &FakeSettings, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match settings.client_auth {
        ClientAuthStyle::Form => {
            form.get("client_id") == Some(&settings.client_id)
                && form.get("client_secret") == Some(&settings.client_secret)
        }
        ClientAuthStyle::Basic => {
            let Some(encoded) = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
            else {
                return false;
            };
            let Ok(decoded) = STANDARD.decode(encoded) else {
                return false;
            };
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let Some((id, secret)) = text.split_once(':') else {
                return false;
            };
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let decode = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            decode(id).as_deref() == Some(settings.client_id.as_str())
                && decode(secret).as_deref() == Some(settings.client_secret.as_str())
        }
    }
}

async fn token(
    State(s): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.token_calls.fetch_add(1, Ordering::SeqCst);
    let settings = lock(&s.settings).clone();
    let fault = lock(&s.token_faults).pop_front();
    match fault {
        None | Some(TokenFault::HoldAnswer) => {}
        Some(other) => return faulty_answer(other, settings.token_error_style).await,
    }
    let answer = grant(&s, &settings, &uri, &headers, &form);
    if fault == Some(TokenFault::HoldAnswer) {
        s.held.fetch_add(1, Ordering::SeqCst);
        s.release.notified().await;
        s.held.fetch_sub(1, Ordering::SeqCst);
    }
    answer
}

/// The answer of a token call that hits `fault`.
async fn faulty_answer(fault: TokenFault, style: TokenErrorStyle) -> Response {
    match fault {
        TokenFault::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"error": "server_error", "error_description": "fake vendor: internal error"})),
        )
            .into_response(),
        TokenFault::Hang(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        TokenFault::Reset => {
            let broken = futures_util::stream::iter([
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"access_tok")),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")),
            ]);
            (
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(broken),
            )
                .into_response()
        }
        TokenFault::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            Json(json!({"error": "rate_limited"})),
        )
            .into_response(),
        TokenFault::InvalidGrant => oauth_error(style, StatusCode::BAD_REQUEST, "invalid_grant"),
        TokenFault::Malformed => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html>upstream proxy error</html>",
        )
            .into_response(),
        TokenFault::HoldAnswer => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Does the grant a token call asks for.
fn grant(
    s: &Shared,
    settings: &FakeSettings,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let now = s.clock.now();
    if let Some(budget) = settings.token_budget {
        let mut times = lock(&s.token_call_times);
        times.retain(|t| t.plus_secs(budget.window_secs) > now);
        if times.len() >= budget.max {
            let retry = times
                .first()
                .map(|t| now.secs_until(t.plus_secs(budget.window_secs)))
                .unwrap_or(budget.window_secs);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    ("x-ratelimit-limit", budget.max.to_string()),
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-retry-after", retry.to_string()),
                ],
                // Somfy's recorded 429 (SomfyProtect2MQTT issues #243, #244): the limits
                // again under data.headers.
                Json(
                    json!({"message": "Too many tokens requested", "data": {"headers": {
                    "X-RateLimit-Remaining": 0,
                    "X-RateLimit-Retry-After": retry,
                    "X-RateLimit-Limit": budget.max.to_string(),
                }}, "uid": "69b9ae81215de"}),
                ),
            )
                .into_response();
        }
        times.push(now);
    }
    let oauth_error = |status, error: &str| oauth_error(settings.token_error_style, status, error);
    if !client_ok(settings, headers, form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut tokens = lock(&s.tokens);
    let old_refresh = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(pending) = form.get("code").and_then(|c| tokens.codes.remove(c)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let redirect_uri = form.get("redirect_uri");
            let omitted_ok = redirect_uri.is_none() && settings.redirect_uri_optional;
            if !omitted_ok && redirect_uri != Some(&pending.redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = pending.challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
            None
        }
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if !tokens.refresh.contains(&rt) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            Some(rt)
        }
        Some("password") => {
            if form.get("username") != Some(&settings.account.0)
                || form.get("password") != Some(&settings.account.1)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            None
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let expires_at = now.plus_secs(settings.access_ttl_secs);
    let as_jwt = settings.jwt_token_path.as_deref() == Some(uri.path());
    let access = if as_jwt {
        jwt(expires_at)
    } else {
        random_token("at")
    };
    crate::leak_watch::issued("access_token", &access);
    tokens.access.insert(access.clone(), expires_at);
    let refreshing = old_refresh.is_some();
    let refresh = match old_refresh {
        Some(old) if !settings.rotate_refresh_tokens || settings.omit_refresh_token_on_refresh => {
            old
        }
        Some(old) => {
            // Rotation: the old refresh token dies the moment the new one is issued.
            tokens.refresh.remove(&old);
            let new = random_token("rt");
            crate::leak_watch::issued("refresh_token", &new);
            tokens.refresh.insert(new.clone());
            new
        }
        None => {
            let new = random_token("rt");
            crate::leak_watch::issued("refresh_token", &new);
            tokens.refresh.insert(new.clone());
            new
        }
    };
    let mut answer = json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": settings.access_ttl_secs,
        "expire_in": settings.access_ttl_secs,
        "token_type": "bearer",
        "scope": settings.scopes.clone().unwrap_or(Value::Null),
    });
    if let Some(o) = answer.as_object_mut() {
        if refreshing && settings.omit_refresh_token_on_refresh {
            o.remove("refresh_token");
        }
        if as_jwt && !settings.jwt_expires_in {
            o.remove("expires_in");
            o.remove("expire_in");
        }
    }
    Json(answer).into_response()
}

/// Every other path is the vendor's API. `/api/fail/{status}` answers that status.
async fn api(State(s): State<Arc<Shared>>, request: Request) -> Response {
    let settings = lock(&s.settings).clone();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if settings.query_token
        && let Some(pos) = query.iter().position(|(k, _)| k == "access_token")
    {
        token = Some(query.remove(pos).1);
    }
    let unauthorized = |expired: bool| {
        match settings.expired_style {
        ExpiredStyle::Netatmo403 => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": if expired { 3 } else { 2 }, "message": if expired { "Access token expired" } else { "Invalid access_token" }}})),
        )
            .into_response(),
        ExpiredStyle::InvalidToken401 => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token", "error_description": "The access token provided has expired."})),
        )
            .into_response(),
    }
    };
    let expires = token
        .as_ref()
        .and_then(|t| lock(&s.tokens).access.get(t).copied());
    match expires {
        None => return unauthorized(false),
        Some(at) if s.clock.now() >= at => return unauthorized(true),
        Some(_) => {}
    }
    let path = parts.uri.path().to_string();
    lock(&s.api_calls).push(ApiCall {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Some(status) = path
        .strip_prefix("/api/fail/")
        .and_then(|c| c.parse::<u16>().ok())
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return (
            status,
            Json(json!({"error": {"code": 21, "message": "Invalid device id"}})),
        )
            .into_response();
    }
    let echo: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Json(json!({
        "status": "ok",
        "time_server": s.clock.now().0,
        "body": {
            "devices": [{"station_name": "Home", "dashboard_data": {"Temperature": 21.4, "Humidity": 48, "CO2": 640}}],
            "echo": echo,
        }
    }))
    .into_response()
}
