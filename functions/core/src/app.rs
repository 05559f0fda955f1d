//! The application's services, built once per process (or Lambda cold start) and shared by
//! every request: config, store, secrets, clock, one HTTP client, the token keeper.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::TokenError;
use crate::guard::limits::CallLimits;
use crate::guard::{Guard, action_limiter, key_limiter};
use crate::notify::{Notifiers, Notify, Webhook};
use crate::pace::VendorPace;
use crate::refresh::{RefreshSummary, TokenKeeper};
use crate::schedule::ScheduleSummary;
use crate::secrets::Secrets;
use crate::store::Store;

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Token and item store.
    pub store: Arc<dyn Store>,
    /// Client credentials.
    pub secrets: Arc<dyn Secrets>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// The one outbound HTTP client (connection pooling, timeouts, redirect policy).
    pub http: reqwest::Client,
    /// Where tokens are renewed.
    pub keeper: Arc<TokenKeeper>,
    /// Where the owner is told about connections that need them.
    pub notifiers: Notifiers,
    /// Rate limits and lockouts of the action URLs.
    pub guard: Arc<Guard>,
    /// Calls made per connection against its vendor's budget.
    pub pace: Arc<VendorPace>,
    /// Without `server.admin_key_hash` in the config, read it from the secrets' entry
    /// [`ADMIN_KEY_ENTRY`] when an admin request comes (the Lambda functions: the secret is
    /// not read at cold start, and a new hash there takes effect without a redeploy).
    pub admin_key_from_secrets: bool,
}

/// The secrets entry holding the admin key's hash, for [`App::admin_key_from_secrets`].
pub const ADMIN_KEY_ENTRY: &str = "admin_key_hash";

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl std::fmt::Debug for dyn Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

impl App {
    /// Builds the services.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let config = Arc::new(config);
        let http = outbound_client(Duration::from_secs(config.server.vendor_timeout_secs))?;
        let mut notifiers = Notifiers::default();
        if let Some(secret) = &config.notify.webhook_secret {
            notifiers.push(Arc::new(Webhook::new(
                secret.clone(),
                config.notify.format,
                Arc::clone(&secrets),
                http.clone(),
                Arc::clone(&clock),
            )));
        }
        let keeper = Arc::new(TokenKeeper::new(
            Arc::clone(&config),
            Arc::clone(&store),
            Arc::clone(&secrets),
            http.clone(),
            Arc::clone(&clock),
            notifiers.clone(),
        ));
        let guard = Arc::new(guard_of(&config));
        let pace = Arc::new(VendorPace::new(Arc::clone(&clock)));
        Ok(Self {
            config,
            store,
            secrets,
            clock,
            http,
            keeper,
            notifiers,
            guard,
            pace,
            admin_key_from_secrets: false,
        })
    }

    /// Reads the admin key's hash from the secrets when the config has none (see
    /// [`App::admin_key_from_secrets`]).
    pub fn with_admin_key_from_secrets(mut self) -> Self {
        self.admin_key_from_secrets = true;
        self
    }

    /// Adds a place notifications go (the AWS adapter's SNS topic).
    pub fn with_notifier(mut self, sink: Arc<dyn Notify>) -> Self {
        self.notifiers.push(sink);
        self.keeper = Arc::new(TokenKeeper::new(
            Arc::clone(&self.config),
            Arc::clone(&self.store),
            Arc::clone(&self.secrets),
            self.http.clone(),
            Arc::clone(&self.clock),
            self.notifiers.clone(),
        ));
        self
    }

    /// One tick: fires the scheduled actions that are due (each once, see
    /// [`crate::schedule`]), then renews every token that is due.
    pub async fn tick(&self) -> Result<TickSummary, TokenError> {
        // Schedules first: their time is the owner's, while renewals have a margin.
        let scheduled = crate::schedule::fire_due(self).await;
        let tokens = self.keeper.refresh_due().await?;
        Ok(TickSummary { tokens, scheduled })
    }
}

/// The gate of `config`: a rate limiter for every key and action, and the default lockout.
pub fn guard_of(config: &Config) -> Guard {
    let mut limits = CallLimits::default();
    for entry in config.keys.entries() {
        limits.add(key_limiter(&entry.id), entry.rate_limit);
    }
    for action in config.actions.values() {
        limits.add(action_limiter(&action.name), action.rate_limit);
    }
    Guard::new(limits)
}

/// What one tick did: the token renewals' counts, and the scheduled actions under `scheduled`
/// (the JSON the `token-refresh` function answers).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickSummary {
    /// The renewals.
    #[serde(flatten)]
    pub tokens: RefreshSummary,
    /// The scheduled actions (see [`crate::schedule`]).
    pub scheduled: ScheduleSummary,
}

/// The outbound HTTP client: rustls, `timeout` on every call, and redirects followed only within
/// the same host (a vendor moving a path is fine; being sent elsewhere with a token is not).
pub fn outbound_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_host = attempt.previous().first().is_some_and(|first| {
            first.host_str() == attempt.url().host_str() && first.scheme() == attempt.url().scheme()
        });
        if attempt.previous().len() >= 3 || !same_host {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("homehook/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .redirect(policy)
        .build()
}
