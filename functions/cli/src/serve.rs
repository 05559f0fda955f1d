//! `homehook serve`: every route in one axum server on loopback, plus the refresh tick.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use homehook_core::App;
use homehook_core::clock::SystemClock;
use homehook_core::live::Live;
use homehook_core::publish::{self, FileState};
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_core::store::Store;

use crate::{config_cmd, http_server, settings};

/// Prints a console line; a closed stdout (`homehook serve | head`) must not stop the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs the server until Ctrl-C or SIGTERM.
pub(crate) async fn run(
    config_path: Option<&Path>,
    data_dir: Option<&Path>,
    listen: Option<SocketAddr>,
) -> Result<()> {
    let mut config = settings::load_config(config_path)?;
    let (store, dir) = settings::open_store(data_dir, &config)?;
    let store: Arc<dyn Store> = Arc::new(store);
    let secrets = LocalSecrets::load(config.server.secrets_file.as_deref())?;
    let published = publish_file(config_path, data_dir, &config, &*store).await?;
    let addr = listen.unwrap_or(config.server.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    if config.server.public_url_follows_listen {
        config.server.public_url = format!("http://{bound}/").parse()?;
    }
    let interval = Duration::from_secs(config.server.refresh_interval_secs);
    let app = App::new(Services::new(
        config,
        store,
        Arc::new(secrets),
        Arc::new(SystemClock),
    )?);
    // Every request and tick runs the newest published config (`homehook config push`,
    // `homehook key …`), within seconds: links keep following the address bound here.
    let listen_url: url::Url = format!("http://{bound}/").parse()?;
    let live = Live::following(
        app,
        Box::new(move |mut config| {
            if config.server.public_url_follows_listen {
                config.server.public_url = listen_url.clone();
            }
            config
        }),
    )
    .await;

    say!("homehook listening on http://{bound}");
    say!("store: {}", dir.join(homehook_local::DB_FILE).display());
    if let Some(line) = published {
        say!("{line}");
    }
    if let Some(version) = live.version() {
        say!(
            "config: published version {version} (`homehook config push` publishes edits; no restart needed)"
        );
    }
    for warning in live.app().await.services.config.warnings() {
        say!("warning: {warning}");
        tracing::warn!(%warning, "config");
    }
    print_next_steps(&*live.app().await, live.version().is_some());

    // A renewal this machine's last `homehook serve` did not finish (killed between the
    // vendor's answer and the store write): found now, not at the connection's next renewal.
    match live.app().await.services.keeper.recover_abandoned().await {
        Ok(0) => {}
        Ok(n) => say!(
            "checked {n} connection(s) whose token renewal was interrupted; `homehook status` shows them"
        ),
        Err(e) => tracing::warn!(error = %e, "could not look for interrupted renewals"),
    }
    let ticker = tokio::spawn(tick_forever(Arc::clone(&live), interval));
    // HTTP/1.1 only, a header/idle timeout and a connection cap (http_server.rs); each request
    // carries its peer address for the wrong-key lockout (homehook_core::guard).
    let router = homehook_core::http::router(live);
    let cap = http_server::connection_cap();
    tracing::info!(
        max_connections = cap,
        header_timeout_secs = http_server::HEADER_TIMEOUT.as_secs(),
        "serving HTTP/1.1"
    );
    http_server::serve(listener, router, cap, shutdown_signal()).await;
    ticker.abort();
    Ok(())
}

/// Publishes the config file at start when that loses nothing: nothing published yet, or the
/// file edited since it was last published (the usual edit-and-restart). When the published
/// config changed meanwhile (`homehook key revoke`…), the file does not undo it: the server
/// runs the published one and says how to reconcile.
async fn publish_file(
    config_path: Option<&Path>,
    data_dir: Option<&Path>,
    config: &homehook_core::Config,
    store: &dyn Store,
) -> Result<Option<String>> {
    let Some(path) = config.source.as_deref() else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ctx = settings::Context {
        config_path,
        data_dir,
        target: None,
    };
    let marks = config_cmd::Marks::of(ctx, &settings::Place::Local, path)?;
    let stored = store.get_config().await?;
    let expected = match publish::compare(&text, stored.as_ref(), marks.base()) {
        FileState::Same { version } => {
            marks.record(version, &text);
            return Ok(None);
        }
        FileState::NothingPublished => None,
        FileState::Edited { version } => Some(version),
        FileState::Diverged { version } => {
            tracing::warn!(
                file = %path.display(),
                version,
                "the published config changed since this file was published here (a key made or revoked meanwhile?): serving the published version; `homehook config diff` shows the difference, `homehook config pull` takes it, `homehook config push --force` replaces it"
            );
            return Ok(None);
        }
    };
    let now = homehook_core::clock::UnixTime(jiff::Timestamp::now().as_second());
    let stored = publish::publish(store, &text, &path.display().to_string(), expected, now).await?;
    marks.record(stored.version, &text);
    Ok(Some(format!(
        "published {} as version {}",
        path.display(),
        stored.version
    )))
}

fn print_next_steps(app: &App, published: bool) {
    let config = &app.services.config;
    match &config.source {
        None if published => say!(
            "{} connections, {} actions",
            config.connections.len(),
            config.actions.len()
        ),
        None => {
            say!("no config file: running with defaults and no connections.");
            say!("next: `homehook init` writes a starter homehook.toml and secrets file for your");
            say!(
                "      vendors (or copy homehook.example.toml and make keys with `homehook key new`),"
            );
            say!("      then restart `homehook serve`.");
        }
        Some(path) => say!(
            "config: {} ({} connections, {} actions)",
            path.display(),
            config.connections.len(),
            config.actions.len()
        ),
    }
    if config.server.admin_key_hash.is_none() {
        say!("no admin key: /connect and /status are disabled until server.admin_key_hash is set.");
    }
    for conn in config.connections.values() {
        if conn.grant == homehook_core::catalog::Grant::Password {
            say!(
                "connect {}: on first use, or now with `homehook connect {}`",
                conn.id,
                conn.id
            );
            continue;
        }
        say!(
            "connect {}: `homehook connect {}` or {}/connect/{}?key=<admin key>   (redirect URI: {})",
            conn.id,
            conn.id,
            config.base_url(),
            conn.id,
            config.callback_url(&conn.provider)
        );
    }
}

async fn tick_forever(live: Arc<Live>, every: Duration) {
    // Scheduled actions fire on their minute, and a published config may add one at any time:
    // tick every minute (or more often), a second past each whole minute of the wall clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let to_next_minute = Duration::from_secs(60 - now.as_secs() % 60 + 1);
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + to_next_minute,
        every.min(Duration::from_secs(60)),
    );
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match live.app().await.tick().await {
            Ok(s)
                if s.tokens.refreshed
                    + s.tokens.failed
                    + s.scheduled.fired
                    + s.scheduled.failed
                    > 0 =>
            {
                tracing::info!(
                    refreshed = s.tokens.refreshed,
                    failed = s.tokens.failed,
                    skipped = s.tokens.skipped,
                    scheduled_fired = s.scheduled.fired,
                    scheduled_failed = s.scheduled.failed,
                    "tick"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "refresh tick failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
