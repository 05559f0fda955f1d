//! What the CLI tests share: running the real `homehook` binary, a real `homehook serve` on a
//! loopback port, owner-only secrets files, and reading back the QR codes the CLI prints.

#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_homehook");

/// `homehook` run from `cwd`, with nothing of the caller's environment that would change it.
pub fn homehook(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env_remove("HOMEHOOK_CONFIG")
        .env_remove("HOMEHOOK_DATA_DIR")
        .env_remove("HOMEHOOK_ACTION_KEY")
        .env("HOMEHOOK_LOG", "warn")
        .stdin(Stdio::null());
    c
}

/// A command's standard output and error as text, and whether it succeeded.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `homehook <args>` in `cwd` with `--data-dir cwd/data`, off the async runtime.
pub async fn run(cwd: &Path, args: &[&str]) -> Run {
    run_with(cwd, args, &[]).await
}

/// [`run`] with extra environment variables.
pub async fn run_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = homehook(cwd);
    command.args(args).arg("--data-dir").arg(cwd.join("data"));
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A free loopback port (for a config that must name the server's address before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a secrets file readable by its owner only.
pub fn write_secrets(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A `homehook serve` process; killed when dropped, pass or fail.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `homehook serve` in `cwd` (its homehook.toml, its `data` directory) and waits until
/// it listens.
pub fn serve(cwd: &Path, log: &str) -> Server {
    let mut child = homehook(cwd)
        .args(["serve", "--data-dir"])
        .arg(cwd.join("data"))
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stdout(Stdio::piped())
        .stderr(homehook_tests::leak_watch::log_file(log))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("homehook listening on ")
        .unwrap_or_else(|| panic!("serve said: {first}"))
        .to_string();
    // Keep draining its console, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base }
}

/// [`serve`], also returning the console lines it printed while starting (those that came
/// before half a second of quiet).
pub fn serve_with_console(cwd: &Path, log: &str) -> (Server, Vec<String>) {
    let mut child = homehook(cwd)
        .args(["serve", "--data-dir"])
        .arg(cwd.join("data"))
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stdout(Stdio::piped())
        .stderr(homehook_tests::leak_watch::log_file(log))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep draining after the test stops listening, as a terminal would.
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let base = first
        .strip_prefix("homehook listening on ")
        .unwrap_or_else(|| panic!("serve said: {first}"))
        .to_string();
    let mut console = vec![first];
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        console.push(line);
    }
    (Server { child, base }, console)
}

/// A process whose standard output is read line by line while it runs; killed when dropped.
pub struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Everything read so far.
    pub seen: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `command` with its standard output piped.
    pub fn start(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `want` (returned), failing after `within`.
    pub fn until(&mut self, within: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no such line within {within:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits (at most `within`) for the process to end; its exit status and the rest of its
    /// output.
    pub fn finish(&mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF; collect what it still has.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.seen.push(line);
                }
                return (status, self.seen.join("\n"));
            }
            if Instant::now() >= deadline {
                panic!(
                    "still running after {within:?}; saw:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The QR codes in `text` (blocks of lines drawn only with half blocks), decoded.
pub fn qr_codes(text: &str) -> Vec<String> {
    let is_qr =
        |l: &str| !l.trim().is_empty() && l.chars().all(|c| matches!(c, ' ' | '▀' | '▄' | '█'));
    let mut codes = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("end")) {
        if is_qr(line) {
            block.push(line);
        } else if !block.is_empty() {
            codes.push(decode(&block));
            block.clear();
        }
    }
    codes
}

/// Reads one QR code drawn as the CLI draws it by default: a drawn half block is a light
/// module (for dark terminals), a blank one dark.
fn decode(lines: &[&str]) -> String {
    const SCALE: usize = 4;
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap();
    let height = lines.len() * 2;
    let mut light = vec![vec![true; width]; height];
    for (row, line) in lines.iter().enumerate() {
        for (col, c) in line.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            light[row * 2][col] = top;
            light[row * 2 + 1][col] = bottom;
        }
    }
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width * SCALE, height * SCALE, |x, y| {
            if light[y / SCALE][x / SCALE] { 255 } else { 0 }
        });
    let grids = image.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "one readable QR code in:\n{}",
        lines.join("\n")
    );
    grids[0].decode().expect("the QR code decodes").1
}

/// The directory of a test's files.
pub fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// The cells of an aligned table (columns two spaces or more apart), checking that every cell
/// starts exactly under its column's header.
pub fn table(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().take_while(|l| !l.is_empty());
    let header = lines.next().expect("a header line");
    let starts = cell_starts(header);
    std::iter::once(header)
        .chain(lines)
        .map(|line| {
            let cells = cell_starts(line);
            assert_eq!(
                cells.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
                starts.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
                "columns line up:\n{text}"
            );
            cells.into_iter().map(|(_, cell)| cell).collect()
        })
        .collect()
}

/// Each cell of a line and the column (in characters) it starts at.
fn cell_starts(line: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut cells = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        // A cell ends at two spaces in a row (single spaces belong to it: "in 3 h 0 min").
        while i < chars.len() && !(chars[i] == ' ' && chars.get(i + 1) == Some(&' ')) {
            i += 1;
        }
        cells.push((
            start,
            chars[start..i]
                .iter()
                .collect::<String>()
                .trim()
                .to_string(),
        ));
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
    }
    cells
}
