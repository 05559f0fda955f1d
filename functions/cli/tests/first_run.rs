//! The first run as the README walks it, with the real `homehook` binary against fake vendors
//! on loopback: `init` → fill the secrets → `serve` → `connect` (following the printed link as
//! a browser would) → `actions --qr` → `status` → `doctor`; and how `connect` fails: no server,
//! access declined, nobody opens the link, wrong password.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use homehook_core::clock::{Clock, ManualClock, SystemClock};
use homehook_tests::fakes::netatmo::{FakeNetatmo, HOME};
use homehook_tests::fakes::somfy::FakeSomfy;
use support::{
    Running, free_port, homehook, qr_codes, run, run_with, serve, workdir, write_secrets,
};

/// A fake Netatmo whose clock is the real one (tokens it issues are valid in real time).
async fn netatmo() -> FakeNetatmo {
    FakeNetatmo::start(ManualClock::new(SystemClock.now()), FakeNetatmo::settings()).await
}

/// `homehook init --vendors netatmo`, then what the owner does by hand: a free port, the
/// provider pointed at the fake, the credentials filled in. Returns the admin key.
async fn init_for_fake(dir: &Path, fake: &FakeNetatmo, port: u16) -> String {
    let out = run(dir, &["init", "--vendors", "netatmo", "--json"]).await;
    assert!(out.ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let admin_key = v["admin_key"].as_str().unwrap().to_string();
    homehook_tests::leak_watch::issued("admin_key", &admin_key);
    let config = std::fs::read_to_string(dir.join("homehook.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(
            "[server]\n",
            "[server]\n# Tests: the code exchange gives up quickly.\nvendor_timeout_secs = 2\n",
        );
    let base = &fake.vendor.base;
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            "{config}\n[providers.netatmo]\nauthorize_url = \"{base}/oauth2/authorize\"\ntoken_url = \"{base}/oauth2/token\"\napi_base = \"{base}\"\n"
        ),
    )
    .unwrap();
    let settings = FakeNetatmo::settings();
    let secrets = std::fs::read_to_string(dir.join("secrets.toml"))
        .unwrap()
        .replace(
            "client_id = \"\"",
            &format!("client_id = \"{}\"", settings.client_id),
        )
        .replace(
            "client_secret = \"\"",
            &format!("client_secret = \"{}\"", settings.client_secret),
        );
    write_secrets(&dir.join("secrets.toml"), &secrets);
    admin_key
}

/// Starts `homehook connect <connection>` and returns it once it has printed the vendor's link.
fn start_connect(dir: &Path, connection: &str, extra: &[&str]) -> (Running, String) {
    let mut command = homehook(dir);
    command
        .args(["connect", connection, "--data-dir"])
        .arg(dir.join("data"))
        .args(extra)
        .envs(homehook_tests::leak_watch::CHILD_ENV)
        .stderr(homehook_tests::leak_watch::log_file("homehook-connect"));
    let mut running = Running::start(command);
    let link = running
        .until(Duration::from_secs(20), |l| {
            l.contains("/oauth2/authorize?")
        })
        .trim()
        .to_string();
    (running, link)
}

