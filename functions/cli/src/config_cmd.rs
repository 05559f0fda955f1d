//! `homehook config push/pull/diff`: the config file people write, and the config document
//! published in the store that every running process follows (`homehook serve`, the Lambda
//! functions, within seconds).
//!
//! To refuse a push that would undo a change made meanwhile (a key revoked with `homehook key
//! revoke`, a push from another machine), this machine remembers which published version each
//! file was last pushed as or pulled from: a small `published.json` beside the store (or beside
//! the targets file, for a target). A file with no such record is pushed only over an identical
//! document or an empty store; `--force` overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use homehook_core::clock::UnixTime;
use homehook_core::publish::{self, FileState, PublishError};
use homehook_core::store::StoredConfig;

use crate::settings::{self, Context, Place};

/// What this machine remembers of a file's last sync: the published version it was pushed as
/// or pulled from, and a digest of its text then (so that "edited since" is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Mark {
    /// The published version.
    pub(crate) version: u64,
    /// SHA-256 of the file's text, hex.
    digest: [u8; 32],
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// The marks of one place, kept in a small JSON file.
pub(crate) struct Marks {
    file: PathBuf,
    key: String,
}

impl Marks {
    /// The record for `config` (its canonical path) at `place`.
    pub(crate) fn of(ctx: Context<'_>, place: &Place, config: &Path) -> Result<Self> {
        let file = match place {
            Place::Local => {
                let cfg = settings::load_config(ctx.config_path)?;
                settings::data_dir(ctx.data_dir, &cfg)?.join("published.json")
            }
            Place::Remote { name, .. } => {
                crate::target::file()?.with_file_name(format!("published-{name}.json"))
            }
        };
        let key = std::fs::canonicalize(config)
            .unwrap_or_else(|_| config.to_path_buf())
            .display()
            .to_string();
        Ok(Self { file, key })
    }

    fn all(&self) -> BTreeMap<String, Mark> {
        std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The file's last sync, if this machine made one.
    pub(crate) fn get(&self) -> Option<Mark> {
        self.all().get(&self.key).copied()
    }

    /// The version the file was last synced with.
    pub(crate) fn base(&self) -> Option<u64> {
        self.get().map(|m| m.version)
    }

    /// Whether `text` is the file as it was at its last sync (not edited since).
    pub(crate) fn unedited(&self, text: &str) -> bool {
        self.get().is_some_and(|m| m.digest == digest(text))
    }

    /// Records that the file now holds `text`, published as `version`. A failure only costs
    /// a later `--force`.
    pub(crate) fn record(&self, version: u64, text: &str) {
        let mut all = self.all();
        all.insert(
            self.key.clone(),
            Mark {
                version,
                digest: digest(text),
            },
        );
        let written = self
            .file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::write(
                    &self.file,
                    serde_json::to_string_pretty(&all).unwrap_or_default(),
                )
            });
        if let Err(e) = written {
            tracing::warn!(file = %self.file.display(), error = %e, "could not record the published version");
        }
    }
}

/// The config file the commands read and write: `--config`, else `./homehook.toml`.
pub(crate) fn config_file(ctx: Context<'_>) -> PathBuf {
    ctx.config_path
        .map_or_else(|| PathBuf::from("homehook.toml"), Path::to_path_buf)
}

