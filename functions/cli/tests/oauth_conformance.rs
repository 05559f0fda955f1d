//! Conformance: the real `homehook` binary against an OAuth 2.0 authorization server taken
//! from a package registry, not written here: panva's `oidc-provider` (npm, OpenID Certified),
//! pinned in `tests/conformance/package.json` and configured by `tests/conformance/server.mjs`
//! to require PKCE, rotate refresh tokens (a reused one is `invalid_grant` and revokes the
//! grant) and issue access tokens of a few seconds.
//!
//! A new owner's path, as the README walks it: a generic `[providers.idp]` in homehook.toml,
//! `homehook serve`, `homehook connect idp`, and the printed link followed the way a browser
//! would (the server's own sign-in and consent pages: forms read from the HTML, cookies kept,
//! redirects followed); then a `GET /api/ping` action, called steadily with small bursts over
//! several token lifetimes, and a burst of 50 concurrent calls on an expired token.
//!
//! Asserted: every action answers 200; the server never refuses a grant (no `invalid_grant`,
//! no reused refresh token); refresh grants stay within one per lifetime with traffic (plus
//! one), and the burst on an expired token costs exactly one. The figures go to the test's
//! output and to `$CARGO_TARGET_DIR/reports/oauth-conformance.md`.
//!
//! Needs node and npm (infra/test requires them already); the server package is installed by
//! `tests/conformance/install` on first use, into `$CARGO_TARGET_DIR/tools/conformance-node`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use homehook_core::keys::ActionKey;
use support::{Running, free_port, homehook, serve, workdir, write_secrets};

/// The access tokens' lifetime, seconds: short, so a run covers several.
const TTL_SECS: u64 = 4;
/// Lifetimes of steady traffic before the burst: from the connect to half a second before
/// the end of the last one, so the fewest refreshes possible are `STEADY_LIFETIMES - 1`
/// whatever the timing, not one more or less by a few milliseconds.
const STEADY_LIFETIMES: u64 = 5;
/// One action every this often during the steady part...
const STEADY_EVERY: Duration = Duration::from_millis(200);
/// ...and on every this many-th beat a small burst of this many at once.
const SMALL_BURST_EVERY: u64 = 10;
const SMALL_BURST: usize = 10;
/// The burst on an expired token.
const BURST: usize = 50;

const CLIENT_ID: &str = "homehook-conformance";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$CARGO_TARGET_DIR`, or the workspace's `target`, as the install script reckons it.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Installs the pinned server package if it is not there yet; the folder holding its
/// `node_modules`.
fn install_server() -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the OAuth conformance test needs node and npm on the PATH (Debian: apt-get install \
         nodejs npm; infra/test needs them too): {node:?}"
    );
    let dir = target_dir().join("tools/conformance-node");
    let out = Command::new(workspace().join("tests/conformance/install"))
        .arg(&dir)
        .output()
        .expect("run tests/conformance/install");
    assert!(
        out.status.success(),
        "tests/conformance/install failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The authorization server, running; killed when dropped, pass or fail (and it exits by
/// itself when its standard input closes, should this process die first).
struct AuthServer {
    child: Child,
    _stdin: ChildStdin,
    /// Its issuer, `http://127.0.0.1:<port>`.
    base: String,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AuthServer {
    fn start(modules: &Path, redirect_uri: &str, client_secret: &str, password: &str) -> Self {
        let mut child = Command::new("node")
            .arg(workspace().join("tests/conformance/server.mjs"))
            .arg("--modules")
            .arg(modules)
            .args(["--redirect-uri", redirect_uri])
            .args(["--client-id", CLIENT_ID])
            .args(["--client-secret", client_secret])
            .args(["--password", password])
            .args(["--access-token-ttl", &TTL_SECS.to_string()])
            .args(["--client-auth", "basic"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(homehook_tests::leak_watch::log_file("oidc-provider"))
            .spawn()
            .expect("start node tests/conformance/server.mjs");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("the server prints its URL (its log: target/logs/oidc-provider-*.log)")
            .unwrap();
        assert!(
            first.starts_with("http://127.0.0.1:"),
            "server said: {first}"
        );
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            _stdin: stdin,
            base: first,
        }
    }

    async fn counts(&self) -> Counts {
        let v: serde_json::Value = reqwest::get(format!("{}/_counts", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        Counts {
            code_grants: n(&v["token_calls"]["authorization_code"]),
            refresh_grants: n(&v["token_calls"]["refresh_token"]),
            token_errors: v["token_errors"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), n(v)))
                .collect(),
            refresh_token_reused: n(&v["refresh_token_reused"]),
            grants_revoked: n(&v["grants_revoked"]),
            refreshed_at_ms: v["refresh_grants_at_ms"]
                .as_array()
                .unwrap()
                .iter()
                .map(n)
                .collect(),
            access_tokens: v["access_tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| AccessTokenIssued {
                    refreshed: t["gty"].as_str().unwrap().ends_with("refresh_token"),
                    iat: n(&t["iat"]),
                    exp: n(&t["exp"]),
                })
                .collect(),
            pings_ok: n(&v["pings"]["ok"]),
            pings_expired: n(&v["pings"]["expired"]),
            pings_unknown: n(&v["pings"]["unknown"]),
            logins_refused: n(&v["logins_refused"]),
        }
    }
}

