//! The composition root: [`App`] is the [`Services`] plus the gate's in-process state, built
//! once per process (or Lambda cold start) and shared by every request and every tick.

use std::sync::Arc;

use crate::config::Config;
use crate::error::TokenError;
use crate::guard::limits::CallLimits;
use crate::guard::{Guard, action_limiter, key_limiter};
use crate::notify::Notify;
use crate::refresh::RefreshSummary;
use crate::schedule::ScheduleSummary;
use crate::services::Services;

/// Everything a request handler or a tick needs.
#[derive(Debug, Clone)]
pub struct App {
    /// What every use case runs on.
    pub services: Services,
    /// Rate limits and lockouts of the action URLs.
    pub guard: Arc<Guard>,
    /// Without `server.admin_key_hash` in the config, read it from the secrets' entry
    /// [`crate::gate::ADMIN_KEY_ENTRY`] when an admin request comes (the Lambda functions: the secret is
    /// not read at cold start, and a new hash there takes effect without a redeploy).
    pub admin_key_from_secrets: bool,
}

impl App {
    /// The services with the gate of their config.
    pub fn new(services: Services) -> Self {
        let guard = Arc::new(guard_of(&services.config));
        Self {
            services,
            guard,
            admin_key_from_secrets: false,
        }
    }

    /// Reads the admin key's hash from the secrets when the config has none (see
    /// [`App::admin_key_from_secrets`]).
    pub fn with_admin_key_from_secrets(mut self) -> Self {
        self.admin_key_from_secrets = true;
        self
    }

    /// Adds a place notifications go (the AWS adapter's SNS topic).
    pub fn with_notifier(mut self, sink: Arc<dyn Notify>) -> Self {
        self.services = self.services.with_notifier(sink);
        self
    }

    /// The same process under a new config: the services carry their state over (see
    /// [`Services::reconfigured`]), the gate keeps its lockouts and takes the new keys' and
    /// actions' limiters.
    pub fn reconfigured(&self, config: Config) -> Result<Self, reqwest::Error> {
        let services = self.services.reconfigured(config)?;
        let guard = Arc::new(self.guard.with_limits(limits_of(&services.config)));
        Ok(Self {
            services,
            guard,
            admin_key_from_secrets: self.admin_key_from_secrets,
        })
    }

    /// One tick: fires the scheduled actions that are due (each once, see
    /// [`crate::schedule`]), then renews every token that is due.
    pub async fn tick(&self) -> Result<TickSummary, TokenError> {
        // Schedules first: their time is the owner's, while renewals have a margin.
        let scheduled = crate::schedule::fire_due(&self.services).await;
        let tokens = self.services.keeper.refresh_due().await?;
        Ok(TickSummary { tokens, scheduled })
    }
}

/// The gate of `config`: a rate limiter for every key and action, and the default lockout.
pub fn guard_of(config: &Config) -> Guard {
    Guard::new(limits_of(config))
}

fn limits_of(config: &Config) -> CallLimits {
    let mut limits = CallLimits::default();
    for entry in config.keys.entries() {
        limits.add(key_limiter(&entry.id), entry.rate_limit);
    }
    for action in config.actions.values() {
        limits.add(action_limiter(&action.name), action.rate_limit);
    }
    limits
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
