//! The real `xif` binary, run as a user runs it: output, JSON documents and exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn xif(arguments: &[&str], directory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(arguments)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .output()
        .expect("xif runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("output is UTF-8")
}

/// Replaces the temporary directory in `text`, so snapshots do not depend on it.
fn redact(text: &str, directory: &Path) -> String {
    text.replace(&directory.display().to_string(), "[TEMP]")
}

fn new_project(directory: &Path, name: &str) {
    let output = xif(&["new", name], directory);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn new_writes_a_project_that_verifies_cleanly() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let output = xif(&["new", "PaymentGateway"], temporary.path());
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(text(&output.stderr), @r"
    created extension `PaymentGateway` in `PaymentGateway`
    next: `xif verify --path PaymentGateway`
    ");
    let project = temporary.path().join("PaymentGateway");
    assert!(project.join("extension.toml").is_file());
    assert!(project.join("resources/greetings.txt").is_file());
    let definition = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    assert!(definition.contains("[[actions]]") && definition.contains("[[structures]]"), "{definition}");

    let output = xif(&["verify", "--path", "PaymentGateway"], temporary.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    insta::assert_snapshot!(text(&output.stderr), @"verified `PaymentGateway` 0.1.0: 0 errors, 0 warnings");
    assert_eq!(text(&output.stdout), "", "human output goes to stderr");

    // Verifying from inside the project needs no `--path`.
    let output = xif(&["verify", "--definition-only"], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn new_with_path_and_refusals() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let output = xif(&["new", "Payments", "--path", "nested/dir"], temporary.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(temporary.path().join("nested/dir/extension.toml").is_file());

    let output = xif(&["new", "Payments", "--path", "nested/dir"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(text(&output.stderr), @r"
    error: `nested/dir` already exists and is not empty
    hint: choose another name, or another directory with `--path`
    ");

    let output = xif(&["new", "My-Extension"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(text(&output.stderr), @r"
    error: `My-Extension` is not a valid extension name: it has `-`
    hint: names use letters, digits and `_`, start with a letter, and have at most 50 characters
    ");
    assert!(!temporary.path().join("My-Extension").exists(), "nothing is written for a refused name");
}

#[test]
fn verify_reports_errors_rustc_style_and_exits_1() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    new_project(temporary.path(), "Shop");
    let definition = temporary.path().join("Shop/extension.toml");
    let original = std::fs::read_to_string(&definition).expect("definition");
    let broken = original
        .replace("name = \"Greet\"", "name = \"Greet Person\"")
        .replace("type = \"Boolean\"\ndefault = false", "type = \"Boolean\"\ndefault = false\nmandatroy = false");
    std::fs::write(&definition, &broken).expect("written");

    let output = xif(&["verify", "--path", "Shop"], temporary.path());
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(text(&output.stderr), @r#"
    error[XE0004]: unknown key `mandatroy` in input `Formal` of action `Greet Person`
      --> Shop/extension.toml:26:1
       |
    26 | mandatroy = false
       | ^^^^^^^^^
       |
       = help: did you mean `mandatory`?

    error: verification of `Shop/extension.toml` failed: 1 error, 0 warnings
    "#);

    // With the key fixed, the verifier's rules run and find the invalid action name.
    std::fs::write(&definition, broken.replace("mandatroy", "mandatory")).expect("written");
    let output = xif(&["verify", "--path", "Shop"], temporary.path());
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(text(&output.stderr), @r#"
    error[XE0101]: the name of action `Greet Person` has a space
      --> Shop/extension.toml:12:8
       |
    12 | name = "Greet Person"
       |        ^^^^^^^^^^^^^^
       |
       = help: names use letters, digits and `_` only, for example `GreetPerson`

    error: verification of `Shop` 0.1.0 failed: 1 error, 0 warnings
    "#);
}

#[test]
fn verify_json_is_one_document_with_every_diagnostic() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    new_project(temporary.path(), "Shop");
    let definition = temporary.path().join("Shop/extension.toml");
    let original = std::fs::read_to_string(&definition).expect("definition");
    std::fs::write(
        &definition,
        original.replace("description = \"Builds a greeting for a person.\"\n", "").replace(
            "name = \"BirthDate\"",
            "name = \"birthdate\"\ntype = \"Date\"\n\n[[structures.attributes]]\nname = \"BirthDate\"",
        ),
    )
    .expect("written");

    let output = xif(&["verify", "--path", "Shop", "--format", "json"], temporary.path());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(document["definition"], "Shop/extension.toml");
    assert_eq!(document["extension"]["name"], "Shop");
    assert_eq!(document["extension"]["version"], "0.1.0");
    assert_eq!(document["errors"], 1);
    assert_eq!(document["warnings"], 1);
    let diagnostics = document["diagnostics"].as_array().expect("diagnostics array");
    let codes: Vec<&str> = diagnostics.iter().map(|diagnostic| diagnostic["code"].as_str().expect("code")).collect();
    assert_eq!(codes, ["XW0004", "XE0103"]);
    let duplicate = &diagnostics[1];
    assert_eq!(duplicate["severity"], "error");
    assert_eq!(duplicate["message"], "attribute `BirthDate` is the same as `birthdate` (names ignore case)");
    assert_eq!(duplicate["file"], "Shop/extension.toml");
    assert_eq!(duplicate["location"]["file"], "Shop/extension.toml");
    assert_eq!(duplicate["location"]["column"], 8);
    assert_eq!(duplicate["related"][0]["label"], "first declared here");
    let line = duplicate["location"]["line"].as_u64().expect("line") as usize;
    let source = std::fs::read_to_string(&definition).expect("definition");
    assert_eq!(source.lines().nth(line - 1), Some("name = \"BirthDate\""));
    assert_eq!(diagnostics[0]["severity"], "warning");
    assert!(diagnostics[0]["help"].as_str().is_some_and(|help| help.contains("description")));
}

#[test]
fn verify_exit_codes_for_what_cannot_run() {
    let temporary = tempfile::tempdir().expect("temporary directory");

    let output = xif(&["verify", "--path", "missing"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(redact(&text(&output.stderr), temporary.path()), @r"
    error: project directory `missing` does not exist
    hint: run `xif new NAME` to create a project, or pass `--path` with the directory that holds `extension.toml`
    ");

    let output = xif(&["verify"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(text(&output.stderr), @r"
    error: no `extension.toml` in `.`
    hint: run `xif new NAME` to create a project, or pass `--path` with the directory that holds `extension.toml`
    ");

    let output = xif(&["verify", "--format", "yaml"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("invalid value 'yaml' for '--format <FORMAT>'"), "{}", text(&output.stderr));

    let output = xif(&["verify", "--frobnicate"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn verify_bad_files_give_one_located_diagnostic() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let cases: [(&[u8], &str); 4] = [
        (b"", "error[XE0001]: the definition file is empty"),
        (
            b"[extension]\nname = \"Caf\xe9\"\n",
            "error[XE0002]: the definition is not valid UTF-8: byte 0xE9 at offset 23",
        ),
        (b"[extension\nname = 1\n", "error[XE0003]: invalid TOML"),
        (
            b"[extension]\nname = 1\nversion = \"1.0.0\"\n",
            "error[XE0005]: `name` in `[extension]` must be a string, found an integer",
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(temporary.path().join("extension.toml"), content).expect("written");
        let output = xif(&["verify"], temporary.path());
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
        assert_eq!(stderr.matches("error[").count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if !content.is_empty() {
            assert!(stderr.contains("--> extension.toml:"), "the diagnostic has a location: {stderr}");
        }
    }
}

#[test]
fn explain_prints_the_long_explanation() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let output = xif(&["explain", "xe0103"], temporary.path());
    assert_eq!(output.status.code(), Some(0));
    let explanation = text(&output.stdout);
    assert!(explanation.starts_with("XE0103 (error): name is already used in this scope\n\n"), "{explanation}");
    assert!(explanation.contains("compared without regard to case"), "{explanation}");

    let output = xif(&["explain"], temporary.path());
    assert_eq!(output.status.code(), Some(0));
    let list = text(&output.stdout);
    assert!(list.contains("XE0001  error    the definition file is empty"), "{list}");
    assert!(list.contains("XW0005  warning  breaking change against the published version"), "{list}");

    let output = xif(&["explain", "XE0130"], temporary.path());
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(text(&output.stderr), @r"
    error: `XE0130` is not a diagnostic code of xif
    hint: did you mean `XE0103`? run `xif explain` without a code to list every code
    ");
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let output = xif(&["--help"], temporary.path());
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for expected in ["new", "verify", "explain", "Exit codes: 0 success", "NO_COLOR"] {
        assert!(help.contains(expected), "`{expected}` missing from:\n{help}");
    }
}
