//! The Verify stage on real extension projects, through the real `xif` and real cargo builds:
//! round trips of every data type, stubs for new actions, compiler errors as diagnostics, a
//! hand-edited bindings file, and every way a build can fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xif_diagnostics::{Code, Step};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Runs the real `xif` in `directory`, quietly, with the suite's shared target directory.
fn xif(arguments: &[&str], directory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xif"))
        .arg("--quiet")
        .args(arguments)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", workspace().join("target/extensions"))
        .output()
        .expect("xif runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("output is UTF-8")
}

/// A copy of fixture project `name` in a temporary directory, with a `Cargo.toml` that points
/// at this workspace's SDK.
fn fixture_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let project = temporary.path().join(name);
    std::fs::create_dir_all(project.join("src")).expect("created");
    let source = workspace().join("fixtures").join(name);
    for file in ["extension.toml", "src/main.rs"] {
        std::fs::copy(source.join(file), project.join(file)).expect("copied");
    }
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{}\"\nversion = \"1.0.0\"\nedition = \"2024\"\n\n[dependencies]\nxif-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            name.replace('-', "_"),
            workspace().join("crates/xif-sdk").display().to_string()
        ),
    )
    .expect("written");
    (temporary, project)
}

/// A new project made by `xif new`.
fn new_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let output = xif(&["new", name], temporary.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let project = temporary.path().join(name);
    (temporary, project)
}

fn json_verify(project: &Path) -> serde_json::Value {
    let output = xif(&["verify", "--format", "json"], project);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("JSON: {}", text(&output.stderr)))
}

#[test]
fn every_data_type_round_trips_through_xif_call() {
    let (_temporary, project) = fixture_project("every-type");
    let inputs = serde_json::json!({
        "Text": "héllo wörld",
        "Integer": -2147483648,
        "LongInteger": 9007199254740993_i64,
        "Decimal": "12345678901234567.0123456789",
        "Boolean": true,
        "DateTime": "2024-02-29T23:59:59",
        "Date": "1900-01-01",
        "Time": "00:00:01",
        "Email": "ada@example.invalid",
        "PhoneNumber": "+44 20 7946 0000",
        "Currency": 19.99,
        "BinaryData": "AAEC/f7/",
    });
    let output = xif(&["call", "EchoScalars", "--input", &inputs.to_string()], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let outputs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON outputs");
    let mut expected = inputs.clone();
    expected["Currency"] = serde_json::json!("19.99");
    assert_eq!(outputs, serde_json::json!({ "Values": expected }), "every value comes back exactly");

    let order = serde_json::json!({
        "Order": { "Number": "A-1", "PlacedOn": "2024-01-31", "Lines": [
            { "Product": "Tea", "Amount": "2.50" }, { "Product": "Cake", "Amount": "3.25" } ] },
        "Customer": 42,
    });
    let output = xif(&["call", "EchoRecords", "--input", &order.to_string()], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let outputs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON outputs");
    assert_eq!(outputs["SameOrder"], order["Order"]);
    assert_eq!(outputs["SameCustomer"], 42);
    assert_eq!(outputs["LineCount"], 2);

    let lines = serde_json::json!({ "Lines": order["Order"]["Lines"] });
    let output = xif(&["call", "Total", "--input", &lines.to_string()], &project);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON"),
        serde_json::json!({ "Total": "5.75" })
    );

    let output = xif(&["call", "Ping"], &project);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "{}\n");
}

#[test]
fn bad_inputs_are_refused_before_the_extension_sees_them() {
    let (_temporary, project) = fixture_project("every-type");
    let cases = [
        ("EchoScalar", "{}", "error: extension `EveryType` has no action `EchoScalar`; did you mean `EchoScalars`?"),
        ("Total", "{}", "error: action `Total` needs input `Lines` (Record List of `OrderLine`), which was not given"),
        (
            "Total",
            r#"{"Lines": [{"Amount": true}]}"#,
            "error: input `Lines[0].Amount` of action `Total` must be a decimal number",
        ),
        ("Total", r#"{"Lines": [], "Discount": 1}"#, "error: action `Total` has no input `Discount`"),
        (
            "EchoRecords",
            r#"{"Order": {"Number": "123456789012345678901"}, "Customer": "x"}"#,
            "error: input `Order.Number` of action `EchoRecords` is 21 characters long, over its length of 20",
        ),
        ("Total", "[1, 2", "error: `--input` is not JSON: `[1, 2`"),
    ];
    for (action, input, expected) in cases {
        let output = xif(&["call", action, "--input", input], &project);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(expected), "expected `{expected}`, got:\n{stderr}");
    }
}

