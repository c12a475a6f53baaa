//! The extension project on disk: finding and reading `extension.toml`, looking up the files it
//! names, verifying it, and scaffolding a new project with `xif new`.
//!
//! This is the IO boundary of the definition and verify crates, which do none: everything they
//! need from the file system is read here and handed to them.

mod save;
mod source;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use save::{Packed, SaveOptions, Saved, pack, save, signature_path};
pub use source::{BINDINGS_FILE, MAIN_FILE, SourceUpdate, update_source};
pub use xif_archive::ArchiveError;
pub use xif_build::BuildOptions;
pub use xif_diagnostics::Step;

use xif_definition::{Definition, MAX_DEFINITION_BYTES};
use xif_diagnostics::{Code, Diagnostic, Span};
use xif_verify::{Context, FileFact};

/// The definition's file name inside a project.
pub const DEFINITION_FILE: &str = "extension.toml";

/// Why a project could not be read or written at all (as opposed to diagnostics about its
/// content).
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The project directory does not exist.
    #[error("project directory `{path}` does not exist")]
    DirectoryNotFound {
        /// The directory.
        path: PathBuf,
    },
    /// There is no definition in the project directory.
    #[error("no `{DEFINITION_FILE}` in `{directory}`")]
    DefinitionNotFound {
        /// The project directory.
        directory: PathBuf,
    },
    /// `xif new` was given a name that is not an element name.
    #[error("`{name}` is not a valid extension name: it {problem}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `xif new` would overwrite something.
    #[error("`{path}` already exists and is not empty")]
    DirectoryNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A file system operation failed; the error names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Writing, reading or signing an archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The Rust toolchain could not say what it is.
    #[error("cannot ask `{program}` for its version: {detail}")]
    Toolchain {
        /// The program run.
        program: String,
        /// What went wrong.
        detail: String,
    },
}

impl ProjectError {
    /// How to fix it, where that is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProjectError::DirectoryNotFound { .. } | ProjectError::DefinitionNotFound { .. } => Some(
                "run `xif new NAME` to create a project, or pass `--path` with the directory that holds `extension.toml`"
                    .into(),
            ),
            ProjectError::InvalidName { .. } => {
                Some("names use letters, digits and `_`, start with a letter, and have at most 50 characters".into())
            }
            ProjectError::DirectoryNotEmpty { .. } => {
                Some("choose another name, or another directory with `--path`".into())
            }
            ProjectError::Io(_) | ProjectError::Archive(_) => None,
            ProjectError::Toolchain { .. } => Some("install Rust from https://rustup.rs, or set `RUSTC`".into()),
        }
    }
}

/// The definition as read from disk: its text (for rendering diagnostics) and, when it is
/// well-formed, its model.
#[derive(Debug)]
pub struct LoadedDefinition {
    /// The path of `extension.toml`.
    pub path: PathBuf,
    /// Its text; invalid UTF-8 is replaced so that diagnostics can still show it.
    pub source: String,
    /// The model, or every problem that kept it from being read.
    pub definition: Result<Definition, Vec<Diagnostic>>,
}

/// Reads and parses the definition of the project in `directory`.
pub fn load_definition(directory: &Path) -> Result<LoadedDefinition, ProjectError> {
    if !directory.is_dir() {
        return Err(ProjectError::DirectoryNotFound { path: directory.to_owned() });
    }
    let path = directory.join(DEFINITION_FILE);
    let file = match fs_err::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProjectError::DefinitionNotFound { directory: directory.to_owned() });
        }
        Err(error) => return Err(error.into()),
    };
    let size = file.metadata()?.len();
    if size > MAX_DEFINITION_BYTES as u64 {
        let diagnostic = Diagnostic::new(
            Code::DefinitionTooLarge,
            format!("the definition is {size} bytes, over the limit of 16 MiB ({MAX_DEFINITION_BYTES} bytes)"),
        )
        .help("check that this is the extension's definition and not another file");
        return Ok(LoadedDefinition { path, source: String::new(), definition: Err(vec![diagnostic]) });
    }
    // Read at most one byte past the limit, in case the file grows while it is read.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_DEFINITION_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    let (source, definition) = match String::from_utf8(bytes) {
        Ok(source) => {
            let definition = xif_definition::parse(&source);
            (source, definition)
        }
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let bad = error.as_bytes()[offset];
            let source = String::from_utf8_lossy(error.as_bytes()).into_owned();
            // The text before `offset` is unchanged by the lossy conversion, and the bad byte
            // became U+FFFD, three bytes long.
            let diagnostic = Diagnostic::new(
                Code::InvalidUtf8,
                format!("the definition is not valid UTF-8: byte 0x{bad:02X} at offset {offset}"),
            )
            .at(Span::new(offset, offset + '\u{FFFD}'.len_utf8()))
            .label("not UTF-8")
            .help("save the file as UTF-8");
            (source, Err(vec![diagnostic]))
        }
    };
    Ok(LoadedDefinition { path, source, definition })
}

