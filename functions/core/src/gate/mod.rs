//! **Where a request is authenticated.** Every call to an action URL passes these checks in
//! this order, and the first that fails answers. [`admit_action`] runs 1–4 before the body is
//! read; the delivery then reads the body (its size and time limits) and [`clear_action`] runs
//! 5–9. Each check itself lives in [`crate::guard`].
//!
//! 1. where the call comes from (the peer, or the client a trusted proxy names: see
//!    `server.trusted_proxies`), noted and not checked here: a lockout never refuses a key
//!    that opens the action;
//! 2. a key that opens this action ([`crate::guard::keyring`]); every refusal is the same 401,
//!    or 429 `source_locked` once the source or its network sent too many wrong keys
//!    ([`crate::guard::limits`]);
//! 3. an allowed method: POST, GET only where the action opts in; HEAD and OPTIONS never act;
//! 4. the key's and the action's rate limits;
//! 5. a usable `Idempotency-Key`; in signed mode a fresh signature of the timestamp, the
//!    `Idempotency-Key` and the body ([`crate::guard::signature`]), remembered whatever the
//!    headers: one seen before is refused, or, when it carries an `Idempotency-Key`, only
//!    answered from that key's kept answer to the same request (before the PIN), never run;
//! 6. a body that is a JSON object or a form of parameters;
//! 7. the PIN of a sensitive action, with its lockout ([`crate::guard::pin`]);
//! 8. an `Idempotency-Key` not already answered ([`crate::guard::idempotency`]), claimed before
//!    the parameters are checked, so a key reused for other parameters is told so even when
//!    those parameters are wrong;
//! 9. parameters valid for the action ([`crate::params`]).
//!
//! A call that clears every check counts as a use of its key ([`crate::guard::key_use`]).
//!
//! The vendor's own budget (`pace`) is checked on the way out, by the vendor client.
//!
//! [`admit_admin`] is the one check of the admin routes (`/status`, `/connect`, `/discover`,
//! the owner's view of `/`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::clock::UnixTime;
use crate::config::Action;
use crate::error::{ErrorCode, Problem};
use crate::guard::idempotency::{self, Claim, Claimed, Kept, KeptResponse};
use crate::guard::keyring::KeyEntry;
use crate::guard::limits::retry_secs;
use crate::guard::{Guard, action_limiter, key_limiter, pin, signature};
use crate::keys::KeyHash;
use crate::params::{self, Params};
use crate::secrets::SecretsError;
use crate::sensitive::SecretString;
use crate::services::Services;
use crate::store::item_key;

mod body;

pub use body::BodyValues;

/// What the URL and headers of an action call say, before its body is read. Its `Debug`
/// says whether a key came, never the key.
#[derive(Clone, Copy)]
pub struct Knock<'a> {
    /// The action named in the URL (the caller's text: it may be anything).
    pub action: &'a str,
    /// The key presented (path, `Authorization: Bearer`, or `?key=`), if any.
    pub key: Option<&'a str>,
    /// The method.
    pub method: &'a http::Method,
    /// Where the call came from, when known.
    pub source: Option<IpAddr>,
}

/// A call that passed checks 1–4: the action and the key that opens it.
#[derive(Debug, Clone, Copy)]
pub struct Admitted<'a> {
    /// The action.
    pub action: &'a Action,
    /// The key's entry.
    pub key: &'a KeyEntry,
    /// When it was admitted.
    pub now: UnixTime,
}

/// The rest of an action call, once its body is read. Its `Debug` shows sizes and presence
/// only: the body, the PIN and the signature are the caller's secrets.
#[derive(Clone)]
pub struct Presented<'a> {
    /// The body as received (within its size limit).
    pub body: &'a [u8],
    /// Its `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The query's parameters (without `key` and `format`).
    pub query: Vec<(String, String)>,
    /// The `Idempotency-Key` header's bytes, if sent.
    pub idempotency_key: Option<&'a [u8]>,
    /// The signature's timestamp header.
    pub signed_at: Option<&'a str>,
    /// The signature header.
    pub signature: Option<&'a str>,
    /// The PIN header.
    pub pin: Option<&'a str>,
    /// Which names the body's values go by.
    pub values: BodyValues,
}

