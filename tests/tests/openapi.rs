//! `docs/openapi.json` stays true to the HTTP surface:
//!
//! - its operations are exactly `homehook_core::http::ROUTES`, and the live router serves every
//!   one of them (and the Lambda routers the ones their tag says), while other paths and methods
//!   get the JSON 404/405;
//! - a spread of real requests, good and bad, get only documented statuses, content types,
//!   headers and bodies;
//! - the `Error` enum holds exactly the codes the source can produce.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use homehook_core::clock::{Clock, ManualClock, UnixTime};
use homehook_core::guard::pin::PinHash;
use homehook_core::guard::signature;
use homehook_core::http::ROUTES;
use homehook_core::live::Live;
use homehook_core::store::{
    ConfigStore, ItemStore, MemoryStore, Store, StoreError, StoredConfig, Taken, TokenStore,
};
use homehook_core::token::TokenRecord;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{T0, World, secrets_for};
use homehook_tests::openapi_check::{self as oa, Answer};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The document itself

#[test]
fn the_document_lists_exactly_the_routes() {
    let doc = oa::load_document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1"
    );
    let documented = oa::operations(&doc);
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect();
    assert_eq!(
        documented, routes,
        "docs/openapi.json operations vs homehook_core::http::ROUTES"
    );
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths.len(), ROUTES.len(), "each path once in ROUTES");
}

#[test]
fn the_document_is_consistent() {
    let doc = oa::load_document();
    // Every reference resolves.
    for (at, reference) in oa::references(&doc) {
        assert!(
            oa::lookup(&doc, &reference).is_ok(),
            "{at}: {reference} resolves"
        );
    }
    let codes = oa::error_codes(&doc);
    let unique: BTreeSet<&String> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len(), "error codes listed once");
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "error codes sorted");

    let mut narrowed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Every `{param}` of the path is a documented path parameter.
        let declared: BTreeSet<String> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| oa::resolve(&doc, p).unwrap())
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        assert_eq!(declared, in_path, "path parameters of {path}");

        let mut response_sets: Vec<(String, &Value)> = Vec::new();
        for m in oa::METHODS {
            if let Some(op) = item.get(m) {
                assert!(
                    op["operationId"].is_string(),
                    "{m} {path} has an operationId"
                );
                let tags = op["tags"].as_array().expect("tags");
                assert_eq!(tags.len(), 1, "{m} {path}: one tag, where it runs");
                response_sets.push((format!("{m} {path}"), &op["responses"]));
            }
        }
        if let Some(other) = item.get("x-other-methods") {
            response_sets.push((format!("other methods of {path}"), &other["responses"]));
        }
        for (what, responses) in response_sets {
            let responses = responses.as_object().expect("responses");
            assert!(!responses.is_empty(), "{what} has responses");
            for (status, response) in responses {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{what}: status {status}"
                );
                let response = oa::resolve(&doc, response).unwrap();
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| d.len() > 3),
                    "{what} {status} has a description"
                );
                if let Some(schema) = response.pointer("/content/application~1json/schema")
                    && schema["$ref"] == "#/components/schemas/Error"
                {
                    assert!(
                        status.starts_with('4') || status.starts_with('5'),
                        "{what}: an Error for {status}"
                    );
                    let listed = schema
                        .pointer("/properties/error/enum")
                        .and_then(Value::as_array)
                        .unwrap_or_else(|| panic!("{what} {status} lists its error codes"));
                    for code in listed {
                        let code = code.as_str().unwrap().to_string();
                        assert!(
                            codes.contains(&code),
                            "{what} {status}: {code} is in the Error enum"
                        );
                        narrowed.insert(code);
                    }
                }
            }
        }
    }
    // Fallback answers for paths and methods no operation covers.
    for name in ["NotFound", "MethodNotAllowed"] {
        let r = &doc["components"]["responses"][name];
        for code in r
            .pointer("/content/application~1json/schema/properties/error/enum")
            .and_then(Value::as_array)
            .unwrap()
        {
            narrowed.insert(code.as_str().unwrap().to_string());
        }
    }
    let all: BTreeSet<String> = codes.iter().cloned().collect();
    assert_eq!(
        narrowed, all,
        "every code in the Error enum is listed for some operation's status, and only those"
    );
}

// ---------------------------------------------------------------------------------------------
// The enum against the source

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn core_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/core/src")
}

