//! SDK clients pointed at a local emulator (moto, DynamoDB Local): a fixed region and dummy
//! credentials, so nothing probes instance metadata or reads the developer's AWS profile.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

const REGION: &str = "eu-west-1";

fn credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "homehook-local")
}

/// A DynamoDB client for the emulator at `endpoint` (`http://127.0.0.1:<port>`).
pub fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .http_client(crate::https::client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A Secrets Manager client for the emulator at `endpoint`.
pub fn secretsmanager(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .http_client(crate::https::client())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A whole SDK configuration for the emulator at `endpoint`: what a Lambda function loads
/// from its environment, pointed at moto.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            credentials(),
        ))
        .endpoint_url(endpoint)
        .http_client(crate::https::client())
        .build()
}
