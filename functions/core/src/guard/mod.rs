//! The gate in front of every action URL. A call passes these checks in this order, and the
//! first that fails answers (see `http::actions`):
//!
//! 1. the source is not locked out for presenting wrong keys ([`limits::SourceLockout`]);
//! 2. a key that opens this action ([`keyring`]); every refusal is the same 401;
//! 3. an allowed method: POST, GET only where the action opts in; HEAD and OPTIONS never act;
//! 4. the key's and the action's rate limits ([`limits::CallLimits`]);
//! 5. the body within its size limit; in signed mode a fresh, unseen signature ([`signature`]);
//! 6. the PIN of a sensitive action, with its lockout ([`pin`]);
//! 7. parameters valid for the action (`params`);
//! 8. an `Idempotency-Key` not already answered ([`idempotency`]);
//! 9. the vendor's own budget (`pace`), checked on the way out.
//!
//! Keys and limits are per process and built from config; PIN failures, idempotency records and
//! seen signatures are in the store, so every instance sees them.

use std::net::IpAddr;

pub mod idempotency;
pub mod keyring;
pub mod limits;
pub mod pin;
pub mod signature;

use limits::{CallLimits, SourceLockout};

/// Where a request came from: the peer address locally, API Gateway's `sourceIp` on AWS.
/// Adapters put it in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSource(pub IpAddr);

/// The in-process state of the gate: rate limiters and lockouts.
#[derive(Debug)]
pub struct Guard {
    /// Limits per key (`key:<id>`) and per action (`action:<name>`).
    pub limits: CallLimits,
    /// Sources locked out for wrong keys.
    pub lockout: SourceLockout,
}

impl Guard {
    /// A gate with these limiters (named by [`key_limiter`] and [`action_limiter`]) and the
    /// default lockout.
    pub fn new(limits: CallLimits) -> Self {
        Self {
            limits,
            lockout: SourceLockout::default(),
        }
    }
}

/// The name of a key's limiter.
pub fn key_limiter(key_id: &str) -> String {
    format!("key:{key_id}")
}

/// The name of an action's limiter.
pub fn action_limiter(action: &str) -> String {
    format!("action:{action}")
}