/// The string literal right after `at` (skipping whitespace), if there is one.
fn literal_after(text: &str, at: usize) -> Option<&str> {
    let rest = text[at..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// The error codes homehook constructs: the `=> "code"` arms of `ErrorCode::as_str` in
/// `error.rs` (every code the core and the handlers give), and what the HTTP layer spells out
/// itself for axum's own refusals: `ApiError::new(StatusCode::X, "code"`, `.code = "code"`, and
/// the `=> ("code", ...)` arms in `http/mod.rs`.
fn codes_constructed_in_source() -> BTreeSet<String> {
    let src = core_src();
    let mut files = Vec::new();
    rust_files(&src.join("http"), &mut files);
    files.push(src.join("error.rs"));
    let mut codes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, _) in text.match_indices("bad_request(") {
            codes.extend(literal_after(&text, i + "bad_request(".len()).map(str::to_string));
        }
        for (i, _) in text.match_indices("StatusCode::") {
            let rest = &text[i + "StatusCode::".len()..];
            let ident = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            if rest[ident..].starts_with(',') {
                let at = i + "StatusCode::".len() + ident + 1;
                codes.extend(literal_after(&text, at).map(str::to_string));
            }
        }
        for (i, _) in text.match_indices(".code = ") {
            codes.extend(literal_after(&text, i + ".code = ".len()).map(str::to_string));
        }
        if ["error.rs", "mod.rs"].contains(&name.as_str()) {
            for (i, _) in text.match_indices("=>") {
                let rest = text[i + 2..].trim_start();
                let at = text.len() - rest.strip_prefix('(').unwrap_or(rest).len();
                codes.extend(literal_after(&text, at).map(str::to_string));
            }
        }
    }
    codes
}

#[test]
fn the_error_enum_is_exactly_the_codes_the_source_produces() {
    let doc = oa::load_document();
    let codes = oa::error_codes(&doc);
    let mut files = Vec::new();
    rust_files(&core_src(), &mut files);
    let source: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read source"))
        .collect::<Vec<_>>()
        .join("\n");
    let dead: Vec<&String> = codes
        .iter()
        .filter(|c| !source.contains(&format!("\"{c}\"")))
        .collect();
    assert!(
        dead.is_empty(),
        "error codes in docs/openapi.json that functions/core/src never produces: {dead:?}"
    );

    let constructed = codes_constructed_in_source();
    assert!(
        constructed.len() > 30,
        "the scan finds the codes: {constructed:?}"
    );
    let documented: BTreeSet<String> = codes.iter().cloned().collect();
    let undocumented: Vec<&String> = constructed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "error codes the HTTP layer produces that the Error enum lacks: {undocumented:?}"
    );
    let unconstructed: Vec<&String> = documented.difference(&constructed).collect();
    assert!(
        unconstructed.is_empty(),
        "error codes documented but not constructed by the HTTP layer: {unconstructed:?}"
    );
    println!("{} error codes", codes.len());
}

// ---------------------------------------------------------------------------------------------
// Live requests

/// A request checked: method, path template, status, error code.
type Seen = (String, String, u16, Option<String>);

/// Sends requests and holds each answer to the document.
struct Checker {
    doc: Value,
    client: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
}

impl Checker {
    fn new(client: &reqwest::Client) -> Self {
        Self {
            doc: oa::load_document(),
            client: client.clone(),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Sends, reads and checks the answer against the document.
    async fn send(&self, request: RequestBuilder) -> Answer {
        let request = request.build().expect("request");
        let method = request.method().as_str().to_string();
        let path = request.url().path().to_string();
        let template = oa::match_path(&self.doc, &path).unwrap_or_else(|| path.clone());
        let answer = Answer::read(self.client.execute(request).await.expect("send")).await;
        if let Err(e) = oa::check_answer(&self.doc, &template, &method, &answer) {
            panic!("{path}: {e}");
        }
        if let Err(e) =
            oa::check_response(&self.doc, &template, &method, answer.status, &answer.body)
        {
            panic!("{path} (without headers): {e}");
        }
        self.seen
            .lock()
            .unwrap()
            .push((method, template, answer.status, answer.error_code()));
        answer
    }

    /// Sends and asserts the status and, for an error, its code.
    async fn expect(&self, request: RequestBuilder, status: u16, code: Option<&str>) -> Answer {
        let answer = self.send(request).await;
        assert_eq!(
            (answer.status, answer.error_code().as_deref()),
            (status, code),
            "{}",
            answer.text()
        );
        answer
    }

    fn codes_seen(&self) -> BTreeSet<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, _, _, c)| c.clone())
            .collect()
    }
}

fn is_fallback(a: &Answer) -> bool {
    (a.status == 404 && a.error_code().as_deref() == Some("not_found"))
        || (a.status == 405
            && a.error_code().as_deref() == Some("method_not_allowed")
            && a.header("allow") == Some("GET")
            && a.text().contains("accepts only GET."))
}

/// A concrete path for a route of the netatmo test config.
fn concrete(path: &str, method: &str) -> String {
    let action = if method == "GET" {
        "temperature"
    } else {
        "heating"
    };
    path.replace("{connection}", "home")
        .replace("{provider}", "netatmo")
        .replace("{action}", action)
        .replace("{event}", action)
}

async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

