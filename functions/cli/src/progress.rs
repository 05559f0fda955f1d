//! A spinner with the elapsed time on standard error, while something waits (the owner's
//! consent, a vendor's answer). Drawn only when standard error is a terminal, so scripts and
//! logs get clean output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Starts a spinner saying `message`; it disappears when dropped or [`Spinner::finish`]ed.
pub(crate) struct Spinner(ProgressBar);

impl Spinner {
    /// Shows `message` with a spinner and the time elapsed (nothing when stderr is not a TTY).
    pub(crate) fn start(message: impl Into<String>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }

    /// Changes the message.
    pub(crate) fn set(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }

    /// Removes the spinner from the terminal.
    pub(crate) fn finish(self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
