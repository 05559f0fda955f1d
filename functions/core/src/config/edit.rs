//! Edits of a `homehook.toml` text that keep everything else as written (comments, order,
//! spacing), through `toml_edit`: what `homehook key new/revoke/rotate` change in the published
//! document. An edit only rewrites text; the result is checked like any config when it is
//! published ([`crate::publish`]).

use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::clock::UnixTime;
use crate::keys::KeyHash;

/// The id `homehook key` uses for the admin key (`server.admin_key_hash`).
pub const ADMIN_KEY_ID: &str = "admin";

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    /// The text is not TOML.
    #[error("the config is not TOML: {0}")]
    NotToml(String),
    /// No key has this id.
    #[error("no key \"{0}\" in the config (`homehook key list` shows the ids)")]
    NoSuchKey(String),
    /// A `[keys.<id>]` with this id exists already.
    #[error("a key \"{0}\" exists already: choose another id")]
    KeyExists(String),
    /// A section has the wrong shape for the edit (for example `keys` that is not a table).
    #[error("{0} is not a table")]
    NotATable(String),
}

fn parse(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::NotToml(e.message().to_string()))
}

/// The `[name]` table, made if missing (as a section, not an inline table).
fn section<'a>(doc: &'a mut DocumentMut, name: &str) -> Result<&'a mut Table, EditError> {
    let item = doc.entry(name).or_insert_with(|| Item::Table(Table::new()));
    if let Item::Table(t) = item {
        // An implicit parent keeps `[keys.x]` headers without an empty `[keys]` above them.
        t.set_implicit(true);
    }
    item.as_table_mut()
        .ok_or_else(|| EditError::NotATable(name.into()))
}

fn rfc3339(at: UnixTime) -> String {
    jiff::Timestamp::from_second(at.0)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.0.to_string())
}

/// Adds `[keys.<id>]` with `hash`, opening `actions` (`["*"]` for all), expiring at `expires`.
pub fn add_named_key(
    text: &str,
    id: &str,
    hash: &KeyHash,
    actions: &[String],
    expires: Option<UnixTime>,
) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let keys = section(&mut doc, "keys")?;
    if keys.contains_key(id) {
        return Err(EditError::KeyExists(id.into()));
    }
    let mut key = Table::new();
    key.insert("hash", value(hash.to_string()));
    key.insert("actions", value(actions.iter().collect::<Array>()));
    if let Some(at) = expires {
        key.insert("expires", value(rfc3339(at)));
    }
    keys.insert(id, Item::Table(key));
    Ok(doc.to_string())
}

/// Marks key `id` revoked. A `[keys.<id>]` key gets `revoked = true` (kept, so that its later
/// use is logged by name); an action's own key (`<action>:<hash prefix>`) is taken out of the
/// action's `key_hash`; the admin key ([`ADMIN_KEY_ID`]) is removed.
pub fn revoke_key(text: &str, id: &str) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    if id == ADMIN_KEY_ID {
        let removed = doc
            .get_mut("server")
            .and_then(Item::as_table_like_mut)
            .and_then(|server| server.remove("admin_key_hash"));
        return match removed {
            Some(_) => Ok(doc.to_string()),
            None => Err(EditError::NoSuchKey(id.into())),
        };
    }
    if let Some(key) = named_key(&mut doc, id) {
        key.insert("revoked", value(true));
        // A revocation is of the key, everywhere: the same hash listed under an action's
        // `key_hash` (a migration from per-action keys) goes too, or the config would not load.
        let hash = key.get("hash").and_then(Item::as_str).map(str::to_string);
        if let Some(hash) = hash {
            remove_from_actions(&mut doc, &hash);
        }
        return Ok(doc.to_string());
    }
    let (action, prefix) = id
        .split_once(':')
        .ok_or_else(|| EditError::NoSuchKey(id.into()))?;
    let Some(table) = doc
        .get_mut("actions")
        .and_then(|a| a.get_mut(action))
        .and_then(Item::as_table_like_mut)
    else {
        return Err(EditError::NoSuchKey(id.into()));
    };
    let own = |v: &toml_edit::Value| {
        v.as_str()
            .and_then(|h| h.parse::<KeyHash>().ok())
            .is_some_and(|h| h.key_id() == prefix)
    };
    let Some(item) = table.get_mut("key_hash") else {
        return Err(EditError::NoSuchKey(id.into()));
    };
    match item.as_value_mut() {
        Some(v) if own(v) => {
            table.remove("key_hash");
        }
        Some(toml_edit::Value::Array(list)) if list.iter().any(own) => {
            retain(list, |v| !own(v));
        }
        _ => return Err(EditError::NoSuchKey(id.into())),
    }
    Ok(doc.to_string())
}

