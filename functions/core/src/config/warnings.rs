//! What a config allows but its owner probably did not mean, said at load (`homehook serve`,
//! `homehook doctor`) without refusing the file.

use super::Config;

impl Config {
    /// Every warning about this config, one sentence each, naming the field.
    pub fn warnings(&self) -> Vec<String> {
        let mut found = Vec::new();
        keys(self, &mut found);
        actions(self, &mut found);
        found
    }
}

/// Keys: one key hash listed in several places (a revocation is of the key, everywhere). Usually
/// a copy left behind (a key moved from an action's own `key_hash` to `[keys.<id>]`, or pasted
/// twice): the entries then disagree on what the key opens and until when, which nobody reading
/// one of them sees.
fn keys(config: &Config, found: &mut Vec<String>) {
    let entries = config.keys.entries();
    for (i, entry) in entries.iter().enumerate() {
        // Said once per key, at its first entry.
        if entries[..i].iter().any(|e| e.hash.same_as(&entry.hash)) {
            continue;
        }
        let fields: Vec<String> = entries
            .iter()
            .filter(|e| e.hash.same_as(&entry.hash))
            .map(|e| key_field(&e.id))
            .collect();
        if fields.len() < 2 {
            continue;
        }
        let listed = fields.join(", ");
        let prefix = entry.hash.key_id();
        found.push(match config.keys.revoked_as(&entry.hash) {
            Some(id) => format!(
                "{listed}: the same key ({prefix}…) is listed {} times and revoked under keys.{id}, so it opens nothing anywhere; remove its other entries",
                fields.len()
            ),
            None => format!(
                "{listed}: the same key ({prefix}…) is listed {} times; each entry adds what it opens and its own expiry, and revoking it anywhere revokes it everywhere; keep one entry",
                fields.len()
            ),
        });
    }
}

/// The field a key entry comes from: `keys.<id>.hash`, or `actions.<name>.key_hash` for an
/// action's own key (whose id is `<name>:<hash prefix>`).
fn key_field(id: &str) -> String {
    match id.split_once(':') {
        Some((action, _)) => format!("actions.{action}.key_hash"),
        None => format!("keys.{id}.hash"),
    }
}

/// Actions: a sensitive built-in (disarm, siren off) made not sensitive, worst of all with GET
/// allowed: then a link preview, a prefetch or a crawler that sees the URL disarms the alarm,
/// and the PIN and the low rate limit no longer apply.
fn actions(config: &Config, found: &mut Vec<String>) {
    for action in config.actions.values() {
        if action.sensitive {
            continue;
        }
        let Some(builtin) = action.builtin.as_deref() else {
            continue;
        };
        let recipe = config
            .connections
            .get(&action.connection)
            .and_then(|conn| config.providers.get(&conn.provider))
            .and_then(|spec| crate::providers::recipes(spec.kind).ok())
            .and_then(|recipes| recipes.get(builtin));
        let Some(recipe) = recipe.filter(|r| r.sensitive) else {
            continue;
        };
        let name = &action.name;
        let what = recipe.summary.to_lowercase();
        if action.methods.contains(&http::Method::GET) {
            found.push(format!(
                "actions.{name}.methods: built-in {builtin} ({what}) is sensitive, but `sensitive = false` and GET make it run when anything opens its link (a chat preview, a browser prefetch); remove `sensitive = false` and GET unless that is really meant"
            ));
        } else {
            found.push(format!(
                "actions.{name}.sensitive: built-in {builtin} ({what}) is sensitive, but `sensitive = false` drops its PIN and its low rate limit; remove it unless that is really meant"
            ));
        }
    }
}
