//! `homehook doctor`: checks the config, the secrets, the admin key, the public URL and the
//! server behind it, the redirect URIs to register, the clock against each vendor's, and each
//! connection's token; one line per check (`ok`, `warn`, `FAIL`) and, for each problem, a
//! `fix:` line saying exactly what to do. Exits 1 when any check fails.

mod local;
mod network;
mod remote;

pub(crate) use local::scope_gaps;

use anyhow::Result;
use serde::Serialize;

use crate::progress::Spinner;
use crate::settings;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Fine.
    Ok,
    /// Works, but something deserves attention.
    Warn,
    /// Broken: homehook cannot do its job until it is fixed.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// What was checked ("config", "secret netatmo", "connection home").
    pub(crate) check: String,
    /// The outcome.
    pub(crate) status: Status,
    /// What was found.
    pub(crate) detail: String,
    /// What to do, for a problem.
    pub(crate) fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check; `Ok(true)` when none failed.
pub(crate) async fn run(ctx: settings::Context<'_>, json: bool) -> Result<bool> {
    let mut checks = Vec::new();
    if ctx.target.is_some() {
        remote::run(ctx, &mut checks).await;
        return finish(&checks, json);
    }
    let (config_path, data_dir) = (ctx.config_path, ctx.data_dir);
    let Some(config) = local::config(config_path, &mut checks) else {
        return finish(&checks, json);
    };
    let secrets = local::secrets_file(&config, &mut checks);
    local::secret_entries(&config, &secrets, None, &mut checks).await;
    local::admin_key(&config, &mut checks);
    local::public_url(&config, &mut checks);
    local::redirect_uris(&config, &mut checks);

    let spinner = Spinner::start("asking the server and the vendors");
    let (server_up, clocks) = tokio::join!(network::server(&config), network::clocks(&config));
    spinner.finish();
    let server_running = server_up.status == Status::Ok;
    checks.push(server_up);
    checks.extend(clocks);

    match settings::open_app(data_dir, config, false) {
        Ok(app) => {
            published(ctx, &app, &mut checks).await;
            local::connections(&app, server_running, "homehook", &mut checks).await
        }
        Err(e) => checks.push(Check::fail(
            "store",
            format!("cannot open the store: {e:#}"),
            "pass --data-dir (or set server.data_dir) to a directory you can write",
        )),
    }
    finish(&checks, json)
}

/// The config file against the published config the server runs.
async fn published(ctx: settings::Context<'_>, app: &homehook_core::App, checks: &mut Vec<Check>) {
    use homehook_core::publish::{FileState, compare};
    let Some(path) = app.services.config.source.as_deref() else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let stored = match app.services.store.get_config().await {
        Ok(stored) => stored,
        Err(e) => {
            checks.push(Check::warn(
                "published config",
                format!("cannot read it: {e}"),
                "check the data directory",
            ));
            return;
        }
    };
    let base = crate::config_cmd::Marks::of(ctx, &settings::Place::Local, path)
        .ok()
        .and_then(|m| m.base());
    checks.push(match compare(&text, stored.as_ref(), base) {
        FileState::Same { version } => Check::ok(
            "published config",
            format!("{} is published (version {version})", path.display()),
        ),
        FileState::NothingPublished => Check::warn(
            "published config",
            "nothing is published yet: the server publishes the file when it starts",
            "start `homehook serve`, or `homehook config push`",
        ),
        FileState::Edited { version } => Check::warn(
            "published config",
            format!(
                "{} has edits the server does not run yet (it runs version {version})",
                path.display()
            ),
            "`homehook config push` (the server follows within seconds)",
        ),
        FileState::Diverged { version } => Check::warn(
            "published config",
            format!(
                "the server runs version {version}, which differs from {} (a key changed since?)",
                path.display()
            ),
            "`homehook config diff`, then `homehook config pull` (or `config push --force`)",
        ),
    });
}

fn finish(checks: &[Check], json: bool) -> Result<bool> {
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if json {
        println!("{}", serde_json::to_string_pretty(checks)?);
        return Ok(failed == 0);
    }
    for c in checks {
        let word = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{word:<5} {}: {}", c.check, c.detail);
        if let Some(fix) = &c.fix {
            println!("      fix: {fix}");
        }
    }
    println!();
    match (failed, warned) {
        (0, 0) => println!("All {} checks passed.", checks.len()),
        (0, w) => println!("No failures; {w} warning{}.", plural(w)),
        (f, w) => println!(
            "{f} check{} failed, {w} warning{}: fix the FAIL lines first.",
            plural(f),
            plural(w)
        ),
    }
    Ok(failed == 0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
