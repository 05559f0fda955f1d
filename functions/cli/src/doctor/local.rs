//! The checks that need no network: the config, the secrets, the admin key, the public URL,
//! the redirect URIs, and each connection's stored token.

use std::path::Path;

use homehook_core::catalog::Grant;
use homehook_core::config::Connection;
use homehook_core::secrets::{LocalSecrets, SecretsError};
use homehook_core::token::Health;
use homehook_core::{App, Config};

use super::Check;
use crate::{settings, starter, when};

/// Loads the config; `None` (after a FAIL) when it cannot be used.
pub(super) fn config(path: Option<&Path>, checks: &mut Vec<Check>) -> Option<Config> {
    let named = path.map(Path::to_path_buf).or_else(|| {
        Path::new("homehook.toml")
            .exists()
            .then(|| "homehook.toml".into())
    });
    let Some(path) = named else {
        checks.push(Check::warn(
            "config",
            "no homehook.toml here and no --config: running on built-in defaults, with no connections",
            "`homehook init --vendors <vendors>` writes a starter config (or pass --config <file>)",
        ));
        return Config::empty().ok();
    };
    match Config::load(&path) {
        Ok(config) => {
            checks.push(Check::ok(
                "config",
                format!(
                    "{} loads ({} connection{}, {} action{})",
                    path.display(),
                    config.connections.len(),
                    plural(config.connections.len()),
                    config.actions.len(),
                    plural(config.actions.len())
                ),
            ));
            for warning in config.warnings() {
                checks.push(Check::warn(
                    "config",
                    warning,
                    format!("edit {} as the warning says", path.display()),
                ));
            }
            Some(config)
        }
        Err(e) => {
            let fix = if e.field == "(file)" {
                format!(
                    "check that {} exists and is readable: {}",
                    e.file, e.problem
                )
            } else {
                format!("edit {} at {}: {}", e.file, e.field, e.problem)
            };
            checks.push(Check::fail("config", e.to_string(), fix));
            None
        }
    }
}

