//! The server itself, round two: slow headers, idle and exhausted connections, h2c, forged log
//! lines, a vendor's words in an error, what `/` shows.
//!
//! Timeouts, the connection cap, h2c and the log's format belong to `homehook serve` and are
//! tested against the real binary in `functions/cli/tests/server_limits.rs`; here is what the
//! core decides: what it logs of a caller's path, what a vendor's error text may carry to the
//! caller, what the public page shows, and which built-ins are sensitive.

use std::sync::Mutex;

use axum::Router;
use axum::response::IntoResponse;
use homehook_core::App;
use homehook_core::config::Config;
use homehook_core::live::Live;
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor, OAuthHandle};

#[allow(unused_imports)]
use super::*;

/// A log sink for one test: what a `tracing` subscriber on this thread wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The red team's a16_loginject against the core: the unauthenticated `/callback/{provider}`
/// segment with a newline, an ESC colour sequence and a fake log line after it. The core's own
/// log line (here with tracing-subscriber's plain formatter, as a library user would have it)
/// holds the value escaped: one line, no raw control character.
// One thread: the server task runs where this test's subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn a_forged_callback_path_stays_on_one_escaped_log_line() {
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = scene().await;
    let forged = "x%0A%1B[31mFORGED-2026-01-01T00:00:00Z%20INFO%20homehook_core::http:%20admin%20login%20ok%0D%C2%9B";
    let r =
        s.w.client
            .get(format!("{}/callback/{forged}", s.w.hh.base))
            .send()
            .await
            .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("connect failed"))
        .unwrap_or_else(|| panic!("no 'connect failed' line in:\n{text}"));
    assert!(
        line.contains(r"x\n\u{1b}[31mFORGED"),
        "the provider segment is logged escaped: {line:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a forged line:\n{text}"
    );
    assert!(
        !text.contains(['\u{1b}', '\r', '\u{9b}']),
        "raw control characters in the log: {text:?}"
    );
}

/// A vendor API whose error message echoes the request's access token three ways (bare, as a
/// bearer header, as a query parameter), as the red team's hostile vendor did (§10).
fn leaky_api(oauth: OAuthHandle) -> Router {
    Router::new().route(
        "/api/leak",
        axum::routing::post(move |request: axum::extract::Request| {
            let oauth = oauth.clone();
            async move {
                let (parts, _) = request.into_parts();
                let token = OAuthHandle::token_of(&parts).unwrap_or_default();
                assert_eq!(oauth.access(Some(&token)), homehook_tests::fake_vendor::Access::Valid);
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": {"code": 21, "message": format!(
                        "Invalid device for token {token} (Authorization: Bearer {token}; url ?access_token={token})"
                    )}})),
                )
                    .into_response()
            }
        }),
    )
}

#[tokio::test]
async fn a_vendor_echoing_the_token_does_not_hand_it_to_the_caller() {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start_with(clock.clone(), settings.clone(), leaky_api).await;
    let config = format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.netatmo]
authorize_url = "{v}/oauth2/authorize"
token_url = "{v}/oauth2/token"
api_base = "{v}"

[connections.home]
provider = "netatmo"
secret = "netatmo"

