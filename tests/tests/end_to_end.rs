//! The path a user walks: connect an account, call a secret URL, time passes, the token is
//! refreshed, the URL keeps working, with the vendor's token endpoint called only when needed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use homehook_core::clock::ManualClock;
use homehook_core::store::{MemoryStore, Store};
use homehook_local::SqliteStore;
use homehook_tests::fake_vendor::{ClientAuthStyle, ExpiredStyle, FakeSettings, FakeVendor};
use homehook_tests::harness::{Homehook, Keys, T0, World, secrets_for};
use serde_json::{Value, json};

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_in(dir.path()).expect("sqlite store"))
}

#[tokio::test]
async fn connect_act_expire_refresh_act_again_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = World::start(sqlite_store(&dir).await, FakeSettings::default()).await;

    // Connect: homehook redirects to the vendor with state, PKCE S256 and its callback URL.
    let authorize = w.start_connect("home").await;
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", w.vendor.base)),
        "{authorize}"
    );
    let url = url::Url::parse(&authorize).expect("url");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/callback/netatmo", w.hh.base));
    assert!(q["state"].len() >= 22, "state has at least 128 bits");
    assert!(
        q["scope"].contains("read_station"),
        "default scopes requested"
    );

    let callback = w.consent(&authorize).await;
    assert!(callback.starts_with(&format!("{}/callback/netatmo?code=", w.hh.base)));
    let page = w
        .client
        .get(&callback)
        .header("accept", "text/html")
        .send()
        .await
        .expect("callback");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("Connected Home"), "{html}");
    assert_eq!(w.vendor.token_calls(), 1, "one code exchange");

    let stored =
        w.hh.store
            .get_token("home")
            .await
            .expect("read")
            .expect("stored");
    assert_eq!(stored.expires_at, Some(T0.plus_secs(10_800)));
    assert!(stored.refresh_token.is_some());

    // Act: the vendor receives the request with the parameter in place; the caller gets text.
    let r = w.act("heating", json!({"mode": "away"})).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.expect("text"), "Heating set to away");
    let call = w.vendor.api_calls().pop().expect("vendor called");
    assert_eq!(call.path, "/api/setthermmode");
    assert!(call.query.contains(&("mode".into(), "away".into())));
    assert!(call.query.contains(&("home_id".into(), "h1".into())));
    assert_eq!(
        w.vendor.token_calls(),
        1,
        "a fresh token needs no token call"
    );

    // Three hours pass: the access token has expired; the next action refreshes first.
    w.clock.advance(10_800 + 60);
    let r = w.act("heating", json!({})).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(w.vendor.token_calls(), 2, "exactly one refresh");
    let after =
        w.hh.store
            .get_token("home")
            .await
            .expect("read")
            .expect("stored");
    assert!(after.version > stored.version);
    assert_ne!(
        after.refresh_token.as_ref().map(|t| t.expose().to_string()),
        stored
            .refresh_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        "the rotated refresh token was stored"
    );
    assert_eq!(
        w.vendor.live_refresh_tokens(),
        1,
        "the old refresh token died at the vendor"
    );

    // Again, a few more times: no more token calls while the token is fresh.
    for _ in 0..3 {
        assert_eq!(
            w.act("heating", json!({"mode": "schedule"})).await.status(),
            200
        );
    }
    assert_eq!(w.vendor.token_calls(), 2);

    // The refresh survives a restart: a new homehook on the same SQLite file uses the stored token.
    let restarted = Homehook::start(
        &homehook_tests::harness::netatmo_config(&w.vendor.base, &w.keys),
        sqlite_store(&dir).await,
        secrets_for("netatmo", &FakeSettings::default()),
        w.clock.clone(),
    )
    .await
    .expect("restart");
    let r = w
        .client
        .post(format!("{}/a/heating", restarted.base))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("act");
    assert_eq!(r.status(), 200);
    assert_eq!(w.vendor.token_calls(), 2);
}

