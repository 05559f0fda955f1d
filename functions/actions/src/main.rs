//! The `actions` Lambda function: `/a/{action}`, `GET /status`, `GET /discover/{connection}`,
//! `GET /healthz` — the same axum router `homehook serve` runs locally.

use lambda_http::{Error, run, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when Lambda's advanced logging controls ask for them (AWS_LAMBDA_LOG_FORMAT).
    tracing::init_default_subscriber();
    let live = homehook_aws::lambda::live_from_env().await?;
    run(homehook_aws::source::with_client_source(
        homehook_core::http::actions_router(live),
    ))
    .await
}
