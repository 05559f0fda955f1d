//! A fake vendor in its own process, for tests that are not Rust (infra/sam-local runs the
//! Lambda functions in containers against it). Prints its base URL on the first line, then
//! serves on 127.0.0.1 until its standard input closes.
//!
//! `fake-vendor netatmo|generic [access_ttl_secs]` — `generic` is the plain OAuth2 server whose
//! API answers every authorised call (no per-user rate limit): the benchmarks' vendor.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use homehook_core::clock::{Clock, ManualClock, SystemClock};
use homehook_tests::fake_vendor::FakeVendor;
use homehook_tests::fakes::netatmo::FakeNetatmo;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "netatmo".into());
    assert!(
        kind == "netatmo" || kind == "generic",
        "fake-vendor netatmo|generic [access_ttl_secs]"
    );
    let ttl: i64 = args
        .next()
        .map(|t| t.parse().expect("seconds"))
        .unwrap_or(10_800);
    // The fake's clock stands still at start-up: tokens it issues are valid for the whole run
    // on its side, while homehook judges them by their stated lifetime.
    let clock = ManualClock::new(SystemClock.now());
    let settings = homehook_tests::fake_vendor::FakeSettings {
        access_ttl_secs: ttl,
        ..FakeNetatmo::settings()
    };
    let generic;
    let netatmo;
    let vendor = if kind == "generic" {
        generic = FakeVendor::start(clock, settings).await;
        &generic
    } else {
        netatmo = FakeNetatmo::start(clock, settings).await;
        &netatmo.vendor
    };
    println!("{}", vendor.base);
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    // What the vendor saw, for the caller to check.
    let calls: Vec<String> = vendor
        .api_calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "token_calls": vendor.token_calls(), "api_calls": calls })
    );
}
