//! A string that must never be printed: tokens, client secrets, passwords; and the two filters
//! for text homehook did not write itself: [`Escaped`] (control characters escaped, for a log
//! line) and [`redact_secrets`] (token-like runs removed, for a vendor's words shown to a
//! caller or logged).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` and `Display` print `[redacted]`; the value is reachable only through
/// [`SecretString::expose`], so every place that uses it is greppable.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call only where the value leaves for its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Whether `c` must not reach a log line as it is: C0 controls (newline, carriage return, ESC,
/// …), DEL, C1 controls (U+0080–U+009F: a terminal reads U+009B as ESC `[`), and the Unicode
/// bidirectional controls that make a line read differently from its bytes.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`), so a
/// caller's value can neither start a forged log line nor send a terminal escape sequence.
/// Everything else, backslashes included, is kept as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A value logged with its control characters escaped ([`escape_controls`]):
/// `tracing::info!(provider = %Escaped(&provider), …)`. For any value a caller or a vendor
/// chose.
#[derive(Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&self.0.to_string()))
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What replaces a token-like run in [`redact_secrets`].
pub const REDACTED: &str = "[redacted]";

/// Runs at least this long that mix letters and digits are taken for a credential: a 128-bit
/// token is 22 characters in base64 and 32 in hex, while a vendor's words and identifiers
/// ("Invalid device id", "70:ee:50:3a:2b:1c", "site 4567") are shorter or all letters.
const TOKEN_RUN: usize = 20;

/// Runs this long are taken for a credential whatever their characters.
const LONG_RUN: usize = 40;

/// Names after which the value (`name=value`, `name: value`, `"name":"value"`) is a credential.
const SECRET_NAMES: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "bearer",
    "apikey",
    "api_key",
    "api-key",
    "session",
    "cookie",
    "signature",
    "credential",
    "assertion",
    "jwt",
];

/// The characters of a token: base64 (standard and URL-safe), hex, JWT dots, and the `|` of
/// Netatmo-style tokens.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=' | '|')
}

/// `text` (a vendor's error message, shown to a caller and logged) with everything that looks
/// like a credential replaced by [`REDACTED`], the vendor's words otherwise kept: a vendor that
/// echoes the request's token in its error must not hand it to whoever made the call.
///
/// Removed: the word after `Bearer`/`Basic`; the value after a secret-sounding name and a `:` or
/// `=` (`access_token=…`, `"refresh_token": "…"`, `password: …`; "Access token expired" is
/// kept); any run of token characters of
/// [`TOKEN_RUN`] or more that mixes letters and digits (hex and base64 keys, JWTs, UUIDs), and
/// any run of [`LONG_RUN`] or more. Control characters are escaped as for a log line.
pub fn redact_secrets(text: &str) -> String {
    let text = escape_controls(text);
    let mut out = String::with_capacity(text.len());
    // What the previous run announced: a credential follows.
    let mut announced = Announce::Nothing;
    let mut rest: &str = &text;
    while let Some(start) = rest.find(token_char) {
        let (before, from) = rest.split_at(start);
        let end = from.find(|c: char| !token_char(c)).unwrap_or(from.len());
        let (run, after) = from.split_at(end);
        let follows = match announced {
            // `Bearer abc`: the scheme, a space, the credential.
            Announce::Scheme => !before.is_empty() && before.chars().all(|c| c == ' '),
            // `token: abc`, `"token":"abc"`: a name, then `:` (or `=` before a quote).
            Announce::Name => {
                before.contains([':', '='])
                    && before
                        .chars()
                        .all(|c| matches!(c, '=' | ':' | '"' | '\'' | ' '))
            }
            Announce::Nothing => false,
        };
        out.push_str(before);
        if follows || looks_like_token(run) {
            out.push_str(REDACTED);
        } else if let Some((name, value)) = run.split_once('=')
            && names_a_secret(name)
            && !value.is_empty()
        {
            out.push_str(name);
            out.push('=');
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        let word = run.trim_end_matches(['=', '.']);
        announced = if word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic") {
            Announce::Scheme
        } else if names_a_secret(word) {
            Announce::Name
        } else {
            Announce::Nothing
        };
        rest = after;
    }
    out.push_str(rest);
    out
}

/// What a run of [`redact_secrets`] says of the next one.
#[derive(Clone, Copy)]
enum Announce {
    Nothing,
    /// An authorization scheme (`Bearer`, `Basic`): the next word is a credential.
    Scheme,
    /// A secret's name: a value after `:` or `=` is a credential.
    Name,
}

fn names_a_secret(word: &str) -> bool {
    let word = word.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|n| word.contains(n))
}

fn looks_like_token(run: &str) -> bool {
    let run = run.trim_end_matches('.');
    let len = run.chars().count();
    if len >= LONG_RUN {
        return true;
    }
    len >= TOKEN_RUN
        && run.chars().any(|c| c.is_ascii_digit())
        && run.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("netatmo"), "netatmo");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("x\n\u{1b}[31mFORGED\r\t\u{9b}\u{7f}\u{202e}é\\"),
            "x\\n\\u{1b}[31mFORGED\\r\\t\\u{9b}\\u{7f}\\u{202e}é\\"
        );
        assert_eq!(
            format!("{}", Escaped("a\nb")),
            "a\\nb",
            "the wrapper escapes too"
        );
    }

    #[test]
    fn token_like_text_is_redacted_and_the_vendors_words_kept() {
        let hex = "at|0123456789abcdef0123456789abcdef";
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvd25lciJ9.c2lnbmF0dXJlLWJ5dGVz";
        for (text, want) in [
            ("Invalid device id", "Invalid device id"),
            (
                "Device 70:ee:50:3a:2b:1c is offline",
                "Device 70:ee:50:3a:2b:1c is offline",
            ),
            (
                "Site not found (code 404, internationalization)",
                "Site not found (code 404, internationalization)",
            ),
            (&format!("bad token {hex}"), "bad token [redacted]"),
            (
                &format!("Bearer {jwt} refused"),
                "Bearer [redacted] refused",
            ),
            (
                "Authorization: Bearer short1 refused",
                "Authorization: [redacted] [redacted] refused",
            ),
            ("access_token=abc123&x=1", "access_token=[redacted]&x=1"),
            (
                r#"{"refresh_token": "rt-1"}"#,
                r#"{"refresh_token": "[redacted]"}"#,
            ),
            ("password: hunter2!", "password: [redacted]!"),
            (
                "key 0f8fad5b-d9cb-469f-a165-70867728950e unknown",
                "key [redacted] unknown",
            ),
            ("line\nbreak", "line\\nbreak"),
            ("Access token expired", "Access token expired"),
            ("Invalid access_token", "Invalid access_token"),
        ] {
            assert_eq!(redact_secrets(text), want, "{text}");
        }
    }
}
