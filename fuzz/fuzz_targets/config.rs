//! Any bytes as `homehook.toml`: parsing and checking must never panic (errors are fine).
//! The entry point is shared with the corpus replay in `tests/tests/fuzz_corpus.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = homehook_tests::fuzz_input::config_text(data);
});
