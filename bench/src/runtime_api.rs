//! A minimal Lambda Runtime API on loopback: the part of the Lambda service a bootstrap talks to
//! (`GET /runtime/invocation/next`, `POST .../{id}/response`, `.../{id}/error`,
//! `/runtime/init/error`). The bench queues events and is told, with the time, when each answer
//! arrives: a cold start is measured from exec to the first answer.
//!
//! Written here rather than borrowed: the Runtime Interface Emulator is a Go binary (no package
//! from the registries this project can reach), and the bench needs the arrival time of each
//! answer, which it does not report.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc};

/// What a bootstrap answered, and when it arrived.
#[derive(Debug)]
pub struct Answer {
    /// When the answer arrived.
    pub at: Instant,
    /// `false` for an invocation or init error.
    pub ok: bool,
    /// The body.
    pub body: Bytes,
}

struct Shared {
    events: Mutex<VecDeque<(u64, Bytes)>>,
    ready: Notify,
    next_id: AtomicU64,
    answers: mpsc::UnboundedSender<Answer>,
}

/// The emulator; stops when dropped.
pub struct RuntimeApi {
    /// Its address, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts one on a free loopback port; answers arrive on the receiver.
    pub async fn start() -> std::io::Result<(Self, mpsc::UnboundedReceiver<Answer>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            next_id: AtomicU64::new(1),
            answers: tx,
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((Self { addr, shared, task }, rx))
    }

    /// Queues an event for the next `next` call.
    pub fn push(&self, event: impl Into<Bytes>) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut events) = self.shared.events.lock() {
            events.push_back((id, event.into()));
        }
        self.shared.ready.notify_one();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    loop {
        // Registered before looking, so a push between the look and the wait is not missed.
        let ready = s.ready.notified();
        let event = s.events.lock().ok().and_then(|mut e| e.pop_front());
        if let Some((id, body)) = event {
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() + 60_000)
                .unwrap_or_default();
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            };
            set("lambda-runtime-aws-request-id", format!("bench-{id}"));
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:bench".into(),
            );
            set(
                "lambda-runtime-trace-id",
                format!("Root=1-bench-{id};Sampled=0"),
            );
            set("content-type", "application/json".into());
            return (headers, body);
        }
        ready.await;
    }
}

fn arrived(s: &Shared, ok: bool, body: Bytes) -> StatusCode {
    let _ = s.answers.send(Answer {
        at: Instant::now(),
        ok,
        body,
    });
    StatusCode::ACCEPTED
}

async fn response(
    State(s): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    arrived(&s, true, body)
}

async fn error(State(s): State<Arc<Shared>>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    arrived(&s, false, body)
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    arrived(&s, false, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_goes_out_and_its_answer_comes_back() {
        let (api, mut answers) = RuntimeApi::start().await.expect("start");
        let client = reqwest::Client::new();
        let base = format!("http://{}/2018-06-01/runtime", api.addr);
        let waiting = tokio::spawn({
            let client = client.clone();
            let base = base.clone();
            async move { client.get(format!("{base}/invocation/next")).send().await }
        });
        api.push(r#"{"hello":1}"#);
        let event = waiting.await.expect("join").expect("next");
        let id = event.headers()["lambda-runtime-aws-request-id"]
            .to_str()
            .expect("id")
            .to_string();
        assert_eq!(event.text().await.expect("body"), r#"{"hello":1}"#);
        let r = client
            .post(format!("{base}/invocation/{id}/response"))
            .body("done")
            .send()
            .await
            .expect("respond");
        assert_eq!(r.status(), 202);
        let answer = answers.recv().await.expect("answer");
        assert!(answer.ok);
        assert_eq!(&answer.body[..], b"done");
    }
}
