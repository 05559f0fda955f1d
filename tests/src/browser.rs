//! Headless Chromium for the page tests: opens a URL in a phone-sized window, keeps a PNG
//! screenshot, and returns the text a reader sees.
//!
//! The visible text comes from printing the page to PDF and reading it back with `pdftotext`
//! (poppler-utils): only what Chromium laid out and painted is in a PDF — not the `<title>`, not
//! the style sheet, not an element the CSS hides — and both tools are plain Debian packages
//! driven by stable command-line flags, so nothing depends on a DevTools protocol version or
//! downloads a browser. `infra/test` installs both and names Chromium in `HOMEHOOK_CHROMIUM`.
//!
//! Every run has a fresh profile, its own process group (killed when the run ends, however it
//! ends, and checked to be gone) and a time limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Longest a render may take.
const RENDER_TIMEOUT: Duration = Duration::from_secs(90);

/// A phone's viewport (an iPhone 12 to 15 in CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// Chromium and pdftotext, found.
#[derive(Debug)]
pub struct Browser {
    chromium: PathBuf,
    pdftotext: PathBuf,
}

/// One rendered page.
#[derive(Debug)]
pub struct Rendered {
    /// The visible text, whitespace collapsed to single spaces.
    pub text: String,
    /// The PNG screenshot.
    pub screenshot: PathBuf,
    /// What the page wrote to the console (Content-Security-Policy violations land here).
    pub console: Vec<String>,
}

/// Colour scheme the page is shown in (Chromium's `--force-dark-mode` makes
/// `prefers-color-scheme: dark` match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The default.
    Light,
    /// `prefers-color-scheme: dark`.
    Dark,
}

impl Browser {
    /// Chromium from `HOMEHOOK_CHROMIUM`, else `chromium` on `PATH`, and `pdftotext` on `PATH`.
    /// Panics with how to install them when either is missing: a page test that cannot run
    /// must not pass.
    pub fn find() -> Self {
        const HOW: &str = "run infra/test, which installs them, or `sudo apt-get install \
                           chromium poppler-utils` (Debian); HOMEHOOK_CHROMIUM may name another \
                           Chromium binary";
        let chromium = match std::env::var_os("HOMEHOOK_CHROMIUM") {
            Some(path) => {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "HOMEHOOK_CHROMIUM={} is not a file: {HOW}",
                    path.display()
                );
                path
            }
            None => on_path("chromium").unwrap_or_else(|| {
                panic!("Chromium not found (no HOMEHOOK_CHROMIUM, no `chromium` on PATH): {HOW}")
            }),
        };
        let pdftotext = on_path("pdftotext")
            .unwrap_or_else(|| panic!("pdftotext (poppler-utils) not found on PATH: {HOW}"));
        Self {
            chromium,
            pdftotext,
        }
    }

    /// Opens `url` at phone size and keeps its screenshot as `<out_dir>/<name>.png`.
    pub async fn render(&self, url: &str, out_dir: &Path, name: &str, scheme: Scheme) -> Rendered {
        std::fs::create_dir_all(out_dir).expect("screenshot dir");
        let work = tempfile::tempdir().expect("temp dir");
        let screenshot = out_dir.join(format!("{name}.png"));
        let pdf = work.path().join("page.pdf");
        let _ = std::fs::remove_file(&screenshot);
        let mut command = tokio::process::Command::new(&self.chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--no-pdf-header-footer",
                "--enable-logging=stderr",
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.path().join("profile").display()
            ))
            .arg(format!("--window-size={},{}", PHONE.0, PHONE.1))
            .arg(format!("--screenshot={}", screenshot.display()))
            .arg(format!("--print-to-pdf={}", pdf.display()));
        if scheme == Scheme::Dark {
            command.arg("--force-dark-mode");
        }
        let child = command
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let group = ProcessGroup(child.id().expect("chromium's pid"));
        let output = tokio::time::timeout(RENDER_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("chromium did not finish {name} in {RENDER_TIMEOUT:?}"))
            .expect("chromium ran");
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        drop(group);
        assert!(
            output.status.success() && pdf.is_file() && screenshot.is_file(),
            "chromium failed on {name} ({}):\n{log}",
            output.status
        );
        let console = log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect();
        let text = self.pdf_text(&pdf).await;
        Rendered {
            text,
            screenshot,
            console,
        }
    }

    async fn pdf_text(&self, pdf: &Path) -> String {
        let mut command = tokio::process::Command::new(&self.pdftotext);
        command
            .args(["-enc", "UTF-8"])
            .arg(pdf)
            .arg("-")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("pdftotext in time")
            .expect("pdftotext ran");
        assert!(output.status.success(), "pdftotext: {output:?}");
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A program on `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Chromium's process group (the browser and every process it started): killed when dropped,
/// then waited for, so no Chromium outlives its render.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // Killed by group id, the one this run created (`process_group(0)`): nothing else.
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while group_alive(self.0) {
            if started.elapsed() > Duration::from_secs(10) {
                if !std::thread::panicking() {
                    panic!("chromium processes of group {} outlived the render", self.0);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a live (not zombie) process is in process group `pgid`, from `/proc/<pid>/stat`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        group == Some(pgid) && state != Some("Z")
    })
}
