//! The checks that ask other machines: is the server answering at the public URL, and does
//! this machine's clock agree with each vendor's (token expiry and signed requests depend on
//! it).

use std::collections::BTreeMap;
use std::time::Duration;

use homehook_core::Config;

use super::Check;
use crate::probe;

/// Past this many seconds apart, the clock is worth fixing.
const SKEW_WARN_SECS: i64 = 30;

/// How long each probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET {public_url}/healthz`.
pub(super) async fn server(config: &Config) -> Check {
    let base = config.base_url();
    let client = match probe::client(PROBE_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return Check::warn("server", format!("{e:#}"), "try again"),
    };
    match probe::server_answers(&client, &base).await {
        Ok(()) => Check::ok("server", format!("homehook answers at {base}")),
        Err(problem) => Check::warn(
            "server",
            problem,
            format!(
                "start `homehook serve` (vendors send you back to {base}/callback/..., and actions and token renewals need it running)"
            ),
        ),
    }
}

/// The clock against the `Date` of each configured connection's token endpoint, one check per
/// host, asked at the same time.
pub(super) async fn clocks(config: &Config) -> Vec<Check> {
    // One probe per host: several connections often share a vendor.
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for conn in config.connections.values() {
        let Some(spec) = config.provider_of(conn) else {
            continue;
        };
        let Ok(url) = url::Url::parse(&spec.token_url) else {
            continue;
        };
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        hosts.entry(host).or_insert_with(|| spec.token_url.clone());
    }
    let client = match probe::client(PROBE_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return vec![Check::warn("clock", format!("{e:#}"), "try again")],
    };
    // All at once: each probe is bounded by PROBE_TIMEOUT, so the whole is too.
    let probes: Vec<_> = hosts
        .into_iter()
        .map(|(host, url)| {
            let client = client.clone();
            tokio::spawn(async move { clock(&client, &host, &url).await })
        })
        .collect();
    let mut checks = Vec::with_capacity(probes.len());
    for probe in probes {
        if let Ok(check) = probe.await {
            checks.push(check);
        }
    }
    checks
}

async fn clock(client: &reqwest::Client, host: &str, url: &str) -> Check {
    let check = format!("clock vs {host}");
    match probe::clock_skew(client, url).await {
        Ok(Some(skew)) if skew.abs() > SKEW_WARN_SECS => Check::warn(
            check,
            format!(
                "this machine's clock is {} s {} {host}'s",
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" }
            ),
            "set the clock right and keep it so (e.g. `timedatectl set-ntp true`): token expiry and signed requests depend on it",
        ),
        Ok(Some(skew)) => Check::ok(check, format!("within {} s of {host}", skew.abs().max(1))),
        Ok(None) => Check::ok(
            check,
            format!("{host} answers but sends no Date header to compare with"),
        ),
        Err(problem) => Check::warn(
            check,
            format!("cannot reach {host}: {problem}"),
            format!(
                "check this machine's network (DNS, firewall, proxy) can reach {host}, and the provider's token_url in the config"
            ),
        ),
    }
}
