//! The commands that guide a newcomer, run as the real `homehook` binary: `init` writes files
//! that load, `doctor` finds what is broken and says how to fix it, `actions --qr` prints QR
//! codes that scan to the URLs (with the key only when given), and shell completions.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;

use homehook_core::Config;
use homehook_core::keys::KeyHash;
use homehook_core::secrets::{LocalSecrets, Secrets};
use support::{free_port, qr_codes, run, run_with, workdir, write_secrets};

#[tokio::test]
async fn init_writes_a_config_that_loads_a_private_secrets_template_and_an_admin_key() {
    let (_tmp, dir) = workdir();
    let out = run(
        &dir,
        &["init", "--vendors", "netatmo,somfy_protect", "--json"],
    )
    .await;
    assert!(out.ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let key = v["admin_key"].as_str().unwrap();
    homehook_tests::leak_watch::issued("admin_key", key);

    let config = Config::load(&dir.join("homehook.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.connections.keys().collect::<Vec<_>>(),
        ["netatmo", "somfy_protect"]
    );
    let admin: &KeyHash = config.server.admin_key_hash.as_ref().unwrap();
    assert!(
        admin.verify(key),
        "the printed key is the one whose hash is in the config"
    );
    assert_eq!(v["admin_key_hash"], admin.to_string());
    assert_eq!(
        v["connections"][0]["redirect_uri"],
        "http://127.0.0.1:8080/callback/netatmo"
    );
    let text = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    assert!(!text.contains(key), "only the hash is written");
    assert!(text.contains("# [actions.netatmo_therm_mode]"), "{text}");
    assert!(
        text.contains("#   therm_mode "),
        "the built-ins are listed: {text}"
    );

    let secrets_path = dir.join("secrets.toml");
    let mode = std::fs::metadata(&secrets_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let secrets = LocalSecrets::load(Some(&secrets_path)).unwrap();
    let netatmo = secrets.entry("netatmo").await.unwrap();
    assert_eq!(
        netatmo,
        serde_json::json!({"client_id": "", "client_secret": ""})
    );
    let somfy = secrets.entry("somfy_protect").await.unwrap();
    for field in ["client_id", "client_secret", "username", "password"] {
        assert_eq!(somfy[field], "", "the password grant's {field}");
    }

    // Twice: refused without --force, and nothing is touched.
    let again = run(&dir, &["init", "--vendors", "homey"]).await;
    assert!(!again.ok);
    assert!(
        again.stderr.contains("homehook.toml already exists") && again.stderr.contains("--force"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("homehook.toml")).unwrap(),
        text
    );
    let forced = run(&dir, &["init", "--vendors", "homey", "--force"]).await;
    assert!(forced.ok, "{forced}");
    for step in [
        "Admin key (shown only now",
        "Register the redirect URI of each vendor app: http://127.0.0.1:8080/callback/homey.",
        "`homehook serve`",
        "`homehook connect homey`",
        "`homehook actions --qr`",
    ] {
        assert!(forced.stdout.contains(step), "{step}\n{forced}");
    }
    let config = Config::load(&dir.join("homehook.toml")).unwrap();
    assert_eq!(config.connections.keys().collect::<Vec<_>>(), ["homey"]);
}

#[tokio::test]
async fn init_needs_vendors_when_it_cannot_ask_and_names_the_known_ones() {
    let (_tmp, dir) = workdir();
    let out = run(&dir, &["init"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("--vendors") && out.stderr.contains("somfy_protect"),
        "{out}"
    );
    let out = run(&dir, &["init", "--vendors", "netatmoo"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("unknown vendor \"netatmoo\" (known: netatmo, legrand"),
        "{out}"
    );
    assert!(!dir.join("homehook.toml").exists());
    // --path puts both files elsewhere, and the next steps name the config.
    let out = run(
        &dir,
        &["init", "--vendors", "myfox", "--path", "conf/home.toml"],
    )
    .await;
    assert!(out.ok, "{out}");
    assert!(dir.join("conf/secrets.toml").exists());
    assert!(
        out.stdout
            .contains("`homehook --config conf/home.toml serve`"),
        "{out}"
    );
    Config::load(&dir.join("conf/home.toml")).unwrap();
}

#[tokio::test]
async fn doctor_on_a_fresh_init_fails_with_a_fix_for_each_problem() {
    let (_tmp, dir) = workdir();
    assert!(run(&dir, &["init", "--vendors", "netatmo,somfy"]).await.ok);
    // No server on the configured port, and vendors that cannot be reached (the tests stay on
    // loopback).
    let port = free_port();
    let vendor = format!("127.0.0.1:{}", free_port());
    let config = std::fs::read_to_string(dir.join("homehook.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            "{config}\n[providers.netatmo]\ntoken_url = \"http://{vendor}/oauth2/token\"\n\
             [providers.somfy_protect]\ntoken_url = \"http://{vendor}/oauth/oauth/v2/token/jwt\"\n"
        ),
    )
    .unwrap();
    // The owner filled Netatmo's id but not its secret.
    write_secrets(
        &dir.join("secrets.toml"),
        "[netatmo]\nclient_id = \"abc\"\nclient_secret = \"\"\n",
    );
    let out = run(&dir, &["doctor"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    let text = &out.stdout;
    for expected in [
        "FAIL  secret netatmo: [netatmo] in ",
        "has no value for client_secret",
        "      fix: fill in client_secret = \"...\" in [netatmo] in ",
        "FAIL  secret somfy_protect: no secret \"somfy_protect\" for connection somfy_protect",
        "      fix: add to ",
        "username = \"...\", password = \"...\"",
        &format!("warn  server: nothing answers at http://127.0.0.1:{port}/healthz"),
        "      fix: start `homehook serve`",
        "FAIL  connection netatmo: not connected",
        "warn  connection somfy_protect: not connected yet",
        &format!("warn  clock vs {vendor}: cannot reach {vendor}"),
        "checks failed",
    ] {
        assert!(text.contains(expected), "{expected}\n{out}");
    }
    // Every problem has a fix line right under it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("FAIL") || line.starts_with("warn") {
            assert!(lines[i + 1].starts_with("      fix: "), "{line}");
        }
    }

    let json = run(&dir, &["doctor", "--json"]).await;
    assert_eq!(json.code, Some(1));
    let checks: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let secret = checks
        .iter()
        .find(|c| c["check"] == "secret netatmo")
        .unwrap();
    assert_eq!(secret["status"], "fail");
    assert!(secret["fix"].as_str().unwrap().contains("client_secret"));
    assert!(
        checks
            .iter()
            .all(|c| c.get("detail").is_some() && c.get("fix").is_some())
    );

    // A secrets file others can read: homehook refuses it, doctor says how to fix it.
    std::fs::set_permissions(
        dir.join("secrets.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = run(&dir, &["doctor"]).await;
    assert!(
        out.stdout.contains("(mode 644), so homehook refuses it"),
        "{out}"
    );
    assert!(out.stdout.contains("fix: chmod 600 "), "{out}");

    // A broken config: the file, the field and the problem.
    std::fs::write(
        dir.join("homehook.toml"),
        "[connections.home]\nprovider = \"netatmoo\"\n",
    )
    .unwrap();
    let out = run(&dir, &["doctor"]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout.contains(
            "fix: edit homehook.toml at connections.home.provider: unknown provider \"netatmoo\""
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_when_the_clock_is_off_from_a_vendors() {
    use axum::http::header;
    // A token endpoint whose Date is five minutes behind this machine's.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(|| async {
        let behind = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(300);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&behind)
            .unwrap();
        ([(header::DATE, date)], "")
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let (_tmp, dir) = workdir();
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n[providers.netatmo]\ntoken_url = \"http://{addr}/oauth2/token\"\n[connections.home]\nprovider = \"netatmo\"\n",
            free_port()
        ),
    )
    .unwrap();
    let out = run(&dir, &["doctor"]).await;
    server.abort();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&format!("clock vs {addr}")))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("warn"), "{out}");
    assert!(line.contains(&format!("ahead of {addr}'s")), "{line}");
    let secs: i64 = line
        .split("clock is ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((298..=302).contains(&secs), "{line}");
}

#[tokio::test]
async fn actions_qr_codes_scan_to_the_urls_and_hold_the_key_only_when_given() {
    let (_tmp, dir) = workdir();
    let key = run(
        &dir,
        &["key", "new", "--for", "lights", "--id", "phone", "--json"],
    )
    .await;
    let key: serde_json::Value = serde_json::from_str(&key.stdout).unwrap();
    let phone = key["key"].as_str().unwrap().to_string();
    homehook_tests::leak_watch::issued("action_key", &phone);
    let other = homehook_core::keys::ActionKey::generate();
    std::fs::write(
        dir.join("homehook.toml"),
        format!(
            "[server]\npublic_url = \"https://home.example.com\"\n[connections.home]\nprovider = \"netatmo\"\n\
             [actions.lights]\nconnection = \"home\"\npath = \"/l\"\n\
             [actions.temperature]\nconnection = \"home\"\nmethod = \"GET\"\npath = \"/t\"\nmethods = [\"GET\", \"POST\"]\nkey_hash = \"{}\"\n{}",
            other.hash(),
            key["config"].as_str().unwrap()
        ),
    )
    .unwrap();

    let out = run(&dir, &["actions", "--qr"]).await;
    assert!(out.ok, "{out}");
    assert_eq!(
        qr_codes(&out.stdout),
        [
            "https://home.example.com/a/lights",
            "https://home.example.com/a/temperature"
        ]
    );
    assert!(
        out.stdout.contains("POST only: use it in a shortcut"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("Opening it in the phone's browser runs it (GET allowed)"),
        "{out}"
    );
    assert!(out.stderr.is_empty(), "no key, no warning: {out}");

    // With the key: a ready-to-scan URL of the action it opens, and a warning.
    let out = run(&dir, &["actions", "lights", "--qr", "--key", &phone]).await;
    assert!(out.ok, "{out}");
    let with_key = format!("https://home.example.com/a/lights?key={phone}");
    assert_eq!(qr_codes(&out.stdout), [with_key.as_str()]);
    assert!(
        out.stderr
            .contains("warning: the QR code below holds the action key"),
        "{out}"
    );
    // From the environment, for all actions: only the one it opens gets it.
    let out = run_with(
        &dir,
        &["actions", "--qr"],
        &[("HOMEHOOK_ACTION_KEY", &phone)],
    )
    .await;
    assert_eq!(
        qr_codes(&out.stdout),
        [
            with_key.clone(),
            "https://home.example.com/a/temperature".to_string()
        ]
    );
    assert!(
        out.stdout
            .contains("(the key given does not open this action"),
        "{out}"
    );
    // A key that does not open the action named: refused, nothing printed.
    let out = run(&dir, &["actions", "temperature", "--qr", "--key", &phone]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("this key does not open action \"temperature\""),
        "{out}"
    );
    assert!(qr_codes(&out.stdout).is_empty());

    // JSON stays data: no QR text; the keyed URL only with the key.
    let out = run(&dir, &["actions", "--json", "--key", &phone]).await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["url_with_key"], with_key.as_str());
    assert!(rows[1].get("url_with_key").is_none());
    let out = run(&dir, &["actions", "--json", "--qr"]).await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["url"], "https://home.example.com/a/lights");
    assert!(!out.stdout.contains('█'));

    // Unknown action.
    let out = run(&dir, &["actions", "lamp", "--qr"]).await;
    assert!(
        !out.ok
            && out
                .stderr
                .contains("no action \"lamp\" in the config (it has: lights, temperature)"),
        "{out}"
    );
}

#[tokio::test]
async fn completions_cover_every_command() {
    let (_tmp, dir) = workdir();
    let out = run(&dir, &["completions", "bash"]).await;
    assert!(out.ok, "{out}");
    for command in [
        "init",
        "serve",
        "connect",
        "status",
        "actions",
        "discover",
        "doctor",
        "completions",
    ] {
        assert!(out.stdout.contains(command), "{command}");
    }
    assert!(
        out.stdout.contains("complete -F _homehook"),
        "a bash completion script"
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = run(&dir, &["completions", shell]).await;
        assert!(out.ok && out.stdout.contains("doctor"), "{shell}: {out}");
    }
    let out = run(&dir, &["completions", "tcsh"]).await;
    assert!(!out.ok);
}
