//! The `actions` Lambda function: `/a/{action}`, `GET /status`, `GET /discover/{connection}`,
//! `GET /healthz` — the same axum router `homehook serve` runs locally.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    homehook_aws::logs::init();
    let live = homehook_aws::lambda::live_from_env().await?;
    homehook_aws::http_api::serve(homehook_core::http::actions_router(live)).await
}
