//! The secrets port: vendor client credentials (and, for the password grant, the account's
//! username and password), looked up by the name a connection gives in `secret = "..."`, and
//! the notification webhook (its URL is often a credential itself: Slack, ntfy topics).
//!
//! [`LocalSecrets`] serves `homehook serve`: environment variables first
//! (`HOMEHOOK_SECRET_<NAME>` holding JSON), then a TOML secrets file that must be readable by its
//! owner only. The AWS adapter serves the same shape from Secrets Manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sensitive::SecretString;

/// Credentials for one vendor app (and account, for the password grant).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentials {
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// Account username, for the password grant.
    #[serde(default)]
    pub username: Option<String>,
    /// Account password, for the password grant.
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// Where notifications go: `[notify] secret = "<name>"` names the entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecret {
    /// The URL notifications are POSTed to.
    pub url: SecretString,
    /// Key for the `X-Homehook-Signature` HMAC; without it notifications go unsigned.
    #[serde(default)]
    pub signing_key: Option<SecretString>,
    /// Pushover application token (`format = "pushover"`).
    #[serde(default)]
    pub pushover_token: Option<SecretString>,
    /// Pushover user key (`format = "pushover"`).
    #[serde(default)]
    pub pushover_user: Option<SecretString>,
}

/// A signed action's key: `[actions.x] signing_secret = "<name>"` names the entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningSecret {
    signing_key: SecretString,
}

/// Why a secret could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    /// No secret by that name.
    #[error(
        "no secret named \"{name}\": add a [{name}] table with client_id and client_secret to the secrets file, or set HOMEHOOK_SECRET_{env} to a JSON object"
    )]
    NotFound {
        /// The secret's name.
        name: String,
        /// Its environment variable suffix.
        env: String,
    },
    /// A shared secret (Secrets Manager's one JSON secret) has no entry by that name.
    #[error(
        "secret {store} has no entry \"{name}\": add \"{name}\": {{\"client_id\": \"…\", \"client_secret\": \"…\"}} to its JSON"
    )]
    NoEntry {
        /// The entry's name.
        name: String,
        /// Which secret was searched.
        store: String,
    },
    /// The secret exists but is not in the expected shape.
    #[error("secret \"{name}\" is malformed: {problem}")]
    Malformed {
        /// The secret's name.
        name: String,
        /// What is wrong (never the value).
        problem: String,
    },
    /// The secrets file could not be used.
    #[error("secrets file {path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The secrets backend failed (network, permissions).
    #[error("secrets unavailable: {0}")]
    Backend(String),
}

/// Where secrets come from: named entries, each a JSON object.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The entry stored under `name`, as JSON.
    async fn entry(&self, name: &str) -> Result<serde_json::Value, SecretsError>;

    /// The client credentials stored under `name`.
    async fn client_credentials(&self, name: &str) -> Result<ClientCredentials, SecretsError> {
        typed(
            name,
            self.entry(name).await?,
            "client_id, and client_secret, username, password as the grant wants",
        )
    }

    /// The key callers of a signed action sign with, stored under `name` as `signing_key`.
    async fn signing_key(&self, name: &str) -> Result<SecretString, SecretsError> {
        let entry: SigningSecret = typed(name, self.entry(name).await?, "signing_key")?;
        Ok(entry.signing_key)
    }

    /// The notification webhook stored under `name`.
    async fn webhook(&self, name: &str) -> Result<WebhookSecret, SecretsError> {
        typed(
            name,
            self.entry(name).await?,
            "url, and optionally signing_key, pushover_token, pushover_user",
        )
    }
}

/// Reads an entry as `T`. The error names the fields expected, never a value (serde's
/// messages can quote the offending value).
fn typed<T: DeserializeOwned>(
    name: &str,
    value: serde_json::Value,
    fields: &str,
) -> Result<T, SecretsError> {
    serde_json::from_value(value).map_err(|_| SecretsError::Malformed {
        name: name.to_string(),
        problem: format!("entry \"{name}\" needs {fields}, nothing else"),
    })
}

/// Secrets from the environment and a local file.
#[derive(Debug, Default)]
pub struct LocalSecrets {
    file: BTreeMap<String, serde_json::Value>,
    read_env: bool,
}

