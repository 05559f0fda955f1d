//! Looks for secrets in the test suite's logs: every secret the fakes and fixtures issued
//! (`$CARGO_TARGET_DIR/logs/issued-*.txt`) in every captured log line
//! (`$CARGO_TARGET_DIR/logs/*.log`), see `homehook_tests::leak_watch`. `infra/test` runs it
//! after `cargo test`.
//!
//! Prints the figures and writes them to `$CARGO_TARGET_DIR/reports/log-scan.md`. Exits 1 on
//! any hit, on an unreadable file, and when fewer than [`MIN_LINES`] lines or [`MIN_SECRETS`]
//! secrets were seen: a capture that silently broke must not pass as "no leak".

use std::fmt::Write as _;
use std::process::ExitCode;

use homehook_tests::harness::write_report;
use homehook_tests::leak_watch;

/// Fewer captured log lines than this means the capture broke.
const MIN_LINES: usize = 1000;
/// Fewer issued secrets than this means the recording broke.
const MIN_SECRETS: usize = 20;

fn main() -> ExitCode {
    let dir = leak_watch::logs_dir();
    let report = leak_watch::scan(&dir);
    let mut problems = Vec::new();
    if !report.hits.is_empty() {
        problems.push(format!("{} log line(s) hold a secret", report.hits.len()));
    }
    if report.lines < MIN_LINES {
        problems.push(format!(
            "only {} log lines captured (at least {MIN_LINES} expected): is leak_watch::init still called?",
            report.lines
        ));
    }
    if report.secrets < MIN_SECRETS {
        problems.push(format!(
            "only {} secrets recorded (at least {MIN_SECRETS} expected): is leak_watch::issued still called?",
            report.secrets
        ));
    }
    if !report.unreadable.is_empty() {
        problems.push(format!("unreadable: {}", report.unreadable.join(", ")));
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "### Secrets in the test suite's logs ({})\n",
        dir.display()
    );
    let _ = writeln!(
        text,
        "| log files | log lines | secrets issued | hits |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
        report.files,
        report.lines,
        report.secrets,
        report.hits.len()
    );
    let _ = writeln!(text, "| secret kind | issued |\n|---|---|");
    for (kind, n) in &report.kinds {
        let _ = writeln!(text, "| {kind} | {n} |");
    }
    let _ = writeln!(text, "\n| log file | lines |\n|---|---|");
    for (file, n) in &report.lines_by_file {
        let _ = writeln!(text, "| {file} | {n} |");
    }
    if !report.hits.is_empty() {
        let _ = writeln!(text, "\nHits (file:line: kind, first characters):\n");
        for hit in &report.hits {
            let _ = writeln!(text, "- {hit}");
        }
    }
    let _ = writeln!(
        text,
        "\n{}",
        if problems.is_empty() {
            "log scan: no secret in any log line".to_string()
        } else {
            format!("log scan FAILED: {}", problems.join("; "))
        }
    );
    print!("{text}");
    write_report("log-scan", &text);
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
