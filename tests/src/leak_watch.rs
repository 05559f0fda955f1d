//! Watches the test suite's logs for secrets: every log line the tests produce goes to a file,
//! every secret the fakes and fixtures hand out is recorded, and [`scan`] (run by the
//! `scan-logs` binary after `cargo test`) finds any of the second in the first.
//!
//! - [`init`] installs a global `tracing` subscriber (TRACE for homehook's crates, DEBUG for
//!   everything else, `log` records included) writing to
//!   `$CARGO_TARGET_DIR/logs/<test binary>-<pid>.log`. The harness and the fakes call it when
//!   they start, so every test binary that runs homehook is captured.
//! - [`issued`] appends `kind\tsecret` to `$CARGO_TARGET_DIR/logs/issued-<pid>.txt`.
//! - [`log_file`] is where a test sends a child process's log output (`Stdio::from`).
//! - [`scan`] reads every `*.log` and every `issued-*.txt` of a directory and reports each log
//!   line holding a secret, as it is or form-urlencoded (as it would appear in a logged URL or
//!   form). A hit names the secret's kind and its first four characters, never the secret.
//!
//! Secrets shorter than [`MIN_SECRET_LEN`] bytes are not recorded: a short fixture value
//! (`"pw"`, `"at-old"`) can appear in a log line by chance, and a real token is longer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

/// The filter of captured logs: everything of homehook's crates, DEBUG for dependencies.
pub const FILTER: &str = "debug,homehook_core=trace,homehook_aws=trace,homehook_tests=trace,homehook_cli=trace,homehook=trace,actions=trace,oauth_callback=trace,token_refresh=trace";

/// The environment of a homehook child process whose log goes to [`log_file`]: the capture
/// filter in `HOMEHOOK_LOG`, no colours.
pub const CHILD_ENV: [(&str, &str); 2] = [("HOMEHOOK_LOG", FILTER), ("NO_COLOR", "1")];

/// Shorter secrets are ignored: they may match a log line by chance.
pub const MIN_SECRET_LEN: usize = 8;

/// `$CARGO_TARGET_DIR/logs` (the workspace's `target/logs` without it).
pub fn logs_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
        .join("logs")
}

/// The running executable's name without cargo's `-<hash>` suffix (`end_to_end`, `lambda`).
fn binary_name() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem,
    }
}

/// A log file `<logs dir>/<name>-<pid>.log` (appended to), for a child process's output:
/// `.stderr(Stdio::from(leak_watch::log_file("homehook-serve")))`.
pub fn log_file(name: &str) -> File {
    let dir = logs_dir();
    std::fs::create_dir_all(&dir).expect("logs dir");
    let path = dir.join(format!("{name}-{}.log", std::process::id()));
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Sends this process's `tracing` (and `log`) output to
/// `$CARGO_TARGET_DIR/logs/<test binary>-<pid>.log`. Idempotent; does nothing when a global
/// subscriber is already set (a test that installs its own keeps it).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if tracing::dispatcher::has_been_set() {
            return;
        }
        let dir = logs_dir();
        let path = dir.join(format!("{}-{}.log", binary_name(), std::process::id()));
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                // The scanner's minimum line count catches a capture that silently broke.
                eprintln!("leak_watch: cannot open {}: {e}", path.display());
                return;
            }
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

#[derive(Debug, Default)]
struct Issued {
    file: Option<File>,
    seen: HashSet<String>,
}

/// Records a secret a fake or fixture handed out (`kind`: `access_token`, `admin_key`, …) in
/// `$CARGO_TARGET_DIR/logs/issued-<pid>.txt`, for [`scan`]. Secrets shorter than
/// [`MIN_SECRET_LEN`] bytes, or holding a tab or line break, are not recorded. Thread-safe.
pub fn issued(kind: &str, secret: &str) {
    static ISSUED: OnceLock<Mutex<Issued>> = OnceLock::new();
    if secret.len() < MIN_SECRET_LEN || secret.contains(['\t', '\n', '\r']) {
        return;
    }
    let mut issued = ISSUED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !issued.seen.insert(secret.to_string()) {
        return;
    }
    if issued.file.is_none() {
        let dir = logs_dir();
        let path = dir.join(format!("issued-{}.txt", std::process::id()));
        let opened = std::fs::create_dir_all(&dir)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(f) => issued.file = Some(f),
            Err(e) => {
                eprintln!("leak_watch: cannot open {}: {e}", path.display());
                return;
            }
        }
    }
    let kind: String = kind
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if let Some(f) = issued.file.as_mut() {
        let _ = f.write_all(format!("{kind}\t{secret}\n").as_bytes());
    }
}

/// A log line holding a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The log file's name.
    pub file: String,
    /// The line number, from 1.
    pub line: usize,
    /// The secret's kind.
    pub kind: String,
    /// Its first four characters and `…`: enough to tell which, never the secret.
    pub preview: String,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} {}",
            self.file, self.line, self.kind, self.preview
        )
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Log files read.
    pub files: usize,
    /// Log lines read.
    pub lines: usize,
    /// Distinct secrets looked for.
    pub secrets: usize,
    /// Distinct secrets by kind.
    pub kinds: BTreeMap<String, usize>,
    /// Log lines by file.
    pub lines_by_file: BTreeMap<String, usize>,
    /// Every log line holding a secret.
    pub hits: Vec<Hit>,
    /// Files that could not be read.
    pub unreadable: Vec<String>,
}

fn preview(secret: &str) -> String {
    format!("{}…", secret.chars().take(4).collect::<String>())
}

