//! House rules that reviews would otherwise chase, checked on every test run.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target" || name == "cases") {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| path.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_rust_file_has_a_module_doc_and_no_leftovers() {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    assert!(files.len() > 10, "found the sources");
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        let shown = file.strip_prefix(workspace()).unwrap_or(&file).display().to_string();
        let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
        if !first.starts_with("//!") && !first.starts_with("#![") {
            problems.push(format!("{shown}: starts without a `//!` module doc"));
        }
        if file.file_name().is_some_and(|name| name == "mod.rs") {
            problems.push(format!("{shown}: `mod.rs` files are not used; name the module's file"));
        }
        // Built from pieces so that this file does not trip its own checks.
        let forbidden = [
            ["dbg", "!("].concat(),
            ["#[", "ignore"].concat(),
            ["#[should", "_panic"].concat(),
            ["to", "do!("].concat(),
            ["unimple", "mented!("].concat(),
        ];
        for pattern in &forbidden {
            if text.contains(pattern.as_str()) {
                problems.push(format!("{shown}: contains `{pattern}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_crate_is_in_the_code_map_and_the_index() {
    let architecture = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let index = std::fs::read_to_string(workspace().join("crates/README.md")).expect("crates/README.md");
    for name in crates() {
        assert!(architecture.contains(&format!("### `crates/{name}`")), "ARCHITECTURE.md has no section for {name}");
        assert!(index.contains(&format!("`{name}`")), "crates/README.md does not list {name}");
    }
}

#[test]
fn readme_starts_with_the_two_commands_and_ci_runs_the_test_command() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.starts_with("```"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .collect();
    assert_eq!(commands.len(), 2, "README.md starts with a block of two commands: {commands:?}");
    let ci = std::fs::read_to_string(workspace().join(".ci/run")).expect(".ci/run");
    assert!(ci.contains(commands[1]), ".ci/run runs the README's test command `{}`", commands[1]);
    assert!(ci.contains("cargo fmt --all --check"));
    assert!(ci.contains("cargo clippy --workspace --all-targets -- -D warnings"));
}
