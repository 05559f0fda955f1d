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

use crate::config::Config;

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
    /// The limiters of every key and action in `config`.
    pub fn new(config: &Config) -> Self {
        let mut limits = CallLimits::default();
        for entry in config.keys.entries() {
            limits.add(format!("key:{}", entry.id), entry.rate_limit);
        }
        for action in config.actions.values() {
            limits.add(format!("action:{}", action.name), action.rate_limit);
        }
        Self {
            limits,
            lockout: SourceLockout::default(),
        }
    }
}
