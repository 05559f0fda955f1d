//! What handlers take from a request besides its path and body: where a caller may put a key,
//! the admin check as an extractor ([`Admin`]), the query's own members, and where the call
//! came from. Finding things in the request is all this does: the checks are in
//! [`crate::gate`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::error::ApiError;
use crate::app::App;
use crate::config::Config;
use crate::gate;
use crate::guard::ClientSource;
use crate::guard::limits::IpRange;
use crate::sensitive::SecretString;

/// The key a caller presented: `Authorization: Bearer <key>`, else `?key=`.
pub fn presented_key<'a>(headers: &'a HeaderMap, query_key: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(query_key)
        .filter(|k| !k.is_empty())
}

/// The query of an action or admin URL: its `key`, its `format`, and the other members (an
/// action's parameters).
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    /// `?key=`.
    pub key: Option<SecretString>,
    /// `?format=`.
    pub format: Option<String>,
    /// Every other member, in order.
    pub params: Vec<(String, String)>,
}

impl CallQuery {
    /// Splits a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut query = Self::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "key" => query.key = Some(SecretString::new(v.into_owned())),
                "format" => query.format = Some(v.into_owned()),
                _ => query.params.push((k.into_owned(), v.into_owned())),
            }
        }
        query
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// Where a call came from: API Gateway's `sourceIp` (put there by the Lambda adapter as a
/// [`ClientSource`]), else the peer address, or, when the peer is one of
/// `server.trusted_proxies`, the client the proxy names ([`client_address`]).
#[derive(Debug, Clone, Copy)]
pub struct CallSource(pub Option<IpAddr>);

impl CallSource {
    /// The source of a request with these parts under `config`.
    pub fn of(parts: &Parts, config: &Config) -> Self {
        if let Some(ClientSource(ip)) = parts.extensions.get::<ClientSource>() {
            return Self(Some(*ip));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Self(peer.map(|peer| client_address(peer, &parts.headers, &config.server.trusted_proxies)))
    }
}

impl FromRequestParts<AppState> for CallSource {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        live: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, &live.app().await.services.config))
    }
}

/// The caller's address: `peer`, unless `peer` is a trusted proxy; then the right-most address
/// of the proxies' chain that is not itself a trusted proxy. Proxies append the address they
/// received a request from, so everything left of it is what the caller (or a proxy that is
/// not trusted) wrote, and cannot be believed.
///
/// The chain is `X-Forwarded-For` or the `for=` of `Forwarded` (RFC 7239), every line of it in
/// order. When a request carries both headers, neither is used: which one the proxy wrote is
/// unknown, and a caller can send the other; the source is then the proxy, which costs the
/// caller only its own lockout's precision. An entry that is not an address (`unknown`, an
/// obfuscated name) ends the walk at the last trusted hop.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let lines = |name: &str| -> Option<Vec<String>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let (Some(xff), Some(forwarded)) = (lines("x-forwarded-for"), lines("forwarded")) else {
        // A header that is not text: unreadable, so not believed.
        return peer;
    };
    let chain: Vec<String> = match (xff.is_empty(), forwarded.is_empty()) {
        (false, true) => xff
            .iter()
            .flat_map(|line| line.split(','))
            .map(|hop| hop.trim().to_string())
            .collect(),
        (true, false) => forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(forwarded_for)
            .collect(),
        _ => return peer,
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(ip) = hop_address(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// The `for=` of one `Forwarded` element (empty when it has none).
fn forwarded_for(element: &str) -> String {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

/// An admin page (`/`, `/status`, `/connect`, `/discover`) asked for under this server's own
/// name: the public URL's host, an IP address, or `localhost`. A page a browser on the
/// homehook machine loaded from another site can make that browser send requests to
/// 127.0.0.1, and with DNS rebinding (the site's name made to resolve to 127.0.0.1) read the
/// answers; such requests carry the site's name in `Host`, and are refused here. An IP address
/// or `localhost` cannot be rebound. Behind API Gateway (the public URL taken from `Host`),
/// and for a request without `Host` (no browser sends one), there is nothing to check.
#[derive(Debug, Clone, Copy)]
pub struct OwnHost;

impl OwnHost {
    /// `Ok` when `parts` were sent to this server's own name under `config`.
    pub fn check(parts: &Parts, config: &Config) -> Result<Self, ApiError> {
        if config.server.public_url_from_host {
            return Ok(Self);
        }
        let host = parts
            .headers
            .get(header::HOST)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()));
        let Some(host) = host else {
            return Ok(Self);
        };
        let name = host_name(&host);
        let public = config
            .server
            .public_url
            .host_str()
            .map(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim_end_matches('.')
            })
            .unwrap_or_default();
        let own = name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || name.eq_ignore_ascii_case(public);
        if own {
            Ok(Self)
        } else {
            let shown: String = host.chars().take(80).filter(|c| !c.is_control()).collect();
            Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "wrong_host",
                format!(
                    "This page answers only at {} (server.public_url), not under the name {shown:?}. \
                     Open it at that URL; behind a reverse proxy, pass the original Host on \
                     (nginx: proxy_set_header Host $host).",
                    config.base_url()
                ),
            ))
        }
    }
}