impl std::fmt::Debug for Knock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knock")
            .field("action", &self.action)
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("method", &self.method)
            .field("source", &self.source)
            .finish()
    }
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: Option<&str>| v.map(|_| "[redacted]");
        f.debug_struct("Presented")
            .field("body_bytes", &self.body.len())
            .field("content_type", &self.content_type)
            .field(
                "query",
                &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "idempotency_key",
                &self.idempotency_key.map(|_| "[redacted]"),
            )
            .field("signed_at", &self.signed_at)
            .field("signature", &shown(self.signature))
            .field("pin", &shown(self.pin))
            .field("values", &self.values)
            .finish()
    }
}

/// A call that passed every check before its parameters: what to run, or what to answer.
#[derive(Debug)]
pub enum Cleared {
    /// Run the action: with its checked parameters, or answer the parameters' problem. Either
    /// way, under `claim` when the call carried an `Idempotency-Key`: keep the answer there.
    Run {
        /// The parameters, checked (or why they cannot be used).
        params: Result<Params, Problem>,
        /// The claim of the call's `Idempotency-Key`.
        claim: Option<Claim>,
    },
    /// The same call with the same `Idempotency-Key` was answered before: this is its answer.
    Replay(KeptResponse),
}

/// Checks 1–4 of an action call (see the module's list).
pub fn admit_action<'a>(
    services: &'a Services,
    guard: &Guard,
    knock: Knock<'_>,
) -> Result<Admitted<'a>, Problem> {
    let config = &services.config;
    let key = knock.key.ok_or_else(missing_key)?;
    let now = services.clock.now();
    let name = knock.action;
    let admitted = config.keys.admit(key, name, now);
    let (entry, action) = match (admitted, config.actions.get(name)) {
        (Ok(entry), Some(action)) => (entry, action),
        (refused, _) => {
            // A locked-out source's wrong keys are refused without a log line each: only
            // wrong ones, as the key was checked first (the owner's key behind the same proxy
            // or NAT still opens its action).
            if let Some(locked) = wrong_key(guard, knock.source) {
                return Err(locked);
            }
            let refusal = refused.err();
            // Only a configured action is named: an unknown "name" is the caller's text, and may
            // be a key pasted into the path.
            let shown = if config.actions.contains_key(name) {
                name
            } else {
                "(unknown)"
            };
            tracing::info!(
                action = shown,
                reason = refusal.as_ref().map_or("no such action", |r| r.reason()),
                key_id = refusal.as_ref().and_then(|r| r.key_id()).unwrap_or("-"),
                "refused a key"
            );
            return Err(unauthorized());
        }
    };
    // HEAD and OPTIONS never run an action, nor does GET unless the action opts in: a link
    // preview or a prefetch must not disarm an alarm.
    if !action.methods.contains(knock.method) {
        let allow: Vec<_> = action.methods.iter().map(http::Method::as_str).collect();
        return Err(method_not_allowed(&allow.join(", ")));
    }
    for limiter in [key_limiter(&entry.id), action_limiter(&action.name)] {
        if let Err(wait) = guard.limits.check(&limiter) {
            tracing::info!(action = %action.name, key_id = %entry.id, limiter, "rate limited");
            let secs = retry_secs(wait);
            return Err(Problem::new(
                ErrorCode::RateLimited,
                format!("Too many calls: try again in {secs} s."),
            )
            .retry_after(secs));
        }
    }
    tracing::info!(action = %action.name, key_id = %entry.id, "action called");
    Ok(Admitted {
        action,
        key: entry,
        now,
    })
}

