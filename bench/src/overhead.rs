//! Action overhead: `POST /a/{action}` through a real `homehook serve` process in front of the
//! fake vendor (its own process), beside the same vendor call made directly. Both sides use one
//! keep-alive HTTP/1 client; rounds alternate so that drift on a shared machine hits both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use homehook_core::keys::ActionKey;
use homehook_core::store::TokenStore;
use homehook_local::SqliteStore;
use homehook_tests::fake_vendor::FakeSettings;

use crate::procs::{Running, Vendor};
use crate::stats::Samples;

/// Direct and through homehook, side by side.
#[derive(Debug)]
pub struct Compare {
    /// Sequential latency of the direct call, ms.
    pub direct: Samples,
    /// Sequential latency through homehook, ms.
    pub via: Samples,
    /// Requests per second with 4 concurrent callers, direct (0: not measured).
    pub direct_rps: f64,
    /// Requests per second with 4 concurrent callers, through homehook.
    pub via_rps: f64,
    /// Token-endpoint calls homehook made during the timed requests.
    pub token_calls: u64,
}

/// Everything this module measures.
#[derive(Debug)]
pub struct Overhead {
    /// Valid tokens: one vendor call per action.
    pub valid: Compare,
    /// An expired token: a renewal and a vendor call per action.
    pub expired: Compare,
    /// `homehook serve`'s peak RSS after start-up and connecting, KiB.
    pub serve_rss_start_kib: u64,
    /// Its peak RSS after the load, KiB.
    pub serve_rss_load_kib: u64,
    /// How many requests the load sent.
    pub load_requests: usize,
}

