//! Writing to the terminal: colour decisions, progress lines, diagnostics and error reports.

use std::io::{IsTerminal, Write};
use std::path::Path;

use serde::Serialize;
use xif_diagnostics::{Diagnostic, JsonDiagnostic, Sources, Step, count, render_human, render_json, summary};
use xif_project::{DEFINITION_FILE, Progress, ProjectError, Verification};

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

/// The texts of the definition and of every file `diagnostics` point into, as the user would
/// name them from the current directory.
pub fn sources(directory: &Path, definition: Option<&str>, diagnostics: &[Diagnostic]) -> Sources {
    let definition_path = directory.join(DEFINITION_FILE);
    let mut sources = Sources::new(shown(&definition_path), definition.unwrap_or_default());
    for file in diagnostics.iter().filter_map(|diagnostic| diagnostic.file.as_deref()) {
        if sources.contains(Some(file)) {
            continue;
        }
        let path = if Path::new(file).is_absolute() { file.into() } else { directory.join(file) };
        // A file that cannot be read is shown by name only.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        sources.add(file, shown(&path), text);
    }
    sources
}

/// A path as the user would write it: without a leading `./`.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(".").unwrap_or(path).display().to_string()
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
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{count} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Reports a refused archive and gives the exit code: 2 when the file could not be read at
/// all, 1 when its content was refused.
pub fn archive_refused(error: &xif_archive::ArchiveError) -> crate::Exit {
    eprint(&format!(
        "error: {error}
"
    ));
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
