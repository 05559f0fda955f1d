//! Built-in actions: each provider's vocabulary ("armed", "therm_mode", "station") as recipes of
//! data in `providers/<vendor>.toml`, next to the provider's quirk module. A config action
//! names a recipe with `builtin = "..."` and gives its setup values under `with`; the recipe is
//! then checked exactly like a request written by hand.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::catalog::Quirk;
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

/// The recipe file of a quirk module, if it has one.
fn source(quirk: Quirk) -> Option<(&'static str, &'static str)> {
    Some(match quirk {
        Quirk::Standard => return None,
        Quirk::Netatmo => ("netatmo.toml", include_str!("providers/netatmo.toml")),
        Quirk::SomfyProtect => (
            "somfy_protect.toml",
            include_str!("providers/somfy_protect.toml"),
        ),
        Quirk::Myfox => ("myfox.toml", include_str!("providers/myfox.toml")),
        Quirk::Homey => ("homey.toml", include_str!("providers/homey.toml")),
    })
}

/// The built-in actions of a provider (none for providers defined in config). Parsed once;
/// a broken recipe file is reported as a config error rather than a panic, and a unit test
/// keeps every file valid.
pub fn recipes(quirk: Quirk) -> Result<&'static Recipes, String> {
    static PARSED: OnceLock<BTreeMap<String, Result<Recipes, String>>> = OnceLock::new();
    static EMPTY: OnceLock<Recipes> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        [
            Quirk::Netatmo,
            Quirk::SomfyProtect,
            Quirk::Myfox,
            Quirk::Homey,
        ]
        .into_iter()
        .filter_map(|q| {
            let (file, text) = source(q)?;
            let parsed = toml::from_str::<Recipes>(text)
                .map_err(|e| format!("built-in recipes {file}: {}", e.message()));
            Some((format!("{q:?}"), parsed))
        })
        .collect()
    });
    match all.get(&format!("{quirk:?}")) {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(EMPTY.get_or_init(BTreeMap::new)),
    }
}

#[cfg(test)]
mod spoken_defaults;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// Every recipe of every provider parses, builds into an action when its setup values are
    /// given, and names only code steps its provider has.
    #[test]
    fn every_builtin_action_builds() {
        for (provider, quirk) in [
            ("netatmo", Quirk::Netatmo),
            ("legrand", Quirk::Netatmo),
            ("somfy_protect", Quirk::SomfyProtect),
            ("myfox", Quirk::Myfox),
            ("homey", Quirk::Homey),
        ] {
            let recipes = recipes(quirk).expect("recipes parse");
            assert!(!recipes.is_empty(), "{provider} has built-in actions");
            let mut toml = format!("[connections.c]\nprovider = \"{provider}\"\n");
            for (name, recipe) in recipes {
                if let Some(step) = &recipe.run {
                    assert!(
                        crate::providers::has_step(quirk, step),
                        "{provider}.{name}: {step}"
                    );
                }
                let with: Vec<String> = recipe
                    .setup
                    .iter()
                    .filter(|(_, p)| !p.optional)
                    .map(|(k, _)| format!("{k} = \"x1\""))
                    .collect();
                toml.push_str(&format!(
                    "[actions.{name}]\nconnection = \"c\"\nbuiltin = \"{name}\"\nwith = {{ {} }}\nkey_hash = \"{HASH}\"\n",
                    with.join(", ")
                ));
            }
            let config =
                Config::parse(&toml, provider, None).unwrap_or_else(|e| panic!("{provider}: {e}"));
            assert_eq!(config.actions.len(), recipes.len());
        }
    }

    #[test]
    fn a_builtin_names_what_is_missing_and_what_exists() {
        let config = |body: &str| {
            Config::parse(
                &format!(
                    "[connections.alarm]\nprovider = \"somfy_protect\"\n[actions.a]\nconnection = \"alarm\"\nkey_hash = \"{HASH}\"\n{body}"
                ),
                "homehook.toml",
                None,
            )
        };
        let missing = config("builtin = \"armed\"").expect_err("site_id missing");
        assert_eq!(missing.field, "actions.a.with.site_id");
        assert!(
            missing.problem.contains("homehook discover alarm"),
            "{missing}"
        );
        let unknown = config("builtin = \"arm\"").expect_err("no such built-in");
        assert!(unknown.problem.contains("armed, disarmed"), "{unknown}");
        let both = config("builtin = \"armed\"\nwith = { site_id = \"s\" }\npath = \"/x\"")
            .expect_err("path and builtin");
        assert_eq!(both.field, "actions.a.path");
        let too_long = config("path = \"/x\"\nparams.m = { type = \"end_time\", max = 1e12 }")
            .expect_err("an end time past a year");
        assert_eq!(too_long.field, "actions.a.params.m.max");
        let extra = config("builtin = \"armed\"\nwith = { site_id = \"s\", volume = 3 }")
            .expect_err("unknown with");
        assert_eq!(extra.field, "actions.a.with.volume");
    }

    /// The docs page of each vendor names every one of its built-in actions.
    #[test]
    fn every_builtin_action_is_documented() {
        for (quirk, page) in [
            (
                Quirk::Netatmo,
                include_str!("../../../docs/providers/netatmo.md"),
            ),
            (
                Quirk::SomfyProtect,
                include_str!("../../../docs/providers/somfy-protect.md"),
            ),
            (
                Quirk::Myfox,
                include_str!("../../../docs/providers/myfox.md"),
            ),
            (
                Quirk::Homey,
                include_str!("../../../docs/providers/homey.md"),
            ),
        ] {
            for name in recipes(quirk).expect("recipes").keys() {
                assert!(
                    page.contains(&format!("`{name}`")),
                    "{quirk:?}: {name} is not documented"
                );
            }
        }
    }
}
