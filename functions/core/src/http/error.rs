//! The one error type of the HTTP surface: a status, a stable `error` code and a human message,
//! answered as `{"error": "...", "message": "..."}`. Nothing in it comes from a secret.
//!
//! The core says what went wrong as a [`Problem`] with an [`ErrorCode`]; [`status_of`] is the
//! one table that gives each code its HTTP status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ActionError, ErrorCode, Problem, TokenError};
use crate::guard::pin::PinRefusal;
use crate::guard::signature::SignatureRefusal;
use crate::params::ParamError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// The HTTP status of every code homehook answers.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        Unauthorized | MissingKey | SignatureRequired | SignatureMalformed | SignatureStale
        | SignatureMismatch | SignatureReplayed | PinRequired | WrongPin => {
            StatusCode::UNAUTHORIZED
        }
        AdminDisabled | AccessDenied => StatusCode::FORBIDDEN,
        NotFound | UnknownConnection => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        IdempotencyInProgress | NotConnected | ReauthNeeded => StatusCode::CONFLICT,
        BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        SourceLocked | RateLimited | PinLocked | VendorBusy | VendorBudget => {
            StatusCode::TOO_MANY_REQUESTS
        }
        UnsignedParameters
        | InvalidPin
        | InvalidIdempotencyKey
        | BadRequest
        | MalformedBody
        | UnknownParameter
        | MissingParameter
        | InvalidParameter
        | MalformedCallback
        | MissingState
        | ExpiredState
        | InvalidState
        | VendorError
        | MissingCode
        | InvalidCode => StatusCode::BAD_REQUEST,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Misconfigured | VendorRejected | TokenEndpointFailed => StatusCode::BAD_GATEWAY,
        StoreUnavailable | VendorUnavailable | TokenEndpointBusy => StatusCode::SERVICE_UNAVAILABLE,
    }
}

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
    /// An error with a status, code and message: for what axum itself refused, whose status
    /// is axum's. Everything else comes from a [`Problem`].
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

    /// An error with a code and message, at the code's status.
    pub fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
        Problem::new(code, message).into()
    }

    /// 404 for paths homehook does not serve.
    pub fn not_found() -> Self {
        Self::coded(ErrorCode::NotFound, "Nothing here.")
    }

    /// 405 with the allowed methods (the gate's refusal, for the routes that take only GET).
    pub fn method_not_allowed(allow: &str) -> Self {
        crate::gate::method_not_allowed(allow).into()
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

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self {
            status: status_of(p.code),
            code: p.code.as_str(),
            message: p.message,
            retry_after_secs: p.retry_after_secs,
            allow: p.allow,
            vendor_status: p.vendor_status,
        }
    }
}

/// `From` each core error, through its [`Problem`].
macro_rules! from_problem {
    ($($error:ty),*) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                Problem::from(e).into()
            }
        }
    )*};
}

from_problem!(
    StoreError,
    SecretsError,
    SignatureRefusal,
    PinRefusal,
    ParamError,
    TokenError,
    ActionError
);
