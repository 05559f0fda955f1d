//! Replays the cargo-fuzz corpora through the entry points the fuzz targets call
//! (`homehook_tests::fuzz_input`), so every seed and every crash found by fuzzing stays fixed:
//!
//! - `fuzz/corpus/config/*` and `fuzz/artifacts/config/*`: [`fuzz_input::config_text`] must not
//!   panic; seeds named `valid-*` must be valid configs.
//! - `fuzz/corpus/request/*` and `fuzz/artifacts/request/*`: [`fuzz_input::request`] must not
//!   panic and must answer an [`fuzz_input::acceptable`] status (never a 500). Each file runs on
//!   a fresh app (as `cargo fuzz run request <file>` does), then all of them in turn on one app
//!   (as the fuzzer does: rate limits, lockouts, replays and idempotency records pile up).
//!
//! Time is paused, so the vendor's retry backoff (the vendor is unreachable) does not sleep.
//! See docs/fuzzing.md.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use homehook_tests::fuzz_input::{self, Answer};

/// Panics anywhere in this process, spawned tasks included (the fuzz targets abort on any
/// panic; here a panic in a task the router spawned would otherwise only show as an answer).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/corpus/<target>` and `fuzz/artifacts/<target>` (absent is empty), sorted,
/// without dotfiles.
fn inputs(target: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let list = |dir: PathBuf| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    };
    (
        list(fuzz_dir().join("corpus").join(target)),
        list(fuzz_dir().join("artifacts").join(target)),
    )
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn config_corpus_parses_without_panicking() {
    count_panics();
    let (corpus, artifacts) = inputs("config");
    assert!(
        corpus.len() >= 20,
        "fuzz/corpus/config holds {} files: the replay would prove little",
        corpus.len()
    );
    let mut valid = 0;
    for path in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(path).expect("read a corpus file");
        let parsed = std::panic::catch_unwind(|| fuzz_input::config_text(&data))
            .unwrap_or_else(|_| panic!("config_text panicked on {}", path.display()));
        if name(path).starts_with("valid-") {
            assert!(parsed, "{} is a valid config", path.display());
        }
        valid += usize::from(parsed);
    }
    assert!(valid >= 3, "some seeds are valid configs ({valid})");
    // The repository's example (the corpus holds a copy, which may age).
    let example = std::fs::read(fuzz_dir().join("../homehook.example.toml")).expect("example");
    assert!(fuzz_input::config_text(&example));
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "nothing panicked");
}

/// What some seeds must answer on a fresh app: they reach the part of the gate they are named
/// after (a seed that no longer does would make the corpus weaker without anyone noticing).
const EXPECTED: &[(&str, u16)] = &[
    ("valid-heating-json", 503),
    ("valid-heating-form", 503),
    ("valid-heating-old-key", 503),
    ("valid-heating-phone-key", 503),
    ("valid-temperature-get", 503),
    ("valid-living-room-wildcard", 503),
    ("key-phone-out-of-scope", 401),
    ("key-expired", 401),
    ("key-revoked", 401),
    ("key-wrong", 401),
    ("key-missing", 401),
    ("action-unknown", 401),
    ("method-get-on-post-only", 405),
    ("method-head", 405),
    ("method-options", 405),
    ("method-get-sensitive", 405),
    ("body-malformed-json", 400),
    ("body-too-large", 413),
    ("body-unsupported-type", 415),
    ("param-unknown", 400),
    ("param-missing", 400),
    ("pin-missing", 401),
    ("pin-wrong", 401),
    ("pin-bool", 400),
    ("pin-header-right", 503),
    ("pin-body-right", 503),
    ("signed-fresh", 503),
    ("signed-stale", 401),
    ("signed-missing", 401),
    ("signed-with-query", 400),
    ("idempotency-valid", 503),
    ("idempotency-long", 400),
    ("admin-status", 200),
    ("admin-status-wrong-key", 401),
    ("admin-connect", 302),
    ("healthz", 200),
];

/// The `error` code of a JSON error answer, `-` for anything else.
fn error_code(answer: &Answer) -> String {
    serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

async fn run(router: &axum::Router, path: &Path) -> Answer {
    let data = std::fs::read(path).expect("read a corpus file");
    let router = router.clone();
    let answer = tokio::spawn(async move { fuzz_input::request(&router, &data).await })
        .await
        .unwrap_or_else(|e| panic!("the request of {} panicked: {e}", path.display()));
    assert!(
        answer.is_acceptable(),
        "{} answered {} (body complete: {}): {}",
        path.display(),
        answer.status,
        answer.body_complete,
        String::from_utf8_lossy(&answer.body)
    );
    answer
}

#[tokio::test(start_paused = true)]
async fn request_corpus_never_answers_500() {
    homehook_tests::leak_watch::init();
    count_panics();
    let (corpus, artifacts) = inputs("request");
    assert!(
        corpus.len() >= 40,
        "fuzz/corpus/request holds {} files: the replay would prove little",
        corpus.len()
    );
    let files: Vec<&PathBuf> = corpus.iter().chain(&artifacts).collect();

    let mut alone = BTreeMap::new();
    for path in &files {
        let answer = run(&fuzz_input::fuzz_app(), path).await;
        alone.insert(name(path), answer.status);
    }
    let shared = fuzz_input::fuzz_app();
    let mut together = BTreeMap::new();
    for path in &files {
        let answer = run(&shared, path).await;
        together.insert(name(path), (answer.status, error_code(&answer)));
    }

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for status in alone.values() {
        *statuses.entry(*status).or_default() += 1;
    }
    println!(
        "statuses of {} inputs, each alone: {statuses:?}",
        files.len()
    );
    for (file, status) in &alone {
        let (status_together, code) = &together[file];
        println!("{status} {status_together} {code} {file}");
    }
    for (file, want) in EXPECTED {
        assert_eq!(alone.get(*file), Some(want), "seed {file}");
    }
    let code = |file: &str| together.get(file).map(|(_, code)| code.as_str());
    assert_eq!(
        code("valid-limited-again"),
        Some("rate_limited"),
        "the second call of a one-a-minute action is limited"
    );
    assert_eq!(
        code("signed-fresh-replayed"),
        Some("signature_replayed"),
        "a signature is good for one call"
    );
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "nothing panicked, in no task"
    );
}
