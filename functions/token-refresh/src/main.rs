//! The `token-refresh` Lambda function, called by the EventBridge schedule: one tick (fire the
//! scheduled actions that are due, each once; renew every token that is due), answered and
//! logged as a summary.

use std::sync::Arc;

use homehook_core::app::TickSummary;
use homehook_core::live::Live;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

async fn tick(live: &Live, _event: LambdaEvent<serde_json::Value>) -> Result<TickSummary, Error> {
    // The newest published config: a schedule pushed a minute ago fires on this tick.
    let summary = live.app().await.tick().await?;
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

// One thread: Lambda sends a container one event at a time, and a small function has a fraction
// of a vCPU, so worker threads would only cost start-up time and the multi-thread scheduler's
// code. (A PIN check still hashes on the blocking pool.)
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    homehook_aws::logs::init();
    let live = homehook_aws::lambda::live_from_env().await?;
    run(service_fn(|event| {
        let live = Arc::clone(&live);
        async move { tick(&live, event).await }
    }))
    .await
}
