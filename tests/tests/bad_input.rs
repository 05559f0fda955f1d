//! The bad-input corpus: several hundred requests a scanner, a fuzzer or a confused client
//! would send to homehook's public URLs — malformed JSON, oversized bodies, wrong types, path
//! tricks, odd unicode, missing and extra parameters, wrong methods, replayed signatures, stale
//! timestamps, reused idempotency keys with another body — sent as raw bytes over loopback (so
//! no client library tidies them up first). What must hold for every one: an answer (no panic, no
//! dropped connection), never a status ≥ 500, a JSON error body with a stable code for every
//! refusal, and nothing the caller sent escaping into the vendor's path, query or body.
//!
//! Writes `reports/bad-input.md` (requests, statuses seen, error codes) for the closing note.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use homehook_core::clock::{Clock, ManualClock};
use homehook_core::guard::pin::PinHash;
use homehook_core::guard::signature::sign;
use homehook_core::store::MemoryStore;
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{T0, World, secrets_for, write_report};
use homehook_tests::leak_watch;
use homehook_tests::openapi_check;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PIN: &str = "730519";
const SIGNING_KEY: &str = "sk-corpus-1b9d0e44";

fn config(vendor: &str, pin_hash: &PinHash) -> String {
    format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{{admin}}"

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"
# The corpus is about input, not pace: the budget and rate limits are tested in attacks.rs.
api_budget = []

[connections.home]
provider = "netatmo"
secret = "netatmo"

[actions.device]
connection = "home"
path = "/api/device/{{id}}"
query = {{ mode = "{{mode}}" }}
params.id = {{ type = "string", max_len = 64 }}
params.mode = {{ type = "enum", values = ["away", "schedule"], default = "away" }}
key_hash = "{{key}}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[actions.set]
connection = "home"
path = "/api/set"
body = {{ home = {{ id = "h1", temp = "{{temp}}", name = "{{name}}", count = "{{count}}", on = "{{on}}", until = "{{minutes}}" }} }}
params.temp = {{ type = "number", min = 7, max = 30 }}
params.name = {{ type = "string", max_len = 32, default = "living" }}
params.count = {{ type = "integer", min = 0, max = 100, default = 1 }}
params.on = {{ type = "boolean", default = true }}
params.minutes = {{ type = "end_time", optional = true, max = 1440 }}
key_hash = "{{key}}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[actions.peek]
connection = "home"
method = "GET"
path = "/api/peek"
methods = ["GET", "POST"]
answer = "Peek {{{{ data.method }}}}"
key_hash = "{{key}}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[actions.disarm]
connection = "home"
path = "/api/disarm"
sensitive = true
pin_hash = "{pin_hash}"
key_hash = "{{key}}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}

[actions.signed]
connection = "home"
path = "/api/signed"
params.mode = {{ type = "enum", values = ["away", "schedule"], default = "away" }}
query = {{ mode = "{{mode}}" }}
signing_secret = "signer"
key_hash = "{{key}}"
rate_limit = {{ burst = 100000, per_minute = 60000 }}
"#
    )
}

/// One raw request and what it is about.
struct Probe {
    category: &'static str,
    bytes: Vec<u8>,
}

/// The answer to a raw request.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

