//! API Gateway's HTTP API in front of the core's axum routers: each event (payload format 2.0)
//! becomes an `http::Request`, the router's answer becomes the event's response. The same
//! routers serve `homehook serve`; only this translation is Lambda's.
//!
//! The caller's address comes from the request context (`requestContext.http.sourceIp`), which
//! the caller cannot forge, unlike `X-Forwarded-For`; it reaches the handlers as a
//! [`ClientSource`], which the gate's wrong-key lockout counts per address and network.
//!
//! Why not `lambda_http`: it turns on `lambda_runtime`'s `tracing` feature (an `EnvFilter` with
//! its regex engine) and decodes text bodies through `encoding_rs` (every legacy charset's
//! tables), which homehook never needs: its answers are UTF-8. The payload is a small,
//! documented JSON object; the fields read here are the ones homehook uses, and the tests read
//! AWS's own example events and SAM's (`infra/sam_local_flows.py`).

use std::collections::HashMap;
use std::net::IpAddr;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use homehook_core::guard::ClientSource;
use http::header::{CONTENT_ENCODING, SET_COOKIE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

/// An HTTP API event (payload format 2.0), as far as homehook reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiEvent {
    /// The path as the caller sent it (percent-encoded).
    #[serde(default)]
    pub raw_path: String,
    /// The query string without `?`.
    #[serde(default)]
    pub raw_query_string: String,
    /// The `Cookie` header, split (API Gateway takes it out of `headers`).
    #[serde(default)]
    pub cookies: Vec<String>,
    /// Header names (lower case) and values; a repeated header's values joined with commas.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// Where the request came from.
    #[serde(default)]
    pub request_context: RequestContext,
    /// The body, base64-encoded when `is_base64_encoded`.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether `body` is base64.
    #[serde(default)]
    pub is_base64_encoded: bool,
}

/// `requestContext`, as far as homehook reads it.
#[derive(Debug, Default, Deserialize)]
pub struct RequestContext {
    /// `requestContext.http`.
    #[serde(default)]
    pub http: RequestHttp,
}

/// `requestContext.http`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHttp {
    /// The HTTP method.
    #[serde(default)]
    pub method: String,
    /// The caller's address as API Gateway saw it.
    #[serde(default)]
    pub source_ip: Option<String>,
}

/// The answer API Gateway turns into the HTTP response (payload format 2.0).
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiResponse {
    /// The status code.
    pub status_code: u16,
    /// Headers; a repeated header's values joined with commas (`Set-Cookie` goes to `cookies`).
    pub headers: HashMap<String, String>,
    /// Each `Set-Cookie` value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<String>,
    /// The body: text, or base64 when `is_base64_encoded`.
    pub body: String,
    /// Whether `body` is base64 (a body that is not UTF-8 or is content-encoded).
    pub is_base64_encoded: bool,
}

/// Serves `router` to the Lambda Runtime API until the container stops.
pub async fn serve(router: Router) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HttpApiEvent>| {
        let router = router.clone();
        async move { Ok::<_, lambda_runtime::Error>(answer(router, event.payload).await) }
    }))
    .await
}

/// One event through `router`. Never fails: an event that is not a request answers 400, as a
/// server would a malformed request.
pub async fn answer(router: Router, event: HttpApiEvent) -> HttpApiResponse {
    let request = match request(event) {
        Ok(request) => request,
        Err(message) => return refusal(message),
    };
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    // The routers' bodies are in memory: reading one cannot fail short of a bug, which then
    // answers 500 like any handler error would.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        tracing::error!("an answer's body could not be read");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong.",
        );
    };
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = value.as_ref();
        if name == SET_COOKIE {
            cookies.push(value.to_owned());
        } else {
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
    }
    let encoded = parts.headers.contains_key(CONTENT_ENCODING);
    let (body, is_base64_encoded) = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if !encoded => (text, false),
        _ => (BASE64.encode(&bytes), true),
    };
    HttpApiResponse {
        status_code: parts.status.as_u16(),
        headers,
        cookies,
        body,
        is_base64_encoded,
    }
}

