//! The one error type of the HTTP surface: a status, a stable `error` code and a human message,
//! answered as `{"error": "...", "message": "..."}`. Nothing in it comes from a secret.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::action::ActionError;
use crate::guard::pin::PinRefusal;
use crate::guard::signature::SignatureRefusal;
use crate::params::ParamError;
use crate::refresh::TokenError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// An HTTP error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened and what to do, for people.
    pub message: String,
    /// `Retry-After` seconds, for passing failures.
    pub retry_after_secs: Option<u64>,
    /// `Allow` header, for 405.
    pub allow: Option<String>,
    /// The vendor's status, when the vendor refused.
    pub vendor_status: Option<u16>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            allow: None,
            vendor_status: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no key, wrong key, or (answered the same way) no such action.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unknown action or wrong key.",
        )
    }

    /// 401: no key at all.
    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_key",
            "Send the key as `Authorization: Bearer <key>` or `?key=<key>`.",
        )
    }

    /// 404 for paths homehook does not serve.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Nothing here.")
    }

    /// 405 with the allowed methods.
    pub fn method_not_allowed(allow: &str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This URL accepts only {allow}."),
        );
        e.allow = Some(allow.to_string());
        e
    }

    /// 502: homehook's own settings for a vendor are wrong; the message names what to fix.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "misconfigured", message)
    }

    /// 429: this key or action is calling faster than its rate limit.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many calls: try again in {retry_after_secs} s."),
        )
        .retry_after(retry_after_secs)
    }

    /// 429: this address presented too many wrong keys and is refused for a while.
    pub fn source_locked(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "source_locked",
            format!("Too many wrong keys from this address: try again in {retry_after_secs} s."),
        )
        .retry_after(retry_after_secs)
    }

    /// 400: the `Idempotency-Key` header cannot be used.
    pub fn invalid_idempotency_key() -> Self {
        Self::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        )
    }

    /// 409: the first call with this `Idempotency-Key` is still running.
    pub fn idempotency_in_progress() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "The first call with this Idempotency-Key is still running: repeat it in a moment.",
        )
        .retry_after(1)
    }

    /// 422: the `Idempotency-Key` was used for a different request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request in the last 24 hours: use a new key for a new request.",
        )
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let Some(s) = self.vendor_status {
            body["vendor_status"] = s.into();
        }
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(allow) = self.allow
            && let Ok(v) = HeaderValue::from_str(&allow)
        {
            headers.insert(header::ALLOW, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
        .retry_after(5)
    }
}

impl From<SignatureRefusal> for ApiError {
    fn from(e: SignatureRefusal) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

impl From<PinRefusal> for ApiError {
    fn from(e: PinRefusal) -> Self {
        let message = e.to_string();
        match e {
            PinRefusal::Required => Self::new(StatusCode::UNAUTHORIZED, "pin_required", message),
            PinRefusal::Wrong { .. } => Self::new(StatusCode::UNAUTHORIZED, "wrong_pin", message),
            PinRefusal::Locked { retry_after_secs } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "pin_locked", message)
                    .retry_after(retry_after_secs)
            }
            PinRefusal::Store(e) => e.into(),
        }
    }
}

impl From<SecretsError> for ApiError {
    fn from(e: SecretsError) -> Self {
        Self::misconfigured(e.to_string())
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        let code = match e {
            ParamError::Unknown { .. } => "unknown_parameter",
            ParamError::Missing(_) => "missing_parameter",
            ParamError::Invalid { .. } => "invalid_parameter",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let message = e.to_string();
        match e {
            TokenError::NotConnected(_) => Self::new(
                StatusCode::CONFLICT,
                "not_connected",
                format!("{message}: the owner opens /connect/<connection> with the admin key."),
            ),
            TokenError::ReauthNeeded { .. } => Self::new(
                StatusCode::CONFLICT,
                "reauth_needed",
                format!("{message}. The owner opens /connect/<connection> again."),
            ),
            TokenError::Misconfigured { .. } => Self::misconfigured(message),
            TokenError::Secrets(e) => e.into(),
            TokenError::Unavailable {
                retry_after_secs, ..
            } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vendor_unavailable",
                message,
            )
            .retry_after(retry_after_secs),
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::Token(t) => t.into(),
            ActionError::Param(p) => p.into(),
            ActionError::VendorRejected { status, .. } => {
                let mut err = Self::new(StatusCode::BAD_GATEWAY, "vendor_rejected", message);
                err.vendor_status = Some(status);
                err
            }
            // Both are "too many calls for this vendor account": the caller should slow down.
            ActionError::VendorBusy { retry_after_secs } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "vendor_busy", message)
                    .retry_after(retry_after_secs)
            }
            ActionError::OverBudget { retry_after_secs } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "vendor_budget", message)
                    .retry_after(retry_after_secs)
            }
            ActionError::VendorUnavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vendor_unavailable",
                message,
            )
            .retry_after(30),
            ActionError::Misconfigured(_) => Self::misconfigured(message),
        }
    }
}
