//! Managing action keys and the admin key at runtime: each change is an edit of the published
//! config ([`crate::publish`]), checked and written with compare-and-swap like a push, so every
//! instance follows it within seconds (see `live`). No deploy, no restart.
//!
//! A new key is returned once, to show; only its hash is written. Rotation makes the successor
//! and lets the old key work until the overlap ends (`expires`), so phones can be moved over.

use crate::clock::UnixTime;
use crate::config::Config;
use crate::config::edit::{self, ADMIN_KEY_ID, EditError};
use crate::guard::key_use;
use crate::guard::keyring::KeyScope;
use crate::keys::ActionKey;
use crate::publish::{self, PublishError};
use crate::store::{ConfigStore, ItemStore, StoreError, StoredConfig};

/// How many times an edit is tried again when another publisher wrote meanwhile.
const ATTEMPTS: usize = 5;

/// Why a key change was not made. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    /// Nothing is published: there is no config to change.
    #[error("no config is published yet: `homehook config push` publishes homehook.toml first")]
    NothingPublished,
    /// The edit does not apply (no such key, the id is taken…).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The edited config would not be valid, or the store failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// This key cannot be rotated in place.
    #[error("{0}")]
    NotRotatable(String),
}

/// A published config before and after one change.
#[derive(Debug)]
pub struct Edited {
    /// The document the change was made to.
    pub before: StoredConfig,
    /// The document written.
    pub after: StoredConfig,
}

/// One key, as `homehook key list` shows it. No hash, no secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The key's id: `[keys.<id>]`, `<action>:<hash prefix>` for an action's own, or `admin`.
    pub id: String,
    /// What it opens: action names, `*` for all, `admin` for the admin routes.
    pub scope: Vec<String>,
    /// When it stops working (the end of a rotation's overlap).
    pub expires: Option<UnixTime>,
    /// Revoked: it opens nothing.
    pub revoked: bool,
    /// When it last opened an action (recorded at most every
    /// [`key_use::RECORD_EVERY_SECS`]; never for the admin key).
    pub last_used: Option<UnixTime>,
}

/// Every key of `config`, the admin key first.
pub async fn list(
    items: &dyn ItemStore,
    config: &Config,
    now: UnixTime,
) -> Result<Vec<KeyInfo>, StoreError> {
    let mut keys = Vec::new();
    if config.server.admin_key_hash.is_some() {
        keys.push(KeyInfo {
            id: ADMIN_KEY_ID.into(),
            scope: vec!["admin".into()],
            expires: None,
            revoked: false,
            last_used: None,
        });
    }
    for entry in config.keys.entries() {
        keys.push(KeyInfo {
            id: entry.id.clone(),
            scope: match &entry.scope {
                KeyScope::All => vec!["*".into()],
                KeyScope::Actions(names) => names.iter().cloned().collect(),
            },
            expires: entry.expires,
            revoked: entry.revoked,
            last_used: key_use::last_use(items, &entry.id, now).await?,
        });
    }
    Ok(keys)
}

