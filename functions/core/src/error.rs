//! The errors every use case shares, and what a caller is told about any of them: a
//! [`Problem`], a stable [`ErrorCode`] with words for people. Which HTTP status a code gets is
//! decided in one table at the edge (`http::error`), so nothing here knows about HTTP.

use crate::guard::pin::PinRefusal;
use crate::guard::signature::SignatureRefusal;
use crate::params::ParamError;
use crate::secrets::SecretsError;
use crate::sensitive::redact_secrets;
use crate::store::StoreError;

/// Every refusal and failure homehook answers, by its stable name (the JSON `error` member).
/// Two codes may share a name where one name was always answered with two statuses (a vendor
/// busy at its token endpoint during a connect is `vendor_busy` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No key, a wrong key, or (answered alike) no such action.
    Unauthorized,
    /// No key at all.
    MissingKey,
    /// The admin routes are off: no admin key is configured.
    AdminDisabled,
    /// Too many wrong keys came from this address.
    SourceLocked,
    /// This URL does not take this method.
    MethodNotAllowed,
    /// This key or action calls faster than its rate limit.
    RateLimited,
    /// A signed action was called without a signature.
    SignatureRequired,
    /// The signature headers cannot be read.
    SignatureMalformed,
    /// The signature's time is too far from now.
    SignatureStale,
    /// The signature does not match.
    SignatureMismatch,
    /// The signed request was already received.
    SignatureReplayed,
    /// A signed action got parameters in its URL, which the signature does not cover.
    UnsignedParameters,
    /// A sensitive action was called without its PIN.
    PinRequired,
    /// The PIN is wrong.
    WrongPin,
    /// Too many wrong PINs: the action is locked for a while.
    PinLocked,
    /// The PIN is neither text nor a number.
    InvalidPin,
    /// The `Idempotency-Key` header cannot be used.
    InvalidIdempotencyKey,
    /// The first call with this `Idempotency-Key` is still running.
    IdempotencyInProgress,
    /// The `Idempotency-Key` was used for another request.
    IdempotencyKeyReused,
    /// No such path.
    NotFound,
    /// No connection of that name.
    UnknownConnection,
    /// The request cannot be read.
    BadRequest,
    /// The body is over its limit.
    BodyTooLarge,
    /// The body took too long to arrive.
    BodyTimeout,
    /// The body is neither JSON nor a form.
    UnsupportedMediaType,
    /// The body is not a JSON object of parameters.
    MalformedBody,
    /// A parameter the action does not take.
    UnknownParameter,
    /// A required parameter is missing.
    MissingParameter,
    /// A parameter value does not fit its type.
    InvalidParameter,
    /// The connection was never connected.
    NotConnected,
    /// The owner must connect the account again.
    ReauthNeeded,
    /// homehook's own settings for a vendor are wrong.
    Misconfigured,
    /// The store failed.
    StoreUnavailable,
    /// The vendor failed or could not be reached (try again later).
    VendorUnavailable,
    /// The vendor refused the request.
    VendorRejected,
    /// The vendor asks to slow down.
    VendorBusy,
    /// The vendor account's call budget is spent for now.
    VendorBudget,
    /// The callback's query string cannot be read.
    MalformedCallback,
    /// The callback has no `state`.
    MissingState,
    /// The connect link expired.
    ExpiredState,
    /// The connect link was used already, or not issued here.
    InvalidState,
    /// The owner declined at the vendor.
    AccessDenied,
    /// The vendor sent the owner back with an error.
    VendorError,
    /// The vendor sent no authorization code.
    MissingCode,
    /// The vendor refused the authorization code.
    InvalidCode,
    /// The vendor's token endpoint asks to slow down during a connect.
    TokenEndpointBusy,
    /// The vendor's token endpoint failed during a connect.
    TokenEndpointFailed,
    /// homehook failed where it should not have.
    Internal,
}