#[tokio::test]
async fn an_expired_token_answer_refreshes_once_and_retries_once() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    // The vendor kills the access token early; homehook's record still says it is valid.
    w.vendor.expire_access_tokens();
    let r = w.act("heating", json!({"mode": "hg"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.vendor.token_calls(), 2, "one code exchange + one refresh");
    let modes: Vec<_> = w
        .vendor
        .api_calls()
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(
        modes.len(),
        1,
        "the rejected call is not recorded, the retry is"
    );
}

#[tokio::test]
async fn the_tick_refreshes_ahead_of_expiry_so_actions_never_wait() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    assert_eq!(w.connect("cottage").await.status(), 200);

    let summary = w.hh.app.tick().await.expect("tick");
    assert_eq!(
        (summary.tokens.due, summary.tokens.refreshed),
        (0, 0),
        "nothing due yet: the index gives no record"
    );

    // Four minutes before expiry: inside the 5-minute margin.
    w.clock.advance(10_800 - 240);
    let summary = w.hh.app.tick().await.expect("tick");
    assert_eq!((summary.tokens.due, summary.tokens.refreshed), (2, 2));
    assert_eq!(w.vendor.token_calls(), 4);
    // Filed again under the new token's renewal time (expiry less the 5-minute margin).
    let home =
        w.hh.store
            .get_token("home")
            .await
            .expect("read")
            .expect("stored");
    let expires = home.expires_at.expect("expiry");
    assert_eq!(home.due_at, Some(expires.plus_secs(-300)));
    let summary = w.hh.app.tick().await.expect("tick");
    assert_eq!(
        (summary.tokens.due, summary.tokens.refreshed),
        (0, 0),
        "nothing due right after"
    );

    w.clock.advance(300);
    assert_eq!(w.act("heating", json!({})).await.status(), 200);
    assert_eq!(w.vendor.token_calls(), 4, "the action found a fresh token");
}

#[tokio::test]
async fn concurrent_actions_on_an_expired_token_share_one_refresh() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    w.clock.advance(20_000);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = w
            .client
            .post(format!("{}/a/heating", w.hh.base))
            .bearer_auth(w.keys.action.expose());
        calls.spawn(async move { request.send().await.expect("act").status().as_u16() });
    }
    let statuses = calls.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(w.vendor.token_calls(), 2, "12 actions, one refresh");
}

/// Ten-second access tokens: steady traffic renews once per lifetime, not once per action,
/// and a burst of 50 actions on an expired token shares one token call.
#[tokio::test]
async fn short_lived_tokens_are_renewed_once_per_lifetime_not_per_action() {
    let settings = FakeSettings {
        access_ttl_secs: 10,
        ..FakeSettings::default()
    };
    let w = World::start(Arc::new(MemoryStore::new()), settings).await;
    assert_eq!(w.connect("home").await.status(), 200);
    assert_eq!(w.vendor.token_calls(), 1, "the code exchange");

    // One action a second for 30 s: three lifetimes.
    for _ in 0..30 {
        assert_eq!(
            w.act("heating", json!({"mode": "away"})).await.status(),
            200
        );
        w.clock.advance(1);
    }
    assert_eq!(
        w.vendor.token_calls() - 1,
        3,
        "30 actions over three 10-s lifetimes: one renewal each (at 9 s of 10)"
    );

    // Idle past expiry, then a burst.
    w.clock.advance(20);
    let before = w.vendor.token_calls();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = w
            .client
            .post(format!("{}/a/heating", w.hh.base))
            .bearer_auth(w.keys.action.expose());
        calls.spawn(async move { request.send().await.expect("act").status().as_u16() });
    }
    let statuses = calls.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        w.vendor.token_calls() - before,
        1,
        "50 actions, one renewal"
    );
}

#[tokio::test]
async fn two_connections_to_one_provider_keep_separate_tokens() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    assert_eq!(w.connect("cottage").await.status(), 200);
    let home =
        w.hh.store
            .get_token("home")
            .await
            .expect("r")
            .expect("home");
    let cottage =
        w.hh.store
            .get_token("cottage")
            .await
            .expect("r")
            .expect("cottage");
    assert_ne!(home.access_token.expose(), cottage.access_token.expose());
    let r = w.act("cottage_heating", json!({"mode": "away"})).await;
    assert_eq!(r.status(), 200);
    let call = w.vendor.api_calls().pop().expect("called");
    assert!(call.query.contains(&("home_id".into(), "h2".into())));
}

