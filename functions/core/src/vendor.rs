//! Calling a vendor's API with an access token: URL building that cannot leave the provider's
//! API base, token placement, bounded answers, expired-token detection.

use serde_json::Value;

use crate::catalog::{ProviderSpec, TokenPlacement};
use crate::oauth::retry_after_secs;
use crate::secret::SecretString;

/// Largest vendor answer homehook reads: action answers are small; anything bigger is cut.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

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

/// Body of a vendor request.
#[derive(Debug, Clone, PartialEq)]
pub enum VendorBody {
    /// No body.
    Empty,
    /// JSON.
    Json(Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

/// A vendor's answer.
#[derive(Debug, Clone)]
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

impl VendorResponse {
    /// Whether this answer means the access token has expired.
    pub fn is_expired_token(&self, spec: &ProviderSpec) -> bool {
        spec.expired_token
            .iter()
            .any(|s| s.matches(self.status, self.json.as_ref()))
    }

    /// The vendor's own words about an error, if it gave any, shortened.
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
        Some(text.chars().take(200).collect())
    }
}

/// Why a vendor call failed before an answer came back.
#[derive(Debug, thiserror::Error)]
pub enum VendorCallError {
    /// The rendered URL is not under the provider's API base (config or parameter problem).
    #[error("the action's URL is not under the provider's API base: {0}")]
    BadUrl(String),
    /// Network error or timeout.
    #[error("the vendor could not be reached: {0}")]
    Unreachable(String),
}

/// Sends `request` to the provider's API with `token`.
pub async fn call(
    http: &reqwest::Client,
    spec: &ProviderSpec,
    token: &SecretString,
    request: &VendorRequest,
) -> Result<VendorResponse, VendorCallError> {
    let url = build_url(&spec.api_base, request)?;
    let mut builder = http.request(request.method.clone(), url);
    builder = match &spec.token_placement {
        TokenPlacement::Bearer => builder.bearer_auth(token.expose()),
        TokenPlacement::Query(name) => builder.query(&[(name.as_str(), token.expose())]),
    };
    builder = match &request.body {
        VendorBody::Empty => builder,
        VendorBody::Json(v) => builder.json(v),
        VendorBody::Form(pairs) => builder.form(pairs),
    };
    let response = builder
        .send()
        .await
        // Without the URL: the token may be in its query string.
        .map_err(|e| VendorCallError::Unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let retry_after_secs = retry_after_secs(response.headers());
    let bytes = read_bounded(response).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).ok();
    Ok(VendorResponse {
        status,
        json,
        text,
        retry_after_secs,
    })
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, VendorCallError> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| VendorCallError::Unreachable(e.without_url().to_string()))?
    {
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
}
