//! A forwarding proxy on loopback between a bootstrap and moto that times each AWS call: the
//! cold-start figures then split "exec → first answer" into moto's share (the calls' round
//! trips, moto being a Python server several times slower than DynamoDB) and homehook's own.
//!
//! Only the round trip to moto is counted as AWS time; the proxy's own accept and forwarding stay
//! in homehook's share, so that share is, if anything, overstated.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The calls seen since the last [`AwsTimer::take`].
#[derive(Debug, Default, Clone, Copy)]
pub struct AwsCalls {
    /// How many.
    pub count: usize,
    /// Their round trips to moto, summed.
    pub time: Duration,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: Arc<Mutex<AwsCalls>>,
}

/// The running proxy; stops with the bench.
pub struct AwsTimer {
    /// Its endpoint (`http://127.0.0.1:<port>`), for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    calls: Arc<Mutex<AwsCalls>>,
}

impl AwsTimer {
    /// Starts a proxy to `upstream` (moto's endpoint).
    pub async fn start(upstream: &str) -> Result<Self> {
        let calls = Arc::new(Mutex::new(AwsCalls::default()));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("proxy client")?,
            calls: calls.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let app = Router::new().fallback(forward).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            endpoint: format!("http://{addr}"),
            calls,
        })
    }

    /// The calls since the last take, and a fresh count.
    pub fn take(&self) -> AwsCalls {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut headers = parts.headers.clone();
    headers.remove(axum::http::header::HOST);
    let start = Instant::now();
    let answer = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let (status, headers, bytes): (StatusCode, HeaderMap, Bytes) = match answer {
        Ok(a) => {
            let status = a.status();
            let headers = a.headers().clone();
            match a.bytes().await {
                Ok(bytes) => (status, headers, bytes),
                Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let spent = start.elapsed();
    {
        let mut calls = shared.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.count += 1;
        calls.time += spent;
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        // Hop-by-hop and length headers are the proxy's own to set.
        if name != axum::http::header::TRANSFER_ENCODING
            && name != axum::http::header::CONNECTION
            && name != axum::http::header::CONTENT_LENGTH
        {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
