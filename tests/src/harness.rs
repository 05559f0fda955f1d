//! Runs homehook's router on a loopback port, configured against a fake vendor.

use std::collections::BTreeMap;
use std::sync::Arc;

use homehook_core::App;
use homehook_core::clock::{ManualClock, UnixTime};
use homehook_core::config::Config;
use homehook_core::keys::ActionKey;
use homehook_core::live::Live;
use homehook_core::secrets::{ClientCredentials, LocalSecrets};
use homehook_core::services::Services;
use homehook_core::store::Store;

use crate::fake_vendor::{FakeSettings, FakeVendor};

/// A fixed start time for tests: 2023-11-14T22:13:20Z.
pub const T0: UnixTime = UnixTime(1_700_000_000);

/// homehook running on loopback; stops when dropped.
#[derive(Debug)]
pub struct Homehook {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The services, to look into the config or run a tick.
    pub app: Arc<App>,
    /// The store, to look into.
    pub store: Arc<dyn Store>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Homehook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Homehook {
    /// Starts homehook with `config_toml`, where `{public_url}` is replaced by its own address.
    pub async fn start(
        config_toml: &str,
        store: Arc<dyn Store>,
        secrets: LocalSecrets,
        clock: ManualClock,
    ) -> Result<Self, homehook_core::config::ConfigError> {
        crate::leak_watch::init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind homehook");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let text = config_toml.replace("{public_url}", &base);
        let config = Config::parse(&text, "test.toml", None)?;
        let app = Arc::new(App::new(
            Services::new(config, store, Arc::new(secrets), Arc::new(clock)).expect("app"),
        ));
        let router = homehook_core::http::router(Live::fixed(Arc::clone(&app)))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let store = Arc::clone(&app.services.store);
        Ok(Self {
            base,
            app,
            store,
            task,
        })
    }
}

/// Keys a test holds.
#[derive(Debug)]
pub struct Keys {
    /// The admin key.
    pub admin: ActionKey,
    /// The key of every action in [`netatmo_config`].
    pub action: ActionKey,
}

impl Keys {
    /// Fresh keys.
    pub fn new() -> Self {
        let keys = Self {
            admin: ActionKey::generate(),
            action: ActionKey::generate(),
        };
        crate::leak_watch::issued("admin_key", keys.admin.expose());
        crate::leak_watch::issued("action_key", keys.action.expose());
        keys
    }
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

/// A config with two connections to the built-in Netatmo provider, redirected to `vendor`,
/// and a few actions.
pub fn netatmo_config(vendor: &str, keys: &Keys) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{admin}"
refresh_margin_secs = 300

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[connections.cottage]
provider = "netatmo"
label = "Cottage"
secret = "netatmo"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "{{mode}}" }}
params.mode = {{ type = "enum", values = ["schedule", "away", "hg"], default = "away" }}
answer = "Heating set to {{{{ mode }}}}"
key_hash = "{action}"
# Tests fire a dozen of these at once.
rate_limit = {{ burst = 100, per_minute = 6000 }}

[actions.cottage_heating]
connection = "cottage"
path = "/api/setthermmode"
query = {{ home_id = "h2", mode = "{{mode}}" }}
params.mode = {{ type = "enum", values = ["schedule", "away", "hg"] }}
key_hash = "{action}"

[actions.room]
connection = "home"
path = "/api/setroomthermpoint"
body = {{ home = {{ id = "h1", room = "{{room}}", temp = "{{temp}}" }} }}
params.room = {{ type = "string", max_len = 32 }}
params.temp = {{ type = "number", min = 7, max = 30 }}
key_hash = "{action}"

[actions.temperature]
connection = "home"
method = "GET"
path = "/api/getstationsdata"
answer = "Living room {{{{ data.body.devices[0].dashboard_data.Temperature }}}} °C"
methods = ["GET", "POST"]
key_hash = "{action}"

[actions.bad_device]
connection = "home"
path = "/api/fail/400"
key_hash = "{action}"
"#,
        admin = keys.admin.hash(),
        action = keys.action.hash(),
    )
}

/// Secrets matching a fake's settings, under the name `name`.
pub fn secrets_for(name: &str, settings: &FakeSettings) -> LocalSecrets {
    let creds = ClientCredentials {
        client_id: settings.client_id.clone(),
        client_secret: Some(homehook_core::sensitive::SecretString::new(
            settings.client_secret.clone(),
        )),
        username: Some(settings.account.0.clone()),
        password: Some(homehook_core::sensitive::SecretString::new(
            settings.account.1.clone(),
        )),
    };
    LocalSecrets::from_entries(BTreeMap::from([(name.to_string(), creds)]))
}

/// A fake vendor and homehook configured against it, sharing one clock.
#[derive(Debug)]
pub struct World<V = FakeVendor> {
    /// The shared clock.
    pub clock: ManualClock,
    /// The fake vendor.
    pub vendor: V,
    /// homehook.
    pub hh: Homehook,
    /// Keys.
    pub keys: Keys,
    /// An HTTP client that does not follow redirects.
    pub client: reqwest::Client,
}

impl World<FakeVendor> {
    /// Starts both on the given store.
    pub async fn start(store: Arc<dyn Store>, settings: FakeSettings) -> Self {
        crate::leak_watch::init();
        let clock = ManualClock::new(T0);
        let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
        let keys = Keys::new();
        let config = netatmo_config(&vendor.base, &keys);
        Self::with_keys(
            clock,
            vendor,
            &config,
            secrets_for("netatmo", &settings),
            store,
            keys,
        )
        .await
    }
}

