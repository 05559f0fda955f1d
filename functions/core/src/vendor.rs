//! One HTTP call to a vendor's API: URL building that cannot leave the target's base, the
//! credential in its place, bounded answers. What an answer *means* (expired token, envelope
//! errors) is the provider's business: see [`crate::providers::classify`].

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::catalog::{ProviderSpec, TokenPlacement};
use crate::sensitive::{SecretString, redact_secrets};
use crate::token::DeviceSession;

/// Where a request goes and how it is authorised: usually the provider's API base with the
/// connection's access token; for Homey, one Homey with its session bearer.
#[derive(Clone, Debug)]
pub struct VendorTarget {
    /// Base URL that request paths are appended to.
    pub base: String,
    /// The credential and where it goes.
    pub auth: TargetAuth,
    /// Extra headers (Homey's `X-Homey-ID`).
    pub headers: Vec<(String, String)>,
}

/// The credential of an [`VendorTarget`].
#[derive(Clone, Debug)]
pub enum TargetAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// A query parameter.
    Query {
        /// Parameter name.
        name: String,
        /// The token.
        token: SecretString,
    },
    /// No credential (a login call).
    None,
}

impl VendorTarget {
    /// The provider's API base with an access token placed as the provider wants it.
    pub fn provider(spec: &ProviderSpec, token: &SecretString) -> Self {
        let auth = match &spec.token_placement {
            TokenPlacement::Bearer => TargetAuth::Bearer(token.clone()),
            TokenPlacement::Query(name) => TargetAuth::Query {
                name: name.clone(),
                token: token.clone(),
            },
        };
        Self {
            base: spec.api_base.clone(),
            auth,
            headers: Vec::new(),
        }
    }
}

/// Characters left as they are in a path segment (RFC 3986 unreserved): a parameter can never
/// add a `/`, `?`, `#` or `..` to a vendor path.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one path segment: only unreserved characters stay as they are.
pub fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

/// Parses `Retry-After` (seconds) or Somfy's `X-RateLimit-Retry-After`.
pub fn retry_after_secs(headers: &http::HeaderMap) -> Option<u64> {
    ["retry-after", "x-ratelimit-retry-after"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok()?.trim().parse().ok())
}

impl VendorTarget {
    /// A device reached through its session (Homey): the session's base URL, bearer and headers.
    pub fn session(session: &DeviceSession) -> Self {
        Self {
            base: session.base_url.clone(),
            auth: TargetAuth::Bearer(session.bearer.clone()),
            headers: session.headers.clone(),
        }
    }
}

/// Largest vendor answer homehook reads: action answers are small; anything bigger is cut.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The most of a vendor's error words kept ([`VendorResponse::reason`]).
const REASON_CHARS: usize = 200;

/// A rendered vendor request.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorRequest {
    /// HTTP method.
    pub method: http::Method,
    /// Path after the API base, already percent-encoded.
    pub path: String,
    /// Query parameters (encoded when sent).
    pub query: Vec<(String, String)>,
    /// Body.
    pub body: VendorBody,
}

/// Body of a vendor request. Its `Debug` names the fields but not their values: a body can
/// carry a credential (Homey's login sends the delegation token).
#[derive(Clone, PartialEq)]
pub enum VendorBody {
    /// No body.
    Empty,
    /// JSON.
    Json(Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

impl std::fmt::Debug for VendorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VendorBody::Empty => f.write_str("Empty"),
            VendorBody::Json(Value::Object(map)) => {
                f.debug_set().entries(map.keys()).finish()?;
                f.write_str(" (JSON, values redacted)")
            }
            VendorBody::Json(_) => f.write_str("Json([redacted])"),
            VendorBody::Form(pairs) => {
                f.debug_set()
                    .entries(pairs.iter().map(|(k, _)| k))
                    .finish()?;
                f.write_str(" (form, values redacted)")
            }
        }
    }
}

/// A vendor's answer. Its `Debug` shows the status and size only: an answer can be a
/// credential (Homey's session bearer).
#[derive(Clone)]
pub struct VendorResponse {
    /// HTTP status.
    pub status: u16,
    /// Body as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Body as text (cut at 1 MiB).
    pub text: String,
    /// `Retry-After` / `X-RateLimit-Retry-After`, in seconds.
    pub retry_after_secs: Option<u64>,
}

impl std::fmt::Debug for VendorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorResponse")
            .field("status", &self.status)
            .field("bytes", &self.text.len())
            .field("retry_after_secs", &self.retry_after_secs)
            .finish_non_exhaustive()
    }
}

