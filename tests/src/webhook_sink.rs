//! A notification receiver on loopback: records every POST (headers and raw body) so tests
//! check what the owner would get, and that it is signed.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

/// One POST received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its raw body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON notification")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }
}

/// The receiver; stops when dropped.
#[derive(Debug)]
pub struct WebhookSink {
    /// The URL to POST to.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookSink {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        crate::leak_watch::init();
        // The secret part of a webhook URL (a Slack or ntfy URL is a credential).
        crate::leak_watch::issued("webhook_url_secret", "t0pic-s3cret");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let router = Router::new()
            .route("/hook/{*rest}", post(receive))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let url = format!(
            "http://{}/hook/t0pic-s3cret",
            listener.local_addr().expect("addr")
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            received,
            task,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn receive(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received { headers, body });
    "ok"
}