/// The secrets file: there, owner-only, readable. Returns the secrets to check entries with
/// (the environment's alone when the file cannot be used).
pub(super) fn secrets_file(config: &Config, checks: &mut Vec<Check>) -> LocalSecrets {
    let env_only = || LocalSecrets::load(None).unwrap_or_default();
    let Some(path) = config.server.secrets_file.as_deref() else {
        if !config.connections.is_empty() {
            checks.push(Check::warn(
                "secrets file",
                "server.secrets_file is not set: secrets come from HOMEHOOK_SECRET_<NAME> variables only",
                "set server.secrets_file = \"secrets.toml\" in the config and put a [name] table per connection in it (chmod 600)",
            ));
        }
        return env_only();
    };
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            checks.push(Check::fail(
                "secrets file",
                format!("{shown}: {e}"),
                format!(
                    "create {shown} (chmod 600) with a [name] table per connection; `homehook init` writes a template"
                ),
            ));
            return env_only();
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            // `homehook serve` refuses such a file: a failure, not a warning.
            checks.push(Check::fail(
                "secrets file",
                format!("{shown} is readable by group or others (mode {mode:03o}), so homehook refuses it"),
                format!("chmod 600 {shown}"),
            ));
            return env_only();
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    match LocalSecrets::load(Some(path)) {
        Ok(secrets) => {
            let names: Vec<&str> = secrets.names().collect();
            checks.push(Check::ok(
                "secrets file",
                format!(
                    "{shown} is readable by you only; entries: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
            secrets
        }
        Err(e) => {
            checks.push(Check::fail(
                "secrets file",
                e.to_string(),
                format!(
                    "correct {shown}: each secret is a [name] table of quoted strings (client_id = \"...\")"
                ),
            ));
            env_only()
        }
    }
}

/// Each connection's secret entry has what its grant needs, filled in; and the notification
/// webhook's and signed actions' entries exist.
pub(super) async fn secret_entries(
    config: &Config,
    secrets: &dyn homehook_core::secrets::Secrets,
    file: Option<&str>,
    checks: &mut Vec<Check>,
) {
    let file = file.map(String::from).unwrap_or_else(|| {
        config
            .server
            .secrets_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the secrets file".into())
    });
    for conn in config.connections.values() {
        let name = &conn.secret;
        let check = format!("secret {name}");
        let needed = starter::fields(Some(conn.grant));
        let source = if std::env::var_os(env_var(name)).is_some() {
            env_var(name)
        } else {
            format!("[{name}] in {file}")
        };
        let entry = match secrets.entry(name).await {
            Ok(entry) => entry,
            Err(SecretsError::NotFound { .. }) => {
                checks.push(Check::fail(
                    check,
                    format!("no secret \"{name}\" for connection {}", conn.id),
                    format!(
                        "add to {file}:  [{name}]  with {} (or set {} to a JSON object)",
                        needed
                            .iter()
                            .map(|f| format!("{f} = \"...\""))
                            .collect::<Vec<_>>()
                            .join(", "),
                        env_var(name)
                    ),
                ));
                continue;
            }
            Err(e) => {
                checks.push(Check::fail(
                    check,
                    e.to_string(),
                    format!("correct {source}"),
                ));
                continue;
            }
        };
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|f| {
                entry
                    .get(*f)
                    .and_then(|v| v.as_str())
                    .is_none_or(|v| v.trim().is_empty())
            })
            .collect();
        if !missing.is_empty() {
            checks.push(Check::fail(
                check,
                format!(
                    "{source} has no value for {} (connection {} uses the {} grant)",
                    missing.join(", "),
                    conn.id,
                    conn.grant.as_str()
                ),
                format!(
                    "fill in {} in {source}",
                    missing
                        .iter()
                        .map(|f| format!("{f} = \"...\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        }
        if let Err(e) = secrets.client_credentials(name).await {
            checks.push(Check::fail(
                check,
                e.to_string(),
                format!("correct {source}"),
            ));
            continue;
        }
        checks.push(Check::ok(
            check,
            format!("{source} has {}", needed.join(", ")),
        ));
    }
    if let Some(name) = &config.notify.webhook_secret
        && let Err(e) = secrets.webhook(name).await
    {
        checks.push(Check::fail(
            format!("secret {name}"),
            format!("the notification webhook's entry: {e}"),
            format!("add [{name}] with url = \"https://...\" to {file}, or remove [notify]"),
        ));
    }
    for action in config.actions.values() {
        if let Some(name) = &action.signing_secret
            && let Err(e) = secrets.signing_key(name).await
        {
            checks.push(Check::fail(
                format!("secret {name}"),
                format!("signed action {}: {e}", action.name),
                format!("add [{name}] with signing_key = \"...\" to {file}"),
            ));
        }
    }
}

fn env_var(name: &str) -> String {
    format!(
        "HOMEHOOK_SECRET_{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The admin key: without it, connect links and /status in a browser are off.
pub(super) fn admin_key(config: &Config, checks: &mut Vec<Check>) {
    if config.server.admin_key_hash.is_some() {
        checks.push(Check::ok("admin key", "server.admin_key_hash is set"));
    } else {
        checks.push(Check::warn(
            "admin key",
            "server.admin_key_hash is not set: /connect and /status are off in a browser (`homehook connect` and `homehook status` still work here)",
            "run `homehook key new` and put the hash it prints in server.admin_key_hash",
        ));
    }
}

/// The public URL: HTTPS, unless it stays on this machine.
pub(super) fn public_url(config: &Config, checks: &mut Vec<Check>) {
    let url = &config.server.public_url;
    let base = config.base_url();
    if url.scheme() == "https" {
        checks.push(Check::ok("public url", format!("{base} (https)")));
    } else if settings::is_loopback(url) {
        checks.push(Check::ok(
            "public url",
            format!("{base}: plain http on this machine only (phones elsewhere cannot reach it)"),
        ));
    } else {
        checks.push(Check::warn(
            "public url",
            format!("{base} is plain http on the network: keys and tokens travel unencrypted"),
            "put a TLS reverse proxy in front of homehook and set server.public_url to its https:// address",
        ));
    }
}

/// The redirect URI each authorization-code provider's app must have registered.
pub(super) fn redirect_uris(config: &Config, checks: &mut Vec<Check>) {
    let mut seen = std::collections::BTreeSet::new();
    for conn in config.connections.values() {
        if conn.grant != Grant::AuthorizationCode || !seen.insert(conn.provider.clone()) {
            continue;
        }
        let name = config
            .provider_of(conn)
            .map(|s| s.display_name.clone())
            .unwrap_or_else(|| conn.provider.clone());
        checks.push(Check::ok(
            format!("redirect uri {}", conn.provider),
            format!(
                "register {} as the redirect URI of your {name} app",
                config.callback_url(&conn.provider)
            ),
        ));
    }
}

/// Each connection's stored token: there, healthy, not expired.
pub(super) async fn connections(
    app: &App,
    server_running: bool,
    cmd: &str,
    checks: &mut Vec<Check>,
) {
    let now = app.services.clock.now();
    for conn in app.services.config.connections.values() {
        let check = format!("connection {}", conn.id);
        let connect = format!("`{cmd} connect {}`", conn.id);
        // What keeps tokens fresh: this machine's server, or the stack's schedule.
        let server = if cmd == "homehook" {
            "start `homehook serve`"
        } else {
            "check the stack's token-refresh function (`homehook --target <name> logs`)"
        };
        let record = match app.services.store.get_token(&conn.id).await {
            Ok(r) => r,
            Err(e) => {
                checks.push(Check::fail(
                    check,
                    format!("cannot read the store: {e}"),
                    "check the data directory (--data-dir or server.data_dir)",
                ));
                continue;
            }
        };
        let Some(record) = record else {
            checks.push(match conn.grant {
                Grant::AuthorizationCode => Check::fail(
                    check,
                    "not connected: no token stored",
                    format!("{server}, then run {connect} and allow access"),
                ),
                Grant::Password => Check::warn(
                    check,
                    "not connected yet (a password-grant connection connects on first use)",
                    format!("{connect} connects it now and shows any problem with the credentials"),
                ),
            });
            continue;
        };
        if let Some(gap) = scope_gaps(app, conn, &record.scopes) {
            checks.push(Check::warn(
                format!("scopes of {}", conn.id),
                gap,
                format!("reconnect to grant them: {connect}"),
            ));
        }
        let expiry = record.expires_at.map(|at| now.secs_until(at));
        let secret_hint = match conn.grant {
            Grant::Password => format!(
                "check username and password in the [{}] secret, then run {connect}",
                conn.secret
            ),
            Grant::AuthorizationCode => format!("reconnect: {connect}"),
        };
        checks.push(match &record.health {
            Health::ReauthNeeded { reason } => Check::fail(
                check,
                format!("needs you to connect again: {reason}"),
                secret_hint,
            ),
            Health::Misconfigured { reason, until } => Check::fail(
                check,
                format!("misconfigured: {reason}"),
                format!(
                    "correct the setting named above (the [{}] secret, or the app at the vendor); homehook tries again at {}, or run {connect} now",
                    conn.secret,
                    until.to_rfc3339()
                ),
            ),
            Health::Degraded { reason, until } => Check::warn(
                check,
                format!(
                    "degraded: {reason} ({} failed in a row)",
                    record.lifecycle.failures
                ),
                format!(
                    "usually passes by itself: homehook tries again at {}; if it keeps failing, see `homehook status`",
                    until.to_rfc3339()
                ),
            ),
            Health::Healthy => match expiry {
                Some(s) if s <= 0 && !server_running => Check::warn(
                    check,
                    format!("healthy, but the access token {}", when::expires(s)),
                    format!("{server}: it renews tokens before they expire"),
                ),
                Some(s) if s <= 0 => Check::warn(
                    check,
                    format!("healthy, but the access token {}", when::expires(s)),
                    "it is renewed on the next action or refresh tick; if it stays expired, run `homehook status`",
                ),
                Some(s) => Check::ok(
                    check,
                    format!("healthy, access token expires {}", when::expires(s)),
                ),
                None => Check::ok(check, "healthy (the token does not expire)"),
            },
        });
    }
}

/// The built-in actions of `conn` that need a scope its grant lacks, in a sentence; `None`
/// when the grant covers them (or the vendor did not say what it granted).
pub(crate) fn scope_gaps(app: &App, conn: &Connection, granted: &[String]) -> Option<String> {
    let gaps = app.services.config.scope_gaps(&conn.id, granted);
    if gaps.is_empty() {
        return None;
    }
    let each: Vec<String> = gaps
        .iter()
        .map(|g| {
            format!(
                "action {} ({}) needs {}",
                g.action,
                g.builtin,
                g.missing.join(" and ")
            )
        })
        .collect();
    Some(format!(
        "{}, which the vendor did not grant this connection: the vendor will refuse {}",
        each.join("; "),
        if gaps.len() == 1 { "it" } else { "them" }
    ))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
