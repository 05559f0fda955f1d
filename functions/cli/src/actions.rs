//! `homehook actions [<name>] [--qr [--key <key>]]`: each action's URL, and a QR code of it to
//! scan with the phone. The key itself is never stored (only its hash), so a QR holds the
//! bare URL unless the owner passes the key.

use anyhow::{Result, bail};
use homehook_core::Config;
use homehook_core::clock::UnixTime;
use homehook_core::config::Action;

use crate::{qr, settings, table};

/// What the command was asked for.
pub(crate) struct Options<'a> {
    /// Only this action.
    pub(crate) name: Option<&'a str>,
    /// Print a QR code under each URL.
    pub(crate) qr: bool,
    /// The action key, to put in the URLs as `?key=` (only of actions it opens).
    pub(crate) key: Option<&'a str>,
    /// Draw the QR codes for a terminal with a light background.
    pub(crate) light: bool,
    /// Print JSON.
    pub(crate) json: bool,
}

/// Runs `homehook actions`.
pub(crate) async fn run(ctx: settings::Context<'_>, opts: &Options<'_>) -> Result<()> {
    let config = match ctx.target {
        None => settings::load_config(ctx.config_path)?,
        Some(_) => (*settings::open_place(ctx, false).await?.0.services.config).clone(),
    };
    let actions: Vec<&Action> = match opts.name {
        Some(name) => match config.actions.get(name) {
            Some(a) => vec![a],
            None => bail!(
                "no action \"{name}\" in the config (it has: {})",
                names_or_none(&config)
            ),
        },
        None => config.actions.values().collect(),
    };
    let now = UnixTime(jiff::Timestamp::now().as_second());
    let opens = |a: &Action| {
        opts.key
            .is_some_and(|k| config.keys.admit(k, &a.name, now).is_ok())
    };
    if let (Some(name), Some(_)) = (opts.name, opts.key)
        && !actions.iter().any(|a| opens(a))
    {
        bail!(
            "this key does not open action \"{name}\" (wrong, revoked or expired key, or a key of other actions)"
        );
    }
    if opts.json {
        let rows: Vec<_> = actions
            .iter()
            .map(|a| describe(&config, a, opts.key.filter(|_| opens(a))))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if actions.is_empty() {
        println!("no actions configured");
        println!();
        println!("Add one to homehook.toml: `homehook discover <connection>` prints an example,");
        println!("and `homehook key new --for <action>` its key.");
        return Ok(());
    }
    let base = config.base_url();
    if !opts.qr {
        let rows: Vec<Vec<String>> = actions
            .iter()
            .map(|a| vec![a.name.clone(), methods(a), format!("{base}/a/{}", a.name)])
            .collect();
        print!("{}", table::render(&["ACTION", "METHODS", "URL"], &rows));
        println!();
        println!(
            "Call with the action's key: header `Authorization: Bearer <key>` or `?key=<key>`."
        );
        println!(
            "`homehook actions --qr` (with --target <name> for a stack) shows a QR code of each URL to scan with your phone."
        );
        return Ok(());
    }
    if settings::is_loopback(&config.server.public_url) {
        eprintln!(
            "note: these URLs are on {base}, which a phone cannot reach; set server.public_url to the address your phone uses (behind a TLS reverse proxy) first."
        );
    }
    let with_key = actions.iter().filter(|a| opens(a)).count();
    if with_key > 0 {
        eprintln!(
            "warning: the QR code{} below hold{} the action key: anyone who scans or photographs {} can run the action. Clear the screen afterwards.",
            if with_key == 1 { "" } else { "s" },
            if with_key == 1 { "s" } else { "" },
            if with_key == 1 { "it" } else { "them" },
        );
    }
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let url = action_url(&base, a, opts.key.filter(|_| opens(a)));
        println!("{}  ({})", a.name, methods(a));
        println!("{url}");
        println!("{}", qr::render(&url, opts.light)?);
        println!("{}", how_to_call(a, opts.key.is_some() && opens(a)));
        if opts.key.is_some() && !opens(a) {
            println!("(the key given does not open this action: the code holds the URL only)");
        }
    }
    Ok(())
}

fn names_or_none(config: &Config) -> String {
    if config.actions.is_empty() {
        "none".into()
    } else {
        config
            .actions
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn methods(a: &Action) -> String {
    a.methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn action_url(base: &str, a: &Action, key: Option<&str>) -> String {
    let url = format!("{base}/a/{}", a.name);
    match key {
        Some(k) => format!("{url}?key={k}"),
        None => url,
    }
}

/// What the phone does with the scanned URL: opening it in a browser is a GET, which runs
/// only actions that allow GET.
fn how_to_call(a: &Action, has_key: bool) -> String {
    let get = a.methods.iter().any(|m| m.as_str() == "GET");
    let key = if has_key {
        ""
    } else {
        " Add the key as `Authorization: Bearer <key>` (or `?key=`)."
    };
    if get {
        format!("Opening it in the phone's browser runs it (GET allowed).{key}")
    } else {
        format!(
            "POST only: use it in a shortcut or automation that sends POST (opening it in a browser does not run it).{key}"
        )
    }
}

/// JSON of one action: data only (no QR text). `url_with_key` only when the given key opens it.
fn describe(config: &Config, a: &Action, key: Option<&str>) -> serde_json::Value {
    let base = config.base_url();
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
    let methods: Vec<_> = a.methods.iter().map(|m| m.as_str().to_string()).collect();
    let mut row = serde_json::json!({
        "name": a.name,
        "url": format!("{base}/a/{}", a.name),
        "methods": methods,
        "connection": a.connection,
        "keys": keys,
        "sensitive": a.sensitive,
        "pin": a.pin_hash.is_some(),
        "signed": a.signing_secret.is_some(),
        "rate_limit": { "burst": a.rate_limit.burst, "per_minute": a.rate_limit.per_minute },
    });
    if let (Some(k), Some(obj)) = (key, row.as_object_mut()) {
        obj.insert(
            "url_with_key".into(),
            serde_json::Value::String(action_url(&base, a, Some(k))),
        );
    }
    row
}
