//! Resources and the icon: safe relative paths, files that exist and are not empty, names the
//! archive does not reserve.

use xif_definition::{Definition, Spanned};
use xif_diagnostics::{Code, Diagnostic};

use crate::{Context, FileFact};

/// File names the XIF layout uses for itself.
const ARCHIVE_NAMES: &[&str] = &["manifest.json", "manifest.json.minisig", "extension.toml"];
/// Device names that cannot be file names on Windows, whatever their extension.
const DEVICE_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The file paths the definition names (resources and icon) that are safe to look up inside the
/// project: the caller reports what it finds there in [`Context::files`].
pub fn referenced_files(definition: &Definition) -> impl Iterator<Item = &str> {
    definition
        .resources
        .iter()
        .map(|resource| resource.path.value.as_str())
        .chain(definition.extension.icon.as_ref().map(|icon| icon.value.as_str()))
        .filter(|path| path_problem(path).is_none())
}

/// Why `path` is not a safe relative path inside the project, if it is not.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("is empty");
    }
    if path.starts_with('/') || path.as_bytes().get(1) == Some(&b':') {
        return Some("is absolute");
    }
    if path.contains('\\') {
        return Some("contains a backslash");
    }
    if path.split('/').any(|component| component == "..") {
        return Some("climbs out of the project with `..`");
    }
    if path.split('/').any(|component| component.is_empty() || component == ".") {
        return Some("has an empty or `.` component");
    }
    None
}

pub(crate) fn check(definition: &Definition, context: &Context<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let files = definition
        .resources
        .iter()
        .map(|resource| ("resource", &resource.path))
        .chain(definition.extension.icon.as_ref().map(|icon| ("icon", icon)));
    for (kind, path) in files {
        check_file(kind, path, context, diagnostics);
    }
}

fn check_file(kind: &str, path: &Spanned<String>, context: &Context<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let shown = &path.value;
    if let Some(problem) = path_problem(shown) {
        diagnostics.push(
            Diagnostic::new(Code::ResourceOutsideProject, format!("{kind} path `{shown}` {problem}"))
                .at(path.span)
                .help("use a relative path with `/` inside the project, for example `resources/logo.png`"),
        );
        return;
    }
    let file_name = shown.rsplit('/').next().unwrap_or(shown);
    let stem = file_name.split('.').next().unwrap_or(file_name);
    let reserved = ARCHIVE_NAMES
        .iter()
        .find(|name| name.eq_ignore_ascii_case(file_name))
        .map(|name| format!("`{name}` is a name the XIF archive uses for itself"))
        .or_else(|| {
            DEVICE_NAMES
                .iter()
                .find(|name| name.eq_ignore_ascii_case(stem))
                .map(|name| format!("`{name}` is a device name on Windows"))
        });
    if let Some(reason) = reserved {
        diagnostics.push(
            Diagnostic::new(Code::ReservedResourceName, format!("{kind} `{shown}` has a reserved name: {reason}"))
                .at(path.span)
                .help("rename the file"),
        );
        return;
    }
    match context.files.get(shown).copied().unwrap_or(FileFact::Missing) {
        FileFact::Missing => diagnostics.push(
            Diagnostic::new(Code::ResourceMissing, format!("{kind} file `{shown}` does not exist"))
                .at(path.span)
                .help("add the file to the project, or fix the path (relative to the directory of `extension.toml`)"),
        ),
        FileFact::Directory => diagnostics.push(
            Diagnostic::new(Code::ResourceMissing, format!("{kind} `{shown}` is a directory, not a file"))
                .at(path.span)
                .help("name each file of the directory as a resource of its own"),
        ),
        FileFact::File { size: 0 } => diagnostics.push(
            Diagnostic::new(Code::ResourceEmpty, format!("{kind} file `{shown}` is empty"))
                .at(path.span)
                .help("put the real file in place, or remove the resource"),
        ),
        FileFact::File { .. } => {}
    }
}
