//! A real reverse proxy (nginx, from Debian's `nginx` package) in front of a homehook on
//! loopback, the way the README tells owners to run it: TLS and the public name at the proxy,
//! homehook on 127.0.0.1 behind it. The attack tests use it to check what homehook sees behind a
//! proxy (every caller arrives from the proxy's address) and what a proxy changes about slow or
//! idle connections.
//!
//! # Starting it
//!
//! ```no_run
//! # async fn demo(homehook_base: &str) {
//! use homehook_tests::reverse_proxy::{ProxyOptions, ReverseProxy};
//! // In front of any homehook base URL (the test harness's `w.hh.base`, or a
//! // `homehook serve` started on 127.0.0.1:<port>):
//! let proxy = ReverseProxy::start(homehook_base).await;
//! let url = format!("{}/healthz", proxy.base); // http://127.0.0.1:<free port>
//! // With nginx connecting upstream from another loopback address (to tell it from direct
//! // callers), and more directives in the `location` block:
//! let proxy = ReverseProxy::start_with(
//!     homehook_base,
//!     ProxyOptions {
//!         bind_from: Some([127, 0, 0, 2].into()),
//!         location: "proxy_read_timeout 5s;".into(),
//!         ..ProxyOptions::default()
//!     },
//! )
//! .await;
//! # drop(proxy);
//! # }
//! ```
//!
//! The nginx binary is `HOMEHOOK_NGINX`, else `/usr/sbin/nginx` (`infra/test` installs the
//! `nginx` package when it is missing). It runs in the foreground as one process (`daemon off;
//! master_process off;`) with every path (config, pid, logs, temp files) in its own temp
//! directory, so it needs no root; it listens on 127.0.0.1 only, on a free port, and is killed
//! when the [`ReverseProxy`] is dropped.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The proxy lines of the README's nginx example ("Keeping the URLs safe"), exactly as the tests
/// run them: the original `Host`, and the caller's address appended to `X-Forwarded-For` (nginx
/// appends `$remote_addr`, so the right-most address is the one nginx saw).
pub const PROXY_LINES: &str = "\
proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;";

/// Longest nginx may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What to change in the proxy's config.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// The loopback address nginx connects to homehook from (`proxy_bind`), so that homehook
    /// can tell the proxy from callers that reach it directly from 127.0.0.1.
    pub bind_from: Option<IpAddr>,
    /// More directives for the `location /` block (after the proxy lines).
    pub location: String,
    /// More directives for the `server` block.
    pub server: String,
    /// More directives for the `http` block.
    pub http: String,
}

/// nginx proxying `http://127.0.0.1:<port>/` to a homehook; killed when dropped.
#[derive(Debug)]
pub struct ReverseProxy {
    /// `http://127.0.0.1:<port>`: where callers reach homehook through the proxy.
    pub base: String,
    /// The address nginx listens on.
    pub addr: SocketAddr,
    /// The config nginx runs.
    pub config: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        // One process (master_process off): killing it stops the proxy.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ReverseProxy {
    /// The nginx binary: `HOMEHOOK_NGINX`, else `/usr/sbin/nginx`. Panics with how to install it
    /// when it is missing: a proxy test that cannot run must not pass.
    pub fn nginx() -> PathBuf {
        const HOW: &str = "run infra/test, which installs it, or `sudo apt-get install nginx` \
                           (Debian); HOMEHOOK_NGINX may name another nginx binary";
        let path = std::env::var_os("HOMEHOOK_NGINX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
        assert!(
            path.is_file(),
            "nginx not found at {}: {HOW}",
            path.display()
        );
        path
    }

    /// `nginx -v`'s answer (`nginx version: nginx/1.22.1`).
    pub fn version() -> String {
        let out = Command::new(Self::nginx())
            .arg("-v")
            .output()
            .expect("run nginx -v");
        // nginx prints its version on stderr.
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    }

    /// nginx in front of `upstream` (`http://127.0.0.1:<port>`), with the README's proxy lines.
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(upstream, ProxyOptions::default()).await
    }

    /// nginx in front of `upstream`, with `options`.
    pub async fn start_with(upstream: &str, options: ProxyOptions) -> Self {
        // A free port is only free until someone takes it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start(upstream, &options).await {
                Ok(proxy) => return proxy,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    async fn try_start(upstream: &str, options: &ProxyOptions) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = config_text(dir.path(), addr, upstream, options);
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, &config).expect("write nginx.conf");
        let error_log = dir.path().join("error.log");
        let globals = format!(
            "daemon off; master_process off; pid {}; error_log {} info;",
            dir.path().join("nginx.pid").display(),
            error_log.display()
        );
        let mut child = Command::new(Self::nginx())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            // The error log before the config is read (else nginx opens /var/log/nginx/error.log).
            .arg("-e")
            .arg(&error_log)
            .arg("-g")
            .arg(&globals)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                return Err(format!("nginx exited ({status}): {stderr}\n{log}"));
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "nginx not listening on {addr} after {START_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            config,
            child,
            dir,
        })
    }

    /// nginx's error log so far (for a failing test's message).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// nginx's access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config_text(dir: &Path, addr: SocketAddr, upstream: &str, options: &ProxyOptions) -> String {
    let d = dir.display();
    let bind = options
        .bind_from
        .map(|ip| format!("proxy_bind {ip};"))
        .unwrap_or_default();
    let proxy_lines = PROXY_LINES.replace('\n', "\n            ");
    format!(
        r#"worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    {http}
    server {{
        listen {addr};
        server_name _;
        {server}
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            {proxy_lines}
            {bind}
            {location}
        }}
    }}
}}
"#,
        http = options.http,
        server = options.server,
        location = options.location,
    )
}
