//! Somfy Home Alarm through Somfy Protect, against its fake: the seed's vocabulary (armed,
//! disarmed, partial, notif_on, notif_off, status), the password grant on first use, both token
//! paths, the 5-per-10-minutes token budget, Somfy's error envelope, outages.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::MemoryStore;
use homehook_tests::fake_vendor::{CallBudget, ClientAuthStyle, FakeSettings};
use homehook_tests::fakes::somfy::{FakeSomfy, SIREN, SIREN_LABEL, SITE};
use homehook_tests::harness::{T0, World, secrets_for};
use serde_json::{Value, json};

fn config(api_base: &str, token_url: &str, client_auth: &str) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.somfy_protect]
token_url = "{token_url}"
api_base = "{api_base}"
client_auth = "{client_auth}"

[connections.alarm]
provider = "somfy_protect"
label = "Maison"
secret = "somfy"

[actions.armed]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.partial]
connection = "alarm"
builtin = "partial"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.disarmed]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.notif_on]
connection = "alarm"
builtin = "notif_on"
with = {{ site_id = "{SITE}", siren_id = "{SIREN}", siren_label = "{SIREN_LABEL}" }}
key_hash = "{{key}}"

[actions.notif_off]
connection = "alarm"
builtin = "notif_off"
with = {{ site_id = "{SITE}", siren_id = "{SIREN}", siren_label = "{SIREN_LABEL}" }}
key_hash = "{{key}}"

[actions.status]
connection = "alarm"
builtin = "status"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.other_site]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "not-my-site" }}
key_hash = "{{key}}"
"#
    )
}

