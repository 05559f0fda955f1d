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
    /// Whether the authorization request carries a PKCE (S256) challenge, and what is known of
    /// the vendor's support for it.
    pub pkce: Pkce,
    /// What joins scopes in the authorization request: a space (RFC 6749 §3.3) for most,
    /// a comma for Athom's Homey cloud (its own client, `homey-api`, joins them so).
    pub scope_separator: char,
    /// Which vendor module reads this provider's answers; [`VendorKind::STANDARD`] for
    /// providers from config.
    pub kind: VendorKind,
    /// How carefully its tokens must be renewed.
    pub refresh: RefreshPolicy,
    /// API calls a connection may make, every window at once (Netatmo: 50 per 10 s and 500 per
    /// hour per user); empty for no limit. See [`crate::pace`].
    pub api_budget: Vec<CallBudget>,
}

/// PKCE on the authorization request, as a fact about the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pkce {
    /// Not sent (password-grant vendors, or `pkce = false` in config).
    Off,
    /// Sent; the vendor (or the owner, in config) says it checks it.
    Supported,
    /// Sent though no public client of the vendor sends it, so nothing shows the vendor checks
    /// it. An OAuth 2.0 server ignores request parameters it does not know (RFC 6749 §3.1), so
    /// the challenge costs nothing where it is ignored and protects the code where it is
    /// checked; should a vendor ever refuse it, `pkce = false` under `[providers.<id>]` turns
    /// it off. The evidence per vendor is in docs/providers/.
    Unverified,
}

impl Pkce {
    /// Whether the authorization request carries a challenge.
    pub fn sent(self) -> bool {
        self != Pkce::Off
    }
}

/// How a provider's tokens are renewed, beyond "before the access token expires".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshPolicy {
    /// At most this many token-endpoint calls per connection and window (Somfy Protect answers
    /// 429 after about 5 per 10 minutes; Myfox deactivates apps that ask too often). homehook
    /// stays under it by itself instead of learning it from a 429.
    #[serde(default)]
    pub token_budget: Option<CallBudget>,
    /// Refresh tokens lapse this long after they are issued (Somfy: 14 days). homehook renews
    /// at half that age even when no access token is due, and, where the vendor keeps handing
    /// back the same refresh token, uses the password grant (if the connection has one) before
    /// it lapses.
    #[serde(default)]
    pub refresh_token_lifetime_secs: Option<i64>,
}

/// A number of calls per window of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBudget {
    /// Calls allowed per window.
    pub max: u32,
    /// The window, in seconds.
    pub window_secs: i64,
}

/// Which vendor module reads a provider's answers and knows its built-in actions: the id of
/// one entry of the registry in [`crate::providers`]. Providers defined in config get
/// [`VendorKind::STANDARD`]: plain OAuth2 and HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VendorKind(pub &'static str);

impl VendorKind {
    /// No vendor module: plain OAuth2 and HTTP status codes.
    pub const STANDARD: VendorKind = VendorKind("standard");

    /// The kind's id.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl Default for VendorKind {
    fn default() -> Self {
        Self::STANDARD
    }
}
