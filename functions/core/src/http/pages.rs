//! Small HTML pages for people: the root page of `homehook serve` and connect results. Plain
//! HTML and inline CSS, readable on a phone, no script.

use axum::extract::State;
use axum::response::Html;

use super::AppState;

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · homehook</title>
<style>
body {{ font: 17px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #1d2327; }}
h1 {{ font-size: 1.5rem; }} code {{ background: #f1f3f5; padding: .1em .3em; border-radius: 4px; }}
.ok {{ color: #176b2c; }} .bad {{ color: #a4262c; }} li {{ margin: .3rem 0; }}
</style></head>
<body>
{body}
</body></html>
"#,
        title = escape(title)
    )
}

/// A connect result page.
pub fn result_page(ok: bool, title: &str, message: &str) -> String {
    let class = if ok { "ok" } else { "bad" };
    page(
        title,
        &format!(
            r#"<h1 class="{class}">{}</h1><p>{}</p>"#,
            escape(title),
            escape(message)
        ),
    )
}

/// `GET /`: what this server is and what to do next. Lists nothing secret.
pub async fn root(State(app): State<AppState>) -> Html<String> {
    let config = &app.config;
    let file = config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "homehook.toml".into());
    let body = if config.connections.is_empty() {
        format!(
            r#"<h1>homehook is running</h1>
<p>No connections are configured yet. Next steps:</p>
<ol>
<li>Copy <code>homehook.example.toml</code> to <code>{file}</code> and keep the connections you need.</li>
<li>Put each vendor's client id and secret in a secrets file (<code>chmod 600</code>) named by <code>server.secrets_file</code>.</li>
<li>Run <code>homehook key new</code> for the admin key and for each action; put the printed hashes in the config.</li>
<li>Restart <code>homehook serve</code>, then open <code>/connect/&lt;connection&gt;?key=&lt;admin key&gt;</code>.</li>
</ol>
<p>Register <code>{callback}</code> as the redirect URI with each vendor (one per provider).</p>"#,
            file = escape(&file),
            callback = escape(&config.callback_url("<provider>")),
        )
    } else {
        format!(
            r#"<h1>homehook is running</h1>
<p>{} connection(s) and {} action(s) are configured in <code>{}</code>.</p>
<p>Connection health: <code>homehook status</code>, or <code>/status</code> with the admin key. Action URLs: <code>homehook actions</code>.</p>"#,
            config.connections.len(),
            config.actions.len(),
            escape(&file)
        )
    };
    Html(page("Start", &body))
}
