//! Every way a request can go wrong gets a clear 4xx (or a 5xx that names the vendor's or the
//! operator's problem) with `{"error": "<stable code>", "message": "..."}`, and nothing is lost.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::store::MemoryStore;
use homehook_tests::fake_vendor::FakeSettings;
use homehook_tests::harness::World;
use serde_json::{Value, json};

async fn world() -> World {
    World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await
}

/// Asserts status and error code; returns the message.
async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(r.status(), status, "status for {code}");
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().expect("a message").to_string();
    assert!(message.len() > 10, "a human message: {message}");
    message
}

fn callback(w: &World, query: &str) -> reqwest::RequestBuilder {
    w.client
        .get(format!("{}/callback/netatmo?{query}", w.hh.base))
}

fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state")
}

#[tokio::test]
async fn callback_refuses_wrong_reused_expired_and_incomplete_states() {
    let w = world().await;

    // A state homehook never issued.
    expect_error(
        callback(&w, "state=forged&code=abc")
            .send()
            .await
            .expect("r"),
        400,
        "invalid_state",
    )
    .await;
    // No state at all.
    expect_error(
        callback(&w, "code=abc").send().await.expect("r"),
        400,
        "missing_state",
    )
    .await;

    // A state used twice: the second use is refused and the first connection stands.
    let authorize = w.start_connect("home").await;
    let back = w.consent(&authorize).await;
    assert_eq!(w.client.get(&back).send().await.expect("r").status(), 200);
    let before =
        w.hh.store
            .get_token("home")
            .await
            .expect("r")
            .expect("connected");
    expect_error(
        w.client.get(&back).send().await.expect("r"),
        400,
        "invalid_state",
    )
    .await;
    let after =
        w.hh.store
            .get_token("home")
            .await
            .expect("r")
            .expect("still connected");
    assert_eq!(before.version, after.version, "a replay changes nothing");

    // A state older than 10 minutes.
    let authorize = w.start_connect("home").await;
    let back = w.consent(&authorize).await;
    w.clock.advance(601);
    let message = expect_error(
        w.client.get(&back).send().await.expect("r"),
        400,
        "expired_state",
    )
    .await;
    assert!(message.contains("10 minutes"), "{message}");

    // The vendor came back without a code.
    let authorize = w.start_connect("home").await;
    let state = state_of(&authorize);
    expect_error(
        callback(&w, &format!("state={state}"))
            .send()
            .await
            .expect("r"),
        400,
        "missing_code",
    )
    .await;

    // A state issued for another provider's callback.
    let authorize = w.start_connect("home").await;
    let state = state_of(&authorize);
    let r = w
        .client
        .get(format!("{}/callback/homey?state={state}&code=x", w.hh.base))
        .send()
        .await
        .expect("r");
    expect_error(r, 400, "invalid_state").await;
    assert_eq!(
        w.vendor.token_calls(),
        1,
        "no code exchange for any refused callback"
    );
}

