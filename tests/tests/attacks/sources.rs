//! Who is calling, round two: the lockout behind a reverse proxy, `Host` on admin pages,
//! wrong admin keys, sources that rotate addresses (security review items 2, 8 and 9).
//!
//! Callers use loopback addresses of their own (127.0.0.x) so homehook can tell them apart;
//! the reverse proxy is a real nginx ([`homehook_tests::reverse_proxy`]) that connects to
//! homehook from 127.0.0.2.

use std::net::IpAddr;

use homehook_tests::reverse_proxy::{PROXY_LINES, ProxyOptions, ReverseProxy};

use super::*;

/// The address nginx connects to homehook from.
const PROXY: [u8; 4] = [127, 0, 0, 2];
/// The attacker's and the owner's addresses (they reach nginx from there).
const ATTACKER: [u8; 4] = [127, 0, 0, 5];
const OWNER: [u8; 4] = [127, 0, 0, 6];

/// The attack suite's scene, with `server_lines` added to `[server]`.
async fn scene_with(server_lines: &str) -> Scene {
    let clock = ManualClock::new(T0);
    let settings = FakeSomfy::settings();
    let fake = FakeSomfy::start(clock.clone(), settings.clone()).await;
    let keys = MoreKeys::new();
    leak_watch::issued("pin", PIN);
    leak_watch::issued("signing_key", SIGNING_KEY);
    let pin_hash = PinHash::of(PIN).unwrap();
    let text = config(
        &fake.api_base(),
        &format!("{}/oauth/oauth/v2/token/jwt", fake.vendor.base),
        &keys,
        &pin_hash,
    )
    .replacen("[server]\n", &format!("[server]\n{server_lines}\n"), 1);
    let secrets = secrets_for("somfy", &settings)
        .with_entry("shortcut", json!({ "signing_key": SIGNING_KEY }));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let w = World::with_vendor(clock, fake, &text, secrets, store).await;
    Scene { w, keys }
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: impl Into<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: &str, key: &str) -> (u16, String) {
    let r = client.post(url).bearer_auth(key).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// nginx in front of the scene's homehook, connecting from [`PROXY`].
async fn nginx(s: &Scene) -> ReverseProxy {
    ReverseProxy::start_with(
        &s.w.hh.base,
        ProxyOptions {
            bind_from: Some(PROXY.into()),
            ..ProxyOptions::default()
        },
    )
    .await
}

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
    println!("reverse proxy: {}", ReverseProxy::version());
}

/// Item 2, as the red team ran it: homehook behind the README's same-host proxy, with no
/// `trusted_proxies`, so every caller has the proxy's address. A stranger's wrong keys lock
/// that address out, and the owner's valid key must still open the alarm.
#[tokio::test]
async fn behind_a_proxy_a_strangers_wrong_keys_do_not_lock_out_the_owners_key() {
    let s = scene().await;
    let proxy = nginx(&s).await;
    let url = format!("{}/a/armed", proxy.base);
    let attacker = client_from(ATTACKER);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(post(&attacker, &url, &format!("hh_guess{i}")).await.0);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the guesser is locked out: {statuses:?}"
    );
    let owner = client_from(OWNER);
    let (status, text) = post(&owner, &url, s.w.keys.action.expose()).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "Alarm armed"),
        "{}",
        proxy.error_log()
    );
    assert_eq!(s.level(), "armed");
    // Another key on another action, through the same proxy.
    let (status, _) = post(
        &owner,
        &format!("{}/a/status", proxy.base),
        s.keys.phone.expose(),
    )
    .await;
    assert_eq!(status, 200);
}

