//! The world the Lambda bootstraps start in: moto holding the table (as template.yaml declares
//! it) and the secret, a fake vendor, homehook.toml inline, and the environment Lambda sets.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use axum::body::Bytes;
use homehook_aws::DynamoStore;
use homehook_core::clock::{Clock, SystemClock};
use homehook_core::keys::ActionKey;
use homehook_core::sensitive::SecretString;
use homehook_core::store::TokenStore;
use homehook_core::token::{Health, TokenRecord};
use homehook_tests::fake_vendor::FakeSettings;

use crate::aws_timer::AwsTimer;
use crate::cold_start::Subject;
use crate::procs::{Running, Vendor};

const TABLE: &str = "homehook";
const SECRET: &str = "homehook/clients";

/// moto, the fake vendor and the keys, ready for bootstraps to start against.
pub struct LambdaWorld {
    /// moto's endpoint.
    pub endpoint: String,
    /// The timing proxy in front of moto: the bootstraps' `AWS_ENDPOINT_URL`.
    pub aws: AwsTimer,
    /// The action key of `heating`.
    pub action: ActionKey,
    env: Vec<(String, String)>,
    _moto: Running,
    _vendor: Vendor,
}

impl LambdaWorld {
    /// Starts moto and the fake vendor, creates the table and the secret, and stores a
    /// connected `home` (a token from the vendor's password grant).
    pub async fn start(moto_server: &Path, bin_dir: &Path) -> Result<Self> {
        let (moto, endpoint) = crate::procs::start_moto(moto_server)?;
        let aws = AwsTimer::start(&endpoint).await?;
        let vendor = Vendor::start(bin_dir, 10_800)?;
        let (admin, action) = (ActionKey::generate(), ActionKey::generate());
        let settings = FakeSettings::default();

        let store = DynamoStore::new(homehook_aws::local::dynamodb(&endpoint), TABLE);
        store.create_table().await?;
        homehook_aws::local::secretsmanager(&endpoint)
            .create_secret()
            .name(SECRET)
            .secret_string(
                serde_json::json!({
                    "netatmo": {"client_id": settings.client_id, "client_secret": settings.client_secret},
                    "admin_key_hash": admin.hash().to_string(),
                })
                .to_string(),
            )
            .send()
            .await
            .context("create the secret")?;
        let grant = crate::procs::password_grant(&reqwest::Client::new(), &vendor.base).await?;
        let now = SystemClock.now();
        let expires = now.plus_secs(10_800);
        store
            .swap_token(
                None,
                TokenRecord {
                    connection: "home".into(),
                    access_token: SecretString::new(
                        grant["access_token"].as_str().context("access token")?,
                    ),
                    refresh_token: grant["refresh_token"].as_str().map(SecretString::new),
                    expires_at: Some(expires),
                    scopes: vec![],
                    connected_at: now,
                    refreshed_at: None,
                    version: 0,
                    health: Health::Healthy,
                    session: None,
                    lifecycle: Default::default(),
                    due_at: Some(expires.plus_secs(-300)),
                },
            )
            .await?;

        let config = format!(
            r#"[providers.netatmo]
authorize_url = "{v}/oauth2/authorize"
token_url = "{v}/oauth2/token"
api_base = "{v}"
api_budget = []

[connections.home]
provider = "netatmo"
label = "Home"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "away" }}
key_hash = "{key}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}
"#,
            v = vendor.base,
            key = action.hash(),
        );
        let env = [
            ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
            ("HOMEHOOK_TABLE", TABLE),
            ("HOMEHOOK_SECRET_ID", SECRET),
            ("HOMEHOOK_PUBLIC_URL", "https://hooks.example.com"),
            ("HOMEHOOK_CONFIG_TOML", config.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Ok(Self {
            endpoint,
            aws,
            action,
            env,
            _moto: moto,
            _vendor: vendor,
        })
    }

    /// A subject started with this world's environment.
    pub fn subject(
        &self,
        name: &str,
        program: PathBuf,
        args: &[String],
        event: &'static str,
        expect_status: Option<u16>,
    ) -> Subject {
        Subject {
            name: name.into(),
            program,
            args: args.to_vec(),
            env: self.env.clone(),
            event: Bytes::from_static(event.as_bytes()),
            expect_status,
        }
    }

    /// An API Gateway event for `POST /a/heating` with the action key, from a source of its own
    /// (so the per-source lockout never mixes in).
    pub fn action_event(&self, i: usize) -> Bytes {
        let mut event: serde_json::Value = serde_json::from_str(EVENT_ACTION).unwrap_or_default();
        event["rawPath"] = "/a/heating".into();
        event["rawQueryString"] = "".into();
        event["queryStringParameters"] = serde_json::Value::Null;
        event["pathParameters"]["action"] = "heating".into();
        event["headers"]["authorization"] = format!("Bearer {}", self.action.expose()).into();
        event["requestContext"]["http"]["path"] = "/a/heating".into();
        event["requestContext"]["http"]["sourceIp"] = format!("198.51.100.{}", i % 250 + 1).into();
        event["requestContext"]["requestId"] = format!("req-{i}").into();
        Bytes::from(event.to_string())
    }
}

/// The events the repository ships for `sam local invoke`.
pub const EVENT_HEALTHZ: &str = include_str!("../../events/healthz.json");
/// A callback with an unknown state.
pub const EVENT_CALLBACK: &str = include_str!("../../events/callback.json");
/// The EventBridge schedule's event.
pub const EVENT_SCHEDULE: &str = include_str!("../../events/schedule.json");
/// An action call.
pub const EVENT_ACTION: &str = include_str!("../../events/action.json");
