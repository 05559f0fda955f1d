//! Public URLs under attack: a disarm URL is only as safe as the gate in front of it. Each test
//! drives homehook over loopback against the fake Somfy Protect and checks what a user would
//! notice: the alarm did (or did not) change, and the answer said why.

#![allow(clippy::expect_used, clippy::unwrap_used)]

// Round two of the red team (../shared/reviews/security.md), one module per front.
mod gate;
mod server;
mod sources;

use std::sync::Arc;

use homehook_core::clock::{ManualClock, UnixTime};
use homehook_core::guard::pin::PinHash;
use homehook_core::guard::signature::sign;
use homehook_core::keys::ActionKey;
use homehook_core::store::{MemoryStore, Store};
use homehook_local::SqliteStore;
use homehook_tests::fakes::somfy::{FakeSomfy, SITE};
use homehook_tests::harness::{Homehook, T0, World, secrets_for};
use homehook_tests::leak_watch;
use serde_json::{Value, json};

const PIN: &str = "482193";
const SIGNING_KEY: &str = "sk-shortcut-5f0c9e2a71";

/// Keys beyond the world's admin and action keys.
struct MoreKeys {
    phone: ActionKey,
    old_phone: ActionKey,
    lost: ActionKey,
}

impl MoreKeys {
    fn new() -> Self {
        let k = Self {
            phone: ActionKey::generate(),
            old_phone: ActionKey::generate(),
            lost: ActionKey::generate(),
        };
        for key in [&k.phone, &k.old_phone, &k.lost] {
            leak_watch::issued("action_key", key.expose());
        }
        k
    }
}

fn config(api_base: &str, token_url: &str, keys: &MoreKeys, pin_hash: &PinHash) -> String {
    let overlap_ends = UnixTime(T0.0 + 3600).to_rfc3339();
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.somfy_protect]
token_url = "{token_url}"
api_base = "{api_base}"
client_auth = "form"

[connections.alarm]
provider = "somfy_protect"
secret = "somfy"

[actions.armed]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.disarmed]
connection = "alarm"
builtin = "disarmed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"
pin_hash = "{pin_hash}"
# The PIN test makes a dozen calls; sensitive actions default to 3 at once, 6 a minute.
rate_limit = {{ burst = 20, per_minute = 60 }}

[actions.status]
connection = "alarm"
builtin = "status"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"

[actions.signed_arm]
connection = "alarm"
builtin = "armed"
with = {{ site_id = "{SITE}" }}
key_hash = "{{key}}"
signing_secret = "shortcut"

[keys.phone]
hash = "{phone}"
actions = ["armed", "status"]
rate_limit = {{ burst = 4, per_minute = 2 }}

[keys.old_phone]
hash = "{old_phone}"
actions = ["armed"]
expires = "{overlap_ends}"

[keys.lost]
hash = "{lost}"
actions = ["*"]
revoked = true
"#,
        phone = keys.phone.hash(),
        old_phone = keys.old_phone.hash(),
        lost = keys.lost.hash(),
    )
}

struct Scene {
    w: World<FakeSomfy>,
    keys: MoreKeys,
}

