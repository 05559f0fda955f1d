//! Secrets Manager secrets against moto: one JSON secret, read once per TTL, errors that name
//! what to fix without echoing a value.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod moto;

use std::sync::Arc;

use homehook_aws::{SecretsManagerSecrets, local};
use homehook_core::clock::{ManualClock, UnixTime};
use homehook_core::secrets::{Secrets, SecretsError};

async fn secret(endpoint: &str, name: &str, value: &str) -> aws_sdk_secretsmanager::Client {
    let client = local::secretsmanager(endpoint);
    client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    client
}

#[tokio::test]
async fn credentials_come_from_one_secret_read_once_per_ttl() {
    let moto = moto::moto();
    let client = secret(
        &moto.endpoint,
        "homehook",
        r#"{"netatmo": {"client_id": "n-id", "client_secret": "n-secret"},
            "somfy": {"client_id": "s-id", "client_secret": "s-secret", "username": "me@example.com", "password": "pw"},
            "admin_key_hash": "sha256:abc"}"#,
    )
    .await;
    let clock = ManualClock::new(UnixTime(1_000));
    let secrets = SecretsManagerSecrets::new(client.clone(), "homehook", Arc::new(clock.clone()));
    let netatmo = secrets.client_credentials("netatmo").await.unwrap();
    assert_eq!(netatmo.client_id, "n-id");
    assert_eq!(netatmo.client_secret.unwrap().expose(), "n-secret");
    let somfy = secrets.client_credentials("somfy").await.unwrap();
    assert_eq!(somfy.username.as_deref(), Some("me@example.com"));
    assert_eq!(
        secrets.entry("admin_key_hash").await.unwrap(),
        serde_json::json!("sha256:abc")
    );

    // Rotated in Secrets Manager: a warm container keeps its copy (no call) until the TTL.
    client
        .put_secret_value()
        .secret_id("homehook")
        .secret_string(r#"{"netatmo": {"client_id": "n-id-2", "client_secret": "n-secret-2"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        secrets
            .client_credentials("netatmo")
            .await
            .unwrap()
            .client_id,
        "n-id"
    );
    clock.advance(301);
    assert_eq!(
        secrets
            .client_credentials("netatmo")
            .await
            .unwrap()
            .client_id,
        "n-id-2"
    );

    let missing = secrets.client_credentials("homey").await.unwrap_err();
    assert!(matches!(missing, SecretsError::NoEntry { .. }));
    assert!(missing.to_string().contains("\"homey\""), "{missing}");
}

#[tokio::test]
async fn a_malformed_secret_is_named_without_its_value() {
    let moto = moto::moto();
    let client = secret(&moto.endpoint, "broken", "client_secret=hunter2").await;
    let secrets = SecretsManagerSecrets::new(
        client.clone(),
        "broken",
        Arc::new(ManualClock::new(UnixTime(0))),
    );
    let e = secrets.client_credentials("netatmo").await.unwrap_err();
    assert!(matches!(e, SecretsError::Malformed { .. }), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");

    let client = secret(
        &moto.endpoint,
        "odd",
        r#"{"netatmo": {"client_id": "x", "secret": "hunter2"}}"#,
    )
    .await;
    let secrets =
        SecretsManagerSecrets::new(client, "odd", Arc::new(ManualClock::new(UnixTime(0))));
    let e = secrets.client_credentials("netatmo").await.unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");

    let gone = SecretsManagerSecrets::new(
        local::secretsmanager(&moto.endpoint),
        "no-such-secret",
        Arc::new(ManualClock::new(UnixTime(0))),
    );
    assert!(matches!(
        gone.client_credentials("netatmo").await.unwrap_err(),
        SecretsError::Backend(_)
    ));
}