/// Sets the expiry of `[keys.<id>]` (the end of a rotation's overlap).
pub fn expire_key(text: &str, id: &str, at: UnixTime) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let key = named_key(&mut doc, id).ok_or_else(|| EditError::NoSuchKey(id.into()))?;
    key.insert("expires", value(rfc3339(at)));
    Ok(doc.to_string())
}

/// Sets `server.admin_key_hash`.
pub fn set_admin_key(text: &str, hash: &KeyHash) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    section(&mut doc, "server")?.insert("admin_key_hash", value(hash.to_string()));
    if let Some(Item::Table(t)) = doc.get_mut("server") {
        t.set_implicit(false);
    }
    Ok(doc.to_string())
}

/// The actions `[keys.<id>]` opens, as written.
pub fn named_key_actions(text: &str, id: &str) -> Result<Vec<String>, EditError> {
    let mut doc = parse(text)?;
    let key = named_key(&mut doc, id).ok_or_else(|| EditError::NoSuchKey(id.into()))?;
    Ok(key
        .get("actions")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Keeps the items of `list` that `keep` says, written as before: `["a", "b"]`, not `[ "b"]`
/// once "a" is gone (the space before "b" was its separator).
fn retain(list: &mut toml_edit::Array, keep: impl Fn(&toml_edit::Value) -> bool) {
    list.retain(keep);
    if let Some(first) = list.get_mut(0) {
        first.decor_mut().set_prefix("");
    }
}

/// Takes `hash` out of every action's `key_hash` (a string or a list).
fn remove_from_actions(doc: &mut DocumentMut, hash: &str) {
    let Some(actions) = doc.get_mut("actions").and_then(Item::as_table_like_mut) else {
        return;
    };
    for (_, action) in actions.iter_mut() {
        let Some(table) = action.as_table_like_mut() else {
            continue;
        };
        match table.get_mut("key_hash").and_then(Item::as_value_mut) {
            Some(toml_edit::Value::String(s)) if s.value() == hash => {
                table.remove("key_hash");
            }
            Some(toml_edit::Value::Array(list)) => retain(list, |v| v.as_str() != Some(hash)),
            _ => {}
        }
    }
}

fn named_key<'a>(doc: &'a mut DocumentMut, id: &str) -> Option<&'a mut dyn toml_edit::TableLike> {
    doc.get_mut("keys")?.get_mut(id)?.as_table_like_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# my home\n[server]\nadmin_key_hash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n\n[actions.away] # the phone's\nconnection = \"home\"\nkey_hash = [\"sha256:2222222222222222222222222222222222222222222222222222222222222222\", \"sha256:3333333333333333333333333333333333333333333333333333333333333333\"]\n\n[keys.phone]\nhash = \"sha256:4444444444444444444444444444444444444444444444444444444444444444\"\nactions = [\"away\"]\n";

    fn hash(digit: char) -> KeyHash {
        format!("sha256:{}", digit.to_string().repeat(64))
            .parse()
            .expect("hash")
    }

    #[test]
    fn a_named_key_is_added_below_the_others_and_the_rest_is_kept_as_written() {
        let edited = add_named_key(
            TEXT,
            "watch",
            &hash('5'),
            &["away".into()],
            Some(UnixTime(1_796_342_400)),
        )
        .expect("added");
        assert!(edited.starts_with(TEXT), "{edited}");
        assert!(
            edited.ends_with("\n[keys.watch]\nhash = \"sha256:5555555555555555555555555555555555555555555555555555555555555555\"\nactions = [\"away\"]\nexpires = \"2026-12-04T00:00:00Z\"\n"),
            "{edited}"
        );
        assert_eq!(
            add_named_key(TEXT, "phone", &hash('5'), &[], None),
            Err(EditError::KeyExists("phone".into()))
        );
        // A config without keys gets its first [keys.<id>] without an empty [keys] above it.
        let first = add_named_key("", "phone", &hash('5'), &["*".into()], None).expect("added");
        assert!(first.starts_with("[keys.phone]\n"), "{first}");
    }

    #[test]
    fn revoking_marks_a_named_key_and_removes_an_actions_own_or_the_admin_key() {
        let named = revoke_key(TEXT, "phone").expect("named");
        assert!(
            named.ends_with("actions = [\"away\"]\nrevoked = true\n"),
            "{named}"
        );
        let own = revoke_key(TEXT, "away:33333333").expect("own");
        assert!(own.contains("key_hash = [\"sha256:2222"), "{own}");
        assert!(!own.contains("3333"), "{own}");
        assert!(
            own.contains("[actions.away] # the phone's"),
            "comments kept: {own}"
        );
        let admin = revoke_key(TEXT, ADMIN_KEY_ID).expect("admin");
        assert!(!admin.contains("1111"), "{admin}");
        for unknown in ["nobody", "away:99999999", "cabin:22222222"] {
            assert_eq!(
                revoke_key(TEXT, unknown),
                Err(EditError::NoSuchKey(unknown.into()))
            );
        }
    }

    /// The revoked key's hash also listed on an action (the red team's "revoked, yet listed
    /// again") leaves that action too, whether as a string or in a list.
    #[test]
    fn revoking_a_named_key_takes_its_hash_off_every_action() {
        let four = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
        let text = format!(
            "{TEXT}\n[actions.arm]\nconnection = \"home\"\nkey_hash = \"{four}\"\n\n[actions.lights]\nconnection = \"home\"\nkey_hash = [\"{four}\", \"sha256:2222222222222222222222222222222222222222222222222222222222222222\"]\n"
        );
        let edited = revoke_key(&text, "phone").expect("revoked");
        assert_eq!(
            edited.matches(four).count(),
            1,
            "only [keys.phone] keeps it: {edited}"
        );
        assert!(edited.contains("revoked = true"), "{edited}");
        assert!(
            edited.contains("[actions.lights]\nconnection = \"home\"\nkey_hash = [\"sha256:2222"),
            "{edited}"
        );
        assert!(
            !edited.contains("[actions.arm]\nconnection = \"home\"\nkey_hash"),
            "{edited}"
        );
    }

    #[test]
    fn expiry_and_admin_key_are_set_in_place() {
        let expiring = expire_key(TEXT, "phone", UnixTime(1_796_342_400)).expect("expiry");
        assert!(
            expiring.ends_with("expires = \"2026-12-04T00:00:00Z\"\n"),
            "{expiring}"
        );
        let admin = set_admin_key(TEXT, &hash('6')).expect("admin");
        assert!(admin.contains("admin_key_hash = \"sha256:6666"), "{admin}");
        assert!(!admin.contains("1111"));
        let fresh = set_admin_key("[actions.x]\nconnection = \"c\"\n", &hash('6')).expect("new");
        assert!(fresh.contains("[server]\nadmin_key_hash"), "{fresh}");
        assert_eq!(
            named_key_actions(TEXT, "phone").expect("actions"),
            vec!["away".to_string()]
        );
        assert_eq!(
            parse("[[")
                .map(|_| ())
                .map_err(|e| matches!(e, EditError::NotToml(_))),
            Err(true)
        );
    }
}
