//! Talking to one connection's API: a fresh token, the provider's reading of each answer, one
//! renewal when the vendor says the token (or the device session) expired, and a short,
//! bounded retry of passing failures. Actions, `discover` and Homey's session chain all call
//! vendors through [`ApiClient`], so every vendor call gets the same care.

use std::time::Duration;

use crate::action::ActionError;
use crate::app::App;
use crate::catalog::{ProviderSpec, Quirk};
use crate::config::Connection;
use crate::providers::{self, Verdict};
use crate::token::TokenRecord;
use crate::vendor::{self, ApiTarget, VendorCallError, VendorRequest, VendorResponse};

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
        session_refused: bool,
    ) -> Result<ApiTarget, ActionError> {
        match (endpoint, self.spec.quirk) {
            (Endpoint::Device, Quirk::Homey) => {
                providers::homey::device_target(self, record, session_refused).await
            }
            _ => Ok(ApiTarget::provider(self.spec, &record.access_token)),
        }
    }

    /// Sends `request`, renewing and retrying as the answer calls for.
    pub async fn send(
        &self,
        endpoint: Endpoint,
        request: &VendorRequest,
    ) -> Result<VendorResponse, ActionError> {
        let keeper = &self.app.keeper;
        let mut record = keeper.fresh_token(self.conn).await?;
        let (mut token_renewed, mut session_refused, mut retries) = (false, false, 0);
        loop {
            let target = self.target(endpoint, &record, session_refused).await?;
            let (verdict, response) = match vendor::call(&self.app.http, &target, request).await {
                Ok(r) => (providers::classify(self.spec, endpoint, &r), Some(r)),
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
                Verdict::SessionExpired if !session_refused => {
                    tracing::info!(connection = %self.conn.id, "device refused its session; logging in again once");
                    session_refused = true;
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
                    return Err(ActionError::VendorBusy { retry_after_secs });
                }
                Verdict::Rejected { status, reason } => {
                    return Err(ActionError::VendorRejected { status, reason });
                }
            }
        }
    }
}
