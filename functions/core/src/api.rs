//! Talking to one connection's API: a fresh token, the provider's reading of each answer, one
//! renewal when the vendor says the token (or the device session) expired, and a short,
//! bounded retry of passing failures. Actions, `discover` and Homey's session chain all call
//! vendors through [`ApiClient`], so every vendor call gets the same care.

use std::time::Duration;

use crate::app::App;
use crate::catalog::{ProviderSpec, Quirk};
use crate::config::Connection;
use crate::error::ActionError;
use crate::providers::{self, Verdict};
use crate::secret::SecretString;
use crate::token::TokenRecord;
use crate::vendor::{self, ApiTarget, TargetAuth, VendorCallError, VendorRequest, VendorResponse};

/// Methods that do the same thing however often they are sent.
fn idempotent(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::PUT | http::Method::DELETE
    )
}

/// Waits before retrying a passing failure (connection refused, 5xx, Myfox's "632"). Short:
/// someone is waiting on a phone; three tries in about a second, then a clear error.
const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(600)];

/// Which API of a connection a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The provider's API base, with the access token.
    Cloud,
    /// What actions act on: the cloud for most providers, the chosen Homey for Homey.
    Device,
}

/// One connection's API, over the application's services.
#[derive(Debug, Clone, Copy)]
pub struct ApiClient<'a> {
    /// The services.
    pub app: &'a App,
    /// The connection.
    pub conn: &'a Connection,
    /// Its provider.
    pub spec: &'a ProviderSpec,
}

impl<'a> ApiClient<'a> {
    /// The client of a configured connection.
    pub fn new(app: &'a App, connection: &str) -> Result<Self, ActionError> {
        let conn = app.config.connections.get(connection).ok_or_else(|| {
            ActionError::Misconfigured(format!("unknown connection {connection}"))
        })?;
        let spec = app.config.provider_of(conn).ok_or_else(|| {
            ActionError::Misconfigured(format!("unknown provider {}", conn.provider))
        })?;
        Ok(Self { app, conn, spec })
    }

    /// Sends a request to what actions act on; answers only a 2xx the provider calls a success.
    pub async fn device(&self, request: &VendorRequest) -> Result<VendorResponse, ActionError> {
        self.send(Endpoint::Device, request).await
    }

    /// Sends a request to the provider's cloud API with the access token.
    pub async fn cloud(&self, request: &VendorRequest) -> Result<VendorResponse, ActionError> {
        self.send(Endpoint::Cloud, request).await
    }

    /// A GET of `path` with query pairs, to what actions act on.
    pub async fn get(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, ActionError> {
        let request = VendorRequest {
            method: http::Method::GET,
            path: path.to_string(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: vendor::VendorBody::Empty,
        };
        let response = self.send(endpoint, &request).await?;
        response.json.ok_or_else(|| ActionError::VendorRejected {
            status: response.status,
            reason: Some("the vendor's answer is not JSON".into()),
        })
    }

    async fn target(
        &self,
        endpoint: Endpoint,
        record: &TokenRecord,
        refused: Option<&SecretString>,
    ) -> Result<ApiTarget, ActionError> {
        match (endpoint, self.spec.quirk) {
            (Endpoint::Device, Quirk::Homey) => {
                providers::homey::device_target(self, record, refused).await
            }
            _ => Ok(ApiTarget::provider(self.spec, &record.access_token)),
        }
    }

    /// The record to start from: for a Homey with a usable session, the stored one as it is
    /// (the cloud token is not needed until the session must be renewed); otherwise a record
    /// with a fresh access token.
    async fn starting_record(&self, endpoint: Endpoint) -> Result<TokenRecord, ActionError> {
        if endpoint == Endpoint::Device
            && self.spec.quirk == Quirk::Homey
            && let Some(stored) = self.app.keeper.stored(self.conn).await?
            && stored
                .session
                .as_ref()
                .is_some_and(|s| providers::homey::session_usable(self, s, None))
        {
            return Ok(stored);
        }
        Ok(self.app.keeper.fresh_token(self.conn).await?)
    }

    /// Sends `request`, renewing and retrying as the answer calls for.
    pub async fn send(
        &self,
        endpoint: Endpoint,
        request: &VendorRequest,
    ) -> Result<VendorResponse, ActionError> {
        let keeper = &self.app.keeper;
        let mut record = self.starting_record(endpoint).await?;
        let mut token_renewed = false;
        // The session bearer the device refused, so the next try logs in anew.
        let mut refused_session: Option<SecretString> = None;
        let mut retries = 0;
        loop {
            self.app
                .pace
                .admit(&self.conn.id, &self.spec.api_budget)
                .await
                .map_err(|retry_after_secs| ActionError::OverBudget { retry_after_secs })?;
            let target = self
                .target(endpoint, &record, refused_session.as_ref())
                .await?;
            let (verdict, response) = match vendor::call(&self.app.http, &target, request).await {
                Ok(r) => {
                    let verdict = match providers::classify(self.spec, endpoint, &r) {
                        // A 5xx may come after the vendor acted (a gateway timing out): only
                        // requests that cannot act twice are sent again; 503 means "not done".
                        Verdict::Transient { reason, retryable }
                            if r.status >= 500 && r.status != 503 =>
                        {
                            Verdict::Transient {
                                reason,
                                retryable: retryable && idempotent(&request.method),
                            }
                        }
                        other => other,
                    };
                    (verdict, Some(r))
                }
                Err(VendorCallError::BadUrl(p)) => {
                    return Err(ActionError::Misconfigured(format!("bad vendor path {p}")));
                }
                Err(VendorCallError::Unreachable { detail, retryable }) => (
                    Verdict::Transient {
                        reason: detail,
                        retryable,
                    },
                    None,
                ),
            };
            match verdict {
                Verdict::Ok => {
                    if let Some(r) = response {
                        return Ok(r);
                    }
                    return Err(ActionError::VendorUnavailable("no answer".into()));
                }
                Verdict::TokenExpired if !token_renewed => {
                    tracing::info!(connection = %self.conn.id, "vendor says the token expired; renewing once");
                    record = keeper.renew_rejected(self.conn, &record).await?;
                    token_renewed = true;
                }
                Verdict::SessionExpired if refused_session.is_none() => {
                    tracing::info!(connection = %self.conn.id, "device refused its session; logging in again once");
                    refused_session = Some(match target.auth {
                        TargetAuth::Bearer(bearer) => bearer,
                        _ => SecretString::new(""),
                    });
                }
                Verdict::TokenExpired | Verdict::SessionExpired => {
                    return Err(ActionError::VendorRejected {
                        status: response.map(|r| r.status).unwrap_or(401),
                        reason: Some("the vendor refused a just-renewed credential".into()),
                    });
                }
                Verdict::Transient {
                    retryable: true, ..
                } if retries < RETRY_BACKOFF.len() => {
                    tokio::time::sleep(RETRY_BACKOFF[retries]).await;
                    retries += 1;
                }
                Verdict::Transient { reason, .. } => {
                    return Err(ActionError::VendorUnavailable(reason));
                }
                Verdict::Busy { retry_after_secs } => {
                    self.app.pace.rest(&self.conn.id, retry_after_secs);
                    return Err(ActionError::VendorBusy { retry_after_secs });
                }
                Verdict::Rejected { status, reason } => {
                    return Err(ActionError::VendorRejected { status, reason });
                }
            }
        }
    }
}
