//! The narrow door a vendor module calls its vendor through: [`VendorApi`]. The service behind
//! it (`vendor_client::VendorClient`) brings the fresh token, the vendor's pace, one renewal and
//! the bounded retries; a vendor module only says what to ask and how to read the answer.

use async_trait::async_trait;
use serde_json::Value;

use crate::catalog::ProviderSpec;
use crate::clock::UnixTime;
use crate::error::ActionError;
use crate::vendor::{VendorBody, VendorCallError, VendorRequest, VendorResponse, VendorTarget};

/// Which API of a connection a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The provider's cloud API, with the access token.
    Cloud,
    /// What actions act on: the cloud for most providers, the chosen Homey (through its device
    /// session) for Homey.
    Actions,
}

/// One connection's API, as a vendor module sees it.
#[async_trait]
pub trait VendorApi: Send + Sync {
    /// The connection's id (for logs and messages).
    fn connection_id(&self) -> &str;

    /// The device the connection's config chose, where an account has several (Homey's
    /// `connections.<id>.homey`).
    fn chosen_device(&self) -> Option<&str>;

    /// The connection's provider.
    fn spec(&self) -> &ProviderSpec;

    /// The time now.
    fn now(&self) -> UnixTime;

    /// Sends `request`, with the credential, renewals and retries the endpoint needs; answers
    /// only what the vendor module calls a success.
    async fn send(
        &self,
        endpoint: Endpoint,
        request: &VendorRequest,
    ) -> Result<VendorResponse, ActionError>;

    /// Sends `request` to `target` as it is: no token, no renewal, no retry (a login whose
    /// credential is in the body).
    async fn send_to(
        &self,
        target: &VendorTarget,
        request: &VendorRequest,
    ) -> Result<VendorResponse, VendorCallError>;

    /// A GET of `path` with query pairs; the answer must be JSON.
    async fn get(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ActionError> {
        let request = VendorRequest {
            method: http::Method::GET,
            path: path.to_string(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: VendorBody::Empty,
        };
        let response = self.send(endpoint, &request).await?;
        response.json.ok_or_else(|| ActionError::VendorRejected {
            status: response.status,
            reason: Some("the vendor's answer is not JSON".into()),
        })
    }
}
