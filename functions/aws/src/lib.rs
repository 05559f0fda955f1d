//! homehook on AWS: the core's ports on AWS services. No logic lives here — only the
//! translation between the core's store and secrets ports and the AWS SDK.
//!
//! # Layout
//!
//! - [`dynamo`]: [`DynamoStore`], tokens and OAuth states in one DynamoDB table.
//! - [`local`]: SDK clients for local emulators (tests, development).

pub mod dynamo;
pub mod local;

pub use dynamo::DynamoStore;