/// A `homehook serve` process configured against `vendor`, with one connection (`home`) and
/// one action (`heating`: a POST to the vendor's `/api/setthermmode`).
struct Serve {
    base: String,
    data_dir: PathBuf,
    admin: ActionKey,
    action: ActionKey,
    process: Running,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(bin_dir: &Path, vendor: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (admin, action) = (ActionKey::generate(), ActionKey::generate());
        let settings = FakeSettings::default();
        std::fs::write(
            dir.path().join("secrets.toml"),
            format!(
                "[netatmo]\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
                settings.client_id, settings.client_secret
            ),
        )?;
        // homehook refuses a secrets file others can read.
        std::fs::set_permissions(
            dir.path().join("secrets.toml"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        let config = dir.path().join("homehook.toml");
        std::fs::write(
            &config,
            format!(
                r#"[server]
admin_key_hash = "{admin}"
secrets_file = "secrets.toml"

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"
# The fake has no rate limit and the bench sends thousands of calls.
api_budget = []

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = {{ home_id = "h1", mode = "away" }}
key_hash = "{action}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}
"#,
                admin = admin.hash(),
                action = action.hash(),
            ),
        )?;
        let data_dir = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("serve.log"))?;
        let mut child = Command::new(bin_dir.join("homehook"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("cannot start homehook serve (built by infra/bench)")?;
        let stdout = child.stdout.take().context("stdout")?;
        let process = Running { child };
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)?;
        let Some(base) = first.trim().strip_prefix("homehook listening on ") else {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            bail!("homehook serve did not start: {first:?} {log}");
        };
        let base = base.to_string();
        Ok(Self {
            base,
            data_dir,
            admin,
            action,
            process,
            _dir: dir,
        })
    }

    /// Connects `home` the way its owner would: /connect, the vendor's consent, /callback.
    async fn connect(&self, client: &reqwest::Client) -> Result<()> {
        let location = |r: &reqwest::Response| -> Result<String> {
            Ok(r.headers()
                .get("location")
                .context("no redirect")?
                .to_str()?
                .to_string())
        };
        let r = client
            .get(format!("{}/connect/home", self.base))
            .bearer_auth(self.admin.expose())
            .send()
            .await?;
        let authorize = location(&r)?;
        let consent = client.get(authorize).send().await?;
        let callback = location(&consent)?;
        let done = client.get(callback).send().await?;
        if done.status() != 200 {
            bail!("connecting failed: {}", done.text().await?);
        }
        Ok(())
    }

    /// The access token homehook holds (read from its store, which is a shared SQLite file).
    async fn access_token(&self) -> Result<String> {
        let store = SqliteStore::open_in(&self.data_dir)?;
        let record = store.get_token("home").await?.context("not connected")?;
        Ok(record.access_token.expose().to_string())
    }

    /// `POST /a/heating` with the action key, on a client of its own.
    fn action_call(&self) -> Result<Call> {
        let (c, url) = (client()?, format!("{}/a/heating", self.base));
        let key = self.action.expose().to_string();
        Ok(Arc::new(move || c.post(&url).bearer_auth(&key)))
    }
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .pool_max_idle_per_host(8)
        .build()?)
}

type Call = Arc<dyn Fn() -> reqwest::RequestBuilder + Send + Sync>;

async fn send(call: &Call) -> Result<()> {
    let r = call().send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    if status != 200 {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// Direct calls that need a token first: a password grant, then the API call with it.
async fn token_then_call(client: &reqwest::Client, vendor: &str) -> Result<()> {
    let token = crate::procs::password_grant(client, vendor).await?;
    let access = token["access_token"].as_str().context("no access token")?;
    let r = client
        .post(format!("{vendor}/api/setthermmode?home_id=h1&mode=away"))
        .bearer_auth(access)
        .send()
        .await?;
    if r.status() != 200 {
        bail!("direct call: {}", r.status());
    }
    r.bytes().await?;
    Ok(())
}

async fn sequential(call: &Call, n: usize) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        send(call).await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Requests per second with `workers` callers sending `total` requests between them.
async fn throughput(call: &Call, total: usize, workers: usize) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let call = Arc::clone(call);
        let n = total / workers;
        tasks.spawn(async move {
            for _ in 0..n {
                send(&call).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((total / workers * workers) as f64 / start.elapsed().as_secs_f64())
}

/// Alternating rounds of `n` requests in all on each side.
async fn side_by_side(direct: &Call, via: &Call, n: usize) -> Result<(Samples, Samples)> {
    let rounds = 4;
    let (mut d, mut v) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.extend(sequential(direct, n / rounds).await?);
        v.extend(sequential(via, n / rounds).await?);
    }
    Ok((Samples::millis(d), Samples::millis(v)))
}

/// Runs the whole comparison: `n` sequential requests per side, `load` concurrent ones.
pub async fn measure(bin_dir: &Path, n: usize, load: usize) -> Result<Overhead> {
    // Valid tokens: 3-hour tokens, as Netatmo issues.
    let vendor = Vendor::start(bin_dir, 10_800)?;
    let serve = Serve::start(bin_dir, &vendor.base)?;
    let c = client()?;
    serve.connect(&c).await?;
    let token = serve.access_token().await?;
    let serve_rss_start_kib = serve.process.peak_rss_kib()?;
    let direct: Call = {
        let (c, url) = (
            client()?,
            format!("{}/api/setthermmode?home_id=h1&mode=away", vendor.base),
        );
        Arc::new(move || c.post(&url).bearer_auth(&token))
    };
    let via = serve.action_call()?;
    sequential(&direct, 200).await?;
    sequential(&via, 200).await?;
    let (d, v) = side_by_side(&direct, &via, n).await?;
    let direct_rps = throughput(&direct, load, 4).await?;
    let via_rps = throughput(&via, load, 4).await?;
    let serve_rss_load_kib = serve.process.peak_rss_kib()?;
    drop(serve);
    let valid_token_calls = vendor.stop()?.saturating_sub(1);
    let valid = Compare {
        direct: d,
        via: v,
        direct_rps,
        via_rps,
        token_calls: valid_token_calls,
    };

    // A token that must be renewed before the action: the vendor's tokens live 1 s and each
    // timed action comes 1.1 s after the last one, when its token has expired, so it renews
    // first (a token with life left is used: one renewal per lifetime). The direct side makes
    // the same two calls: a token grant, then the API call.
    let vendor = Vendor::start(bin_dir, 1)?;
    let serve = Serve::start(bin_dir, &vendor.base)?;
    serve.connect(&c).await?;
    let via = serve.action_call()?;
    const WARM_UP: usize = 2;
    let n_expired = (n / 50).clamp(5, 20);
    let mut d = Vec::new();
    let mut v = Vec::new();
    let direct_client = client()?;
    for round in 0..WARM_UP + n_expired {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let t = Instant::now();
        token_then_call(&direct_client, &vendor.base).await?;
        let direct = t.elapsed();
        let via_times = sequential(&via, 1).await?;
        if round >= WARM_UP {
            d.push(direct);
            v.extend(via_times);
        }
    }
    drop(serve);
    let timed = v.len() as u64;
    // Less the code exchange, the direct side's grants and the warm-up renewals.
    let token_calls = vendor
        .stop()?
        .saturating_sub(1 + (WARM_UP + n_expired) as u64 + WARM_UP as u64);
    let expired = Compare {
        direct: Samples::millis(d),
        via: Samples::millis(v),
        direct_rps: 0.0,
        via_rps: 0.0,
        token_calls,
    };
    if token_calls != timed {
        tracing::warn!(token_calls, timed, "expected one refresh per action");
    }
    Ok(Overhead {
        valid,
        expired,
        serve_rss_start_kib,
        serve_rss_load_kib,
        load_requests: load,
    })
}