/// Reads every `*.log` and every `issued-*.txt` in `logs_dir` and finds each issued secret
/// (as it is, or form-urlencoded) in the log lines. A missing directory gives an empty report.
pub fn scan(logs_dir: &Path) -> ScanReport {
    let mut report = ScanReport::default();
    let mut logs = Vec::new();
    let mut issued_files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(logs_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") {
                logs.push((name, entry.path()));
            } else if name.starts_with("issued-") && name.ends_with(".txt") {
                issued_files.push((name, entry.path()));
            }
        }
    }
    logs.sort();
    issued_files.sort();

    // Secret → kind (the first kind it was recorded under).
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for (name, path) in &issued_files {
        let Ok(text) = std::fs::read_to_string(path) else {
            report.unreadable.push(name.clone());
            continue;
        };
        for line in text.lines() {
            if let Some((kind, secret)) = line.split_once('\t')
                && secret.len() >= MIN_SECRET_LEN
            {
                secrets
                    .entry(secret.to_string())
                    .or_insert_with(|| kind.to_string());
            }
        }
    }
    report.secrets = secrets.len();
    for kind in secrets.values() {
        *report.kinds.entry(kind.clone()).or_default() += 1;
    }

    // Every form a secret is looked for in, indexed by its last MIN_SECRET_LEN bytes: one
    // lookup per byte of log instead of one search per secret.
    let list: Vec<(&String, &String)> = secrets.iter().collect();
    let mut index: HashMap<&[u8], Vec<(Vec<u8>, usize)>> = HashMap::new();
    let mut patterns: Vec<(Vec<u8>, usize)> = Vec::new();
    for (i, (secret, _)) in list.iter().enumerate() {
        patterns.push((secret.as_bytes().to_vec(), i));
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != **secret {
            patterns.push((encoded.into_bytes(), i));
        }
    }
    for (pattern, i) in &patterns {
        let tail = &pattern[pattern.len() - MIN_SECRET_LEN..];
        index.entry(tail).or_default().push((pattern.clone(), *i));
    }

    for (name, path) in &logs {
        let Ok(bytes) = std::fs::read(path) else {
            report.unreadable.push(name.clone());
            continue;
        };
        report.files += 1;
        let mut count = 0;
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            count += 1;
            let mut found: Vec<usize> = Vec::new();
            for end in MIN_SECRET_LEN..=line.len() {
                let Some(candidates) = index.get(&line[end - MIN_SECRET_LEN..end]) else {
                    continue;
                };
                for (pattern, i) in candidates {
                    if end >= pattern.len()
                        && &line[end - pattern.len()..end] == pattern.as_slice()
                        && !found.contains(i)
                    {
                        found.push(*i);
                    }
                }
            }
            for i in found {
                let (secret, kind) = list[i];
                report.hits.push(Hit {
                    file: name.clone(),
                    line: n + 1,
                    kind: kind.clone(),
                    preview: preview(secret),
                });
            }
        }
        report.lines += count;
        report.lines_by_file.insert(name.clone(), count);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_planted_secret_is_found_and_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "issued-1.txt",
            "access_token\tat|0123456789abcdef\nclient_secret\ts3cret with spaces&=\n",
        );
        write(
            dir.path(),
            "end_to_end-1.log",
            "INFO homehook_core: connected connection=home\n\
             DEBUG reqwest: GET /api?access_token=x token=at|0123456789abcdef\n",
        );
        write(
            dir.path(),
            "cli-2.log",
            "DEBUG hyper: body client_secret=s3cret+with+spaces%26%3D\n",
        );
        let report = scan(dir.path());
        assert_eq!(
            (report.files, report.lines, report.secrets),
            (2, 3, 2),
            "{report:?}"
        );
        assert_eq!(
            report.hits,
            vec![
                Hit {
                    file: "cli-2.log".into(),
                    line: 1,
                    kind: "client_secret".into(),
                    preview: "s3cr…".into(),
                },
                Hit {
                    file: "end_to_end-1.log".into(),
                    line: 2,
                    kind: "access_token".into(),
                    preview: "at|0…".into(),
                },
            ]
        );
        let shown: Vec<String> = report.hits.iter().map(Hit::to_string).collect();
        assert!(!shown.join("\n").contains("0123456789abcdef"), "{shown:?}");
    }

    #[test]
    fn a_clean_log_has_no_hits() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "issued-7.txt",
            "refresh_token\trt|fedcba9876543210\n",
        );
        write(
            dir.path(),
            "netatmo-7.log",
            "INFO homehook_core: token refreshed connection=home\nDEBUG hyper: rt|fedcba98765\n",
        );
        let report = scan(dir.path());
        assert_eq!((report.files, report.lines, report.secrets), (1, 2, 1));
        assert!(report.hits.is_empty(), "{:?}", report.hits);
        assert_eq!(report.kinds.get("refresh_token"), Some(&1));
    }

    #[test]
    fn short_secrets_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "issued-3.txt",
            "password\tpw\nrefresh_token\tat-old\n",
        );
        write(dir.path(), "x-3.log", "password=pw at-old\n");
        let report = scan(dir.path());
        assert_eq!(report.secrets, 0);
        assert!(report.hits.is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_empty_report() {
        let dir = tempfile::tempdir().unwrap();
        let report = scan(&dir.path().join("nope"));
        assert_eq!(report, ScanReport::default());
    }

    #[test]
    fn cargo_hashes_are_taken_off_the_binary_name() {
        let name = binary_name();
        assert!(!name.is_empty());
        assert!(
            !name
                .rsplit_once('-')
                .is_some_and(|(_, h)| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{name}"
        );
    }
}