#[tokio::test]
async fn the_owner_declining_shows_a_plain_page_and_changes_nothing() {
    let w = world().await;
    w.vendor.update(|s| s.deny_consent = true);
    let authorize = w.start_connect("home").await;
    let back = w.consent(&authorize).await;
    assert!(back.contains("error=access_denied"));

    let page = w
        .client
        .get(&back)
        .header("accept", "text/html")
        .send()
        .await
        .expect("r");
    assert_eq!(page.status(), 403);
    let html = page.text().await.expect("html");
    assert!(html.contains("Access was declined at Netatmo"), "{html}");
    assert!(html.contains("Not connected"));
    assert!(w.hh.store.get_token("home").await.expect("r").is_none());

    // The same refusal for a script is JSON.
    w.vendor.update(|s| s.deny_consent = true);
    let back = w.consent(&w.start_connect("home").await).await;
    expect_error(
        w.client.get(&back).send().await.expect("r"),
        403,
        "access_denied",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_reported_as_a_setting_to_fix_without_leaking_it() {
    let w = world().await;
    // The secrets homehook holds no longer match the vendor app.
    w.vendor
        .update(|s| s.client_secret = "rotated-at-the-vendor".into());
    let back = w.consent(&w.start_connect("home").await).await;
    let r = w.client.get(&back).send().await.expect("r");
    let message = expect_error(r, 502, "misconfigured").await;
    assert!(
        message.contains("client_secret") && message.contains("secret \"netatmo\""),
        "{message}"
    );
    assert!(
        message.contains("/callback/netatmo"),
        "names the redirect URI: {message}"
    );
    assert!(!message.contains(&FakeSettings::default().client_secret));
}

#[tokio::test]
async fn action_keys_methods_and_bodies() {
    let w = world().await;
    assert_eq!(w.connect("home").await.status(), 200);
    let url = |a: &str| format!("{}/a/{a}", w.hh.base);

    // No key.
    expect_error(
        w.client.post(url("heating")).send().await.expect("r"),
        401,
        "missing_key",
    )
    .await;
    // Wrong key and unknown action answer exactly alike.
    let wrong = w
        .client
        .post(url("heating"))
        .bearer_auth("hh_wrong")
        .send()
        .await
        .expect("r");
    let unknown = w
        .client
        .post(url("no_such_action"))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("r");
    assert_eq!(wrong.status(), unknown.status());
    let (wrong, unknown) = (
        wrong.text().await.expect("t"),
        unknown.text().await.expect("t"),
    );
    assert_eq!(wrong, unknown);
    assert!(wrong.contains("\"unauthorized\""));
    // The admin key is not an action key.
    let r = w
        .client
        .post(url("heating"))
        .bearer_auth(w.keys.admin.expose())
        .send()
        .await
        .expect("r");
    expect_error(r, 401, "unauthorized").await;

    // GET, HEAD, PUT on a POST-only action: never run, 405 with Allow.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = w
            .client
            .request(
                method.clone(),
                format!("{}?key={}", url("heating"), w.keys.action.expose()),
            )
            .send()
            .await
            .expect("r");
        assert_eq!(r.headers()["allow"], "POST", "{method}");
        expect_error(r, 405, "method_not_allowed").await;
    }
    let head = w
        .client
        .head(url("heating"))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("r");
    assert_eq!(head.status(), 405);
    assert!(
        w.vendor.api_calls().is_empty(),
        "nothing reached the vendor"
    );

    // Bodies and parameters.
    let post = |body: &'static str, ct: &'static str| {
        w.client
            .post(url("heating"))
            .bearer_auth(w.keys.action.expose())
            .header("content-type", ct)
            .body(body)
            .send()
    };
    expect_error(
        post("{\"mode\": ", "application/json").await.expect("r"),
        400,
        "malformed_body",
    )
    .await;
    expect_error(
        post("[1,2]", "application/json").await.expect("r"),
        400,
        "malformed_body",
    )
    .await;
    expect_error(
        post("<xml/>", "application/xml").await.expect("r"),
        415,
        "unsupported_media_type",
    )
    .await;
    let m = expect_error(
        post("{\"mode\":\"party\"}", "application/json")
            .await
            .expect("r"),
        400,
        "invalid_parameter",
    )
    .await;
    assert!(m.contains("schedule, away, hg"), "{m}");
    let m = expect_error(
        post("{\"home_id\":\"other\"}", "application/json")
            .await
            .expect("r"),
        400,
        "unknown_parameter",
    )
    .await;
    assert!(m.contains("mode"), "{m}");
    let r = w
        .client
        .post(url("cottage_heating"))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("r");
    expect_error(r, 400, "missing_parameter").await;
    let big = "x".repeat(20_000);
    let r = w
        .client
        .post(url("heating"))
        .bearer_auth(w.keys.action.expose())
        .json(&json!({ "mode": big }))
        .send()
        .await
        .expect("r");
    expect_error(r, 413, "body_too_large").await;
    let r = w
        .client
        .post(url("room"))
        .bearer_auth(w.keys.action.expose())
        .json(&json!({"room": "kitchen", "temp": 99}))
        .send()
        .await
        .expect("r");
    let m = expect_error(r, 400, "invalid_parameter").await;
    assert!(m.contains("between 7 and 30"), "{m}");
    assert!(
        w.vendor.api_calls().is_empty(),
        "no bad request reached the vendor"
    );
}

#[tokio::test]
async fn vendor_and_connection_problems_are_named() {
    let w = world().await;
    // Not connected yet.
    let m = expect_error(w.act("heating", json!({})).await, 409, "not_connected").await;
    assert!(m.contains("\"home\""), "{m}");

    assert_eq!(w.connect("home").await.status(), 200);
    // The vendor refuses the request itself: its status and reason come through.
    let r = w.act("bad_device", json!({})).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "vendor_rejected");
    assert_eq!(body["vendor_status"], 400);
    assert!(
        body["message"]
            .as_str()
            .expect("m")
            .contains("Invalid device id"),
        "{body}"
    );

    // The owner revoked access: after expiry the connection needs them, and says so.
    w.vendor.revoke_refresh_tokens();
    w.clock.advance(11_000);
    expect_error(w.act("heating", json!({})).await, 409, "reauth_needed").await;
    let calls = w.vendor.token_calls();
    expect_error(w.act("heating", json!({})).await, 409, "reauth_needed").await;
    assert_eq!(
        w.vendor.token_calls(),
        calls,
        "a dead connection does not hammer the vendor"
    );

    let status: Value = w
        .client
        .get(format!("{}/status", w.hh.base))
        .bearer_auth(w.keys.admin.expose())
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("json");
    let home = &status["connections"][1];
    assert_eq!(home["id"], "home");
    assert_eq!(home["health"], "reauth_needed");
    assert!(
        home["reason"]
            .as_str()
            .expect("reason")
            .contains("invalid_grant")
    );
    assert_eq!(status["connections"][0]["health"], "not_connected");

    // Connecting again heals it.
    assert_eq!(w.connect("home").await.status(), 200);
    assert_eq!(w.act("heating", json!({})).await.status(), 200);
}

