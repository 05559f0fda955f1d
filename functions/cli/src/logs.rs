//! `homehook logs`: the functions' logs of a target, through `sam logs` (which reads every
//! function of the stack from CloudWatch Logs and follows them). The CLI carries no CloudWatch
//! client of its own: SAM users have `sam`, and its `--tail` is what they would type.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::settings::Context;

/// The template's logical name of each function.
const FUNCTIONS: [(&str, &str); 3] = [
    ("actions", "ActionsFunction"),
    ("oauth-callback", "OAuthCallbackFunction"),
    ("token-refresh", "TokenRefreshFunction"),
];

/// Runs `sam logs` for the target's stack until it ends (Ctrl-C when following).
pub(crate) fn follow(ctx: Context<'_>, function: Option<&str>, tail: bool) -> Result<()> {
    let Some(name) = ctx.target else {
        bail!(
            "`homehook logs` reads a deployed stack's logs: add --target <name>; `homehook serve` prints its own log"
        );
    };
    let target = crate::target::load(name)?;
    let Some(stack) = &target.stack else {
        bail!(
            "target {name} was added without --stack: add it again with `homehook target add {name} --stack <stack>`"
        );
    };
    let mut sam = Command::new("sam");
    sam.args(["logs", "--stack-name", stack, "--region", &target.region]);
    if let Some(profile) = &target.profile {
        sam.args(["--profile", profile]);
    }
    if let Some(f) = function {
        let Some((_, logical)) = FUNCTIONS.iter().find(|(short, _)| *short == f) else {
            bail!("no function \"{f}\": actions, oauth-callback or token-refresh");
        };
        sam.args(["--name", logical]);
    }
    if tail {
        sam.arg("--tail");
    }
    let status = sam
        .status()
        .context("cannot run `sam` (the AWS SAM CLI): install it to read the logs")?;
    if !status.success() {
        bail!("`sam logs` failed ({status})");
    }
    Ok(())
}
