//! The gate, round two: signed requests replayed with a new Idempotency-Key, a revoked key
//! listed twice, an idempotency claim outliving its call, PINs searched offline.

#[allow(unused_imports)]
use super::*;