#[tokio::test]
async fn admin_routes_need_the_admin_key_and_unknown_paths_are_json() {
    let w = world().await;
    let base = &w.hh.base;
    expect_error(
        w.client
            .get(format!("{base}/status"))
            .send()
            .await
            .expect("r"),
        401,
        "missing_key",
    )
    .await;
    let r = w
        .client
        .get(format!("{base}/status"))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("r");
    expect_error(r, 401, "unauthorized").await;
    let r = w
        .client
        .get(format!("{base}/connect/home?key=nope"))
        .send()
        .await
        .expect("r");
    expect_error(r, 401, "unauthorized").await;
    let r = w
        .client
        .get(format!("{base}/connect/nowhere"))
        .bearer_auth(w.keys.admin.expose())
        .send()
        .await
        .expect("r");
    expect_error(r, 404, "unknown_connection").await;
    expect_error(
        w.client
            .get(format!("{base}/nothing/here"))
            .send()
            .await
            .expect("r"),
        404,
        "not_found",
    )
    .await;
    expect_error(
        w.client
            .delete(format!("{base}/status"))
            .send()
            .await
            .expect("r"),
        405,
        "method_not_allowed",
    )
    .await;
    let health: Value = w
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("j");
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn secrets_never_appear_in_answers() {
    let w = world().await;
    let settings = FakeSettings::default();
    let back = w.consent(&w.start_connect("home").await).await;
    let connected = w
        .client
        .get(&back)
        .send()
        .await
        .expect("r")
        .text()
        .await
        .expect("t");
    let token = w.hh.store.get_token("home").await.expect("r").expect("t");
    let status = w
        .client
        .get(format!("{}/status", w.hh.base))
        .bearer_auth(w.keys.admin.expose())
        .send()
        .await
        .expect("r")
        .text()
        .await
        .expect("t");
    let act = w
        .act("temperature", json!({}))
        .await
        .text()
        .await
        .expect("t");
    for answer in [&connected, &status, &act] {
        for secret in [
            token.access_token.expose(),
            token.refresh_token.as_ref().expect("rt").expose(),
            &settings.client_secret,
            w.keys.admin.expose(),
            w.keys.action.expose(),
        ] {
            assert!(!answer.contains(secret), "leak in {answer}");
        }
    }
}
