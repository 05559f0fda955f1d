//! The `oauth-callback` Lambda function: `GET /connect/{connection}` and
//! `GET /callback/{provider}` — the same axum router `homehook serve` runs locally.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    homehook_aws::logs::init();
    let live = homehook_aws::lambda::live_from_env().await?;
    homehook_aws::http_api::serve(homehook_core::http::oauth_router(live)).await
}
