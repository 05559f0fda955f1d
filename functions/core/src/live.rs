//! The config a running process follows. A process (a Lambda container, `homehook serve`) is
//! built from one config; when the store holds a published config ([`crate::publish`]), the
//! process follows it: it looks at the stored version at most every [`CHECK_EVERY_SECS`]
//! (one strongly consistent read of one small item, on the request that finds the check due),
//! and a new version replaces the config of every later request and tick. What the process
//! holds across versions carries over: renewals in flight, unsaved tokens, the vendors' pace,
//! the wrong-key lockouts (see [`App::reconfigured`]).
//!
//! So a key revoked in a published config is refused by every instance within
//! [`CHECK_EVERY_SECS`] of the publish, without a deploy or a restart.

use std::sync::{Arc, Mutex, RwLock};

use crate::app::App;
use crate::clock::UnixTime;
use crate::config::Config;
use crate::publish;

/// How often a process looks for a newer published config, at most.
pub const CHECK_EVERY_SECS: i64 = 2;

/// What a host changes in every config it loads (on AWS: the public URL from the template).
pub type Prepare = Box<dyn Fn(Config) -> Config + Send + Sync>;

/// The process's current [`App`], following the published config.
pub struct Live {
    current: RwLock<Current>,
    /// When the next look at the stored version is due; `None` for a process that does not
    /// follow a published config.
    next_check: Mutex<Option<UnixTime>>,
    prepare: Prepare,
}

