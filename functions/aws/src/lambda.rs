//! The application in a Lambda container, built once per cold start from the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOMEHOOK_TABLE` | the DynamoDB table | required |
//! | `HOMEHOOK_SECRET_ID` | the Secrets Manager secret with every vendor's credentials | required |
//! | `HOMEHOOK_CONFIG_TOML` | homehook.toml itself (template.yaml's `HomehookConfig` parameter) | |
//! | `HOMEHOOK_CONFIG` | path of homehook.toml, when not inline | `$LAMBDA_TASK_ROOT/homehook.toml` if present, else defaults |
//! | `HOMEHOOK_PUBLIC_URL` | the public base URL (a custom domain); callback URLs start with it | each connect request's host |
//! | `HOMEHOOK_NOTIFY_TOPIC` | an SNS topic ARN that hears when a connection needs its owner | none |
//! | `AWS_REGION`, `AWS_ENDPOINT_URL` | set by Lambda; the endpoint only for local emulators | |
//!
//! One aws-config load (region from the environment, so no instance-metadata probing), one client
//! per service, one outbound HTTP client: nothing is created per request.

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use homehook_core::App;
use homehook_core::clock::SystemClock;
use homehook_core::config::{Config, ConfigError};
use homehook_core::keys::KeyHash;
use homehook_core::secrets::SecretsError;

use crate::{DynamoStore, SecretsManagerSecrets, SnsTopic};

/// Why a cold start failed (the function then fails its init, and Lambda says so).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A required environment variable is missing.
    #[error("environment variable {0} is not set (template.yaml sets it)")]
    MissingVariable(&'static str),
    /// homehook.toml is broken.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret could not be read.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The admin key hash in the secret is malformed.
    #[error("admin_key_hash in the secret: {0}")]
    AdminKeyHash(String),
    /// `HOMEHOOK_PUBLIC_URL` is not a URL.
    #[error("HOMEHOOK_PUBLIC_URL: {0}")]
    PublicUrl(String),
    /// The outbound HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Where the application's parts are: read from the environment in Lambda, given directly in
/// tests.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The DynamoDB table.
    pub table: String,
    /// The Secrets Manager secret.
    pub secret_id: String,
    /// homehook.toml's text, when given inline.
    pub config_toml: Option<String>,
    /// homehook.toml's path, if any.
    pub config_path: Option<PathBuf>,
    /// The public base URL, overriding `server.public_url`.
    pub public_url: Option<String>,
    /// An SNS topic ARN for notifications.
    pub notify_topic: Option<String>,
}

impl Settings {
    /// From the environment (see the module docs).
    pub fn from_env() -> Result<Self, StartError> {
        let required = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(StartError::MissingVariable(name))
        };
        let config_path = match std::env::var("HOMEHOOK_CONFIG") {
            Ok(p) => Some(PathBuf::from(p)),
            Err(_) => std::env::var("LAMBDA_TASK_ROOT")
                .ok()
                .map(|root| PathBuf::from(root).join("homehook.toml"))
                .filter(|p| p.exists()),
        };
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(Self {
            table: required("HOMEHOOK_TABLE")?,
            secret_id: required("HOMEHOOK_SECRET_ID")?,
            config_toml: optional("HOMEHOOK_CONFIG_TOML"),
            config_path,
            public_url: optional("HOMEHOOK_PUBLIC_URL"),
            notify_topic: optional("HOMEHOOK_NOTIFY_TOPIC"),
        })
    }
}

/// Builds the application from the environment, with one aws-config load.
pub async fn app_from_env() -> Result<Arc<App>, StartError> {
    let settings = Settings::from_env()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    app_with(&settings, &sdk).await
}

/// Builds the application from settings and a loaded SDK configuration.
pub async fn app_with(settings: &Settings, sdk: &SdkConfig) -> Result<Arc<App>, StartError> {
    let mut config = match (&settings.config_toml, &settings.config_path) {
        (Some(text), _) => Config::parse(text, "HOMEHOOK_CONFIG_TOML", None)?,
        (None, Some(path)) => Config::load(path)?,
        (None, None) => Config::empty()?,
    };
    // Without a public URL, connect links follow the request's host: the API Gateway domain
    // (template.yaml cannot name it in the functions' environment without a cycle).
    config.server.public_url_from_host = settings.public_url.is_none();
    if let Some(url) = &settings.public_url {
        config.server.public_url =
            url::Url::parse(url).map_err(|e| StartError::PublicUrl(e.to_string()))?;
        config.server.public_url_follows_listen = false;
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table);
    let secrets = SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        &settings.secret_id,
        Arc::new(SystemClock),
    );
    // The admin key's hash may live in the secret rather than in homehook.toml.
    if config.server.admin_key_hash.is_none()
        && let Some(hash) = secrets.admin_key_hash().await?
    {
        config.server.admin_key_hash = Some(
            hash.parse::<KeyHash>()
                .map_err(|e| StartError::AdminKeyHash(e.to_string()))?,
        );
    }
    let mut app = App::new(
        config,
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?;
    if let Some(topic) = &settings.notify_topic {
        app = app.with_notifier(Arc::new(SnsTopic::new(
            aws_sdk_sns::Client::new(sdk),
            topic,
        )));
    }
    Ok(Arc::new(app))
}
