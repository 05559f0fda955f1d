//! `homehook connect <connection>`: connects an account from the terminal.
//!
//! Authorization code (Netatmo, Legrand, Homey, Myfox commercial apps): the CLI starts the
//! connect in the store it shares with `homehook serve` (no admin key needed), prints the
//! vendor's link and a QR code of it, and watches the store until the server's callback has
//! stored a healthy token. Password grant (Somfy Protect, Myfox personal apps): connects at
//! once with the credentials in the secrets file.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use homehook_core::App;
use homehook_core::catalog::Grant;
use homehook_core::config::Connection;
use homehook_core::connect;
use homehook_core::token::{Health, TokenRecord};

use crate::progress::Spinner;
use crate::{probe, qr, settings, when};

/// How often the store is read while waiting for the owner.
const POLL: Duration = Duration::from_millis(500);

/// What the command was asked for.
pub(crate) struct Options<'a> {
    /// The connection's id.
    pub(crate) connection: &'a str,
    /// Leave out the QR code of the link.
    pub(crate) no_qr: bool,
    /// Draw the QR code for a terminal with a light background.
    pub(crate) light: bool,
    /// Longest wait for the owner, in seconds (at most the link's lifetime).
    pub(crate) timeout_secs: Option<u64>,
    /// Print one JSON object at the end (the rest goes to standard error).
    pub(crate) json: bool,
}

/// Where the running commentary goes: standard output, or standard error under `--json` so
/// that standard output holds only the final JSON object.
struct Say {
    json: bool,
    /// How to call homehook again for this place (`homehook`, `homehook --target aws`).
    cmd: String,
    /// What finishes the connect at the callback URL.
    server: &'static str,
}

impl Say {
    fn line(&self, text: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", text.as_ref());
        } else {
            println!("{}", text.as_ref());
        }
    }
}

/// Runs `homehook connect`.
pub(crate) async fn run(ctx: settings::Context<'_>, opts: &Options<'_>) -> Result<()> {
    let (app, place) = settings::open_place(ctx, true).await?;
    let conn = settings::connection(&app.services.config, opts.connection)?;
    let say = Say {
        json: opts.json,
        cmd: place.command(),
        server: match place {
            settings::Place::Local => "`homehook serve`",
            settings::Place::Remote { .. } => "the stack's oauth-callback function",
        },
    };
    let record = match conn.grant {
        Grant::Password => with_password(&app, conn).await?,
        Grant::AuthorizationCode => with_consent(&app, conn, opts, &say).await?,
    };
    report(&app, conn, &record, &say);
    Ok(())
}

/// Password grant: one token request now (or the stored token, if it is still good).
async fn with_password(app: &App, conn: &Connection) -> Result<TokenRecord> {
    let vendor = display_name(app, conn);
    let spinner = Spinner::start(format!("connecting {} at {vendor}", conn.label));
    let record = app.services.keeper.fresh_token(conn).await.map_err(|e| {
        anyhow!(
            "{e}\nCheck the [{secret}] entry of the secrets file (client_id, client_secret, username, password), then run `homehook connect {id}` again; `homehook doctor` checks the whole setup.",
            secret = conn.secret,
            id = conn.id
        )
    });
    spinner.finish();
    record
}

