//! The starter files `homehook init` writes: a commented homehook.toml with a connection per
//! chosen vendor (and their built-in actions, commented out until the ids are known), and a
//! secrets file template with the entries each vendor needs.

use homehook_core::Config;
use homehook_core::catalog::{Grant, ProviderSpec};

/// What `init` knows about a vendor beyond the catalog: the example action, and where its
/// credentials come from.
pub(crate) struct Vendor {
    /// Provider id; also the connection's and the secret entry's name.
    pub(crate) id: &'static str,
    /// The built-in action shown as an example.
    example: &'static str,
    /// Where the credentials come from, for the secrets file's comment.
    credentials: &'static str,
}

/// The vendors `init` can set up, in the order they are offered.
pub(crate) const VENDORS: &[Vendor] = &[
    Vendor {
        id: "netatmo",
        example: "therm_mode",
        credentials: "your app at dev.netatmo.com (My apps: client ID and client secret)",
    },
    Vendor {
        id: "legrand",
        example: "light_on",
        credentials: "your app at dev.netatmo.com (Works with Legrand uses Netatmo Connect)",
    },
    Vendor {
        id: "somfy_protect",
        example: "armed",
        credentials: "the Somfy Protect mobile app's client id and secret, and your Somfy account's e-mail and password (docs/providers/somfy-protect.md)",
    },
    Vendor {
        id: "myfox",
        example: "armed",
        credentials: "your application at the Myfox developer site, and your Myfox account's e-mail and password (a personal app; docs/providers/myfox.md)",
    },
    Vendor {
        id: "homey",
        example: "device_on",
        credentials: "your API client at developer.athom.com",
    },
];

/// The vendor with this id.
pub(crate) fn vendor(id: &str) -> Option<&'static Vendor> {
    VENDORS.iter().find(|v| v.id == id)
}

/// Ids of every vendor, comma-separated (for messages).
pub(crate) fn vendor_ids() -> String {
    VENDORS.iter().map(|v| v.id).collect::<Vec<_>>().join(", ")
}

/// The two files' text.
pub(crate) struct Starter {
    /// homehook.toml.
    pub(crate) config: String,
    /// The secrets file.
    pub(crate) secrets: String,
}

/// Writes the starter files' text for `vendors`, with `admin_key_hash` and the secrets file
/// named `secrets_name` (relative to the config).
pub(crate) fn render(
    vendors: &[&Vendor],
    admin_key_hash: &str,
    secrets_name: &str,
    defaults: &Config,
) -> String {
    let names: Vec<&str> = vendors.iter().map(|v| v.id).collect();
    let mut out = format!(
        r#"# homehook.toml, written by `homehook init` for: {names}.
# Every field is checked at start-up: a mistake stops `homehook serve` with a message naming
# this file, the field and what is wrong. `homehook doctor` checks the whole setup;
# homehook.example.toml (in the repository) shows every setting.

[server]
# Where `homehook serve` listens. Keep it on 127.0.0.1; put a TLS reverse proxy in front if
# phones must reach it from outside, and set public_url to the address they use.
listen = "{listen}"
# Behind that proxy, name it so the wrong-key lockout counts each caller, not the proxy:
# trusted_proxies = ["127.0.0.1"]
# The URL people and vendors reach homehook at (default: http://<listen>). Each vendor app's
# redirect URI is <public_url>/callback/<provider>.
# public_url = "https://home.example.com"
# Hash of the admin key `homehook init` printed (the key itself is not kept anywhere). The
# admin key opens connect links and /status in a browser; `homehook key new` makes another.
admin_key_hash = "{admin_key_hash}"
# Vendor credentials: a TOML file readable by you only (chmod 600).
secrets_file = "{secrets_name}"
# Where the embedded store (tokens, connect links) lives. Default: ~/.local/share/homehook.
# data_dir = "/var/lib/homehook"
"#,
        names = names.join(", "),
        listen = defaults.server.listen,
    );
    for v in vendors {
        if let Some(spec) = defaults.providers.get(v.id) {
            out.push('\n');
            out.push_str(&connection_block(v, spec, defaults));
        }
    }
    out.push_str(
        r#"
# --- Keys for several actions (a phone's shortcuts): `homehook key new --for a,b --id phone`
# prints a [keys.phone] block to paste here. Logs name a key by its id, never its value.
"#,
    );
    out
}

