//! homehook on AWS: the core's ports on AWS services. No logic lives here — only the
//! translation between the core's store and secrets ports and the AWS SDK.
//!
//! # Layout
//!
//! - [`dynamo`]: [`DynamoStore`], tokens and OAuth states in one DynamoDB table.
//! - [`secrets_manager`]: [`SecretsManagerSecrets`], every vendor's client credentials in one
//!   secret, cached per container (and written by `homehook secrets push`).
//! - [`http_api`]: API Gateway's HTTP API events in front of the core's routers, with the
//!   caller's address for the lockout.
//! - [`lambda`]: the application in a Lambda container, from the environment, following the
//!   config published in the table.
//! - [`https`]: the one HTTPS client the SDK clients share (rustls on ring).
//! - [`sns`]: [`SnsTopic`], notifications to an SNS topic.
//! - [`logs`]: logging as Lambda's advanced logging controls ask (JSON, level).
//! - [`local`]: SDK clients for local emulators (tests, development).

pub mod dynamo;
pub mod http_api;
pub mod https;
pub mod lambda;
pub mod local;
pub mod logs;
pub mod secrets_manager;
pub mod sns;

pub use dynamo::DynamoStore;
pub use secrets_manager::SecretsManagerSecrets;
pub use sns::SnsTopic;
