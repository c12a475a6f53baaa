//! Update Source Code on disk: `src/bindings.rs` written from the definition, stubs added to
//! `src/main.rs`, a hand-edited bindings file kept as a backup.

use std::path::{Path, PathBuf};

use xif_bindgen::StubOutcome;
use xif_definition::Definition;
use xif_diagnostics::{Code, Diagnostic};

use crate::ProjectError;

/// The generated file, relative to the project.
pub const BINDINGS_FILE: &str = "src/bindings.rs";
/// The author's file, relative to the project.
pub const MAIN_FILE: &str = "src/main.rs";

/// What Update Source Code did.
#[derive(Debug, Default)]
pub struct SourceUpdate {
    /// Whether `src/bindings.rs` was (re)written.
    pub bindings_written: bool,
    /// Where a hand-edited bindings file was saved, if one was.
    pub backup: Option<PathBuf>,
    /// The actions that got a stub in `src/main.rs`.
    pub stubs: Vec<String>,
    /// Warnings about the source.
    pub diagnostics: Vec<Diagnostic>,
}

/// Brings the source of the project in `directory` in line with `definition`.
pub fn update_source(directory: &Path, definition: &Definition) -> Result<SourceUpdate, ProjectError> {
    let mut update = SourceUpdate::default();
    let bindings_path = directory.join(BINDINGS_FILE);
    let generated = xif_bindgen::generate(definition);
    let existing = match fs_err::read_to_string(&bindings_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    if existing.as_deref() != Some(generated.as_str()) {
        if let Some(existing) = existing.as_deref().filter(|text| xif_bindgen::is_hand_edited(text)) {
            let backup = free_backup_path(&bindings_path);
            write_atomically(&backup, existing)?;
            let shown = backup.strip_prefix(directory).unwrap_or(&backup).display().to_string();
            update.diagnostics.push(
                Diagnostic::new(
                    Code::GeneratedFileEdited,
                    format!("`{BINDINGS_FILE}` was edited by hand; it was saved as `{shown}` and written again"),
                )
                .in_file(BINDINGS_FILE)
                .help("put your code in `src/main.rs`, and change `extension.toml` to change the bindings"),
            );
            update.backup = Some(backup);
        }
        if let Some(parent) = bindings_path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        write_atomically(&bindings_path, &generated)?;
        update.bindings_written = true;
    }

    let main_path = directory.join(MAIN_FILE);
    let author = match fs_err::read_to_string(&main_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    match author.as_deref().map(|author| xif_bindgen::insert_stubs(definition, author)) {
        Some(StubOutcome::Added { actions, source }) => {
            write_atomically(&main_path, &source)?;
            update.stubs = actions;
        }
        Some(StubOutcome::NoImplementation) | None => {
            if !definition.actions.is_empty() {
                update.diagnostics.push(
                    Diagnostic::new(
                        Code::NoImplementation,
                        format!("no `impl bindings::Extension for …` in `{MAIN_FILE}`, so no stubs were added"),
                    )
                    .in_file(MAIN_FILE)
                    .help("implement the `Extension` trait of `src/bindings.rs` in `src/main.rs`"),
                );
            }
        }
        // The compiler reports a source that does not parse, with its line.
        Some(StubOutcome::Complete | StubOutcome::Unparsable) => {}
    }
    Ok(update)
}

/// `src/bindings.rs.bak`, or the first of `.bak.1`, `.bak.2`, … that does not exist, so that an
/// earlier backup is never overwritten.
fn free_backup_path(path: &Path) -> PathBuf {
    let base = path.with_extension("rs.bak");
    if !base.exists() {
        return base;
    }
    (1..)
        .map(|number| path.with_extension(format!("rs.bak.{number}")))
        .find(|candidate| !candidate.exists())
        .unwrap_or(base)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so that
/// an interrupted write leaves the old file whole.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), ProjectError> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(directory).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot create a temporary file in `{}`: {error}", directory.display()),
        )
    })?;
    fs_err::write(temporary.path(), text)?;
    temporary.persist(path).map_err(|error| {
        std::io::Error::new(error.error.kind(), format!("cannot write `{}`: {}", path.display(), error.error))
    })?;
    Ok(())
}
