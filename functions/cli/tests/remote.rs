//! The CLI's remote mode end to end: the real `homehook` binary run against a "deployed stack"
//! that is a moto table and secret, with a named target (`homehook target add … --endpoint`),
//! the user's AWS credentials taken from the environment as `aws_config` finds them. Then the
//! stack's actions router, built as a Lambda container builds it, on the same table: what the
//! commands published is what it enforces.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../aws/tests/moto/mod.rs"]
mod moto;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use homehook_aws::lambda::{Settings, live_with};
use homehook_aws::{DynamoStore, local};
use homehook_core::keys::{ActionKey, KeyHash};

const BIN: &str = env!("CARGO_BIN_EXE_homehook");
const TABLE: &str = "homehook";
const SECRET: &str = "homehook/clients";
const URL: &str = "https://hooks.example.com";

/// One command's outcome.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A machine the owner runs `homehook` on: its own home, targets file and working directory.
struct Machine {
    name: &'static str,
    home: PathBuf,
    cwd: PathBuf,
}

/// Every command run, in order, for the transcript printed at the end.
static TRANSCRIPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl Machine {
    fn new(root: &Path, name: &'static str) -> Self {
        let home = root.join(name);
        let cwd = home.join("work");
        std::fs::create_dir_all(&cwd).unwrap();
        // Empty AWS config and credentials files: no profile of the developer's interferes
        // (and, unlike missing ones, the SDK has nothing to warn about in the transcript).
        std::fs::write(home.join("aws-config"), "").unwrap();
        std::fs::write(home.join("aws-credentials"), "").unwrap();
        Self { name, home, cwd }
    }

    fn config(&self) -> PathBuf {
        self.cwd.join("homehook.toml")
    }

    /// Runs `homehook <args>` in the working directory, with AWS credentials in the
    /// environment only (no profile file can interfere), and records it.
    fn run(&self, args: &[&str]) -> Ran {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("HOMEHOOK_TARGETS", self.home.join("targets.toml"))
            .env("HOMEHOOK_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", self.home.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run homehook");
        let ran = Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // The scan for leaked secrets reads what the binary wrote to standard error.
        {
            use std::io::Write;
            let mut log = homehook_tests::leak_watch::log_file("homehook-remote");
            let _ = log.write_all(ran.stderr.as_bytes());
        }
        let mut entry = format!("[{}] $ homehook {}\n", self.name, args.join(" "));
        for line in ran.stdout.lines().chain(ran.stderr.lines()) {
            entry.push_str(&format!("  {}\n", redact(line)));
        }
        entry.push_str(&format!("  (exit {})\n", ran.code));
        eprint!("{entry}");
        TRANSCRIPT.lock().unwrap().push(entry);
        ran
    }
}

/// The line with every `hh_…` key replaced: the transcript is quoted, keys are not.
fn redact(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("hh_") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 3..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        if len >= 20 {
            out.push_str("hh_<redacted>");
        } else {
            out.push_str(&rest[at..at + 3 + len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Exit 0, and nothing on standard error: what the user sees is the command's answer only.
fn ok(ran: &Ran, what: &str) {
    assert_eq!(
        ran.code, 0,
        "{what} failed:\n{}\n{}",
        ran.stdout, ran.stderr
    );
    assert!(
        ran.stderr.is_empty(),
        "{what} said on stderr:\n{}",
        ran.stderr
    );
}

/// POSTs `/a/away` with `key` on the loopback server; the status and the error code.
async fn call(base: &str, key: &str) -> (u16, serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{base}/a/away"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body = answer.json().await.unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn remote_mode_publishes_edits_keys_and_refuses_a_lost_update() {
    homehook_tests::leak_watch::init();
    let moto = moto::moto();
    let endpoint = moto.endpoint.clone();

    // The "deployed stack": its table (the template's schema) and its secret.
    DynamoStore::new(local::dynamodb(&endpoint), TABLE)
        .create_table()
        .await
        .unwrap();
    local::secretsmanager(&endpoint)
        .create_secret()
        .name(SECRET)
        // Empty but for another vendor's entry: `secrets push` fills it and keeps that one.
        .secret_string(r#"{"legrand": {"client_id": "lg", "client_secret": "lgs"}}"#)
        .send()
        .await
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let a = Machine::new(root.path(), "laptop");
    let admin = ActionKey::generate();
    let phone = ActionKey::generate();
    homehook_tests::leak_watch::issued("admin_key", admin.expose());
    homehook_tests::leak_watch::issued("action_key", phone.expose());
    let original = format!(
        "# The owner's words: kept through push, key edits and pull.\n\
         [server]\n\
         admin_key_hash = \"{admin}\"\n\
         \n\
         [connections.home]\n\
         provider = \"netatmo\"\n\
         \n\
         [actions.away]\n\
         connection = \"home\"\n\
         path = \"/api/setthermmode\"\n\
         \n\
         [keys.phone]  # the owner's phone\n\
         hash = \"{phone}\"\n\
         actions = [\"away\"]\n",
        admin = admin.hash(),
        phone = phone.hash(),
    );
    std::fs::write(a.config(), &original).unwrap();

    // target add: saved, and the next step named.
    let added = a.run(&[
        "target",
        "add",
        "t",
        "--table",
        TABLE,
        "--secret",
        SECRET,
        "--url",
        URL,
        "--region",
        "eu-west-1",
        "--endpoint",
        &endpoint,
    ]);
    ok(&added, "target add");
    assert!(
        added
            .stdout
            .contains("target t → https://hooks.example.com/ (table homehook)"),
        "{}",
        added.stdout
    );
    assert!(
        added.stdout.contains("homehook --target t config push"),
        "{}",
        added.stdout
    );
    let saved = std::fs::read_to_string(a.home.join("targets.toml")).unwrap();
    assert!(saved.contains(&endpoint), "{saved}");

    // secrets push: the local secrets file into the stack's secret, names printed, never values.
    let secrets_file = a.config().with_file_name("secrets.toml");
    std::fs::write(
        &secrets_file,
        "[netatmo]\nclient_id = \"id\"\nclient_secret = \"netatmo-client-secret-value\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &secrets_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let filled = a.run(&[
        "--target",
        "t",
        "secrets",
        "push",
        "--file",
        secrets_file.to_str().unwrap(),
    ]);
    ok(&filled, "secrets push");
    assert!(
        filled.stdout.contains("into the secret of t: netatmo"),
        "{}",
        filled.stdout
    );
    assert!(
        !filled.stdout.contains("netatmo-client-secret-value"),
        "{}",
        filled.stdout
    );
    let stored: serde_json::Value = serde_json::from_str(
        local::secretsmanager(&endpoint)
            .get_secret_value()
            .secret_id(SECRET)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        stored["netatmo"]["client_secret"],
        "netatmo-client-secret-value"
    );
    assert_eq!(
        stored["legrand"]["client_id"], "lg",
        "the other entry is kept"
    );

    // config push: version 1; again: nothing to do.
    let pushed = a.run(&["--target", "t", "config", "push"]);
    ok(&pushed, "config push");
    assert!(
        pushed
            .stdout
            .contains("published homehook.toml as version 1 on t."),
        "{}",
        pushed.stdout
    );
    assert!(
        pushed.stdout.contains("no restart, no deploy"),
        "{}",
        pushed.stdout
    );
    let again = a.run(&["--target", "t", "config", "push"]);
    ok(&again, "config push again");
    assert!(
        again
            .stdout
            .contains("homehook.toml is already published (version 1): nothing to do."),
        "{}",
        again.stdout
    );

    // key new: the key shown once, published as version 2, the file brought along.
    let made = a.run(&[
        "--target", "t", "key", "new", "--for", "away", "--id", "watch",
    ]);
    ok(&made, "key new");
    let watch = made
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .map(str::trim)
        .expect("the key is printed")
        .to_string();
    homehook_tests::leak_watch::issued("action_key", &watch);
    assert!(watch.starts_with("hh_") && watch.len() == 46, "{watch}");
    assert!(made.stdout.contains("id:   watch"), "{}", made.stdout);
    assert!(
        made.stdout
            .contains("it is shown only now. Published as version 2"),
        "{}",
        made.stdout
    );
    assert!(
        made.stdout
            .contains("homehook.toml updated to match (version 2)."),
        "{}",
        made.stdout
    );
    let file = std::fs::read_to_string(a.config()).unwrap();
    assert!(
        file.starts_with("# The owner's words"),
        "comments kept: {file}"
    );
    assert!(file.contains("[keys.phone]  # the owner's phone"), "{file}");
    assert!(file.contains("[keys.watch]"), "{file}");
    assert!(
        file.contains(&KeyHash::of(&watch).to_string()),
        "the file holds the new key's hash: {file}"
    );
    assert!(!file.contains(&watch), "never the key itself");

    // key list --json: the admin key first, then the named ones, with what each opens.
    let listed = a.run(&["--target", "t", "key", "list", "--json"]);
    ok(&listed, "key list");
    let keys = listed.json();
    let rows: Vec<(String, Vec<String>, bool)> = keys
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["scope"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
                k["revoked"].as_bool().unwrap(),
            )
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows,
        vec![
            ("admin".into(), strings(&["admin"]), false),
            ("phone".into(), strings(&["away"]), false),
            ("watch".into(), strings(&["away"]), false),
        ],
        "{keys}"
    );
    assert!(keys[1]["last_used"].is_null(), "{keys}");
    assert!(!listed.stdout.contains("sha256:"), "no hashes in the list");

    // actions --json: the stack's URLs, with the keys that open each.
    let actions = a.run(&["--target", "t", "actions", "--json"]);
    ok(&actions, "actions");
    let actions = actions.json();
    assert_eq!(actions[0]["name"], "away", "{actions}");
    assert_eq!(
        actions[0]["url"], "https://hooks.example.com/a/away",
        "{actions}"
    );
    let ids: Vec<_> = actions[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["phone", "watch"], "{actions}");

    // status --json: the connection is configured on the stack, not connected yet.
    let status = a.run(&["--target", "t", "status", "--json"]);
    ok(&status, "status");
    let report = status.json();
    assert_eq!(report["connections"][0]["id"], "home", "{report}");
    assert_eq!(report["connections"][0]["connected"], false, "{report}");
    assert_eq!(
        report["connections"][0]["health"], "not_connected",
        "{report}"
    );
    assert_eq!(
        report["connections"][0]["reconnect_url"], "https://hooks.example.com/connect/home",
        "the stack's link, not this machine's: {report}"
    );
    let table = a.run(&["--target", "t", "status"]);
    ok(&table, "status");
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("home "))
        .unwrap_or_else(|| panic!("a row for home: {}", table.stdout));
    assert!(
        row.contains("netatmo") && row.contains("not connected"),
        "{row}"
    );
    // The hint names the command for this place.
    assert!(
        table.stdout.contains("`homehook --target t connect home`"),
        "{}",
        table.stdout
    );

    // config diff: the file is the published config.
    let same = a.run(&["--target", "t", "config", "diff"]);
    ok(&same, "config diff");
    assert!(
        same.stdout
            .contains("homehook.toml is the published config."),
        "{}",
        same.stdout
    );

    // Meanwhile, another machine (its own targets file, an old copy of the file that was
    // never synced there) revokes the phone's key.
    let b = Machine::new(root.path(), "desktop");
    let other = b.cwd.join("old-copy.toml");
    std::fs::write(&other, &original).unwrap();
    ok(
        &b.run(&[
            "target",
            "add",
            "t",
            "--table",
            TABLE,
            "--secret",
            SECRET,
            "--url",
            URL,
            "--region",
            "eu-west-1",
            "--endpoint",
            &endpoint,
        ]),
        "target add on the other machine",
    );
    let revoked = b.run(&[
        "--target",
        "t",
        "--config",
        other.to_str().unwrap(),
        "key",
        "revoke",
        "phone",
    ]);
    ok(&revoked, "key revoke");
    assert!(
        revoked.stdout.contains(
            "revoked phone (published as version 3): every instance refuses it within seconds."
        ),
        "{}",
        revoked.stdout
    );
    assert!(
        revoked
            .stdout
            .contains("differs from the published config: `homehook --target t config diff`"),
        "the stale copy is left alone and the owner told: {}",
        revoked.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        original,
        "a file that was not in step is not overwritten"
    );

    // Back on the first machine: its file (version 2) would bring the phone's key back. The push
    // is refused, and says how to look.
    let lost = a.run(&["--target", "t", "config", "push"]);
    assert_eq!(lost.code, 1, "a lost update is refused: {}", lost.stdout);
    assert!(
        lost.stderr.contains(
            "the published config (version 3) changed since homehook.toml was pushed or pulled here"
        ),
        "{}",
        lost.stderr
    );
    assert!(
        lost.stderr.contains("`homehook --target t config diff`"),
        "{}",
        lost.stderr
    );
    assert!(lost.stdout.is_empty(), "nothing published: {}", lost.stdout);
    let differs = a.run(&["--target", "t", "config", "diff"]);
    assert_eq!(differs.code, 1, "diff exits 1 when they differ");
    assert!(
        differs.stdout.contains("--- published (version 3)"),
        "{}",
        differs.stdout
    );
    assert!(
        differs.stdout.contains("-revoked = true"),
        "the revoke shows: {}",
        differs.stdout
    );

    // config pull takes the published one; then there is nothing to push.
    let pulled = a.run(&["--target", "t", "config", "pull"]);
    ok(&pulled, "config pull");
    assert!(
        pulled
            .stdout
            .contains("wrote version 3 of the published config to homehook.toml."),
        "{}",
        pulled.stdout
    );
    let file = std::fs::read_to_string(a.config()).unwrap();
    assert!(file.contains("revoked = true"), "{file}");
    assert!(file.starts_with("# The owner's words"), "{file}");
    let settled = a.run(&["--target", "t", "config", "push"]);
    ok(&settled, "config push after pull");
    assert!(
        settled
            .stdout
            .contains("homehook.toml is already published (version 3): nothing to do."),
        "{}",
        settled.stdout
    );
    let listed = a.run(&["--target", "t", "key", "list", "--json"]);
    ok(&listed, "key list after the revoke");
    let keys = listed.json();
    assert_eq!(keys[1]["id"], "phone", "{keys}");
    assert_eq!(keys[1]["revoked"], true, "{keys}");
    assert_eq!(keys[2]["revoked"], false, "{keys}");

    // The stack itself, as a Lambda container builds it, on the same table: the phone's key
    // is refused, the watch key passes the gate (and finds the account not connected).
    let settings = Settings {
        table: TABLE.into(),
        secret_id: SECRET.into(),
        config_toml: None,
        config_path: None,
        public_url: Some(URL.into()),
        notify_topic: None,
        stack: None,
    };
    let live = live_with(&settings, &local::sdk_config(&endpoint))
        .await
        .unwrap();
    assert_eq!(live.version(), Some(3));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = homehook_core::http::actions_router(live);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let (code, body) = call(&base, phone.expose()).await;
    assert_eq!(code, 401, "the revoked phone key: {body}");
    assert_eq!(body["error"], "unauthorized", "{body}");
    let (code, body) = call(&base, &watch).await;
    assert_ne!(code, 401, "the watch key: {body}");
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("not_connected")),
        "{body}"
    );
    let served = format!(
        "[stack] POST {URL}/a/away with the phone key → 401 unauthorized\n\
         [stack] POST {URL}/a/away with the watch key → 409 not_connected (past the gate)\n"
    );
    eprint!("{served}");
    TRANSCRIPT.lock().unwrap().push(served);

    // key rotate --json: the successor for scripts, the old key kept for the overlap.
    let rotated = a.run(&["--target", "t", "key", "rotate", "watch", "--json"]);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    // Under --json the note about the file goes to standard error.
    assert!(
        rotated
            .stderr
            .contains("homehook.toml updated to match (version 4)."),
        "{}",
        rotated.stderr
    );
    let first: serde_json::Value =
        serde_json::from_str(rotated.stdout.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("the first line is JSON ({e}): {}", rotated.stdout));
    let successor = first["key"].as_str().expect("the new key").to_string();
    homehook_tests::leak_watch::issued("action_key", &successor);
    assert_eq!(
        (first["id"].as_str(), first["version"].as_u64()),
        (Some("watch-2"), Some(4)),
        "{first}"
    );
    assert!(successor.starts_with("hh_"), "{first}");
    let file = std::fs::read_to_string(a.config()).unwrap();
    assert!(
        file.contains("[keys.watch-2]"),
        "the file came along: {file}"
    );
    // With --json, standard output is one JSON document (`homehook key rotate --json | jq`).
    assert!(
        serde_json::from_str::<serde_json::Value>(&rotated.stdout).is_ok(),
        "{}",
        redact(&rotated.stdout)
    );

    eprintln!(
        "\n===== transcript =====\n{}======================",
        TRANSCRIPT.lock().unwrap().concat()
    );
}
