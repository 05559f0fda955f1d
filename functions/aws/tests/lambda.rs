//! The Lambda functions' application, built the way a cold start builds it, on moto: the
//! admin key's hash comes from the secret, states and tokens go to DynamoDB.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod moto;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use homehook_aws::lambda::{Settings, app_with};
use homehook_aws::{DynamoStore, local};
use homehook_core::keys::ActionKey;
use homehook_core::live::Live;
use tower::ServiceExt;

#[tokio::test]
async fn a_cold_start_reads_no_secret_and_serves_the_same_routers() {
    homehook_tests::leak_watch::init();
    let moto = moto::moto();
    let admin = ActionKey::generate();
    homehook_tests::leak_watch::issued("admin_key", admin.expose());
    let sdk = local::sdk_config(&moto.endpoint);
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "homehook")
        .create_table()
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("homehook/clients")
        .secret_string(format!(
            r#"{{"netatmo": {{"client_id": "id", "client_secret": "s"}}, "admin_key_hash": "{}"}}"#,
            admin.hash()
        ))
        .send()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("homehook-lambda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("homehook.toml");
    std::fs::write(&config, "[connections.home]\nprovider = \"netatmo\"\n").unwrap();
    let settings = Settings {
        table: "homehook".into(),
        secret_id: "homehook/clients".into(),
        config_toml: None,
        config_path: Some(config),
        // As template.yaml sets it: the HTTP API's base URL.
        public_url: Some("https://hooks.example.com".into()),
        notify_topic: None,
        stack: None,
    };
    let app = app_with(&settings, &sdk).await.unwrap();

    // /status needs the admin key whose hash is in the secret.
    let status = homehook_core::http::actions_router(Live::fixed(app.clone()))
        .oneshot(
            Request::get("/status")
                .header("authorization", format!("Bearer {}", admin.expose()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);

    // /connect stores its state in DynamoDB and sends the owner to the vendor.
    let connect = homehook_core::http::oauth_router(Live::fixed(app.clone()))
        .oneshot(
            Request::get("/connect/home")
                .header("authorization", format!("Bearer {}", admin.expose()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(connect.status(), StatusCode::FOUND);
    let location = connect.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fhooks.example.com%2Fcallback%2Fnetatmo"),
        "{location}"
    );

    // The tick has nothing to do yet.
    let summary = app.tick().await.unwrap();
    assert_eq!((summary.tokens.refreshed, summary.tokens.failed), (0, 0));

    // Without a public URL the callback follows the API Gateway host of the request.
    let by_host = app_with(
        &Settings {
            public_url: None,
            ..settings.clone()
        },
        &sdk,
    )
    .await
    .unwrap();
    let connect = homehook_core::http::oauth_router(Live::fixed(by_host))
        .oneshot(
            Request::get("/connect/home")
                .header("host", "abc123.execute-api.eu-west-1.amazonaws.com")
                .header("authorization", format!("Bearer {}", admin.expose()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let location = connect.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fabc123.execute-api.eu-west-1.amazonaws.com%2Fcallback%2Fnetatmo"),
        "{location}"
    );

    // An inline config (local emulation, benchmarks) wins over a path.
    let inline = Settings {
        config_toml: Some("[connections.cottage]\nprovider = \"netatmo\"\n".into()),
        ..settings.clone()
    };
    let app = app_with(&inline, &sdk).await.unwrap();
    assert!(app.services.config.connections.contains_key("cottage"));

    let missing = Settings {
        secret_id: "nope".into(),
        ..settings
    };
    // The cold start reads no secret: a missing one shows on the first request that needs it,
    // as a clear error naming the problem.
    let app = app_with(&missing, &sdk)
        .await
        .expect("no secret read at start");
    let refused = homehook_core::http::oauth_router(Live::fixed(app))
        .oneshot(
            Request::get("/connect/home")
                .header("authorization", format!("Bearer {}", admin.expose()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "misconfigured", "{body}");
}

/// With `HOMEHOOK_NOTIFY_TOPIC` set, a connection the vendor cut off is announced on the SNS
/// topic (moto delivers it to an HTTP subscriber on loopback), with the reconnect link.
#[tokio::test]
async fn a_connection_needing_its_owner_is_published_to_the_sns_topic() {
    use homehook_core::clock::{Clock, SystemClock};
    use homehook_core::sensitive::SecretString;
    use homehook_core::token::{Health, TokenRecord};
    use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
    use homehook_tests::webhook_sink::WebhookSink;

    let moto = moto::moto();
    let sdk = local::sdk_config(&moto.endpoint);
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "homehook")
        .create_table()
        .await
        .unwrap();
    let fake = FakeSettings::default();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("homehook/clients")
        .secret_string(
            serde_json::json!({"netatmo": {"client_id": fake.client_id, "client_secret": fake.client_secret}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let sink = WebhookSink::start().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("homehook-alerts")
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_string();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(&sink.url)
        .send()
        .await
        .unwrap();

    let vendor = FakeVendor::start(
        homehook_core::clock::ManualClock::new(SystemClock.now()),
        fake,
    )
    .await;
    let settings = Settings {
        table: "homehook".into(),
        secret_id: "homehook/clients".into(),
        config_toml: Some(format!(
            "[providers.netatmo]\ntoken_url = \"{v}/oauth2/token\"\napi_base = \"{v}\"\nauthorize_url = \"{v}/oauth2/authorize\"\n[connections.home]\nprovider = \"netatmo\"\nlabel = \"Home\"\n",
            v = vendor.base
        )),
        config_path: None,
        public_url: Some("https://hooks.example.com".into()),
        notify_topic: Some(topic_arn),
        stack: None,
    };
    let app = app_with(&settings, &sdk).await.unwrap();
    // A connection whose refresh token the vendor no longer knows, due for renewal.
    let now = SystemClock.now();
    app.services
        .store
        .swap_token(
            None,
            TokenRecord {
                connection: "home".into(),
                access_token: SecretString::new("at-old"),
                refresh_token: Some(SecretString::new("rt-revoked")),
                // An hour-long token 10 s from expiry: inside the tick's margin.
                expires_at: Some(now.plus_secs(10)),
                scopes: vec![],
                connected_at: now.plus_secs(-3590),
                refreshed_at: None,
                version: 0,
                health: Health::Healthy,
                session: None,
                lifecycle: Default::default(),
                // Written by hand: filed as due now, as the keeper would file it.
                due_at: Some(now),
            },
        )
        .await
        .unwrap();
    homehook_tests::leak_watch::issued("refresh_token", "rt-revoked");
    let summary = app.tick().await.unwrap();
    assert_eq!(
        summary.tokens.failed_by_class.get("reauth_needed"),
        Some(&1)
    );
    let received = sink.received();
    assert_eq!(received.len(), 1, "one message on the topic");
    let envelope = received[0].json();
    assert_eq!(envelope["Type"], "Notification");
    let message = envelope["Message"].as_str().unwrap();
    assert!(message.contains("Home (Netatmo)"), "{message}");
    assert!(
        message.contains("https://hooks.example.com/connect/home"),
        "{message}"
    );
    assert!(!message.contains("rt-revoked"));
    // A second tick does not announce it again.
    app.tick().await.unwrap();
    assert_eq!(sink.received().len(), 1);
}

/// A warm container follows the config published in its table: a key unknown at cold start
/// opens the action once a config naming it is published, and is refused again once revoked,
/// each within seconds, on the same `Live` (no new container, no restart).
#[tokio::test]
async fn a_config_push_reaches_a_warm_container_without_a_restart() {
    use std::time::{Duration, Instant};

    use homehook_aws::lambda::live_with;
    use homehook_core::clock::{Clock, SystemClock};
    use homehook_core::live::CHECK_EVERY_SECS;

    homehook_tests::leak_watch::init();
    let moto = moto::moto();
    let sdk = local::sdk_config(&moto.endpoint);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "homehook");
    store.create_table().await.unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("homehook/clients")
        .secret_string(r#"{"netatmo": {"client_id": "id", "client_secret": "s"}}"#)
        .send()
        .await
        .unwrap();
    let settings = Settings {
        table: "homehook".into(),
        secret_id: "homehook/clients".into(),
        config_toml: None,
        config_path: None,
        public_url: Some("https://hooks.example.com".into()),
        notify_topic: None,
        stack: None,
    };
    // The cold start: nothing is published, so the container runs the built-in defaults.
    let live = live_with(&settings, &sdk).await.unwrap();
    assert_eq!(live.version(), None, "nothing published yet");

    let phone = ActionKey::generate();
    let spare = ActionKey::generate();
    homehook_tests::leak_watch::issued("action_key", phone.expose());
    homehook_tests::leak_watch::issued("action_key", spare.expose());
    let call = |key: String| {
        let router = homehook_core::http::actions_router(live.clone());
        async move {
            let answer = router
                .oneshot(
                    Request::post("/a/away")
                        .header("authorization", format!("Bearer {key}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            (status, body)
        }
    };
    // Polls until `done` holds for the answer, at most `limit`; the seconds it took.
    async fn until<F, Fut>(
        limit: Duration,
        mut ask: F,
        done: impl Fn(StatusCode) -> bool,
    ) -> (f64, StatusCode, serde_json::Value)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = (StatusCode, serde_json::Value)>,
    {
        let started = Instant::now();
        loop {
            let (status, body) = ask().await;
            if done(status) || started.elapsed() > limit {
                return (started.elapsed().as_secs_f64(), status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let (status, body) = call(phone.expose().to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no action yet: {body}");
    assert_eq!(body["error"], "unauthorized", "{body}");

    // The owner publishes a config with the action, opened by [keys.phone] (and by the
    // action's own key, so that phone can be revoked later). The connection has no token.
    let text = format!(
        "# pushed while the container is warm\n[connections.home]\nprovider = \"netatmo\"\n\n[actions.away]\nconnection = \"home\"\npath = \"/api/setthermmode\"\nkey_hash = \"{}\"\n\n[keys.phone]\nhash = \"{}\"\nactions = [\"away\"]\n",
        spare.hash(),
        phone.hash()
    );
    let published =
        homehook_core::publish::publish(&store, &text, "homehook.toml", None, SystemClock.now())
            .await
            .unwrap();
    assert_eq!(published.version, 1);
    let (opened_after, status, body) = until(
        Duration::from_secs(5),
        || call(phone.expose().to_string()),
        |s| s != StatusCode::UNAUTHORIZED,
    )
    .await;
    eprintln!("published version 1: the phone key passed the gate after {opened_after:.2} s");
    assert!(
        opened_after <= (CHECK_EVERY_SECS + 1) as f64,
        "the phone key was still refused {opened_after:.2} s after the publish ({status} {body})"
    );
    // Past the gate, the action finds its connection never connected: a clear 409.
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "after {opened_after:.2} s: {body}"
    );
    assert_eq!(body["error"], "not_connected", "{body}");
    assert_eq!(live.version(), Some(1));

    // The phone is lost: its key is revoked as a published edit (version 2).
    let revoked = homehook_core::key_admin::revoke(&store, SystemClock.now(), "phone")
        .await
        .unwrap();
    assert_eq!((revoked.before.version, revoked.after.version), (1, 2));
    let (refused_after, status, body) = until(
        Duration::from_secs(8),
        || call(phone.expose().to_string()),
        |s| s == StatusCode::UNAUTHORIZED,
    )
    .await;
    eprintln!("published version 2 (phone revoked): refused after {refused_after:.2} s");
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked key was still let through {refused_after:.2} s after the revoke: {body}"
    );
    assert!(
        refused_after <= 5.0,
        "the revoked key was refused only {refused_after:.2} s after the revoke"
    );
    assert_eq!(live.version(), Some(2), "the same container moved 1 → 2");
    // The action's own key still opens it: only phone was revoked.
    let (status, body) = call(spare.expose().to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "not_connected", "{body}");
}

#[tokio::test]
async fn pages_and_messages_name_the_stacks_target() {
    // No AWS call is made to build the app: a closed port will do.
    let sdk = homehook_aws::local::sdk_config("http://127.0.0.1:9");
    let settings = Settings {
        table: "t".into(),
        secret_id: "s".into(),
        config_toml: None,
        config_path: None,
        public_url: None,
        notify_topic: None,
        stack: None,
    };
    let plain = app_with(&settings, &sdk).await.expect("app");
    assert_eq!(plain.services.config.server.command, "homehook");
    let named = app_with(
        &Settings {
            stack: Some("homehook".into()),
            ..settings
        },
        &sdk,
    )
    .await
    .expect("app");
    assert_eq!(
        named.services.config.server.command,
        "homehook --target homehook"
    );
}
