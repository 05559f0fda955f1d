//! Signed mode: a caller that holds an action's signing key sends
//! `X-Homehook-Timestamp: <unix seconds>` and `X-Homehook-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the signed text ([`signed_text`]):
//!
//! - without an `Idempotency-Key`: `"<timestamp>.<body>"`;
//! - with one: `"<timestamp>\n<idempotency key>\n<body>"`.
//!
//! The timestamp is the decimal number sent in `X-Homehook-Timestamp` (no sign, no leading zeros:
//! what homehook reads is written back the canonical way), the body its raw bytes. The key is
//! covered because it decides whether a repeat acts: were it left out, a captured request with a
//! new key would act again. The two forms never sign the same text: after the timestamp's digits
//! comes `.` in one and a newline in the other, and a key cannot contain a newline (it is
//! visible ASCII), so where the key ends is never in doubt. homehook's own notifications carry no
//! key and are signed the first way, so one recipe verifies both directions.
//!
//! A signature older or newer than five minutes is refused. Every accepted signature is
//! remembered in the store for the window, whatever the headers say; a repeat of it is refused,
//! except that a repeat carrying the same (signed) `Idempotency-Key` for the same request gets
//! the first call's kept answer without acting again (see [`crate::gate`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::UnixTime;

/// How far a signed request's timestamp may be from homehook's clock, either way.
pub const WINDOW_SECS: i64 = 300;

/// Header with the Unix time the caller signed at.
pub const TIMESTAMP_HEADER: &str = "x-homehook-timestamp";
/// Header with `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-homehook-signature";

/// `sha256=<hex>`: the HMAC-SHA256 under `key` of `"<timestamp>.<body>"`, a request (or a
/// notification) without an `Idempotency-Key`. Same as [`sign_request`] with `None`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    sign_request(key, timestamp, None, body)
}

/// `sha256=<hex>`: the HMAC-SHA256 under `key` of the [`signed_text`] of a request, with its
/// `Idempotency-Key` when it carries one.
pub fn sign_request(
    key: &[u8],
    timestamp: i64,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> String {
    format!(
        "sha256={}",
        hex::encode(
            mac(key, timestamp, idempotency_key, body)
                .finalize()
                .into_bytes()
        )
    )
}

/// The text a signature covers: `"<timestamp>.<body>"`, or with an `Idempotency-Key`
/// `"<timestamp>\n<key>\n<body>"` (see the module's documentation for why).
pub fn signed_text(timestamp: i64, idempotency_key: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut text = timestamp.to_string().into_bytes();
    match idempotency_key {
        None => text.push(b'.'),
        Some(k) => {
            text.push(b'\n');
            text.extend_from_slice(k.as_bytes());
            text.push(b'\n');
        }
    }
    text.extend_from_slice(body);
    text
}

fn mac(key: &[u8], timestamp: i64, idempotency_key: Option<&str>, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; the fallback keeps the
    // type total without a panic path.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(&signed_text(timestamp, idempotency_key, body));
    mac
}

/// Why a signed request was refused (each a 401 with its own code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// No timestamp or signature header.
    #[error(
        "this action is signed: send X-Homehook-Timestamp and X-Homehook-Signature (sha256=HMAC-SHA256 of \"<timestamp>.<body>\", or of \"<timestamp>\\n<Idempotency-Key>\\n<body>\" when the request carries an Idempotency-Key)"
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
    /// The signature does not match the timestamp, the `Idempotency-Key` and the body.
    #[error(
        "the signature does not match the timestamp, Idempotency-Key and body (with an Idempotency-Key the signed text is \"<timestamp>\\n<Idempotency-Key>\\n<body>\")"
    )]
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

/// Checks a signed request's headers against `key`, its `Idempotency-Key` (already checked for
/// shape), `body` and the time `now`.
pub fn verify(
    key: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    idempotency_key: Option<&str>,
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
    mac(key, ts, idempotency_key, body)
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
        let ok = verify(
            KEY,
            Some(&(NOW.0 - 10).to_string()),
            Some(&sig),
            None,
            body,
            NOW,
        );
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
            assert_eq!(verify(KEY, t, s.as_deref(), None, b, NOW), Err(want));
        }
        let old = NOW.0 - 301;
        assert_eq!(
            verify(
                KEY,
                Some(&old.to_string()),
                Some(&sign(KEY, old, body)),
                None,
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
                None,
                body,
                NOW
            ),
            Err(SignatureRefusal::Stale { skew_secs: -301 })
        );
    }

    #[test]
    fn the_idempotency_key_is_covered_and_cannot_be_moved_into_or_out_of_the_body() {
        let body = br#"{"mode":"away"}"#;
        let ts = NOW.0.to_string();
        let with = sign_request(KEY, NOW.0, Some("shortcut-7f3a"), body);
        let check = |sig: &str, idem: Option<&str>, body: &[u8]| {
            verify(KEY, Some(&ts), Some(sig), idem, body, NOW).map(|_| ())
        };
        assert_eq!(check(&with, Some("shortcut-7f3a"), body), Ok(()));
        // Another key, no key, or the key's signature on a request without one: refused.
        assert_eq!(
            check(&with, Some("shortcut-7f3b"), body),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(check(&with, None, body), Err(SignatureRefusal::Mismatch));
        let without = sign(KEY, NOW.0, body);
        assert_eq!(check(&without, None, body), Ok(()));
        assert_eq!(
            check(&without, Some("k"), body),
            Err(SignatureRefusal::Mismatch),
            "adding a key to a captured request needs a new signature"
        );
        // A key ending where the body's text begins: the separators keep the texts apart.
        let dotted = br#"k.{"mode":"away"}"#;
        let no_key = sign(KEY, NOW.0, dotted);
        assert_eq!(
            check(&no_key, Some("k"), body),
            Err(SignatureRefusal::Mismatch)
        );
        assert_ne!(
            signed_text(NOW.0, Some("a"), b"b\nc"),
            signed_text(NOW.0, None, b"a\nb\nc")
        );
    }

    #[test]
    fn the_keyed_form_matches_a_python_computed_vector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-test",
        // b"1700000000\nshortcut-7f3a\n{\"mode\":\"away\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signed_text(1_700_000_000, Some("shortcut-7f3a"), br#"{"mode":"away"}"#),
            b"1700000000\nshortcut-7f3a\n{\"mode\":\"away\"}".to_vec()
        );
        assert_eq!(
            sign_request(
                KEY,
                1_700_000_000,
                Some("shortcut-7f3a"),
                br#"{"mode":"away"}"#
            ),
            "sha256=50695eb9e4afe5c5b88ae000e842005ed0972503b1ffd74198b701adda02219c"
        );
    }
}