/// The outcome of verifying a project.
#[derive(Debug)]
pub struct Verification {
    /// The definition as read.
    pub loaded: LoadedDefinition,
    /// Every diagnostic, step by step; within the definition step, sorted by where they point.
    pub diagnostics: Vec<Diagnostic>,
    /// What Update Source Code did, when it ran.
    pub source: Option<SourceUpdate>,
    /// The compiled extension, when Compile ran and succeeded.
    pub binary: Option<PathBuf>,
    /// How many crates Compile built (0 when everything was up to date).
    pub compiled: usize,
}

impl Verification {
    /// The definition, when it could be read.
    pub fn definition(&self) -> Option<&Definition> {
        self.loaded.definition.as_ref().ok()
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Options of a verification beyond the project itself.
#[derive(Debug, Default, Clone)]
pub struct VerifyOptions<'a> {
    /// The version now published, to report breaking changes against.
    pub published: Option<&'a Definition>,
    /// The publishing account's permissions, when known.
    pub permissions: Option<xif_verify::Permissions>,
    /// Modules that use the extension, to report the impact of the change on.
    pub consumers: Vec<xif_verify::Consumer<'a>>,
    /// Stop after the definition: no source update, no compile.
    pub definition_only: bool,
    /// How Compile runs.
    pub build: BuildOptions,
}

/// What a verification is doing, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A step started.
    Step(Step),
    /// Compile is building this crate.
    Compiling(&'a str),
}

/// Verifies the project in `directory`: the definition, then Update Source Code, then Compile,
/// stopping after the first step that reports an error.
pub fn verify_project(
    directory: &Path,
    options: &VerifyOptions<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Verification, ProjectError> {
    progress(Progress::Step(Step::Definition));
    let mut verification = verify_definition(directory, options)?;
    if options.definition_only || verification.has_errors() {
        return Ok(verification);
    }
    let Ok(definition) = &verification.loaded.definition else { return Ok(verification) };
    progress(Progress::Step(Step::UpdateSource));
    let update = update_source(directory, definition)?;
    verification.diagnostics.extend(update.diagnostics.iter().cloned());
    verification.source = Some(update);
    if verification.has_errors() {
        return Ok(verification);
    }
    progress(Progress::Step(Step::Compile));
    let build = xif_build::compile(directory, &options.build, &mut |name| progress(Progress::Compiling(name)));
    verification.diagnostics.extend(build.diagnostics);
    verification.binary = build.binary;
    verification.compiled = build.compiled;
    Ok(verification)
}

/// Reads the definition of the project in `directory`, looks up the files it names, and runs
/// the verification catalogue on it.
pub fn verify_definition(directory: &Path, options: &VerifyOptions<'_>) -> Result<Verification, ProjectError> {
    let loaded = load_definition(directory)?;
    let diagnostics = match &loaded.definition {
        Err(diagnostics) => diagnostics.clone(),
        Ok(definition) => {
            let context = Context {
                files: file_facts(directory, definition),
                published: options.published,
                permissions: options.permissions,
                consumers: options.consumers.clone(),
            };
            xif_verify::verify(definition, &context)
        }
    };
    Ok(Verification { loaded, diagnostics, source: None, binary: None, compiled: 0 })
}

/// What is on disk for each file the definition names. Only paths that stay inside the project
/// are looked up; the verifier reports the others.
pub fn file_facts(directory: &Path, definition: &Definition) -> std::collections::BTreeMap<String, FileFact> {
    xif_verify::referenced_files(definition)
        .map(|relative| {
            let fact = match std::fs::metadata(directory.join(relative)) {
                Ok(metadata) if metadata.is_dir() => FileFact::Directory,
                Ok(metadata) => FileFact::File { size: metadata.len() },
                Err(_) => FileFact::Missing,
            };
            (relative.to_owned(), fact)
        })
        .collect()
}

/// Writes a new project for extension `name` into `directory` (created if missing, refused if
/// not empty): a definition with one sample action, a structure and a resources folder, a
/// `Cargo.toml`, the generated bindings and an implemented `src/main.rs`. It verifies and
/// compiles as it is.
pub fn create_project(name: &str, directory: &Path) -> Result<(), ProjectError> {
    if let Some((_, problem, _)) = xif_verify::name_problem(name, xif_verify::NameKind::Type, xif_verify::MAX_NAME) {
        return Err(ProjectError::InvalidName { name: name.to_owned(), problem });
    }
    if directory.exists() && (!directory.is_dir() || fs_err::read_dir(directory)?.next().is_some()) {
        return Err(ProjectError::DirectoryNotEmpty { path: directory.to_owned() });
    }
    fs_err::create_dir_all(directory.join("resources"))?;
    fs_err::create_dir_all(directory.join("src"))?;
    let fill = |template: &str| {
        template
            .replace("__NAME__", name)
            .replace("__CRATE__", &xif_bindgen::snake_case(name))
            .replace("__SDK__", &sdk_dependency())
    };
    fs_err::write(directory.join(DEFINITION_FILE), fill(include_str!("../templates/extension.toml")))?;
    fs_err::write(directory.join("resources/greetings.txt"), include_str!("../templates/greetings.txt"))?;
    fs_err::write(directory.join("Cargo.toml"), fill(include_str!("../templates/Cargo.toml")))?;
    fs_err::write(directory.join(MAIN_FILE), fill(include_str!("../templates/main.rs")))?;
    // Build output, archives, signatures and signing keys stay out of version control and, as
    // ignored files, out of the archive.
    fs_err::write(directory.join(".gitignore"), "/target\n*.xif\n*.minisig\n*.key\n")?;
    let loaded = load_definition(directory)?;
    if let Ok(definition) = &loaded.definition {
        update_source(directory, definition)?;
    }
    Ok(())
}

/// How a new project depends on `xif-sdk`: the path in `XIF_SDK_PATH`, else the SDK of the
/// xif source tree this binary was built from, else the published crate.
fn sdk_dependency() -> String {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xif-sdk");
    let path = std::env::var_os("XIF_SDK_PATH").map(PathBuf::from).or_else(|| built_from.canonicalize().ok());
    match path {
        Some(path) => format!("{{ path = {:?} }}", path.display().to_string()),
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// The files `diagnostics` point into, read for rendering: the definition (its text as
/// verified, when given) and each other file they name, relative to `directory`. A file that
/// cannot be read is shown by name only.
pub fn sources(directory: &Path, definition: Option<&str>, diagnostics: &[Diagnostic]) -> xif_diagnostics::Sources {
    let definition_path = directory.join(DEFINITION_FILE);
    let mut sources = xif_diagnostics::Sources::new(shown(&definition_path), definition.unwrap_or_default());
    for file in diagnostics.iter().filter_map(|diagnostic| diagnostic.file.as_deref()) {
        if sources.contains(Some(file)) {
            continue;
        }
        let path = if Path::new(file).is_absolute() { file.into() } else { directory.join(file) };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        sources.add(file, shown(&path), text);
    }
    sources
}

/// A path as the user would write it: without a leading `./`.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(".").unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_project_verifies_without_diagnostics() {
        let temporary = tempfile::tempdir().expect("temporary directory");
        let directory = temporary.path().join("Greeter");
        create_project("Greeter", &directory).expect("project created");
        let verification = verify_definition(&directory, &VerifyOptions::default()).expect("verified");
        assert_eq!(verification.diagnostics, Vec::new());
        let bindings = std::fs::read_to_string(directory.join(BINDINGS_FILE)).expect("bindings written");
        assert!(!xif_bindgen::is_hand_edited(&bindings));
        assert_eq!(verification.definition().map(|definition| definition.actions.len()), Some(1));
    }

    #[test]
    fn new_refuses_a_non_empty_directory_and_invalid_names() {
        let temporary = tempfile::tempdir().expect("temporary directory");
        assert!(matches!(
            create_project("Greeter", temporary.path().parent().expect("parent")),
            Err(ProjectError::DirectoryNotEmpty { .. })
        ));
        assert!(matches!(
            create_project("My Extension", &temporary.path().join("x")),
            Err(ProjectError::InvalidName { .. })
        ));
    }
}
