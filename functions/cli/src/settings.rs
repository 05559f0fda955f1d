//! Finding the config file and the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use homehook_core::Config;
use homehook_core::store::SqliteStore;

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