/// Authorization code: the link, then waiting for the server's callback to store the tokens.
async fn with_consent(
    app: &App,
    conn: &Connection,
    opts: &Options<'_>,
    say: &Say,
) -> Result<TokenRecord> {
    let config = &app.services.config;
    let vendor = display_name(app, conn);
    let callback = config.callback_url(&conn.provider);
    let base = config.base_url();
    // The vendor sends the owner's browser to the server, not to this command.
    if let Err(problem) =
        probe::server_answers(&probe::client(Duration::from_secs(3))?, &base).await
    {
        bail!(
            "{problem}.\nStart {} first (the vendor sends you back to {callback}), then run `{} connect {}` again.",
            say.server,
            say.cmd,
            conn.id
        );
    }
    let before = app.services.store.get_token(&conn.id).await?;
    let started = jiff::Timestamp::now().as_second();
    let link = connect::begin(&app.services, conn, &callback)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    let ttl = config.server.state_ttl_secs.max(1) as u64;
    let wait = opts.timeout_secs.unwrap_or(ttl).min(ttl);

    say.line(format!("Open this link to connect {}:", naming(app, conn)));
    say.line("");
    say.line(format!("  {}", link.url));
    say.line("");
    if !opts.no_qr {
        say.line("or scan it with your phone:");
        say.line(qr::render(&link.url, opts.light)?);
        if settings::is_loopback(&config.server.public_url) {
            say.line(format!(
                "(From a phone this works only if it can reach {callback}: with server.public_url on this machine, open the link here.)"
            ));
        }
    }
    say.line(format!(
        "{vendor} sends you back to {callback}, where {} finishes connecting. The link works for {}.",
        say.server,
        when::span(ttl as i64)
    ));

    let spinner = Spinner::start(format!("waiting for you to allow access at {vendor}"));
    let deadline = Instant::now() + Duration::from_secs(wait);
    // Once the link is used, the server exchanges the code (up to the vendor timeout).
    let mut used_at: Option<Instant> = None;
    let grace = Duration::from_secs(config.server.vendor_timeout_secs + 5);
    loop {
        if let Some(record) = app.services.store.get_token(&conn.id).await?
            && is_new(&record, before.as_ref(), started)
        {
            spinner.finish();
            return match &record.health {
                Health::Healthy => Ok(record),
                other => Err(anyhow!(
                    "{} was connected but is {}: {}",
                    conn.id,
                    other.label(),
                    reason(other)
                )),
            };
        }
        if used_at.is_none() && !connect::link_pending(&app.services, &link.state).await? {
            used_at = Some(Instant::now());
            spinner.set(format!("{vendor} sent you back; storing the tokens"));
        }
        if used_at.is_some_and(|at| at.elapsed() > grace) {
            spinner.finish();
            bail!(
                "the link was used but {} did not connect: the page in your browser says why (access declined, or {vendor} refused the code). Run `{} connect {}` to try again; `{} doctor` checks the setup.",
                conn.id,
                say.cmd,
                conn.id,
                say.cmd
            );
        }
        if Instant::now() >= deadline {
            spinner.finish();
            bail!(
                "{} was not connected within {}. Check that you opened the link and chose to allow access, that {} still answers at {base}, and that {callback} is the redirect URI registered with your {vendor} app; then run `{} connect {}` again.",
                conn.id,
                when::span(wait as i64),
                say.server,
                say.cmd,
                conn.id
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `record` is the connection this command made, rather than what was stored before.
fn is_new(record: &TokenRecord, before: Option<&TokenRecord>, started: i64) -> bool {
    record.connected_at.0 >= started
        && before
            .is_none_or(|b| b.version != record.version || b.connected_at != record.connected_at)
}

fn reason(health: &Health) -> &str {
    match health {
        Health::Healthy => "",
        Health::Degraded { reason, .. }
        | Health::ReauthNeeded { reason }
        | Health::Misconfigured { reason, .. } => reason,
    }
}

/// "Home at Netatmo", or just "Netatmo" when the label is the vendor's name.
fn naming(app: &App, conn: &Connection) -> String {
    let vendor = display_name(app, conn);
    if conn.label == vendor {
        vendor
    } else {
        format!("{} at {vendor}", conn.label)
    }
}

fn display_name(app: &App, conn: &Connection) -> String {
    app.services
        .config
        .provider_of(conn)
        .map(|s| s.display_name.clone())
        .unwrap_or_else(|| conn.provider.clone())
}

/// The result, and the next step.
fn report(app: &App, conn: &Connection, record: &TokenRecord, say: &Say) {
    let now = jiff::Timestamp::now().as_second();
    let expires_in = record.expires_at.map(|t| t.0 - now);
    if say.json {
        println!(
            "{}",
            serde_json::json!({
                "connection": conn.id,
                "provider": conn.provider,
                "connected": true,
                "health": record.health.label(),
                "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
                "expires_in_secs": expires_in,
            })
        );
        return;
    }
    let expiry = match expires_in {
        Some(s) => format!(", access token expires {}", when::expires(s)),
        None => String::new(),
    };
    say.line(format!(
        "Connected {}: {}{expiry}.",
        naming(app, conn),
        record.health.label()
    ));
    let has_actions = app
        .services
        .config
        .actions
        .values()
        .any(|a| a.connection == conn.id);
    if has_actions {
        say.line(format!(
            "Next: `{} actions --qr` shows your action URLs to scan with the phone.",
            say.cmd
        ));
    } else {
        say.line(format!(
            "Next: `{cmd} discover {}` lists the ids your actions need and prints an example to paste into homehook.toml; then `{cmd} config push` and `{cmd} actions --qr`.",
            conn.id,
            cmd = say.cmd
        ));
    }
}
