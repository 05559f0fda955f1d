//! The pages people see — the root page of `homehook serve` and the connect results — rendered
//! by headless Chromium in a phone-sized window: the text a reader sees says what happened and
//! what to do next, nothing secret shows, no script is sent, and every page carries its
//! Content-Security-Policy (which Chromium enforces: a violation would be in its console). A
//! screenshot of each page, light and dark, is kept in `target/reports/pages/`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::secrets::LocalSecrets;
use homehook_core::store::MemoryStore;
use homehook_tests::browser::{Browser, PHONE, Rendered, Scheme};
use homehook_tests::fake_vendor::{FakeSettings, FakeVendor};
use homehook_tests::harness::{Homehook, T0, World, reports_dir, secrets_for};
use serde_json::json;

/// Three connections (one label with markup in it, which must show as text) and three actions.
const CONFIG: &str = r#"
[server]
public_url = "{public_url}"
admin_key_hash = "{admin}"

[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[connections.home]
provider = "netatmo"
label = "Home"
secret = "netatmo"

[connections.cottage]
provider = "netatmo"
label = "Cottage <Bio & Co>"
secret = "netatmo"

[connections.garage]
provider = "netatmo"
label = "Garage"
secret = "netatmo"

[actions.heating]
connection = "home"
path = "/api/setthermmode"
query = { home_id = "h1", mode = "{mode}" }
params.mode = { type = "enum", values = ["schedule", "away", "hg"], default = "away" }
key_hash = "{key}"

[actions.temperature]
connection = "home"
method = "GET"
path = "/api/getstationsdata"
methods = ["GET", "POST"]
key_hash = "{key}"

[actions.cottage_heating]
connection = "cottage"
path = "/api/setthermmode"
query = { home_id = "h2", mode = "away" }
key_hash = "{key}"
"#;

async fn world() -> World {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings::default();
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let config = CONFIG.replace("{vendor}", &vendor.base);
    World::with_vendor(
        clock,
        vendor,
        &config,
        secrets_for("netatmo", &settings),
        Arc::new(MemoryStore::new()),
    )
    .await
}

fn out_dir() -> PathBuf {
    reports_dir().join("pages")
}

/// Renders `url` light and dark (`url` is opened once per scheme: a connect link is good once),
/// checks what both show, and returns the light one.
async fn render_both(browser: &Browser, url: impl Fn() -> String, name: &str) -> Rendered {
    let light = browser
        .render(&url(), &out_dir(), name, Scheme::Light)
        .await;
    let dark = browser
        .render(&url(), &out_dir(), &format!("{name}-dark"), Scheme::Dark)
        .await;
    assert_eq!(light.text, dark.text, "{name}: the same words in dark mode");
    check_rendered(&dark, name);
    check_rendered(&light, name);
    light
}

/// What every rendered page must be: text only from the body, nothing blocked by its policy
/// (so nothing tried to load or run, and the style sheet matched its hash), and a phone-sized
/// screenshot with something on it.
fn check_rendered(page: &Rendered, name: &str) {
    assert!(
        !page.text.contains("· homehook") && !page.text.contains("--fg"),
        "{name}: the text read is what is shown, not the title or the style: {}",
        page.text
    );
    assert!(
        page.console
            .iter()
            .all(|l| !l.contains("Content Security Policy")),
        "{name}: the page broke its own policy: {:?}",
        page.console
    );
    let png = std::fs::read(&page.screenshot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: a PNG");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), PHONE, "{name}: phone-sized");
    assert!(
        png.len() > 10_000,
        "{name}: the screenshot shows a page, not a blank window ({} bytes)",
        png.len()
    );
}

/// Whether `page` shows each phrase, compared without whitespace: text read from a PDF has a
/// space where a line wrapped (a long URL on a phone) and around inline code.
fn assert_shows(page: &Rendered, name: &str, phrases: &[&str]) {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let shown = squash(&page.text);
    for phrase in phrases {
        assert!(
            shown.contains(&squash(phrase)),
            "{name} should show {phrase:?}; it shows: {}",
            page.text
        );
    }
}

/// Fetches a page as a browser would and checks what its HTML and headers must be: the policy
/// that forbids scripts, frames, forms and every outside resource, no `Referer` onwards, never
/// cached, and no script or outside resource in the HTML itself.
async fn fetch_page(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client
        .get(url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("page");
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{url}: no {name} header"))
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{url}: CSP {csp}");
    }
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe"),
        "{url}: CSP {csp}"
    );
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
    let html = r.text().await.expect("html");
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{url}: a script in {html}");
    assert!(!lower.contains("javascript:"), "{url}: {html}");
    for attribute in [" src=\"", " href=\"", " action=\""] {
        for (_, rest) in lower
            .match_indices(attribute)
            .map(|(i, _)| lower.split_at(i))
        {
            assert!(
                rest[attribute.len()..].starts_with("data:"),
                "{url}: an outside resource: {rest:.80}"
            );
        }
    }
    (status, html)
}

#[tokio::test]
async fn the_root_page_with_no_config_lists_the_setup_steps() {
    let browser = Browser::find();
    let hh = Homehook::start(
        "[server]\npublic_url = \"{public_url}\"\n",
        Arc::new(MemoryStore::new()),
        LocalSecrets::from_entries(BTreeMap::new()),
        ManualClock::new(T0),
    )
    .await
    .expect("an empty config is valid");
    let (status, _) = fetch_page(&reqwest::Client::new(), &format!("{}/", hh.base)).await;
    assert_eq!(status, 200);

    let page = render_both(&browser, || format!("{}/", hh.base), "root-setup").await;
    assert_shows(
        &page,
        "root page without config",
        &[
            "homehook is running",
            "No connections are configured yet.",
            "Next steps",
            "homehook init --vendors netatmo,somfy_protect",
            "homehook key new",
            "homehook.example.toml",
            &format!("{}/callback/<provider>", hh.base),
            &format!("{}/connect/<connection>?key=<admin key>", hh.base),
        ],
    );
}

#[tokio::test]
async fn the_root_page_shows_each_connections_health_and_nothing_secret() {
    let browser = Browser::find();
    let w = world().await;
    // Cottage: connected, then its refresh token is withdrawn at the vendor and its token runs
    // out, so it needs its owner. Home: connected after that, fresh. Garage: never connected.
    assert_eq!(w.connect("cottage").await.status(), 200);
    w.vendor.revoke_refresh_tokens();
    w.clock.advance(10_800 + 60);
    assert_eq!(w.act("cottage_heating", json!({})).await.status(), 409);
    assert_eq!(w.connect("home").await.status(), 200);
    let home = w.connection_status("home").await;
    assert_eq!(home["health"], "healthy", "{home}");

    // Without the admin key: counts and next steps, not which accounts exist or need their
    // owner.
    let public = format!("{}/", w.hh.base);
    let (status, html) = fetch_page(&w.client, &public).await;
    assert_eq!(status, 200);
    for private in ["Cottage", "cottage", "garage", "Needs you", "Connected."] {
        assert!(!html.contains(private), "shown without the key: {private}");
    }
    assert!(html.contains("3 connections and 3 actions"), "{html}");
    assert!(html.contains("/?key=&lt;admin key&gt;"), "{html}");
    let wrong = format!("{}/?key=hh_wrong", w.hh.base);
    assert!(!fetch_page(&w.client, &wrong).await.1.contains("Cottage"));

    let root = format!("{}/?key={}", w.hh.base, w.keys.admin.expose());
    let (status, html) = fetch_page(&w.client, &root).await;
    assert_eq!(status, 200);
    let page = render_both(&browser, || root.clone(), "root-connections").await;
    assert_shows(
        &page,
        "root page",
        &[
            "homehook is running",
            "3 connections and 3 actions",
            "Home Netatmo · home Connected.",
            "Access token good for 3 hours",
            // The label's markup is text: escaped in the HTML, shown as written.
            "Cottage <Bio & Co> Netatmo · cottage Needs you to connect again.",
            &format!("{}/connect/cottage?key=<admin key>", w.hh.base),
            "Garage Netatmo · garage Not connected yet.",
            &format!("{}/connect/garage?key=<admin key>", w.hh.base),
            "homehook actions",
            "homehook status",
        ],
    );
    assert!(html.contains("Cottage &lt;Bio &amp; Co&gt;"), "{html}");

    // Nothing secret, in what is shown or in the HTML: keys, their hashes, tokens, the vendor's
    // words about the refusal.
    let stored =
        w.hh.store
            .get_token("home")
            .await
            .expect("read")
            .expect("home is connected");
    let mut secrets = vec![
        w.keys.admin.expose().to_string(),
        w.keys.action.expose().to_string(),
        w.keys.admin.hash().to_string(),
        w.keys.action.hash().to_string(),
        stored.access_token.expose().to_string(),
        FakeSettings::default().client_secret,
    ];
    secrets.extend(stored.refresh_token.map(|t| t.expose().to_string()));
    let reason = w.connection_status("cottage").await["reason"]
        .as_str()
        .expect("a reason for reauth")
        .to_string();
    secrets.push(reason);
    for secret in &secrets {
        assert!(!page.text.contains(secret.as_str()), "shown: {secret}");
        assert!(!html.contains(secret.as_str()), "in the HTML: {secret}");
    }
}

#[tokio::test]
async fn connect_result_pages_say_what_happened_and_what_to_do_next() {
    let browser = Browser::find();
    let w = world().await;
    let connect_link = || format!("{}/connect/home?key={}", w.hh.base, w.keys.admin.expose());

    // Connected, through the whole flow in the browser: homehook → the vendor's consent → the
    // callback.
    let page = render_both(&browser, connect_link, "connected").await;
    assert_shows(
        &page,
        "connected page",
        &[
            "✓ Connected Home",
            "homehook can now reach Netatmo for Home.",
            "Its access token is good for 3 hours; homehook renews it by itself",
            "You can close this page.",
            "Your action URLs: run homehook actions (2 actions use Home).",
            "homehook status",
        ],
    );
    assert!(w.hh.store.get_token("home").await.expect("r").is_some());
    // The same page for a script-free fetch: headers, and nothing of the callback's query in it.
    let callback = w.consent(&w.start_connect("home").await).await;
    let (status, html) = fetch_page(&w.client, &callback).await;
    assert_eq!(status, 200);
    let query: BTreeMap<_, _> = url::Url::parse(&callback)
        .expect("callback URL")
        .query_pairs()
        .into_owned()
        .collect();
    for (name, value) in &query {
        assert!(!html.contains(value.as_str()), "the {name} is in the page");
    }

    // Declined at the vendor: the reason in plain words, and how to start again.
    w.vendor.update(|s| s.deny_consent = true);
    let page = render_both(&browser, connect_link, "declined").await;
    assert_shows(
        &page,
        "declined page",
        &[
            "✗ Not connected",
            "Access was declined at Netatmo. Nothing changed; to connect Home, start again and choose Allow.",
            "How to try again",
            &format!("{}/connect/home?key=<admin key>", w.hh.base),
            "Sign in at Netatmo and choose Allow, within 10 minutes",
            "Error code access_denied, HTTP 403.",
        ],
    );
    let callback = w.consent(&w.start_connect("home").await).await;
    let (status, _) = fetch_page(&w.client, &callback).await;
    assert_eq!(status, 403);
    w.vendor.update(|s| s.deny_consent = false);

    // Back from the vendor too late: the link expired.
    let callback = w.consent(&w.start_connect("home").await).await;
    w.clock.advance(601);
    let page = browser
        .render(&callback, &out_dir(), "expired", Scheme::Light)
        .await;
    check_rendered(&page, "expired");
    assert_shows(
        &page,
        "expired page",
        &[
            "Not connected",
            "This connect link expired (links last 10 minutes).",
            // The state no longer says which connection: the link has a placeholder.
            &format!(
                "{}/connect/<connection>?key=<admin key> (homehook status lists your connections)",
                w.hh.base
            ),
            "Error code expired_state, HTTP 400.",
        ],
    );
}
