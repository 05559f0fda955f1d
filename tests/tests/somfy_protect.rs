//! Somfy Home Alarm through Somfy Protect, against its fake (which serves answers recorded from
//! the live API, tests/fixtures/somfy_protect): the seed's vocabulary (armed, disarmed, partial,
//! notif_on, notif_off, status), the password grant on first use at the JWT token endpoint (and
//! the legacy one failing in words), expiry from the JWT with or without `expires_in`, renewal
//! on 401 and 403, the 5-per-10-minutes token budget, the siren's settings kept whole, Somfy's
//! error envelope, outages.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::providers::somfy_protect;
use homehook_core::store::MemoryStore;
use homehook_tests::fake_vendor::{CallBudget, ClientAuthStyle, FakeSettings};
use homehook_tests::fakes::somfy::{
    FakeSomfy, KEYPAD, LEGACY_TOKEN_PATH, OUTDOOR_SIREN, SIREN, SIREN_LABEL, SITE, TOKEN_PATH,
};
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

# Without siren_label: the label comes from Somfy.
[actions.outdoor_off]
connection = "alarm"
builtin = "notif_off"
with = {{ site_id = "{SITE}", siren_id = "{OUTDOOR_SIREN}" }}
key_hash = "{{key}}"

[actions.outdoor_on]
connection = "alarm"
builtin = "notif_on"
with = {{ site_id = "{SITE}", siren_id = "{OUTDOOR_SIREN}" }}
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

[actions.other_site_status]
connection = "alarm"
builtin = "status"
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
    world_with(FakeSomfy::settings(), TOKEN_PATH, "form").await
}

