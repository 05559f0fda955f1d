//! Processes the bench starts (homehook, Lambda bootstraps, the fake vendor, moto) and what it
//! reads of them: every one listens on 127.0.0.1 and is killed when its handle drops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Running {
    /// The process.
    pub child: Child,
}

impl Running {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        peak_rss_kib(self.pid())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident set (`VmHWM` of /proc/<pid>/status) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line")
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {within:?}")
}

/// moto, the DynamoDB- and Secrets-Manager-compatible server, on a free port.
pub fn start_moto(moto_server: &Path) -> Result<(Running, String)> {
    let port = free_port()?;
    let child = Command::new(moto_server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", moto_server.display()))?;
    let running = Running { child };
    wait_for_port(port, Duration::from_secs(60))?;
    Ok((running, format!("http://127.0.0.1:{port}")))
}

/// The fake vendor in its own process (tests/src/bin/fake-vendor.rs), issuing access tokens
/// that live `ttl_secs`. Closing its stdin makes it print what it saw and exit.
#[derive(Debug)]
pub struct Vendor {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    _process: Running,
}

impl Vendor {
    /// Starts `fake-vendor generic <ttl_secs>`.
    pub fn start(bin_dir: &Path, ttl_secs: i64) -> Result<Self> {
        let mut child = Command::new(bin_dir.join("fake-vendor"))
            .args(["generic", &ttl_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start fake-vendor (built by infra/bench)")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let base = first.trim().to_string();
        if !base.starts_with("http://127.0.0.1:") {
            bail!("fake-vendor said {first:?}");
        }
        Ok(Self {
            base,
            stdin,
            stdout,
            _process: Running { child },
        })
    }

    /// Stops it; returns how many token-endpoint calls it answered.
    pub fn stop(mut self) -> Result<u64> {
        drop(self.stdin.take());
        // The rest of its stdout is one JSON line of what it saw.
        let mut out = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut out)?;
        let seen: serde_json::Value =
            serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))?;
        seen["token_calls"]
            .as_u64()
            .context("fake-vendor did not count")
    }
}

/// A password grant at the fake vendor with its default account: what the bench uses when it
/// needs tokens of its own (a direct call's token, records to seed). Returns the token answer.
pub async fn password_grant(client: &reqwest::Client, vendor: &str) -> Result<serde_json::Value> {
    let s = homehook_tests::fake_vendor::FakeSettings::default();
    Ok(client
        .post(format!("{vendor}/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", s.account.0.as_str()),
            ("password", s.account.1.as_str()),
            ("client_id", s.client_id.as_str()),
            ("client_secret", s.client_secret.as_str()),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}
