//! `homehook --target <name> doctor`: what people get wrong on a deployed stack. The table and
//! the secret are read with the user's own AWS credentials; the stack is asked over HTTPS.

use homehook_core::gate::ADMIN_KEY_ENTRY;
use homehook_core::publish;

use super::{Check, local};
use crate::settings::{self, Context};
use crate::{probe, target};

/// Runs the checks of a target.
pub(super) async fn run(ctx: Context<'_>, checks: &mut Vec<Check>) {
    let Some(name) = ctx.target else { return };
    let t = match target::load(name) {
        Ok(t) => t,
        Err(e) => {
            checks.push(Check::fail(
                "target",
                format!("{e:#}"),
                "`homehook target add`",
            ));
            return;
        }
    };
    let cmd = format!("homehook --target {name}");
    let (store, secrets) = match target::open(&t).await {
        Ok(found) => found,
        Err(e) => {
            checks.push(Check::fail(
                "aws",
                format!("{e:#}"),
                "check your AWS credentials",
            ));
            return;
        }
    };
    // The published config: there, and usable.
    let config = match publish::published(&*store).await {
        Ok(Some((stored, _))) => {
            checks.push(Check::ok(
                "config",
                format!(
                    "version {} is published in table {}",
                    stored.version, t.table
                ),
            ));
            match settings::open_place(ctx, true).await {
                Ok((app, _)) => app,
                Err(e) => {
                    checks.push(Check::fail(
                        "config",
                        format!("{e:#}"),
                        format!("`{cmd} config push`"),
                    ));
                    return;
                }
            }
        }
        Ok(None) => {
            checks.push(Check::fail(
                "config",
                "nothing is published: the functions run with no connections and no actions",
                format!("`{cmd} config push` publishes homehook.toml"),
            ));
            return;
        }
        Err(e) => {
            checks.push(Check::fail(
                "config",
                format!("{e:#}"),
                format!(
                    "check that table {} exists in {} and that your AWS user may read it",
                    t.table, t.region
                ),
            ));
            return;
        }
    };
    let cfg = &config.services.config;
    local::secret_entries(
        cfg,
        &*secrets,
        Some(&format!("the secret {}", t.secret)),
        checks,
    )
    .await;
    // The admin key: the config's wins over the secret's; both is a trap.
    let in_secret = homehook_core::secrets::Secrets::entry(&*secrets, ADMIN_KEY_ENTRY)
        .await
        .is_ok();
    checks.push(match (cfg.server.admin_key_hash.is_some(), in_secret) {
        (true, true) => Check::warn(
            "admin key",
            "both the published config and the secret hold an admin key hash: the config's is used, the secret's is ignored",
            format!("remove one: `{cmd} key rotate admin` manages the config's"),
        ),
        (false, false) => Check::warn(
            "admin key",
            "no admin key: connect links from a browser (/connect) and /status are refused",
            format!("`{cmd} key rotate admin` makes one"),
        ),
        _ => Check::ok("admin key", "set"),
    });
    local::redirect_uris(cfg, checks);
    // The stack answers on its base URL.
    let base = cfg.base_url();
    checks.push(match probe::client(std::time::Duration::from_secs(10)) {
        Ok(client) => match probe::server_answers(&client, &base).await {
            Ok(()) => Check::ok("stack", format!("homehook answers at {base}")),
            Err(problem) => Check::fail(
                "stack",
                problem,
                format!(
                    "`{cmd} logs` shows why the functions fail; `sam deploy` if the stack is gone"
                ),
            ),
        },
        Err(e) => Check::warn("stack", format!("{e:#}"), "try again"),
    });
    // The tick: a healthy token renewed long after its expiry means the schedule does not run.
    let now = config.services.clock.now();
    let stale = config
        .services
        .store
        .list_tokens()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.expires_at.is_some_and(|e| e.0 + 3600 < now.0))
        .map(|r| r.connection)
        .collect::<Vec<_>>();
    checks.push(if stale.is_empty() {
        Check::ok("schedule", "no token is more than an hour past its expiry")
    } else {
        Check::fail(
            "schedule",
            format!("tokens of {} expired over an hour ago: the token-refresh schedule is not renewing them", stale.join(", ")),
            format!("`{cmd} logs --function token-refresh`; the stack's TickMissing alarm says when it stopped"),
        )
    });
    local::connections(&config, true, &cmd, checks).await;
}