#[test]
fn a_new_action_gets_a_stub_that_compiles_and_answers_not_implemented() {
    let (_temporary, project) = new_project("StubShop");
    let definition = project.join("extension.toml");
    let mut text_of_definition = std::fs::read_to_string(&definition).expect("definition");
    text_of_definition.push_str(
        "\n[[actions]]\nname = \"Refund\"\ndescription = \"Refunds an order.\"\ninputs = [ { name = \"OrderNumber\", type = \"Text\" } ]\noutputs = [ { name = \"Refunded\", type = \"Currency\" } ]\n",
    );
    std::fs::write(&definition, text_of_definition).expect("written");

    let report = json_verify(&project);
    assert_eq!(report["errors"], 0, "{report:#}");
    assert!(report["binary"].is_string(), "compiled without an edit by the author: {report:#}");
    let main = std::fs::read_to_string(project.join("src/main.rs")).expect("main.rs");
    assert!(
        main.contains(
            "fn refund(&self, _order_number: bindings::Text) -> Result<bindings::Currency, bindings::ActionError>"
        ),
        "{main}"
    );
    assert!(main.contains("fn greet(&self, person: Person, formal: bool)"), "the author's code is kept: {main}");

    let output = xif(&["call", "Refund", "--input", r#"{"OrderNumber": "A-1"}"#], &project);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        text(&output.stderr),
        "error: action `Refund` failed: action `Refund` is not implemented yet (not_implemented)\n"
    );
}

#[test]
fn a_type_error_in_the_authors_code_points_at_its_file_and_line() {
    let (_temporary, project) = new_project("TypeErrorShop");
    let main = project.join("src/main.rs");
    let source = std::fs::read_to_string(&main).expect("main.rs");
    std::fs::write(&main, source.replace("Ok(format!(\"Hello, {name}!\"))", "Ok(42)")).expect("written");
    let line = std::fs::read_to_string(&main)
        .expect("main.rs")
        .lines()
        .position(|line| line.contains("Ok(42)"))
        .expect("line")
        + 1;

    let output = xif(&["verify"], &project);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error[XE0701]: mismatched types [E0308]\n"), "{stderr}");
    assert!(stderr.contains(&format!("--> src/main.rs:{line}:12")), "{stderr}");
    assert!(stderr.contains("Ok(42)"), "the source line is shown: {stderr}");

    let report = json_verify(&project);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["code"], "XE0701");
    assert_eq!(diagnostic["file"], "src/main.rs");
    assert_eq!(diagnostic["location"]["line"], line);
}

#[test]
fn a_renamed_action_leaves_the_authors_method_for_the_compiler_to_point_at() {
    let (_temporary, project) = new_project("RenamedShop");
    let definition = project.join("extension.toml");
    let text_of_definition = std::fs::read_to_string(&definition).expect("definition");
    std::fs::write(&definition, text_of_definition.replace("name = \"Greet\"", "name = \"Welcome\"")).expect("written");
    let output = xif(&["verify"], &project);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let main = std::fs::read_to_string(project.join("src/main.rs")).expect("main.rs");
    assert!(main.contains("fn greet(&self, person: Person, formal: bool)"), "the old method is kept: {main}");
    assert!(
        main.contains("fn welcome(&self, _person: bindings::Person, _formal: bool)"),
        "the new one is stubbed: {main}"
    );
    assert!(
        stderr.contains("error[XE0701]: method `greet` is not a member of trait `bindings::Extension` [E0407]"),
        "{stderr}"
    );
    assert!(stderr.contains("--> src/main.rs:"), "{stderr}");
}

#[test]
fn compiler_warnings_are_reported_and_do_not_stop_verify() {
    let (_temporary, project) = new_project("WarningShop");
    let main = project.join("src/main.rs");
    let source = std::fs::read_to_string(&main).expect("main.rs");
    std::fs::write(
        &main,
        source.replace("let name = person.name.trim();", "let name = person.name.trim();\n        let spare = 1;"),
    )
    .expect("written");
    let output = xif(&["verify"], &project);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.starts_with("warning[XW0701]: unused variable: `spare` [unused_variables]\n"), "{stderr}");
    assert!(stderr.ends_with("verified `WarningShop` 0.1.0: 0 errors, 1 warning\n"), "{stderr}");
}