async fn world_with(
    settings: FakeSettings,
    token_path: &str,
    client_auth: &str,
) -> World<FakeSomfy> {
    let clock = ManualClock::new(T0);
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let config = config(
        &fake.api_base(),
        &format!("{}{token_path}", fake.vendor.base),
        client_auth,
    );
    World::with_vendor(
        clock,
        fake,
        &config,
        secrets_for("somfy", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await
}

async fn world() -> World<FakeSomfy> {
    world_with(FakeSomfy::settings(), "/oauth/oauth/v2/token", "form").await
}

#[tokio::test]
async fn the_seed_vocabulary_drives_the_alarm_with_one_token() {
    let w = world().await;
    assert_eq!(
        w.act_text("armed", json!({})).await,
        (200, "Alarm armed".into())
    );
    assert_eq!(w.vendor.alarm().security_level, "armed");

    // The status answers GET too (a bookmark), as a sentence to speak.
    let status = w
        .client
        .get(format!("{}/a/status", w.hh.base))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(status.text().await.unwrap(), "The alarm is armed");

    assert_eq!(
        w.act_text("partial", json!({})).await,
        (200, "Alarm partially armed".into())
    );
    assert_eq!(w.vendor.alarm().security_level, "partial");
    assert_eq!(
        w.act_text("notif_off", json!({})).await,
        (200, "Siren sound off".into())
    );
    assert!(!w.vendor.alarm().siren_sound);
    assert_eq!(
        w.vendor.alarm().siren_label,
        SIREN_LABEL,
        "the label is sent back unchanged"
    );
    assert_eq!(
        w.act_text("notif_on", json!({})).await,
        (200, "Siren sound on".into())
    );
    assert!(w.vendor.alarm().siren_sound);
    assert_eq!(
        w.act_text("disarmed", json!({})).await,
        (200, "Alarm disarmed".into())
    );
    assert_eq!(w.vendor.alarm().security_level, "disarmed");
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is disarmed".into())
    );

    // The password grant ran once, on first use; every other action reused its token.
    assert_eq!(w.vendor.vendor.token_calls(), 1);
    // A caller cannot point a built-in action at another site.
    let (status, body) = w.act_json("armed", json!({"site_id": "elsewhere"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_parameter"))
    );
}

#[tokio::test]
async fn an_access_token_expiring_mid_use_is_renewed_once_with_the_refresh_token() {
    let w = world().await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    w.clock.advance(3_000);
    w.vendor.vendor.expire_access_tokens();
    assert_eq!(
        w.act_text("disarmed", json!({})).await,
        (200, "Alarm disarmed".into())
    );
    assert_eq!(
        w.vendor.vendor.token_calls(),
        2,
        "password, then one refresh"
    );
    assert_eq!(
        w.vendor.vendor.live_refresh_tokens(),
        1,
        "the rotated refresh token was kept"
    );
    assert_eq!(w.vendor.alarm().security_level, "disarmed");
}

#[tokio::test]
async fn the_jwt_token_path_and_http_basic_work_and_expiry_comes_from_the_exp_claim() {
    let settings = FakeSettings {
        client_auth: ClientAuthStyle::Basic,
        ..FakeSomfy::settings()
    };
    let w = world_with(settings, "/token/jwt", "basic").await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    let record = w.hh.store.get_token("alarm").await.unwrap().unwrap();
    assert_eq!(
        record.expires_at,
        Some(T0.plus_secs(3_600)),
        "read from the JWT"
    );
    // An hour later the tick renews it before anyone waits.
    w.clock.advance(3_500);
    let summary = w.hh.app.tick().await.unwrap();
    assert_eq!(summary.tokens.refreshed, 1);
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is armed".into())
    );
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_makes_actions_wait_and_says_so() {
    let settings = FakeSettings {
        token_budget: Some(CallBudget {
            max: 1,
            window_secs: 600,
        }),
        ..FakeSomfy::settings()
    };
    let w = world_with(settings, "/oauth/oauth/v2/token", "form").await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    w.clock.advance(120);
    w.vendor.vendor.expire_access_tokens();

    let r = w.act("disarmed", json!({})).await;
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry, 480,
        "the vendor's X-RateLimit-Retry-After, passed on"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "vendor_unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("rate limited"),
        "{body}"
    );
    assert_eq!(w.vendor.alarm().security_level, "armed", "nothing happened");

    // Asking again does not hammer the token endpoint: homehook waits as told.
    let calls = w.vendor.vendor.token_calls();
    assert_eq!(w.act("disarmed", json!({})).await.status(), 503);
    assert_eq!(w.vendor.vendor.token_calls(), calls);
    assert_eq!(w.connection_status("alarm").await["health"], "degraded");

    w.clock.advance(480);
    assert_eq!(
        w.act_text("disarmed", json!({})).await,
        (200, "Alarm disarmed".into())
    );
    assert_eq!(w.connection_status("alarm").await["health"], "healthy");
}

#[tokio::test]
async fn a_rejected_refresh_token_falls_back_to_the_password_then_to_reauth() {
    let w = world().await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    w.clock.advance(3_600);
    w.vendor.vendor.revoke_refresh_tokens();
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is armed".into())
    );
    assert_eq!(
        w.vendor.vendor.token_calls(),
        3,
        "refresh refused, then password"
    );

    // Now the password changed too: the owner must act, and says so plainly.
    w.vendor
        .vendor
        .update(|s| s.account.1 = "new password".into());
    w.clock.advance(3_600);
    w.vendor.vendor.revoke_refresh_tokens();
    let (status, body) = w.act_json("status", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reauth_needed")),
        "{body}"
    );
    let conn = w.connection_status("alarm").await;
    assert_eq!(conn["health"], "reauth_needed");
    assert!(
        conn["reason"].as_str().unwrap().contains("invalid_grant"),
        "{conn}"
    );
}

#[tokio::test]
async fn somfy_errors_and_outages_reach_the_caller_in_words() {
    let w = world().await;
    // A site that is not the account's: Somfy's envelope, made readable.
    let (status, body) = w.act_json("other_site", json!({})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "vendor_rejected");
    assert_eq!(body["vendor_status"], 404);
    assert!(
        body["message"].as_str().unwrap().contains("site not found"),
        "{body}"
    );

    // A restoring site is a passing state: 503 with a retry hint.
    w.vendor.update(|a| a.restoring = true);
    let (status, body) = w.act_json("armed", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("restoring"),
        "{body}"
    );
    w.vendor.update(|a| a.restoring = false);

    // Two 500s are retried through; a longer outage ends in a clear 503 after three tries.
    w.vendor.faults().fail_next(500, 2);
    assert_eq!(
        w.act_text("armed", json!({})).await,
        (200, "Alarm armed".into())
    );
    let before = w.vendor.vendor.api_calls().len();
    w.vendor.faults().fail_next(502, 10);
    let r = w.act("disarmed", json!({})).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "vendor_unavailable");
    assert_eq!(
        w.vendor.vendor.api_calls().len() - before,
        3,
        "bounded: three tries"
    );
}

#[tokio::test]
async fn discover_lists_sites_and_sirens_with_their_ids() {
    let w = world().await;
    let r = w.admin_get("/discover/alarm").await;
    assert_eq!(r.status(), 200);
    let found: Value = r.json().await.unwrap();
    let section = |key: &str| {
        found["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {found}"))
    };
    assert_eq!(section("site_id")["items"][0]["id"], SITE);
    assert_eq!(section("site_id")["items"][0]["name"], "Maison");
    let siren = &section("siren_id")["items"][0];
    assert_eq!(siren["id"], SIREN);
    assert!(siren["detail"].as_str().unwrap().contains(SIREN_LABEL));
    // Without the admin key, nothing.
    let anonymous = w
        .client
        .get(format!("{}/discover/alarm", w.hh.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
