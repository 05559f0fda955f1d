//! The core's architecture, checked: the tiers of `src/lib.rs` ("Layout") and the invariants
//! written under them. Each test reads the production source (everything before a file's first
//! `#[cfg(test)]`, and no test-only file) the way a reviewer would grep it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every top-level module of the core, lowest first, grouped in tiers. A module may use the
/// modules before it in this list and never one after it; `lib.rs`'s "Layout" says the same in
/// words.
const TIERS: &[(&str, &[&str])] = &[
    ("base", &["sensitive", "clock", "keys", "template", "cron"]),
    ("model", &["token", "params", "answer", "catalog", "recipe"]),
    ("ports", &["store", "secrets", "guard", "error"]),
    ("vendors", &["vendor", "providers", "oauth"]),
    ("config", &["config"]),
    (
        "services",
        &[
            "notify",
            "refresh",
            "pace",
            "publish",
            "key_admin",
            "services",
            "vendor_client",
            "action",
            "schedule",
            "connect",
            "status",
            "gate",
        ],
    ),
    ("root", &["app", "live"]),
    ("delivery", &["http"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// One production source file: its module path under `src` and its lines before the tests.
struct SourceFile {
    /// `src/`-relative path, for messages.
    shown: String,
    /// Module path: `src/providers/homey/mod.rs` is `["providers", "homey"]`.
    module: Vec<String>,
    /// (line number, line) of the production code, comments dropped.
    lines: Vec<(usize, String)>,
}

/// Test-only files: mounted under `#[cfg(test)]` by their parent.
fn test_only(relative: &Path) -> bool {
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    matches!(name.as_deref(), Some("tests.rs" | "test_support.rs"))
        || name.is_some_and(|n| n.ends_with("_tests.rs"))
}

fn production_files() -> Vec<SourceFile> {
    let root = src();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    paths
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).ok()?.to_path_buf();
            if test_only(&relative) {
                return None;
            }
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).ok()?;
            let lines = text
                .lines()
                .enumerate()
                .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect();
            Some(SourceFile {
                shown: relative.display().to_string(),
                module,
                lines,
            })
        })
        .collect()
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level identifiers of a `{a::b, c, d::{e, f}}` group at the start of `text`.
fn group(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut at_item = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    at_item = true;
                    continue;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                at_item = true;
                continue;
            }
            _ => {}
        }
        if depth == 1 && at_item && (c.is_ascii_alphabetic() || c == '_') {
            out.push(ident(&text[i..]).to_string());
            at_item = false;
        }
    }
    out
}

/// The top-level modules `line` names, through `crate::` paths (in `use` lines and inline)
/// and `super::` paths that climb out of the file's top-level module.
fn modules_named(module: &[String], line: &str) -> Vec<String> {
    let mut named = Vec::new();
    let bytes = line.as_bytes();
    for (at, _) in line.match_indices("crate::") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'_' | b'$'))
        {
            continue;
        }
        let rest = &line[at + "crate::".len()..];
        if rest.starts_with('{') {
            named.extend(group(rest));
        } else {
            named.push(ident(rest).to_string());
        }
    }
    let mut search = 0;
    while let Some(found) = line[search..].find("super::") {
        let at = search + found;
        let start_ok = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b':');
        let mut rest = &line[at..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        search = line.len() - rest.len();
        if !start_ok || climbs < module.len() {
            continue;
        }
        if rest.starts_with('{') {
            named.extend(group(rest));
        } else {
            named.push(ident(rest).to_string());
        }
    }
    named.retain(|n| !n.is_empty() && n != "self");
    named
}

fn rank() -> BTreeMap<&'static str, (usize, &'static str)> {
    TIERS
        .iter()
        .flat_map(|(tier, modules)| modules.iter().map(move |m| (*m, *tier)))
        .enumerate()
        .map(|(i, (m, tier))| (m, (i, tier)))
        .collect()
}

