//! What handlers take from a request besides its path and body: where a caller may put a key,
//! the admin check as an extractor ([`Admin`]), the query's own members, and where the call
//! came from. Finding things in the request is all this does: the checks are in
//! [`crate::gate`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;
use crate::app::App;
use crate::gate;
use crate::guard::ClientSource;
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
/// [`ClientSource`]), else the peer address.
#[derive(Debug, Clone, Copy)]
pub struct CallSource(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for CallSource {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let source = parts.extensions.get::<ClientSource>().map(|s| s.0).or(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()));
        Ok(Self(source))
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

/// The owner: a request that presented the admin key ([`gate::admit_admin`]). A handler that
/// takes it runs for nobody else.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, live: &AppState) -> Result<Self, ApiError> {
        let app = live.app().await;
        let query = CallQuery::parse(parts.uri.query());
        let key = presented_key(&parts.headers, query.key.as_ref().map(SecretString::expose));
        gate::admit_admin(&app.services, app.admin_key_from_secrets, key).await?;
        Ok(Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
