//! `homehook serve` and the published config, as the owner lives with it: a key revoked with
//! the CLI while the server runs is refused within seconds, no restart; a restart never brings
//! it back; an edit of the file is published when the server starts; a file that fell behind
//! the published config does not undo it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use homehook_core::keys::ActionKey;
use support::{Server, run};

/// A config whose action `away` is opened by its own key and by `[keys.phone]`.
fn config(phone: &ActionKey, own: &ActionKey) -> String {
    format!(
        "# the owner's notes stay\n[connections.home]\nprovider = \"netatmo\"\n\n[actions.away]\nconnection = \"home\"\npath = \"/api/setthermmode\"\nkey_hash = \"{}\"\n\n[keys.phone]\nhash = \"{}\"\nactions = [\"away\"]\n",
        own.hash(),
        phone.hash()
    )
}

async fn status_of(base: &str, key: &ActionKey) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/a/away"))
        .bearer_auth(key.expose())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Starts `homehook serve` in `dir` and collects its start-up console lines.
fn serve(dir: &Path, log: &str) -> (Server, Vec<String>) {
    support::serve_with_console(dir, log)
}

/// The serve log written under `log`'s name by this test process.
fn log_text(log: &str) -> String {
    let path =
        homehook_tests::leak_watch::logs_dir().join(format!("{log}-{}.log", std::process::id()));
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn serve_follows_revocations_and_a_restart_never_undoes_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let phone = ActionKey::generate();
    let own = ActionKey::generate();
    homehook_tests::leak_watch::issued("action_key", phone.expose());
    homehook_tests::leak_watch::issued("action_key", own.expose());
    std::fs::write(dir.join("homehook.toml"), config(&phone, &own)).unwrap();

    // First start: the file is published as version 1.
    let (server, console) = serve(dir, "published-1");
    assert!(
        console
            .iter()
            .any(|l| l == "published homehook.toml as version 1"),
        "{console:?}"
    );
    // Past the gate (no account connected yet): the key opens the action.
    assert_eq!(status_of(&server.base, &phone).await, 409);

    // Revoked from the CLI while the server runs: refused within seconds, no restart.
    let revoke = run(dir, &["key", "revoke", "phone"]).await;
    assert!(revoke.ok, "{revoke}");
    assert!(
        revoke
            .stdout
            .contains("revoked phone (published as version 2)"),
        "{revoke}"
    );
    assert!(
        revoke
            .stdout
            .contains("homehook.toml updated to match (version 2)"),
        "{revoke}"
    );
    let revoked_at = Instant::now();
    while status_of(&server.base, &phone).await != 401 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "still open 5 s after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = revoked_at.elapsed();
    eprintln!(
        "serve refused the revoked key {:.2} s after `key revoke`",
        took.as_secs_f64()
    );
    let file = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    assert!(file.starts_with("# the owner's notes stay\n"), "{file}");
    assert!(file.contains("revoked = true"), "{file}");
    // The other key still works.
    assert_eq!(status_of(&server.base, &own).await, 409);
    drop(server);

    // A restart: the file matches the published config; nothing is published, still refused.
    let (server, console) = serve(dir, "published-2");
    assert!(
        !console.iter().any(|l| l.starts_with("published ")),
        "{console:?}"
    );
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("config: published version 2")),
        "{console:?}"
    );
    assert_eq!(status_of(&server.base, &phone).await, 401);
    drop(server);

    // A key made with another copy of the file (as from another machine) leaves homehook.toml
    // behind the published config.
    let copy = dir.join("copy.toml");
    std::fs::write(&copy, &file).unwrap();
    let watch = run(
        dir,
        &[
            "--config",
            copy.to_str().unwrap(),
            "key",
            "new",
            "--for",
            "away",
            "--id",
            "watch",
            "--json",
        ],
    )
    .await;
    assert!(watch.ok, "{watch}");
    let watch: serde_json::Value = serde_json::from_str(&watch.stdout).unwrap();
    let watch_key = watch["key"].as_str().unwrap().to_string();
    homehook_tests::leak_watch::issued("action_key", &watch_key);
    assert_eq!(watch["version"], 3);
    // The owner then edits homehook.toml (behind: it lacks `watch`) and restarts: the server
    // does not publish it over version 3, and says why.
    std::fs::write(dir.join("homehook.toml"), format!("{file}# an edit\n")).unwrap();
    let (server, console) = serve(dir, "published-3");
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("config: published version 3")),
        "{console:?}"
    );
    let log = log_text("published-3");
    assert!(log.contains("homehook config diff"), "{log}");
    let watch_status = reqwest::Client::new()
        .post(format!("{}/a/away", server.base))
        .bearer_auth(&watch_key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(watch_status, 409, "the key made from the copy still works");
    assert_eq!(status_of(&server.base, &phone).await, 401);

    // doctor says so, with what to do.
    let doctor = run(dir, &["doctor", "--json"]).await;
    let checks: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let published = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "published config")
        .unwrap_or_else(|| panic!("{doctor}"));
    assert_eq!(published["status"], "warn", "{published}");
    assert!(
        published["detail"]
            .as_str()
            .unwrap()
            .contains("the server runs version 3"),
        "{published}"
    );

    // `config diff` shows it, `config pull` takes it, and then an edit publishes on `push`
    // while the server runs.
    let diff = run(dir, &["config", "diff"]).await;
    assert_eq!(diff.code, Some(1), "{diff}");
    assert!(diff.stdout.contains("+# an edit"), "{diff}");
    assert!(diff.stdout.contains("-[keys.watch]"), "{diff}");
    let refused = run(dir, &["config", "push"]).await;
    assert_eq!(refused.code, Some(1), "{refused}");
    let pull = run(dir, &["config", "pull", "--force"]).await;
    assert!(pull.ok, "{pull}");
    let pulled = std::fs::read_to_string(dir.join("homehook.toml")).unwrap();
    assert!(pulled.contains("[keys.watch]"), "{pulled}");
    std::fs::write(
        dir.join("homehook.toml"),
        pulled.replace("[keys.phone]", "[keys.phone]\n# retired"),
    )
    .unwrap();
    let push = run(dir, &["config", "push"]).await;
    assert!(push.ok, "{push}");
    assert!(
        push.stdout.contains("published homehook.toml as version 4"),
        "{push}"
    );
    drop(server);
}
