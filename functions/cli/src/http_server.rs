//! The HTTP server under `homehook serve`: hyper's HTTP/1.1 connection builder with a timer, so
//! a socket that sends no complete request head in time is closed, and a cap on open
//! connections, so no caller can use up the process's file descriptors.
//!
//! `axum::serve` builds hyper-util's auto (HTTP/1 + h2c) builder without a timer: hyper's
//! header-read timeout then never applies, idle keep-alive sockets stay open forever, nothing
//! caps the connections, and cleartext HTTP/2 (h2c) is spoken to whoever sends its preface.
//! The red team held `/healthz` down with 140 slow-header sockets (../shared/reviews/security.md
//! §3). Here:
//!
//! - **HTTP/1.1 only.** Nothing homehook answers needs HTTP/2, and a TLS proxy in front speaks
//!   HTTP/2 to browsers itself. An HTTP/2 preface gets no SETTINGS frame: hyper's HTTP/1 parser
//!   refuses it and the connection closes.
//! - **[`HEADER_TIMEOUT`]** from the moment a connection opens, or a response ends, until a
//!   complete request head has arrived. hyper 1.x starts its header-read timer whenever it waits
//!   for a request head, so this one setting is both the slow-header (slow-loris) timeout and
//!   the keep-alive idle timeout.
//! - **[`connection_cap`]** connections at most. Past it, the server stops accepting: new
//!   connections wait in the kernel's listen queue (which holds no descriptor of ours) and are
//!   taken in order as the timeout frees slots, so an honest client behind a flood is answered
//!   once the flood's sockets are cut, instead of every accept failing with "too many open files".
//! - **[`MAX_HEAD_BYTES`]** of request head at most (431 beyond), so a flood's half-sent
//!   headers hold little memory.
//! - Bodies and handlers keep their own limits (the 16 KiB body limit and 10-s body timeout in
//!   `homehook_core::http`, the vendor timeout in the config).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The longest wait for a complete request head: from a connection's opening (or the end of
/// its previous response) to the blank line ending the headers. An honest client sends its
/// whole head (a few hundred bytes) in one packet right after connecting, well inside a second
/// even on a poor mobile link; a TLS proxy in front sends it at once too. 10 s leaves ample room
/// for that, matches the body timeout, and is Apache's order of magnitude (its keep-alive
/// timeout is 5 s). An attacker then has to open each slow socket again every 10 s.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head read (request line and headers), and each connection's read and
/// write buffer. hyper's default (~400 KiB) lets a flood of 512 connections hold 200 MiB of
/// half-sent headers; homehook's longest honest head (a key, a signature, an Idempotency-Key,
/// a proxy's forwarding headers) is well under 2 KiB, and nginx's default limit for one header
/// line is 8 KiB. A larger head gets 431. 512 connections then hold at most 8 MiB.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most connections served at once, when the descriptor limit allows it. homehook's callers
/// are a household's phones and scripts and one reverse proxy: a few connections at a time.
/// 512 is far above that, and half of Linux's usual soft limit of 1024 open files, so the
/// store, vendor connections and logs keep descriptors of their own under a flood.
pub(crate) const MAX_CONNECTIONS: usize = 512;

/// The fewest connections served at once, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 16;

/// How long an `accept` that failed for lack of resources waits before trying again, so a
/// descriptor shortage does not become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection cap: [`MAX_CONNECTIONS`], or half of this process's soft limit on open files
/// when that is lower (`ulimit -n 128` gives 64), never under [`MIN_CONNECTIONS`]. Half, so the
/// rest of the process keeps its descriptors when every slot is taken.
pub(crate) fn connection_cap() -> usize {
    cap_for(open_files_limit())
}

fn cap_for(limit: Option<u64>) -> usize {
    let half = limit.map_or(MAX_CONNECTIONS, |n| {
        usize::try_from(n / 2).unwrap_or(MAX_CONNECTIONS)
    });
    half.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` where unknown or
/// unlimited.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for the connections in
/// progress to end (an idle one closes at once; one waiting for its head within
/// [`HEADER_TIMEOUT`]; a request being handled when its answer is sent). Each request carries
/// its peer address as [`ConnectInfo`]`<SocketAddr>` (the wrong-key lockout reads it).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    cap: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(cap));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full = false;
    loop {
        // A slot first, then the accept: at the cap, callers wait in the listen queue.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        if slots.available_permits() == 0 && !warned_full {
            tracing::warn!(
                cap,
                "every connection slot is taken: new connections wait until one frees (slow or idle ones are closed after {} s)",
                HEADER_TIMEOUT.as_secs()
            );
            warned_full = true;
        } else if slots.available_permits() > cap / 2 {
            warned_full = false;
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    drop(permit);
                    if !is_connection_error(&e) {
                        // EMFILE/ENFILE/ENOBUFS: the connection stays queued; try again soon.
                        tracing::warn!(error = %e, "cannot accept a connection; retrying");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Timeouts, resets and malformed requests: the caller's business, not ours.
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection (it went away before it was accepted), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_descriptor_limit() {
        assert_eq!(cap_for(None), MAX_CONNECTIONS);
        assert_eq!(cap_for(Some(1024)), 512);
        assert_eq!(cap_for(Some(128)), 64);
        assert_eq!(cap_for(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(cap_for(Some(10)), MIN_CONNECTIONS);
    }
}
