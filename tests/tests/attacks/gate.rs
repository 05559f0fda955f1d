//! The gate, round two: signed requests replayed with a new Idempotency-Key, a revoked key
//! listed twice, an idempotency claim outliving its call, PINs searched offline.

use std::time::Duration;

use homehook_core::clock::Clock;
use homehook_core::config::Config;
use homehook_core::guard::idempotency::{PENDING_SECS, RENEW_EVERY_SECS};
use homehook_core::guard::keyring::KeyRefusal;
use homehook_core::guard::pin::{self, PinHashError};
use homehook_tests::fake_vendor::TokenFault;
use sha2::{Digest, Sha256};

use super::*;

/// HMAC-SHA256, written here from RFC 2104 rather than taken from homehook: these tests sign
/// the way the README tells a caller to, so a change of the signed text in homehook alone
/// cannot make them pass.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// README, "signed mode": `"<timestamp>.<body>"`, or with an Idempotency-Key
/// `"<timestamp>\n<key>\n<body>"`.
fn readme_signature(ts: i64, idempotency_key: Option<&str>, body: &str) -> String {
    let text = match idempotency_key {
        None => format!("{ts}.{body}"),
        Some(k) => format!("{ts}\n{k}\n{body}"),
    };
    format!(
        "sha256={}",
        hmac_sha256(SIGNING_KEY.as_bytes(), text.as_bytes())
    )
}

/// One `POST /a/signed_arm` as a captured request would be sent again: the same key,
/// timestamp, signature and body, with `idempotency_key` as the only header that changes.
async fn send_signed(
    s: &Scene,
    ts: i64,
    signature: &str,
    idempotency_key: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut r =
        s.w.client
            .post(s.url("signed_arm"))
            .bearer_auth(s.w.keys.action.expose())
            .header("content-type", "application/json")
            .header("x-homehook-timestamp", ts.to_string())
            .header("x-homehook-signature", signature)
            .body("{}");
    if let Some(k) = idempotency_key {
        r = r.header("idempotency-key", k);
    }
    let r = r.send().await.unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.text().await.unwrap(), replayed)
}

#[tokio::test]
async fn a_captured_signed_request_acts_once_whatever_idempotency_key_is_added() {
    let s = scene().await;
    let now = T0.0;
    let captured = sign(SIGNING_KEY.as_bytes(), now, b"{}");
    assert_eq!(readme_signature(now, None, "{}"), captured);
    let (status, body, _) = send_signed(&s, now, &captured, None).await;
    assert_eq!((status, body.as_str()), (200, "Alarm armed"));
    let calls = s.vendor_calls();
    // The red team's replay: the same bytes, each time with a fresh Idempotency-Key.
    for i in 0..5 {
        let (status, body, _) = send_signed(&s, now, &captured, Some(&format!("fresh-{i}"))).await;
        assert_eq!(status, 401, "replay {i}: {body}");
        assert_eq!(error_of(&body), "signature_mismatch", "replay {i}");
    }
    // And as captured.
    let (status, body, _) = send_signed(&s, now, &captured, None).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (401, "signature_replayed")
    );
    assert_eq!(
        s.vendor_calls(),
        calls,
        "one signed request reached the alarm once"
    );
}

#[tokio::test]
async fn a_signed_idempotency_key_cannot_be_switched_and_its_repeat_only_gets_the_kept_answer() {
    let s = scene().await;
    let now = T0.0;
    let owners = readme_signature(now, Some("owner-1"), "{}");
    assert_eq!(
        send_signed(&s, now, &owners, Some("owner-1")).await,
        (200, "Alarm armed".into(), None)
    );
    let calls = s.vendor_calls();
    s.w.vendor.update(|a| a.security_level = "disarmed".into());
    // The same request again (a shortcut's retry): the kept answer, nothing sent.
    assert_eq!(
        send_signed(&s, now, &owners, Some("owner-1")).await,
        (200, "Alarm armed".into(), Some("true".into()))
    );
    // Captured and sent under another key, or none: the signature no longer matches.
    for other in [Some("owner-2"), None] {
        let (status, body, _) = send_signed(&s, now, &owners, other).await;
        assert_eq!(status, 401, "{other:?}: {body}");
    }
    assert_eq!(s.vendor_calls(), calls);
    assert_eq!(s.level(), "disarmed", "no replay re-armed the alarm");

    // A call the vendor refused for now (503) keeps no answer: its exact repeat is a replay,
    // and the retry is signed anew (same key, new timestamp).
    s.w.vendor.faults().fail_next(503, 3);
    let first = readme_signature(now + 1, Some("retry-1"), "{}");
    assert_eq!(
        send_signed(&s, now + 1, &first, Some("retry-1")).await.0,
        503
    );
    let (status, body, _) = send_signed(&s, now + 1, &first, Some("retry-1")).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (401, "signature_replayed")
    );
    let again = readme_signature(now + 2, Some("retry-1"), "{}");
    assert_eq!(
        send_signed(&s, now + 2, &again, Some("retry-1")).await,
        (200, "Alarm armed".into(), None)
    );
    assert_eq!(s.level(), "armed");
}

