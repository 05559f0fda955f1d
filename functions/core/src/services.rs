//! The services every use case runs on, built once per process (or Lambda cold start): config,
//! store, secrets, clock, one outbound HTTP client, the token keeper, the vendors' pace and the
//! notifiers. Use cases take `&Services`; the gate's in-process state lives one tier up, in
//! [`crate::app::App`].

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::notify::{Notifiers, Notify, Webhook};
use crate::pace::VendorPace;
use crate::refresh::TokenKeeper;
use crate::secrets::Secrets;
use crate::store::Store;

/// The services a use case runs on. Cheap to clone: clones share everything.
#[derive(Debug, Clone)]
pub struct Services {
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
    /// Where tokens (and device sessions) are renewed.
    pub keeper: Arc<TokenKeeper>,
    /// Where the owner is told about connections that need them.
    pub notifiers: Notifiers,
    /// Calls made per connection against its vendor's budget.
    pub pace: Arc<VendorPace>,
    /// Sinks the host added (the AWS adapter's SNS topic), kept when the config changes.
    extra_sinks: Notifiers,
}

impl Services {
    /// Builds the services over the given ports.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let config = Arc::new(config);
        let http = outbound_client(Duration::from_secs(config.server.vendor_timeout_secs))?;
        let notifiers = notifiers_of(&config, &secrets, &http, &clock, &Notifiers::default());
        let keeper = Arc::new(TokenKeeper::new(
            Arc::clone(&config),
            Arc::clone(&store),
            Arc::clone(&secrets),
            http.clone(),
            Arc::clone(&clock),
            notifiers.clone(),
        ));
        let pace = Arc::new(VendorPace::new(Arc::clone(&clock)));
        Ok(Self {
            config,
            store,
            secrets,
            clock,
            http,
            keeper,
            notifiers,
            pace,
            extra_sinks: Notifiers::default(),
        })
    }

    /// Adds a place notifications go (the AWS adapter's SNS topic).
    pub fn with_notifier(mut self, sink: Arc<dyn Notify>) -> Self {
        self.extra_sinks.push(sink);
        self.notifiers = notifiers_of(
            &self.config,
            &self.secrets,
            &self.http,
            &self.clock,
            &self.extra_sinks,
        );
        self.keeper = Arc::new(self.keeper.reconfigured(
            Arc::clone(&self.config),
            self.http.clone(),
            self.notifiers.clone(),
        ));
        self
    }

    /// The same services under a new config (a new version published): the store, secrets,
    /// clock, the vendors' pace and the keeper's renewals in flight carry over; the HTTP client
    /// is made anew only when the vendor timeout changed.
    pub fn reconfigured(&self, config: Config) -> Result<Self, reqwest::Error> {
        let config = Arc::new(config);
        let http = if config.server.vendor_timeout_secs == self.config.server.vendor_timeout_secs {
            self.http.clone()
        } else {
            outbound_client(Duration::from_secs(config.server.vendor_timeout_secs))?
        };
        let notifiers = notifiers_of(
            &config,
            &self.secrets,
            &http,
            &self.clock,
            &self.extra_sinks,
        );
        let keeper = Arc::new(self.keeper.reconfigured(
            Arc::clone(&config),
            http.clone(),
            notifiers.clone(),
        ));
        Ok(Self {
            config,
            http,
            keeper,
            notifiers,
            ..self.clone()
        })
    }
}

/// The config's webhook (if any), then the host's own sinks.
fn notifiers_of(
    config: &Config,
    secrets: &Arc<dyn Secrets>,
    http: &reqwest::Client,
    clock: &Arc<dyn Clock>,
    extra: &Notifiers,
) -> Notifiers {
    let mut notifiers = Notifiers::default();
    if let Some(secret) = &config.notify.webhook_secret {
        notifiers.push(Arc::new(Webhook::new(
            secret.clone(),
            config.notify.format,
            Arc::clone(secrets),
            http.clone(),
            Arc::clone(clock),
        )));
    }
    notifiers.extend(extra);
    notifiers
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
