//! The caller's address behind API Gateway: the HTTP API puts it in the request context
//! (`requestContext.http.sourceIp`), which the caller cannot forge, unlike `X-Forwarded-For`.
//! The gate's wrong-key lockout (`homehook_core::guard`) counts per address (IPv6 per /64)
//! and per network.

use std::net::IpAddr;

use axum::Router;
use axum::extract::Request;
use homehook_core::guard::ClientSource;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// `router`, with each request tagged with its [`ClientSource`].
pub fn with_client_source(router: Router) -> Router {
    router.layer(axum::middleware::map_request(tag_source))
}

async fn tag_source(mut request: Request) -> Request {
    if let Some(ip) = source_ip(&request) {
        request.extensions_mut().insert(ClientSource(ip));
    }
    request
}

fn source_ip<B>(request: &http::Request<B>) -> Option<IpAddr> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)] // other event sources, when their features are on
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Extension;
    use axum::body::Body;
    use axum::routing::get;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use tower::ServiceExt;

    async fn echo(source: Option<Extension<ClientSource>>) -> String {
        source.map_or("none".into(), |Extension(s)| s.0.to_string())
    }

    #[tokio::test]
    async fn the_api_gateway_source_ip_reaches_the_handlers() {
        let router = with_client_source(Router::new().route("/", get(echo)));
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some("203.0.113.7".into());
        let request = http::Request::builder()
            .uri("/")
            .extension(RequestContext::ApiGatewayV2(ctx))
            .body(Body::empty())
            .expect("request");
        let response = router.clone().oneshot(request).await.expect("answer");
        let body = axum::body::to_bytes(response.into_body(), 100)
            .await
            .expect("body");
        assert_eq!(&body[..], b"203.0.113.7");
        // Without a request context (not from API Gateway) nothing is made up.
        let plain = http::Request::builder()
            .uri("/")
            .body(Body::empty())
            .expect("request");
        let response = router.oneshot(plain).await.expect("answer");
        let body = axum::body::to_bytes(response.into_body(), 100)
            .await
            .expect("body");
        assert_eq!(&body[..], b"none");
    }
}