#[tokio::test]
async fn json_answers_read_actions_and_typed_bodies() {
    let w = World::start(Arc::new(MemoryStore::new()), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);

    // A read action answers a short text from the vendor's JSON, by GET (it opted in).
    let r = w
        .client
        .get(format!(
            "{}/a/temperature?key={}",
            w.hh.base,
            w.keys.action.expose()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "Living room 21.4 °C");

    // JSON by ?format=json, with the vendor's status and data.
    let r = w
        .client
        .post(format!("{}/a/temperature?format=json", w.hh.base))
        .bearer_auth(w.keys.action.expose())
        .send()
        .await
        .expect("post");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["ok"], true);
    assert_eq!(body["vendor_status"], 200);
    assert_eq!(body["answer"], "Living room 21.4 °C");
    assert_eq!(
        body["data"]["body"]["devices"][0]["dashboard_data"]["CO2"],
        640
    );

    // A JSON body template keeps the number a number; a form body works too.
    let r = w
        .client
        .post(format!("{}/a/room", w.hh.base))
        .bearer_auth(w.keys.action.expose())
        .header("accept", "application/json")
        .form(&[("room", "kitchen"), ("temp", "19.5")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let sent: Value =
        serde_json::from_str(&w.vendor.api_calls().pop().expect("call").body).expect("json body");
    assert_eq!(
        sent,
        json!({"home": {"id": "h1", "room": "kitchen", "temp": 19.5}})
    );
}

#[tokio::test]
async fn a_generic_provider_with_password_grant_basic_auth_and_query_token() {
    let clock = ManualClock::new(T0);
    let settings = FakeSettings {
        client_auth: ClientAuthStyle::Basic,
        expired_style: ExpiredStyle::InvalidToken401,
        access_ttl_secs: 3_600,
        rotate_refresh_tokens: false,
        query_token: true,
        client_secret: "s3cret with spaces&=".into(),
        ..FakeSettings::default()
    };
    let vendor = FakeVendor::start(clock.clone(), settings.clone()).await;
    let keys = Keys::new();
    let config = format!(
        r#"
[server]
public_url = "{{public_url}}"
admin_key_hash = "{admin}"

[providers.acme]
display_name = "Acme"
token_url = "{v}/oauth2/token"
api_base = "{v}"
grants = ["password"]
client_auth = "basic"
token_placement = {{ query = "access_token" }}
expired_token = [{{ status = 401, pointer = "/error", equals = "invalid_token" }}]

[connections.alarm]
provider = "acme"
secret = "acme"

[actions.arm]
connection = "alarm"
method = "PUT"
path = "/site/{{site}}/security"
body = {{ status = "armed" }}
params.site = {{ type = "string", default = "s 1/2" }}
answer = "Alarm armed"
key_hash = "{action}"
"#,
        v = vendor.base,
        admin = keys.admin.hash(),
        action = keys.action.hash()
    );
    let hh = Homehook::start(
        &config,
        Arc::new(MemoryStore::new()),
        secrets_for("acme", &settings),
        clock.clone(),
    )
    .await
    .expect("config");
    let client = reqwest::Client::new();
    let act = || {
        client
            .post(format!("{}/a/arm", hh.base))
            .bearer_auth(keys.action.expose())
            .send()
    };

    // First use connects with the password grant.
    let r = act().await.expect("act");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(vendor.token_calls(), 1);
    let call = vendor.api_calls().pop().expect("called");
    assert_eq!(call.method, "PUT");
    assert_eq!(
        call.path, "/site/s%201%2F2/security",
        "the parameter stays one path segment"
    );
    assert_eq!(call.body, r#"{"status":"armed"}"#);

    // An hour later: refresh (no rotation: the same refresh token keeps working).
    clock.advance(3_700);
    assert_eq!(act().await.expect("act").status(), 200);
    assert_eq!(vendor.token_calls(), 2);

    // The vendor revokes the refresh token: the password grant takes over.
    vendor.revoke_refresh_tokens();
    clock.advance(3_700);
    assert_eq!(act().await.expect("act").status(), 200);
    assert_eq!(vendor.token_calls(), 4, "rejected refresh + password grant");

    // Redirects from the connect page for a password connection are not needed: it connects.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/connect/alarm", hh.base))
        .bearer_auth(keys.admin.expose())
        .send()
        .await
        .expect("connect");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let settings = FakeSettings {
        omit_refresh_token_on_refresh: true,
        ..FakeSettings::default()
    };
    let w = World::start(Arc::new(MemoryStore::new()), settings).await;
    assert_eq!(w.connect("home").await.status(), 200);
    let first = w.hh.store.get_token("home").await.expect("r").expect("t");
    for round in 1..=3 {
        w.clock.advance(11_000);
        assert_eq!(
            w.act("heating", json!({})).await.status(),
            200,
            "round {round}"
        );
        let now = w.hh.store.get_token("home").await.expect("r").expect("t");
        assert_ne!(now.access_token.expose(), first.access_token.expose());
        assert_eq!(
            now.refresh_token.as_ref().map(|t| t.expose().to_string()),
            first.refresh_token.as_ref().map(|t| t.expose().to_string()),
            "the refresh token was kept"
        );
    }
    assert_eq!(w.vendor.token_calls(), 4);
}

/// A store where another writer touches the token record (as a Homey session save or a health
/// verdict would) just before the next token write: that write then conflicts.
struct InterferingStore {
    inner: MemoryStore,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl homehook_core::store::TokenStore for InterferingStore {
    async fn get_token(
        &self,
        connection: &str,
    ) -> Result<Option<homehook_core::token::TokenRecord>, homehook_core::store::StoreError> {
        self.inner.get_token(connection).await
    }

    async fn swap_token(
        &self,
        expected: Option<u64>,
        record: homehook_core::token::TokenRecord,
    ) -> Result<homehook_core::token::TokenRecord, homehook_core::store::StoreError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Some(current) = self.inner.get_token(&record.connection).await?
        {
            let version = current.version;
            self.inner.swap_token(Some(version), current).await?;
        }
        self.inner.swap_token(expected, record).await
    }

    async fn list_tokens(
        &self,
    ) -> Result<Vec<homehook_core::token::TokenRecord>, homehook_core::store::StoreError> {
        self.inner.list_tokens().await
    }

    async fn due_tokens(
        &self,
        now: homehook_core::clock::UnixTime,
    ) -> Result<Vec<homehook_core::token::TokenRecord>, homehook_core::store::StoreError> {
        self.inner.due_tokens(now).await
    }
}

#[async_trait::async_trait]
impl homehook_core::store::ItemStore for InterferingStore {
    async fn put_item(
        &self,
        key: &str,
        value: &str,
        expires_at: homehook_core::clock::UnixTime,
    ) -> Result<(), homehook_core::store::StoreError> {
        self.inner.put_item(key, value, expires_at).await
    }

    async fn take_item(
        &self,
        key: &str,
        now: homehook_core::clock::UnixTime,
    ) -> Result<homehook_core::store::Taken, homehook_core::store::StoreError> {
        self.inner.take_item(key, now).await
    }

    async fn insert_item(
        &self,
        key: &str,
        value: &str,
        expires_at: homehook_core::clock::UnixTime,
        now: homehook_core::clock::UnixTime,
    ) -> Result<Option<String>, homehook_core::store::StoreError> {
        self.inner.insert_item(key, value, expires_at, now).await
    }

    async fn get_item(
        &self,
        key: &str,
        now: homehook_core::clock::UnixTime,
    ) -> Result<Option<String>, homehook_core::store::StoreError> {
        self.inner.get_item(key, now).await
    }

    async fn count_item(
        &self,
        key: &str,
        expires_at: homehook_core::clock::UnixTime,
        now: homehook_core::clock::UnixTime,
    ) -> Result<u64, homehook_core::store::StoreError> {
        self.inner.count_item(key, expires_at, now).await
    }
}

#[async_trait::async_trait]
impl homehook_core::store::ConfigStore for InterferingStore {
    async fn get_config(
        &self,
    ) -> Result<Option<homehook_core::store::StoredConfig>, homehook_core::store::StoreError> {
        self.inner.get_config().await
    }

    async fn swap_config(
        &self,
        expected: Option<u64>,
        text: &str,
        now: homehook_core::clock::UnixTime,
    ) -> Result<homehook_core::store::StoredConfig, homehook_core::store::StoreError> {
        self.inner.swap_config(expected, text, now).await
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_when_another_write_lands_first() {
    let store = Arc::new(InterferingStore {
        inner: MemoryStore::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let w = World::start(store.clone(), FakeSettings::default()).await;
    assert_eq!(w.connect("home").await.status(), 200);
    // Expired; the refresh rotates the refresh token, and just before homehook writes the new
    // one, something else writes the record: the new tokens must still be stored.
    w.clock.advance(10_800);
    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = w.act("temperature", json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.vendor.live_refresh_tokens(), 1);
    // The stored refresh token is the live one: the next renewal works.
    w.clock.advance(10_800);
    assert_eq!(w.act("temperature", json!({})).await.status(), 200);
    assert_eq!(
        w.vendor.token_calls(),
        3,
        "code, then two refreshes; no reconnect needed"
    );
}