/// What the server counted.
#[derive(Debug, Clone)]
struct Counts {
    code_grants: u64,
    refresh_grants: u64,
    token_errors: Vec<(String, u64)>,
    refresh_token_reused: u64,
    grants_revoked: u64,
    /// When each refresh grant succeeded, Unix milliseconds.
    refreshed_at_ms: Vec<u64>,
    /// Every access token issued, in order.
    access_tokens: Vec<AccessTokenIssued>,
    pings_ok: u64,
    pings_expired: u64,
    pings_unknown: u64,
    logins_refused: u64,
}

/// An access token the server issued: by a refresh grant (or the code's), when (Unix seconds,
/// whole as the server counts them) and until when.
#[derive(Debug, Clone)]
struct AccessTokenIssued {
    refreshed: bool,
    iat: u64,
    exp: u64,
}

impl Counts {
    /// When the newest access token expires, Unix ms.
    fn newest_expiry_ms(&self) -> u64 {
        self.access_tokens.last().expect("a token was issued").exp * 1000
    }
}

/// A browser, as far as the sign-in needs one: it keeps cookies (by name and path, as the
/// server scopes its interaction cookies) and follows redirects itself. No cookie store of
/// reqwest's: that feature would add crates to Cargo.lock for this test alone.
struct Browser {
    http: reqwest::Client,
    cookies: Mutex<Vec<(String, String, String)>>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::new(Vec::new()),
        }
    }

    fn cookie_header(&self, url: &url::Url) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, path, _)| url.path().starts_with(path.as_str()))
            .map(|(name, _, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap();
        for header in response.headers().get_all("set-cookie") {
            let text = header.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_string();
            let mut gone = value.is_empty();
            for attr in parts {
                let lower = attr.to_ascii_lowercase();
                if lower.starts_with("path=") {
                    path = attr["path=".len()..].to_string();
                } else if lower.starts_with("expires=thu, 01 jan 1970") || lower == "max-age=0" {
                    gone = true;
                }
            }
            jar.retain(|(n, p, _)| !(n == name && *p == path));
            if !gone {
                jar.push((name.to_string(), path, value.to_string()));
            }
        }
    }

    /// Sends `request` to `url` with the cookies that apply, keeps the ones it sets, and
    /// follows redirects (as GETs) until a page answers. The final URL and the answer.
    async fn send(
        &self,
        mut url: url::Url,
        form: Option<Vec<(String, String)>>,
    ) -> (url::Url, reqwest::Response) {
        let mut form = form;
        for _ in 0..20 {
            let request = match form.take() {
                Some(fields) => self.http.post(url.clone()).form(&fields),
                None => self.http.get(url.clone()),
            };
            let response = request
                .header("cookie", self.cookie_header(&url))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            self.keep_cookies(&response);
            if !response.status().is_redirection() {
                return (url, response);
            }
            url = url
                .join(&homehook_tests::harness::location(&response))
                .unwrap();
        }
        panic!("more than 20 redirects, at {url}");
    }
}

/// A form on a page: where it posts, its fields (name and value), and the text of its
/// button.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
    button: String,
}

/// The value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].replace("&amp;", "&"))
}

