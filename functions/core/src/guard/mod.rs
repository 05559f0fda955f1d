//! The checks in front of every action URL, one module each: which key opens what
//! ([`keyring`]), rate limits and lockouts ([`limits`]), signed mode ([`signature`]), PIN
//! step-up ([`pin`]) and idempotency ([`idempotency`]). They run in the order
//! [`crate::gate`] gives, and nowhere else.
//!
//! Keys and limits are per process and built from config; PIN failures, idempotency records and
//! seen signatures are in the store, so every instance sees them.

use std::net::IpAddr;
use std::sync::Arc;

pub mod idempotency;
pub mod key_use;
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
    /// Sources locked out for wrong keys (shared by the gates of every config version).
    pub lockout: Arc<SourceLockout>,
    /// When each key was last recorded as used (shared like the lockouts).
    pub key_use: Arc<key_use::KeyUse>,
}

impl Guard {
    /// A gate with these limiters (named by [`key_limiter`] and [`action_limiter`]) and the
    /// default lockout.
    pub fn new(limits: CallLimits) -> Self {
        Self {
            limits,
            lockout: Arc::default(),
            key_use: Arc::default(),
        }
    }

    /// A gate with new limiters (a new config: its keys and actions) that keeps this one's
    /// lockouts: a new config does not forgive a scanner.
    pub fn with_limits(&self, limits: CallLimits) -> Self {
        Self {
            limits,
            lockout: Arc::clone(&self.lockout),
            key_use: Arc::clone(&self.key_use),
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
