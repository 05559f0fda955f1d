//! **Where a vendor is called**: [`VendorClient`], one connection's API over the services. A
//! fresh token, the vendor's pace, the vendor module's reading of each answer, one renewal when
//! the vendor says the token (or the device session) expired, and a short, bounded retry of
//! passing failures. Actions, discovery and Homey's session chain all call vendors through it
//! (vendor modules through its [`VendorApi`] side), so every vendor call gets the same care.

use std::time::Duration;

use async_trait::async_trait;

use crate::catalog::ProviderSpec;
use crate::clock::UnixTime;
use crate::config::Connection;
use crate::error::ActionError;
use crate::providers::discovery::{self, Discovery};
use crate::providers::port::{Endpoint, VendorApi};
use crate::providers::{self, StepResult, Vendor, Verdict};
use crate::sensitive::SecretString;
use crate::services::Services;
use crate::token::{DeviceSession, TokenRecord};
use crate::vendor::{
    self, TargetAuth, VendorCallError, VendorRequest, VendorResponse, VendorTarget,
};

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

/// One connection's API, over the services.
#[derive(Clone, Copy)]
pub struct VendorClient<'a> {
    services: &'a Services,
    conn: &'a Connection,
    spec: &'a ProviderSpec,
    vendor: &'static dyn Vendor,
}

impl std::fmt::Debug for VendorClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorClient")
            .field("connection", &self.conn.id)
            .field("provider", &self.spec.id)
            .finish_non_exhaustive()
    }
}

impl<'a> VendorClient<'a> {
    /// The client of a configured connection.
    pub fn new(services: &'a Services, connection: &str) -> Result<Self, ActionError> {
        let config = &services.config;
        let conn = config.connections.get(connection).ok_or_else(|| {
            ActionError::Misconfigured(format!("unknown connection {connection}"))
        })?;
        let spec = config.provider_of(conn).ok_or_else(|| {
            ActionError::Misconfigured(format!("unknown provider {}", conn.provider))
        })?;
        Ok(Self {
            services,
            conn,
            spec,
            vendor: providers::vendor_of(spec.kind),
        })
    }

    /// The connection.
    pub fn connection(&self) -> &'a Connection {
        self.conn
    }

    /// Sends a request to what actions act on; answers only a 2xx the vendor calls a success.
    pub async fn act(&self, request: &VendorRequest) -> Result<VendorResponse, ActionError> {
        self.send(Endpoint::Actions, request).await
    }

    /// Runs the vendor's code step `name` (a built-in action's `run = "..."`).
    pub async fn run_step(
        &self,
        name: &str,
        request: &VendorRequest,
    ) -> Result<StepResult, ActionError> {
        if !self.vendor.steps().contains(&name) {
            return Err(providers::no_step(self, name));
        }
        self.vendor.run_step(self, name, request).await
    }

    /// Lists what the connection's actions need, by asking its API.
    pub async fn discover(&self) -> Result<Discovery, ActionError> {
        discovery::discover(self).await
    }

    /// Whether a device session can be used: not due for renewal, not the one the device just
    /// refused, and still for the device the config chose.
    fn session_usable(&self, session: &DeviceSession, refused: Option<&SecretString>) -> bool {
        self.services.clock.now() < session.renew_after
            && refused.is_none_or(|r| *r != session.bearer)
            && self
                .vendor
                .session_fits(session, self.conn.homey.as_deref())
    }

    /// Where a request goes: the provider's API with the access token, or for a vendor with
    /// device sessions, the device (a new session when there is none, it is old, or the device
    /// just refused it).
    async fn target(
        &self,
        endpoint: Endpoint,
        record: &TokenRecord,
        refused: Option<&SecretString>,
    ) -> Result<VendorTarget, ActionError> {
        if endpoint == Endpoint::Actions && self.vendor.uses_device_session() {
            let session = self
                .services
                .keeper
                .device_session(
                    self.conn,
                    record,
                    |s| self.session_usable(s, refused),
                    || self.vendor.open_session(self),
                )
                .await?;
            return Ok(VendorTarget::session(&session));
        }
        Ok(VendorTarget::provider(self.spec, &record.access_token))
    }

    /// The record to start from: with a usable device session, the stored one as it is (the
    /// access token is not needed until the session must be renewed); otherwise a record with a
    /// fresh access token.
    async fn starting_record(&self, endpoint: Endpoint) -> Result<TokenRecord, ActionError> {
        let keeper = &self.services.keeper;
        if endpoint == Endpoint::Actions
            && self.vendor.uses_device_session()
            && let Some(stored) = keeper.stored(self.conn).await?
            && stored
                .session
                .as_ref()
                .is_some_and(|s| self.session_usable(s, None))
        {
            return Ok(stored);
        }
        Ok(keeper.fresh_token(self.conn).await?)
    }
}