/// Applies `change` to the published text and publishes the result, starting again from the
/// newer document when another publisher wrote meanwhile (the change is a function of the
/// text, so nothing of theirs is lost).
pub async fn edit_published(
    store: &dyn ConfigStore,
    now: UnixTime,
    change: impl Fn(&str) -> Result<String, EditError>,
) -> Result<Edited, KeyAdminError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = store
            .get_config()
            .await
            .map_err(PublishError::Store)?
            .ok_or(KeyAdminError::NothingPublished)?;
        let text = change(&before.text)?;
        match publish::publish(
            store,
            &text,
            publish::DOCUMENT_NAME,
            Some(before.version),
            now,
        )
        .await
        {
            Ok(after) => return Ok(Edited { before, after }),
            Err(PublishError::Changed { .. }) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Makes a new key: `[keys.<id>]` opening `actions` (`["*"]` for all), or, for id
/// [`ADMIN_KEY_ID`], a new admin key (replacing the old one at once). The key is in the answer
/// and nowhere else.
pub async fn create(
    store: &dyn ConfigStore,
    now: UnixTime,
    id: &str,
    actions: &[String],
    expires: Option<UnixTime>,
) -> Result<(ActionKey, Edited), KeyAdminError> {
    let key = ActionKey::generate();
    let hash = key.hash();
    let edited = edit_published(store, now, |text| {
        if id == ADMIN_KEY_ID {
            edit::set_admin_key(text, &hash)
        } else {
            edit::add_named_key(text, id, &hash, actions, expires)
        }
    })
    .await?;
    Ok((key, edited))
}

/// Revokes key `id` (see [`edit::revoke_key`] for each kind of key).
pub async fn revoke(
    store: &dyn ConfigStore,
    now: UnixTime,
    id: &str,
) -> Result<Edited, KeyAdminError> {
    edit_published(store, now, |text| edit::revoke_key(text, id)).await
}

/// Rotates `[keys.<id>]`: a successor with the same actions (id `<id>-2`, `-3`…), and the old
/// key expiring after `overlap_secs` (revoked at once for 0). The admin key is replaced at once
/// (one hash: no overlap). Returns the new key and its id.
pub async fn rotate(
    store: &dyn ConfigStore,
    now: UnixTime,
    id: &str,
    overlap_secs: i64,
) -> Result<(ActionKey, String, Edited), KeyAdminError> {
    if id == ADMIN_KEY_ID {
        let (key, edited) = create(store, now, id, &[], None).await?;
        return Ok((key, id.to_string(), edited));
    }
    if id.contains(':') {
        return Err(KeyAdminError::NotRotatable(format!(
            "\"{id}\" is an action's own key_hash: make a named key for the action with `homehook key new --for <action>`, then revoke this one"
        )));
    }
    let key = ActionKey::generate();
    let hash = key.hash();
    let successor = std::sync::Mutex::new(String::new());
    let edited = edit_published(store, now, |text| {
        let actions = edit::named_key_actions(text, id)?;
        let next = successor_id(text, id)?;
        let with_new = edit::add_named_key(text, &next, &hash, &actions, None)?;
        let done = if overlap_secs <= 0 {
            edit::revoke_key(&with_new, id)?
        } else {
            edit::expire_key(&with_new, id, now.plus_secs(overlap_secs))?
        };
        *successor.lock().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(done)
    })
    .await?;
    let next = successor.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok((key, next, edited))
}

/// The first free `<base>-<n>` (n ≥ 2), where `<base>` is `id` without a `-<n>` of its own.
fn successor_id(text: &str, id: &str) -> Result<String, EditError> {
    let base = match id.rsplit_once('-') {
        Some((base, n)) if !base.is_empty() && n.parse::<u32>().is_ok() => base,
        _ => id,
    };
    (2..1000)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| edit::named_key_actions(text, candidate).is_err())
        .ok_or_else(|| EditError::KeyExists(format!("{base}-999")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::key_use::KeyUse;
    use crate::keys::KeyHash;
    use crate::store::MemoryStore;

    fn text() -> String {
        format!(
            "[server]\nadmin_key_hash = \"{}\"\n\n[connections.home]\nprovider = \"netatmo\"\n\n[actions.away]\nconnection = \"home\"\npath = \"/api/setthermmode\"\n\n[keys.phone]\nhash = \"{}\"\nactions = [\"away\"]\n",
            KeyHash::of("admin"),
            KeyHash::of("phone")
        )
    }

    fn config(stored: &StoredConfig) -> Config {
        Config::parse(&stored.text, "t", None).expect("valid")
    }

    #[tokio::test]
    async fn keys_are_made_listed_rotated_and_revoked_as_published_edits() {
        let store = MemoryStore::new();
        let now = UnixTime(1_796_342_400);
        assert!(matches!(
            revoke(&store, now, "phone").await,
            Err(KeyAdminError::NothingPublished)
        ));
        publish::publish(&store, &text(), "t", None, now)
            .await
            .expect("v1");

        let (watch, made) = create(&store, now, "watch", &["away".into()], None)
            .await
            .expect("made");
        assert_eq!((made.before.version, made.after.version), (1, 2));
        let cfg = config(&made.after);
        assert!(cfg.keys.admit(watch.expose(), "away", now).is_ok());

        // A use shows in the list.
        KeyUse::default().note(&store, "watch", now).await;
        let listed = list(&store, &cfg, now).await.expect("list");
        let ids: Vec<_> = listed.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["admin", "phone", "watch"]);
        assert_eq!(listed[2].last_used, Some(now));
        assert_eq!(listed[1].last_used, None);

        // Rotation: the successor works now, the old key until the overlap ends.
        let (phone2, id, rotated) = rotate(&store, now, "phone", 3600).await.expect("rotated");
        assert_eq!(id, "phone-2");
        let cfg = config(&rotated.after);
        assert!(cfg.keys.admit(phone2.expose(), "away", now).is_ok());
        assert!(cfg.keys.admit("phone", "away", now.plus_secs(3599)).is_ok());
        assert!(
            cfg.keys
                .admit("phone", "away", now.plus_secs(3600))
                .is_err()
        );
        let (_, id, _) = rotate(&store, now, "phone-2", 0).await.expect("again");
        assert_eq!(id, "phone-3");

        let revoked = revoke(&store, now, "watch").await.expect("revoked");
        let cfg = config(&revoked.after);
        assert!(cfg.keys.admit(watch.expose(), "away", now).is_err());

        // The admin key is replaced at once.
        let (admin, _, replaced) = rotate(&store, now, "admin", 3600).await.expect("admin");
        let hash = config(&replaced.after).server.admin_key_hash.expect("hash");
        assert!(hash.verify(admin.expose()) && !hash.verify("admin"));
    }

    #[tokio::test]
    async fn a_change_that_would_leave_an_action_without_a_key_is_refused_and_nothing_written() {
        let store = MemoryStore::new();
        let now = UnixTime(1_796_342_400);
        publish::publish(&store, &text(), "t", None, now)
            .await
            .expect("v1");
        let err = revoke(&store, now, "phone").await.expect_err("refused");
        assert!(
            err.to_string().contains("no key opens this action"),
            "{err}"
        );
        assert_eq!(
            store.get_config().await.expect("read").expect("v").version,
            1
        );
        assert!(matches!(
            rotate(&store, now, "away:12345678", 60).await,
            Err(KeyAdminError::NotRotatable(_))
        ));
    }
}