#[tokio::test]
async fn the_router_serves_every_route_and_nothing_else() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    let c = Checker::new(&w.client);
    let doc = c.doc.clone();

    let request = |base: &str, method: &str, path: &str| {
        let key = if path.starts_with("/a/") || path.starts_with("/trigger/") {
            w.keys.action.expose()
        } else {
            w.keys.admin.expose()
        };
        // IFTTT's shapes carry the key in the path.
        let path = path.replace("{key}", key);
        w.client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{base}{path}"),
            )
            .bearer_auth(key)
    };

    // Every route is served by `app`, and by the Lambda router its tag names.
    let (oauth_base, oauth_task) = serve(homehook_core::http::oauth_router(Live::fixed(
        Arc::clone(&w.hh.app),
    )))
    .await;
    let (actions_base, actions_task) = serve(homehook_core::http::actions_router(Live::fixed(
        Arc::clone(&w.hh.app),
    )))
    .await;
    for (path, methods) in ROUTES {
        for method in *methods {
            let p = concrete(path, method);
            let a = c.send(request(&w.hh.base, method, &p)).await;
            assert!(
                !is_fallback(&a),
                "{method} {path} is served: {} {}",
                a.status,
                a.text()
            );
            let tag = doc["paths"][path][method.to_ascii_lowercase()]["tags"][0]
                .as_str()
                .unwrap()
                .to_string();
            for (base, router_tag) in [(&oauth_base, "oauth"), (&actions_base, "actions")] {
                let r = Answer::read(request(base, method, &p).send().await.expect("send")).await;
                assert_eq!(
                    !is_fallback(&r),
                    tag == router_tag,
                    "{method} {path} (tag {tag}) on the {router_tag} router: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
        // HEAD is answered like GET only on the side-effect-free `/` and `/healthz`; anywhere
        // else (a connect link would store a state, discover would call the vendor, an action
        // would act) it runs nothing and gets 405.
        if methods.contains(&"GET") {
            let a = c
                .send(request(&w.hh.base, "HEAD", &concrete(path, "GET")))
                .await;
            if *path == "/a/{action}" || path.starts_with("/trigger/") {
                assert_eq!(a.status, 405, "HEAD {path}");
                assert_eq!(a.header("allow"), Some("GET, POST"), "HEAD {path}");
            } else if ["/", "/healthz"].contains(path) {
                assert!(![404, 405].contains(&a.status), "HEAD {path}: {}", a.status);
            } else {
                assert_eq!(a.status, 405, "HEAD {path}");
                assert_eq!(a.header("allow"), Some("GET"), "HEAD {path}");
            }
        }
        // Methods the path does not serve get the JSON 405 with Allow, never run anything.
        if *methods == ["GET"] {
            for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
                let a = c
                    .expect(
                        request(&w.hh.base, method, &concrete(path, "GET")),
                        405,
                        Some("method_not_allowed"),
                    )
                    .await;
                assert_eq!(a.header("allow"), Some("GET"), "{method} {path}");
            }
        }
    }
    oauth_task.abort();
    actions_task.abort();

    // Paths that are not routes get the JSON 404.
    for path in [
        "/a",
        "/a/",
        "/a/heating/x",
        "/A/heating",
        "/connect",
        "/connect/",
        "/callback",
        "/discover",
        "/status/",
        "/healthz/",
        "/healthz/x",
        "/openapi.json",
        "/docs/openapi.json",
        "/metrics",
        "/admin",
        "/.env",
        "/index.html",
    ] {
        for method in ["GET", "POST"] {
            let a = c
                .expect(request(&w.hh.base, method, path), 404, Some("not_found"))
                .await;
            assert_eq!(a.header("cache-control"), Some("no-store"));
        }
        assert_eq!(oa::match_path(&doc, path), None, "{path} is not documented");
    }
    assert_eq!(
        oa::match_path(&doc, "/a/heating?key=x").as_deref(),
        Some("/a/{action}")
    );
    assert_eq!(
        oa::match_path(&doc, "/healthz").as_deref(),
        Some("/healthz")
    );
}

/// The configuration of the second world: signed, PIN-guarded, failing and limited actions.
const GATED: &str = r#"
[server]
public_url = "{public_url}"
admin_key_hash = "{admin}"

[providers.netatmo]
authorize_url = "VENDOR/oauth2/authorize"
token_url = "VENDOR/oauth2/token"
api_base = "VENDOR"

[connections.home]
provider = "netatmo"
secret = "netatmo"

[actions.signed]
connection = "home"
rate_limit = { burst = 100, per_minute = 6000 }
path = "/api/setthermmode"
query = { home_id = "h1", mode = "{mode}" }
params.mode = { type = "enum", values = ["schedule", "away"], default = "away" }
signing_secret = "hook"
key_hash = "{key}"

[actions.signed_without_secret]
connection = "home"
path = "/api/setthermmode"
signing_secret = "absent"
key_hash = "{key}"

[actions.guarded]
connection = "home"
rate_limit = { burst = 100, per_minute = 6000 }
path = "/api/setthermmode"
pin_hash = "PINHASH"
key_hash = "{key}"

[actions.flaky]
connection = "home"
path = "/api/fail/500"
key_hash = "{key}"

[actions.reader]
connection = "home"
rate_limit = { burst = 100, per_minute = 6000 }
method = "GET"
path = "/api/getstationsdata"
methods = ["GET"]
key_hash = "{key}"

[actions.limited]
connection = "home"
path = "/api/setthermmode"
rate_limit = { burst = 1, per_minute = 1 }
key_hash = "{key}"
"#;

const SIGNING_KEY: &str = "whsec-openapi-test";
const PIN: &str = "246813";

/// A memory store that can be switched off: every operation then fails.
struct SwitchableStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl SwitchableStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Backend("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TokenStore for SwitchableStore {
    async fn get_token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.check()?;
        self.inner.get_token(connection).await
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        record: TokenRecord,
    ) -> Result<TokenRecord, StoreError> {
        self.check()?;
        self.inner.swap_token(expected, record).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.check()?;
        self.inner.list_tokens().await
    }

    async fn due_tokens(&self, now: UnixTime) -> Result<Vec<TokenRecord>, StoreError> {
        self.check()?;
        self.inner.due_tokens(now).await
    }
}

