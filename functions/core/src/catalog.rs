//! Providers as data: what homehook needs to know about a vendor's OAuth2 server and API, and the
//! built-in entries for the vendors homehook was made for. Config can override any field of a
//! built-in entry (a different token path, a test server) or define a new provider entirely.

use serde::{Deserialize, Serialize};

/// An OAuth2 grant a connection can be established with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Authorization code with PKCE: the owner clicks through the vendor's consent page.
    AuthorizationCode,
    /// Resource owner password: username and password live in the connection's secret.
    Password,
}

impl Grant {
    /// The grant's name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::Password => "password",
        }
    }
}

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic `Authorization` header.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Form,
}

/// Where the access token goes on an API call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPlacement {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A query parameter with this name (Myfox's `access_token`).
    Query(String),
}

/// How a vendor says "this access token has expired": an HTTP status, optionally narrowed by a
/// value at a JSON pointer in the body (Netatmo: 403 with `/error/code` = 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiredTokenSignal {
    /// HTTP status of the answer.
    pub status: u16,
    /// JSON pointer into the answer body (RFC 6901), e.g. `/error/code`.
    #[serde(default)]
    pub pointer: Option<String>,
    /// The value found at `pointer` that means "expired".
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
}

impl ExpiredTokenSignal {
    /// Whether an API answer matches this signal.
    pub fn matches(&self, status: u16, body: Option<&serde_json::Value>) -> bool {
        if status != self.status {
            return false;
        }
        match (&self.pointer, &self.equals) {
            (Some(pointer), Some(expected)) => {
                body.and_then(|b| b.pointer(pointer)) == Some(expected)
            }
            _ => true,
        }
    }
}

/// Everything homehook needs to know about one provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderSpec {
    /// Short id used in config and in the callback URL (`/callback/{id}`).
    pub id: String,
    /// Name shown to people ("Netatmo").
    pub display_name: String,
    /// Authorization endpoint, for the authorization-code grant.
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: String,
    /// Base URL that action paths are appended to.
    pub api_base: String,
    /// Grants the provider supports, the first being the default for new connections.
    pub grants: Vec<Grant>,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Scopes requested when a connection names none.
    pub default_scopes: Vec<String>,
    /// Where the access token goes on API calls.
    pub token_placement: TokenPlacement,
    /// Answers that mean "access token expired: refresh and retry once".
    pub expired_token: Vec<ExpiredTokenSignal>,
    /// Send a PKCE (S256) challenge with the authorization request.
    pub pkce: bool,
}

/// The built-in provider catalog.
pub fn builtin() -> Vec<ProviderSpec> {
    let netatmo_like = |id: &str, name: &str, scopes: &[&str]| ProviderSpec {
        id: id.into(),
        display_name: name.into(),
        authorize_url: Some("https://api.netatmo.com/oauth2/authorize".into()),
        token_url: "https://api.netatmo.com/oauth2/token".into(),
        api_base: "https://api.netatmo.com".into(),
        grants: vec![Grant::AuthorizationCode],
        client_auth: ClientAuth::Form,
        default_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        token_placement: TokenPlacement::Bearer,
        expired_token: vec![ExpiredTokenSignal {
            status: 403,
            pointer: Some("/error/code".into()),
            equals: Some(3.into()),
        }],
        pkce: true,
    };
    let invalid_token_401 = || ExpiredTokenSignal {
        status: 401,
        pointer: Some("/error".into()),
        equals: Some("invalid_token".into()),
    };
    vec![
        netatmo_like(
            "netatmo",
            "Netatmo",
            &["read_station", "read_thermostat", "write_thermostat"],
        ),
        netatmo_like(
            "legrand",
            "Works with Legrand",
            &["read_magellan", "write_magellan"],
        ),
        ProviderSpec {
            id: "somfy_protect".into(),
            display_name: "Somfy Protect".into(),
            authorize_url: None,
            token_url: "https://sso.myfox.io/oauth/oauth/v2/token".into(),
            api_base: "https://api.myfox.io/v3".into(),
            grants: vec![Grant::Password],
            client_auth: ClientAuth::Form,
            default_scopes: vec![],
            token_placement: TokenPlacement::Bearer,
            expired_token: vec![ExpiredTokenSignal {
                status: 401,
                pointer: None,
                equals: None,
            }],
            pkce: false,
        },
        ProviderSpec {
            id: "myfox".into(),
            display_name: "Myfox".into(),
            authorize_url: Some("https://api.myfox.me/oauth2/authorize".into()),
            token_url: "https://api.myfox.me/oauth2/token".into(),
            api_base: "https://api.myfox.me/v2".into(),
            grants: vec![Grant::Password, Grant::AuthorizationCode],
            client_auth: ClientAuth::Basic,
            default_scopes: vec![],
            token_placement: TokenPlacement::Bearer,
            expired_token: vec![invalid_token_401()],
            pkce: true,
        },
        ProviderSpec {
            id: "homey".into(),
            display_name: "Homey".into(),
            authorize_url: Some("https://api.athom.com/oauth2/authorise".into()),
            token_url: "https://api.athom.com/oauth2/token".into(),
            api_base: "https://api.athom.com".into(),
            grants: vec![Grant::AuthorizationCode],
            client_auth: ClientAuth::Basic,
            default_scopes: vec![],
            token_placement: TokenPlacement::Bearer,
            expired_token: vec![invalid_token_401()],
            pkce: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netatmo_expired_signal_needs_code_3() {
        let spec = builtin()
            .into_iter()
            .find(|p| p.id == "netatmo")
            .expect("netatmo");
        let signal = &spec.expired_token[0];
        let expired = serde_json::json!({"error": {"code": 3, "message": "Access token expired"}});
        let scope = serde_json::json!({"error": {"code": 13, "message": "Missing scope"}});
        assert!(signal.matches(403, Some(&expired)));
        assert!(!signal.matches(403, Some(&scope)));
        assert!(!signal.matches(401, Some(&expired)));
    }

    #[test]
    fn builtin_ids_are_unique() {
        let mut ids: Vec<_> = builtin().into_iter().map(|p| p.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