#[async_trait]
impl VendorApi for VendorClient<'_> {
    fn connection_id(&self) -> &str {
        &self.conn.id
    }

    fn chosen_device(&self) -> Option<&str> {
        self.conn.homey.as_deref()
    }

    fn spec(&self) -> &ProviderSpec {
        self.spec
    }

    fn now(&self) -> UnixTime {
        self.services.clock.now()
    }

    async fn send_to(
        &self,
        target: &VendorTarget,
        request: &VendorRequest,
    ) -> Result<VendorResponse, VendorCallError> {
        vendor::call(&self.services.http, target, request).await
    }

    /// Sends `request`, renewing and retrying as the answer calls for.
    async fn send(
        &self,
        endpoint: Endpoint,
        request: &VendorRequest,
    ) -> Result<VendorResponse, ActionError> {
        let services = self.services;
        let mut record = self.starting_record(endpoint).await?;
        let mut token_renewed = false;
        // The session bearer the device refused, so the next try logs in anew.
        let mut refused_session: Option<SecretString> = None;
        let mut retries = 0;
        loop {
            services
                .pace
                .admit(&self.conn.id, &self.spec.api_budget)
                .await
                .map_err(|retry_after_secs| ActionError::OverBudget { retry_after_secs })?;
            let target = self
                .target(endpoint, &record, refused_session.as_ref())
                .await?;
            let (verdict, response) = match vendor::call(&services.http, &target, request).await {
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
                    record = services.keeper.renew_rejected(self.conn, &record).await?;
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
                    let words = response.as_ref().and_then(|r| r.reason());
                    return Err(ActionError::VendorRejected {
                        status: response.map(|r| r.status).unwrap_or(401),
                        reason: Some(match words {
                            Some(w) => format!("the vendor refused a just-renewed credential: {w}"),
                            None => "the vendor refused a just-renewed credential".into(),
                        }),
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
                    services.pace.rest(&self.conn.id, retry_after_secs);
                    return Err(ActionError::VendorBusy { retry_after_secs });
                }
                Verdict::Rejected { status, reason } => {
                    return Err(ActionError::VendorRejected { status, reason });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{
        FIRST_ACCESS_TOKEN, FIRST_REFRESH_TOKEN, Reply, Setup, TOKEN_PATH, expired_token_body,
        setup,
    };
    use crate::vendor::VendorBody;

    fn request(method: http::Method, path: &str) -> VendorRequest {
        VendorRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: VendorBody::Empty,
        }
    }

    /// Sends `method path` (no body) through the client of the test's connection.
    async fn send(
        s: &Setup,
        method: http::Method,
        path: &str,
    ) -> Result<VendorResponse, ActionError> {
        let client = VendorClient::new(&s.services, "conn").expect("client");
        client.act(&request(method, path)).await
    }

    #[tokio::test]
    async fn an_expired_token_is_renewed_once_and_the_request_sent_again() {
        let s = setup("").await;
        s.vendor.queue(
            "/things",
            [
                Reply::json(401, expired_token_body()),
                Reply::json(200, json!({"things": [1, 2]})),
            ],
        );
        let r = send(&s, http::Method::GET, "/things")
            .await
            .expect("succeeds after the renewal");
        assert_eq!((r.status, r.json), (200, Some(json!({"things": [1, 2]}))));
        let token_calls = s.vendor.requests_to(TOKEN_PATH);
        assert_eq!(token_calls.len(), 1);
        assert!(
            token_calls[0].body.contains("grant_type=refresh_token")
                && token_calls[0].body.contains(FIRST_REFRESH_TOKEN),
            "{:?}",
            token_calls[0].body
        );
        let auth: Vec<_> = s
            .vendor
            .requests_to("/things")
            .into_iter()
            .map(|r| r.authorization)
            .collect();
        assert_eq!(
            auth,
            [
                Some(format!("Bearer {FIRST_ACCESS_TOKEN}")),
                Some("Bearer at-1".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn a_renewed_token_refused_again_is_an_error_not_a_loop() {
        let s = setup("").await;
        // A third answer that would succeed: reaching it would mean a second renewal.
        s.vendor.queue(
            "/things",
            [
                Reply::json(401, expired_token_body()),
                Reply::json(401, expired_token_body()),
                Reply::json(200, json!({})),
            ],
        );
        let e = send(&s, http::Method::GET, "/things")
            .await
            .expect_err("refused twice");
        assert!(
            matches!(e, ActionError::VendorRejected { status: 401, .. }),
            "{e:?}"
        );
        assert_eq!(s.vendor.token_calls(), 1);
        assert_eq!(s.vendor.requests_to("/things").len(), 2);
    }

    #[tokio::test]
    async fn a_get_answered_500_is_sent_again() {
        let s = setup("").await;
        s.vendor.queue(
            "/things",
            [
                Reply::json(500, json!({})),
                Reply::json(200, json!({"n": 1})),
            ],
        );
        let r = send(&s, http::Method::GET, "/things")
            .await
            .expect("the second try succeeds");
        assert_eq!(r.json, Some(json!({"n": 1})));
        assert_eq!(s.vendor.requests_to("/things").len(), 2);
        assert_eq!(s.vendor.token_calls(), 0);
    }

    #[tokio::test]
    async fn a_get_failing_every_time_gives_up_after_three_tries() {
        let s = setup("").await;
        // A fourth answer that would succeed: reaching it would mean the retries are unbounded.
        s.vendor.queue(
            "/things",
            [
                Reply::json(500, json!({})),
                Reply::json(500, json!({})),
                Reply::json(500, json!({})),
                Reply::json(200, json!({})),
            ],
        );
        let e = send(&s, http::Method::GET, "/things")
            .await
            .expect_err("still failing");
        assert!(matches!(e, ActionError::VendorUnavailable(_)), "{e:?}");
        assert_eq!(s.vendor.requests_to("/things").len(), 3);
    }

    #[tokio::test]
    async fn a_post_answered_500_502_or_504_is_never_sent_twice() {
        let s = setup("").await;
        let client = VendorClient::new(&s.services, "conn").expect("client");
        for status in [500, 502, 504] {
            let path = format!("/arm/{status}");
            // The vendor may have acted before failing: a retry would act twice.
            s.vendor.queue(
                &path,
                [Reply::json(status, json!({})), Reply::json(200, json!({}))],
            );
            let e = client
                .act(&request(http::Method::POST, &path))
                .await
                .expect_err("not retried");
            assert!(
                matches!(e, ActionError::VendorUnavailable(_)),
                "{status}: {e:?}"
            );
            let sent = s.vendor.requests_to(&path);
            assert_eq!(sent.len(), 1, "HTTP {status}");
            assert_eq!(sent[0].method, "POST");
        }
    }

    #[tokio::test]
    async fn a_post_answered_503_is_sent_again() {
        let s = setup("").await;
        s.vendor.queue(
            "/arm",
            [
                Reply::json(503, json!({})),
                Reply::json(200, json!({"armed": true})),
            ],
        );
        let r = send(&s, http::Method::POST, "/arm")
            .await
            .expect("503 means not done: sent again");
        assert_eq!(r.json, Some(json!({"armed": true})));
        assert_eq!(s.vendor.requests_to("/arm").len(), 2);
    }

    #[tokio::test]
    async fn a_429_is_busy_with_the_vendors_retry_after() {
        let s = setup("").await;
        s.vendor.queue(
            "/things",
            [
                Reply::json(429, json!({})).header("retry-after", "7"),
                Reply::json(200, json!({})),
            ],
        );
        let e = send(&s, http::Method::GET, "/things")
            .await
            .expect_err("busy");
        assert!(
            matches!(
                e,
                ActionError::VendorBusy {
                    retry_after_secs: 7
                }
            ),
            "{e:?}"
        );
        assert_eq!(s.vendor.requests_to("/things").len(), 1);
    }
}
