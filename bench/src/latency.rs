//! A reverse proxy that holds each request for a fixed time before passing it on: a vendor's
//! token endpoint across the internet, not on loopback. On loopback a token call takes about a
//! millisecond, so serialised renewals hide; at a real vendor's round trip they add up.

use std::time::Duration;

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
struct Target {
    base: String,
    delay: Duration,
    client: reqwest::Client,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: the upstream's paths, each answered `delay` later.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a proxy in front of `upstream` (`http://host:port`) that waits `delay` before
/// forwarding each request.
pub async fn start(upstream: &str, delay: Duration) -> Result<Proxy> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let target = Target {
        base: upstream.trim_end_matches('/').to_string(),
        delay,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    };
    let router = axum::Router::new().fallback(forward).with_state(target);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Proxy { base, task })
}

async fn forward(
    State(target): State<Target>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::time::sleep(target.delay).await;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = target
        .client
        .request(method, format!("{}{path}", target.base))
        .body(body);
    for (name, value) in &headers {
        // reqwest sets these for the upstream connection itself.
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            match answer.bytes().await {
                Ok(bytes) => {
                    let mut response = Response::new(Body::from(bytes));
                    *response.status_mut() = status;
                    for (name, value) in &headers {
                        if name != axum::http::header::CONTENT_LENGTH
                            && name != axum::http::header::TRANSFER_ENCODING
                        {
                            response.headers_mut().insert(name, value.clone());
                        }
                    }
                    response
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
