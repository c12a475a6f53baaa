//! Writing to the terminal: colour decisions, progress lines, diagnostics and error reports.

use std::io::{IsTerminal, Write};
use std::path::Path;

use serde::Serialize;
use xif_diagnostics::{Diagnostic, JsonDiagnostic, Sources, Step, count, render_human, render_json, summary};
use xif_project::{Progress, ProjectError, Verification};

use crate::commands::verify::Format;

/// Whether to colour what goes to stderr: only on a terminal, and never when `NO_COLOR` is set.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()) && std::io::stderr().is_terminal()
}

/// Writes `text` to stderr. A closed stderr is not worth failing over, so its error is
/// deliberately dropped.
pub fn eprint(text: &str) {
    std::io::stderr().lock().write_all(text.as_bytes()).ok();
}

/// Writes `text` to stdout; a closed pipe (`xif explain | head`) ends quietly.
pub fn print(text: &str) {
    std::io::stdout().lock().write_all(text.as_bytes()).ok();
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--quiet` was given.
pub fn is_quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A progress line on stderr, unless `--quiet`.
pub fn progress_line(line: &str) {
    if !is_quiet() {
        eprint(&format!("{line}\n"));
    }
}

/// Turns progress lines off, for `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// A progress line, in cargo's style: the verb right-aligned, then what it acts on.
pub fn progress(progress: Progress<'_>) {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let (verb, what) = match progress {
        Progress::Step(Step::Definition) => ("Verifying", "definition"),
        Progress::Step(Step::UpdateSource) => ("Updating", "source code"),
        Progress::Step(Step::Compile) => ("Compiling", "extension"),
        Progress::Compiling(name) => ("Compiling", name),
    };
    eprint(&format!("{verb:>12} {what}\n"));
}

/// The files the diagnostics point into, read for rendering.
pub fn sources(directory: &Path, definition: Option<&str>, diagnostics: &[Diagnostic]) -> Sources {
    xif_project::sources(directory, definition, diagnostics)
}

/// A path as the user would write it: without a leading `./`.
pub fn shown(path: &Path) -> String {
    xif_project::shown(path)
}

/// The JSON document of a verification.
#[derive(Serialize)]
struct Report<'a> {
    /// The definition file verified.
    definition: String,
    /// The extension's name and version, when the definition could be read.
    extension: Option<ExtensionId<'a>>,
    /// The compiled binary, when Compile succeeded.
    binary: Option<String>,
    /// How many diagnostics are errors.
    errors: usize,
    /// How many are warnings.
    warnings: usize,
    /// Every diagnostic, step by step.
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct ExtensionId<'a> {
    name: &'a str,
    version: String,
}

/// Writes a verification's diagnostics and closing line (human, on stderr) or its JSON document
/// (on stdout).
pub fn report(directory: &Path, verification: &Verification, format: Format) -> anyhow::Result<()> {
    let diagnostics = &verification.diagnostics;
    let sources = sources(directory, Some(&verification.loaded.source), diagnostics);
    let definition_shown = shown(&verification.loaded.path);
    match format {
        Format::Human => {
            let mut text = render_human(diagnostics, &sources, stderr_color());
            let what = match verification.definition() {
                Some(definition) => {
                    format!("`{}` {}", definition.extension.name.value, definition.extension.version.value)
                }
                None => format!("`{definition_shown}`"),
            };
            if verification.has_errors() {
                text.push_str(&format!("error: verification of {what} failed: {}\n", summary(diagnostics)));
            } else {
                text.push_str(&format!("verified {what}: {}\n", summary(diagnostics)));
            }
            eprint(&text);
        }
        Format::Json => {
            let (errors, warnings) = count(diagnostics);
            let report = Report {
                definition: definition_shown,
                extension: verification.definition().map(|definition| ExtensionId {
                    name: &definition.extension.name.value,
                    version: definition.extension.version.value.to_string(),
                }),
                binary: verification.binary.as_ref().map(|binary| binary.display().to_string()),
                errors,
                warnings,
                diagnostics: render_json(diagnostics, &sources),
            };
            print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
        }
    }
    Ok(())
}

/// `12.3 MiB`.
pub fn bytes(count: u64) -> String {
    xif_studio::bytes(count)
}

/// Reports a refused archive and gives the exit code: 2 when the file could not be read at
/// all, 1 when its content was refused.
pub fn archive_refused(error: &xif_archive::ArchiveError) -> crate::Exit {
    let hint = match error {
        xif_archive::ArchiveError::SignatureMismatch { .. } => {
            "hint: the archive was changed or written again after it was signed; sign it again with `xif save --sign KEY`\n"
        }
        _ => "",
    };
    eprint(&format!("error: {error}\n{hint}"));
    match error {
        xif_archive::ArchiveError::Io { .. } => crate::Exit::CouldNotRun,
        _ => crate::Exit::Errors,
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