/// Item 2 with `trusted_proxies`: the lockout counts the client nginx names, so the attacker
/// is locked out and a third caller's wrong key through the same proxy is still told 401, not
/// locked with the attacker; an `X-Forwarded-For` the attacker writes itself does not help it.
#[tokio::test]
async fn behind_a_trusted_proxy_the_lockout_counts_each_client() {
    let s = scene_with(r#"trusted_proxies = ["127.0.0.2"]"#).await;
    let proxy = nginx(&s).await;
    let url = format!("{}/a/armed", proxy.base);
    let attacker = client_from(ATTACKER);
    let mut statuses = Vec::new();
    for i in 0..12 {
        // A fresh forged address on each guess: nginx appends the real one, which is used.
        let r = attacker
            .post(&url)
            .bearer_auth(format!("hh_guess{i}"))
            .header(
                "x-forwarded-for",
                format!("198.51.100.{i}, {}", IpAddr::from(OWNER)),
            )
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(
        statuses[11], 429,
        "the attacker is locked out: {statuses:?}"
    );
    // The owner's address was forged in every guess: it is not framed.
    let owner = client_from(OWNER);
    let (status, text) = post(&owner, &url, "hh_typo").await;
    assert_eq!((status, error_of(&text).as_str()), (401, "unauthorized"));
    let (status, _) = post(&owner, &url, s.w.keys.action.expose()).await;
    assert_eq!(status, 200);
    assert_eq!(s.level(), "armed");
}

/// Item 2: `X-Forwarded-For` from a peer that is not a trusted proxy is the caller's own text,
/// and ignored: a direct caller cannot dodge its lockout (nor lock out someone else) with it.
#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let s = scene_with(r#"trusted_proxies = ["127.0.0.2"]"#).await;
    let url = s.url("armed");
    let direct = client_from(ATTACKER);
    let mut last = 0;
    for i in 0..12 {
        let r = direct
            .post(&url)
            .bearer_auth(format!("hh_guess{i}"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=203.0.113.{}", 100 + i))
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
    }
    assert_eq!(last, 429, "locked out whatever the headers said");
    // The addresses it named are not locked: a caller from the proxy naming one is told 401.
    let via_proxy = client_from(PROXY);
    let r = via_proxy
        .post(&url)
        .bearer_auth("hh_wrong")
        .header("x-forwarded-for", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Item 9, IPv6: the lockout counts an IPv6 /64 as one source (its addresses rotate), and the
/// next /64 is someone else. The addresses come as a trusted proxy's `X-Forwarded-For` (the
/// only way to send from several /64s over loopback).
#[tokio::test]
async fn ipv6_callers_are_counted_per_64() {
    let s = scene_with(r#"trusted_proxies = ["127.0.0.1/32"]"#).await;
    let url = s.url("armed");
    let send = |xff: String, key: String| {
        let c = s.w.client.clone();
        let url = url.clone();
        async move {
            let r = c
                .post(url)
                .bearer_auth(key)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    let mut statuses = Vec::new();
    for i in 1..=12 {
        // Privacy addresses: a new one each time, all in 2001:db8:1:2::/64.
        statuses.push(send(format!("2001:db8:1:2:{i:x}::{i:x}"), format!("hh_guess{i}")).await);
    }
    assert_eq!(statuses[11], 429, "one /64 is one source: {statuses:?}");
    assert_eq!(
        send("2001:db8:1:3::1".into(), "hh_wrong".into()).await,
        401,
        "the next /64"
    );
}

/// Item 9, IPv4: 5 wrong keys from each of 20 addresses of one /24 (the red team sent 10 from
/// each of 100): no address reaches 10, and the network is locked out all the same. A valid
/// key from that network still opens its action.
#[tokio::test]
async fn a_scan_rotating_addresses_of_one_network_is_locked_out() {
    let s = scene().await;
    let url = s.url("armed");
    let mut first_lock = None;
    'scan: for host in 1..=20u8 {
        let client = client_from([127, 0, 1, host]);
        for i in 0..5 {
            let (status, text) = post(&client, &url, &format!("hh_scan{host}_{i}")).await;
            if status == 429 {
                assert_eq!(error_of(&text), "source_locked");
                first_lock = Some(host);
                break 'scan;
            }
            assert_eq!(status, 401);
        }
    }
    assert!(
        first_lock.is_some(),
        "100 wrong keys from one /24 and no lockout"
    );
    let neighbour = client_from([127, 0, 1, 200]);
    assert_eq!(
        post(&neighbour, &url, "hh_wrong").await.0,
        429,
        "the whole /24"
    );
    let (status, _) = post(&neighbour, &url, s.w.keys.action.expose()).await;
    assert_eq!(status, 200, "a valid key is never refused by a lockout");
    let elsewhere = client_from([127, 0, 2, 1]);
    assert_eq!(
        post(&elsewhere, &url, "hh_wrong").await.0,
        401,
        "not the next /24"
    );
}

/// Item 8: wrong admin keys count like wrong action keys: after 10, `/status` answers 429
/// (and the source's wrong action keys too); the admin key itself still opens it.
#[tokio::test]
async fn wrong_admin_keys_are_counted_and_locked_out() {
    let s = scene().await;
    let guesser = client_from([127, 0, 0, 30]);
    let status_url = format!("{}/status", s.w.hh.base);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = guesser
            .get(&status_url)
            .bearer_auth(format!("hh_admin_guess{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((850..=900).contains(&retry), "{retry}");
            assert_eq!(error_of(&r.text().await.unwrap()), "source_locked");
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
    for path in ["/", "/connect/alarm", "/discover/alarm"] {
        let r = guesser
            .get(format!("{}{path}?key=hh_admin_guess", s.w.hh.base))
            .send()
            .await
            .unwrap();
        // `/` still shows its page without the owner's part; the admin routes refuse.
        let expected = if path == "/" { 200 } else { 429 };
        assert_eq!(r.status(), expected, "{path}");
    }
    assert_eq!(post(&guesser, &s.url("armed"), "hh_wrong").await.0, 429);
    let r = guesser
        .get(&status_url)
        .bearer_auth(s.w.keys.admin.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the admin key still opens /status");
}

/// Item 2, DNS rebinding: a page in a browser on the homehook machine, loaded from
/// `rebind.example` whose name then resolves to 127.0.0.1, sends `Host: rebind.example:<port>`.
/// The admin pages refuse it with 421 `wrong_host`, key or not; under the public URL's name,
/// an IP address or `localhost` they answer.
#[tokio::test]
async fn admin_pages_refuse_another_sites_host() {
    let s = scene().await;
    let port = s.w.hh.base.rsplit(':').next().unwrap().to_string();
    let admin = s.w.keys.admin.expose();
    for path in ["/", "/status", "/connect/alarm", "/discover/alarm"] {
        for host in [format!("rebind.example:{port}"), "rebind.example".into()] {
            let r =
                s.w.client
                    .get(format!("{}{path}", s.w.hh.base))
                    .bearer_auth(admin)
                    .header("host", &host)
                    .send()
                    .await
                    .unwrap();
            assert_eq!(r.status(), 421, "{path} with Host {host}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "wrong_host", "{body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(&s.w.hh.base), "{message}");
        }
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("LOCALHOST.:{port}"),
        ] {
            let r =
                s.w.client
                    .get(format!("{}{path}", s.w.hh.base))
                    .bearer_auth(admin)
                    .header("host", &host)
                    .send()
                    .await
                    .unwrap();
            assert_ne!(r.status(), 421, "{path} with Host {host}");
        }
    }
    // Action URLs are opened by their key, whatever the name: a proxy may use several.
    let r =
        s.w.client
            .post(s.url("armed"))
            .bearer_auth(s.w.keys.action.expose())
            .header("host", "rebind.example")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
}

/// Item 2, through nginx with a public name: the README's proxy lines pass the original `Host`
/// on, so the admin pages answer under the public URL's name and refuse another.
#[tokio::test]
async fn through_nginx_admin_pages_answer_under_the_public_name_only() {
    let s = scene_with(r#"trusted_proxies = ["127.0.0.2"]"#).await;
    let proxy = nginx(&s).await;
    // The scene's public URL is homehook's own address (a name nginx passes on as
    // `Host: 127.0.0.1`); a rebinding page's name is passed on just the same, and refused.
    let public = s.w.hh.app.services.config.base_url();
    assert!(public.starts_with("http://127.0.0.1:"), "{public}");
    let owner = client_from(OWNER);
    let admin = s.w.keys.admin.expose();
    let get = |host: &'static str| {
        owner
            .get(format!("{}/status", proxy.base))
            .bearer_auth(admin)
            .header("host", host)
            .send()
    };
    assert_eq!(get("127.0.0.1").await.unwrap().status(), 200);
    let r = get("rebind.example").await.unwrap();
    assert_eq!(r.status(), 421, "{}", proxy.error_log());
}

/// The README shows the proxy lines the tests run.
#[test]
fn the_readme_shows_the_tested_nginx_lines() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for line in PROXY_LINES.lines() {
        assert!(readme.contains(line), "README lacks `{line}`");
    }
    assert!(readme.contains("trusted_proxies"));
}