async fn scene_on(store: Arc<dyn Store>) -> Scene {
    let clock = ManualClock::new(T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let keys = MoreKeys::new();
    leak_watch::issued("pin", PIN);
    leak_watch::issued("signing_key", SIGNING_KEY);
    let pin_hash = PinHash::of(PIN).unwrap();
    let text = config(
        &fake.api_base(),
        &format!("{}/oauth/oauth/v2/token/jwt", fake.vendor.base),
        &keys,
        &pin_hash,
    );
    let secrets = secrets_for("somfy", &settings)
        .with_entry("shortcut", json!({ "signing_key": SIGNING_KEY }));
    let w = World::with_vendor(clock, fake, &text, secrets, store).await;
    Scene { w, keys }
}

async fn scene() -> Scene {
    scene_on(Arc::new(MemoryStore::new())).await
}

impl Scene {
    fn url(&self, action: &str) -> String {
        format!("{}/a/{action}", self.w.hh.base)
    }

    async fn call(&self, action: &str, key: &str) -> (u16, String) {
        let r = self
            .w
            .client
            .post(self.url(action))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn level(&self) -> String {
        self.w.vendor.alarm().security_level
    }

    fn vendor_calls(&self) -> usize {
        self.w.vendor.vendor.api_calls().len()
    }
}

/// The `error` code of a JSON error body; empty for anything else (a spoken answer).
fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn scoped_keys_open_their_actions_and_every_refusal_looks_the_same() {
    let s = scene().await;
    let action_key = s.w.keys.action.expose().to_string();
    assert_eq!(
        s.call("armed", s.keys.phone.expose()).await,
        (200, "Alarm armed".into())
    );
    assert_eq!(s.call("status", s.keys.phone.expose()).await.0, 200);

    // Five ways to be refused; one answer, byte for byte, so nothing can be probed.
    let refusals = [
        s.call("disarmed", s.keys.phone.expose()).await, // a real key, not for this action
        s.call("no_such_action", &action_key).await,     // no such action
        s.call("disarmed", "hh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await, // wrong key
        s.call("armed", s.keys.lost.expose()).await,     // revoked
        s.call("no_such_action", s.keys.lost.expose()).await,
    ];
    for r in &refusals {
        assert_eq!(r, &refusals[0]);
    }
    assert_eq!(refusals[0].0, 401);
    assert_eq!(error_of(&refusals[0].1), "unauthorized");
    assert_eq!(s.level(), "armed", "no refusal disarmed anything");
}

#[tokio::test]
async fn a_rotated_key_works_during_the_overlap_and_not_after() {
    let s = scene().await;
    assert_eq!(s.call("armed", s.keys.old_phone.expose()).await.0, 200);
    assert_eq!(s.call("armed", s.keys.phone.expose()).await.0, 200);
    s.w.clock.advance(3600);
    let (status, body) = s.call("armed", s.keys.old_phone.expose()).await;
    assert_eq!((status, error_of(&body).as_str()), (401, "unauthorized"));
    assert_eq!(s.call("armed", s.keys.phone.expose()).await.0, 200);
}

#[tokio::test]
async fn only_post_acts_head_and_options_never_do() {
    let s = scene().await;
    assert_eq!(s.call("armed", s.w.keys.action.expose()).await.0, 200);
    let calls = s.vendor_calls();
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"] {
        for action in ["disarmed", "armed"] {
            let r =
                s.w.client
                    .request(method.parse().unwrap(), s.url(action))
                    .bearer_auth(s.w.keys.action.expose())
                    .header("x-homehook-pin", PIN)
                    .send()
                    .await
                    .unwrap();
            assert_eq!(r.status(), 405, "{method} {action}");
            assert_eq!(r.headers()["allow"], "POST", "{method} {action}");
        }
    }
    assert_eq!(s.level(), "armed");
    assert_eq!(s.vendor_calls(), calls, "no vendor call for any of them");
    // The read-only status opts in to GET (a bookmark), but HEAD still never runs it.
    let get =
        s.w.client
            .get(format!(
                "{}?key={}",
                s.url("status"),
                s.w.keys.action.expose()
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(get.status(), 200);
    let head =
        s.w.client
            .head(format!(
                "{}?key={}",
                s.url("status"),
                s.w.keys.action.expose()
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(head.status(), 405);
}

#[tokio::test]
async fn disarming_needs_the_pin_and_wrong_pins_lock_it() {
    let s = scene().await;
    let key = s.w.keys.action.expose().to_string();
    assert_eq!(s.call("armed", &key).await.0, 200);
    let disarm = |pin: Option<(&'static str, &'static str)>| {
        let mut r = s.w.client.post(s.url("disarmed")).bearer_auth(&key);
        match pin {
            Some(("header", p)) => r = r.header("x-homehook-pin", p),
            Some((_, p)) => r = r.json(&json!({ "pin": p })),
            None => {}
        }
        async move {
            let r = r.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                r.status().as_u16(),
                error_of(&r.text().await.unwrap()),
                retry,
            )
        }
    };
    assert_eq!(disarm(None).await, (401, "pin_required".into(), None));
    assert_eq!(disarm(Some(("header", "0000"))).await.0, 401);
    assert_eq!(s.level(), "armed", "a wrong PIN disarms nothing");
    // The right PIN, in the body this time.
    let r =
        s.w.client
            .post(s.url("disarmed"))
            .bearer_auth(&key)
            .json(&json!({ "pin": PIN }))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Alarm disarmed");
    assert_eq!(s.level(), "disarmed");

    // Four more wrong PINs (five in the window) lock the action, even for the right PIN.
    assert_eq!(s.call("armed", &key).await.0, 200);
    for _ in 0..3 {
        assert_eq!(disarm(Some(("body", "123456"))).await.1, "wrong_pin");
    }
    let (status, code, retry) = disarm(Some(("header", "999999"))).await;
    assert_eq!((status, code.as_str()), (429, "pin_locked"));
    let retry: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(disarm(Some(("header", PIN))).await.1, "pin_locked");
    assert_eq!(s.level(), "armed");
    // After the lockout window, the right PIN works again.
    s.w.clock.advance(retry);
    assert_eq!(disarm(Some(("header", PIN))).await.0, 200);
    assert_eq!(s.level(), "disarmed");
}

#[tokio::test]
async fn signed_requests_are_fresh_unique_and_exactly_the_body_signed() {
    let s = scene().await;
    let key = s.w.keys.action.expose().to_string();
    let send = |ts: i64, sig: Option<String>, body: &'static str, query: &'static str| {
        let mut r =
            s.w.client
                .post(format!("{}{query}", s.url("signed_arm")))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .header("x-homehook-timestamp", ts.to_string())
                .body(body);
        if let Some(sig) = sig {
            r = r.header("x-homehook-signature", sig);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let now = T0.0;
    let good = sign(SIGNING_KEY.as_bytes(), now, b"{}");
    assert_eq!(
        send(now, Some(good.clone()), "{}", "").await,
        (200, "Alarm armed".into())
    );
    let calls = s.vendor_calls();
    // The same signed request again: a replay.
    let replay = send(now, Some(good.clone()), "{}", "").await;
    assert_eq!(
        (replay.0, error_of(&replay.1).as_str()),
        (401, "signature_replayed")
    );
    let cases = [
        (now, None, "{}", "", "signature_required"),
        (
            now,
            Some("sha256=nothex".to_string()),
            "{}",
            "",
            "signature_malformed",
        ),
        (now, Some(good.clone()), "{ }", "", "signature_mismatch"),
        (
            now - 301,
            Some(sign(SIGNING_KEY.as_bytes(), now - 301, b"{}")),
            "{}",
            "",
            "signature_stale",
        ),
        (
            now,
            Some(sign(b"a guess", now, b"{}")),
            "{}",
            "",
            "signature_mismatch",
        ),
    ];
    for (ts, sig, body, query, code) in cases {
        let (status, text) = send(ts, sig, body, query).await;
        assert_eq!((status, error_of(&text).as_str()), (401, code));
    }
    // Parameters in the URL are not covered by the signature, so they are refused.
    let fresh = sign(SIGNING_KEY.as_bytes(), now + 1, b"{}");
    let (status, text) = send(now + 1, Some(fresh), "{}", "?mode=x").await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (400, "unsigned_parameters")
    );
    assert_eq!(s.vendor_calls(), calls, "none of them reached the alarm");
}

async fn idempotent_call(s: &Scene, idem: &str, body: Value) -> (u16, String, Option<String>) {
    let r =
        s.w.client
            .post(s.url("armed"))
            .bearer_auth(s.w.keys.action.expose())
            .header("idempotency-key", idem)
            .json(&body)
            .send()
            .await
            .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.text().await.unwrap(), replayed)
}

#[tokio::test]
async fn an_idempotency_key_acts_once_a_day_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = scene_on(Arc::new(SqliteStore::open_in(dir.path()).unwrap())).await;
    assert_eq!(
        idempotent_call(&s, "shortcut-7f3a", json!({})).await,
        (200, "Alarm armed".into(), None)
    );
    let calls = s.vendor_calls();
    // Someone disarms in the Somfy app; the shortcut's retry must not re-arm.
    s.w.vendor.update(|a| a.security_level = "disarmed".into());
    assert_eq!(
        idempotent_call(&s, "shortcut-7f3a", json!({})).await,
        (200, "Alarm armed".into(), Some("true".into()))
    );
    assert_eq!(s.vendor_calls(), calls);
    assert_eq!(s.level(), "disarmed");
    // The same key for a different request is a mistake, said so.
    let (status, body, _) = idempotent_call(&s, "shortcut-7f3a", json!({"extra": 1})).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (422, "idempotency_key_reused")
    );
    // A malformed key is refused before anything happens.
    let (status, body, _) = idempotent_call(&s, "has spaces", json!({})).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (400, "invalid_idempotency_key")
    );

    // Another homehook process on the same store (a restart, a second instance) replays too.
    let again = Homehook::start(
        &config_for_restart(&s),
        Arc::new(SqliteStore::open_in(dir.path()).unwrap()),
        secrets_for("somfy", &FakeSomfy::settings())
            .with_entry("shortcut", json!({ "signing_key": SIGNING_KEY })),
        s.w.clock.clone(),
    )
    .await
    .unwrap();
    let r =
        s.w.client
            .post(format!("{}/a/armed", again.base))
            .bearer_auth(s.w.keys.action.expose())
            .header("idempotency-key", "shortcut-7f3a")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(s.vendor_calls(), calls);

    // A day later the key is forgotten: the same call acts again.
    s.w.clock.advance(24 * 3600);
    assert_eq!(
        idempotent_call(&s, "shortcut-7f3a", json!({})).await,
        (200, "Alarm armed".into(), None)
    );
    assert_eq!(s.level(), "armed");
}

/// The scene's config text as the running server has it (same keys), for a second process.
fn config_for_restart(s: &Scene) -> String {
    let source = s.w.hh.app.services.config.source.clone();
    assert!(source.is_none(), "the scene's config is inline");
    // Rebuild from the same parts: the hashes are what matter.
    let text = config(
        &s.w.vendor.api_base(),
        &format!("{}/oauth/oauth/v2/token/jwt", s.w.vendor.vendor.base),
        &s.keys,
        &PinHash::of(PIN).unwrap(),
    );
    text.replace("{admin}", &s.w.keys.admin.hash().to_string())
        .replace("{key}", &s.w.keys.action.hash().to_string())
}

#[tokio::test]
async fn a_retryable_failure_frees_the_idempotency_key() {
    let s = scene().await;
    s.w.vendor.faults().fail_next(503, 3);
    let (status, _, _) = idempotent_call(&s, "retry-me", json!({})).await;
    assert_eq!(status, 503);
    assert_eq!(s.level(), "disarmed");
    // The retry with the same key acts: the first call did not.
    assert_eq!(
        idempotent_call(&s, "retry-me", json!({})).await,
        (200, "Alarm armed".into(), None)
    );
    assert_eq!(s.level(), "armed");
}

#[tokio::test]
async fn rate_limits_per_action_and_per_key_answer_429_with_retry_after() {
    let s = scene().await;
    // The phone key: 4 at once, 2 a minute, over every action it opens.
    let phone = s.keys.phone.expose().to_string();
    for action in ["armed", "status", "armed", "status"] {
        assert_eq!(s.call(action, &phone).await.0, 200);
    }
    let r =
        s.w.client
            .post(s.url("status"))
            .bearer_auth(&phone)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(error_of(&r.text().await.unwrap()), "rate_limited");

    // The action: 10 at once by default; its own key is limited with it.
    let key = s.w.keys.action.expose().to_string();
    let calls = s.vendor_calls();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(s.call("status", &key).await.0);
    }
    // 2 of the 10 went to the phone key's calls above.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        8,
        "{statuses:?}"
    );
    assert!(statuses[8..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        s.vendor_calls(),
        calls + 8,
        "refused calls never reach the vendor"
    );
    // The disarm action (sensitive) has its own, stricter budget and is unaffected.
    let r =
        s.w.client
            .post(s.url("disarmed"))
            .bearer_auth(&key)
            .header("x-homehook-pin", PIN)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_source_that_keeps_guessing_keys_is_locked_out() {
    let s = scene().await;
    for i in 0..10 {
        let (status, _) = s.call("disarmed", &format!("hh_guess{i}")).await;
        assert_eq!(status, 401);
    }
    // The 11th wrong key locks this address out: from then on its wrong keys, on any action,
    // are told to stop for 15 minutes instead of 401.
    let r =
        s.w.client
            .post(s.url("armed"))
            .bearer_auth("hh_guess10")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((850..=900).contains(&retry), "{retry}");
    assert_eq!(error_of(&r.text().await.unwrap()), "source_locked");
    assert_eq!(s.call("status", "hh_guess11").await.0, 429);
    assert_eq!(s.level(), "disarmed", "no wrong key acted");
    // A key that opens the action is never refused by a lockout (sources.rs: the owner behind
    // the same proxy as the guesser).
    assert_eq!(
        s.call("armed", s.w.keys.action.expose()).await,
        (200, "Alarm armed".into())
    );
}
