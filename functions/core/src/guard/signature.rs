//! Signed mode: a caller that holds an action's signing key sends
//! `X-Homehook-Timestamp: <unix seconds>` and `X-Homehook-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of `"<timestamp>.<body>"`. homehook's own notifications are signed the same way,
//! so one recipe verifies both directions.
//!
//! A signature older or newer than five minutes is refused; one seen before is refused too (the
//! store remembers it for the window), unless the request carries an `Idempotency-Key`, whose
//! stored answer then replies without acting again.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::UnixTime;

/// How far a signed request's timestamp may be from homehook's clock, either way.
pub const WINDOW_SECS: i64 = 300;

/// Header with the Unix time the caller signed at.
pub const TIMESTAMP_HEADER: &str = "x-homehook-timestamp";
/// Header with `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-homehook-signature";

/// `sha256=<hex>`: the HMAC-SHA256 under `key` of `"<timestamp>.<body>"`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(key, timestamp, body).finalize().into_bytes())
    )
}

fn mac(key: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; the fallback keeps the
    // type total without a panic path.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a signed request was refused (each a 401 with its own code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// No timestamp or signature header.
    #[error(
        "this action is signed: send X-Homehook-Timestamp and X-Homehook-Signature (sha256=HMAC-SHA256 of \"<timestamp>.<body>\")"
    )]
    Missing,
    /// A header is not in the expected form.
    #[error(
        "X-Homehook-Timestamp must be Unix seconds and X-Homehook-Signature \"sha256=\" and 64 hex digits"
    )]
    Malformed,
    /// The timestamp is outside the window.
    #[error(
        "the timestamp is {skew_secs} s away from homehook's clock (at most 300 s): sign again with the current time"
    )]
    Stale {
        /// How far it is, in seconds.
        skew_secs: i64,
    },
    /// The signature does not match the body and timestamp.
    #[error("the signature does not match the timestamp and body")]
    Mismatch,
    /// The same signature was already used.
    #[error(
        "this signed request was already received: sign each request anew, or send an Idempotency-Key to repeat one safely"
    )]
    Replayed,
}

/// A signature that checked out: its hex digest, to remember against replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signature's hex digits.
    pub digest: String,
}

/// Checks a signed request's headers against `key`, `body` and the time `now`.
pub fn verify(
    key: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: UnixTime,
) -> Result<Verified, SignatureRefusal> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureRefusal::Missing);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureRefusal::Malformed)?;
    let digest = signature
        .trim()
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64)
        .ok_or(SignatureRefusal::Malformed)?;
    let bytes = hex::decode(digest).map_err(|_| SignatureRefusal::Malformed)?;
    let skew_secs = now.0.saturating_sub(ts);
    if skew_secs.saturating_abs() > WINDOW_SECS {
        return Err(SignatureRefusal::Stale { skew_secs });
    }
    // `verify_slice` compares in constant time.
    mac(key, ts, body)
        .verify_slice(&bytes)
        .map_err(|_| SignatureRefusal::Mismatch)?;
    Ok(Verified {
        digest: digest.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"whsec-test";
    const NOW: UnixTime = UnixTime(1_700_000_000);

    #[test]
    fn a_fresh_signature_verifies() {
        let body = br#"{"mode":"away"}"#;
        let sig = sign(KEY, NOW.0 - 10, body);
        let ok = verify(KEY, Some(&(NOW.0 - 10).to_string()), Some(&sig), body, NOW);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn matches_a_python_computed_vector() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"whsec-test", b"1700000000.{\"event\":\"reauth_needed\"}",
        // hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(KEY, 1_700_000_000, br#"{"event":"reauth_needed"}"#),
            "sha256=3cf1ec3085d690470eb55f34cae854ce3f121f29b5af5cbd7069ca7a40f7e161"
        );
        assert_ne!(
            sign(b"k", 1_700_000_000, b"{}"),
            sign(b"k", 1_700_000_001, b"{}"),
            "the timestamp is covered"
        );
    }

    #[test]
    fn every_kind_of_bad_signature_is_refused() {
        let body = b"{}";
        let ts = NOW.0.to_string();
        let good = sign(KEY, NOW.0, body);
        type Case<'a> = (Option<&'a str>, Option<String>, &'a [u8], SignatureRefusal);
        let cases: Vec<Case> = vec![
            (None, Some(good.clone()), body, SignatureRefusal::Missing),
            (Some(&ts), None, body, SignatureRefusal::Missing),
            (
                Some("yesterday"),
                Some(good.clone()),
                body,
                SignatureRefusal::Malformed,
            ),
            (
                Some(&ts),
                Some("md5=00".into()),
                body,
                SignatureRefusal::Malformed,
            ),
            (
                Some(&ts),
                Some(format!("sha256={}", "zz".repeat(32))),
                body,
                SignatureRefusal::Malformed,
            ),
            (
                Some(&ts),
                Some(good.clone()),
                b"{\"x\":1}",
                SignatureRefusal::Mismatch,
            ),
            (
                Some(&ts),
                Some(sign(b"other key", NOW.0, body)),
                body,
                SignatureRefusal::Mismatch,
            ),
        ];
        for (t, s, b, want) in cases {
            assert_eq!(verify(KEY, t, s.as_deref(), b, NOW), Err(want));
        }
        let old = NOW.0 - 301;
        assert_eq!(
            verify(
                KEY,
                Some(&old.to_string()),
                Some(&sign(KEY, old, body)),
                body,
                NOW
            ),
            Err(SignatureRefusal::Stale { skew_secs: 301 })
        );
        let future = NOW.0 + 301;
        assert_eq!(
            verify(
                KEY,
                Some(&future.to_string()),
                Some(&sign(KEY, future, body)),
                body,
                NOW
            ),
            Err(SignatureRefusal::Stale { skew_secs: -301 })
        );
    }
}
