//! What `homehook discover` shows: the ids (sites, homes, rooms, devices, flows) a
//! connection's actions need, asked from the vendor by its module.

use serde_json::Value;

use super::port::VendorApi;
use super::{text, vendor_of};
use crate::catalog::VendorKind;
use crate::error::ActionError;

/// What `homehook discover` shows: the ids an action's config needs, grouped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Discovery {
    /// The connection.
    pub connection: String,
    /// The provider.
    pub provider: String,
    /// Groups of things (sites, homes, rooms, devices, ...).
    pub sections: Vec<Section>,
}

/// One group of things with ids.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Section {
    /// What they are ("Rooms of Home").
    pub title: String,
    /// The `with` key their id goes under (`room_id`).
    pub key: String,
    /// The things.
    pub items: Vec<Item>,
}

/// One thing with an id.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Item {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Other ids or facts an action needs with it (`home_id=…`, `bridge=…`, a state).
    pub detail: String,
}

impl Discovery {
    /// A config snippet using one of the provider's built-in actions with ids found here,
    /// to copy into homehook.toml.
    pub fn example(&self, kind: VendorKind) -> Option<String> {
        let recipes = super::recipes(kind).ok()?;
        let first_id = |key: &str| {
            self.sections
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.items.first())
                .map(|i| i.id.clone())
        };
        recipes.iter().find_map(|(name, recipe)| {
            let with = recipe
                .required_setup()
                .map(|k| Some(format!("{k} = {:?}", first_id(k)?)))
                .collect::<Option<Vec<_>>>()?;
            Some(format!(
                "[actions.{name}]\nconnection = \"{}\"\nbuiltin = \"{name}\"\nwith = {{ {} }}\nkey_hash = \"<the hash from `homehook key new`>\"",
                self.connection,
                with.join(", ")
            ))
        })
    }
}

impl Section {
    pub(crate) fn new(title: impl Into<String>, key: &str) -> Self {
        Self {
            title: title.into(),
            key: key.into(),
            items: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, id: &Value, name: &Value, detail: impl Into<String>) {
        self.items.push(Item {
            id: text(id),
            name: text(name),
            detail: detail.into(),
        });
    }
}

/// Lists what the actions of a connection need, by asking its API.
pub async fn discover(api: &dyn VendorApi) -> Result<Discovery, ActionError> {
    let sections = vendor_of(api.spec().kind).discover(api).await?;
    Ok(Discovery {
        connection: api.connection_id().to_string(),
        provider: api.spec().id.clone(),
        sections,
    })
}
