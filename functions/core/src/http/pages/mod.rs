//! Small HTML pages for people: the root page of `homehook serve` and the connect results.
//! Plain HTML and one inline style sheet, readable on a phone and in dark mode; no script, no
//! external resource, and a Content-Security-Policy that would block both.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

mod connect;
mod root;
mod words;

pub use connect::{Connected, NotConnected, connected_page, not_connected_page};
pub use root::root;
pub use words::duration_in_words;

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

/// `<code>` around escaped text.
fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// The one style sheet. Colours come from variables so dark mode only swaps the palette.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1d2327;--muted:#5b636a;--bg:#fff;--card:#f4f6f8;\
--line:#d5dbe0;--code:#eaeef2;--ok:#176b2c;--bad:#a4262c;--warn:#7a4f00}\
@media (prefers-color-scheme:dark){:root{--fg:#e7e9eb;--muted:#a8b0b7;--bg:#14171a;\
--card:#1e2327;--line:#363d44;--code:#2a3036;--ok:#72d08e;--bad:#ff9096;--warn:#f2c45a}}\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\
body{margin:0;background:var(--bg);color:var(--fg);\
font:17px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Liberation Sans\",sans-serif}\
main{max-width:36rem;margin:0 auto;padding:1.5rem 1rem 2.5rem}\
h1{font-size:1.6rem;line-height:1.25;margin:.25rem 0 1rem}\
h2{font-size:1.1rem;margin:1.75rem 0 .5rem}\
p,li{overflow-wrap:anywhere}\
ol,ul{padding-left:1.4rem}li{margin:.4rem 0}\
code{font:.88em/1.4 ui-monospace,\"SF Mono\",Menlo,\"DejaVu Sans Mono\",monospace;\
background:var(--code);padding:.1em .35em;border-radius:4px;overflow-wrap:anywhere}\
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}\
.lead{font-size:1.1rem}.muted{color:var(--muted);font-size:.92rem}\
ul.cards{list-style:none;padding:0}\
.cards li{background:var(--card);border:1px solid var(--line);border-radius:10px;\
padding:.7rem .9rem;margin:.6rem 0}\
.cards .name{font-weight:600}.cards .state{font-weight:600}\
.cards p{margin:.25rem 0 0}\
footer{margin-top:2rem;border-top:1px solid var(--line);padding-top:.75rem}";

/// The Content-Security-Policy of every page: nothing may load or run; the one style sheet is
/// allowed by its hash (not `'unsafe-inline'`, so injected markup could not style the page
/// either); no forms, no frames, no base URL.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// A whole page titled `title` around `main` (already HTML).
fn layout(title: &str, main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{STYLE}</style></head>
<body><main>
{main}
</main></body></html>
"#,
        title = escape(title)
    )
}

/// A page as an answer: HTML with the page headers. Pages are never cached (they show live
/// state, and a callback URL carries a code), never framed, and send no `Referer` onwards (the
/// callback URL's query holds the authorization code and state).
pub fn respond(status: StatusCode, title: &str, main: &str) -> Response {
    let mut response = (status, layout(title, main)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_page_style() {
        let page = layout("t", "<p>x</p>");
        let css = page
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(css, _)| css)
            .unwrap_or_default();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css));
        assert!(
            CONTENT_SECURITY_POLICY.contains(&format!("'sha256-{hash}'")),
            "{}",
            *CONTENT_SECURITY_POLICY
        );
        assert!(!page.contains("<script"));
    }
}