impl ErrorCode {
    /// The code as callers see it.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthorized => "unauthorized",
            MissingKey => "missing_key",
            AdminDisabled => "admin_disabled",
            SourceLocked => "source_locked",
            MethodNotAllowed => "method_not_allowed",
            RateLimited => "rate_limited",
            SignatureRequired => "signature_required",
            SignatureMalformed => "signature_malformed",
            SignatureStale => "signature_stale",
            SignatureMismatch => "signature_mismatch",
            SignatureReplayed => "signature_replayed",
            UnsignedParameters => "unsigned_parameters",
            PinRequired => "pin_required",
            WrongPin => "wrong_pin",
            PinLocked => "pin_locked",
            InvalidPin => "invalid_pin",
            InvalidIdempotencyKey => "invalid_idempotency_key",
            IdempotencyInProgress => "idempotency_in_progress",
            IdempotencyKeyReused => "idempotency_key_reused",
            NotFound => "not_found",
            UnknownConnection => "unknown_connection",
            BadRequest => "bad_request",
            BodyTooLarge => "body_too_large",
            BodyTimeout => "body_timeout",
            UnsupportedMediaType => "unsupported_media_type",
            MalformedBody => "malformed_body",
            UnknownParameter => "unknown_parameter",
            MissingParameter => "missing_parameter",
            InvalidParameter => "invalid_parameter",
            NotConnected => "not_connected",
            ReauthNeeded => "reauth_needed",
            Misconfigured => "misconfigured",
            StoreUnavailable => "store_unavailable",
            VendorUnavailable | TokenEndpointFailed => "vendor_unavailable",
            VendorRejected => "vendor_rejected",
            VendorBusy | TokenEndpointBusy => "vendor_busy",
            VendorBudget => "vendor_budget",
            MalformedCallback => "malformed_callback",
            MissingState => "missing_state",
            ExpiredState => "expired_state",
            InvalidState => "invalid_state",
            AccessDenied => "access_denied",
            VendorError => "vendor_error",
            MissingCode => "missing_code",
            InvalidCode => "invalid_code",
            Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller (or a scheduled run's record) is told when something did not work: the code,
/// what happened and what to do, and when to try again. Nothing in it comes from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
    /// Seconds to wait before trying again, for passing failures.
    pub retry_after_secs: Option<u64>,
    /// The vendor's HTTP status, when the vendor refused.
    pub vendor_status: Option<u16>,
    /// The methods the URL takes, when the method was refused.
    pub allow: Option<String>,
}

impl Problem {
    /// A problem with a code and words.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
            vendor_status: None,
            allow: None,
        }
    }

    /// Sets the wait before trying again.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// homehook's own settings for a vendor are wrong; `message` names what to fix.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Misconfigured, message)
    }
}

/// A store failure, for the caller: the backend's own words (an SDK error can carry the
/// account, a role's ARN, the raw response) go to the log, never into an answer.
impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store failed");
        // An `if`, not a match: the OpenAPI check reads a match arm's string in this file as
        // an error code.
        let words = if matches!(e, StoreError::Corrupt(_)) {
            "Stored data could not be read; the log says which."
        } else {
            "The store is unavailable right now: try again in a few seconds."
        };
        Self::new(ErrorCode::StoreUnavailable, words).retry_after(5)
    }
}

/// A secrets failure: what the owner must fix is said (a missing or malformed entry names no
/// value); a backend failure's own words go to the log only, like the store's.
impl From<SecretsError> for Problem {
    fn from(e: SecretsError) -> Self {
        match e {
            SecretsError::Backend(_) => {
                tracing::warn!(error = %e, "secrets failed");
                Self::new(
                    ErrorCode::Misconfigured,
                    "The vendors' credentials cannot be read right now (the secrets store failed; the log says why).",
                )
            }
            other => Self::misconfigured(other.to_string()),
        }
    }
}

impl From<SignatureRefusal> for Problem {
    fn from(e: SignatureRefusal) -> Self {
        let code = match e {
            SignatureRefusal::Missing => ErrorCode::SignatureRequired,
            SignatureRefusal::Malformed => ErrorCode::SignatureMalformed,
            SignatureRefusal::Stale { .. } => ErrorCode::SignatureStale,
            SignatureRefusal::Mismatch => ErrorCode::SignatureMismatch,
            SignatureRefusal::Replayed => ErrorCode::SignatureReplayed,
        };
        Self::new(code, e.to_string())
    }
}

impl From<PinRefusal> for Problem {
    fn from(e: PinRefusal) -> Self {
        let message = e.to_string();
        match e {
            PinRefusal::Required => Self::new(ErrorCode::PinRequired, message),
            PinRefusal::Wrong { .. } => Self::new(ErrorCode::WrongPin, message),
            PinRefusal::Locked { retry_after_secs } => {
                Self::new(ErrorCode::PinLocked, message).retry_after(retry_after_secs)
            }
            PinRefusal::Store(e) => e.into(),
        }
    }
}

impl From<ParamError> for Problem {
    fn from(e: ParamError) -> Self {
        let code = match e {
            ParamError::Unknown { .. } => ErrorCode::UnknownParameter,
            ParamError::Missing(_) => ErrorCode::MissingParameter,
            ParamError::Invalid { .. } => ErrorCode::InvalidParameter,
        };
        Self::new(code, e.to_string())
    }
}