/// Checks 5–9 of an admitted call (see the module's list).
pub async fn clear_action(
    services: &Services,
    guard: &Guard,
    admitted: &Admitted<'_>,
    method: &http::Method,
    presented: Presented<'_>,
) -> Result<Cleared, Problem> {
    let Admitted { action, key, now } = *admitted;
    let store = &*services.store;
    let idempotency_key = match presented.idempotency_key {
        None => None,
        Some(bytes) => Some(
            std::str::from_utf8(bytes)
                .ok()
                .filter(|k| idempotency::validate(k).is_ok())
                .ok_or_else(|| {
                    Problem::new(
                        ErrorCode::InvalidIdempotencyKey,
                        "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                    )
                })?,
        ),
    };
    // A signed request seen before (with the same Idempotency-Key, which the signature
    // covers) may only be answered from that key's kept record, never run again.
    let mut signature_seen = false;
    if let Some(secret) = &action.signing_secret {
        signature_seen =
            check_signature(services, action, secret, &presented, idempotency_key, now).await?
                == SignatureUse::Seen;
    }
    let (body_values, body_pin) = body::params(presented.content_type, presented.body)?;
    // A seen signature is settled before the PIN, so a replayed request never spends the
    // action's PIN tries: only the same key's kept answer to the same request is given back.
    let seen_answer = match idempotency_key.filter(|_| signature_seen) {
        None => None,
        Some(k) => {
            let same = gather(&presented, action, body_values.clone())?;
            let fingerprint = idempotency::fingerprint(method.as_str(), &same);
            match idempotency::kept(store, &key.id, &action.name, k, &fingerprint, now).await? {
                Kept::Answer(answer) => Some(answer),
                Kept::InProgress => return Err(in_progress()),
                // Released (the vendor said "try again"), never claimed, or another request:
                // running it would act twice on one signature.
                Kept::Nothing => return Err(signature::SignatureRefusal::Replayed.into()),
            }
        }
    };
    if let Some(hash) = &action.pin_hash {
        let pin = presented.pin.map(SecretString::new).or(body_pin);
        pin::check(store, &action.name, hash, pin, now).await?;
    }
    if let Some(answer) = seen_answer {
        return Ok(Cleared::Replay(answer));
    }
    let provided = gather(&presented, action, body_values)?;
    let claim = match idempotency_key {
        None => None,
        Some(k) => {
            let fingerprint = idempotency::fingerprint(method.as_str(), &provided);
            match idempotency::claim(store, &key.id, &action.name, k, fingerprint, now).await? {
                Claimed::New(claim) => Some(claim),
                Claimed::Replay(answer) => return Ok(Cleared::Replay(answer)),
                Claimed::InProgress => return Err(in_progress()),
                Claimed::Reused => {
                    return Err(Problem::new(
                        ErrorCode::IdempotencyKeyReused,
                        "This Idempotency-Key was used for a different request in the last 24 hours: use a new key for a new request.",
                    ));
                }
            }
        }
    };
    let params = params::check(&action.params, provided, now).map_err(Problem::from);
    if params.is_ok() {
        guard.key_use.note(store, &key.id, now).await;
    }
    Ok(Cleared::Run { params, claim })
}

/// The call's values: the body's, then the query's where the body has none, then IFTTT's
/// `value1`… mapped to the action's names.
fn gather(
    presented: &Presented<'_>,
    action: &Action,
    mut provided: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Problem> {
    for (k, v) in &presented.query {
        provided
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    if presented.values.fill_ifttt(action) {
        params::map_ifttt_values(&action.name, &action.ifttt, &mut provided)?;
    }
    Ok(provided)
}

/// The refusal of a repeat while the first call with its `Idempotency-Key` still runs.
fn in_progress() -> Problem {
    Problem::new(
        ErrorCode::IdempotencyInProgress,
        "The first call with this Idempotency-Key is still running: repeat it in a moment.",
    )
    .retry_after(1)
}

/// Whether a valid signature was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureUse {
    /// First use: the call may run.
    Fresh,
    /// Seen before, on a request with an `Idempotency-Key`: it may only be answered from that
    /// key's kept answer.
    Seen,
}

/// Signed mode: parameters in the body only, a fresh signature of the timestamp, the
/// `Idempotency-Key` and the body, and each signature good for one call.
async fn check_signature(
    services: &Services,
    action: &Action,
    secret: &str,
    presented: &Presented<'_>,
    idempotency_key: Option<&str>,
    now: UnixTime,
) -> Result<SignatureUse, Problem> {
    if !presented.query.is_empty() {
        return Err(Problem::new(
            ErrorCode::UnsignedParameters,
            "A signed action takes its parameters in the body only: the signature covers the body, not the URL.",
        ));
    }
    let key = services.secrets.signing_key(secret).await?;
    let verified = signature::verify(
        key.expose().as_bytes(),
        presented.signed_at,
        presented.signature,
        idempotency_key,
        presented.body,
        now,
    )?;
    // Every accepted signature is remembered, whatever the headers say: a signature is good
    // for one call. (Skipping this for requests with an Idempotency-Key let a captured request
    // act again under each new key; the key is now signed, and a repeat is only answered from
    // the kept record, never run.)
    let seen = item_key::seen_signature(&action.name, &verified.digest);
    let until = now.plus_secs(2 * signature::WINDOW_SECS + 1);
    let first = services
        .store
        .insert_item(&seen, "1", until, now)
        .await?
        .is_none();
    match (first, idempotency_key) {
        (true, _) => Ok(SignatureUse::Fresh),
        (false, Some(_)) => Ok(SignatureUse::Seen),
        (false, None) => Err(signature::SignatureRefusal::Replayed.into()),
    }
}

/// Counts a wrong key (action or admin) against its source; the refusal to give instead of
/// 401 when wrong keys from there are locked out. Said in the log once, when it locks.
fn wrong_key(guard: &Guard, source: Option<IpAddr>) -> Option<Problem> {
    let locked = guard.lockout.wrong_key(source?)?;
    if let Some(range) = locked.newly {
        tracing::warn!(source = %range, "wrong keys from this source are locked out after too many");
    }
    let secs = retry_secs(locked.wait);
    Some(
        Problem::new(
            ErrorCode::SourceLocked,
            format!(
                "Too many wrong keys from this address or its network: wrong keys are refused for {secs} s."
            ),
        )
        .retry_after(secs),
    )
}

/// The refusal of every wrong key, unknown action and out-of-scope key alike.
pub fn unauthorized() -> Problem {
    Problem::new(ErrorCode::Unauthorized, "Unknown action or wrong key.")
}

/// The refusal of a call without a key.
pub fn missing_key() -> Problem {
    Problem::new(
        ErrorCode::MissingKey,
        "Send the key as `Authorization: Bearer <key>` or `?key=<key>`.",
    )
}

/// The refusal of a method the URL does not take; `allow` lists those it takes.
pub fn method_not_allowed(allow: &str) -> Problem {
    let mut problem = Problem::new(
        ErrorCode::MethodNotAllowed,
        format!("This URL accepts only {allow}."),
    );
    problem.allow = Some(allow.to_string());
    problem
}

/// The secrets entry holding the admin key's hash, for `App::admin_key_from_secrets`.
pub const ADMIN_KEY_ENTRY: &str = "admin_key_hash";

/// Checks the admin key; the refusal says how to set one up when none is configured. Without
/// one in the config and with `hash_in_secrets`, the hash is read from the secrets' entry
/// `admin_key_hash` (see `App::admin_key_from_secrets`).
/// A wrong admin key counts against its source like a wrong action key.
pub async fn admit_admin(
    services: &Services,
    guard: &Guard,
    source: Option<IpAddr>,
    hash_in_secrets: bool,
    presented: Option<&str>,
) -> Result<(), Problem> {
    let from_secrets;
    let hash = match &services.config.server.admin_key_hash {
        Some(hash) => Some(hash),
        None if hash_in_secrets => {
            from_secrets = admin_key_in_secrets(services).await?;
            from_secrets.as_ref()
        }
        None => None,
    };
    let Some(hash) = hash else {
        return Err(Problem::new(
            ErrorCode::AdminDisabled,
            format!(
                "No admin key is configured: `{} key rotate admin` makes one (shown once) and publishes its hash.",
                services.config.server.command
            ),
        ));
    };
    let presented = presented.ok_or_else(missing_key)?;
    if hash.verify(presented) {
        Ok(())
    } else {
        if let Some(locked) = wrong_key(guard, source) {
            return Err(locked);
        }
        tracing::info!("admin request with a wrong key");
        Err(unauthorized())
    }
}

/// The admin key's hash from the secrets (cached there), if the entry exists.
async fn admin_key_in_secrets(services: &Services) -> Result<Option<KeyHash>, Problem> {
    let value = match services.secrets.entry(ADMIN_KEY_ENTRY).await {
        Ok(value) => value,
        Err(SecretsError::NoEntry { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    value
        .as_str()
        .and_then(|text| text.parse::<KeyHash>().ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::misconfigured(format!(
                "the secrets entry {ADMIN_KEY_ENTRY} is not a key hash (sha256:<64 hex digits>)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_call_shows_no_key_pin_signature_or_body() {
        let knock = Knock {
            action: "disarm",
            key: Some("hh_the-callers-key"),
            method: &http::Method::POST,
            source: None,
        };
        let presented = Presented {
            body: br#"{"pin": "2468"}"#,
            content_type: Some("application/json"),
            query: vec![("mode".into(), "the-value".into())],
            idempotency_key: Some(b"idem-secret"),
            signed_at: Some("1700000000"),
            signature: Some("sha256=the-signature"),
            pin: Some("1357"),
            values: BodyValues::Named,
        };
        let shown = format!("{knock:?} {presented:?}");
        assert!(
            shown.contains("disarm") && shown.contains("mode"),
            "{shown}"
        );
        for secret in [
            "hh_the-callers-key",
            "2468",
            "the-value",
            "idem-secret",
            "the-signature",
            "1357",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