[actions.leak]
connection = "home"
path = "/api/leak"
key_hash = "{{key}}"
"#,
        v = vendor.base
    );
    let w = World::with_vendor(
        clock,
        vendor,
        &config,
        secrets_for("netatmo", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_eq!(w.connect("home").await.status(), 200);
    let token =
        w.hh.store
            .get_token("home")
            .await
            .unwrap()
            .expect("connected")
            .access_token
            .expose()
            .to_string();
    let r = w.act("leak", json!({})).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert_eq!(error_of(&body), "vendor_rejected");
    assert!(
        !body.contains(&token) && !body.contains(token.split('|').nth(1).unwrap_or(&token)),
        "the access token reached the caller: {body}"
    );
    assert!(
        body.contains("Invalid device for token"),
        "the vendor's words are kept: {body}"
    );
}

/// Serves `config` on `127.0.0.1:port` (a port its `public_url` already names); its base URL
/// and the task to abort.
async fn serve_at(config: Config, port: u16) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Arc::new(App::new(
        Services::new(
            config,
            Arc::new(MemoryStore::new()),
            Arc::new(LocalSecrets::default()),
            Arc::new(ManualClock::new(T0)),
        )
        .unwrap(),
    ));
    let router = homehook_core::http::router(Live::fixed(app))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

#[tokio::test]
async fn the_public_page_does_not_show_where_the_config_lives() {
    // The port is known before the server binds it, so the page's own Host is accepted.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let folder = "/home/alice/private-homehook-setup";
    let path = std::path::PathBuf::from(format!("{folder}/homehook.toml"));
    let text = format!(
        r#"
[server]
public_url = "http://127.0.0.1:{port}"

[connections.home]
provider = "netatmo"
secret = "netatmo"
"#
    );
    let config = Config::parse(&text, &path.display().to_string(), Some(&path)).unwrap();
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    let (base, task) = serve_at(config, port).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("homehook.toml"), "{html}");
    assert!(
        !html.contains(folder) && !html.contains("alice"),
        "the page shows the config's folder to anyone: {html}"
    );
    task.abort();
}

fn somfy_config(extra: &str) -> String {
    format!(
        r#"
[providers.somfy_protect]
token_url = "http://127.0.0.1:9/oauth/oauth/v2/token/jwt"
api_base = "http://127.0.0.1:9"

[connections.alarm]
provider = "somfy_protect"
secret = "somfy"

[keys.phone]
hash = "{key}"
actions = ["*"]
{extra}"#,
        key = ActionKey::generate().hash()
    )
}

#[tokio::test]
async fn a_disarm_made_callable_by_get_is_warned_about_at_load() {
    let text = somfy_config(&format!(
        r#"
[actions.disarm_link]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "{SITE}" }}
sensitive = false
methods = ["GET", "POST"]

[actions.disarm_post]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "{SITE}" }}
sensitive = false

[actions.disarm]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "{SITE}" }}
"#
    ));
    let config = Config::parse(&text, "homehook.toml", None).expect("the config loads");
    let warnings = config.warnings();
    let about = |field: &str| {
        warnings
            .iter()
            .filter(|w| w.starts_with(field))
            .cloned()
            .collect::<Vec<_>>()
    };
    let get = about("actions.disarm_link.methods");
    assert_eq!(get.len(), 1, "{warnings:#?}");
    assert!(
        get[0].contains("GET") && get[0].contains("disarmed"),
        "{get:?}"
    );
    assert_eq!(
        about("actions.disarm_post.sensitive").len(),
        1,
        "{warnings:#?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("actions.disarm.")),
        "the default is not warned about: {warnings:#?}"
    );
}

#[tokio::test]
async fn silencing_the_siren_is_sensitive_by_default() {
    let action = |extra: &str| {
        somfy_config(&format!(
            r#"
[actions.siren_off]
connection = "alarm"
builtin = "notif_off"
with = {{ site_id = "{SITE}", siren_id = "siren-1" }}
{extra}"#
        ))
    };
    let config = Config::parse(&action(""), "homehook.toml", None).unwrap();
    let siren_off = &config.actions["siren_off"];
    assert!(siren_off.sensitive, "notif_off is sensitive by default");
    assert_eq!(siren_off.methods, vec![axum::http::Method::POST]);
    // Sensitive means a link preview can never run it.
    let refused = Config::parse(
        &action(r#"methods = ["GET", "POST"]"#),
        "homehook.toml",
        None,
    )
    .expect_err("GET on a sensitive action");
    assert_eq!(refused.field, "actions.siren_off.methods");
    // The owner may still opt out, and is told.
    let opted_out = Config::parse(&action("sensitive = false"), "homehook.toml", None).unwrap();
    assert!(!opted_out.actions["siren_off"].sensitive);
    assert!(
        opted_out
            .warnings()
            .iter()
            .any(|w| w.starts_with("actions.siren_off.sensitive")),
        "{:?}",
        opted_out.warnings()
    );
}