#[test]
fn a_hand_edited_bindings_file_is_kept_and_written_again() {
    let (_temporary, project) = new_project("EditedShop");
    let bindings = project.join("src/bindings.rs");
    let generated = std::fs::read_to_string(&bindings).expect("bindings");
    let edited = generated.replace("pub struct Person {", "pub struct Person {\n    pub nickname: Text,");
    std::fs::write(&bindings, &edited).expect("written");

    let output = xif(&["verify"], &project);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("warning[XW0601]: `src/bindings.rs` was edited by hand; it was saved as `src/bindings.rs.bak` and written again"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(project.join("src/bindings.rs.bak")).expect("backup"), edited);
    assert_eq!(std::fs::read_to_string(&bindings).expect("bindings"), generated);

    // Formatting the generated file is not an edit.
    std::fs::write(&bindings, generated.replace("    ", "  ")).expect("written");
    let output = xif(&["update-source"], &project);
    assert_eq!(text(&output.stderr), "wrote `src/bindings.rs`\nverified `EditedShop` 0.1.0: 0 errors, 0 warnings\n");
    // A second edit does not overwrite the first backup.
    std::fs::write(&bindings, &edited).expect("written");
    xif(&["update-source"], &project);
    assert!(project.join("src/bindings.rs.bak.1").is_file());
}

#[test]
fn a_project_without_an_implementation_is_warned_about() {
    let (_temporary, project) = new_project("EmptyShop");
    std::fs::write(project.join("src/main.rs"), "#[rustfmt::skip]\nmod bindings;\nfn main() {}\n").expect("written");
    let output = xif(&["update-source"], &project);
    let stderr = text(&output.stderr);
    assert!(
        stderr
            .contains("warning[XW0602]: no `impl bindings::Extension for …` in `src/main.rs`, so no stubs were added"),
        "{stderr}"
    );
}

#[test]
fn every_way_a_build_fails_has_its_own_error() {
    // Cargo missing.
    let (_temporary, project) = new_project("BrokenShop");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["--quiet", "compile"])
        .current_dir(&project)
        .env("NO_COLOR", "1")
        .env("CARGO", "/nonexistent/cargo")
        .output()
        .expect("xif runs");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error[XE0703]: cannot run `/nonexistent/cargo`: it was not found"), "{stderr}");

    // A time-out stops cargo and its compilers.
    let output = xif(&["compile", "--timeout", "0", "--target-dir", "target"], &project);
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error[XE0702]: compiling took longer than 0ns and was stopped"), "{stderr}");

    // An invalid manifest.
    std::fs::write(project.join("Cargo.toml"), "[package]\nname = \"shop\"\nversion = \"1\"\n").expect("written");
    let output = xif(&["compile"], &project);
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error[XE0705]: cargo failed:"), "{stderr}");
    assert!(stderr.contains("Cargo.toml"), "cargo's reason is shown: {stderr}");

    // A library crate produces no executable.
    std::fs::write(project.join("Cargo.toml"), "[package]\nname = \"shop\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\npath = \"src/lib.rs\"\n\n[[bin]]\nname = \"unused\"\npath = \"src/main.rs\"\ntest = false\n\n[workspace]\n").expect("written");
    std::fs::write(project.join("Cargo.toml"), "[package]\nname = \"shop\"\nversion = \"0.1.0\"\nedition = \"2024\"\nautobins = false\n\n[lib]\npath = \"src/lib.rs\"\n\n[workspace]\n").expect("written");
    std::fs::write(project.join("src/lib.rs"), "//! A library.\n").expect("written");
    let output = xif(&["compile"], &project);
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error[XE0704]: the build succeeded but produced no executable"), "{stderr}");
}

/// The codes of Update Source Code and Compile are each triggered by a test in this file.
#[test]
fn every_source_and_compile_code_is_tested_here() {
    let this_file = include_str!("extension.rs");
    for code in Code::ALL.iter().filter(|code| code.step() != Step::Definition) {
        let marker = format!("error[{code}]");
        let warning = format!("warning[{code}]");
        let json = format!("\"{code}\"");
        assert!(
            this_file.contains(&marker) || this_file.contains(&warning) || this_file.contains(&json),
            "{code} has no test in tests/extension.rs"
        );
    }
}