impl<V> World<V> {
    /// homehook beside `vendor`, with `config` where `{public_url}`, `{admin}` (the admin key's
    /// hash) and `{key}` (the action key's hash) are filled in.
    pub async fn with_vendor(
        clock: ManualClock,
        vendor: V,
        config: &str,
        secrets: LocalSecrets,
        store: Arc<dyn Store>,
    ) -> Self {
        crate::leak_watch::init();
        let keys = Keys::new();
        let config = config
            .replace("{admin}", &keys.admin.hash().to_string())
            .replace("{key}", &keys.action.hash().to_string());
        Self::with_keys(clock, vendor, &config, secrets, store, keys).await
    }

    async fn with_keys(
        clock: ManualClock,
        vendor: V,
        config: &str,
        secrets: LocalSecrets,
        store: Arc<dyn Store>,
        keys: Keys,
    ) -> Self {
        let hh = Homehook::start(config, store, secrets, clock.clone())
            .await
            .expect("config is valid");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            clock,
            vendor,
            hh,
            keys,
            client,
        }
    }

    /// `GET {path}` with the admin key.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.hh.base))
            .bearer_auth(self.keys.admin.expose())
            .send()
            .await
            .expect("admin request")
    }

    /// The status report of one connection.
    pub async fn connection_status(&self, connection: &str) -> serde_json::Value {
        let report: serde_json::Value = self.admin_get("/status").await.json().await.expect("json");
        report["connections"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == connection))
            .cloned()
            .expect("connection in the report")
    }

    /// `POST /a/{action}` and the answer's status and text.
    pub async fn act_text(&self, action: &str, body: serde_json::Value) -> (u16, String) {
        let r = self.act(action, body).await;
        (r.status().as_u16(), r.text().await.expect("text"))
    }

    /// `POST /a/{action}` and the answer's status and JSON.
    pub async fn act_json(
        &self,
        action: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}/a/{action}?format=json", self.hh.base))
            .bearer_auth(self.keys.action.expose())
            .json(&body)
            .send()
            .await
            .expect("action");
        (r.status().as_u16(), r.json().await.expect("json"))
    }

    /// `GET /connect/{connection}` with the admin key; returns the Location (vendor authorize URL).
    pub async fn start_connect(&self, connection: &str) -> String {
        let r = self
            .client
            .get(format!("{}/connect/{connection}", self.hh.base))
            .bearer_auth(self.keys.admin.expose())
            .send()
            .await
            .expect("connect");
        assert_eq!(r.status(), 302, "connect redirects: {:?}", r.text().await);
        location(&r)
    }

    /// Follows the vendor's authorize URL; returns homehook's callback URL it redirects to.
    pub async fn consent(&self, authorize_url: &str) -> String {
        let r = self
            .client
            .get(authorize_url)
            .send()
            .await
            .expect("authorize");
        assert!(r.status().is_redirection(), "authorize redirects");
        location(&r)
    }

    /// Connects `connection` end to end; returns the callback's answer.
    pub async fn connect(&self, connection: &str) -> reqwest::Response {
        let authorize = self.start_connect(connection).await;
        let callback = self.consent(&authorize).await;
        self.client
            .get(callback)
            .header("accept", "text/html")
            .send()
            .await
            .expect("callback")
    }

    /// `POST /a/{action}` with the action key and a JSON body.
    pub async fn act(&self, action: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/a/{action}", self.hh.base))
            .bearer_auth(self.keys.action.expose())
            .json(&body)
            .send()
            .await
            .expect("action")
    }
}

/// The `Location` header of a redirect.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_string()
}

/// The vendor's token endpoint starts answering 429 (its budget is spent) just as the access
/// token expires: `action` must answer 503 with the vendor's `Retry-After`, and asking again
/// must not call the token endpoint before that time.
pub async fn token_endpoint_rate_limit_is_honoured<V>(
    w: &World<V>,
    oauth: &FakeVendor,
    action: &str,
) {
    oauth.update(|s| {
        s.token_budget = Some(crate::fake_vendor::CallBudget {
            max: 0,
            window_secs: 600,
        })
    });
    oauth.expire_access_tokens();
    w.clock.advance(60);
    let r = w.act(action, serde_json::json!({})).await;
    assert_eq!(r.status(), 503, "{action} waits for the token endpoint");
    assert_eq!(r.headers()["retry-after"], "600");
    let calls = oauth.token_calls();
    assert_eq!(w.act(action, serde_json::json!({})).await.status(), 503);
    assert_eq!(
        oauth.token_calls(),
        calls,
        "no second token request before the retry time"
    );
    oauth.update(|s| s.token_budget = None);
    w.clock.advance(600);
    assert_eq!(w.act(action, serde_json::json!({})).await.status(), 200);
}

/// The ids a `/discover` answer lists under a `with` key.
pub fn discovered_ids(found: &serde_json::Value, key: &str) -> Vec<String> {
    found["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["key"] == key)
        .flat_map(|s| s["items"].as_array().into_iter().flatten())
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect()
}

/// `$CARGO_TARGET_DIR/reports` (the workspace's `target/reports` without it): where tests leave
/// what `infra/test` prints or points to.
pub fn reports_dir() -> std::path::PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("reports")
}

/// Writes a figures report to `$CARGO_TARGET_DIR/reports/<name>.md` (the workspace's
/// `target/` without it), where `infra/test` prints it from.
pub fn write_report(name: &str, text: &str) {
    let dir = reports_dir();
    std::fs::create_dir_all(&dir).expect("reports dir");
    std::fs::write(dir.join(format!("{name}.md")), text).expect("write report");
}
