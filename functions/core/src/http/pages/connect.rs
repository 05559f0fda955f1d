//! The pages a browser lands on at the end of a connect flow: connected, or not and why, with
//! the next step either way.

use axum::http::StatusCode;
use axum::response::Response;

use super::{code, duration_in_words, escape, respond};
use crate::http::ApiError;

/// What the "connected" page says.
#[derive(Debug)]
pub struct Connected<'a> {
    /// The connection's id, as in homehook.toml.
    pub connection: &'a str,
    /// The connection's label.
    pub label: &'a str,
    /// The vendor's name.
    pub provider: &'a str,
    /// Seconds the new access token is good for, if it expires.
    pub expires_in_secs: Option<i64>,
    /// How many configured actions use this connection.
    pub actions: usize,
    /// The CLI command for this host (`homehook`, `homehook --target <stack>`).
    pub command: &'a str,
}

/// The page after a connection was made.
pub fn connected_page(c: &Connected<'_>) -> Response {
    let label = escape(c.label);
    let provider = escape(c.provider);
    let token = match c.expires_in_secs {
        Some(secs) if secs > 0 => format!(
            "Its access token is good for {}; homehook renews it by itself before then, so \
             {label} stays connected until access is withdrawn at {provider}.",
            duration_in_words(secs)
        ),
        Some(_) => {
            "Its access token has already run out; homehook renews it by itself on first use."
                .to_string()
        }
        None => "Its access token does not expire.".to_string(),
    };
    let actions = match c.actions {
        0 => format!(
            "No action uses {label} yet: {} lists the ids an action needs; add the action to \
             homehook.toml, then {} prints its URL.",
            code(&format!("{} discover {}", c.command, c.connection)),
            code(&format!("{} actions", c.command)),
        ),
        n => format!(
            "Your action URLs: run {} ({n} action{} use{} {label}).",
            code(&format!("{} actions", c.command)),
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
        ),
    };
    let main = format!(
        r#"<h1 class="ok"><span aria-hidden="true">✓</span> Connected {label}</h1>
<p class="lead">homehook can now reach {provider} for {label}.</p>
<p>{token}</p>
<h2>What next</h2>
<ul>
<li><strong>You can close this page.</strong></li>
<li>{actions}</li>
<li>Health at any time: {status}.</li>
</ul>"#,
        status = code(&format!("{} status", c.command)),
    );
    respond(
        StatusCode::OK,
        &format!("Connected {} · homehook", c.label),
        &main,
    )
}

/// What the "not connected" page says.
#[derive(Debug)]
pub struct NotConnected<'a> {
    /// What went wrong (its message is the page's lead).
    pub error: &'a ApiError,
    /// The connect link to open again, without the key (`https://…/connect/home`); with
    /// `<connection>` in place of the id when the callback did not tell which connection.
    pub connect_url: &'a str,
    /// The vendor's name, when known.
    pub provider: Option<&'a str>,
    /// How long a connect link lasts.
    pub link_lifetime_secs: i64,
    /// The CLI command for this host (`homehook`, `homehook --target <stack>`).
    pub command: &'a str,
}

/// The page after a connect flow failed: what went wrong in plain words and how to try again.
pub fn not_connected_page(n: &NotConnected<'_>) -> Response {
    let mut steps = Vec::new();
    match n.error.code {
        "misconfigured" => steps.push(
            "Fix the setting named above (in homehook.toml, then publish it with `config push`; or in the secrets)."
                .to_string(),
        ),
        "vendor_busy" | "vendor_unavailable" | "store_unavailable" => steps.push(format!(
            "Wait {} first.",
            n.error
                .retry_after_secs
                .map_or("a minute".to_string(), |s| duration_in_words(
                    i64::try_from(s).unwrap_or(i64::MAX)
                ))
        )),
        _ => {}
    }
    let placeholder = n.connect_url.contains("<connection>");
    steps.push(format!(
        "Open the connect link again, with your admin key in place of {}:<br>{}{}",
        code("<admin key>"),
        code(&format!("{}?key=<admin key>", n.connect_url)),
        if placeholder {
            format!(
                " ({} lists your connections).",
                code(&format!("{} status", n.command))
            )
        } else {
            String::new()
        }
    ));
    let vendor = n.provider.map_or("the vendor".to_string(), escape);
    steps.push(format!(
        "Sign in at {vendor} and choose Allow, within {} of opening the link; you come back to \
         a page that says Connected.",
        duration_in_words(n.link_lifetime_secs)
    ));
    let steps: String = steps.iter().map(|s| format!("<li>{s}</li>\n")).collect();
    let main = format!(
        r#"<h1 class="bad"><span aria-hidden="true">✗</span> Not connected</h1>
<p class="lead">{message}</p>
<h2>How to try again</h2>
<ol>
{steps}</ol>
<footer class="muted">Error code {error_code}, HTTP {status}.</footer>"#,
        message = escape(&n.error.message),
        error_code = code(n.error.code),
        status = n.error.status.as_u16(),
    );
    respond(n.error.status, "Not connected · homehook", &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(response: Response) -> String {
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn the_connected_page_gives_the_commands_of_its_host() {
        for (command, shown) in [
            ("homehook", "homehook discover home"),
            (
                "homehook --target homehook",
                "homehook --target homehook discover home",
            ),
        ] {
            let page = text(connected_page(&Connected {
                connection: "home",
                label: "Home",
                provider: "Netatmo",
                expires_in_secs: Some(10_800),
                actions: 0,
                command,
            }))
            .await;
            assert!(page.contains(&format!("<code>{shown}</code>")), "{page}");
            assert!(
                page.contains(&format!("<code>{command} status</code>")),
                "{page}"
            );
        }
    }
}
