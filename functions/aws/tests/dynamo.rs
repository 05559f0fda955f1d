//! The DynamoDB store against a real DynamoDB-compatible server (moto, started per test on
//! 127.0.0.1 by this file; `infra/test` installs it and names it in `HOMEHOOK_MOTO_SERVER`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homehook_aws::{DynamoStore, local};
use homehook_core::clock::UnixTime;
use homehook_core::store::{ItemStore, Taken, conformance};

/// A moto server on a free loopback port; killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let server = std::env::var("HOMEHOOK_MOTO_SERVER")
        .expect("HOMEHOOK_MOTO_SERVER is not set: run infra/test, which installs moto and sets it");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

async fn store(moto: &Moto) -> DynamoStore {
    let store = DynamoStore::new(local::dynamodb(&moto.endpoint), "homehook-test");
    store.create_table().await.expect("create table");
    store
}

#[tokio::test]
async fn the_dynamodb_store_conforms() {
    let moto = moto();
    let store = store(&moto).await;
    conformance::run(&store).await.expect("conformance");
}

#[tokio::test]
async fn an_expired_state_that_dynamodb_has_not_deleted_yet_is_refused() {
    let moto = moto();
    let store = store(&moto).await;
    store.put_item("state-1", "v", UnixTime(100)).await.unwrap();
    // Moto, like DynamoDB, has not deleted it: the read must still say expired.
    assert_eq!(
        store.take_item("state-1", UnixTime(150)).await.unwrap(),
        Taken::Expired
    );
    assert_eq!(
        store.take_item("state-1", UnixTime(50)).await.unwrap(),
        Taken::Missing
    );
}
