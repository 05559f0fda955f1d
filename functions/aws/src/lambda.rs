//! The application in a Lambda container, built once per cold start from the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOMEHOOK_TABLE` | the DynamoDB table | required |
//! | `HOMEHOOK_SECRET_ID` | the Secrets Manager secret with every vendor's credentials | required |
//! | `HOMEHOOK_CONFIG_TOML` | a config to run until one is published (local emulation, benchmarks) | |
//! | `HOMEHOOK_CONFIG` | the same as a path | `$LAMBDA_TASK_ROOT/homehook.toml` if present, else defaults |
//! | `HOMEHOOK_PUBLIC_URL` | the public base URL (a custom domain); callback URLs start with it | each connect request's host |
//! | `HOMEHOOK_NOTIFY_TOPIC` | an SNS topic ARN that hears when a connection needs its owner | none |
//! | `HOMEHOOK_STACK` | the stack's name, for the CLI hints in pages (`homehook --target <stack>`) | `homehook` hints |
//! | `AWS_REGION`, `AWS_ENDPOINT_URL` | set by Lambda; the endpoint only for local emulators | |
//!
//! The config is the one published in the table (`homehook config push`, `homehook key …`):
//! read once at cold start (one GetItem), then its version is looked at again at most every
//! [`homehook_core::live::CHECK_EVERY_SECS`] by the request or tick that finds the look due, so
//! a revoked key is refused by every warm container within seconds, without a deploy.
//!
//! One SDK configuration (region from the environment, so no instance-metadata probing), one
//! client per service sharing one HTTPS connector ([`crate::https`]), one client for vendor calls,
//! on the same HTTP stack: nothing is created per request. The secret is read when a renewal or
//! an admin request first needs it, not at cold start.

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use homehook_core::App;
use homehook_core::clock::SystemClock;
use homehook_core::config::{Config, ConfigError};
use homehook_core::live::Live;
use homehook_core::services::Services;

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
    /// The CloudFormation stack's name.
    pub stack: Option<String>,
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
            stack: optional("HOMEHOOK_STACK"),
        })
    }
}

/// The application from the environment, following the published config.
pub async fn live_from_env() -> Result<Arc<Live>, StartError> {
    let settings = Settings::from_env()?;
    live_with(&settings, &sdk_from_env()?).await
}

/// The application from settings, following the config published in the table.
pub async fn live_with(settings: &Settings, sdk: &SdkConfig) -> Result<Arc<Live>, StartError> {
    let app = app_with(settings, sdk).await?;
    let prepare = host_settings(settings)?;
    Ok(Live::following((*app).clone(), Box::new(prepare)).await)
}

/// What the host sets in every config it runs: the public URL from the template, or links that
/// follow each request's host.
fn host_settings(
    settings: &Settings,
) -> Result<impl Fn(Config) -> Config + Send + Sync + 'static, StartError> {
    let public_url = settings
        .public_url
        .as_deref()
        .map(url::Url::parse)
        .transpose()
        .map_err(|e| StartError::PublicUrl(e.to_string()))?;
    // The README names the target after the stack (`homehook target add <stack> --stack
    // <stack>`), so pages can give the exact command.
    let command = settings
        .stack
        .as_deref()
        .map(|stack| format!("homehook --target {stack}"));
    Ok(move |mut config: Config| {
        if let Some(command) = &command {
            config.server.command = command.clone();
        }
        // Without a public URL, connect links follow the request's host: the API Gateway
        // domain (template.yaml cannot name it in the functions' environment without a cycle).
        config.server.public_url_from_host = public_url.is_none();
        if let Some(url) = &public_url {
            config.server.public_url = url.clone();
            config.server.public_url_follows_listen = false;
        }
        config
    })
}

/// The SDK configuration a Lambda container needs, read from the variables Lambda sets: the
/// region, the function's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and `AWS_ENDPOINT_URL` for local emulators.
///
/// Not `aws_config::defaults().load()`: its provider chains (profile files, SSO, web identity,
/// containers, instance metadata) serve machines where credentials could be anywhere; in Lambda
/// they are always in the environment. Skipping the chains takes work off every cold start,
/// and the code nobody calls out of the bootstrap (docs/benchmarks.md has the figures).
pub fn sdk_from_env() -> Result<SdkConfig, StartError> {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .map_err(|_| StartError::MissingVariable("AWS_REGION"))?;
    let mut sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(crate::https::client());
    if let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.trim().is_empty())
    {
        sdk = sdk.endpoint_url(endpoint);
    }
    Ok(sdk.build())
}

/// Builds the application from settings and a loaded SDK configuration.
pub async fn app_with(settings: &Settings, sdk: &SdkConfig) -> Result<Arc<App>, StartError> {
    let config = match (&settings.config_toml, &settings.config_path) {
        (Some(text), _) => Config::parse(text, "HOMEHOOK_CONFIG_TOML", None)?,
        (None, Some(path)) => Config::load(path)?,
        (None, None) => Config::empty()?,
    };
    let config = host_settings(settings)?(config);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table);
    let secrets = SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        &settings.secret_id,
        Arc::new(SystemClock),
    );
    // The admin key's hash may live in the secret rather than in the config: read on the first
    // admin request when the config has none, not here (a cold start reads no secret).
    let mut app = App::new(Services::new(
        config,
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?);
    app = app.with_admin_key_from_secrets();
    if let Some(topic) = &settings.notify_topic {
        app = app.with_notifier(Arc::new(SnsTopic::new(
            aws_sdk_sns::Client::new(sdk),
            topic,
        )));
    }
    Ok(Arc::new(app))
}
