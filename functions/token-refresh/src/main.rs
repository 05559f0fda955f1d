//! The `token-refresh` Lambda function, called by the EventBridge schedule: one tick (fire the
//! scheduled actions that are due, each once; renew every token that is due), answered and
//! logged as a summary.

use std::sync::Arc;

use homehook_core::App;
use homehook_core::app::TickSummary;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

async fn tick(app: &App, _event: LambdaEvent<serde_json::Value>) -> Result<TickSummary, Error> {
    let summary = app.tick().await?;
    tracing::info!(
        refreshed = summary.tokens.refreshed,
        skipped = summary.tokens.skipped,
        failed = summary.tokens.failed,
        failed_by_class = ?summary.tokens.failed_by_class,
        scheduled_fired = summary.scheduled.fired,
        scheduled_failed = summary.scheduled.failed,
        scheduled_already_claimed = summary.scheduled.already_claimed,
        "refresh tick"
    );
    Ok(summary)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let app: Arc<App> = homehook_aws::lambda::app_from_env().await?;
    run(service_fn(|event| {
        let app = Arc::clone(&app);
        async move { tick(&app, event).await }
    }))
    .await
}