fn now() -> UnixTime {
    UnixTime(jiff::Timestamp::now().as_second())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `homehook config push [--force]`.
pub(crate) async fn push(ctx: Context<'_>, force: bool) -> Result<()> {
    let path = config_file(ctx);
    let text = read(&path)?;
    let (store, place) = settings::open_store_of(ctx).await?;
    let marks = Marks::of(ctx, &place, &path)?;
    let stored = store.get_config().await?;
    let state = publish::compare(&text, stored.as_ref(), marks.base());
    let expected = match state {
        FileState::Same { version } => {
            marks.record(version, &text);
            println!(
                "{} is already published (version {version}): nothing to do.",
                path.display()
            );
            return Ok(());
        }
        FileState::NothingPublished => None,
        FileState::Edited { version } => Some(version),
        FileState::Diverged { version } if force => Some(version),
        FileState::Diverged { version } => bail!(
            "the published config (version {version}) changed since {} was pushed or pulled here: pushing would undo that.\n`{cmd} config diff` shows the difference; `{cmd} config pull` takes the published one into the file (then edit and push); `{cmd} config push --force` replaces it.",
            path.display(),
            cmd = place.command()
        ),
    };
    let file = path.display().to_string();
    let stored = publish::publish(&*store, &text, &file, expected, now())
        .await
        .map_err(|e| explain(e, &place))?;
    marks.record(stored.version, &text);
    println!(
        "published {} as version {}{}.",
        path.display(),
        stored.version,
        match &place {
            Place::Local => String::new(),
            Place::Remote { name, .. } => format!(" on {name}"),
        }
    );
    println!("Running instances follow it within seconds: no restart, no deploy.");
    Ok(())
}

fn explain(e: PublishError, place: &Place) -> anyhow::Error {
    match e {
        PublishError::Changed { current } => anyhow!(
            "someone published version {current} meanwhile: `{cmd} config diff`, then `{cmd} config pull` and push again",
            cmd = place.command()
        ),
        other => anyhow!(other),
    }
}

/// `homehook config pull [--force]`: writes the published config into the file.
pub(crate) async fn pull(ctx: Context<'_>, force: bool) -> Result<()> {
    let path = config_file(ctx);
    let (store, place) = settings::open_store_of(ctx).await?;
    let Some(stored) = store.get_config().await? else {
        bail!(
            "nothing is published: `{} config push` publishes {}",
            place.command(),
            path.display()
        );
    };
    let marks = Marks::of(ctx, &place, &path)?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        let unpushed = text != stored.text && !marks.unedited(&text);
        if unpushed && !force {
            bail!(
                "{} has changes that are not published: `{cmd} config diff` shows them; `{cmd} config pull --force` overwrites them.",
                path.display(),
                cmd = place.command()
            );
        }
    }
    write_file(&path, &stored)?;
    marks.record(stored.version, &stored.text);
    println!(
        "wrote version {} of the published config to {}.",
        stored.version,
        path.display()
    );
    Ok(())
}

/// Writes the published text to `path`, whole, then renamed into place.
pub(crate) fn write_file(path: &Path, stored: &StoredConfig) -> Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &stored.text)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `homehook config diff`: the published document against the file, as a unified diff.
/// Exits 1 when they differ (like `diff`).
pub(crate) async fn diff(ctx: Context<'_>) -> Result<bool> {
    let path = config_file(ctx);
    let text = read(&path)?;
    let (store, place) = settings::open_store_of(ctx).await?;
    let stored = store.get_config().await?;
    let (published, label) = match &stored {
        Some(s) => (
            s.text.as_str(),
            format!("published (version {})", s.version),
        ),
        None => ("", "published (nothing yet)".to_string()),
    };
    if published == text {
        println!("{} is the published config.", path.display());
        return Ok(true);
    }
    let diff = similar::TextDiff::from_lines(published, text.as_str());
    print!(
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&label, &path.display().to_string())
    );
    println!(
        "(`{cmd} config push` publishes the file; `{cmd} config pull` takes the published one)",
        cmd = place.command()
    );
    Ok(false)
}

/// A line for the person: on standard output, or standard error under `--json` (standard
/// output then holds only the JSON).
macro_rules! say {
    ($json:expr, $($arg:tt)*) => {
        if $json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

/// After a published edit (`homehook key …`): brings the config file along when it was in step
/// with the document edited (so it never falls behind silently), and says so; otherwise tells
/// how to catch up.
pub(crate) fn follow_edit(
    json: bool,
    ctx: Context<'_>,
    place: &Place,
    before: &StoredConfig,
    after: &StoredConfig,
) {
    let path = config_file(ctx);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let marks = match Marks::of(ctx, place, &path) {
        Ok(m) => m,
        Err(_) => return,
    };
    if text == before.text {
        match write_file(&path, after) {
            Ok(()) => {
                marks.record(after.version, &after.text);
                say!(
                    json,
                    "{} updated to match (version {}).",
                    path.display(),
                    after.version
                );
            }
            Err(e) => say!(
                json,
                "could not update {}: {e:#}; `{} config pull` does it.",
                path.display(),
                place.command()
            ),
        }
    } else {
        say!(
            json,
            "{} differs from the published config: `{cmd} config diff` shows how; `{cmd} config pull` takes the published one.",
            path.display(),
            cmd = place.command()
        );
    }
}
