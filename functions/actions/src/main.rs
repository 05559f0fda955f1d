//! The `actions` Lambda function: `/a/{action}`, `GET /status`, `GET /discover/{connection}`,
//! `GET /healthz` — the same axum router `homehook serve` runs locally.

use lambda_runtime::Error;

// One thread: Lambda sends a container one event at a time, and a small function has a fraction
// of a vCPU, so worker threads would only cost start-up time and the multi-thread scheduler's
// code. (A PIN check still hashes on the blocking pool.)
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    homehook_aws::logs::init();
    let live = homehook_aws::lambda::live_from_env().await?;
    homehook_aws::http_api::serve(homehook_core::http::actions_router(live)).await
}