/// The path of the token URL homehook uses when config does not say.
fn default_token_path() -> String {
    let url = somfy_protect::spec().token_url;
    url::Url::parse(&url).unwrap().path().to_string()
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
    assert_eq!(w.vendor.alarm().siren_sound(), Some(false));
    assert_eq!(
        w.vendor.alarm().siren_label(),
        SIREN_LABEL,
        "the label is sent back unchanged"
    );
    assert_eq!(
        w.act_text("notif_on", json!({})).await,
        (200, "Siren sound on".into())
    );
    assert_eq!(w.vendor.alarm().siren_sound(), Some(true));
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
        // The answer without expires_in: the expiry can only come from the JWT.
        jwt_expires_in: false,
        ..FakeSomfy::settings()
    };
    let w = world_with(settings, TOKEN_PATH, "basic").await;
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
    let w = world_with(settings, TOKEN_PATH, "form").await;
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
    assert_eq!(siren["name"], SIREN_LABEL);
    // Without the admin key, nothing.
    let anonymous = w
        .client
        .get(format!("{}/discover/alarm", w.hh.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_default_token_url_gets_a_token_and_the_legacy_one_fails_in_words() {
    // The default token URL's path, on the fake's host: the endpoint clients use since
    // 2025-12-26 (SomfyProtect2MQTT sso/__init__.py L22).
    let w = world_with(FakeSomfy::settings(), &default_token_path(), "form").await;
    assert_eq!(
        w.act_text("armed", json!({})).await,
        (200, "Alarm armed".into())
    );
    assert_eq!(w.vendor.alarm().security_level, "armed");

    // A config still pointing at the legacy endpoint: its answer has no access token, so no
    // action can run, and the caller hears which setting is wrong (not "try again later").
    let legacy = world_with(FakeSomfy::settings(), LEGACY_TOKEN_PATH, "form").await;
    let (status, body) = legacy.act_json("armed", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "misconfigured", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("without an access_token")
            && message.contains("providers.somfy_protect.token_url"),
        "{body}"
    );
    assert_eq!(
        legacy.vendor.alarm().security_level,
        "disarmed",
        "nothing happened"
    );
}

#[tokio::test]
async fn the_jwt_expiry_is_the_same_with_or_without_expires_in() {
    for with_expires_in in [false, true] {
        let settings = FakeSettings {
            jwt_expires_in: with_expires_in,
            ..FakeSomfy::settings()
        };
        let w = world_with(settings, TOKEN_PATH, "form").await;
        assert_eq!(w.act_text("armed", json!({})).await.0, 200);
        let record = w.hh.store.get_token("alarm").await.unwrap().unwrap();
        assert_eq!(
            record.expires_at,
            Some(T0.plus_secs(3_600)),
            "expires_in in the answer: {with_expires_in}"
        );
        // Somfy's `scope` is an array (SomfyProtect2MQTT issue #180): read as the granted
        // scopes.
        assert!(
            record.scopes.iter().any(|s| s == "api.full"),
            "{:?}",
            record.scopes
        );
        // Renewed by the tick before it lapses, then used.
        w.clock.advance(3_500);
        assert_eq!(w.hh.app.tick().await.unwrap().tokens.refreshed, 1);
        assert_eq!(
            w.act_text("status", json!({})).await,
            (200, "The alarm is armed".into())
        );
    }
}

#[tokio::test]
async fn siren_sound_keeps_the_sirens_other_settings_and_its_label() {
    let w = world().await;
    let before = w.vendor.alarm();
    let light = before.setting(SIREN, "light_enabled").cloned();
    let protect = before.setting(SIREN, "auto_protect_enabled").cloned();
    assert!(
        light.is_some() && protect.is_some(),
        "recorded siren settings"
    );

    assert_eq!(
        w.act_text("notif_off", json!({})).await,
        (200, "Siren sound off".into())
    );
    let after = w.vendor.alarm();
    assert_eq!(after.siren_sound(), Some(false));
    // The fake replaces settings.global on PUT: only a client sending it whole keeps these.
    assert_eq!(after.setting(SIREN, "light_enabled").cloned(), light);
    assert_eq!(
        after.setting(SIREN, "auto_protect_enabled").cloned(),
        protect
    );
    // The per-level settings went back as they were too.
    let sent: Value = serde_json::from_str(
        &w.vendor
            .vendor
            .api_calls()
            .iter()
            .rev()
            .find(|c| c.method == "PUT")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(sent["settings"]["armed"]["auto_protect_enabled"], true);
    assert!(sent["settings"].get("object").is_none(), "{sent}");

    // Renamed in the app since the config was written: the new name stays.
    w.vendor.update(|a| {
        for d in &mut a.devices {
            if d["device_id"] == SIREN {
                d["label"] = json!("Sirène entrée");
            }
        }
    });
    assert_eq!(w.act_text("notif_on", json!({})).await.0, 200);
    assert_eq!(w.vendor.alarm().siren_sound(), Some(true));
    assert_eq!(w.vendor.alarm().siren_label(), "Sirène entrée");

    // An action without siren_label: the outdoor siren (sound off in the recording).
    let threshold = w
        .vendor
        .alarm()
        .setting(OUTDOOR_SIREN, "thresholdAcc")
        .cloned();
    assert_eq!(
        w.act_text("outdoor_on", json!({})).await,
        (200, "Siren sound on".into())
    );
    let alarm = w.vendor.alarm();
    assert_eq!(
        alarm.setting(OUTDOOR_SIREN, "sound_enabled"),
        Some(&json!(true))
    );
    assert_eq!(
        alarm.setting(OUTDOOR_SIREN, "thresholdAcc").cloned(),
        threshold
    );
    assert_eq!(
        alarm.device(OUTDOOR_SIREN).unwrap()["label"],
        "Außensirene",
        "its recorded label, sent back"
    );
}

#[tokio::test]
async fn a_siren_that_cannot_be_read_is_left_alone() {
    let w = world().await;
    let before = w.vendor.alarm();
    w.vendor.faults().fail_next(502, 3);
    let (status, body) = w.act_json("notif_off", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        w.vendor
            .vendor
            .api_calls()
            .iter()
            .all(|c| c.method != "PUT"),
        "no settings sent without the siren's own"
    );
    assert_eq!(w.vendor.alarm().siren_sound(), before.siren_sound());
}

#[tokio::test]
async fn a_403_renews_the_token_once_and_a_lasting_403_is_refused() {
    let w = world().await;
    assert_eq!(w.act_text("armed", json!({})).await.0, 200);
    // The API answers an expired token with 403: renewed once, the action goes through.
    w.vendor.update(|a| a.expired_status = 403);
    w.clock.advance(1_200);
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
    assert_eq!(w.vendor.alarm().security_level, "disarmed");

    // A 403 that stays after the renewal is a refusal: one renewal, two tries, no loop.
    let (tokens, calls) = (
        w.vendor.vendor.token_calls(),
        w.vendor.vendor.api_calls().len(),
    );
    w.vendor.faults().fail_next(403, 5);
    let (status, body) = w.act_json("armed", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("vendor_rejected")),
        "{body}"
    );
    assert_eq!(body["vendor_status"], 403, "{body}");
    assert_eq!(w.vendor.vendor.token_calls() - tokens, 1);
    assert_eq!(w.vendor.vendor.api_calls().len() - calls, 2);
    assert_eq!(w.vendor.alarm().security_level, "disarmed");
}

#[tokio::test]
async fn recorded_answers_speak_and_list_what_the_owner_has() {
    let w = world().await;
    // An unknown site read: Somfy's getSite wording (`error.notFound.site`), made readable.
    let (status, body) = w.act_json("other_site_status", json!({})).await;
    assert_eq!((status, body["vendor_status"].as_u64()), (502, Some(404)));
    assert!(
        body["message"].as_str().unwrap().contains("site not found"),
        "{body}"
    );
    // The job a security change answers: `created_at` in integer milliseconds.
    let (status, body) = w.act_json("partial", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], "Alarm partially armed");
    assert_eq!(body["data"]["created_at"], json!(T0.0 * 1000));
    assert_eq!(
        w.act_text("status", json!({})).await,
        (200, "The alarm is partially armed".into())
    );

    // Discover reads the recorded lists: both sirens (not the keypad, which has a sound
    // setting too), the site with its brand object intact.
    let found: Value = w.admin_get("/discover/alarm").await.json().await.unwrap();
    let sirens = homehook_tests::harness::discovered_ids(&found, "siren_id");
    assert_eq!(sirens, [SIREN, OUTDOOR_SIREN]);
    let devices = homehook_tests::harness::discovered_ids(&found, "device_id");
    assert!(devices.contains(&KEYPAD.to_string()) && !sirens.contains(&KEYPAD.to_string()));
}
