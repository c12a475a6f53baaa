//! The verification catalogue, driven by data: every folder under `tests/cases/` is a project
//! whose verification output must match the `expected.snap` beside it.
//!
//! A case folder holds `extension.toml` and whatever files it names, and optionally
//! `published.toml` (the version on the server, for breaking changes) and `case.toml` with
//! `permissions = [...]` (the publishing account's permissions). Run with `INSTA_UPDATE=always`
//! to write the snapshots of new cases, then read them before committing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xif_diagnostics::{Code, Diagnostic, Sources, Step, render_human, summary};
use xif_project::{DEFINITION_FILE, VerifyOptions, verify_definition};
use xif_verify::Permissions;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    #[serde(default)]
    permissions: Vec<String>,
    /// Modules that use the extension, built against `published.toml`.
    #[serde(default)]
    consumers: Vec<CaseConsumer>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseConsumer {
    module: String,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    structures: Vec<String>,
    #[serde(default)]
    entities: Vec<String>,
}

fn case_directories() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut directories: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/cases exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.join(DEFINITION_FILE).exists())
        .collect();
    directories.sort();
    directories
}

/// Verifies the project in `directory` as `xif verify` would, with the case's options, and
/// renders the result as a person reads it.
fn check(directory: &Path) -> (String, Vec<Diagnostic>) {
    let published_text = std::fs::read_to_string(directory.join("published.toml")).ok();
    let published = published_text
        .as_deref()
        .map(|text| xif_definition::parse(text).expect("published.toml of a case is a valid definition"));
    let options: CaseOptions = std::fs::read_to_string(directory.join("case.toml"))
        .map(|text| toml::from_str(&text).expect("case.toml is valid"))
        .unwrap_or_default();
    let permissions = published_text.is_some() || !options.permissions.is_empty();
    let permissions = permissions.then(|| Permissions {
        allow_extensions: options.permissions.iter().any(|permission| permission == "allow-extensions"),
        allow_foreign_entities: options.permissions.iter().any(|permission| permission == "allow-foreign-entities"),
    });
    let consumers = options
        .consumers
        .iter()
        .map(|consumer| xif_verify::Consumer {
            module: consumer.module.clone(),
            built_against: published.as_ref().expect("a case with consumers has a published.toml"),
            uses: xif_verify::Uses {
                actions: consumer.actions.clone(),
                structures: consumer.structures.clone(),
                entities: consumer.entities.clone(),
            },
        })
        .collect();
    let verification = verify_definition(
        directory,
        &VerifyOptions { published: published.as_ref(), permissions, consumers, ..VerifyOptions::default() },
    )
    .expect("the case folder is readable");
    let sources = Sources::new(DEFINITION_FILE, verification.loaded.source.as_str());
    let mut rendered = render_human(&verification.diagnostics, &sources, false);
    rendered.push_str(&summary(&verification.diagnostics));
    rendered.push('\n');
    (rendered, verification.diagnostics)
}

#[test]
fn every_case_matches_its_snapshot_and_every_code_has_a_case() {
    let mut codes_seen = BTreeSet::new();
    let mut failures = Vec::new();
    for directory in case_directories() {
        let name = directory.file_name().expect("case name").to_string_lossy().into_owned();
        let (rendered, diagnostics) = check(&directory);
        codes_seen.extend(diagnostics.iter().map(|diagnostic| diagnostic.code));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&directory);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(directory.join(DEFINITION_FILE));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!("expected", rendered));
        }));
        if outcome.is_err() {
            failures.push(name);
        }
    }
    codes_seen.extend(too_large_definition());
    assert!(failures.is_empty(), "cases whose output changed: {failures:?}");
    // Codes of the later steps of Verify are triggered by the tests of those steps.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| code.step() == Step::Definition && !codes_seen.contains(*code))
        .map(|code| code.as_str())
        .collect();
    assert!(missing.is_empty(), "codes no case triggers: {missing:?}; add a folder under tests/cases");
}

/// A definition over 16 MiB is refused unread; too big a file to keep in the repository, so
/// the case writes it.
fn too_large_definition() -> Vec<Code> {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let mut text = String::from("[extension]\nname = \"Big\"\nversion = \"1.0.0\"\n");
    while text.len() <= xif_definition::MAX_DEFINITION_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(temporary.path().join(DEFINITION_FILE), text).expect("written");
    let (rendered, diagnostics) = check(temporary.path());
    assert!(rendered.contains("error[XE0007]: the definition is 16777"), "{rendered}");
    assert!(rendered.contains("over the limit of 16 MiB"), "{rendered}");
    assert_eq!(diagnostics.len(), 1, "{rendered}");
    diagnostics.iter().map(|diagnostic| diagnostic.code).collect()
}
