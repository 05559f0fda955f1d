//! SDK clients pointed at a local emulator (moto, DynamoDB Local): a fixed region and dummy
//! credentials, so nothing probes instance metadata or reads the developer's AWS profile.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

/// A DynamoDB client for the emulator at `endpoint` (`http://127.0.0.1:<port>`).
pub fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "homehook-local",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