#[async_trait]
impl ItemStore for SwitchableStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_item(key, value, expires_at).await
    }

    async fn take_item(&self, key: &str, now: UnixTime) -> Result<Taken, StoreError> {
        self.check()?;
        self.inner.take_item(key, now).await
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        self.check()?;
        self.inner.insert_item(key, value, expires_at, now).await
    }

    async fn get_item(&self, key: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.check()?;
        self.inner.get_item(key, now).await
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.count_item(key, expires_at, now).await
    }
}

#[async_trait]
impl ConfigStore for SwitchableStore {
    async fn get_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        self.check()?;
        self.inner.get_config().await
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: UnixTime,
    ) -> Result<StoredConfig, StoreError> {
        self.check()?;
        self.inner.swap_config(expected, text, now).await
    }
}

fn health(report: &Value, connection: &str) -> String {
    report["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == connection))
        .and_then(|c| c["health"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state")
}

#[tokio::test]
async fn real_requests_get_documented_answers() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    let c = Checker::new(&w.client);
    let base = w.hh.base.clone();
    let url = |p: &str| format!("{base}{p}");
    let action_key = w.keys.action.expose().to_string();
    let admin_key = w.keys.admin.expose().to_string();
    let post = |p: &str| w.client.post(url(p)).bearer_auth(&action_key);
    let admin = |p: &str| w.client.get(url(p)).bearer_auth(&admin_key);

    // Pages and health.
    let a = c.expect(w.client.get(url("/")), 200, None).await;
    assert!(a.text().contains("homehook is running"));
    let a = c.expect(w.client.get(url("/healthz")), 200, None).await;
    assert_eq!(a.json(), Some(json!({"status": "ok"})));

    // Admin routes without, with a wrong and with the admin key.
    c.expect(w.client.get(url("/status")), 401, Some("missing_key"))
        .await;
    c.expect(
        w.client.get(url("/status")).bearer_auth("hh_wrong"),
        401,
        Some("unauthorized"),
    )
    .await;
    c.expect(
        w.client.get(url("/status?key=hh_wrong")),
        401,
        Some("unauthorized"),
    )
    .await;
    c.expect(
        w.client.get(url(&format!("/status?key={admin_key}"))),
        200,
        None,
    )
    .await;
    let report = c.expect(admin("/status"), 200, None).await.json().unwrap();
    assert_eq!(health(&report, "home"), "not_connected");
    c.expect(
        w.client.get(url("/discover/home")),
        401,
        Some("missing_key"),
    )
    .await;
    c.expect(admin("/discover/nowhere"), 404, Some("unknown_connection"))
        .await;
    c.expect(admin("/discover/home"), 409, Some("not_connected"))
        .await;
    c.expect(w.client.get(url("/connect/home")), 401, Some("missing_key"))
        .await;
    c.expect(
        w.client.get(url("/connect/home?key=hh_wrong")),
        401,
        Some("unauthorized"),
    )
    .await;
    c.expect(admin("/connect/nowhere"), 404, Some("unknown_connection"))
        .await;
    c.expect(admin("/discover/%FF"), 400, Some("bad_request"))
        .await;
    c.expect(admin("/connect/%FF"), 400, Some("bad_request"))
        .await;

    // An action before its connection is connected.
    c.expect(
        post("/a/heating").json(&json!({"mode": "away"})),
        409,
        Some("not_connected"),
    )
    .await;

    // The callback without a usable state, as JSON and as a page.
    c.expect(
        w.client.get(url("/callback/netatmo")),
        400,
        Some("missing_state"),
    )
    .await;
    c.expect(
        w.client.get(url("/callback/netatmo?state=forged&code=abc")),
        400,
        Some("invalid_state"),
    )
    .await;
    let page = c
        .expect(
            w.client
                .get(url("/callback/netatmo?state=forged&code=abc"))
                .header("accept", "text/html"),
            400,
            None,
        )
        .await;
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    c.expect(
        w.client.get(url("/callback/netatmo?state=a&state=b")),
        400,
        Some("malformed_callback"),
    )
    .await;
    c.expect(
        w.client.get(url("/callback/%FF?state=a")),
        400,
        Some("bad_request"),
    )
    .await;

    // The callback with real states: declined, a vendor error, no code, a refused code, another
    // provider's path.
    for (query, status, code) in [
        ("error=access_denied", 403, "access_denied"),
        (
            "error=server_error&error_description=down",
            400,
            "vendor_error",
        ),
        ("", 400, "missing_code"),
        ("code=not-a-code", 400, "invalid_code"),
    ] {
        let authorize = c.expect(admin("/connect/cottage"), 302, None).await;
        let state = state_of(authorize.header("location").unwrap());
        c.expect(
            w.client
                .get(url(&format!("/callback/netatmo?state={state}&{query}"))),
            status,
            Some(code),
        )
        .await;
    }
    let authorize = c.expect(admin("/connect/cottage"), 302, None).await;
    let state = state_of(authorize.header("location").unwrap());
    c.expect(
        w.client.get(url(&format!(
            "/callback/somfy_protect?state={state}&code=x"
        ))),
        400,
        Some("invalid_state"),
    )
    .await;

    // A state past its lifetime.
    let authorize = c.expect(admin("/connect/cottage"), 302, None).await;
    let state = state_of(authorize.header("location").unwrap());
    w.clock.advance(601);
    c.expect(
        w.client
            .get(url(&format!("/callback/netatmo?state={state}&code=x"))),
        400,
        Some("expired_state"),
    )
    .await;

    // Connect for real: 302, consent, callback as JSON; the same callback again is refused.
    let authorize = c.expect(admin("/connect/home"), 302, None).await;
    let back = w.consent(authorize.header("location").unwrap()).await;
    let connected = c.expect(w.client.get(&back), 200, None).await;
    assert_eq!(connected.json().unwrap()["connected"], "Home");
    c.expect(w.client.get(&back), 400, Some("invalid_state"))
        .await;
    let report = c.expect(admin("/status"), 200, None).await.json().unwrap();
    assert_eq!(health(&report, "home"), "healthy", "{report}");
    c.expect(admin("/discover/home"), 200, None).await;
    // HEAD runs no admin handler (nor discover's vendor call, nor connect's state).
    c.expect(
        w.client.head(url("/status")).bearer_auth(&admin_key),
        405,
        None,
    )
    .await;

    // Actions: text, JSON by query and by Accept, a form, the key in the query, GET where
    // allowed.
    let a = c
        .expect(post("/a/heating").json(&json!({"mode": "away"})), 200, None)
        .await;
    assert_eq!(a.text(), "Heating set to away");
    let a = c
        .expect(
            post("/a/heating?format=json").json(&json!({"mode": "hg"})),
            200,
            None,
        )
        .await;
    assert_eq!(a.json().unwrap()["answer"], "Heating set to hg");
    c.expect(
        post("/a/heating").header("accept", "application/json"),
        200,
        None,
    )
    .await;
    c.expect(post("/a/heating?format=text&mode=schedule"), 200, None)
        .await;
    c.expect(
        post("/a/heating")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("mode=hg"),
        200,
        None,
    )
    .await;
    c.expect(
        post("/a/heating")
            .header("content-type", "text/plain")
            .body(r#"{"mode": "away", "pin": "1234"}"#),
        200,
        None,
    )
    .await;
    c.expect(
        w.client.post(url(&format!("/a/heating?key={action_key}"))),
        200,
        None,
    )
    .await;
    c.expect(
        w.client.get(url("/a/temperature")).bearer_auth(&action_key),
        200,
        None,
    )
    .await;
    w.clock.advance(11); // Netatmo's budget: 50 calls per 10 s.

    // Keys and methods.
    c.expect(w.client.post(url("/a/heating")), 401, Some("missing_key"))
        .await;
    c.expect(
        w.client.post(url("/a/heating")).bearer_auth("hh_wrong"),
        401,
        Some("unauthorized"),
    )
    .await;
    c.expect(post("/a/no_such_action"), 401, Some("unauthorized"))
        .await;
    let a = c
        .expect(
            w.client.get(url("/a/heating")).bearer_auth(&action_key),
            405,
            Some("method_not_allowed"),
        )
        .await;
    assert_eq!(a.header("allow"), Some("POST"));
    for method in ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        c.expect(
            w.client
                .request(m.clone(), url("/a/temperature"))
                .bearer_auth(&action_key),
            405,
            (method != "HEAD").then_some("method_not_allowed"),
        )
        .await;
        c.expect(
            w.client.request(m, url("/a/temperature")),
            401,
            (method != "HEAD").then_some("missing_key"),
        )
        .await;
    }
    // An action name that does not decode is one more unknown action.
    c.expect(post("/a/%FF"), 401, Some("unauthorized")).await;

    // Bodies and parameters.
    c.expect(
        post("/a/heating")
            .header("content-type", "application/json")
            .body(r#"{"mode":"#),
        400,
        Some("malformed_body"),
    )
    .await;
    c.expect(
        post("/a/heating").json(&json!([1, 2])),
        400,
        Some("malformed_body"),
    )
    .await;
    c.expect(
        post("/a/heating")
            .header("content-type", "application/json")
            .body(format!(r#"{{"mode": "{}"}}"#, "a".repeat(17 * 1024))),
        413,
        Some("body_too_large"),
    )
    .await;
    c.expect(
        post("/a/heating").json(&json!({"mode": "away", "colour": "red"})),
        400,
        Some("unknown_parameter"),
    )
    .await;
    c.expect(
        post("/a/heating?colour=red"),
        400,
        Some("unknown_parameter"),
    )
    .await;
    c.expect(
        post("/a/heating").json(&json!({"mode": "warm"})),
        400,
        Some("invalid_parameter"),
    )
    .await;
    c.expect(
        post("/a/room").json(&json!({"room": "r1", "temp": 99})),
        400,
        Some("invalid_parameter"),
    )
    .await;
    c.expect(
        post("/a/room").json(&json!({"temp": 20})),
        400,
        Some("missing_parameter"),
    )
    .await;
    c.expect(
        post("/a/cottage_heating").json(&json!({})),
        400,
        Some("missing_parameter"),
    )
    .await;
    c.expect(
        post("/a/heating")
            .header("content-type", "application/xml")
            .body("<mode/>"),
        415,
        Some("unsupported_media_type"),
    )
    .await;
    c.expect(
        post("/a/heating").json(&json!({"pin": true})),
        400,
        Some("invalid_pin"),
    )
    .await;
    let rejected = c
        .expect(post("/a/bad_device"), 502, Some("vendor_rejected"))
        .await;
    assert_eq!(rejected.json().unwrap()["vendor_status"], 400);

    // Idempotency.
    c.expect(
        post("/a/heating").header("idempotency-key", "x".repeat(300)),
        400,
        Some("invalid_idempotency_key"),
    )
    .await;
    c.expect(
        post("/a/heating").header("idempotency-key", "bad key"),
        400,
        Some("invalid_idempotency_key"),
    )
    .await;
    let first = c
        .expect(
            post("/a/heating")
                .header("idempotency-key", "k-1")
                .json(&json!({"mode": "away"})),
            200,
            None,
        )
        .await;
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = c
        .expect(
            post("/a/heating")
                .header("idempotency-key", "k-1")
                .json(&json!({"mode": "away"})),
            200,
            None,
        )
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    c.expect(
        post("/a/heating")
            .header("idempotency-key", "k-1")
            .json(&json!({"mode": "hg"})),
        422,
        Some("idempotency_key_reused"),
    )
    .await;

    // A parameter error is kept too, and replayed.
    for replayed in [None, Some("true")] {
        let a = c
            .expect(
                post("/a/heating")
                    .header("idempotency-key", "k-2")
                    .json(&json!({"mode": "warm"})),
                400,
                Some("invalid_parameter"),
            )
            .await;
        assert_eq!(a.header("idempotent-replayed"), replayed);
    }

    // Unknown paths and methods.
    c.expect(w.client.get(url("/nothing")), 404, Some("not_found"))
        .await;
    c.expect(
        w.client.post(url("/healthz")),
        405,
        Some("method_not_allowed"),
    )
    .await;
    c.expect(
        w.client.delete(url("/callback/netatmo")),
        405,
        Some("method_not_allowed"),
    )
    .await;

    let seen = c.codes_seen();
    println!(
        "netatmo world: {} requests, {} error codes: {seen:?}",
        c.seen.lock().unwrap().len(),
        seen.len()
    );
}

#[tokio::test]
async fn gated_actions_store_failures_and_lockouts_get_documented_answers() {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let pin_hash = PinHash::of(PIN).expect("pin hash").to_string();
    let config = GATED
        .replace("VENDOR", &vendor.base)
        .replace("PINHASH", &pin_hash);
    let store = Arc::new(SwitchableStore {
        inner: MemoryStore::new(),
        down: AtomicBool::new(false),
    });
    let secrets =
        secrets_for("netatmo", &settings).with_entry("hook", json!({ "signing_key": SIGNING_KEY }));
    let w = World::with_vendor(
        clock,
        vendor,
        &config,
        secrets,
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await;
    let c = Checker::new(&w.client);
    let base = w.hh.base.clone();
    let url = |p: &str| format!("{base}{p}");
    let action_key = w.keys.action.expose().to_string();
    let admin_key = w.keys.admin.expose().to_string();
    let post = |p: &str| w.client.post(url(p)).bearer_auth(&action_key);
    let admin = |p: &str| w.client.get(url(p)).bearer_auth(&admin_key);
    assert_eq!(w.connect("home").await.status(), 200);

    // Signed mode.
    let signed = |ts: i64, body: &str, sig: Option<String>| {
        let sig =
            sig.unwrap_or_else(|| signature::sign(SIGNING_KEY.as_bytes(), ts, body.as_bytes()));
        post("/a/signed")
            .header("content-type", "application/json")
            .header("x-homehook-timestamp", ts.to_string())
            .header("x-homehook-signature", sig)
            .body(body.to_string())
    };
    let now = w.clock.now().0;
    c.expect(post("/a/signed"), 401, Some("signature_required"))
        .await;
    c.expect(
        signed(now, "{}", Some("sha256=00".into())),
        401,
        Some("signature_malformed"),
    )
    .await;
    c.expect(signed(now - 1000, "{}", None), 401, Some("signature_stale"))
        .await;
    c.expect(
        signed(now, "{}", Some(signature::sign(b"another key", now, b"{}"))),
        401,
        Some("signature_mismatch"),
    )
    .await;
    let body = r#"{"mode": "schedule"}"#;
    c.expect(signed(now, body, None), 200, None).await;
    c.expect(signed(now, body, None), 401, Some("signature_replayed"))
        .await;
    let sig = signature::sign(SIGNING_KEY.as_bytes(), now, b"");
    c.expect(
        post("/a/signed?mode=away")
            .header("x-homehook-timestamp", now.to_string())
            .header("x-homehook-signature", sig),
        400,
        Some("unsigned_parameters"),
    )
    .await;
    c.expect(post("/a/signed_without_secret"), 502, Some("misconfigured"))
        .await;

    // PIN.
    c.expect(post("/a/guarded"), 401, Some("pin_required"))
        .await;
    c.expect(post("/a/guarded").header("x-homehook-pin", PIN), 200, None)
        .await;
    c.expect(post("/a/guarded").json(&json!({"pin": PIN})), 200, None)
        .await;
    c.expect(post("/a/guarded").json(&json!({"pin": 246813})), 200, None)
        .await;
    for _ in 0..4 {
        c.expect(
            post("/a/guarded").header("x-homehook-pin", "0000"),
            401,
            Some("wrong_pin"),
        )
        .await;
    }
    // The fifth wrong PIN locks the action, the right PIN included.
    c.expect(
        post("/a/guarded").header("x-homehook-pin", "0000"),
        429,
        Some("pin_locked"),
    )
    .await;
    c.expect(
        post("/a/guarded").header("x-homehook-pin", PIN),
        429,
        Some("pin_locked"),
    )
    .await;

    // The vendor fails; a GET-only action; a rate limit.
    c.expect(post("/a/flaky"), 503, Some("vendor_unavailable"))
        .await;
    c.expect(post("/a/reader"), 405, Some("method_not_allowed"))
        .await;
    c.expect(
        w.client
            .get(url("/a/reader?format=json"))
            .bearer_auth(&action_key),
        200,
        None,
    )
    .await;
    c.expect(post("/a/limited"), 200, None).await;
    c.expect(post("/a/limited"), 429, Some("rate_limited"))
        .await;

    // The store fails.
    store.down.store(true, Ordering::SeqCst);
    c.expect(admin("/status"), 503, Some("store_unavailable"))
        .await;
    c.expect(admin("/connect/home"), 503, Some("store_unavailable"))
        .await;
    c.expect(
        w.client.get(url("/callback/netatmo?state=s&code=c")),
        503,
        Some("store_unavailable"),
    )
    .await;
    c.expect(
        w.client.get(url("/a/reader")).bearer_auth(&action_key),
        503,
        Some("store_unavailable"),
    )
    .await;
    c.expect(
        post("/a/guarded").header("x-homehook-pin", PIN),
        503,
        Some("store_unavailable"),
    )
    .await;
    store.down.store(false, Ordering::SeqCst);

    // The vendor forgets the account: the owner must connect again.
    w.vendor.revoke_refresh_tokens();
    w.vendor.expire_access_tokens();
    w.clock.advance(4 * 3600);
    c.expect(
        w.client.get(url("/a/reader")).bearer_auth(&action_key),
        409,
        Some("reauth_needed"),
    )
    .await;
    c.expect(admin("/discover/home"), 409, Some("reauth_needed"))
        .await;
    let report = c.expect(admin("/status"), 200, None).await.json().unwrap();
    assert_eq!(health(&report, "home"), "reauth_needed", "{report}");

    // Wrong keys from one address: locked out, whatever the method.
    let mut locked = false;
    for _ in 0..20 {
        let a = c
            .send(w.client.post(url("/a/reader")).bearer_auth("hh_wrong"))
            .await;
        if a.status == 429 {
            assert_eq!(a.error_code().as_deref(), Some("source_locked"));
            locked = true;
            break;
        }
        assert_eq!(a.error_code().as_deref(), Some("unauthorized"));
    }
    assert!(locked, "repeated wrong keys lock the source out");
    // Its wrong keys, whatever the method (a valid key is never refused by a lockout).
    c.expect(
        w.client.put(url("/a/reader")).bearer_auth("hh_wrong_again"),
        429,
        Some("source_locked"),
    )
    .await;

    let seen = c.codes_seen();
    println!(
        "gated world: {} requests, {} error codes: {seen:?}",
        c.seen.lock().unwrap().len(),
        seen.len()
    );
}

#[tokio::test]
async fn without_an_admin_key_the_admin_routes_are_off() {
    let w = World::with_vendor(
        ManualClock::new(T0),
        (),
        "[server]\npublic_url = \"{public_url}\"\n",
        secrets_for("none", &FakeSettings::default()),
        Arc::new(MemoryStore::new()),
    )
    .await;
    let c = Checker::new(&w.client);
    let admin_key = w.keys.admin.expose().to_string();
    for path in ["/status", "/discover/home", "/connect/home"] {
        c.expect(
            w.client
                .get(format!("{}{path}", w.hh.base))
                .bearer_auth(&admin_key),
            403,
            Some("admin_disabled"),
        )
        .await;
    }
    let page = c
        .expect(w.client.get(format!("{}/", w.hh.base)), 200, None)
        .await;
    assert!(page.text().contains("No connections are configured yet"));
}

/// The checker itself refuses what the document does not allow.
#[test]
fn the_checker_refuses_undocumented_answers() {
    let doc = oa::load_document();
    let err = |body: Value| serde_json::to_vec(&body).unwrap();
    let ok = oa::check_response(
        &doc,
        "/a/{action}",
        "POST",
        401,
        &err(json!({"error": "missing_key", "message": "m"})),
    );
    assert_eq!(ok, Ok(()));
    for (path, method, status, body) in [
        // A status the operation does not list.
        (
            "/a/{action}",
            "POST",
            418,
            err(json!({"error": "missing_key", "message": "m"})),
        ),
        ("/healthz", "GET", 500, Vec::new()),
        // A code not in the Error enum, or not listed for that status.
        (
            "/a/{action}",
            "POST",
            401,
            err(json!({"error": "nope", "message": "m"})),
        ),
        (
            "/a/{action}",
            "POST",
            401,
            err(json!({"error": "not_found", "message": "m"})),
        ),
        (
            "/status",
            "GET",
            401,
            err(json!({"error": "body_too_large", "message": "m"})),
        ),
        // Missing required fields, or fields the schema does not have.
        (
            "/a/{action}",
            "POST",
            401,
            err(json!({"error": "missing_key"})),
        ),
        ("/a/{action}", "POST", 401, err(json!({"message": "m"}))),
        (
            "/a/{action}",
            "POST",
            401,
            err(json!({"error": "missing_key", "message": "m", "x": 1})),
        ),
        ("/a/{action}", "POST", 200, err(json!({"ok": true}))),
        // Text where only JSON is documented.
        ("/status", "GET", 401, b"Unauthorized".to_vec()),
        // Undocumented paths must be 404, and undocumented methods 405.
        ("/nothing", "GET", 200, Vec::new()),
        ("/healthz", "POST", 200, err(json!({"status": "ok"}))),
        (
            "/healthz",
            "POST",
            405,
            err(json!({"error": "not_found", "message": "m"})),
        ),
    ] {
        assert!(
            oa::check_response(&doc, path, method, status, &body).is_err(),
            "{method} {path} {status} {} is refused",
            String::from_utf8_lossy(&body)
        );
    }
    // Headers: a required Retry-After, a content type the document does not list.
    let mut answer = Answer {
        status: 503,
        headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
        body: err(json!({"error": "store_unavailable", "message": "m"})),
    };
    assert!(oa::check_answer(&doc, "/status", "GET", &answer).is_err());
    answer.headers.insert("retry-after".into(), "5".into());
    assert_eq!(oa::check_answer(&doc, "/status", "GET", &answer), Ok(()));
    answer
        .headers
        .insert("content-type".into(), "text/html".into());
    assert!(oa::check_answer(&doc, "/status", "GET", &answer).is_err());
}