/// Sends `bytes` from a loopback address of its own (127.0.x.y), so the wrong-key lockout of
/// one probe does not answer for the next, and reads the whole answer.
async fn send(addr: SocketAddr, bytes: &[u8]) -> Option<Answer> {
    let n = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed);
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        (n / 250) as u8 + 1,
        (n % 250) as u8 + 1,
    ));
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    let stream = socket.connect(addr).await.ok()?;
    // A server may answer (413, 400) before reading the whole body and close: read while
    // writing, so the answer is taken before the close resets the connection.
    let (mut reader, mut writer) = stream.into_split();
    let bytes = bytes.to_vec();
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        // Every answer comes at once; only a request hyper is still waiting for (blank lines,
        // no request line yet) gets none, and 3 s is enough to tell.
        std::time::Duration::from_secs(3),
        reader.read_to_end(&mut out),
    )
    .await;
    drop(write.await);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Some(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A request as bytes: `line` is "METHOD TARGET", then headers, then the body (with its
/// Content-Length unless a header sets one).
fn raw(line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{line} HTTP/1.1\r\nHost: homehook.test\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut bytes = out.into_bytes();
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    }) {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// The method and path of a raw request, if its first line reads as one.
fn request_line(bytes: &[u8]) -> Option<(String, String)> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?.to_string();
    let mut target = parts.next()?;
    // Absolute form (`POST http://host/a/x`): the path is what follows the authority.
    if let Some(rest) = target
        .strip_prefix("http://")
        .or(target.strip_prefix("https://"))
    {
        target = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let path = target.split(['?', '#']).next()?.to_string();
    Some((method, path))
}

struct Corpus {
    key: String,
    probes: Vec<Probe>,
}

impl Corpus {
    fn add(&mut self, category: &'static str, bytes: Vec<u8>) {
        self.probes.push(Probe { category, bytes });
    }

    /// POST `target` with the action key and a JSON body.
    fn post_json(&mut self, category: &'static str, target: &str, body: &[u8]) {
        let auth = format!("Bearer {}", self.key);
        let bytes = raw(
            &format!("POST {target}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        self.add(category, bytes);
    }

    fn signed(&mut self, category: &'static str, ts: i64, sig: &str, body: &[u8]) {
        let auth = format!("Bearer {}", self.key);
        let ts = ts.to_string();
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("X-Homehook-Timestamp", ts.as_str()),
            ("X-Homehook-Signature", sig),
        ];
        let bytes = raw("POST /a/signed", &headers, body);
        self.add(category, bytes);
    }
}

fn build_corpus(key: &str, admin: &str, now: i64) -> Corpus {
    let mut c = Corpus {
        key: key.to_string(),
        probes: Vec::new(),
    };

    // Malformed JSON, on two actions.
    let malformed: &[&[u8]] = &[
        b"{",
        b"}",
        b"{\"temp\":",
        b"{\"temp\": 21,}",
        b"{'temp': 21}",
        b"[1,2,3]",
        b"\"text\"",
        b"42",
        b"null",
        b"true",
        b"{\"temp\": 21}{\"temp\": 22}",
        b"{\"temp\" 21}",
        b"\xff\xfe{\"temp\":21}",
        b"{\"temp\": 0x15}",
        b"{\"temp\": NaN}",
        b"{\"temp\": Infinity}",
        b"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{}}}}}}}",
        b"{\"temp\": \"\\ud800\"}",
        b"\x00\x00\x00",
        b"{\"temp\": 21, \"temp\": 22}",
    ];
    for body in malformed {
        c.post_json("malformed JSON", "/a/set", body);
        c.post_json("malformed JSON", "/a/device", body);
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    c.post_json("malformed JSON", "/a/set", deep.as_bytes());

    // Oversized bodies: just over the limit, far over it, and a lying Content-Length.
    let auth = format!("Bearer {key}");
    for size in [16 * 1024 + 1, 64 * 1024, 1 << 20] {
        let body = format!("{{\"name\": \"{}\"}}", "x".repeat(size));
        c.post_json("oversized body", "/a/set", body.as_bytes());
    }
    {
        let declared = "99999999";
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Content-Length", declared),
            ],
            b"{\"temp\": 21}",
        );
        c.add("oversized body", bytes);
    }
    let chunked = raw(
        "POST /a/set",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        format!(
            "4000\r\n{}\r\n4000\r\n{}\r\n0\r\n\r\n",
            "a".repeat(0x4000),
            "a".repeat(0x4000)
        )
        .as_bytes(),
    );
    c.add("oversized body", chunked);

    // Wrong types and values, for each parameter type.
    let wrong: &[(&str, Value)] = &[
        ("temp", json!("warm")),
        ("temp", json!([21])),
        ("temp", json!({"v": 21})),
        ("temp", json!(null)),
        ("temp", json!(true)),
        ("temp", json!(6.9)),
        ("temp", json!(30.01)),
        ("temp", json!(-1e308)),
        ("temp", json!("1e309")),
        ("temp", json!("NaN")),
        ("temp", json!("inf")),
        ("temp", json!("")),
        ("temp", json!(" 21 ")),
        ("count", json!(1.5)),
        ("count", json!("1.5")),
        ("count", json!(101)),
        ("count", json!(-1)),
        ("count", json!(9_223_372_036_854_775_807_i64)),
        ("count", json!("99999999999999999999999")),
        ("count", json!("0x10")),
        ("on", json!("yes")),
        ("on", json!(1)),
        ("on", json!("TRUE ")),
        ("on", json!([])),
        ("name", json!(12)),
        ("name", json!("a".repeat(33))),
        ("name", json!("tab\there")),
        ("name", json!("line\nbreak")),
        ("name", json!("nul\u{0}")),
        ("name", json!({"x": "y"})),
        ("minutes", json!(0)),
        ("minutes", json!(-5)),
        ("minutes", json!(1441)),
        ("minutes", json!("soon")),
        ("minutes", json!(1e18)),
    ];
    for (param, value) in wrong {
        let mut body = json!({"temp": 21});
        body[*param] = value.clone();
        c.post_json("wrong types", "/a/set", body.to_string().as_bytes());
    }
    for mode in [
        json!("AWAY"),
        json!("away "),
        json!(""),
        json!(1),
        json!(["away"]),
        json!("hg"),
        json!("away&mode=schedule"),
    ] {
        let body = json!({"id": "d1", "mode": mode});
        c.post_json("wrong types", "/a/device", body.to_string().as_bytes());
    }

    // Missing and extra parameters.
    for body in [
        json!({}),
        json!({"name": "x"}),
        json!({"temp": 21, "extra": 1}),
        json!({"temp": 21, "key": "x"}),
        json!({"temp": 21, "format": "json"}),
        json!({"temp": 21, "access_token": "x"}),
        json!({"temp": 21, "home_id": "h2"}),
        json!({"temp": 21, "__proto__": {}}),
        json!({"TEMP": 21}),
        json!({"temp ": 21}),
    ] {
        c.post_json(
            "missing and extra parameters",
            "/a/set",
            body.to_string().as_bytes(),
        );
    }
    c.post_json("missing and extra parameters", "/a/device", b"{}");
    c.post_json(
        "missing and extra parameters",
        "/a/peek",
        b"{\"anything\": 1}",
    );

    // Injection through values: path segments, query parameters, JSON fields.
    for id in [
        "../../oauth2/token",
        "..",
        ".",
        "a/b",
        "a%2Fb",
        "a?x=1",
        "a#frag",
        "a&mode=schedule",
        "%2e%2e",
        "a b",
        "a\\b",
        "\u{202e}evil",
        "\u{200b}",
        "🙂",
        "a;b",
        "a\"b",
        "{mode}",
        "${id}",
        "a\r\nX-Injected: 1",
        "/",
        "//",
        "?",
        "#",
    ] {
        let body = json!({"id": id});
        c.post_json(
            "injection through values",
            "/a/device",
            body.to_string().as_bytes(),
        );
    }
    for name in [
        "\",\"injected\":\"1",
        "{name}",
        "{{name}}",
        "</script>",
        "' OR 1=1 --",
        "a\u{0085}b",
    ] {
        let body = json!({"temp": 21, "name": name});
        c.post_json(
            "injection through values",
            "/a/set",
            body.to_string().as_bytes(),
        );
    }
    for query in [
        "id=..%2F..%2Fx",
        "id=a%00b",
        "id=%zz",
        "id=a&id=b",
        "id=x&mode=away&mode=schedule",
        "id=%F0%9F%99%82",
        "id=a+b",
        "id=",
    ] {
        c.post_json(
            "injection through values",
            &format!("/a/device?{query}"),
            b"",
        );
    }

    // Path tricks.
    for target in [
        "/a/../status",
        "/a/%2e%2e/status",
        "/a/..%2fconnect%2fhome",
        "/a/set/extra",
        "/a/set/",
        "//a/set",
        "/a/set%00",
        "/a/%ff",
        "/a/",
        "/a",
        "/A/set",
        "/a/SET",
        "/a/set;x",
        "/a/set%2f..%2f..%2fstatus",
        "/a/set?",
        "/a/set??key=x",
        "/a/set#frag",
        "/a/%E2%80%AEtes",
        "/a/s%65t",
        "/./a/set",
        "/a/./set",
        "*",
        "http://evil.example/a/set",
        "/a/\u{00e9}t\u{00e9}",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/callback/../a/set",
        "/static/../../a/set",
    ] {
        let bytes = raw(
            &format!("POST {target}"),
            &[("Authorization", &auth)],
            b"{\"temp\": 21}",
        );
        c.add("path tricks", bytes);
    }
    let long = format!("POST /a/{}", "x".repeat(8000));
    c.add("path tricks", raw(&long, &[("Authorization", &auth)], b""));
    let long_query = format!("POST /a/device?{}", "id=x&".repeat(2000));
    c.add(
        "path tricks",
        raw(&long_query, &[("Authorization", &auth)], b""),
    );

    // Odd unicode and bytes.
    for body in [
        "{\"name\": \"\u{feff}living\", \"temp\": 21}",
        "{\"name\": \"\u{1f525}\", \"temp\": 21}",
        "{\"name\": \"\u{0301}\u{0301}\u{0301}\", \"temp\": 21}",
        "{\"n\u{0430}me\": \"x\", \"temp\": 21}",
        "{\"name\": \"\u{10ffff}\", \"temp\": 21}",
        "\u{feff}{\"temp\": 21}",
    ] {
        c.post_json("odd unicode", "/a/set", body.as_bytes());
    }
    let mut latin1 = b"{\"name\": \"caf".to_vec();
    latin1.extend_from_slice(&[0xe9]);
    latin1.extend_from_slice(b"\", \"temp\": 21}");
    c.post_json("odd unicode", "/a/set", &latin1);
    for header_value in [
        &b"Bearer \xff\xfe"[..],
        b"Bearer \x00",
        b"Bearer h\xc3\xa9llo",
    ] {
        let mut bytes =
            b"POST /a/set HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
        bytes.extend_from_slice(header_value);
        bytes.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        c.add("odd unicode", bytes);
    }

    // Keys: missing, malformed, wrong, in odd places.
    let wrong_auth = [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "bearer hh_x",
        "Bearer hh_wrong",
        "Token hh_x",
        "Bearer  spaced",
        &format!("Bearer {key} extra"),
        &format!("Bearer {}", &key[..key.len() - 1]),
        &format!("Bearer {}", key.to_uppercase()),
        &format!("Bearer {}", "k".repeat(4000)),
    ];
    for value in wrong_auth {
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", value),
                ("Content-Type", "application/json"),
            ],
            b"{\"temp\": 21}",
        );
        c.add("wrong or missing keys", bytes);
    }
    for target in [
        "/a/set?key=",
        "/a/set?key=hh_wrong",
        "/a/set?key=%00",
        "/a/nope?key=hh_wrong",
        "/a/set?key=a&key=b",
    ] {
        c.add(
            "wrong or missing keys",
            raw(&format!("POST {target}"), &[], b"{\"temp\": 21}"),
        );
    }
    let two_auth = raw(
        "POST /a/set",
        &[
            ("Authorization", "Bearer hh_wrong"),
            ("Authorization", &auth),
        ],
        b"{\"temp\": 21}",
    );
    c.add("wrong or missing keys", two_auth);

    // Wrong methods, on every action.
    for method in [
        "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "PROPFIND", "BREW",
    ] {
        for action in ["set", "disarm", "device"] {
            let bytes = raw(
                &format!("{method} /a/{action}"),
                &[("Authorization", &auth)],
                b"",
            );
            c.add("wrong methods", bytes);
        }
    }
    for method in ["HEAD", "OPTIONS", "DELETE"] {
        c.add(
            "wrong methods",
            raw(
                &format!("{method} /a/peek"),
                &[("Authorization", &auth)],
                b"",
            ),
        );
    }

    // Content types.
    for ct in [
        "application/xml",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "",
        "application/jsonx",
        "*/*",
    ] {
        let bytes = raw(
            "POST /a/set",
            &[("Authorization", &auth), ("Content-Type", ct)],
            b"{\"temp\": 21}",
        );
        c.add("content types", bytes);
    }
    for form in [
        "temp=21",
        "temp=21&temp=22",
        "temp=warm",
        "temp=%zz",
        "=21",
        "temp",
        "&&&",
        "temp=21&pin=1",
    ] {
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        );
        c.add("content types", bytes);
    }

    // The PIN of the sensitive action: missing, wrong, malformed. (Wrong ones lock it: that is
    // part of what is tried.)
    for (header, body) in [
        (None, "{}"),
        (Some(""), "{}"),
        (Some("0000"), "{}"),
        (None, "{\"pin\": [730519]}"),
        (None, "{\"pin\": {\"v\": 1}}"),
        (None, "{\"pin\": null}"),
        (None, "{\"pin\": 730519.0}"),
        (Some(&*"9".repeat(10_000)), "{}"),
        (None, "{\"pin\": \"730519\", \"extra\": 1}"),
        (Some("730519\u{0}"), "{}"),
    ] {
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(h) = header {
            headers.push(("X-Homehook-Pin", h));
        }
        c.add(
            "PIN step-up",
            raw("POST /a/disarm", &headers, body.as_bytes()),
        );
    }

    // Signed mode: replays, stale and future timestamps, malformed signatures.
    let body = b"{\"mode\": \"schedule\"}";
    let good = sign(SIGNING_KEY.as_bytes(), now, body);
    c.signed("signatures", now, &good, body); // accepted
    for _ in 0..5 {
        c.signed("signatures", now, &good, body); // replays
    }
    for skew in [-100_000, -301, 301, 86_400, i64::MIN / 2] {
        let ts = now.saturating_add(skew);
        let sig = sign(SIGNING_KEY.as_bytes(), ts, body);
        c.signed("signatures", ts, &sig, body);
    }
    for sig in [
        "",
        "sha256=",
        "sha1=abc",
        "sha256=zz",
        &good.to_uppercase(),
        &format!("{good}00"),
        &good.replace("sha256=", "sha512="),
    ] {
        c.signed("signatures", now, sig, body);
    }
    c.signed("signatures", now, &good, b"{\"mode\": \"away\"}");
    c.signed(
        "signatures",
        now + 1,
        &sign(b"guessed", now + 1, body),
        body,
    );
    let auth_h = format!("Bearer {key}");
    for ts in ["", "now", "1.5", "99999999999999999999", "-0", " 1 "] {
        let bytes = raw(
            "POST /a/signed",
            &[
                ("Authorization", &auth_h),
                ("X-Homehook-Timestamp", ts),
                ("X-Homehook-Signature", &good),
            ],
            body,
        );
        c.add("signatures", bytes);
    }
    let fresh = sign(SIGNING_KEY.as_bytes(), now + 2, body);
    let bytes = raw(
        "POST /a/signed?mode=away",
        &[
            ("Authorization", &auth_h),
            ("X-Homehook-Timestamp", &(now + 2).to_string()),
            ("X-Homehook-Signature", &fresh),
        ],
        body,
    );
    c.add("signatures", bytes);

    // Idempotency keys: reused with another body, malformed, replayed.
    for (idem, body) in [
        ("k-1", "{\"temp\": 21}"),
        ("k-1", "{\"temp\": 21}"),
        ("k-1", "{\"temp\": 22}"),
        ("k-1", "{\"temp\": \"x\"}"),
        ("k-2", "{\"temp\": \"x\"}"),
        ("k-2", "{\"temp\": \"x\"}"),
        ("k-2", "{\"temp\": 21}"),
    ] {
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", idem),
            ],
            body.as_bytes(),
        );
        c.add("idempotency keys", bytes);
    }
    let long_idem = "i".repeat(256);
    for idem in ["", " ", "has space", long_idem.as_str(), "\u{e9}t\u{e9}"] {
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", idem),
            ],
            b"{\"temp\": 21}",
        );
        c.add("idempotency keys", bytes);
    }

    // The admin surface: connect, status, discover, callback.
    let admin_auth = format!("Bearer {admin}");
    for (target, with_admin) in [
        ("/status", false),
        ("/status?key=hh_wrong", false),
        ("/connect/home", false),
        ("/connect/nope", true),
        ("/connect/..%2fstatus", true),
        ("/discover/nope", true),
        ("/discover/home", false),
        ("/status", true),
    ] {
        let headers: Vec<(&str, &str)> = if with_admin {
            vec![("Authorization", &admin_auth)]
        } else {
            vec![("Authorization", &auth)]
        };
        c.add(
            "admin surface",
            raw(&format!("GET {target}"), &headers, b""),
        );
    }
    for query in [
        "",
        "state=forged&code=x",
        "code=x",
        "state=x",
        "error=access_denied&state=x",
        "state=%zz&code=%zz",
        &format!("state={}&code=x", "s".repeat(5000)),
        "state=&code=",
        "error=server_error",
    ] {
        c.add(
            "admin surface",
            raw(&format!("GET /callback/netatmo?{query}"), &[], b""),
        );
    }
    for target in ["/callback/nope?state=x&code=y", "/callback/..?state=x"] {
        c.add("admin surface", raw(&format!("GET {target}"), &[], b""));
    }

    // Broken HTTP itself: hyper answers 400 or closes the connection; either way no handler
    // runs and nothing panics.
    for declared in ["18446744073709551615", "-1", "abc"] {
        let bytes = raw(
            "POST /a/set",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Content-Length", declared),
            ],
            b"{\"temp\": 21}",
        );
        c.add("broken HTTP", bytes);
    }
    for bytes in [
        &b"GARBAGE\r\n\r\n"[..],
        b"POST /a/set HTTP/9.9\r\n\r\n",
        b"POST /a/set HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
        b"POST /a/set HTTP/1.1\r\nHost x\r\n\r\n",
        b"\r\n\r\n",
    ] {
        c.add("broken HTTP", bytes.to_vec());
    }

    // A few that should simply work, among them all.
    c.post_json(
        "valid calls",
        "/a/set",
        b"{\"temp\": 21.5, \"name\": \"salon\", \"count\": 3, \"on\": false, \"minutes\": 60}",
    );
    c.post_json(
        "valid calls",
        "/a/device",
        b"{\"id\": \"dev-7\", \"mode\": \"schedule\"}",
    );
    c.post_json("valid calls", "/a/device?id=dev-8", b"");
    let get = raw(&format!("GET /a/peek?key={key}"), &[], b"");
    c.add("valid calls", get);
    let pin_ok = raw(
        "POST /a/disarm",
        &[("Authorization", &auth), ("X-Homehook-Pin", PIN)],
        b"",
    );
    // Sent first, before the wrong PINs lock the action.
    c.probes.insert(
        0,
        Probe {
            category: "valid calls",
            bytes: pin_ok,
        },
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_bad_requests_get_clear_answers_and_nothing_reaches_the_vendor_unchecked() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    leak_watch::issued("pin", PIN);
    leak_watch::issued("signing_key", SIGNING_KEY);
    let text = config(&vendor.base, &PinHash::of(PIN).unwrap());
    let secrets =
        secrets_for("netatmo", &settings).with_entry("signer", json!({"signing_key": SIGNING_KEY}));
    let w = World::with_vendor(clock, vendor, &text, secrets, Arc::new(MemoryStore::new())).await;
    assert_eq!(w.connect("home").await.status(), 200);
    let addr: SocketAddr = w.hh.base.trim_start_matches("http://").parse().unwrap();

    let corpus = build_corpus(
        w.keys.action.expose(),
        w.keys.admin.expose(),
        w.clock.now().0,
    );
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut by_category: BTreeMap<&str, (usize, BTreeMap<u16, usize>)> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut dropped = 0;
    let doc = openapi_check::load_document();
    let mut checked_against_doc = 0;
    let mut slow = Vec::new();
    for (i, probe) in corpus.probes.iter().enumerate() {
        let started = std::time::Instant::now();
        let sent = send(addr, &probe.bytes).await;
        if started.elapsed() > std::time::Duration::from_secs(1) {
            slow.push(format!(
                "#{i} ({}) took {:?}",
                probe.category,
                started.elapsed()
            ));
        }
        let Some(answer) = sent else {
            if probe.category == "broken HTTP" {
                *by_category
                    .entry(probe.category)
                    .or_default()
                    .1
                    .entry(0)
                    .or_default() += 1;
                dropped += 1;
                continue;
            }
            failures.push(format!(
                "#{i} ({}): no answer (connection dropped)",
                probe.category
            ));
            continue;
        };
        *by_status.entry(answer.status).or_default() += 1;
        let cat = by_category.entry(probe.category).or_default();
        cat.0 += 1;
        *cat.1.entry(answer.status).or_default() += 1;
        if answer.status >= 500 {
            failures.push(format!(
                "#{i} ({}): {} {}",
                probe.category,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        // Every refusal by homehook (not hyper's own 400 for broken HTTP, which has no body)
        // is JSON with a stable code and a message.
        if answer.status >= 400 && !answer.body.is_empty() {
            match serde_json::from_slice::<Value>(&answer.body) {
                Ok(v) if v["error"].is_string() && v["message"].is_string() => {
                    *codes
                        .entry(v["error"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
                _ => failures.push(format!(
                    "#{i} ({}): {} without a JSON error: {}",
                    probe.category,
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )),
            }
            // Nothing secret comes back in an error.
            let text = String::from_utf8_lossy(&answer.body);
            for secret in [
                w.keys.action.expose(),
                w.keys.admin.expose(),
                PIN,
                SIGNING_KEY,
            ] {
                assert!(!text.contains(secret), "#{i}: an error echoed a secret");
            }
        }
        // And the answer is one the OpenAPI document promises for that route and method.
        // (A 400 with no body is hyper refusing the HTTP itself, a NUL in a header say, before
        // any route: not part of the document.)
        let http_layer = answer.status == 400 && answer.body.is_empty();
        if probe.category != "broken HTTP"
            && !http_layer
            && let Some((method, target)) = request_line(&probe.bytes)
        {
            let template = openapi_check::match_path(&doc, &target).unwrap_or(target.clone());
            if let Err(e) =
                openapi_check::check_response(&doc, &template, &method, answer.status, &answer.body)
            {
                failures.push(format!("#{i} ({}): {method} {target}: {e}", probe.category));
            } else {
                checked_against_doc += 1;
            }
        }
    }
    println!("slow answers: {slow:?}");
    assert!(
        corpus.probes.len() >= 300,
        "{} requests",
        corpus.probes.len()
    );
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "panics while serving the corpus"
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // What reached the vendor: only declared paths, only declared query parameters, and a
    // parameter value never became a path segment, a query parameter or a JSON field.
    let calls = w.vendor.api_calls();
    assert!(!calls.is_empty(), "the valid calls reached the vendor");
    for call in &calls {
        let ok_path = call.path == "/api/set"
            || call.path == "/api/peek"
            || call.path == "/api/disarm"
            || call.path == "/api/signed"
            || call.path.strip_prefix("/api/device/").is_some_and(|seg| {
                !seg.is_empty() && !seg.contains('/') && seg != ".." && seg != "."
            });
        assert!(ok_path, "unexpected vendor path {:?}", call.path);
        for (k, _) in &call.query {
            assert_eq!(k, "mode", "unexpected query parameter in {call:?}");
        }
        assert!(call.query.len() <= 1, "{call:?}");
        if call.path == "/api/set" {
            let body: Value = serde_json::from_str(&call.body).unwrap();
            let fields: Vec<_> = body["home"].as_object().unwrap().keys().cloned().collect();
            for f in &fields {
                assert!(
                    ["id", "temp", "name", "count", "on", "until"].contains(&f.as_str()),
                    "{call:?}"
                );
            }
            assert_eq!(body.as_object().unwrap().len(), 1, "{call:?}");
        }
    }

    let mut report = format!(
        "### Bad-input corpus (tests/tests/bad_input.rs)\n\n{} requests, {} answered, {} without an answer from the HTTP layer (broken HTTP that never reached a handler: blank lines with no request line, on which hyper keeps waiting; status 0 below), 0 panics, 0 answers ≥ 500; {} reached the vendor (only declared paths and fields); {} answers checked against docs/openapi.json, all documented.\n\n| category | requests | statuses |\n|---|---|---|\n",
        corpus.probes.len(),
        by_status.values().sum::<usize>(),
        dropped,
        calls.len(),
        checked_against_doc
    );
    for (cat, (n, statuses)) in &by_category {
        let s: Vec<_> = statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        report.push_str(&format!("| {cat} | {n} | {} |\n", s.join(" ")));
    }
    let all: Vec<_> = by_status.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    report.push_str(&format!(
        "| **all** | {} | {} |\n\nError codes seen: ",
        corpus.probes.len(),
        all.join(" ")
    ));
    let codes: Vec<_> = codes.iter().map(|(k, v)| format!("`{k}`×{v}")).collect();
    report.push_str(&codes.join(", "));
    report.push('\n');
    write_report("bad-input", &report);
    println!("{report}");
}
