//! `homehook key new/list/revoke/rotate` on the published config: every change is written with
//! compare-and-swap and followed by every running instance within seconds, on this machine's
//! store or a target's table alike. The config file comes along when it was in step.

use anyhow::{Result, bail};
use homehook_core::clock::UnixTime;
use homehook_core::key_admin::{self, Edited, KeyAdminError};
use homehook_core::keys::ActionKey;
use homehook_core::publish;
use homehook_core::store::Store;

use crate::config_cmd;
use crate::settings::{self, Context, Place};
use crate::table;

fn now() -> UnixTime {
    UnixTime(jiff::Timestamp::now().as_second())
}

fn time(at: UnixTime) -> String {
    jiff::Timestamp::from_second(at.0).map_or_else(|_| at.0.to_string(), |t| t.to_string())
}

/// The actions of `--for`: comma-separated names, or `*`.
pub(crate) fn action_list(actions: &str) -> Result<Vec<String>> {
    let names: Vec<String> = actions
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        bail!("--for needs at least one action name (or \"*\")");
    }
    Ok(names)
}

/// The place's store when `key new --for <actions>` should be a published edit: a config is
/// published and it has every action named. Otherwise (a new action not written yet, nothing
/// published on this machine) the key is printed with its `[keys.<id>]` block to paste.
pub(crate) async fn published_store(
    ctx: Context<'_>,
    actions: &[String],
) -> Result<Option<(std::sync::Arc<dyn Store>, Place)>> {
    let (store, place) = match settings::open_store_of(ctx).await {
        Ok(found) => found,
        // This machine has no usable store: the offline `key new` still works.
        Err(_) if ctx.target.is_none() => return Ok(None),
        Err(e) => return Err(e),
    };
    let published = publish::published(&*store).await?;
    Ok(match published {
        Some((_, config))
            if actions
                .iter()
                .all(|a| a == "*" || config.actions.contains_key(a)) =>
        {
            Some((store, place))
        }
        Some(_) if ctx.target.is_none() => None,
        Some(_) => bail!(
            "the published config has no action {}: add it to homehook.toml and `{} config push` first",
            actions.join(", "),
            place.command()
        ),
        None if ctx.target.is_none() => None,
        None => bail!(
            "target has no published config: `{} config push` publishes homehook.toml first",
            place.command()
        ),
    })
}

fn show_new(key: &ActionKey, id: &str, json: bool, edited: &Edited) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "key": key.expose(), "id": id, "hash": key.hash().to_string(), "version": edited.after.version })
        );
        return;
    }
    println!("key:  {}", key.expose());
    println!("id:   {id}");
    println!();
    println!(
        "Keep the key: it is shown only now. Published as version {}; running instances",
        edited.after.version
    );
    println!("take it within seconds.");
}

fn failed(e: KeyAdminError, place: &Place) -> anyhow::Error {
    match e {
        KeyAdminError::Publish(publish::PublishError::Invalid(invalid))
            if invalid.to_string().contains("no key opens this action") =>
        {
            anyhow::anyhow!(
                "{invalid}\nThat key is the action's last one: `{cmd} key rotate <id> --overlap 0` makes its successor and revokes it in one step.",
                cmd = place.command()
            )
        }
        other => anyhow::anyhow!(other),
    }
}

/// `homehook key new --for <actions> [--id <id>]` as a published edit.
pub(crate) async fn new_published(
    ctx: Context<'_>,
    store: &dyn Store,
    place: &Place,
    actions: &[String],
    id: Option<&str>,
    expires: Option<UnixTime>,
    json: bool,
) -> Result<()> {
    let id = id.map_or_else(
        || format!("key-{}", &ActionKey::generate().hash().key_id()),
        String::from,
    );
    let (key, edited) = key_admin::create(store, now(), &id, actions, expires)
        .await
        .map_err(|e| failed(e, place))?;
    show_new(&key, &id, json, &edited);
    config_cmd::follow_edit(json, ctx, place, &edited.before, &edited.after);
    Ok(())
}

/// `homehook key list`.
pub(crate) async fn list(ctx: Context<'_>, json: bool) -> Result<()> {
    let (store, place) = settings::open_store_of(ctx).await?;
    let Some((_, config)) = publish::published(&*store).await? else {
        bail!(
            "nothing is published: `{} config push` publishes homehook.toml",
            place.command()
        );
    };
    let keys = key_admin::list(&*store, &config, now()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    let at = now();
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.scope.join(", "),
                match (k.revoked, k.expires) {
                    (true, _) => "revoked".into(),
                    (false, Some(e)) if e <= at => format!("expired {}", time(e)),
                    (false, Some(e)) => format!("until {}", time(e)),
                    (false, None) => "active".into(),
                },
                k.last_used.map_or_else(|| "never".into(), time),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["key", "opens", "state", "last used"], &rows)
    );
    Ok(())
}

/// `homehook key revoke <id>`.
pub(crate) async fn revoke(ctx: Context<'_>, id: &str) -> Result<()> {
    let (store, place) = settings::open_store_of(ctx).await?;
    let edited = key_admin::revoke(&*store, now(), id)
        .await
        .map_err(|e| failed(e, &place))?;
    println!(
        "revoked {id} (published as version {}): every instance refuses it within seconds.",
        edited.after.version
    );
    config_cmd::follow_edit(false, ctx, &place, &edited.before, &edited.after);
    Ok(())
}

/// `homehook key rotate <id> [--overlap <secs>]`.
pub(crate) async fn rotate(
    ctx: Context<'_>,
    id: &str,
    overlap_secs: i64,
    json: bool,
) -> Result<()> {
    let (store, place) = settings::open_store_of(ctx).await?;
    let (key, new_id, edited) = key_admin::rotate(&*store, now(), id, overlap_secs)
        .await
        .map_err(|e| failed(e, &place))?;
    show_new(&key, &new_id, json, &edited);
    if !json {
        if new_id == id {
            println!("The old {id} key stopped working now.");
        } else if overlap_secs > 0 {
            println!(
                "{id} keeps working until {}: move your shortcuts to the new key before then.",
                time(now().plus_secs(overlap_secs))
            );
        } else {
            println!("{id} is revoked.");
        }
    }
    config_cmd::follow_edit(json, ctx, &place, &edited.before, &edited.after);
    Ok(())
}