impl LocalSecrets {
    /// Reads the secrets file if given (refusing one that group or others can read) and also
    /// consults `HOMEHOOK_SECRET_<NAME>` variables at lookup time.
    pub fn load(file: Option<&Path>) -> Result<Self, SecretsError> {
        let entries = match file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            file: entries,
            read_env: true,
        })
    }

    /// Secrets given directly (tests, embedding); the environment is not consulted.
    pub fn from_entries(entries: BTreeMap<String, ClientCredentials>) -> Self {
        Self {
            file: entries
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::to_value(v).ok()?)))
                .collect(),
            read_env: false,
        }
    }

    /// Adds (or replaces) an entry, given as JSON.
    pub fn with_entry(mut self, name: &str, entry: serde_json::Value) -> Self {
        self.file.insert(name.to_string(), entry);
        self
    }

    /// Names of the secrets in the file.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.file.keys().map(String::as_str)
    }

    /// The file's entries as JSON, to copy them into another store (`homehook secrets push`).
    pub fn file_entries(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.file
    }
}

fn env_suffix(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

fn read_file(path: &Path) -> Result<BTreeMap<String, serde_json::Value>, SecretsError> {
    let file_err = |problem: String| SecretsError::File {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| file_err(format!("cannot read it: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(file_err(format!(
                "readable by group or others (mode {mode:03o}); run: chmod 600 {}",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text =
        std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read it: {e}")))?;
    // The toml error for a bad value may quote the value: report only where it is.
    let tables: BTreeMap<String, toml::Table> = toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        file_err(match line {
            Some(line) => format!(
                "not valid (line {line}): each secret is a [name] table (client_id, client_secret, and optionally username and password)"
            ),
            None => "not valid TOML".into(),
        })
    })?;
    tables
        .into_iter()
        .map(|(name, table)| {
            let value = serde_json::to_value(table).map_err(|_| {
                file_err(format!("[{name}] holds values that are not plain strings"))
            })?;
            Ok((name, value))
        })
        .collect()
}

#[async_trait]
impl Secrets for LocalSecrets {
    async fn entry(&self, name: &str) -> Result<serde_json::Value, SecretsError> {
        if self.read_env {
            let var = format!("HOMEHOOK_SECRET_{}", env_suffix(name));
            if let Ok(json) = std::env::var(&var) {
                return serde_json::from_str(&json).map_err(|e| SecretsError::Malformed {
                    name: name.to_string(),
                    problem: format!(
                        "{var} must hold a JSON object (error at column {})",
                        e.column()
                    ),
                });
            }
        }
        self.file
            .get(name)
            .cloned()
            .ok_or_else(|| SecretsError::NotFound {
                name: name.to_string(),
                env: env_suffix(name),
            })
    }
}

impl std::fmt::Debug for dyn Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("secrets.toml");
        std::fs::write(&path, text).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        path
    }

    #[tokio::test]
    async fn reads_an_owner_only_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "[netatmo]\nclient_id = \"id\"\nclient_secret = \"s3cret\"\n",
            0o600,
        );
        let secrets = LocalSecrets::load(Some(&path)).expect("loads");
        let c = secrets.client_credentials("netatmo").await.expect("found");
        assert_eq!(c.client_id, "id");
        assert_eq!(
            c.client_secret.as_ref().map(SecretString::expose),
            Some("s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let missing = secrets
            .client_credentials("homey")
            .await
            .expect_err("missing");
        assert!(
            missing.to_string().contains("HOMEHOOK_SECRET_HOMEY"),
            "{missing}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_others_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "[x]\nclient_id = \"id\"\n", 0o644);
        let e = LocalSecrets::load(Some(&path)).expect_err("refused");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_malformed_file_error_does_not_echo_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "[x]\nclient_secret = topsecret\n", 0o600);
        let e = LocalSecrets::load(Some(&path)).expect_err("malformed");
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(e.to_string().contains("line"), "{e}");
    }

    #[tokio::test]
    async fn an_entry_of_the_wrong_shape_names_fields_not_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "[x]\nclient_secret = \"topsecret\"\n[hook]\nurl = \"https://ntfy.example/t0p\"\nsigning_key = \"k3y\"\n",
            0o600,
        );
        let secrets = LocalSecrets::load(Some(&path)).expect("loads");
        let e = secrets
            .client_credentials("x")
            .await
            .expect_err("no client_id");
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(e.to_string().contains("client_id"), "{e}");
        let hook = secrets.webhook("hook").await.expect("a webhook entry");
        assert_eq!(hook.url.expose(), "https://ntfy.example/t0p");
        assert!(!format!("{hook:?}").contains("t0p"));
        let e = secrets.webhook("x").await.expect_err("not a webhook");
        assert!(e.to_string().contains("url"), "{e}");
    }
}