/// What the owner's browser does with the link: the vendor's consent page redirects to
/// homehook's callback, which the browser then opens.
async fn allow_in_browser(link: &str) -> reqwest::Response {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(link).send().await.unwrap();
    assert!(consent.status().is_redirection(), "{:?}", consent.status());
    let callback = homehook_tests::harness::location(&consent);
    browser
        .get(callback)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_init_serve_connect_actions_status_doctor() {
    let fake = netatmo().await;
    let (_tmp, dir) = workdir();
    let port = free_port();
    init_for_fake(&dir, &fake, port).await;

    // Before connecting, doctor says what is missing, and exits 1.
    let _server = serve(&dir, "homehook-serve-first-run");
    let doctor = run(&dir, &["doctor"]).await;
    assert_eq!(doctor.code, Some(1), "{doctor}");
    assert!(
        doctor
            .stdout
            .contains("FAIL  connection netatmo: not connected")
            && doctor
                .stdout
                .contains("fix: start `homehook serve`, then run `homehook connect netatmo`"),
        "{doctor}"
    );

    // connect prints the link and its QR code, then waits for the browser.
    let (mut connect, link) = start_connect(&dir, "netatmo", &["--timeout", "60"]);
    assert!(
        link.starts_with(&format!("{}/oauth2/authorize?", fake.vendor.base)),
        "{link}"
    );
    let url = url::Url::parse(&link).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1;
    assert_eq!(
        redirect,
        format!("http://127.0.0.1:{port}/callback/netatmo")
    );
    connect.until(Duration::from_secs(10), |l| {
        l.contains("finishes connecting")
    });
    let page = allow_in_browser(&link).await;
    assert_eq!(page.status(), 200);
    let (status, output) = connect.finish(Duration::from_secs(20));
    assert!(status.success(), "{output}");
    assert_eq!(
        qr_codes(&output),
        vec![link.clone()],
        "the QR code printed under the link scans to the link"
    );
    assert!(
        output.contains("Connected Netatmo: healthy, access token expires in 2 h 59 min")
            || output.contains("Connected Netatmo: healthy, access token expires in 3 h 0 min"),
        "{output}"
    );
    assert!(
        output.contains("Next: `homehook discover netatmo`"),
        "{output}"
    );

    // The owner adds an action from discover's ids and a key for it; actions --qr shows it.
    let key = run(
        &dir,
        &[
            "key",
            "new",
            "--for",
            "home_status",
            "--id",
            "phone",
            "--json",
        ],
    )
    .await;
    let key: serde_json::Value = serde_json::from_str(&key.stdout).unwrap();
    let action_key = key["key"].as_str().unwrap().to_string();
    homehook_tests::leak_watch::issued("action_key", &action_key);
    let mut config = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    config.push_str(&format!(
        "\n[actions.home_status]\nconnection = \"netatmo\"\nbuiltin = \"home_status\"\nwith = {{ home_id = \"{HOME}\" }}\n{}",
        key["config"].as_str().unwrap()
    ));
    std::fs::write(dir.join("homehook.toml"), config).unwrap();
    let actions = run(&dir, &["actions", "--qr"]).await;
    assert!(actions.ok, "{actions}");
    let url = format!("http://127.0.0.1:{port}/a/home_status");
    assert!(actions.stdout.contains(&url), "{actions}");
    assert_eq!(qr_codes(&actions.stdout), vec![url.clone()], "{actions}");
    assert!(
        !actions.stdout.contains(&action_key),
        "no key given, none shown"
    );

    // status: one aligned table.
    let status = run(&dir, &["status"]).await;
    assert!(status.ok, "{status}");
    let table = support::table(&status.stdout);
    assert_eq!(
        table[0],
        ["CONNECTION", "PROVIDER", "HEALTH", "EXPIRES", "REFRESHED"],
        "{status}"
    );
    assert_eq!(table[1][..3], ["netatmo", "netatmo", "healthy"], "{status}");
    assert!(
        ["in 3 h 0 min", "in 2 h 59 min"].contains(&table[1][3].as_str()),
        "{status}"
    );
    assert!(table[1][4].ends_with(" s ago"), "{status}");
    let json = run(&dir, &["status", "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["connections"][0]["health"], "healthy");

    // doctor: nothing fails now (the running server has the old config, which is fine).
    let doctor = run(&dir, &["doctor"]).await;
    assert_eq!(doctor.code, Some(0), "{doctor}");
    assert!(!doctor.stdout.contains("FAIL"), "{doctor}");
    for line in [
        "ok    secret netatmo: [netatmo] in ",
        &format!("ok    server: homehook answers at http://127.0.0.1:{port}"),
        &format!("ok    redirect uri netatmo: register http://127.0.0.1:{port}/callback/netatmo"),
        "ok    connection netatmo: healthy, access token expires in ",
        "ok    clock vs 127.0.0.1:",
    ] {
        assert!(doctor.stdout.contains(line), "{line}\n{doctor}");
    }
    let doctor = run(&dir, &["doctor", "--json"]).await;
    let checks: Vec<serde_json::Value> = serde_json::from_str(&doctor.stdout).unwrap();
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{doctor}");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "connection netatmo" && c["status"] == "ok")
    );

    // The owner revokes homehook's access at Netatmo: the next vendor call finds out, and
    // status and doctor say to connect again; connecting again heals it.
    fake.vendor.revoke_refresh_tokens();
    fake.vendor.expire_access_tokens();
    let discover = run(&dir, &["discover", "netatmo"]).await;
    assert!(!discover.ok, "{discover}");
    let status = run(&dir, &["status"]).await;
    let table = support::table(&status.stdout);
    assert_eq!(table[1][2], "reauth needed", "{status}");
    assert!(
        status.stdout.contains(&format!(
            "netatmo: reconnect: http://127.0.0.1:{port}/connect/netatmo?key=<admin key> (or run `homehook connect netatmo`)"
        )),
        "{status}"
    );
    let doctor = run(&dir, &["doctor"]).await;
    assert_eq!(doctor.code, Some(1), "{doctor}");
    assert!(
        doctor
            .stdout
            .contains("FAIL  connection netatmo: needs you to connect again: ")
            && doctor
                .stdout
                .contains("      fix: reconnect: `homehook connect netatmo`"),
        "{doctor}"
    );
    let (mut connect, link) = start_connect(&dir, "netatmo", &["--no-qr"]);
    assert_eq!(allow_in_browser(&link).await.status(), 200);
    let (status, output) = connect.finish(Duration::from_secs(20));
    assert!(status.success(), "{output}");
    assert!(output.contains("Connected Netatmo: healthy"), "{output}");
    assert_eq!(run(&dir, &["doctor"]).await.code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_a_server_says_to_start_it_first() {
    let fake = netatmo().await;
    let (_tmp, dir) = workdir();
    let port = free_port();
    init_for_fake(&dir, &fake, port).await;
    let out = run(&dir, &["connect", "netatmo"]).await;
    assert!(!out.ok, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "Start `homehook serve` first (the vendor sends you back to http://127.0.0.1:{port}/callback/netatmo)"
        )),
        "{out}"
    );
    assert!(
        !out.stdout.contains("/oauth2/authorize"),
        "no link that cannot work: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reports_a_declined_consent_and_a_link_nobody_opens() {
    let fake = netatmo().await;
    let (_tmp, dir) = workdir();
    init_for_fake(&dir, &fake, free_port()).await;
    let _server = serve(&dir, "homehook-serve-declined");

    // Nobody opens the link: it gives up at --timeout with what to check.
    let started = std::time::Instant::now();
    let (mut connect, _) = start_connect(&dir, "netatmo", &["--timeout", "2", "--no-qr"]);
    let (status, output) = connect.finish(Duration::from_secs(20));
    assert!(!status.success(), "{output}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(qr_codes(&output).is_empty(), "--no-qr: {output}");

    // The owner declines at the vendor: the command says so instead of waiting for the timeout.
    fake.vendor.update(|s| s.deny_consent = true);
    let (mut connect, link) = start_connect(&dir, "netatmo", &["--timeout", "60", "--no-qr"]);
    let page = allow_in_browser(&link).await;
    assert_eq!(page.status(), 403);
    let started = std::time::Instant::now();
    let (status, _) = connect.finish(Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "well before the 60 s timeout"
    );

    // Its error message, with --json (the link on stderr, no JSON for a failure).
    let out = run(&dir, &["connect", "netatmo", "--timeout", "1", "--json"]).await;
    assert!(!out.ok);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr.contains("netatmo was not connected within 1 s")
            && out
                .stderr
                .contains("is the redirect URI registered with your Netatmo app"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_a_password_connects_at_once_and_names_the_secret_when_refused() {
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(ManualClock::new(SystemClock.now()), settings.clone()).await;
    let (_tmp, dir) = workdir();
    let out = run(&dir, &["init", "--vendors", "somfy", "--json"]).await;
    assert!(out.ok, "{out}");
    let config = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            "{config}\n[providers.somfy_protect]\ntoken_url = \"{}/oauth/oauth/v2/token/jwt\"\napi_base = \"{}\"\n",
            fake.vendor.base,
            fake.api_base()
        ),
    )
    .unwrap();
    let fill = |password: &str| {
        format!(
            "[somfy_protect]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nusername = \"{}\"\npassword = \"{password}\"\n",
            settings.client_id, settings.client_secret, settings.account.0
        )
    };
    write_secrets(&dir.join("secrets.toml"), &fill("not the password"));
    let out = run(&dir, &["connect", "somfy_protect"]).await;
    assert!(!out.ok, "{out}");
    assert!(
        out.stderr
            .contains("Check the [somfy_protect] entry of the secrets file"),
        "{out}"
    );

    write_secrets(&dir.join("secrets.toml"), &fill(&settings.account.1));
    let out = run_with(&dir, &["connect", "somfy_protect", "--json"], &[]).await;
    assert!(out.ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["connection"], "somfy_protect");
    assert_eq!(v["connected"], true);
    assert_eq!(v["health"], "healthy");
    let left = v["expires_in_secs"].as_i64().unwrap();
    assert!((3500..=3600).contains(&left), "{v}");
}

/// A built-in added after connecting may need a scope the owner never granted (Netatmo's
/// persons need `write_camera`): `doctor` and `discover` name the action, the scope and the
/// command that fixes it, and connecting again asks the vendor for that scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builtin_needing_a_scope_the_grant_lacks_is_named_with_the_fix() {
    let fake = netatmo().await;
    let (_tmp, dir) = workdir();
    let port = free_port();
    init_for_fake(&dir, &fake, port).await;
    let _server = serve(&dir, "homehook-serve-scopes");
    let (mut connect, link) = start_connect(&dir, "netatmo", &["--no-qr"]);
    let asked = |link: &str| {
        url::Url::parse(link)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    assert!(!asked(&link).contains("write_camera"), "{link}");
    assert_eq!(allow_in_browser(&link).await.status(), 200);
    let (status, output) = connect.finish(Duration::from_secs(20));
    assert!(status.success(), "{output}");
    let doctor = run(&dir, &["doctor"]).await;
    assert!(!doctor.stdout.contains("scopes of"), "{doctor}");

    let mut config = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    config.push_str(&format!(
        "\n[actions.away]\nconnection = \"netatmo\"\nbuiltin = \"persons_away\"\nwith = {{ home_id = \"{HOME}\" }}\nkey_hash = \"sha256:{}\"\n",
        "0".repeat(64)
    ));
    std::fs::write(dir.join("homehook.toml"), config).unwrap();

    let doctor = run(&dir, &["doctor"]).await;
    assert!(
        doctor.stdout.contains(
            "warn  scopes of netatmo: action away (persons_away) needs write_camera, which the vendor did not grant this connection"
        ) && doctor
            .stdout
            .contains("      fix: reconnect to grant them: `homehook connect netatmo`"),
        "{doctor}"
    );
    let discover = run(&dir, &["discover", "netatmo"]).await;
    assert!(discover.ok, "{discover}");
    assert!(
        discover.stdout.contains(
            "warning: action away (persons_away) needs write_camera, which the vendor did not grant this connection"
        ) && discover
            .stdout
            .contains("Reconnect to grant them: homehook connect netatmo"),
        "{discover}"
    );
    // Connecting again asks for it, on top of the defaults.
    let (_connect, link) = start_connect(&dir, "netatmo", &["--no-qr"]);
    let scopes = asked(&link);
    for scope in ["read_station", "write_thermostat", "write_camera"] {
        assert!(scopes.split(' ').any(|s| s == scope), "{scope}: {link}");
    }
}

/// `homehook serve` killed (SIGKILL) after Netatmo rotated the refresh token and before the
/// new one reached the store: that token is lost (the vendor killed the old one). The next
/// `homehook serve` finds the interrupted renewal at start-up — its process is gone, so there
/// is no lease to wait out — marks the connection `reauth_needed`, tells the owner with the
/// reconnect link, and the first action answers 409 at once, not 503 "checking again".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_killed_mid_rotation_is_found_at_restart_and_the_owner_told() {
    use homehook_tests::fake_vendor::TokenFault;
    use homehook_tests::webhook_sink::WebhookSink;

    let fake = netatmo().await;
    let sink = WebhookSink::start().await;
    let (_tmp, dir) = workdir();
    let port = free_port();
    init_for_fake(&dir, &fake, port).await;
    let key = run(
        &dir,
        &[
            "key",
            "new",
            "--for",
            "home_status",
            "--id",
            "phone",
            "--json",
        ],
    )
    .await;
    let key: serde_json::Value = serde_json::from_str(&key.stdout).unwrap();
    let action_key = key["key"].as_str().unwrap().to_string();
    homehook_tests::leak_watch::issued("action_key", &action_key);
    let mut config = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    config.push_str(&format!(
        "\n[notify]\nsecret = \"hook\"\nformat = \"json\"\n\n[actions.home_status]\nconnection = \"netatmo\"\nbuiltin = \"home_status\"\nwith = {{ home_id = \"{HOME}\" }}\n{}",
        key["config"].as_str().unwrap()
    ));
    std::fs::write(dir.join("homehook.toml"), config).unwrap();
    homehook_tests::leak_watch::issued("webhook_signing_key", "whsec-crash");
    let secrets = std::fs::read_to_string(dir.join("secrets.toml")).unwrap();
    write_secrets(
        &dir.join("secrets.toml"),
        &format!(
            "{secrets}\n[hook]\nurl = \"{}\"\nsigning_key = \"whsec-crash\"\n",
            sink.url
        ),
    );

    let server = serve(&dir, "homehook-serve-crash-1");
    let (mut connect, link) = start_connect(&dir, "netatmo", &["--no-qr"]);
    assert_eq!(allow_in_browser(&link).await.status(), 200);
    assert!(connect.finish(Duration::from_secs(20)).0.success());
    let action = format!("http://127.0.0.1:{port}/a/home_status");
    let client = reqwest::Client::new();
    let status = |r: reqwest::Result<reqwest::Response>| r.map(|r| r.status().as_u16());
    assert_eq!(
        status(client.post(&action).bearer_auth(&action_key).send().await).unwrap(),
        200
    );

    // The vendor says the access token expired; the renewal it starts rotates the refresh
    // token at Netatmo, whose answer is held: serve is killed while it waits for it.
    fake.vendor.expire_access_tokens();
    fake.vendor.fail_token_calls(TokenFault::HoldAnswer, 1);
    let pending = tokio::spawn({
        let request = client.post(&action).bearer_auth(&action_key);
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    let held_by = std::time::Instant::now() + Duration::from_secs(20);
    while fake.vendor.held_answers() == 0 {
        assert!(
            std::time::Instant::now() < held_by,
            "no renewal reached Netatmo"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server); // SIGKILL, and wait for it
    assert!(
        pending.await.unwrap().is_err(),
        "the caller lost its connection"
    );
    fake.vendor.release_held_answer();

    let restarted = std::time::Instant::now();
    let (_server, console) = support::serve_with_console(&dir, "homehook-serve-crash-2");
    assert!(
        console
            .iter()
            .any(|l| l.contains("whose token renewal was interrupted")),
        "{console:?}"
    );
    let answer = client
        .post(&action)
        .bearer_auth(&action_key)
        .send()
        .await
        .unwrap();
    let waited = restarted.elapsed();
    assert_eq!(answer.status(), 409);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "reauth_needed", "{body}");
    assert!(
        waited < Duration::from_secs(15),
        "no lease of the dead process waited out: {waited:?}"
    );
    let told = sink
        .received()
        .into_iter()
        .map(|r| r.json())
        .find(|n| n["event"] == "reauth_needed")
        .unwrap_or_else(|| panic!("no reauth_needed notification: {:?}", sink.received().len()));
    assert_eq!(told["connection"], "netatmo");
    assert!(
        told["reconnect_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/connect/netatmo")),
        "{told}"
    );
}
