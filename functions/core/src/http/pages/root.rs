//! `GET /`: what this server is, how each connection is doing, and what to do next. Anyone
//! who reaches the server can read it, so without the admin key it shows counts and next steps
//! only; with it (`/?key=<admin key>`), each connection's name and health in words. Never a
//! key, token, URL query or vendor message.

use axum::http::StatusCode;
use axum::response::Response;

use super::{code, duration_in_words, escape, respond};
use crate::app::App;
use crate::catalog::Grant;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, Current, OwnHost};
use crate::status::{ConnectionStatus, report};

/// `GET /`: only under this server's own name ([`OwnHost`]), even without a key, as a page
/// another site reads through DNS rebinding would learn what the server serves.
pub async fn root(
    _own: OwnHost,
    Current(app): Current,
    owner: Result<Admin, ApiError>,
) -> Response {
    let main = if app.services.config.connections.is_empty() {
        first_steps(&app)
    } else {
        // Which accounts exist and which need their owner is the owner's business.
        overview(&app, owner.is_ok()).await
    };
    let title = "homehook";
    respond(StatusCode::OK, title, &main)
}

/// The config file's name, never its folder: this page is public, and an absolute path tells a
/// visitor the user name and layout of the machine (the console prints the whole path).
fn config_file(app: &App) -> String {
    app.services
        .config
        .source
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "homehook.toml".into())
}

fn has_admin_key(app: &App) -> bool {
    app.services.config.server.admin_key_hash.is_some() || app.admin_key_from_secrets
}

/// Nothing configured yet: the setup, step by step.
fn first_steps(app: &App) -> String {
    let config = &app.services.config;
    format!(
        r#"<h1>homehook is running</h1>
<p class="lead">No connections are configured yet. This server answers at {public_url}.</p>
<h2>Next steps</h2>
<ol>
<li>Run {init} (for example {init_example}): it writes {file} for your vendors with an admin key, and a secrets file to fill. By hand instead: copy {example} and make keys with {key_new}.</li>
<li>Put each vendor's client id and secret in a secrets file (<code>chmod 600</code>) named by {secrets_file}.</li>
<li>Register {callback} as the redirect URI of each vendor app.</li>
<li>Restart {serve}, then open {connect} in a browser.</li>
</ol>
<footer class="muted">This page lists nothing secret. Details: {status} and {actions_cmd}.</footer>"#,
        public_url = code(&config.base_url()),
        init = code("homehook init"),
        init_example = code("homehook init --vendors netatmo,somfy_protect"),
        key_new = code("homehook key new"),
        example = code("homehook.example.toml"),
        file = code(&config_file(app)),
        secrets_file = code("server.secrets_file"),
        callback = code(&config.callback_url("<provider>")),
        serve = code("homehook serve"),
        connect = code(&format!(
            "{}/connect/<connection>?key=<admin key>",
            config.base_url()
        )),
        status = code("homehook status"),
        actions_cmd = code("homehook actions"),
    )
}

/// Connections configured: counts, each connection's health (for the owner), next steps.
async fn overview(app: &App, owner: bool) -> String {
    let config = &app.services.config;
    let connections = config.connections.len();
    let actions = config.actions.len();
    let cards = if !owner {
        format!(
            "<p>Each connection's health shows here with the admin key: open {}, or run {}.</p>",
            code(&format!("{}/?key=<admin key>", config.base_url())),
            code("homehook status"),
        )
    } else {
        match report(&app.services).await {
            Ok(report) => {
                let cards: String = report
                    .connections
                    .iter()
                    .map(|c| connection_card(app, c))
                    .collect();
                format!("<ul class=\"cards\">\n{cards}</ul>")
            }
            Err(_) => "<p class=\"bad\">The store cannot be read right now, so the connections' \
                   health is unknown. Reload in a minute; the console says more.</p>"
                .to_string(),
        }
    };
    let mut next = Vec::new();
    if !has_admin_key(app) {
        next.push(format!(
            "Connect links need an admin key: run {}, put the hash in {} as {}, and restart.",
            code("homehook key new"),
            code(&config_file(app)),
            code("server.admin_key_hash"),
        ));
    }
    if actions == 0 {
        next.push(format!(
            "No actions yet: {} lists the ids an action needs; add actions to {}.",
            code("homehook discover <connection>"),
            code(&config_file(app)),
        ));
    } else {
        next.push(format!("Action URLs: {}.", code("homehook actions")));
    }
    next.push(format!(
        "Health, reasons and token times: {}, or {} with the admin key.",
        code("homehook status"),
        code("/status"),
    ));
    let next: String = next.iter().map(|s| format!("<li>{s}</li>\n")).collect();
    format!(
        r#"<h1>homehook is running</h1>
<p class="lead">{connections} connection{cs} and {actions} action{as_} at {public_url}.</p>
<h2>Connections</h2>
{cards}
<h2>Next steps</h2>
<ul>
{next}</ul>
<footer class="muted">Configured in {file}. This page lists nothing secret.</footer>"#,
        cs = plural(connections),
        as_ = plural(actions),
        public_url = code(&config.base_url()),
        file = code(&config_file(app)),
    )
}

/// One connection: its name, vendor, health in words and what to do about it.
fn connection_card(app: &App, c: &ConnectionStatus) -> String {
    let conn = app.services.config.connections.get(&c.id);
    let provider = conn
        .and_then(|conn| app.services.config.provider_of(conn))
        .map_or(c.provider.as_str(), |p| p.display_name.as_str());
    let provider_html = escape(provider);
    let password_grant = conn.is_some_and(|conn| conn.grant == Grant::Password);
    let connect_link = || {
        code(&format!(
            "{}?key=<admin key>",
            c.reconnect_url.clone().unwrap_or_else(|| format!(
                "{}/connect/{}",
                app.services.config.base_url(),
                c.id
            ))
        ))
    };
    let (class, state, detail) = match c.health.as_str() {
        "healthy" => (
            "ok",
            "Connected",
            match c.expires_in_secs {
                Some(secs) if secs > 0 => format!(
                    "Access token good for {}; renewed by itself.",
                    duration_in_words(secs)
                ),
                Some(_) => {
                    "Access token ran out; renewed by itself on the next tick or call.".to_string()
                }
                None => "Access token does not expire.".to_string(),
            },
        ),
        "not_connected" if password_grant => (
            "warn",
            "Not connected yet",
            "Connects by itself on first use.".to_string(),
        ),
        "not_connected" => (
            "warn",
            "Not connected yet",
            format!("Connect: open {}.", connect_link()),
        ),
        "reauth_needed" => (
            "bad",
            "Needs you to connect again",
            format!(
                "{provider_html} no longer accepts homehook's access. Open {}.",
                connect_link()
            ),
        ),
        "degraded" => (
            "warn",
            "Renewal failing for now",
            "homehook tries again by itself; actions keep working while the token lasts."
                .to_string(),
        ),
        "misconfigured" => (
            "bad",
            "Settings need fixing",
            format!(
                "{provider_html} refused homehook's settings; {} names the one to fix.",
                code("homehook status")
            ),
        ),
        other => ("warn", other, String::new()),
    };
    format!(
        "<li><span class=\"name\">{label}</span> <span class=\"muted\">{provider} · {id}</span>\n\
         <p><span class=\"state {class}\">{state}.</span> {detail}</p></li>\n",
        label = escape(&c.label),
        provider = provider_html,
        id = code(&c.id),
        state = escape(state),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
