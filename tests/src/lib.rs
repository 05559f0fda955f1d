// Test support: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Test support for homehook: faithful fakes of vendor OAuth2 servers and APIs, served over real
//! HTTP on 127.0.0.1, and a harness that runs homehook's own router on loopback beside them.
//!
//! # Layout
//!
//! - [`browser`]: headless Chromium at phone size for the page tests: a screenshot and the
//!   visible text of a page.
//! - [`fake_vendor`]: an OAuth2 vendor (authorize, token with expiry and refresh-token
//!   rotation, an API that rejects expired tokens the way the real vendors do), with counters.
//! - [`fakes`]: the four vendors' APIs (Netatmo, Somfy Protect, Myfox, Homey) on top of it.
//! - [`harness`]: starts homehook (memory or SQLite store) with a config pointing at a fake.
//! - [`faulty_store`]: a real store with injected write failures.
//! - [`webhook_sink`]: a notification receiver that records what the owner would get.
//! - [`fuzz_input`]: the entry points of the cargo-fuzz targets (`fuzz/`), shared with the
//!   test that replays their corpora: config text, and raw bytes as one request to homehook.
//! - [`leak_watch`]: captures every log line of the suite and records every secret the fakes
//!   and fixtures issue, so `scan-logs` can check that no secret reached a log.
//! - [`openapi_check`]: checks answers against `docs/openapi.json`.
//! - [`reverse_proxy`]: nginx in front of a homehook on loopback, as the README runs it.

pub mod browser;
pub mod fake_vendor;
pub mod fakes;
pub mod faulty_store;
pub mod fuzz_input;
pub mod harness;
pub mod leak_watch;
pub mod openapi_check;
pub mod reverse_proxy;
pub mod webhook_sink;