/// The scene's config with `[keys.lost_phone]` revoked and its hash also under `action`'s own
/// `key_hash` (beside its key, or alone): the red team's migration left-over.
fn with_lost_phone_on(text: &str, action: &str, lost: &str, extra_key: bool) -> String {
    let key_hash = if extra_key {
        format!(r#"key_hash = ["{{key}}", "{lost}"]"#)
    } else {
        format!(r#"key_hash = "{lost}""#)
    };
    let section = text
        .split_once(&format!("[actions.{action}]\n"))
        .and_then(|(_, rest)| rest.split_once("\n["))
        .map(|(section, _)| section)
        .unwrap();
    let new_section = section.replace(r#"key_hash = "{key}""#, &key_hash);
    text.replacen(section, &new_section, 1)
        .replace("[keys.lost]", "[keys.lost_phone]")
}

#[tokio::test]
async fn a_revoked_key_listed_again_on_an_action_opens_nothing_and_is_named_as_revoked() {
    let clock = ManualClock::new(T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let keys = MoreKeys::new();
    let lost = keys.lost.hash().to_string();
    let text = config(
        &fake.api_base(),
        &format!("{}/oauth/oauth/v2/token/jwt", fake.vendor.base),
        &keys,
        &PinHash::of(PIN).unwrap(),
    );
    let base = text;
    let text = with_lost_phone_on(&base, "armed", &lost, true);
    let secrets = secrets_for("somfy", &settings)
        .with_entry("shortcut", json!({ "signing_key": SIGNING_KEY }));
    let w = World::with_vendor(clock, fake, &text, secrets, Arc::new(MemoryStore::new())).await;
    let s = Scene { w, keys };
    let (status, body) = s.call("armed", s.keys.lost.expose()).await;
    assert_eq!((status, error_of(&body).as_str()), (401, "unauthorized"));
    assert_eq!(s.vendor_calls(), 0, "the revoked key reached nothing");
    assert_eq!(s.level(), "disarmed");
    // The refusal (and so the log line) names the revoked entry, not the action's copy.
    let config = &s.w.hh.app.services.config;
    assert_eq!(
        config
            .keys
            .admit(s.keys.lost.expose(), "armed", s.w.clock.now())
            .map(|e| e.id.clone()),
        Err(KeyRefusal::Revoked {
            key_id: "lost_phone".into()
        })
    );
    // The load says so.
    let warnings = config.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("actions.armed.key_hash")
            && w.contains("keys.lost_phone.hash")
            && w.contains("revoked under keys.lost_phone")),
        "{warnings:?}"
    );
    // The action's other key still works.
    assert_eq!(s.call("armed", s.w.keys.action.expose()).await.0, 200);

    // An action whose only key is revoked elsewhere: opened by nothing, which the load refuses,
    // naming the field and the revoking entry.
    let only = with_lost_phone_on(&base, "disarmed", &lost, false)
        .replace("{public_url}", "http://127.0.0.1:1")
        .replace("{admin}", &s.w.keys.admin.hash().to_string())
        .replace("{key}", &s.w.keys.action.hash().to_string());
    let err = Config::parse(&only, "homehook.toml", None).expect_err("refused");
    assert_eq!(err.field, "actions.disarmed.key_hash");
    assert!(err.problem.contains("keys.lost_phone"), "{err}");
}

#[tokio::test]
async fn an_idempotency_claim_outlives_a_call_slower_than_its_pending_time() {
    let s = scene().await;
    // The first call's token request (the connection's first login) is answered late: the
    // call is still running when the claim's own lifetime has long passed.
    s.w.vendor
        .vendor
        .fail_token_calls(TokenFault::HoldAnswer, 1);
    let slow = idempotent_call(&s, "slow-1", json!({}));
    let meanwhile = async {
        while s.w.vendor.vendor.held_answers() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The red team's timing: a repeat 122 s after the first call, still running.
        s.w.clock.advance(PENDING_SECS.max(120) + 2);
        // Real time for the running call to renew its claim at least once.
        tokio::time::sleep(Duration::from_secs(RENEW_EVERY_SECS + 1)).await;
        let repeat = idempotent_call(&s, "slow-1", json!({}));
        let release = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            s.w.vendor.vendor.release_held_answer();
        };
        tokio::join!(repeat, release).0
    };
    let (first, repeat) = tokio::join!(slow, meanwhile);
    assert_eq!(first, (200, "Alarm armed".into(), None));
    assert_eq!(
        (repeat.0, error_of(&repeat.1).as_str()),
        (409, "idempotency_in_progress"),
        "{repeat:?}"
    );
    assert_eq!(s.vendor_calls(), 1, "the slow call acted once");
    // Once it is answered, the repeat gets its answer.
    assert_eq!(
        idempotent_call(&s, "slow-1", json!({})).await,
        (200, "Alarm armed".into(), Some("true".into()))
    );
}

#[test]
fn a_pin_is_six_digits_or_more_and_an_old_pin_hash_does_not_load() {
    for short in ["4821", "12345", ""] {
        assert!(
            matches!(PinHash::of(short), Err(PinHashError::BadPin)),
            "{short:?}"
        );
    }
    // What `homehook pin new` wrote before (7 MiB, 5 passes): its PIN falls offline in
    // minutes, so a config that still has it is refused, naming the field and the command.
    let old = "$argon2id$v=19$m=7168,t=5,p=1$93QTXuT/BnIAM4zLn3ibJQ$CXXVILpSPKVN/6KJq3Y8vZg3fnohdl5OI7iaBFL0vU8";
    let keys = MoreKeys::new();
    let new_hash = PinHash::of(PIN).unwrap();
    let text = config(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1/token",
        &keys,
        &new_hash,
    )
    .replace("{public_url}", "http://127.0.0.1:1")
    .replace("{admin}", &ActionKey::generate().hash().to_string())
    .replace("{key}", &ActionKey::generate().hash().to_string());
    assert!(Config::parse(&text, "homehook.toml", None).is_ok());
    let err = Config::parse(
        &text.replace(&new_hash.to_string(), old),
        "homehook.toml",
        None,
    )
    .expect_err("the old hash is refused");
    assert_eq!(err.field, "actions.disarmed.pin_hash");
    assert!(err.problem.contains("homehook pin new"), "{err}");
    assert!(err.problem.contains("at least 6 digits"), "{err}");
}

#[test]
fn a_leaked_pin_hash_costs_an_offline_search_of_six_digits_days_on_one_core() {
    let hash = PinHash::of(PIN).unwrap();
    let text = hash.to_string();
    // The settings are in the hash itself, and they are what a search pays per try.
    let expected = format!("m={},t={},p=1", pin::MEMORY_KIB, pin::PASSES);
    assert!(text.contains(&expected), "{text}");
    const { assert!(pin::MEMORY_KIB >= 64 * 1024 && pin::PASSES >= 4) };
    // The figure, measured here (argon2 is built at opt-level 3 even in test builds, as a
    // search would build it): `cargo run -p homehook-core --example pin_cost` prints it too.
    let start = std::time::Instant::now();
    let tries = 3;
    for i in 0..tries {
        assert!(!hash.verify(&format!("{:06}", 100_000 + i)));
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(tries);
    eprintln!(
        "PIN verification: {ms:.0} ms; 10^6 tries (every 6-digit PIN) on one core: {:.1} days",
        ms * 1e6 / 86_400_000.0
    );
}
