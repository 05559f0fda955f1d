//! A fake vendor in its own process, for tests that are not Rust: infra/sam-local runs the
//! Lambda functions in containers against it, and tests/peers/ runs the vendors' own client
//! libraries against it. Prints its base URL on the first line, then serves on 127.0.0.1 until
//! its standard input closes, then prints what it saw as one JSON line.
//!
//! `fake-vendor netatmo|somfy|myfox|homey|generic [access_ttl_secs]` — `generic` is the plain
//! OAuth2 server whose API answers every authorised call (no per-user rate limit): the
//! benchmarks' vendor. The client id, secret and account are [`FakeSettings`]'s defaults.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use homehook_core::clock::{Clock, ManualClock, SystemClock};
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::fakes::{
    homey::FakeHomey, myfox::FakeMyfox, netatmo::FakeNetatmo, somfy::FakeSomfy,
};
use tokio::io::AsyncReadExt;

/// A running fake of any kind, kept alive until standard input closes.
enum Running {
    Generic(FakeVendor),
    Netatmo(FakeNetatmo),
    Somfy(FakeSomfy),
    Myfox(FakeMyfox),
    Homey(FakeHomey),
}

impl Running {
    fn vendor(&self) -> &FakeVendor {
        match self {
            Running::Generic(v) => v,
            Running::Netatmo(f) => &f.vendor,
            Running::Somfy(f) => &f.vendor,
            Running::Myfox(f) => &f.vendor,
            Running::Homey(f) => &f.vendor,
        }
    }
}

#[tokio::main]
async fn main() {
    let usage = "fake-vendor netatmo|somfy|myfox|homey|generic [access_ttl_secs]";
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "netatmo".into());
    let ttl: Option<i64> = args.next().map(|t| t.parse().expect(usage));
    // The fake's clock stands still at start-up: tokens it issues are valid for the whole run
    // on its side, while homehook judges them by their stated lifetime.
    let clock = ManualClock::new(SystemClock.now());
    let with_ttl = |settings: FakeSettings| FakeSettings {
        access_ttl_secs: ttl.unwrap_or(settings.access_ttl_secs),
        ..settings
    };
    let running = match kind.as_str() {
        "generic" => {
            Running::Generic(FakeVendor::start(clock, with_ttl(FakeNetatmo::settings())).await)
        }
        "netatmo" => {
            Running::Netatmo(FakeNetatmo::start(clock, with_ttl(FakeNetatmo::settings())).await)
        }
        "somfy" => Running::Somfy(FakeSomfy::start(clock, with_ttl(FakeSomfy::settings())).await),
        "myfox" => Running::Myfox(FakeMyfox::start(clock, with_ttl(FakeMyfox::settings())).await),
        "homey" => Running::Homey(FakeHomey::start(clock, with_ttl(FakeHomey::settings())).await),
        _ => panic!("{usage}"),
    };
    let vendor = running.vendor();
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
