//! `homehook.toml`: connections, actions and server settings, checked completely at load time.
//!
//! Loading happens in two steps: serde reads the raw shape (unknown fields are errors, so a typo
//! never silently disables a setting), then `Config::from_raw` resolves references
//! (connection → provider, action → connection), parses templates and key hashes, and merges
//! provider overrides onto the built-in catalog. Every error names the file, the field and what
//! is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::catalog::{self, ClientAuth, ExpiredTokenSignal, Grant, ProviderSpec, TokenPlacement};
use crate::clock::UnixTime;
use crate::guard::keyring::{KeyEntry, KeyRing, KeyScope};
use crate::guard::limits::RateLimit;
use crate::keys::KeyHash;
use crate::template::is_identifier;

mod action;
mod connection;
pub mod edit;
mod schedule;
mod scopes;
mod server;
mod warnings;

pub use action::Action;
use action::{RawAction, build_action};
use connection::{RawConnection, build_connection};
pub use schedule::{DEFAULT_GRACE_SECS, Schedule};
use schedule::{RawSchedule, build_schedule};
pub use scopes::ScopeGap;
use server::{RawNotify, RawServer, build_notify, build_server};

/// Default lifetime of an OAuth `state` (and its PKCE verifier): 10 minutes.
pub const DEFAULT_STATE_TTL_SECS: i64 = 600;

/// A config file that cannot be used, with the file, the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct ConfigError {
    /// The file the error is in.
    pub file: String,
    /// Dotted path of the field (`actions.arm.connection`), or `(file)` for the whole file.
    pub field: String,
    /// What is wrong, in plain words.
    pub problem: String,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Server settings.
    pub server: ServerConfig,
    /// Every provider: the built-in catalog with config overrides, plus config-defined ones.
    pub providers: BTreeMap<String, ProviderSpec>,
    /// Connections by id.
    pub connections: BTreeMap<String, Connection>,
    /// Actions by name.
    pub actions: BTreeMap<String, Action>,
    /// Every key that opens actions: the actions' own and the `[keys.<id>]` ones.
    pub keys: KeyRing,
    /// Where the owner is told about connections that need them.
    pub notify: NotifyConfig,
    /// Actions fired at set times, by name.
    pub schedules: BTreeMap<String, Schedule>,
}

/// `[notify]`: telling the owner when a connection needs them or keeps failing.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// A webhook: the name of the secret entry holding its `url` (and `signing_key`).
    pub webhook_secret: Option<String>,
    /// The webhook's body format.
    pub format: WebhookFormat,
    /// Renewals failing this many times in a row make a "keeps failing" notification.
    pub failing_after: u32,
}

