//! homehook's core: everything that turns an OAuth2-protected smart-home API into short secret
//! URLs, with no AWS in it. The local server (`homehook serve`) and the Lambda functions are
//! thin hosts around this crate.
//!
//! # Layout
//!
//! The modules stand in tiers. A module uses the tiers below it and the modules listed before
//! it in its own tier, never anything above: the dependencies point one way, so any module can
//! be read, tested and changed with only what is below it in mind. `tests/architecture.rs`
//! fails on an import against this order (`use` lines and inline `crate::` paths alike).
//!
//! 1. **Base**: values with no knowledge of homehook's domain.
//!    [`sensitive`]: a string that never prints; [`clock`]: injected time; [`keys`]: key
//!    generation, hashing, constant-time checks; [`template`]: the `{param}` request
//!    templates; [`cron`]: crontab's five fields in a time zone.
//! 2. **Model**: what homehook is about, as data.
//!    [`token`]: the stored token record and connection health; [`params`]: parameter
//!    declarations and the checking of caller values; [`answer`]: the spoken answer (minijinja
//!    templates); [`catalog`]: providers as data (endpoints, grants, token placement, budgets);
//!    [`recipe`]: the shape of a built-in action.
//! 3. **Ports**: what the core needs from outside, and its shared errors.
//!    [`store`]: versioned tokens and single-use items (memory here, SQLite in
//!    `homehook-local`, DynamoDB in `homehook-aws`); [`secrets`]: client credentials and keys (a file here, Secrets Manager in
//!    `homehook-aws`); [`guard`]: the checks in front of an action URL, each alone;
//!    [`error`]: the errors every use case shares, with stable codes.
//! 4. **Vendors**: talking to vendors, without knowing homehook's config or services.
//!    [`vendor`]: one HTTP call, kept under the target's base; [`providers`]: one folder per
//!    vendor behind the [`providers::Vendor`] trait, listed once in [`providers::VENDORS`],
//!    calling out through the [`providers::port::VendorApi`] port; [`oauth`]: the OAuth2
//!    protocol through the `oauth2` crate (PKCE, state, code, password, refresh).
//! 5. **Config**: [`config`]: `homehook.toml`, checked completely at start-up.
//! 6. **Services**: the use cases, over [`services::Services`].
//!    [`notify`]: telling the owner; [`refresh`]: the token keeper; [`pace`]: staying within
//!    a vendor's API budget; [`publish`]: the config document in the store, checked before it
//!    is written; [`key_admin`]: making, rotating and revoking keys as published edits;
//!    [`services`]: the services value; [`vendor_client`]: one
//!    connection's API; [`action`]: running an action; [`schedule`]: scheduled actions;
//!    [`connect`]: connecting an account; [`status`]: the status report; [`gate`]: admitting
//!    a request.
//! 7. **Root**: [`app`]: the services and the gate's in-process state, built once per process;
//!    the tick; [`live`]: the app of the newest published config, for every request and tick.
//! 8. **Delivery**: [`http`]: axum routers and handlers, the same for `homehook serve` and the
//!    Lambda functions.
//!
//! # Invariants
//!
//! - Nothing below [`http`] names axum or an HTTP status. Errors carry an
//!   [`error::ErrorCode`]; `http::error::status_of` is the one table from code to status.
//! - Nothing below [`app`] takes `&App`: use cases take `&Services` or something narrower.
//! - A vendor module sees no config, store or keeper: it is data, pure functions, and async
//!   code over the [`providers::port::VendorApi`] port.
//! - Only [`refresh`] writes a token record (access and refresh tokens, device sessions).
//! - Only [`gate`] decides whether a request may act, in the order its docs give.
//! - Test code may use anything: the rules are for what ships.
//!
//! `tests/architecture.rs` checks each of these that a grep can.
//!
//! # Where is…
//!
//! - **a token renewed?** [`refresh`]: [`refresh::TokenKeeper`] renews access tokens ahead of
//!   expiry and on the vendor's word, across processes with a lease; device sessions (Homey)
//!   in `refresh/session.rs`.
//! - **a request authenticated?** [`gate`]: `admit_action` and `clear_action` run the ordered
//!   checks of an action URL, `admit_admin` the admin key's.
//! - **a vendor called?** [`vendor_client::VendorClient`]: fresh token, pace, the vendor's
//!   reading of the answer, one renewal, bounded retries.
//! - **a vendor's quirk?** `providers/<vendor>/`: its `impl Vendor` and its `recipes.toml`.
//! - **an answer rendered?** The words in [`answer`] (through `action::render_answer`: the
//!   template, or "OK"); their HTTP form (text or JSON, a kept answer replayed) in
//!   `http/actions.rs`.
//! - **a scheduled action fired?** [`schedule::fire_due`], from the tick in [`app`].
//!
//! # Adding a vendor
//!
//! One folder and one line: `providers/<vendor>/mod.rs` with a unit struct implementing
//! [`providers::Vendor`] (its id, its catalog entries, and whichever of answer reading, code
//! steps, discovery and device sessions it needs), `providers/<vendor>/recipes.toml` with its
//! built-in actions, and the struct added to [`providers::VENDORS`]. Its docs page goes in
//! `docs/providers/`.

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
pub mod key_admin;
pub mod keys;
pub mod live;
pub mod notify;
pub mod oauth;
pub mod pace;
pub mod params;
pub mod providers;
pub mod publish;
pub mod recipe;
pub mod refresh;
pub mod schedule;
pub mod secrets;
pub mod sensitive;
pub mod services;
pub mod status;
pub mod store;
pub mod template;
pub mod token;
pub mod vendor;
pub mod vendor_client;

#[cfg(test)]
mod test_support;

pub use app::App;
pub use config::Config;
