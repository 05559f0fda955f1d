//! Who is calling, round two: the lockout behind a reverse proxy, `Host` on admin pages,
//! wrong admin keys, sources that rotate addresses.

use homehook_tests::reverse_proxy::ReverseProxy;

use super::*;

#[tokio::test]
async fn nginx_in_front_passes_calls_through() {
    let s = scene().await;
    let proxy = ReverseProxy::start(&s.w.hh.base).await;
    let r =
        s.w.client
            .post(format!("{}/a/armed", proxy.base))
            .bearer_auth(s.w.keys.action.expose())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200, "{}", proxy.error_log());
    assert_eq!(s.level(), "armed");
    eprintln!("{}", ReverseProxy::version());
}