/// The body a webhook gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notification as JSON.
    #[default]
    Json,
    /// Slack (and Mattermost, Discord's `/slack` URLs): `{"text": …}`.
    Slack,
    /// ntfy: the message as the body, with `Title`, `Tags`, `Priority` and `Click` headers.
    Ntfy,
    /// Pushover's `messages.json`: token, user, title, message, url.
    Pushover,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address `homehook serve` listens on.
    pub listen: SocketAddr,
    /// The URL people and vendors reach homehook at; callback and action URLs start with it.
    pub public_url: Url,
    /// `public_url` was not set and follows `listen` (so a server on another port can adjust it).
    pub public_url_follows_listen: bool,
    /// Take the public URL from each connect request's `Host` (behind API Gateway, whose host
    /// the caller cannot choose): set by the Lambda wiring when no public URL is given, never
    /// from the file.
    pub public_url_from_host: bool,
    /// How the owner runs homehook's CLI for this host, for the hints in pages and messages:
    /// `homehook` here, `homehook --target <stack>` for a stack (set by the Lambda wiring, never
    /// from the file).
    pub command: String,
    /// Where the embedded store lives; `None` means the platform default.
    pub data_dir: Option<PathBuf>,
    /// Hash of the admin key that guards `/connect` and `/status`.
    pub admin_key_hash: Option<KeyHash>,
    /// Seconds between refresh ticks.
    pub refresh_interval_secs: u64,
    /// Refresh access tokens this many seconds before they expire, so actions never wait.
    pub refresh_margin_secs: i64,
    /// Local secrets file (TOML, mode 600).
    pub secrets_file: Option<PathBuf>,
    /// Lifetime of an OAuth `state`.
    pub state_ttl_secs: i64,
    /// Longest wait for any vendor answer (token endpoint or API).
    pub vendor_timeout_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` name the caller (empty: the peer
    /// is the caller, and those headers are ignored).
    pub trusted_proxies: Vec<crate::guard::limits::IpRange>,
}

/// `[connections.<id>]`: one account at one provider.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The connection's id.
    pub id: String,
    /// Name shown to people.
    pub label: String,
    /// Provider id (key of [`Config::providers`]).
    pub provider: String,
    /// Name of the secret holding the client credentials (and username/password for the
    /// password grant).
    pub secret: String,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Grant used to connect.
    pub grant: Grant,
    /// Homey only: which Homey of the account (its name or id), when it has several.
    pub homey: Option<String>,
}

/// `[actions.<name>]`: one secret URL.
// ---- raw shapes, as written in the file ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    connections: BTreeMap<String, RawConnection>,
    #[serde(default)]
    actions: BTreeMap<String, RawAction>,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    schedules: BTreeMap<String, RawSchedule>,
}

/// `[keys.<id>]`: one key for several actions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    hash: String,
    actions: Vec<String>,
    expires: Option<String>,
    #[serde(default)]
    revoked: bool,
    rate_limit: Option<RateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    display_name: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    api_base: Option<String>,
    grants: Option<Vec<Grant>>,
    client_auth: Option<ClientAuth>,
    scopes: Option<Vec<String>>,
    token_placement: Option<TokenPlacement>,
    expired_token: Option<Vec<ExpiredTokenSignal>>,
    pkce: Option<bool>,
    scope_separator: Option<String>,
    token_budget: Option<catalog::CallBudget>,
    api_budget: Option<Vec<catalog::CallBudget>>,
    refresh_token_lifetime_days: Option<u32>,
}

impl Config {
    /// The configuration used when there is no file: no connections, no actions, defaults.
    pub fn empty() -> Result<Self, ConfigError> {
        Self::from_raw(RawConfig::default(), "(defaults)", None)
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            field: "(file)".into(),
            problem: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &file, Some(path))
    }

    /// Parses and checks config text; `file` names it in errors. Relative paths in the config
    /// are taken from the directory of `path`.
    pub fn parse(text: &str, file: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let err = |field: String, problem: String| ConfigError {
            file: file.to_string(),
            field,
            problem,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let problem = e.message().to_string();
            let field = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    format!("line {line}")
                }
                None => "(file)".into(),
            };
            err(field, problem)
        })?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let field = e.path().to_string();
                err(
                    if field == "." { "(file)".into() } else { field },
                    e.into_inner().message().to_string(),
                )
            })?;
        Self::from_raw(raw, file, path)
    }

    fn from_raw(raw: RawConfig, file: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let err = |field: &str, problem: String| ConfigError {
            file: file.to_string(),
            field: field.to_string(),
            problem,
        };
        let base_dir = path.and_then(Path::parent).map(Path::to_path_buf);

        let server = build_server(raw.server, base_dir.as_deref()).map_err(|(f, p)| err(&f, p))?;
        let notify = build_notify(raw.notify).map_err(|(f, p)| err(&f, p))?;

        // [providers]: the catalog, with overrides merged in and new providers added.
        let mut providers: BTreeMap<String, ProviderSpec> = crate::providers::specs()
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        for (id, rp) in raw.providers {
            let field = |name: &str| format!("providers.{id}.{name}");
            if !is_identifier(&id) {
                return Err(err(&format!("providers.{id}"), bad_name()));
            }
            let spec = match providers.remove(&id) {
                Some(base) => merge_provider(base, rp, &field).map_err(|(f, p)| err(&f, p))?,
                None => new_provider(&id, rp, &field).map_err(|(f, p)| err(&f, p))?,
            };
            providers.insert(id, spec);
        }

        let mut connections = BTreeMap::new();
        for (id, rc) in raw.connections {
            if !is_identifier(&id) {
                return Err(err(&format!("connections.{id}"), bad_name()));
            }
            let connection =
                build_connection(id.clone(), rc, &providers).map_err(|(f, p)| err(&f, p))?;
            connections.insert(id, connection);
        }

        // [actions]
        let mut actions = BTreeMap::new();
        for (name, ra) in raw.actions {
            if !is_identifier(&name) {
                return Err(err(&format!("actions.{name}"), bad_name()));
            }
            let action =
                build_action(&name, ra, &connections, &providers).map_err(|(f, p)| err(&f, p))?;
            actions.insert(name, action);
        }
        scopes::add_needed_scopes(&mut connections, &actions, &providers);

        let keys = build_keys(raw.keys, &actions).map_err(|(f, p)| err(&f, p))?;

        // [schedules]
        let mut schedules = BTreeMap::new();
        for (name, rs) in raw.schedules {
            if !is_identifier(&name) {
                return Err(err(&format!("schedules.{name}"), bad_name()));
            }
            let schedule = build_schedule(&name, rs, &actions).map_err(|(f, p)| err(&f, p))?;
            schedules.insert(name, schedule);
        }

        Ok(Self {
            source: path.map(Path::to_path_buf),
            server,
            providers,
            connections,
            actions,
            keys,
            notify,
            schedules,
        })
    }

    /// Where the owner (re)connects `connection`: `<public_url>/connect/<id>`, for connections
    /// the owner connects in a browser. `None` for password-grant connections, and behind API
    /// Gateway without a configured public URL, where the address is only known per request.
    pub fn reconnect_url(&self, connection: &Connection) -> Option<String> {
        if connection.grant != Grant::AuthorizationCode || self.server.public_url_from_host {
            return None;
        }
        self.server
            .public_url
            .join(&format!("connect/{}", connection.id))
            .ok()
            .map(String::from)
    }

    /// The provider of a connection.
    pub fn provider_of(&self, connection: &Connection) -> Option<&ProviderSpec> {
        self.providers.get(&connection.provider)
    }

    /// The redirect URI registered with a provider: `{public_url}/callback/{provider}`.
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/callback/{provider}", self.base_url())
    }

    /// The public base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }
}

type FieldError = (String, String);

/// The key ring: each action's own keys, then the named `[keys.<id>]`; every action must be
/// opened by at least one key that is not revoked.
fn build_keys(
    raw: BTreeMap<String, RawKey>,
    actions: &BTreeMap<String, Action>,
) -> Result<KeyRing, FieldError> {
    let mut entries = Vec::new();
    for action in actions.values() {
        for hash in &action.key_hashes {
            entries.push(KeyEntry {
                id: format!("{}:{}", action.name, hash.key_id()),
                hash: hash.clone(),
                scope: KeyScope::Actions([action.name.clone()].into()),
                expires: None,
                revoked: false,
                // The action's own key is limited like the action.
                rate_limit: action.rate_limit,
            });
        }
    }
    for (id, rk) in raw {
        let field = |name: &str| format!("keys.{id}.{name}");
        if !is_identifier(&id) {
            return Err((format!("keys.{id}"), bad_name()));
        }
        let hash = rk
            .hash
            .parse::<KeyHash>()
            .map_err(|e| (field("hash"), e.to_string()))?;
        let scope = if rk.actions.iter().any(|a| a == "*") {
            KeyScope::All
        } else {
            if rk.actions.is_empty() {
                return Err((
                    field("actions"),
                    "list the actions it opens, or [\"*\"] for all".into(),
                ));
            }
            if let Some(unknown) = rk.actions.iter().find(|a| !actions.contains_key(*a)) {
                return Err((
                    field("actions"),
                    format!(
                        "unknown action \"{unknown}\" (known: {})",
                        actions.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            KeyScope::Actions(rk.actions.into_iter().collect())
        };
        let expires = rk
            .expires
            .map(|text| {
                text.parse::<jiff::Timestamp>()
                    .map(|t| UnixTime(t.as_second()))
                    .map_err(|_| {
                        (
                            field("expires"),
                            "expected an RFC 3339 time such as \"2026-12-01T00:00:00Z\"".into(),
                        )
                    })
            })
            .transpose()?;
        let rate_limit = rk.rate_limit.unwrap_or_default();
        rate_limit
            .validate()
            .map_err(|p| (field("rate_limit"), p))?;
        entries.push(KeyEntry {
            id,
            hash,
            scope,
            expires,
            revoked: rk.revoked,
            rate_limit,
        });
    }
    let ring = KeyRing::new(entries);
    if let Some(locked) = actions.keys().find(|a| !ring.opens(a)) {
        // A revocation is of the key, everywhere: an action whose keys are all revoked under
        // some [keys.<id>] is opened by nothing, and the owner is told which entry revoked them.
        let revoked_by = actions[locked]
            .key_hashes
            .iter()
            .find_map(|h| ring.revoked_as(h));
        let why = match revoked_by {
            Some(id) => format!(
                "no key opens this action: its key_hash is revoked under keys.{id} (a revoked key opens nothing, wherever else it is listed); make a new key with `homehook key new --for {locked}`"
            ),
            None => "no key opens this action: set key_hash (from `homehook key new`) or list it in a [keys.<id>] actions list".into(),
        };
        return Err((format!("actions.{locked}.key_hash"), why));
    }
    Ok(ring)
}

fn bad_name() -> String {
    "names may use only letters, digits, '_' and '-' (at most 64), starting with a letter or digit"
        .into()
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn checked_url(value: String, field: String) -> Result<String, FieldError> {
    parse_http_url(&value).map_err(|p| (field, p))?;
    Ok(value)
}

fn merge_provider(
    mut base: ProviderSpec,
    rp: RawProvider,
    field: &dyn Fn(&str) -> String,
) -> Result<ProviderSpec, FieldError> {
    if let Some(v) = rp.display_name {
        base.display_name = v;
    }
    if let Some(v) = rp.authorize_url {
        base.authorize_url = Some(checked_url(v, field("authorize_url"))?);
    }
    if let Some(v) = rp.token_url {
        base.token_url = checked_url(v, field("token_url"))?;
    }
    if let Some(v) = rp.api_base {
        base.api_base = checked_url(v, field("api_base"))?;
    }
    if let Some(v) = rp.grants {
        base.grants = v;
    }
    if let Some(v) = rp.client_auth {
        base.client_auth = v;
    }
    if let Some(v) = rp.scopes {
        base.default_scopes = v;
    }
    if let Some(v) = rp.token_placement {
        base.token_placement = v;
    }
    if let Some(v) = rp.expired_token {
        base.expired_token = v;
    }
    if let Some(v) = rp.pkce {
        base.pkce = if v {
            catalog::Pkce::Supported
        } else {
            catalog::Pkce::Off
        };
    }
    if let Some(v) = rp.scope_separator {
        base.scope_separator = match v.as_str() {
            " " => ' ',
            "," => ',',
            _ => {
                return Err((
                    field("scope_separator"),
                    "a space (\" \") or a comma (\",\")".into(),
                ));
            }
        };
    }
    if let Some(v) = rp.token_budget {
        if v.max == 0 || v.window_secs <= 0 {
            return Err((
                field("token_budget"),
                "max and window_secs must be at least 1".into(),
            ));
        }
        base.refresh.token_budget = Some(v);
    }
    if let Some(budget) = rp.api_budget {
        if budget.iter().any(|b| b.max == 0 || b.window_secs <= 0) {
            return Err((
                field("api_budget"),
                "each entry's max and window_secs must be at least 1".into(),
            ));
        }
        base.api_budget = budget;
    }
    if let Some(days) = rp.refresh_token_lifetime_days {
        if days == 0 {
            return Err((
                field("refresh_token_lifetime_days"),
                "must be at least 1".into(),
            ));
        }
        base.refresh.refresh_token_lifetime_secs = Some(i64::from(days) * 24 * 3600);
    }
    if base.grants.is_empty() {
        return Err((field("grants"), "list at least one grant".into()));
    }
    Ok(base)
}

fn new_provider(
    id: &str,
    rp: RawProvider,
    field: &dyn Fn(&str) -> String,
) -> Result<ProviderSpec, FieldError> {
    let required = |v: Option<String>, name: &str| {
        v.ok_or_else(|| {
            (
                field(name),
                format!(
                    "required: \"{id}\" is not a built-in provider, so it must be defined fully"
                ),
            )
        })
    };
    let token_url = required(rp.token_url.clone(), "token_url")?;
    let api_base = required(rp.api_base.clone(), "api_base")?;
    let grants = rp
        .grants
        .clone()
        .unwrap_or_else(|| vec![Grant::AuthorizationCode]);
    let base = ProviderSpec {
        id: id.to_string(),
        display_name: id.to_string(),
        authorize_url: None,
        token_url,
        api_base,
        grants,
        client_auth: ClientAuth::Basic,
        default_scopes: vec![],
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 401,
            pointer: None,
            equals: None,
        }],
        pkce: catalog::Pkce::Unverified,
        scope_separator: ' ',
        kind: catalog::VendorKind::STANDARD,
        refresh: catalog::RefreshPolicy::default(),
        api_budget: vec![],
    };
    let spec = merge_provider(base, rp, field)?;
    checked_url(spec.token_url.clone(), field("token_url"))?;
    checked_url(spec.api_base.clone(), field("api_base"))?;
    if spec.grants.contains(&Grant::AuthorizationCode) && spec.authorize_url.is_none() {
        return Err((
            field("authorize_url"),
            "required for the authorization_code grant".into(),
        ));
    }
    Ok(spec)
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "homehook.toml", None)
    }

    #[test]
    fn empty_config_has_defaults_and_the_catalog() {
        let c = Config::empty().expect("defaults are valid");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert!(c.providers.contains_key("netatmo"));
        assert_eq!(
            c.callback_url("netatmo"),
            "http://127.0.0.1:8080/callback/netatmo"
        );
    }

    #[test]
    fn two_connections_to_one_provider() {
        let c = parse(&format!(
            r#"
            [connections.home]
            provider = "netatmo"
            [connections.cottage]
            provider = "netatmo"
            secret = "netatmo"
            scopes = ["read_station"]
            [actions.away]
            connection = "cottage"
            path = "/api/setthermmode"
            query = {{ home_id = "h1", mode = "{{mode}}" }}
            params.mode = {{ type = "enum", values = ["away", "schedule"], default = "away" }}
            key_hash = "{HASH}"
            "#
        ))
        .expect("valid");
        assert_eq!(c.connections.len(), 2);
        assert_eq!(c.connections["cottage"].scopes, ["read_station"]);
        assert_eq!(c.connections["home"].grant, Grant::AuthorizationCode);
        assert_eq!(c.actions["away"].methods, [http::Method::POST]);
    }

    #[test]
    fn errors_name_file_field_and_problem() {
        let cases = [
            (
                "[connections.a]\nprovider = \"nope\"",
                "connections.a.provider",
                "unknown provider",
            ),
            (
                "[server]\nlisten = \"everywhere\"",
                "server.listen",
                "address",
            ),
            (
                "[server]\nadmin_key_hash = \"abc\"",
                "server.admin_key_hash",
                "sha256",
            ),
            ("[server]\nlisten = 8080", "server.listen", "invalid type"),
            ("[server]\nlsiten = \"x\"", "server.lsiten", "unknown field"),
            ("[connections.a\nprovider=1", "line 1", ""),
            (
                "[connections.a]\nprovider = \"netatmo\"\ngrant = \"password\"",
                "connections.a.grant",
                "does not support",
            ),
            (
                &format!("[actions.x]\nconnection = \"none\"\npath = \"/\"\nkey_hash = \"{HASH}\""),
                "actions.x.connection",
                "unknown connection",
            ),
            (
                &format!(
                    "[connections.c]\nprovider = \"netatmo\"\n[actions.x]\nconnection = \"c\"\npath = \"/d/{{dev}}\"\nkey_hash = \"{HASH}\""
                ),
                "actions.x.path",
                "not a declared parameter",
            ),
            (
                &format!(
                    "[connections.c]\nprovider = \"netatmo\"\n[actions.x]\nconnection = \"c\"\npath = \"/d\"\nmethods = [\"DELETE\"]\nkey_hash = \"{HASH}\""
                ),
                "actions.x.methods",
                "POST",
            ),
            (
                "[providers.mine]\ntoken_url = \"https://t.example/token\"",
                "providers.mine.api_base",
                "required",
            ),
            (
                &format!(
                    "[connections.c]\nprovider = \"netatmo\"\n[actions.x]\nconnection = \"c\"\npath = \"/d\"\nparams.a = {{ type = \"string\" }}\nifttt = [\"a\", \"b\"]\nkey_hash = \"{HASH}\""
                ),
                "actions.x.ifttt[1]",
                "not a parameter callers may send",
            ),
        ];
        for (text, field, problem) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.file, "homehook.toml");
            assert_eq!(e.field, field, "{text} -> {e}");
            assert!(e.problem.contains(problem), "{text} -> {e}");
        }
    }

    #[test]
    fn config_can_override_a_builtin_provider_and_define_a_generic_one() {
        let c = parse(
            r#"
            [providers.netatmo]
            token_url = "http://127.0.0.1:9/oauth2/token"
            [providers.acme]
            display_name = "Acme Cloud"
            authorize_url = "https://acme.example/authorize"
            token_url = "https://acme.example/token"
            api_base = "https://api.acme.example"
            client_auth = "form"
            token_placement = { query = "access_token" }
            expired_token = [{ status = 401 }]
            "#,
        )
        .expect("valid");
        assert_eq!(
            c.providers["netatmo"].token_url,
            "http://127.0.0.1:9/oauth2/token"
        );
        assert_eq!(c.providers["netatmo"].api_base, "https://api.netatmo.com");
        let acme = &c.providers["acme"];
        assert_eq!(acme.client_auth, ClientAuth::Form);
        assert_eq!(
            acme.token_placement,
            TokenPlacement::Query("access_token".into())
        );
        assert_eq!(acme.grants, [Grant::AuthorizationCode]);
    }

    #[test]
    fn the_example_config_in_the_repo_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../homehook.example.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.connections.len() >= 2);
        assert!(!c.actions.is_empty());
    }
}
