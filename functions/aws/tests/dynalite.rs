//! The DynamoDB store's contract against dynalite too: unlike moto, dynalite rejects malformed
//! expressions (unused or missing expression values) the way DynamoDB does, so an expression
//! real DynamoDB would refuse fails here. `infra/test` installs dynalite from npm and names its
//! module directory in `HOMEHOOK_DYNALITE`; this test starts it on 127.0.0.1.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homehook_aws::{DynamoStore, local};
use homehook_core::store::conformance;

struct Dynalite(Child);

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_dynamodb_store_conforms_on_dynalite() {
    let module = std::env::var("HOMEHOOK_DYNALITE").expect(
        "HOMEHOOK_DYNALITE is not set: run infra/test, which installs dynalite and sets it",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // dynalite's command line listens on every interface; its API takes a host.
    let child = Command::new("node")
        .args([
            "-e",
            "require(process.argv[1])({createTableMs: 0}).listen(+process.argv[2], '127.0.0.1')",
            &module,
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dynalite");
    let _dynalite = Dynalite(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dynalite did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = DynamoStore::new(
        local::dynamodb(&format!("http://127.0.0.1:{port}")),
        "homehook-test",
    );
    store
        .create_table_without_ttl()
        .await
        .expect("create table");
    conformance::run(&store)
        .await
        .expect("conformance on dynalite");
}
