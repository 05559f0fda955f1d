//! What one PIN verification costs, with the Argon2id settings PIN hashes had before and the
//! ones `homehook pin new` uses now, and what that makes of an offline search of every 6-digit
//! PIN (10^6 tries) on one core by someone holding a leaked config.
//!
//! ```text
//! cargo run -p homehook-core --example pin_cost            # argon2 at opt-level 3 (dev profile)
//! cargo run -p homehook-core --example pin_cost --release  # as the shipped binaries build it
//! ```
//!
//! Each figure is the median of several verifications of a wrong PIN (what a search does), on
//! one thread: the search runs one core per try, so cores divide the time and nothing else.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use homehook_core::guard::pin::{self, PinHash};

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn measure(label: &str, hash: &str, verify: impl Fn(&str) -> bool) {
    let parsed = PasswordHash::new(hash).expect("a PHC string");
    let runs = 7;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        let right = verify(&format!("{:06}", 100_000 + i));
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(!right, "a wrong PIN");
    }
    let ms = median_ms(samples);
    let params = parsed
        .params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "{label:<8} {params:<20} {ms:>8.1} ms per verification; 10^4 tries (4 digits): {:>6.1} min; 10^6 tries (6 digits): {:>5.2} days",
        ms * 1e4 / 60_000.0,
        ms * 1e6 / 86_400_000.0
    );
}

fn main() {
    // What `homehook pin new` wrote before: OWASP's minimum, 7 MiB and 5 passes.
    let before = Params::new(7 * 1024, 5, 1, None).expect("params");
    let salt = SaltString::encode_b64(b"homehook-pin-cost").expect("salt");
    let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, before)
        .hash_password(b"482193", &salt)
        .expect("hash")
        .to_string();
    measure("before", &old, |pin| {
        let parsed = PasswordHash::new(&old).expect("parses");
        argon2::PasswordVerifier::verify_password(&Argon2::default(), pin.as_bytes(), &parsed)
            .is_ok()
    });
    let new = PinHash::of("482193").expect("hash");
    measure("now", &new.to_string(), |pin| new.verify(pin));
    println!(
        "(now: at least {} characters; hashes under m={} KiB, t={} are refused at load)",
        pin::MIN_PIN_CHARS,
        pin::MEMORY_KIB,
        pin::PASSES
    );
}
