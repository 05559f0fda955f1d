//! The OAuth scopes a connection's actions need. A built-in action may need scopes beyond its
//! provider's defaults (Netatmo's persons need `write_camera`); a connection asks for them when
//! it is connected, and a grant made before the action was added is found lacking here, so
//! `discover` and `doctor` can say "reconnect" instead of the vendor's bare "code 13".

use std::collections::BTreeMap;

use super::{Action, Config, Connection};
use crate::catalog::ProviderSpec;

/// An action whose connection was not granted every scope it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGap {
    /// The action's name.
    pub action: String,
    /// The built-in it uses.
    pub builtin: String,
    /// The scopes it needs that the grant lacks.
    pub missing: Vec<String>,
}

/// The scopes the built-in of `action` needs (none for hand-written requests).
fn needed_by(
    action: &Action,
    providers: &BTreeMap<String, ProviderSpec>,
    conn: &Connection,
) -> Vec<String> {
    let (Some(builtin), Some(spec)) = (&action.builtin, providers.get(&conn.provider)) else {
        return Vec::new();
    };
    crate::providers::recipes(spec.kind)
        .ok()
        .and_then(|recipes| recipes.get(builtin))
        .map(|recipe| recipe.scopes.clone())
        .unwrap_or_default()
}

/// Adds to each connection's requested scopes those its built-in actions need, so connecting
/// (or reconnecting) asks the owner for everything the configured actions will use.
pub(super) fn add_needed_scopes(
    connections: &mut BTreeMap<String, Connection>,
    actions: &BTreeMap<String, Action>,
    providers: &BTreeMap<String, ProviderSpec>,
) {
    for action in actions.values() {
        let Some(conn) = connections.get_mut(&action.connection) else {
            continue;
        };
        for scope in needed_by(action, providers, conn) {
            if !conn.scopes.contains(&scope) {
                conn.scopes.push(scope);
            }
        }
    }
}

impl Config {
    /// The actions of `connection` whose built-in needs a scope that `granted` (the scopes the
    /// vendor granted when the connection was made) lacks. Empty when `granted` is empty: a
    /// vendor that does not say what it granted cannot be second-guessed.
    pub fn scope_gaps(&self, connection: &str, granted: &[String]) -> Vec<ScopeGap> {
        let Some(conn) = self.connections.get(connection) else {
            return Vec::new();
        };
        if granted.is_empty() {
            return Vec::new();
        }
        self.actions
            .iter()
            .filter(|(_, a)| a.connection == connection)
            .filter_map(|(name, action)| {
                let missing: Vec<String> = needed_by(action, &self.providers, conn)
                    .into_iter()
                    .filter(|s| !granted.contains(s))
                    .collect();
                (!missing.is_empty()).then(|| ScopeGap {
                    action: name.clone(),
                    builtin: action.builtin.clone().unwrap_or_default(),
                    missing,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::ScopeGap;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn config(extra: &str) -> Config {
        let text = format!(
            "[connections.home]\nprovider = \"netatmo\"\n{extra}\n\
             [actions.away]\nconnection = \"home\"\nbuiltin = \"persons_away\"\nwith = {{ home_id = \"h\" }}\nkey_hash = \"{HASH}\"\n\
             [actions.heat]\nconnection = \"home\"\nbuiltin = \"therm_mode\"\nwith = {{ home_id = \"h\" }}\nkey_hash = \"{HASH}\"\n"
        );
        Config::parse(&text, "homehook.toml", None).expect("valid")
    }

    /// Connecting asks for what the configured built-ins need, on top of the defaults or of the
    /// scopes the owner listed.
    #[test]
    fn a_connection_asks_for_the_scopes_its_actions_need() {
        let defaults = config("");
        assert_eq!(
            defaults.connections["home"].scopes,
            [
                "read_station",
                "read_thermostat",
                "write_thermostat",
                "write_camera"
            ]
        );
        let listed = config("scopes = [\"read_thermostat\"]");
        assert_eq!(
            listed.connections["home"].scopes,
            ["read_thermostat", "write_camera", "write_thermostat"]
        );
    }

    /// A grant from before `persons_away` was configured lacks `write_camera`: that action,
    /// and only it, is named.
    #[test]
    fn a_grant_without_a_needed_scope_is_found() {
        let c = config("");
        let old_grant: Vec<String> = ["read_station", "read_thermostat", "write_thermostat"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            c.scope_gaps("home", &old_grant),
            [ScopeGap {
                action: "away".into(),
                builtin: "persons_away".into(),
                missing: vec!["write_camera".into()],
            }]
        );
        let full = c.connections["home"].scopes.clone();
        assert!(c.scope_gaps("home", &full).is_empty());
        assert!(
            c.scope_gaps("home", &[]).is_empty(),
            "nothing said, nothing guessed"
        );
    }
}
