//! Looking at the outside world: is `homehook serve` answering at the public URL, and what time
//! does a vendor's server say it is.

use std::time::Duration;

use anyhow::{Context, Result};

/// A short-lived HTTP client for probes: a few seconds, no redirects.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("homehook/", env!("CARGO_PKG_VERSION"), " (cli)"))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build an HTTP client")
}

/// Whether a homehook server answers `GET {base}/healthz` with `{"status": "ok"}`; the error
/// says what happened instead.
pub(crate) async fn server_answers(client: &reqwest::Client, base: &str) -> Result<(), String> {
    let url = format!("{base}/healthz");
    let response = client.get(&url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url} did not answer in time")
        } else if e.is_connect() {
            format!("nothing answers at {url}")
        } else {
            format!("{url}: {e}")
        }
    })?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() && body["status"] == "ok" {
        Ok(())
    } else {
        Err(format!(
            "{url} answered HTTP {} but not as homehook does",
            status.as_u16()
        ))
    }
}

/// The clock difference with a server, from the `Date` header of its answer to a `HEAD`:
/// positive when the local clock is ahead. `Ok(None)` when it sends no usable `Date`.
pub(crate) async fn clock_skew(client: &reqwest::Client, url: &str) -> Result<Option<i64>, String> {
    let sent = jiff::Timestamp::now();
    let response = client.head(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "did not answer in time".to_string()
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            e.to_string()
        }
    })?;
    let received = jiff::Timestamp::now();
    let Some(date) = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Ok(theirs) = jiff::fmt::rfc2822::parse(date).map(|z| z.timestamp()) else {
        return Ok(None);
    };
    // Compare with the middle of the round trip; `Date` has whole seconds.
    let ours = (sent.as_millisecond() + received.as_millisecond()) / 2;
    Ok(Some((ours - theirs.as_millisecond()) / 1000))
}
