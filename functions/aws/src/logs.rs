//! Logs in a Lambda container, as Lambda's advanced logging controls ask for them: JSON lines
//! when `AWS_LAMBDA_LOG_FORMAT` is `JSON` (template.yaml sets it), the level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`.
//!
//! This is what `lambda_runtime`'s `init_default_subscriber` does, with one difference that
//! keeps ~250 KB out of every bootstrap: the level is read with `tracing_subscriber`'s
//! [`Targets`] (`info`, `homehook_core=debug,warn`) instead of `EnvFilter`, whose regular
//! expressions (span-field matching) homehook never needs. Each invocation's lines still carry
//! the runtime's `requestId` span.
//!
//! The functions' release builds compile out events below INFO (`release_max_level_info` in
//! their Cargo.toml): homehook has none, and the AWS SDK's, hyper's and reqwest's would have
//! filled the bootstrap. So DEBUG and TRACE print what INFO prints; WARN and ERROR are quieter.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber for this process. Call once, first thing in `main`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let (filter, unread) = filter(&level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    // Lambda timestamps every line itself; colours would reach CloudWatch as escape codes.
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    if json {
        registry.with(lines.json()).init();
    } else {
        registry.with(lines).init();
    }
    if unread {
        tracing::warn!(level = %level, "log level not understood: logging at INFO");
    }
}

/// The filter a level setting asks for, and whether the setting could not be read (then
/// `INFO`). Lambda's `FATAL` has no tracing level of its own: it means errors only.
fn filter(setting: &str) -> (Targets, bool) {
    let setting = setting.trim();
    if setting.is_empty() {
        return (Targets::new().with_default(LevelFilter::INFO), false);
    }
    if setting.eq_ignore_ascii_case("fatal") {
        return (Targets::new().with_default(LevelFilter::ERROR), false);
    }
    match setting.parse::<Targets>() {
        Ok(targets) => (targets, false),
        Err(_) => (Targets::new().with_default(LevelFilter::INFO), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(setting: &str, target: &str, level: Level) -> bool {
        filter(setting).0.would_enable(target, &level)
    }

    #[test]
    fn the_level_reads_as_lambda_and_rust_log_write_it() {
        // No setting: INFO, as Lambda's default.
        assert!(enabled("", "homehook_core", Level::INFO));
        assert!(!enabled("", "homehook_core", Level::DEBUG));
        // Lambda's values are upper case.
        assert!(enabled("DEBUG", "homehook_core::refresh", Level::DEBUG));
        assert!(!enabled("WARN", "homehook_core", Level::INFO));
        assert!(enabled("FATAL", "homehook_core", Level::ERROR));
        assert!(!enabled("FATAL", "homehook_core", Level::WARN));
        // RUST_LOG's per-target directives.
        assert!(enabled(
            "homehook_core=debug,warn",
            "homehook_core::gate",
            Level::DEBUG
        ));
        assert!(!enabled(
            "homehook_core=debug,warn",
            "aws_smithy_runtime",
            Level::INFO
        ));
    }

    #[test]
    fn a_setting_that_cannot_be_read_logs_at_info_and_says_so() {
        let (targets, unread) = filter("homehook_core=loud");
        assert!(unread);
        assert!(targets.would_enable("homehook_core", &Level::INFO));
        assert!(!targets.would_enable("homehook_core", &Level::DEBUG));
        assert!(!filter("info").1);
    }
}