/// The event as the request the routers take.
fn request(event: HttpApiEvent) -> Result<http::Request<Body>, &'static str> {
    let method = Method::from_bytes(event.request_context.http.method.as_bytes())
        .map_err(|_| "The request's method is not an HTTP method.")?;
    let path = if event.raw_path.is_empty() {
        "/"
    } else {
        &event.raw_path
    };
    let uri = if event.raw_query_string.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", event.raw_query_string)
    };
    let body = match event.body {
        None => Vec::new(),
        Some(body) if event.is_base64_encoded => BASE64
            .decode(body)
            .map_err(|_| "The request's body is not the base64 it says it is.")?,
        Some(body) => body.into_bytes(),
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .map_err(|_| "The request's path is not a URL path.")?;
    let headers = request.headers_mut();
    for (name, value) in &event.headers {
        // Values keep their UTF-8 bytes (a phone's user agent may carry some); a name or value
        // HTTP cannot carry (a control character) is left out, not guessed at.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    if !event.cookies.is_empty()
        && let Ok(cookie) = HeaderValue::from_str(&event.cookies.join("; "))
    {
        headers.insert(http::header::COOKIE, cookie);
    }
    if let Some(ip) = event
        .request_context
        .http
        .source_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
    {
        request.extensions_mut().insert(ClientSource(ip));
    }
    Ok(request)
}

fn refusal(message: &str) -> HttpApiResponse {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn error_response(status: StatusCode, code: &str, message: &str) -> HttpApiResponse {
    HttpApiResponse {
        status_code: status.as_u16(),
        headers: HashMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        cookies: Vec::new(),
        body: serde_json::json!({ "error": code, "message": message }).to_string(),
        is_base64_encoded: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Extension;
    use axum::extract::Request;
    use axum::routing::any;

    /// What the router was given, as JSON.
    async fn echo_request(
        source: Option<Extension<ClientSource>>,
        request: Request,
    ) -> axum::Json<serde_json::Value> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let headers: HashMap<String, String> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        axum::Json(serde_json::json!({
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "source": source.map(|Extension(s)| s.0.to_string()),
        }))
    }

    /// A router that echoes what it was given.
    fn echo() -> Router {
        Router::new()
            .route("/", any(echo_request))
            .route("/{*path}", any(echo_request))
    }

    async fn through_echo(event: &str) -> serde_json::Value {
        let event: HttpApiEvent = serde_json::from_str(event).expect("event");
        let response = answer(echo(), event).await;
        assert_eq!(response.status_code, 200, "{response:?}");
        serde_json::from_str(&response.body).expect("json")
    }

    /// AWS's example events for payload 2.0, as aws-lambda-rust-runtime ships them
    /// (aws_lambda_events 0.18, src/fixtures/).
    const AWS_NO_AUTHORIZER: &str =
        include_str!("../tests/fixtures/example-apigw-v2-request-no-authorizer.json");
    const AWS_MULTI_VALUE: &str =
        include_str!("../tests/fixtures/example-apigw-v2-request-multi-value-parameters.json");

    #[tokio::test]
    async fn aws_example_events_reach_the_router_as_requests() {
        let seen = through_echo(AWS_NO_AUTHORIZER).await;
        assert_eq!(seen["method"], "GET");
        assert_eq!(seen["uri"], "/");
        assert_eq!(
            seen["headers"]["host"],
            "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com"
        );
        // The lockout counts the address API Gateway saw, never X-Forwarded-For.
        assert_eq!(seen["source"], "1.2.3.4");

        let mut with_accent: serde_json::Value =
            serde_json::from_str(AWS_NO_AUTHORIZER).expect("event");
        with_accent["headers"]["user-agent"] = "Raccourcis/1 (iPhone de Zoé)".into();
        with_accent["headers"]["x-bad"] = "line\nbreak".into();
        let seen = through_echo(&with_accent.to_string()).await;
        assert_eq!(
            seen["headers"]["user-agent"],
            "Raccourcis/1 (iPhone de Zoé)"
        );
        assert!(seen["headers"].get("x-bad").is_none());

        let seen = through_echo(AWS_MULTI_VALUE).await;
        assert_eq!(seen["uri"], "/my/path?Parameter1=value1&Parameter1=value2");
        assert_eq!(seen["headers"]["header2"], "value1,value2");
        assert_eq!(seen["headers"]["cookie"], "cookie1; cookie2");
    }

    #[tokio::test]
    async fn the_repositorys_action_event_carries_its_body_and_key() {
        let seen = through_echo(include_str!("../../../events/action.json")).await;
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["uri"], "/a/temperature?format=json");
        assert_eq!(seen["body"], "{}");
        assert_eq!(seen["source"], "203.0.113.7");
        assert!(
            seen["headers"]["authorization"]
                .as_str()
                .is_some_and(|a| a.starts_with("Bearer "))
        );
    }

    #[tokio::test]
    async fn a_base64_body_arrives_decoded_and_a_bad_one_is_refused() {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/action.json")).expect("event");
        event["body"] = BASE64.encode("level=3&x=é").into();
        event["isBase64Encoded"] = true.into();
        let seen = through_echo(&event.to_string()).await;
        assert_eq!(seen["body"], "level=3&x=é");

        event["body"] = "not base64!".into();
        let refused = answer(echo(), serde_json::from_value(event).expect("event")).await;
        assert_eq!(refused.status_code, 400);
        let body: serde_json::Value = serde_json::from_str(&refused.body).expect("json");
        assert_eq!(body["error"], "bad_request");
    }

    #[tokio::test]
    async fn without_a_source_address_none_is_made_up() {
        let mut event: serde_json::Value = serde_json::from_str(AWS_NO_AUTHORIZER).expect("event");
        event["requestContext"]["http"]
            .as_object_mut()
            .expect("http")
            .remove("sourceIp");
        let seen = through_echo(&event.to_string()).await;
        assert_eq!(seen["source"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn answers_keep_their_headers_cookies_and_bytes() {
        let router = Router::new()
            .route(
                "/page",
                any(|| async {
                    (
                        [
                            ("content-type", "text/html; charset=utf-8"),
                            ("cache-control", "no-store"),
                            ("x-label", "Séjour"),
                        ],
                        axum::response::AppendHeaders([
                            ("set-cookie", "a=1"),
                            ("set-cookie", "b=2"),
                        ]),
                        "<p>Vérifié</p>",
                    )
                }),
            )
            .route(
                "/bytes",
                any(|| async { ([("content-type", "image/png")], vec![0x89u8, 0x50, 0xff]) }),
            );
        let event = |path: &str| {
            let mut e: serde_json::Value = serde_json::from_str(AWS_NO_AUTHORIZER).expect("event");
            e["rawPath"] = path.into();
            serde_json::from_value::<HttpApiEvent>(e).expect("event")
        };
        let page = answer(router.clone(), event("/page")).await;
        assert_eq!(page.status_code, 200);
        assert_eq!(page.body, "<p>Vérifié</p>");
        assert!(!page.is_base64_encoded);
        assert_eq!(page.headers["cache-control"], "no-store");
        // A header value that is not plain ASCII keeps its UTF-8.
        assert_eq!(page.headers["x-label"], "Séjour");
        assert_eq!(page.cookies, ["a=1", "b=2"]);
        assert!(!page.headers.contains_key("set-cookie"));

        let bytes = answer(router.clone(), event("/bytes")).await;
        assert!(bytes.is_base64_encoded);
        assert_eq!(
            BASE64.decode(&bytes.body).expect("base64"),
            [0x89, 0x50, 0xff]
        );

        let missing = answer(router, event("/nowhere")).await;
        assert_eq!(missing.status_code, 404);
    }

    #[test]
    fn the_response_is_the_json_api_gateway_reads() {
        let r = HttpApiResponse {
            status_code: 201,
            headers: HashMap::from([("content-type".into(), "text/plain".into())]),
            cookies: vec![],
            body: "ok".into(),
            is_base64_encoded: false,
        };
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            serde_json::json!({
                "statusCode": 201,
                "headers": {"content-type": "text/plain"},
                "body": "ok",
                "isBase64Encoded": false,
            })
        );
    }
}
