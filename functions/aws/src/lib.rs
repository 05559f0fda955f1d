//! homehook on AWS: the core's ports on AWS services. No logic lives here — only the
//! translation between the core's store and secrets ports and the AWS SDK.
//!
//! # Layout
//!
//! - [`dynamo`]: [`DynamoStore`], tokens and OAuth states in one DynamoDB table.
//! - [`secrets_manager`]: [`SecretsManagerSecrets`], every vendor's client credentials in one
//!   secret, cached per container (and written by `homehook secrets push`).
//! - [`lambda`]: the application in a Lambda container, from the environment, following the
//!   config published in the table.
//! - [`https`]: the one HTTPS client the SDK clients share (rustls on ring).
//! - [`sns`]: [`SnsTopic`], notifications to an SNS topic.
//! - [`source`]: the caller's address from API Gateway's request context, for the lockout.
//! - [`logs`]: logging as Lambda's advanced logging controls ask (JSON, level).
//! - [`local`]: SDK clients for local emulators (tests, development).

pub mod dynamo;
pub mod https;
pub mod lambda;
pub mod local;
pub mod logs;
pub mod secrets_manager;
pub mod sns;
pub mod source;

pub use dynamo::DynamoStore;
pub use secrets_manager::SecretsManagerSecrets;
pub use sns::SnsTopic;
