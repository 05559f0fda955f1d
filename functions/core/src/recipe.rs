//! Built-in actions: each provider's vocabulary ("armed", "therm_mode", "station") as recipes of
//! data in `providers/<vendor>/recipes.toml`, next to the vendor's code. A config action
//! names a recipe with `builtin = "..."` and gives its setup values under `with`; the recipe is
//! then checked exactly like a request written by hand.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::params::ParamDecl;

/// One built-in action, as written in a provider's recipe file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// What it does, in a line.
    pub summary: String,
    /// The vendor call's method.
    #[serde(default = "post")]
    pub method: String,
    /// Path under the API base, with `{param}` templates.
    pub path: String,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Form body.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Values config must give under `with` (site, home, device ids).
    #[serde(default)]
    pub(crate) setup: BTreeMap<String, ParamDecl>,
    /// Values callers may send (config may fix them too).
    #[serde(default)]
    pub(crate) params: BTreeMap<String, ParamDecl>,
    /// The spoken default answer: a minijinja template (see [`crate::answer`]); config's
    /// `answer` replaces it.
    pub answer: Option<String>,
    /// A step of the provider's quirk module that replaces the single request.
    pub run: Option<String>,
    /// Changes nothing: callers may use GET.
    #[serde(default)]
    pub read_only: bool,
    /// Disarms or opens something: POST only, a stricter rate limit, a PIN if configured.
    #[serde(default)]
    pub sensitive: bool,
    /// OAuth scopes the vendor wants for this call beyond the provider's defaults (Netatmo's
    /// persons need `write_camera`). A connection with this action asks for them when it is
    /// connected; `discover` and `doctor` warn when its grant lacks them.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Recipe {
    /// Names of the setup values config must give.
    pub fn setup_names(&self) -> impl Iterator<Item = &str> {
        self.setup.keys().map(String::as_str)
    }

    /// Names of the setup values config cannot leave out.
    pub fn required_setup(&self) -> impl Iterator<Item = &str> {
        self.setup
            .iter()
            .filter(|(_, p)| !p.optional)
            .map(|(k, _)| k.as_str())
    }

    /// Names of the values callers may send.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }
}

fn post() -> String {
    "POST".into()
}

/// Built-in actions by name.
pub type Recipes = BTreeMap<String, Recipe>;

/// Parses a vendor's recipe file (`providers/<vendor>/recipes.toml`); the error names the file.
pub fn parse(file: &str, text: &str) -> Result<Recipes, String> {
    toml::from_str::<Recipes>(text).map_err(|e| format!("built-in recipes {file}: {}", e.message()))
}
