//! The one HTTPS client every SDK client shares: rustls on ring, the same TLS stack reqwest uses
//! for vendor calls, so a bootstrap carries one (the SDK's default would add aws-lc, ~1 MB).

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The SDK's HTTPS client (connection pooling per client; native root certificates).
pub fn client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