/// Every use of a later module by an earlier one, as `file:line: a (tier) uses b (tier)`.
fn upward_edges(files: &[SourceFile]) -> Vec<String> {
    let rank = rank();
    let mut found = Vec::new();
    for file in files {
        let Some(top) = file.module.first() else {
            continue;
        };
        let Some(&(from, from_tier)) = rank.get(top.as_str()) else {
            continue;
        };
        for (number, line) in &file.lines {
            for named in modules_named(&file.module, line) {
                if let Some(&(to, to_tier)) = rank.get(named.as_str())
                    && to > from
                {
                    found.push(format!(
                        "{}:{number}: {top} ({from_tier}) uses {named} ({to_tier})",
                        file.shown
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_module_is_in_one_tier() {
    let rank = rank();
    let listed: usize = TIERS.iter().map(|(_, m)| m.len()).sum();
    assert_eq!(rank.len(), listed, "a module is listed twice in TIERS");
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    for module in &declared {
        assert!(
            rank.contains_key(module),
            "lib.rs declares `{module}`, which no tier lists"
        );
    }
    for module in rank.keys() {
        assert!(
            declared.contains(module),
            "TIERS lists `{module}`, which lib.rs does not declare"
        );
        assert!(
            lib.contains(&format!("[`{module}`]")),
            "lib.rs's Layout does not describe `{module}`"
        );
    }
}

#[test]
fn no_module_uses_a_higher_tier() {
    let files = production_files();
    assert!(
        files.len() > 50,
        "the scan reads the source ({} files)",
        files.len()
    );
    let edges = upward_edges(&files);
    assert!(
        edges.is_empty(),
        "imports against the tiers (lib.rs, Layout):\n{}",
        edges.join("\n")
    );
}

/// The scan sees what it must: `use` groups, inline paths and `super::` out of a module.
#[test]
fn the_scan_finds_uses_in_every_form() {
    let top = ["providers".to_string()];
    let nested = ["providers".to_string(), "homey".to_string()];
    assert_eq!(
        modules_named(
            &top,
            "use crate::{app::App, error::{ActionError, Problem}};"
        ),
        ["app", "error"]
    );
    assert_eq!(
        modules_named(
            &top,
            "    let x = crate::schedule::fire_due(services).await;"
        ),
        ["schedule"]
    );
    assert_eq!(modules_named(&top, "use super::http::ApiError;"), ["http"]);
    assert_eq!(
        modules_named(&nested, "use super::super::{gate, vendor};"),
        ["gate", "vendor"]
    );
    assert!(modules_named(&nested, "use super::port::VendorApi;").is_empty());
    assert!(modules_named(&top, "macro_rules! m { () => { $crate::x } }").is_empty());
    let bad = SourceFile {
        shown: "providers/mod.rs".into(),
        module: top.to_vec(),
        lines: vec![(3, "use crate::app::App;".into())],
    };
    assert_eq!(
        upward_edges(&[bad]),
        ["providers/mod.rs:3: providers (vendors) uses app (root)"]
    );
}

/// Lines of production code outside `allowed` that contain `needle`.
fn found_outside(files: &[SourceFile], needle: &str, allowed: &[&str]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !allowed.iter().any(|a| f.shown.starts_with(a)))
        .flat_map(|f| {
            f.lines
                .iter()
                .filter(|(_, l)| l.contains(needle))
                .map(|(n, l)| format!("{}:{n}: {}", f.shown, l.trim()))
        })
        .collect()
}

/// Invariant 1: nothing below `http` names axum or an HTTP status.
#[test]
fn only_http_knows_http_answers() {
    let files = production_files();
    for needle in ["axum", "StatusCode", "IntoResponse"] {
        let found = found_outside(&files, needle, &["http/"]);
        assert!(
            found.is_empty(),
            "{needle} below http:\n{}",
            found.join("\n")
        );
    }
}

/// Invariant 4: only `refresh/` writes a token record (and the stores implement the write).
#[test]
fn only_refresh_writes_tokens() {
    let found = found_outside(&production_files(), "swap_token(", &["refresh/", "store/"]);
    assert!(
        found.is_empty(),
        "token writes outside refresh/:\n{}",
        found.join("\n")
    );
}

/// Invariant 5: only `gate/` decides whether a request may act: the checks of `guard/` are
/// called from nowhere else.
#[test]
fn only_the_gate_runs_the_checks() {
    let files = production_files();
    for needle in [
        "keys.admit(",
        "lockout.check(",
        "lockout.wrong_key(",
        "limits.check(",
        "pin::check(",
        "signature::verify(",
        "idempotency::claim(",
        "params::check(",
    ] {
        let found = found_outside(&files, needle, &["gate/", "guard/", "schedule", "config/"]);
        assert!(
            found.is_empty(),
            "{needle} outside the gate:\n{}",
            found.join("\n")
        );
    }
}
