//! homehook on one machine: the adapters `homehook serve` (and self-hosting) plugs into the
//! core's ports, the local mirror of `homehook-aws`. The Lambda functions do not link it, so
//! their bootstraps carry no SQLite.
//!
//! # Layout
//!
//! - [`sqlite`]: the embedded store, one SQLite file ([`SqliteStore`]).
//!
//! The local secrets file stays in the core (`homehook_core::secrets::LocalSecrets`): it needs
//! nothing heavier than the standard library, and the core's own tests use it.

pub mod sqlite;

pub use sqlite::{DB_FILE, SqliteStore};
