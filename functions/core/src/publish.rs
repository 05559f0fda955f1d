//! Publishing a config: the `homehook.toml` text people write, checked completely (the same
//! messages as loading the file, naming the field), then stored as the store's one config
//! document with a compare-and-swap, so every instance on the store reads the same version.
//! Nothing invalid is ever written, and of two concurrent publishers one wins and the other is
//! told which version it raced with.
//!
//! The store keeps the text as written (comments included): what `pull` gives back is what was
//! pushed.

use crate::clock::UnixTime;
use crate::config::{Config, ConfigError};
use crate::store::{ConfigStore, StoreError, StoredConfig};

/// The name a published document goes by in error messages.
pub const DOCUMENT_NAME: &str = "homehook.toml (published)";

/// Why a config was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The text is not a usable config; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The stored document is not the version the publisher started from: someone published
    /// meanwhile. Nothing was written.
    #[error(
        "the published config changed meanwhile (now version {current}): pull it, merge, and publish again"
    )]
    Changed {
        /// The version stored now (0 when there is none).
        current: u64,
    },
    /// The store failed; nothing or everything was written (a compare-and-swap never writes
    /// half).
    #[error(transparent)]
    Store(StoreError),
}

/// Checks `text` and stores it as the next version after `expected` (`None`: the first
/// document). `file` names the text in error messages (the path it was read from).
pub async fn publish(
    store: &dyn ConfigStore,
    text: &str,
    file: &str,
    expected: Option<u64>,
    now: UnixTime,
) -> Result<StoredConfig, PublishError> {
    Config::parse(text, file, None)?;
    match store.swap_config(expected, text, now).await {
        Ok(stored) => Ok(stored),
        Err(StoreError::Conflict) => {
            let current = store
                .get_config()
                .await
                .map_err(PublishError::Store)?
                .map_or(0, |c| c.version);
            Err(PublishError::Changed { current })
        }
        Err(e) => Err(PublishError::Store(e)),
    }
}

/// The published document and the config it holds, if one was published.
pub async fn published(
    store: &dyn ConfigStore,
) -> Result<Option<(StoredConfig, Config)>, PublishError> {
    let Some(stored) = store.get_config().await.map_err(PublishError::Store)? else {
        return Ok(None);
    };
    let config = Config::parse(&stored.text, DOCUMENT_NAME, None)?;
    Ok(Some((stored, config)))
}

/// How a config file stands against the published document, given `base`: the version this
/// file was last pushed as or pulled from (a marker its host keeps; `None` when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Nothing is published: publishing the file starts version 1.
    NothingPublished,
    /// The file is the published text.
    Same {
        /// The published version.
        version: u64,
    },
    /// The file was edited since it was `version`, and the published one is still `version`:
    /// publishing it loses nothing.
    Edited {
        /// The published version.
        version: u64,
    },
    /// The published document changed since this file was pushed or pulled (a `homehook key`
    /// command, another machine), or the file was never synced here: publishing the file
    /// would undo those changes.
    Diverged {
        /// The published version.
        version: u64,
    },
}

/// Compares a file's text with the published document.
pub fn compare(file_text: &str, stored: Option<&StoredConfig>, base: Option<u64>) -> FileState {
    match stored {
        None => FileState::NothingPublished,
        Some(s) if s.text == file_text => FileState::Same { version: s.version },
        Some(s) if base == Some(s.version) => FileState::Edited { version: s.version },
        Some(s) => FileState::Diverged { version: s.version },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn config_with_action(path: &str) -> String {
        format!(
            "[connections.home]\nprovider = \"netatmo\"\n\n[actions.away]\nconnection = \"home\"\npath = \"{path}\"\nkey_hash = \"{HASH}\"\n"
        )
    }

    #[tokio::test]
    async fn a_valid_config_is_published_and_read_back_as_written() {
        let store = MemoryStore::new();
        let now = UnixTime(1_000);
        assert!(published(&store).await.expect("read").is_none());
        let text = format!(
            "# the owner's words\n{}",
            config_with_action("/api/setthermmode")
        );
        let first = publish(&store, &text, "homehook.toml", None, now)
            .await
            .expect("published");
        assert_eq!(first.version, 1);
        let (stored, config) = published(&store).await.expect("read").expect("one");
        assert_eq!(stored.text, text, "comments and all");
        // The text holds key hashes: its Debug gives its size only.
        assert!(!format!("{stored:?}").contains("sha256:"), "{stored:?}");
        assert!(config.actions.contains_key("away"));
        let second = publish(&store, &config_with_action("/api/x"), "h", Some(1), now)
            .await
            .expect("published");
        assert_eq!(second.version, 2);
    }

    #[tokio::test]
    async fn an_invalid_config_is_refused_naming_the_field_and_nothing_is_written() {
        let store = MemoryStore::new();
        let now = UnixTime(1_000);
        publish(
            &store,
            &config_with_action("/ok"),
            "homehook.toml",
            None,
            now,
        )
        .await
        .expect("published");
        let broken =
            config_with_action("/ok").replace("connection = \"home\"", "connection = \"cabin\"");
        let refused = publish(&store, &broken, "homehook.toml", Some(1), now)
            .await
            .expect_err("refused");
        match refused {
            PublishError::Invalid(e) => {
                assert_eq!(e.file, "homehook.toml");
                assert_eq!(e.field, "actions.away.connection");
            }
            other => panic!("{other:?}"),
        }
        let still = store.get_config().await.expect("read").expect("kept");
        assert_eq!((still.version, still.text), (1, config_with_action("/ok")));
    }

    #[test]
    fn a_file_is_compared_with_the_published_document_from_its_base() {
        let stored = StoredConfig {
            version: 3,
            text: "a".into(),
            written_at: UnixTime(0),
        };
        assert_eq!(compare("a", None, None), FileState::NothingPublished);
        assert_eq!(
            compare("a", Some(&stored), None),
            FileState::Same { version: 3 }
        );
        assert_eq!(
            compare("b", Some(&stored), Some(3)),
            FileState::Edited { version: 3 }
        );
        assert_eq!(
            compare("b", Some(&stored), Some(2)),
            FileState::Diverged { version: 3 }
        );
        assert_eq!(
            compare("b", Some(&stored), None),
            FileState::Diverged { version: 3 }
        );
    }

    #[tokio::test]
    async fn of_two_publishers_from_one_version_the_second_is_told_the_current_version() {
        let store = MemoryStore::new();
        let now = UnixTime(1_000);
        publish(&store, &config_with_action("/a"), "h", None, now)
            .await
            .expect("first");
        publish(&store, &config_with_action("/b"), "h", Some(1), now)
            .await
            .expect("one publisher from version 1");
        let late = publish(&store, &config_with_action("/c"), "h", Some(1), now)
            .await
            .expect_err("the other from version 1");
        assert!(
            matches!(late, PublishError::Changed { current: 2 }),
            "{late:?}"
        );
        assert!(late.to_string().contains("version 2"), "{late}");
        let kept = store.get_config().await.expect("read").expect("one");
        assert_eq!(kept.text, config_with_action("/b"));
    }
}