fn connection_block(v: &Vendor, spec: &ProviderSpec, defaults: &Config) -> String {
    let grant = spec
        .grants
        .first()
        .copied()
        .unwrap_or(Grant::AuthorizationCode);
    let how = match grant {
        Grant::AuthorizationCode => format!(
            "authorization code: you allow access once in a browser with `homehook connect {id}`.\n# Register {callback} as the redirect URI of your {name} app.",
            id = v.id,
            callback = defaults.callback_url(v.id),
            name = spec.display_name,
        ),
        Grant::Password => format!(
            "password grant: the account's e-mail and password are in the secrets file;\n# it connects on first use, or now with `homehook connect {}`.",
            v.id
        ),
    };
    let mut out = format!(
        "# --- {name}: {how}\n[connections.{id}]\nprovider = \"{id}\"\nlabel = \"{name}\"\nsecret = \"{id}\"  # the [{id}] table of the secrets file\n",
        name = spec.display_name,
        id = v.id,
    );
    if !spec.default_scopes.is_empty() {
        let scopes: Vec<String> = spec
            .default_scopes
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        out.push_str(&format!(
            "# scopes = [{}]   # the default\n",
            scopes.join(", ")
        ));
    }
    if spec.grants.len() > 1 {
        let others: Vec<&str> = spec.grants[1..].iter().map(|g| g.as_str()).collect();
        out.push_str(&format!(
            "# grant = \"{}\"   # the other grant {} supports (then only client_id and client_secret in the secret)\n",
            others.join("\" or \""),
            spec.display_name
        ));
    }
    out.push_str(&actions_comment(v, spec));
    out
}

/// The vendor's built-in actions as comments, and one of them written out, commented.
fn actions_comment(v: &Vendor, spec: &ProviderSpec) -> String {
    let Ok(recipes) = homehook_core::providers::recipes(spec.kind) else {
        return String::new();
    };
    if recipes.is_empty() {
        return String::new();
    }
    let width = recipes.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = format!(
        "\n# Built-in actions of {} (`homehook discover {}` lists the ids they need):\n",
        spec.display_name, v.id
    );
    for (name, recipe) in recipes {
        let setup: Vec<&str> = recipe.required_setup().collect();
        let with = if setup.is_empty() {
            String::new()
        } else {
            format!(" (with: {})", setup.join(", "))
        };
        out.push_str(&format!("#   {name:<width$}  {}{with}\n", recipe.summary));
    }
    if let Some(recipe) = recipes.get(v.example) {
        let action = format!("{}_{}", v.id, v.example);
        let with: Vec<String> = recipe
            .required_setup()
            .map(|k| format!("{k} = \"<from homehook discover {}>\"", v.id))
            .collect();
        out.push_str(&format!(
            "# To use one, uncomment and fill this (its key: `homehook key new --for {action}`):\n# [actions.{action}]\n# connection = \"{id}\"\n# builtin = \"{example}\"\n",
            id = v.id,
            example = v.example,
        ));
        if !with.is_empty() {
            out.push_str(&format!("# with = {{ {} }}\n", with.join(", ")));
        }
        out.push_str("# key_hash = \"<the hash from `homehook key new`>\"\n");
    }
    out
}

/// The secrets file template: one table per vendor with the entries its grant needs, empty.
pub(crate) fn secrets(vendors: &[&Vendor], defaults: &Config) -> String {
    let mut out = String::from(
        r#"# Vendor credentials for homehook, written by `homehook init`. Keep this file readable by
# you only (chmod 600): homehook refuses it otherwise. Fill in each "" below, then run
# `homehook doctor`. Instead of this file, HOMEHOOK_SECRET_<NAME> may hold an entry's fields
# as a JSON object (it wins over the file).
"#,
    );
    for v in vendors {
        let Some(spec) = defaults.providers.get(v.id) else {
            continue;
        };
        out.push_str(&format!(
            "\n# {}: {}.\n[{}]\n",
            spec.display_name, v.credentials, v.id
        ));
        for field in fields(spec.grants.first().copied()) {
            out.push_str(&format!("{field} = \"\"\n"));
        }
    }
    out
}

/// The entries a connection's secret needs for its grant.
pub(crate) fn fields(grant: Option<Grant>) -> &'static [&'static str] {
    match grant {
        Some(Grant::Password) => &["client_id", "client_secret", "username", "password"],
        _ => &["client_id", "client_secret"],
    }
}

impl Starter {
    /// Both files for `vendors`.
    pub(crate) fn new(
        vendors: &[&Vendor],
        admin_key_hash: &str,
        secrets_name: &str,
        defaults: &Config,
    ) -> Self {
        Self {
            config: render(vendors, admin_key_hash, secrets_name, defaults),
            secrets: secrets(vendors, defaults),
        }
    }
}
