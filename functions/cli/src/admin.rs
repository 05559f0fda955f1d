//! Admin commands: `key new`, `pin new`, `discover`.

use anyhow::{Context, Result, bail};
use homehook_core::keys::ActionKey;
use homehook_core::providers::port::VendorApi;
use homehook_core::vendor_client::VendorClient;

use crate::progress::Spinner;
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
    // The error says what a PIN must be (6 to 64 characters), never the PIN.
    let hash = homehook_core::guard::pin::PinHash::of(pin).map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// `homehook discover <connection>`: asks the vendor's API, through the same token handling as
/// the server (a password-grant connection connects here if it never has).
pub(crate) async fn discover(
    ctx: settings::Context<'_>,
    connection: &str,
    json: bool,
) -> Result<()> {
    let (app, _) = settings::open_place(ctx, true).await?;
    settings::connection(&app.services.config, connection)?;
    let client = VendorClient::new(&app.services, connection)?;
    let spinner = Spinner::start(format!(
        "asking {} for connection {connection}",
        client.spec().display_name
    ));
    let found = client
        .discover()
        .await
        .with_context(|| format!("asking the vendor of connection {connection}"));
    spinner.finish();
    let found = found?;
    // Whether the grant covers the configured built-ins: the vendor's own refusal ("code 13")
    // would not say that reconnecting fixes it.
    let conn = settings::connection(&app.services.config, connection)?;
    let granted = app
        .services
        .store
        .get_token(connection)
        .await
        .ok()
        .flatten()
        .map(|t| t.scopes)
        .unwrap_or_default();
    let scope_warning = crate::doctor::scope_gaps(&app, conn, &granted).map(|gap| {
        format!(
            "warning: {gap}. Reconnect to grant them: {} connect {connection}",
            app.services.config.server.command
        )
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        if let Some(w) = scope_warning {
            eprintln!("{w}");
        }
        return Ok(());
    }
    if let Some(w) = &scope_warning {
        println!("{w}");
        println!();
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
    if let Some(example) = found.example(client.spec().kind) {
        let names: Vec<_> = homehook_core::providers::recipes(client.spec().kind)
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
