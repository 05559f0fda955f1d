//! `[server]` and `[notify]`: how this host runs, and how it tells its owner.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::{
    DEFAULT_STATE_TTL_SECS, FieldError, NotifyConfig, ServerConfig, WebhookFormat, parse_http_url,
};
use crate::guard::limits::IpRange;
use crate::keys::KeyHash;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    admin_key_hash: Option<String>,
    refresh_interval_secs: Option<u64>,
    refresh_margin_secs: Option<i64>,
    secrets_file: Option<PathBuf>,
    state_ttl_secs: Option<i64>,
    vendor_timeout_secs: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    secret: Option<String>,
    format: Option<WebhookFormat>,
    failing_after: Option<u32>,
}

/// Checks `[server]`; relative paths are taken from `base_dir` (the config file's folder).
pub(super) fn build_server(
    s: RawServer,
    base_dir: Option<&Path>,
) -> Result<ServerConfig, FieldError> {
    let err = |field: &str, problem: String| (field.to_string(), problem);
    let relative = |p: PathBuf| match (base_dir, p.is_relative()) {
        (Some(dir), true) => dir.join(p),
        _ => p,
    };
    let listen: SocketAddr = s
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:8080")
        .parse()
        .map_err(|_| {
            err(
                "server.listen",
                "expected an address and port such as \"127.0.0.1:8080\"".into(),
            )
        })?;
    let public_url_follows_listen = s.public_url.is_none();
    let public_url = match s.public_url {
        Some(u) => parse_http_url(&u).map_err(|p| err("server.public_url", p))?,
        None => Url::parse(&format!("http://{listen}/"))
            .map_err(|e| err("server.listen", e.to_string()))?,
    };
    let admin_key_hash = s
        .admin_key_hash
        .map(|h| h.parse::<KeyHash>())
        .transpose()
        .map_err(|e| err("server.admin_key_hash", e.to_string()))?;
    let refresh_interval_secs = s.refresh_interval_secs.unwrap_or(60);
    if refresh_interval_secs == 0 {
        return Err(err(
            "server.refresh_interval_secs",
            "must be at least 1".into(),
        ));
    }
    let refresh_margin_secs = s.refresh_margin_secs.unwrap_or(300);
    if refresh_margin_secs < 0 {
        return Err(err(
            "server.refresh_margin_secs",
            "must not be negative".into(),
        ));
    }
    let state_ttl_secs = s.state_ttl_secs.unwrap_or(DEFAULT_STATE_TTL_SECS);
    if !(30..=3600).contains(&state_ttl_secs) {
        return Err(err(
            "server.state_ttl_secs",
            "must be between 30 and 3600 seconds".into(),
        ));
    }
    let vendor_timeout_secs = s.vendor_timeout_secs.unwrap_or(20);
    if !(1..=60).contains(&vendor_timeout_secs) {
        return Err(err(
            "server.vendor_timeout_secs",
            "must be between 1 and 60 seconds".into(),
        ));
    }
    let trusted_proxies = s
        .trusted_proxies
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<IpRange>()
                .map_err(|p| err(&format!("server.trusted_proxies[{i}]"), p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ServerConfig {
        listen,
        public_url,
        public_url_follows_listen,
        public_url_from_host: false,
        command: "homehook".into(),
        data_dir: s.data_dir.map(relative),
        admin_key_hash,
        refresh_interval_secs,
        refresh_margin_secs,
        secrets_file: s.secrets_file.map(relative),
        state_ttl_secs,
        vendor_timeout_secs,
        trusted_proxies,
    })
}

/// Checks `[notify]`.
pub(super) fn build_notify(n: RawNotify) -> Result<NotifyConfig, FieldError> {
    let err = |field: &str, problem: String| (field.to_string(), problem);
    if n.format.is_some() && n.secret.is_none() {
        return Err(err(
            "notify.secret",
            "name the secret entry that holds the webhook's url (and signing_key)".into(),
        ));
    }
    let failing_after = n.failing_after.unwrap_or(3);
    if failing_after == 0 {
        return Err(err("notify.failing_after", "must be at least 1".into()));
    }
    Ok(NotifyConfig {
        webhook_secret: n.secret,
        format: n.format.unwrap_or_default(),
        failing_after,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn trusted_proxies_are_addresses_or_blocks_and_a_bad_one_is_named() {
        let config = Config::parse(
            "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.1.0.0/16\", \"::1\"]\n",
            "t.toml",
            None,
        )
        .expect("valid");
        let shown: Vec<String> = config
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.1", "10.1.0.0/16", "::1"]);
        for (bad, problem) in [
            (
                "[\"127.0.0.1\", \"proxy.lan\"]",
                "server.trusted_proxies[1]",
            ),
            ("[\"10.0.0.0/40\"]", "server.trusted_proxies[0]"),
        ] {
            let e = Config::parse(
                &format!("[server]\ntrusted_proxies = {bad}\n"),
                "t.toml",
                None,
            )
            .expect_err(bad)
            .to_string();
            assert!(e.contains(problem), "{e}");
        }
        let none = Config::parse("", "t.toml", None).expect("valid");
        assert!(none.server.trusted_proxies.is_empty());
    }
}
