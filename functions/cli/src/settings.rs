//! Finding the config file and the data directory.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context, Result};
use homehook_core::Config;
use homehook_core::clock::SystemClock;
use homehook_core::config::Connection;
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_local::SqliteStore;

/// The config file used when none is named.
const DEFAULT_CONFIG: &str = "homehook.toml";

/// Loads the config: the named file (which must exist), else `./homehook.toml` if present,
/// else built-in defaults (`homehook serve` still starts and says what to do next).
pub(crate) fn load_config(path: Option<&Path>) -> Result<Config> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok(Config::empty()?),
    };
    Ok(Config::load(&path)?)
}

/// The data directory: flag or env, else `server.data_dir`, else the platform data directory.
pub(crate) fn data_dir(flag: Option<&Path>, config: &Config) -> Result<PathBuf> {
    if let Some(dir) = flag
        .map(Path::to_path_buf)
        .or_else(|| config.server.data_dir.clone())
    {
        return Ok(dir);
    }
    dirs::data_dir()
        .map(|d| d.join("homehook"))
        .context("no data directory: pass --data-dir or set server.data_dir")
}

/// Opens the embedded store in the data directory.
pub(crate) fn open_store(flag: Option<&Path>, config: &Config) -> Result<(SqliteStore, PathBuf)> {
    let dir = data_dir(flag, config)?;
    let store = SqliteStore::open_in(&dir)?;
    Ok((store, dir))
}

/// The application over the embedded store in the data directory, as `homehook serve` builds
/// it: the CLI and a running server share the store (tokens, connect links). Without
/// `with_secrets`, no secret is read (commands that never call a vendor).
pub(crate) fn open_app(
    data_dir: Option<&Path>,
    config: Config,
    with_secrets: bool,
) -> Result<homehook_core::App> {
    let (store, _) = open_store(data_dir, &config)?;
    let secrets = if with_secrets {
        LocalSecrets::load(config.server.secrets_file.as_deref())?
    } else {
        LocalSecrets::from_entries(Default::default())
    };
    Ok(homehook_core::App::new(Services::new(
        config,
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?))
}

/// The connection named `id`, or an error listing the configured ones.
pub(crate) fn connection<'a>(config: &'a Config, id: &str) -> Result<&'a Connection> {
    config.connections.get(id).ok_or_else(|| {
        let known: Vec<_> = config.connections.keys().cloned().collect();
        anyhow::anyhow!(
            "no connection \"{id}\" in the config (it has: {})",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )
    })
}

/// Whether `url` points at this machine (then a phone cannot open it).
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
