//! The `homehook` binary as a newcomer runs it: `serve` with no config, a broken config,
//! `key new`, `actions`, `status`, `discover` against a fake vendor.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_homehook");

fn homehook(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env_remove("HOMEHOOK_CONFIG")
        .env_remove("HOMEHOOK_DATA_DIR")
        .env("HOMEHOOK_LOG", "warn");
    c
}

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_with_no_config_starts_and_says_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = homehook(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        // Its log, at the suite's capture level, goes where `scan-logs` looks for secrets.
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stdout(Stdio::piped())
        .stderr(homehook_tests::leak_watch::log_file("homehook-serve"))
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("homehook listening on ")
        .expect(&first)
        .to_string();
    let rest: Vec<String> = lines.by_ref().take(4).map(|l| l.unwrap()).collect();
    let console = rest.join("\n");
    // Keep draining the console in the background, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(console.contains("no config file"), "{console}");
    assert!(console.contains("homehook key new"), "{console}");
    assert!(
        addr.starts_with("http://127.0.0.1:"),
        "listens on loopback: {addr}"
    );

    let root = reqwest::get(&addr).await.unwrap();
    assert_eq!(root.status(), 200);
    let html = root.text().await.unwrap();
    assert!(html.contains("No connections are configured yet"), "{html}");
    assert!(html.contains("homehook key new"));
    assert!(
        html.contains(&format!("{addr}/callback/")),
        "the callback URL follows the real address when public_url is not set"
    );
    let health: serde_json::Value = reqwest::get(format!("{addr}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert!(
        data.join("homehook.sqlite3").exists(),
        "the data directory and store were created"
    );
}

#[test]
fn a_broken_config_stops_start_up_naming_file_field_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("homehook.toml"),
        "[connections.home]\nprovider = \"netatmoo\"\n",
    )
    .unwrap();
    let out = homehook(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("homehook.toml: connections.home.provider: unknown provider \"netatmoo\""),
        "{err}"
    );

    let out = homehook(dir.path())
        .args(["--config", "missing.toml", "actions"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn key_new_prints_a_key_and_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = homehook(dir.path())
        .args(["key", "new", "--json"])
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stderr(homehook_tests::leak_watch::log_file("homehook-key-new"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["key"].as_str().unwrap();
    homehook_tests::leak_watch::issued("admin_key", key);
    let hash: homehook_core::keys::KeyHash = v["hash"].as_str().unwrap().parse().unwrap();
    assert!(hash.verify(key));
    assert!(key.len() >= 40);
}

#[test]
fn key_new_for_actions_prints_a_keys_block_that_opens_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = homehook(dir.path())
        .args([
            "key",
            "new",
            "--for",
            "lights, heating",
            "--id",
            "phone",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["key"].as_str().unwrap();
    homehook_tests::leak_watch::issued("action_key", key);
    let block = v["config"].as_str().unwrap();
    assert!(block.starts_with("[keys.phone]\n"), "{block}");
    // The block, pasted into a config with those actions, opens them and nothing else.
    let text = format!(
        "[connections.home]\nprovider = \"netatmo\"\n\
         [actions.lights]\nconnection = \"home\"\npath = \"/l\"\n\
         [actions.heating]\nconnection = \"home\"\npath = \"/h\"\n\
         [actions.other]\nconnection = \"home\"\npath = \"/o\"\nkey_hash = \"{}\"\n{block}",
        homehook_core::keys::ActionKey::generate().hash()
    );
    let config = homehook_core::Config::parse(&text, "pasted.toml", None).unwrap();
    let now = homehook_core::clock::UnixTime(0);
    assert!(config.keys.admit(key, "lights", now).is_ok());
    assert!(config.keys.admit(key, "heating", now).is_ok());
    assert!(config.keys.admit(key, "other", now).is_err());
}

#[test]
fn pin_new_hashes_the_pin_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = homehook(dir.path())
        .args(["pin", "new", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    homehook_tests::leak_watch::issued("pin", "730519");
    child.stdin.take().unwrap().write_all(b"730519\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hash: homehook_core::guard::pin::PinHash = v["pin_hash"].as_str().unwrap().parse().unwrap();
    assert!(hash.verify("730519"));
    assert!(!hash.verify("730518"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("730519"),
        "the PIN is not printed"
    );
    // Too short: refused with a reason.
    let mut child = homehook(dir.path())
        .args(["pin", "new"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"4821\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 to 64"));
}

#[test]
fn actions_and_status_read_the_example_config() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../homehook.example.toml");
    let out = homehook(dir.path())
        .arg("--config")
        .arg(&example)
        .arg("actions")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("http://127.0.0.1:8080/a/heating_away"),
        "{text}"
    );
    assert!(text.contains("GET,POST"), "{text}");

    let out = homehook(dir.path())
        .arg("--config")
        .arg(&example)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let healths: Vec<_> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["health"].clone())
        .collect();
    assert_eq!(healths.len(), 3);
    assert!(healths.iter().all(|h| h == "not_connected"));
    let schedules = v["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 2);
    let night = schedules
        .iter()
        .find(|s| s["name"] == "arm_at_night")
        .unwrap();
    let next = night["next_run"].as_str().unwrap();
    assert!(next.contains("T23:00:00+0"), "{next}");
    assert!(night["next_run_in_secs"].as_i64().unwrap() > 0);
    assert_eq!(night["last_run"], serde_json::Value::Null);

    // The readable table says where to connect the account that needs its owner.
    let out = homehook(dir.path())
        .arg("--config")
        .arg(&example)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("reconnect: http://127.0.0.1:8080/connect/home?key=<admin key>"),
        "{text}"
    );
    // Then the scheduled actions, each with its next run in its own time zone.
    assert!(text.contains("SCHEDULE"), "{text}");
    let night = text
        .lines()
        .find(|l| l.starts_with("arm_at_night"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(night.contains("0 23 * * mon-fri Europe/Paris"), "{night}");
    assert!(night.contains(" 23:00 (in "), "{night}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_asks_the_vendor_and_prints_ids_and_a_config_example() {
    use homehook_tests::fakes::somfy::{FakeSomfy, SIREN, SITE};
    use std::os::unix::fs::PermissionsExt;

    let clock = homehook_core::clock::ManualClock::new(homehook_tests::harness::T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock, settings.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        format!(
            "[somfy]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
            settings.client_id, settings.client_secret, settings.account.0, settings.account.1
        ),
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("homehook.toml"),
        format!(
            "[server]\nsecrets_file = \"secrets.toml\"\n[providers.somfy_protect]\ntoken_url = \"{}/oauth/oauth/v2/token/jwt\"\napi_base = \"{}\"\n[connections.alarm]\nprovider = \"somfy_protect\"\nsecret = \"somfy\"\n",
            fake.vendor.base,
            fake.api_base()
        ),
    )
    .unwrap();
    let cwd = dir.path().to_path_buf();
    // `log`: the run's log goes to the suite's logs (for runs whose stderr the test ignores).
    let run = move |args: &'static [&'static str], log: bool| {
        let cwd = cwd.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = homehook(&cwd);
            command.args(args).arg("--data-dir").arg(cwd.join("data"));
            if log {
                command
                    .envs(homehook_tests::leak_watch::CHILD_ENV)
                    .stderr(homehook_tests::leak_watch::log_file("homehook-discover"));
            }
            command.output().unwrap()
        })
    };
    let out = run(&["discover", "alarm"], false).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(SITE) && text.contains("Maison"), "{text}");
    assert!(text.contains(SIREN), "{text}");
    assert!(text.contains("builtin = \"armed\""), "{text}");
    assert!(
        text.contains(&format!("with = {{ site_id = \"{SITE}\" }}")),
        "{text}"
    );

    let out = run(&["discover", "alarm", "--json"], true).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["provider"], "somfy_protect");
    assert_eq!(
        fake.vendor.token_calls(),
        1,
        "the token stored by the first run was reused"
    );

    let out = run(&["discover", "garage"], false).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no connection \"garage\"") && err.contains("alarm"),
        "{err}"
    );
}
