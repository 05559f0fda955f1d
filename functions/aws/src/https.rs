//! The one HTTPS client every SDK client shares: the AWS SDK's requests go out through reqwest,
//! the client vendor calls already use, so a bootstrap carries one HTTP stack (hyper, rustls on
//! ring, webpki roots) instead of two.
//!
//! The SDK's own client (`aws-smithy-http-client`) would add its hyper connector, its rustls
//! glue, native-root loading (~3 ms of every cold start) and HTTP/2: with reqwest's own HTTP/2
//! gone too, ~640 KB of every bootstrap (bench/changes.md, "Lean bootstraps"). What
//! it does for the SDK, this does too: connect and read timeouts from the SDK's settings, a
//! connection pool per setting, no redirects, no proxy, and errors classified the way the SDK's
//! retry policy reads them (timeouts and broken connections are retried; a request the SDK built
//! wrong is not).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The SDK's HTTPS client (connection pooling per timeout setting).
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient::default())
}

/// Hands the SDK one connector per timeout setting, each with its own pool.
#[derive(Debug, Default)]
struct ReqwestClient {
    /// Connectors made so far, by (connect, read) timeout. The SDK asks per operation; a
    /// container sees one or two settings, so a list is enough.
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector_for((settings.connect_timeout(), settings.read_timeout()))
    }
}

impl ReqwestClient {
    fn connector_for(&self, key: Timeouts) -> SharedHttpConnector {
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(ReqwestConnector::new(key));
        connectors.push((key, connector.clone()));
        connector
    }
}

/// One pooled reqwest client, or why none could be built (answered on every call).
#[derive(Debug)]
struct ReqwestConnector {
    client: Result<reqwest::Client, Arc<reqwest::Error>>,
}

impl ReqwestConnector {
    fn new((connect, read): Timeouts) -> Self {
        let mut builder = reqwest::Client::builder()
            // The SDK signs each request for the host it names; a redirect would go unsigned.
            .redirect(reqwest::redirect::Policy::none())
            // As the SDK's own client: proxies are the caller's to configure, not the
            // environment's to impose on signed requests.
            .no_proxy();
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = read {
            builder = builder.read_timeout(read);
        }
        Self {
            client: builder.build().map_err(Arc::new),
        }
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::other(Box::new(e), None))?;
            send(&client, request).await
        })
    }
}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let method = reqwest::Method::from_bytes(request.method().as_bytes())
        .map_err(|e| ConnectorError::user(Box::new(e)))?;
    // DynamoDB, Secrets Manager and SNS requests are built in memory; a streaming body would be
    // a new kind of call, refused rather than half sent.
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| ConnectorError::user("streaming request bodies are not supported".into()))?
        .to_vec();
    let mut outgoing = client.request(method, request.uri()).body(body);
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await.map_err(classify)?;
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(classify)?;
    let mut answer = HttpResponse::new(status, SdkBody::from(bytes));
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            answer
                .headers_mut()
                .append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(answer)
}

/// A reqwest error as the SDK's retry policy reads it (after the SDK's own hyper client:
/// timeouts and I/O are retried, an incomplete answer is transient, the rest is not retried).
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        return ConnectorError::timeout(Box::new(error));
    }
    if error.is_connect() {
        return ConnectorError::io(Box::new(error)).never_connected();
    }
    let hyper = find_source::<hyper::Error>(&error);
    if hyper.is_some_and(|h| h.is_incomplete_message()) {
        return ConnectorError::other(Box::new(error), Some(ErrorKind::TransientError));
    }
    if hyper.is_some_and(|h| h.is_closed() || h.is_canceled())
        || find_source::<std::io::Error>(&error).is_some()
    {
        return ConnectorError::io(Box::new(error));
    }
    if error.is_builder() || (error.is_request() && hyper.is_some_and(hyper::Error::is_user)) {
        return ConnectorError::user(Box::new(error));
    }
    ConnectorError::other(Box::new(error), None)
}

fn find_source<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP/1.1 server on loopback: reads one request, writes `reply`, closes.
    fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|l| l.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            stream.write_all(reply).expect("reply");
            seen
        });
        (format!("http://{addr}"), handle)
    }

    fn connector(read: Option<Duration>) -> SharedHttpConnector {
        SharedHttpConnector::new(ReqwestConnector::new((Some(Duration::from_secs(2)), read)))
    }

    fn request(uri: &str, body: &str) -> HttpRequest {
        let request = http::Request::post(uri)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(SdkBody::from(body))
            .expect("request");
        HttpRequest::try_from(request).expect("smithy request")
    }

    #[tokio::test]
    async fn a_request_goes_out_as_the_sdk_built_it_and_the_answer_comes_back_whole() {
        let (base, server) = serve_once(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: r1\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{\"__type\":\"Nope\"}",
        );
        let answer = connector(None)
            .call(request(&format!("{base}/"), "{\"TableName\":\"t\"}"))
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(answer.headers().get("x-amzn-requestid"), Some("r1"));
        assert_eq!(answer.body().bytes(), Some(&b"{\"__type\":\"Nope\"}"[..]));
        let seen = String::from_utf8(server.join().expect("server")).expect("utf-8");
        assert!(seen.starts_with("POST / HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.contains("x-amz-target: DynamoDB_20120810.GetItem\r\n"),
            "{seen}"
        );
        assert!(seen.ends_with("{\"TableName\":\"t\"}"), "{seen}");
    }

    #[tokio::test]
    async fn failures_are_classified_as_the_sdks_retries_read_them() {
        // Nobody listening: an I/O error before anything was sent (retried).
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let refused = connector(None)
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .expect_err("refused");
        assert!(refused.is_io(), "{refused:?}");

        // A server that answers nothing in time: a timeout (retried).
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let slow = connector(Some(Duration::from_millis(200)))
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .expect_err("timeout");
        assert!(slow.is_timeout(), "{slow:?}");
        drop(silent);

        // An answer cut short: transient (retried), not a success with half a body.
        let (base, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"Item\"",
        );
        let cut = connector(None)
            .call(request(&format!("{base}/"), "{}"))
            .await
            .expect_err("cut short");
        assert!(
            cut.is_io() || cut.is_other() && cut.as_other() == Some(ErrorKind::TransientError),
            "{cut:?}"
        );
    }

    #[tokio::test]
    async fn one_connector_per_timeout_setting() {
        let client = ReqwestClient::default();
        let (a, b) = (
            (Some(Duration::from_secs(1)), None),
            (Some(Duration::from_secs(2)), None),
        );
        client.connector_for(a);
        client.connector_for(a);
        client.connector_for(b);
        assert_eq!(client.connectors.lock().expect("lock").len(), 2);
    }
}
