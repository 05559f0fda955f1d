//! homehook's core: everything that turns an OAuth2-protected smart-home API into short secret
//! URLs, with no AWS in it. The local server (`homehook serve`) and the Lambda functions are
//! thin hosts around this crate.
//!
//! # Layout
//!
//! - [`config`]: `homehook.toml`, checked completely at start-up.
//! - [`catalog`]: providers as data (endpoints, grants, client auth, token placement, how an
//!   expired token shows itself).
//! - [`providers`]: one module per vendor (its catalog entry and quirks); [`builtin`]: the
//!   built-in actions each vendor offers, as data.
//! - [`oauth`]: the OAuth2 protocol, through the `oauth2` crate (PKCE, state, code, password,
//!   refresh), tolerant of vendor quirks in token answers.
//! - [`refresh`]: **where a token is refreshed** — [`refresh::TokenKeeper`].
//! - [`schedule`]: **where a scheduled action fires** — cron in a time zone, claimed once per
//!   due time in the store.
//! - [`token`]: the stored token record and connection health.
//! - [`store`]: storage ports (versioned tokens, single-use items) with memory and SQLite
//!   implementations.
//! - [`secrets`]: the secrets port and its local implementation.
//! - [`params`], [`action`], [`template`]: checking caller parameters, rendering the vendor
//!   request; [`answer`]: the spoken answer (minijinja templates).
//! - [`api`]: **where a vendor is called** — [`api::ApiClient`] (fresh token, quirks, one
//!   renewal, bounded retries); [`vendor`]: one HTTP call.
//! - [`keys`]: key generation, hashing and constant-time checks.
//! - [`guard`]: **the gate in front of every action URL** — which key opens what, rate limits
//!   and lockouts, signed mode, PIN step-up, idempotency; [`pace`]: staying within a vendor's
//!   API budget.
//! - [`http`]: axum routers (`/connect`, `/callback`, `/a/{action}`, `/status`, `/healthz`).
//! - [`app`]: the services shared by every request; [`clock`]: injected time;
//!   [`secret`]: a string type that never prints.

pub mod action;
pub mod answer;
pub mod app;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod connect;
pub mod cron;
pub mod error;
pub mod gate;
pub mod guard;
pub mod http;
pub mod keys;
pub mod notify;
pub mod oauth;
pub mod pace;
pub mod params;
pub mod providers;
pub mod recipe;
pub mod refresh;
pub mod schedule;
pub mod secret;
pub mod secrets;
pub mod services;
pub mod status;
pub mod store;
pub mod template;
pub mod token;
pub mod vendor;
pub mod vendor_client;

pub use app::App;
pub use config::Config;
