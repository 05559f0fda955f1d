//! Any bytes as one HTTP request to homehook's whole router (the format is in
//! `tests/src/fuzz_input.rs`): no panic, and never a 500 — only statuses below 500, or the
//! 502/503 of an unreachable vendor or store. The entry point is shared with the corpus replay
//! in `tests/tests/fuzz_corpus.rs`.
//!
//! One current-thread runtime (time paused) serves every input, and one app serves
//! [`FRESH_APP_EVERY`] inputs in a row, so state carries over between inputs as in a
//! long-running process (rate limits, lockouts, seen signatures, idempotency records, the
//! vendor's budget) yet is bounded: the clock never moves, so nothing in the store expires, and
//! a fresh app unlocks what the previous one had locked.

#![no_main]

use std::sync::{Mutex, OnceLock, PoisonError};

use libfuzzer_sys::fuzz_target;

use homehook_tests::fuzz_input;

/// Inputs one app serves before a fresh one replaces it.
const FRESH_APP_EVERY: u32 = 10_000;

struct Harness {
    runtime: tokio::runtime::Runtime,
    /// The app's router and how many inputs it has served.
    app: Mutex<(axum::Router, u32)>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        fuzz_input::log_to_sink();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap_or_else(|e| panic!("a tokio runtime: {e}"));
        Harness {
            runtime,
            app: Mutex::new((fuzz_input::fuzz_app(), 0)),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let router = {
        let mut app = h.app.lock().unwrap_or_else(PoisonError::into_inner);
        app.1 += 1;
        if app.1 > FRESH_APP_EVERY {
            *app = (fuzz_input::fuzz_app(), 1);
        }
        app.0.clone()
    };
    let answer = h.runtime.block_on(fuzz_input::request(&router, data));
    assert!(
        answer.is_acceptable(),
        "answered {} (body complete: {}): {}",
        answer.status,
        answer.body_complete,
        String::from_utf8_lossy(&answer.body)
    );
});