impl VendorResponse {
    /// The vendor's own words about an error, if it gave any, shortened, with anything
    /// token-like removed ([`redact_secrets`]): these words reach the caller's error body and
    /// the log, and a vendor may echo the request's credential in them.
    pub fn reason(&self) -> Option<String> {
        let json = self.json.as_ref()?;
        let candidates = [
            "/error/message",
            "/error_description",
            "/message",
            "/error",
            "/errors/0/message",
        ];
        let text = candidates
            .iter()
            .find_map(|p| json.pointer(p).and_then(Value::as_str))?;
        // Redacted before it is cut: a cut could leave a token too short to look like one.
        let head: String = text.chars().take(4 * REASON_CHARS).collect();
        Some(redact_secrets(&head).chars().take(REASON_CHARS).collect())
    }
}

/// Why a vendor call failed before an answer came back.
#[derive(Debug, thiserror::Error)]
pub enum VendorCallError {
    /// The rendered URL is not under the provider's API base (config or parameter problem).
    #[error("the action's URL is not under the provider's API base: {0}")]
    BadUrl(String),
    /// Network error or timeout.
    #[error("the vendor could not be reached: {detail}")]
    Unreachable {
        /// What happened (never the URL: it may carry a token).
        detail: String,
        /// Whether trying again cannot do the action twice: the request never left, or it
        /// only reads.
        retryable: bool,
    },
}

fn unreachable(e: reqwest::Error, method: &http::Method) -> VendorCallError {
    let retryable = e.is_connect() || method == http::Method::GET;
    VendorCallError::Unreachable {
        // Without the URL: the token may be in its query string.
        detail: e.without_url().to_string(),
        retryable,
    }
}

/// Sends `request` to `target`.
pub async fn call(
    http: &reqwest::Client,
    target: &VendorTarget,
    request: &VendorRequest,
) -> Result<VendorResponse, VendorCallError> {
    let url = build_url(&target.base, request)?;
    let mut builder = http.request(request.method.clone(), url);
    builder = match &target.auth {
        TargetAuth::Bearer(token) => builder.bearer_auth(token.expose()),
        TargetAuth::Query { name, token } => builder.query(&[(name.as_str(), token.expose())]),
        TargetAuth::None => builder,
    };
    for (name, value) in &target.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = match &request.body {
        VendorBody::Empty => builder,
        VendorBody::Json(v) => builder.json(v),
        VendorBody::Form(pairs) => builder.form(pairs),
    };
    let response = builder
        .send()
        .await
        .map_err(|e| unreachable(e, &request.method))?;
    let status = response.status().as_u16();
    let retry_after_secs = retry_after_secs(response.headers());
    let bytes = read_bounded(response, &request.method).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).ok();
    Ok(VendorResponse {
        status,
        json,
        text,
        retry_after_secs,
    })
}

async fn read_bounded(
    mut response: reqwest::Response,
    method: &http::Method,
) -> Result<Vec<u8>, VendorCallError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(e, method))? {
        let room = MAX_ANSWER_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(out)
}

/// Joins base and path and checks the result is still under the base (same scheme, host, port
/// and path prefix), then adds the query.
fn build_url(api_base: &str, request: &VendorRequest) -> Result<url::Url, VendorCallError> {
    let base = url::Url::parse(api_base).map_err(|e| VendorCallError::BadUrl(e.to_string()))?;
    let joined = format!("{}{}", api_base.trim_end_matches('/'), request.path);
    let mut url = url::Url::parse(&joined).map_err(|e| VendorCallError::BadUrl(e.to_string()))?;
    let base_path = base.path().trim_end_matches('/');
    let same_origin = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default();
    if !same_origin || !url.path().starts_with(base_path) || url.path().contains("/../") {
        return Err(VendorCallError::BadUrl(request.path.clone()));
    }
    if !request.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&request.query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> VendorRequest {
        VendorRequest {
            method: http::Method::GET,
            path: path.into(),
            query: vec![("mode".into(), "a&b=c".into())],
            body: VendorBody::Empty,
        }
    }

    #[test]
    fn urls_stay_under_the_api_base() {
        let u = build_url("https://api.myfox.io/v3", &req("/site/s1/security")).expect("ok");
        assert_eq!(
            u.as_str(),
            "https://api.myfox.io/v3/site/s1/security?mode=a%26b%3Dc"
        );
        assert!(build_url("https://api.myfox.io/v3", &req("/../v2/x")).is_err());
        assert!(build_url("https://api.myfox.io", &req(".evil.example/x")).is_err());
    }

    #[test]
    fn debug_of_bodies_and_answers_hides_values() {
        let body = VendorBody::Json(serde_json::json!({"token": "eyJ-delegation"}));
        let answer = VendorResponse {
            status: 200,
            json: Some(serde_json::json!("session-bearer")),
            text: "\"session-bearer\"".into(),
            retry_after_secs: None,
        };
        let shown = format!("{body:?} {answer:?}");
        assert!(shown.contains("token") && shown.contains("200"), "{shown}");
        assert!(
            !shown.contains("eyJ-delegation") && !shown.contains("session-bearer"),
            "{shown}"
        );
    }
}