/// The forms of a page, read as a browser would show them (enough HTML for plain forms).
fn forms(html: &str) -> Vec<Form> {
    html.split("<form")
        .skip(1)
        .map(|chunk| {
            let body = &chunk[..chunk.find("</form>").expect("a closed form")];
            let fields = body
                .split("<input")
                .skip(1)
                .filter_map(|input| {
                    let tag = &input[..input.find('>').unwrap()];
                    Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
                })
                .collect();
            let button = body
                .split("<button")
                .nth(1)
                .and_then(|b| Some(b[b.find('>')? + 1..b.find("</button>")?].trim().to_string()))
                .unwrap_or_default();
            Form {
                action: attr(&chunk[..chunk.find('>').unwrap()], "action").expect("form action"),
                fields,
                button,
            }
        })
        .collect()
}

/// Fills the form that has every field of `fill` (other fields keep their values) and submits
/// it; the page that ends the redirects.
async fn submit(
    browser: &Browser,
    page_url: &url::Url,
    html: &str,
    button: &str,
    fill: &[(&str, &str)],
) -> (url::Url, reqwest::Response) {
    let all = forms(html);
    let form = all
        .iter()
        .find(|f| f.button == button)
        .unwrap_or_else(|| panic!("no form with a {button:?} button in:\n{html}"));
    let mut fields = form.fields.clone();
    for (name, value) in fill {
        let field = fields
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no field {name} in {form:?}"));
        field.1 = (*value).to_string();
    }
    browser
        .send(page_url.join(&form.action).unwrap(), Some(fields))
        .await
}

/// `homehook connect idp`, and the link it printed.
fn start_connect(dir: &Path, auth_base: &str) -> (Running, String) {
    let mut command = homehook(dir);
    command
        .args(["connect", "idp", "--no-qr", "--timeout", "60", "--data-dir"])
        .arg(dir.join("data"))
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stderr(homehook_tests::leak_watch::log_file("homehook-connect"));
    let mut running = Running::start(command);
    let prefix = format!("{auth_base}/auth?prompt=consent&");
    let line = running.until(Duration::from_secs(20), |l| l.contains(&prefix));
    let link = line[line.find(&prefix).unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (running, link)
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Calls the action once; its status, and when it was sent (Unix ms).
async fn act(client: &reqwest::Client, url: &str, key: &str) -> (u16, u64, String) {
    let sent = now_ms();
    let response = client.get(url).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let body = if status == 200 {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    (status, sent, body)
}

/// `n` calls at once; each one's status, send time and (when it failed) answer.
async fn burst(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    n: usize,
) -> Vec<(u16, u64, String)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url, key) = (client.clone(), url.to_string(), key.to_string());
        set.spawn(async move { act(&client, &url, &key).await });
    }
    set.join_all().await
}

