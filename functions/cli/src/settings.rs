//! Finding the config file and the data directory.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context as _, Result};
use homehook_core::clock::SystemClock;
use homehook_core::config::Connection;
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_core::{App, Config};
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
pub(crate) fn open_app(data_dir: Option<&Path>, config: Config, with_secrets: bool) -> Result<App> {
    let (store, _) = open_store(data_dir, &config)?;
    let secrets = if with_secrets {
        LocalSecrets::load(config.server.secrets_file.as_deref())?
    } else {
        LocalSecrets::from_entries(Default::default())
    };
    Ok(App::new(Services::new(
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

/// What every command is told about where to run: the config file and data directory of this
/// machine, or a named target (a deployed stack).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// `--config`.
    pub(crate) config_path: Option<&'a Path>,
    /// `--data-dir`.
    pub(crate) data_dir: Option<&'a Path>,
    /// `--target`.
    pub(crate) target: Option<&'a str>,
}

/// Where a command runs.
pub(crate) enum Place {
    /// This machine: the config file, the embedded store, the secrets file.
    Local,
    /// A deployed stack.
    Remote {
        /// The target's name.
        name: String,
    },
}

impl Place {
    /// How to name this place in messages and hints: `homehook` or `homehook --target <name>`.
    pub(crate) fn command(&self) -> String {
        match self {
            Self::Local => "homehook".into(),
            Self::Remote { name, .. } => format!("homehook --target {name}"),
        }
    }
}

/// The store of the context: the embedded one, or the target's table.
pub(crate) async fn open_store_of(
    ctx: Context<'_>,
) -> Result<(Arc<dyn homehook_core::store::Store>, Place)> {
    match ctx.target {
        None => {
            let config = load_config(ctx.config_path)?;
            let (store, _) = open_store(ctx.data_dir, &config)?;
            Ok((Arc::new(store), Place::Local))
        }
        Some(name) => {
            let target = crate::target::load(name)?;
            let (store, _) = crate::target::open(&target).await?;
            Ok((
                store,
                Place::Remote {
                    name: name.to_string(),
                },
            ))
        }
    }
}

/// The application a command runs on: locally as [`open_app`] builds it (the config file);
/// on a target, the stack's published config, table and secret, with connect and action links
/// on the stack's base URL.
pub(crate) async fn open_place(ctx: Context<'_>, with_secrets: bool) -> Result<(App, Place)> {
    let Some(name) = ctx.target else {
        let config = load_config(ctx.config_path)?;
        return Ok((open_app(ctx.data_dir, config, with_secrets)?, Place::Local));
    };
    let target = crate::target::load(name)?;
    let (store, secrets) = crate::target::open(&target).await?;
    let Some((_, mut config)) = homehook_core::publish::published(&*store)
        .await
        .with_context(|| format!("cannot read the published config of target {name}"))?
    else {
        anyhow::bail!(
            "target {name} has no published config: `homehook --target {name} config push` publishes homehook.toml"
        );
    };
    config.server.public_url = target.url.clone();
    config.server.public_url_follows_listen = false;
    config.server.public_url_from_host = false;
    let app = App::new(Services::new(
        config,
        store,
        secrets,
        Arc::new(SystemClock),
    )?)
    .with_admin_key_from_secrets();
    Ok((
        app,
        Place::Remote {
            name: name.to_string(),
        },
    ))
}