/// The name of a `Host` value, without its port, brackets or trailing dot.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None if host.matches(':').count() > 1 => host,
        None => host.split(':').next().unwrap_or_default(),
    };
    name.trim_end_matches('.')
}

impl FromRequestParts<AppState> for OwnHost {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, live: &AppState) -> Result<Self, ApiError> {
        Self::check(parts, &live.app().await.services.config)
    }
}

/// The app of the process's current config ([`crate::live::Live::app`]), for this request.
#[derive(Debug, Clone)]
pub struct Current(pub Arc<App>);

impl FromRequestParts<AppState> for Current {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, live: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(live.app().await))
    }
}

/// The owner: a request sent to this server's own name ([`OwnHost`]) that presented the admin
/// key ([`gate::admit_admin`]; a wrong one counts against its source). A handler that takes it
/// runs for nobody else.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, live: &AppState) -> Result<Self, ApiError> {
        let app = live.app().await;
        let config = &app.services.config;
        OwnHost::check(parts, config)?;
        let query = CallQuery::parse(parts.uri.query());
        let key = presented_key(&parts.headers, query.key.as_ref().map(SecretString::expose));
        let CallSource(source) = CallSource::of(parts, config);
        gate::admit_admin(
            &app.services,
            &app.guard,
            source,
            app.admin_key_from_secrets,
            key,
        )
        .await?;
        Ok(Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_and_only_behind_a_trusted_peer() {
        let trusted: Vec<IpRange> = ["127.0.0.1", "10.0.0.0/8"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let proxy = ip("127.0.0.1");
        let xff = |v: &str| headers(&[("x-forwarded-for", v)]);
        // nginx appended 198.51.100.7 to what the caller wrote.
        let h = xff("203.0.113.1, 198.51.100.7");
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        // A chain of trusted proxies is walked through.
        let h = xff("203.0.113.1, 198.51.100.7, 10.1.2.3");
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.8"));
        // From a peer that is not trusted, the headers are the caller's own text.
        let h = xff("198.51.100.7");
        assert_eq!(
            client_address(ip("192.0.2.9"), &h, &trusted),
            ip("192.0.2.9")
        );
        assert_eq!(client_address(proxy, &h, &[]), proxy);
        // No header, an unreadable hop, or both headers: the proxy itself.
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            client_address(proxy, &xff("198.51.100.7, unknown"), &trusted),
            proxy
        );
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=192.0.2.1"),
        ]);
        assert_eq!(client_address(proxy, &both, &trusted), proxy);
        // Only trusted hops: the left-most.
        assert_eq!(
            client_address(proxy, &xff("10.0.0.5"), &trusted),
            ip("10.0.0.5")
        );
        // Ports, brackets, IPv4-mapped IPv6.
        let h = xff("[2001:db8::1]:4711");
        assert_eq!(client_address(proxy, &h, &trusted), ip("2001:db8::1"));
        let h = xff("198.51.100.7:5000");
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
        let h = xff("::ffff:198.51.100.7");
        assert_eq!(client_address(proxy, &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_for_is_read_like_x_forwarded_for() {
        let trusted: Vec<IpRange> = vec!["127.0.0.1".parse().unwrap()];
        let h = headers(&[(
            "forwarded",
            r#"for=203.0.113.1;proto=https, For="[2001:db8:cafe::17]:4711";by=127.0.0.1"#,
        )]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "for=_hidden, for=198.51.100.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn host_names_lose_their_port_brackets_and_dot() {
        assert_eq!(host_name("home.example.com:8443"), "home.example.com");
        assert_eq!(host_name("home.example.com."), "home.example.com");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("::1"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn a_key_in_the_query_is_found_but_never_printed() {
        let query = CallQuery::parse(Some("key=hh_from-the-url&mode=away&format=json"));
        assert_eq!(
            query.key.as_ref().map(SecretString::expose),
            Some("hh_from-the-url")
        );
        assert_eq!(query.params, [("mode".to_string(), "away".to_string())]);
        let shown = format!("{query:?}");
        assert!(!shown.contains("hh_from-the-url"), "{shown}");
    }
}
