//! `homehook init`: writes a commented starter homehook.toml for the chosen vendors, a secrets
//! file template (mode 600) with the entries they need, and an admin key; then says what to do
//! next.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use homehook_core::Config;
use homehook_core::catalog::Grant;
use homehook_core::keys::ActionKey;

use crate::starter::{self, Starter, Vendor};

/// The secrets file's name, next to the config.
const SECRETS_FILE: &str = "secrets.toml";

/// What the command was asked for.
pub(crate) struct Options<'a> {
    /// Comma-separated vendor ids.
    pub(crate) vendors: Option<&'a str>,
    /// Where to write the config.
    pub(crate) path: PathBuf,
    /// Overwrite existing files.
    pub(crate) force: bool,
    /// Print JSON.
    pub(crate) json: bool,
}

/// Runs `homehook init`.
pub(crate) fn run(opts: &Options<'_>) -> Result<()> {
    let vendors = match opts.vendors {
        Some(list) => parse_vendors(list)?,
        None if std::io::stdin().is_terminal() => ask_vendors()?,
        None => bail!(
            "choose the vendors with --vendors, e.g. `homehook init --vendors netatmo,somfy_protect` (known: {})",
            starter::vendor_ids()
        ),
    };
    let config_path = &opts.path;
    let dir = config_path.parent().unwrap_or(Path::new(""));
    let secrets_path = dir.join(SECRETS_FILE);
    if !opts.force {
        for existing in [config_path, &secrets_path] {
            if existing.exists() {
                bail!(
                    "{} already exists: keeping it. Pass --force to replace it (and {}).",
                    existing.display(),
                    if existing == config_path {
                        secrets_path.display()
                    } else {
                        config_path.display()
                    }
                );
            }
        }
    }

    let defaults = Config::empty()?;
    let admin_key = ActionKey::generate();
    let admin_hash = admin_key.hash().to_string();
    let files = Starter::new(&vendors, &admin_hash, SECRETS_FILE, &defaults);
    // What is written must load: check before touching the disk.
    Config::parse(
        &files.config,
        &config_path.display().to_string(),
        Some(config_path),
    )
    .context("the starter config does not load (a bug in homehook init)")?;
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(&secrets_path, &files.secrets)?;
    std::fs::write(config_path, &files.config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    let next = next_steps(&vendors, &defaults, config_path, &secrets_path);
    if opts.json {
        let connections: Vec<_> = vendors
            .iter()
            .filter_map(|v| {
                let spec = defaults.providers.get(v.id)?;
                let grant = spec.grants.first().copied()?;
                Some(serde_json::json!({
                    "id": v.id,
                    "provider": v.id,
                    "grant": grant.as_str(),
                    "redirect_uri": (grant == Grant::AuthorizationCode).then(|| defaults.callback_url(v.id)),
                }))
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config": config_path,
                "secrets_file": secrets_path,
                "admin_key": admin_key.expose(),
                "admin_key_hash": admin_hash,
                "connections": connections,
                "next": next,
            }))?
        );
        return Ok(());
    }
    println!(
        "Wrote {} (connections: {}) and {} (mode 600).",
        config_path.display(),
        vendors.iter().map(|v| v.id).collect::<Vec<_>>().join(", "),
        secrets_path.display()
    );
    println!();
    println!("Admin key (shown only now; only its hash is in the config):");
    println!();
    println!("  {}", admin_key.expose());
    println!();
    println!("Keep it to open connect links and /status in a browser.");
    println!();
    println!("Next:");
    for (i, step) in next.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    println!();
    println!("`homehook doctor` checks all of this at any time and says what to fix.");
    Ok(())
}

fn parse_vendors(list: &str) -> Result<Vec<&'static Vendor>> {
    let mut chosen: Vec<&'static Vendor> = Vec::new();
    for name in list
        .split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let name = name.to_ascii_lowercase();
        // "somfy" is what people call it.
        let id = if name == "somfy" {
            "somfy_protect"
        } else {
            name.as_str()
        };
        let Some(v) = starter::vendor(id) else {
            bail!(
                "unknown vendor \"{name}\" (known: {})",
                starter::vendor_ids()
            );
        };
        if !chosen.iter().any(|c| c.id == v.id) {
            chosen.push(v);
        }
    }
    if chosen.is_empty() {
        bail!("--vendors needs at least one of: {}", starter::vendor_ids());
    }
    Ok(chosen)
}

/// Asks on the terminal which vendors to set up.
fn ask_vendors() -> Result<Vec<&'static Vendor>> {
    let defaults = Config::empty()?;
    let mut err = std::io::stderr();
    writeln!(
        err,
        "Which vendors do you use? (numbers or names, comma-separated)"
    )?;
    for (i, v) in starter::VENDORS.iter().enumerate() {
        let name = defaults
            .providers
            .get(v.id)
            .map(|s| s.display_name.as_str())
            .unwrap_or(v.id);
        writeln!(err, "  {}. {name} ({})", i + 1, v.id)?;
    }
    let stdin = std::io::stdin();
    loop {
        write!(err, "> ")?;
        err.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            bail!("no vendors chosen");
        }
        let names: Vec<String> = line
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.parse::<usize>() {
                Ok(n) if (1..=starter::VENDORS.len()).contains(&n) => {
                    starter::VENDORS[n - 1].id.to_string()
                }
                _ => s.to_string(),
            })
            .collect();
        match parse_vendors(&names.join(",")) {
            Ok(v) => return Ok(v),
            Err(e) => writeln!(err, "{e}")?,
        }
    }
}

/// Creates (or replaces) a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A file that existed keeps its old mode through open(): set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn next_steps(
    vendors: &[&Vendor],
    defaults: &Config,
    config_path: &Path,
    secrets_path: &Path,
) -> Vec<String> {
    let mut steps = vec![format!(
        "Fill in the credentials in {} (each entry's comment says where they come from).",
        secrets_path.display()
    )];
    let redirects: Vec<String> = vendors
        .iter()
        .filter(|v| {
            defaults
                .providers
                .get(v.id)
                .is_some_and(|s| s.grants.first() == Some(&Grant::AuthorizationCode))
        })
        .map(|v| defaults.callback_url(v.id))
        .collect();
    if !redirects.is_empty() {
        steps.push(format!(
            "Register the redirect URI of each vendor app: {}.",
            redirects.join(", ")
        ));
    }
    let config_flag = if config_path == Path::new("homehook.toml") {
        String::new()
    } else {
        format!(" --config {}", config_path.display())
    };
    steps.push(format!(
        "Start the server and leave it running: `homehook{config_flag} serve`."
    ));
    let connects: Vec<String> = vendors
        .iter()
        .map(|v| format!("`homehook{config_flag} connect {}`", v.id))
        .collect();
    steps.push(format!("Connect each account: {}.", connects.join(", ")));
    steps.push(format!(
        "Find the ids your actions need: `homehook{config_flag} discover <connection>`; uncomment an action in {} and make its key with `homehook key new --for <action>`.",
        config_path.display()
    ));
    steps.push(format!(
        "Scan the action URLs with your phone: `homehook{config_flag} actions --qr`."
    ));
    steps
}
