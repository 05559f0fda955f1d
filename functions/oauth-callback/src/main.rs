//! The `oauth-callback` Lambda function: `GET /connect/{connection}` and
//! `GET /callback/{provider}` — the same axum router `homehook serve` runs locally.

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    homehook_aws::logs::init();
    let live = homehook_aws::lambda::live_from_env().await?;
    run(homehook_aws::source::with_client_source(
        homehook_core::http::oauth_router(live),
    ))
    .await
}