impl From<TokenError> for Problem {
    fn from(e: TokenError) -> Self {
        let message = e.to_string();
        match e {
            TokenError::NotConnected(_) => Self::new(
                ErrorCode::NotConnected,
                format!("{message}: the owner opens /connect/<connection> with the admin key."),
            ),
            // The token endpoint's words (`error_description`) are in these two.
            TokenError::ReauthNeeded { .. } => Self::new(
                ErrorCode::ReauthNeeded,
                format!(
                    "{}. The owner opens /connect/<connection> again.",
                    redact_secrets(&message)
                ),
            ),
            TokenError::Misconfigured { .. } => Self::misconfigured(message),
            TokenError::Secrets(e) => e.into(),
            TokenError::Unavailable {
                retry_after_secs, ..
            } => Self::new(ErrorCode::VendorUnavailable, redact_secrets(&message))
                .retry_after(retry_after_secs),
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<ActionError> for Problem {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::Token(t) => t.into(),
            ActionError::Param(p) => p.into(),
            // The vendor's words are in these two: no credential it echoed reaches the caller.
            ActionError::VendorRejected { status, .. } => {
                let mut problem = Self::new(ErrorCode::VendorRejected, redact_secrets(&message));
                problem.vendor_status = Some(status);
                problem
            }
            // Both are "too many calls for this vendor account": the caller should slow down.
            ActionError::VendorBusy { retry_after_secs } => {
                Self::new(ErrorCode::VendorBusy, message).retry_after(retry_after_secs)
            }
            ActionError::OverBudget { retry_after_secs } => {
                Self::new(ErrorCode::VendorBudget, message).retry_after(retry_after_secs)
            }
            ActionError::VendorUnavailable(_) => {
                Self::new(ErrorCode::VendorUnavailable, redact_secrets(&message)).retry_after(30)
            }
            ActionError::Misconfigured(_) => Self::misconfigured(message),
        }
    }
}

/// Why no usable token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The connection was never connected.
    #[error("connection \"{0}\" is not connected yet")]
    NotConnected(String),
    /// The owner must connect again.
    #[error("connection \"{connection}\" must be connected again: {reason}")]
    ReauthNeeded {
        /// The connection.
        connection: String,
        /// What the vendor said.
        reason: String,
    },
    /// homehook's client settings for this vendor are wrong.
    #[error("connection \"{connection}\" is misconfigured: {detail}")]
    Misconfigured {
        /// The connection.
        connection: String,
        /// What to fix.
        detail: String,
    },
    /// The vendor is busy or down; try again later.
    #[error("the vendor is unavailable: {detail}")]
    Unavailable {
        /// What happened.
        detail: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection's secret could not be read.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// Why an action did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No usable token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The vendor refused the request (4xx other than an expired token).
    #[error("the vendor refused the request (HTTP {status}){}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    VendorRejected {
        /// Vendor status.
        status: u16,
        /// The vendor's words.
        reason: Option<String>,
    },
    /// The vendor is rate limiting.
    #[error("the vendor asks to slow down; try again in {retry_after_secs} s")]
    VendorBusy {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// homehook held the call back: the connection's vendor budget (Netatmo: 50 per 10 s,
    /// 500 per hour) is spent for now.
    #[error(
        "this vendor account's call budget is spent for now; try again in {retry_after_secs} s"
    )]
    OverBudget {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The vendor failed (5xx) or could not be reached.
    #[error("the vendor is unavailable: {0}")]
    VendorUnavailable(String),
    /// A parameter value cannot be used.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The action's config produced an unusable request.
    #[error("the action is misconfigured: {0}")]
    Misconfigured(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backends_own_words_never_reach_the_caller() {
        let leak = "User: arn:aws:iam::123456789012:user/ActionsFunction is not authorized";
        let store = Problem::from(StoreError::Backend(leak.into()));
        assert_eq!(store.code, ErrorCode::StoreUnavailable);
        assert!(!store.message.contains("arn:aws"), "{}", store.message);
        assert_eq!(store.retry_after_secs, Some(5));
        let secrets = Problem::from(SecretsError::Backend(leak.into()));
        assert!(!secrets.message.contains("arn:aws"), "{}", secrets.message);
        // What the owner must fix is still said.
        let missing = Problem::from(SecretsError::NoEntry {
            name: "netatmo".into(),
            store: "the secret".into(),
        });
        assert!(missing.message.contains("netatmo"), "{}", missing.message);
    }
}