/// The fewest refresh grants any client could have made for actions sent at `sent_ms` (Unix
/// ms), the first token expiring at `first_expiry_ms`: a token serves every action until it
/// expires, and the first action after that needs a new one, issued then and good for the
/// lifetime from that whole second (as the server counts). The "lifetimes with traffic" of
/// issue 19.
fn lifetimes_with_traffic(first_expiry_ms: u64, sent_ms: &[u64]) -> u64 {
    let mut sent = sent_ms.to_vec();
    sent.sort_unstable();
    let mut expires = first_expiry_ms;
    let mut needed = 0;
    for t in sent {
        if t >= expires {
            needed += 1;
            expires = (t / 1000 + TTL_SECS) * 1000;
        }
    }
    needed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_pkce_rotation_short_tokens_one_refresh_per_lifetime() {
    let modules = install_server();
    let (_tmp, dir) = workdir();
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback/idp");
    let client_secret = ActionKey::generate().expose().replace("hh_", "cs_");
    let password = ActionKey::generate().expose().replace("hh_", "pw_");
    let action_key = ActionKey::generate();
    homehook_tests::leak_watch::issued("client_secret", &client_secret);
    homehook_tests::leak_watch::issued("password", &password);
    homehook_tests::leak_watch::issued("action_key", action_key.expose());
    let auth = AuthServer::start(&modules, &redirect_uri, &client_secret, &password);
    let base = &auth.base;

    // What a new owner writes for an OAuth2 API homehook has no recipe for (README,
    // "providers.<id>.*"). The tick (every 60 s by default) is pushed out of the run, so every
    // renewal counted here is one that actions asked for, and the burst meets an expired token.
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
secrets_file = "secrets.toml"
refresh_interval_secs = 3600

[providers.idp]
display_name = "Conformance IdP"
# OpenID Connect Core §11: a server MUST ignore `offline_access` (and so issue no refresh
# token) unless `prompt` contains `consent`; oidc-provider does. homehook has no setting for
# extra authorization parameters, so the owner puts it in the URL, which homehook keeps.
authorize_url = "{base}/auth?prompt=consent"
token_url = "{base}/token"
api_base = "{base}"
client_auth = "basic"
scopes = ["offline_access", "ping"]
pkce = true

[connections.idp]
provider = "idp"

[actions.ping]
connection = "idp"
method = "GET"
path = "/api/ping"
methods = ["GET", "POST"]
key_hash = "{hash}"
# Bursts of 50 are the point here.
rate_limit = {{ burst = 200, per_minute = 60000 }}
"#,
            hash = action_key.hash()
        ),
    )
    .unwrap();
    write_secrets(
        &dir.join("secrets.toml"),
        &format!("[idp]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{client_secret}\"\n"),
    );
    let server = serve(&dir, "homehook-serve-conformance");

    // connect prints the authorization link; the owner's browser takes it from there.
    let (mut connect, link) = start_connect(&dir, base);
    let authorize = url::Url::parse(&link).unwrap();
    let param = |name: &str| {
        authorize
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("code_challenge_method").as_deref(),
        Some("S256"),
        "{link}"
    );
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    assert_eq!(param("scope").as_deref(), Some("offline_access ping"));
    assert_eq!(param("prompt").as_deref(), Some("consent"), "{link}");

    let browser = Browser::new();
    let (at, page) = browser.send(authorize.clone(), None).await;
    assert_eq!(page.status(), 200, "{at}");
    assert!(
        at.path().starts_with("/interaction/"),
        "sent to sign in: {at}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");

    // The sign-in is real: a wrong password is refused, and the page asks again.
    let (at, page) = submit(
        &browser,
        &at,
        &html,
        "Sign in",
        &[("login", "owner"), ("password", "not-the-password")],
    )
    .await;
    assert_eq!(page.status(), 401, "{at}");
    let html = page.text().await.unwrap();
    let (at, page) = submit(
        &browser,
        &at,
        &html,
        "Sign in",
        &[("login", "owner"), ("password", &password)],
    )
    .await;
    assert_eq!(page.status(), 200, "{at}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<h1>Allow access</h1>"),
        "consent next: {html}"
    );
    assert!(
        html.contains("<li>offline_access</li>") && html.contains("<li>ping</li>"),
        "{html}"
    );

    // Allow: the server redirects to homehook's callback, which the browser opens.
    let (at, page) = submit(&browser, &at, &html, "Allow", &[]).await;
    assert_eq!(
        format!("{}://{}{}", at.scheme(), at.authority(), at.path()),
        redirect_uri,
        "the consent ends at homehook's callback"
    );
    let status = page.status();
    let html = page.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Connected"), "{html}");
    let (status, output) = connect.finish(Duration::from_secs(20));
    assert!(status.success(), "{output}");
    assert!(
        output.contains("Connected idp at Conformance IdP: healthy"),
        "{output}"
    );

    let signed_in = auth.counts().await;
    assert_eq!(signed_in.code_grants, 1, "{signed_in:?}");
    assert_eq!(signed_in.logins_refused, 1, "{signed_in:?}");
    assert_eq!(signed_in.refresh_grants, 0, "{signed_in:?}");
    let first = signed_in.access_tokens[0].clone();
    assert!(
        !first.refreshed && first.exp - first.iat == TTL_SECS,
        "{first:?}"
    );

    // Steady traffic with small bursts, over several lifetimes.
    let client = reqwest::Client::new();
    let url = format!("{}/a/ping", server.base);
    let key = action_key.expose();
    let mut results: Vec<(u16, u64, String)> = Vec::new();
    let mut beat = tokio::time::interval(STEADY_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let steady_until_ms = first.exp * 1000 + (STEADY_LIFETIMES - 1) * TTL_SECS * 1000 - 500;
    let mut beats = 0u64;
    while now_ms() < steady_until_ms {
        beat.tick().await;
        beats += 1;
        if beats.is_multiple_of(SMALL_BURST_EVERY) {
            results.extend(burst(&client, &url, key, SMALL_BURST).await);
        } else {
            results.push(act(&client, &url, key).await);
        }
    }
    let steady = auth.counts().await;
    let steady_actions = results.len();

    // Quiet until the newest token has expired, then a burst on it.
    let wait = (steady.newest_expiry_ms() + 500).saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let burst_started = Instant::now();
    let burst_results = burst(&client, &url, key, BURST).await;
    let burst_time = burst_started.elapsed();
    let after = auth.counts().await;
    results.extend(burst_results);

    // The figures.
    let sent: Vec<u64> = results.iter().map(|r| r.1).collect();
    let issued_ms = first.iat * 1000;
    let span_s = (sent.iter().max().unwrap() - issued_ms) as f64 / 1000.0;
    let lifetimes = lifetimes_with_traffic(first.exp * 1000, &sent);
    let failed: Vec<&(u16, u64, String)> = results.iter().filter(|r| r.0 != 200).collect();
    let burst_refreshes = after.refresh_grants - steady.refresh_grants;
    let report = format!(
        "# OAuth conformance: homehook against oidc-provider\n\n\
         `functions/cli/tests/oauth_conformance.rs`: the real `homehook serve` and `homehook connect` \
         against oidc-provider {version} (npm; PKCE required, refresh tokens rotated on every use, \
         access tokens of {TTL_SECS} s), connected through its sign-in and consent pages.\n\n\
         | figure | value |\n|---|---|\n\
         | access-token lifetime | {TTL_SECS} s |\n\
         | actions (steady + small bursts / burst on an expired token) | {total} ({steady_actions} / {BURST}) |\n\
         | actions answered 200 | {ok} |\n\
         | span from the first token to the last action | {span_s:.1} s |\n\
         | lifetimes with traffic (fewest refresh grants possible) | {lifetimes} |\n\
         | refresh grants at the server | {refreshes} |\n\
         | refresh grants per lifetime with traffic | {per:.2} |\n\
         | refresh grants during the steady part | {steady_refreshes} |\n\
         | refresh grants, seconds after the first token was issued | {refreshed_at} |\n\
         | refresh grants for the burst of {BURST} on an expired token | {burst_refreshes} |\n\
         | burst of {BURST} on an expired token, wall time | {burst_ms} ms |\n\
         | token errors at the server (`invalid_grant` …) | {errors:?} |\n\
         | refresh tokens presented twice | {reused} |\n\
         | resource calls with an expired / unknown token | {expired} / {unknown} |\n",
        version = server_version(&modules),
        total = results.len(),
        ok = results.len() - failed.len(),
        refreshes = after.refresh_grants,
        per = after.refresh_grants as f64 / lifetimes.max(1) as f64,
        steady_refreshes = steady.refresh_grants,
        refreshed_at = seconds_after(&after.refreshed_at_ms, issued_ms),
        burst_ms = burst_time.as_millis(),
        errors = after.token_errors,
        reused = after.refresh_token_reused,
        expired = after.pings_expired,
        unknown = after.pings_unknown,
    );
    println!("{report}");
    homehook_tests::harness::write_report("oauth-conformance", &report);

    assert!(
        failed.is_empty(),
        "{} of {} actions failed, e.g. {:?}\n{report}",
        failed.len(),
        results.len(),
        failed.first()
    );
    assert!(
        after.token_errors.is_empty()
            && after.refresh_token_reused == 0
            && after.grants_revoked == 0,
        "the server refused a grant: {after:?}\n{report}"
    );
    assert_eq!(after.code_grants, 1, "{after:?}");
    assert_eq!(
        burst_refreshes, 1,
        "a burst of {BURST} on an expired token costs one refresh\n{report}"
    );
    assert!(
        after.refresh_grants <= lifetimes + 1,
        "at most one refresh per lifetime with traffic (plus one): {} refreshes for {lifetimes} \
         lifetimes\n{report}",
        after.refresh_grants
    );
    assert!(after.pings_ok >= results.len() as u64, "{after:?}");
}

/// `times_ms` as seconds after `origin_ms`, the first dozen (a renewal on every action makes
/// hundreds).
fn seconds_after(times_ms: &[u64], origin_ms: u64) -> String {
    const SHOWN: usize = 12;
    let mut text = times_ms
        .iter()
        .take(SHOWN)
        .map(|t| format!("{:.1}", (*t as f64 - origin_ms as f64) / 1000.0))
        .collect::<Vec<_>>()
        .join(", ");
    if times_ms.len() > SHOWN {
        text.push_str(&format!(", … ({} more)", times_ms.len() - SHOWN));
    }
    text
}

/// The installed server package's version, for the report.
fn server_version(modules: &Path) -> String {
    let text =
        std::fs::read_to_string(modules.join("node_modules/oidc-provider/package.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["version"].as_str().unwrap().to_string()
}