#[derive(Clone)]
struct Current {
    app: Arc<App>,
    /// The published version `app` runs, if it runs one.
    version: Option<u64>,
    /// A newer published version this host could not use: looked at once, not again.
    refused: Option<u64>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

impl Live {
    /// A process that keeps `app`'s config (tests, benchmarks, a host without publishing).
    pub fn fixed(app: Arc<App>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Current {
                app,
                version: None,
                refused: None,
            }),
            next_check: Mutex::new(None),
            prepare: Box::new(|config| config),
        })
    }

    /// A process that follows the published config: the stored one from the start if there is
    /// one (made ready by `prepare`), else `app`'s until one is published.
    pub async fn following(app: App, prepare: Prepare) -> Arc<Self> {
        let now = app.services.clock.now();
        let live = Self {
            current: RwLock::new(Current {
                app: Arc::new(app),
                version: None,
                refused: None,
            }),
            next_check: Mutex::new(Some(now.plus_secs(CHECK_EVERY_SECS))),
            prepare,
        };
        live.check(now).await;
        Arc::new(live)
    }

    /// The app for this request or tick: the newest published config's, looked for when the
    /// last look is [`CHECK_EVERY_SECS`] old.
    pub async fn app(&self) -> Arc<App> {
        let current = read(&self.current);
        let now = current.app.services.clock.now();
        let due = {
            let mut next = self
                .next_check
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match *next {
                Some(at) if at <= now => {
                    // One look per interval, whoever comes first; the others go on meanwhile.
                    *next = Some(now.plus_secs(CHECK_EVERY_SECS));
                    true
                }
                _ => false,
            }
        };
        if due {
            self.check(now).await;
            return read(&self.current).app;
        }
        current.app
    }

    /// The published version the process runs, if it runs one.
    pub fn version(&self) -> Option<u64> {
        read(&self.current).version
    }

    /// Looks at the stored config and moves to it when it is newer. A failure (the store down,
    /// a document this host cannot use) keeps the current config and is logged.
    async fn check(&self, now: UnixTime) {
        let current = read(&self.current);
        let store = Arc::clone(&current.app.services.store);
        let stored = match store.get_config().await {
            Ok(Some(stored))
                if Some(stored.version) != current.version
                    && Some(stored.version) != current.refused =>
            {
                stored
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for a newer published config; keeping this one");
                return;
            }
        };
        let config = match Config::parse(&stored.text, publish::DOCUMENT_NAME, None) {
            Ok(config) => (self.prepare)(config),
            Err(e) => {
                tracing::warn!(version = stored.version, error = %e, "the published config cannot be used here; keeping this one");
                self.refuse(stored.version);
                return;
            }
        };
        let app = match current.app.reconfigured(config) {
            Ok(app) => Arc::new(app),
            Err(e) => {
                tracing::warn!(version = stored.version, error = %e, "could not apply the published config; keeping this one");
                self.refuse(stored.version);
                return;
            }
        };
        let mut slot = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another check may have moved further meanwhile.
        if slot.version.is_none_or(|v| v < stored.version) {
            tracing::info!(
                version = stored.version,
                at = now.0,
                "following the published config"
            );
            *slot = Current {
                app,
                version: Some(stored.version),
                refused: None,
            };
        }
    }

    /// Remembers a published version this host cannot use, so that it is not read again.
    fn refuse(&self, version: u64) {
        self.current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .refused = Some(version);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::error::ErrorCode;
    use crate::gate::{self, Knock};
    use crate::keys::{ActionKey, KeyHash};
    use crate::secrets::LocalSecrets;
    use crate::services::Services;
    use crate::store::{MemoryStore, Store};

    /// A config with action `away` (its own key is another one), also opened by `key`, the
    /// phone's, unless `revoked`.
    fn config_text(key: &ActionKey, revoked: bool) -> String {
        format!(
            "[connections.home]\nprovider = \"netatmo\"\n\n[actions.away]\nconnection = \"home\"\npath = \"/api/setthermmode\"\nkey_hash = \"{}\"\n\n[keys.phone]\nhash = \"{}\"\nactions = [\"away\"]\nrevoked = {revoked}\n",
            KeyHash::of("the action's own key"),
            KeyHash::of(key.expose())
        )
    }

    fn app(store: Arc<dyn Store>, clock: &ManualClock, text: &str) -> App {
        let config = Config::parse(text, "t.toml", None).expect("config");
        let secrets = Arc::new(LocalSecrets::from_entries(Default::default()));
        App::new(Services::new(config, store, secrets, Arc::new(clock.clone())).expect("services"))
    }

    /// Publishes `text` from version `expected`, now.
    async fn publish(
        store: &Arc<dyn Store>,
        text: &str,
        expected: Option<u64>,
        clock: &ManualClock,
    ) -> Result<crate::store::StoredConfig, publish::PublishError> {
        publish::publish(&**store, text, "t.toml", expected, clock.now()).await
    }

    /// Whether `key` opens `away` on the process's current app.
    async fn opens(live: &Live, key: &ActionKey) -> Result<(), ErrorCode> {
        let app = live.app().await;
        let knock = Knock {
            action: "away",
            key: Some(key.expose()),
            method: &http::Method::POST,
            source: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        gate::admit_action(&app.services, &app.guard, knock)
            .map(|_| ())
            .map_err(|p| p.code)
    }

    #[tokio::test]
    async fn a_published_revocation_is_followed_within_the_check_interval() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(UnixTime(1_000_000));
        let key = ActionKey::generate();
        let open = config_text(&key, false);
        // The process starts from its own config; the store holds version 1, the same.
        publish(&store, &open, None, &clock).await.expect("v1");
        let live = Live::following(app(Arc::clone(&store), &clock, &open), Box::new(|c| c)).await;
        assert_eq!(live.version(), Some(1));
        assert_eq!(opens(&live, &key).await, Ok(()));
        let before = live.app().await;

        publish(&store, &config_text(&key, true), Some(1), &clock)
            .await
            .expect("v2 revokes the key");
        // Looked at less than CHECK_EVERY_SECS ago: the process has not seen it yet.
        clock.advance(CHECK_EVERY_SECS - 1);
        assert_eq!(opens(&live, &key).await, Ok(()));
        clock.advance(1);
        assert_eq!(opens(&live, &key).await, Err(ErrorCode::Unauthorized));
        assert_eq!(live.version(), Some(2));

        // What the process holds carried over to the new version.
        let after = live.app().await;
        assert!(Arc::ptr_eq(&before.guard.lockout, &after.guard.lockout));
        assert!(Arc::ptr_eq(&before.services.pace, &after.services.pace));
        assert!(Arc::ptr_eq(&before.services.store, &after.services.store));
    }

    #[tokio::test]
    async fn a_process_without_a_published_config_keeps_its_own() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(UnixTime(1_000_000));
        let key = ActionKey::generate();
        let live = Live::following(
            app(Arc::clone(&store), &clock, &config_text(&key, false)),
            Box::new(|c| c),
        )
        .await;
        clock.advance(10 * CHECK_EVERY_SECS);
        assert_eq!(live.version(), None);
        assert_eq!(opens(&live, &key).await, Ok(()));
        // A fixed process never looks, whatever is published.
        let fixed = Live::fixed(live.app().await);
        publish(&store, &config_text(&key, true), None, &clock)
            .await
            .expect("published");
        clock.advance(10 * CHECK_EVERY_SECS);
        assert_eq!(opens(&fixed, &key).await, Ok(()));
        assert_eq!(opens(&live, &key).await, Err(ErrorCode::Unauthorized));
    }

    #[tokio::test]
    async fn a_document_this_host_cannot_use_is_passed_over_until_a_newer_one() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(UnixTime(1_000_000));
        let key = ActionKey::generate();
        let open = config_text(&key, false);
        let live = Live::following(app(Arc::clone(&store), &clock, &open), Box::new(|c| c)).await;
        // Written past `publish` (an older writer, another host's rules): not a config here.
        store
            .swap_config(None, "[actions.away]\nconnection = 7\n", clock.now())
            .await
            .expect("written");
        clock.advance(CHECK_EVERY_SECS);
        assert_eq!(
            opens(&live, &key).await,
            Ok(()),
            "the process keeps its config"
        );
        assert_eq!(live.version(), None);
        publish(&store, &config_text(&key, true), Some(1), &clock)
            .await
            .expect("v2");
        clock.advance(CHECK_EVERY_SECS);
        assert_eq!(opens(&live, &key).await, Err(ErrorCode::Unauthorized));
        assert_eq!(live.version(), Some(2));
    }
}
