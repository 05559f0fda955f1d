//! A moto server (DynamoDB- and Secrets-Manager-compatible) started per test on a free loopback
//! port; `infra/test` installs it and names it in `HOMEHOOK_MOTO_SERVER`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server on a free loopback port; killed when dropped.
pub(crate) struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one.
pub(crate) fn moto() -> Moto {
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
    // Owned before waiting, so a failed start still kills the process.
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    moto
}
