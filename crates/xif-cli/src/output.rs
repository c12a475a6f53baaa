//! Writing to the terminal: colour decisions and error reports.

use std::io::{IsTerminal, Write};

use xif_project::ProjectError;

/// Whether to colour what goes to stderr: only on a terminal, and never when `NO_COLOR` is set.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()) && std::io::stderr().is_terminal()
}

/// Writes `text` to stderr. A closed stderr is not worth failing over, so its error is
/// deliberately dropped.
pub fn eprint(text: &str) {
    if std::io::stderr().lock().write_all(text.as_bytes()).is_err() {
        // Nowhere left to report to.
    }
}

/// Writes `text` to stdout; a closed pipe (`xif explain | head`) ends quietly.
pub fn print(text: &str) {
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        // The reader went away; nothing to do.
    }
}

/// Reports an error that kept a command from running, with its causes and a hint.
pub fn report_error(error: &anyhow::Error) {
    let mut text = format!("error: {error}\n");
    for cause in error.chain().skip(1) {
        text.push_str(&format!("  caused by: {cause}\n"));
    }
    if let Some(hint) = error.downcast_ref::<ProjectError>().and_then(ProjectError::hint) {
        text.push_str(&format!("hint: {hint}\n"));
    }
    eprint(&text);
}
