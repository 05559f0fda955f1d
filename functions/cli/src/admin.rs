//! Admin commands: `key new`, `status`, `actions`, `discover`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use homehook_core::App;
use homehook_core::clock::SystemClock;
use homehook_core::keys::ActionKey;
use homehook_core::secrets::LocalSecrets;

use crate::settings;

/// `homehook key new [--for actions [--id id]]`.
pub(crate) fn key_new(json: bool, actions: Option<&str>, id: Option<&str>) -> Result<()> {
    let key = ActionKey::generate();
    let hash = key.hash();
    if let Some(actions) = actions {
        let names: Vec<&str> = actions
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        if names.is_empty() {
            bail!("--for needs at least one action name (or \"*\")");
        }
        let id = id
            .map(str::to_string)
            .unwrap_or_else(|| format!("key-{}", hash.key_id()));
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let block = format!(
            "[keys.{id}]\nhash = \"{hash}\"\nactions = [{}]\n",
            list.join(", ")
        );
        if json {
            println!(
                "{}",
                serde_json::json!({ "key": key.expose(), "hash": hash.to_string(), "id": id, "actions": names, "config": block })
            );
        } else {
            println!("key:  {}", key.expose());
            println!();
            println!("Add to homehook.toml:");
            println!();
            print!("{block}");
            println!();
            println!(
                "Keep the key (it is shown only now). To rotate later: make a new key for the same"
            );
            println!(
                "actions, then give this one `expires = \"<RFC 3339 time>\"` (or `revoked = true`)."
            );
        }
        return Ok(());
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "key": key.expose(), "hash": hash.to_string(), "key_id": hash.key_id() })
        );
    } else {
        println!("key:  {}", key.expose());
        println!("hash: {hash}");
        println!();
        println!("Keep the key (it is shown only now) in your shortcut or automation;");
        println!("put the hash in homehook.toml as an action's key_hash or server.admin_key_hash.");
    }
    Ok(())
}

/// `homehook pin new`: hashes the PIN on standard input with Argon2id.
pub(crate) fn pin_new(json: bool) -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the PIN from standard input")?;
    let pin = line.trim_end_matches(['\r', '\n']);
    let hash = homehook_core::guard::pin::PinHash::of(pin)
        .map_err(|_| anyhow::anyhow!("a PIN is 4 to 64 characters, no control characters"))?;
    if json {
        println!("{}", serde_json::json!({ "pin_hash": hash.to_string() }));
    } else {
        println!("pin_hash = \"{hash}\"");
        println!();
        println!(
            "Put this line under the sensitive action in homehook.toml; callers then send the PIN"
        );
        println!(
            "as the X-Homehook-Pin header or \"pin\" in the body. 5 wrong PINs lock it for 15 minutes."
        );
    }
    Ok(())
}

/// `homehook status`: reads the store directly, so it works whether or not a server runs.
pub(crate) async fn status(
    config_path: Option<&Path>,
    data_dir: Option<&Path>,
    json: bool,
) -> Result<()> {
    let config = settings::load_config(config_path)?;
    let (store, _) = settings::open_store(data_dir, &config)?;
    let secrets = LocalSecrets::from_entries(Default::default());
    let app = App::new(
        config,
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?;
    let report = homehook_core::http::status::report(&app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if report.connections.is_empty() {
        println!("no connections configured");
        return Ok(());
    }
    println!(
        "{:<16} {:<14} {:<14} {:<22} REFRESHED",
        "CONNECTION", "PROVIDER", "HEALTH", "EXPIRES"
    );
    for c in &report.connections {
        let expires = match (&c.expires_at, c.expires_in_secs) {
            (Some(_), Some(s)) if s <= 0 => "expired".to_string(),
            (Some(_), Some(s)) => format!("in {}", human(s)),
            _ => "-".into(),
        };
        println!(
            "{:<16} {:<14} {:<14} {:<22} {}",
            c.id,
            c.provider,
            c.health,
            expires,
            c.refreshed_at.as_deref().unwrap_or("-")
        );
        if let Some(reason) = &c.reason {
            println!("  {reason}");
        }
        if let Some(at) = &c.retry_at {
            println!("  next try at {at} ({} failed in a row)", c.failures);
        }
        if c.renewing {
            println!("  being renewed by another instance right now");
        }
        if let Some(url) = &c.reconnect_url {
            println!("  reconnect: {url}?key=<admin key>");
        }
    }
    Ok(())
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `homehook actions`: each action's URL (the key itself is never stored, so it is left out).
pub(crate) fn actions(config_path: Option<&Path>, json: bool) -> Result<()> {
    let config = settings::load_config(config_path)?;
    let base = config.base_url();
    let rows: Vec<_> = config
        .actions
        .values()
        .map(|a| {
            let methods: Vec<_> = a.methods.iter().map(|m| m.as_str().to_string()).collect();
            // Key ids only: the keys themselves are never stored.
            let keys: Vec<_> = config
                .keys
                .entries()
                .iter()
                .filter(|k| k.scope.covers(&a.name))
                .map(|k| {
                    serde_json::json!({
                        "id": k.id,
                        "revoked": k.revoked,
                        "expires": k.expires.map(|t| t.to_rfc3339()),
                    })
                })
                .collect();
            serde_json::json!({
                "name": a.name,
                "url": format!("{base}/a/{}", a.name),
                "methods": methods,
                "connection": a.connection,
                "keys": keys,
                "sensitive": a.sensitive,
                "pin": a.pin_hash.is_some(),
                "signed": a.signing_secret.is_some(),
                "rate_limit": { "burst": a.rate_limit.burst, "per_minute": a.rate_limit.per_minute },
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no actions configured");
    }
    for a in &config.actions {
        let methods: Vec<_> = a.1.methods.iter().map(|m| m.as_str()).collect();
        println!("{:<24} {:<9} {base}/a/{}", a.0, methods.join(","), a.0);
    }
    if !rows.is_empty() {
        println!();
        println!(
            "Call with the action's key: header `Authorization: Bearer <key>` or `?key=<key>`."
        );
    }
    Ok(())
}

/// `homehook discover <connection>`: asks the vendor's API, through the same token handling as
/// the server (a password-grant connection connects here if it never has).
pub(crate) async fn discover(
    config_path: Option<&Path>,
    data_dir: Option<&Path>,
    connection: &str,
    json: bool,
) -> Result<()> {
    let config = settings::load_config(config_path)?;
    if !config.connections.contains_key(connection) {
        let known: Vec<_> = config.connections.keys().cloned().collect();
        bail!(
            "no connection \"{connection}\" in the config (it has: {})",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
    }
    let (store, _) = settings::open_store(data_dir, &config)?;
    let secrets = LocalSecrets::load(config.server.secrets_file.as_deref())?;
    let app = App::new(
        config,
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?;
    let client = homehook_core::api::ApiClient::new(&app, connection)?;
    let found = homehook_core::providers::discover(&client)
        .await
        .with_context(|| format!("asking the vendor of connection {connection}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    if found.sections.is_empty() {
        println!("{connection} ({}): nothing to list", found.provider);
    }
    for section in &found.sections {
        println!("{}  (with: {})", section.title, section.key);
        for item in &section.items {
            println!("  {:<28} {:<24} {}", item.id, item.name, item.detail);
        }
        println!();
    }
    if let Some(example) = found.example(client.spec.quirk) {
        let names: Vec<_> = homehook_core::builtin::recipes(client.spec.quirk)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        println!(
            "Built-in actions of {}: {}",
            found.provider,
            names.join(", ")
        );
        println!("For example, in homehook.toml:");
        println!();
        for line in example.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}
