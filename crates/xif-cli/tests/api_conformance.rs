//! The API against its own description: the OpenAPI document a real `xif server` serves is valid
//! OpenAPI 3.1 (`openapi-spec-validator`), and schemathesis, generating requests from it with an
//! administrator's token, finds no server error and no answer the document does not describe
//! (status, content type, body schema, headers) and no request it describes as invalid let
//! through. Both tools come from PyPI, installed at pinned versions by
//! `scripts/install-test-tools`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "administrator-password";

/// What schemathesis checks: every check of this version (no server error; status, content type,
/// headers and body as described; schema-invalid requests refused; required headers and the
/// token enforced; other methods refused with `Allow`; deleted things gone), but that requests
/// valid by the schema are accepted: the server refuses many for what no schema can say (a wrong
/// password, a digest that does not match the bytes, a user or version that does not exist).
const CHECKS: [&str; 4] = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"];

/// Test cases per operation and phase: the whole test stays within two minutes here.
const MAX_EXAMPLES: &str = "20";

/// The longest a schemathesis run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// Operations that can take the run's own rights away: revoking the administrator's own
/// permissions (`DELETE /users/{name}/grants/{permission}`, with the name `admin` that it reads
/// from `GET /users`) and revoking the token it calls with (`DELETE /tokens/{id}`, whose ids are
/// small numbers that schemathesis soon tries). Either would turn the rest of a run into `401`
/// and `403` answers that test nothing, so each runs after the others, in a run of its own with
/// a token of its own, in this order.
const TAKE_RIGHTS_AWAY: [&str; 2] = ["revokeGrant", "revokeToken"];

/// Runs `command` to its end, its stdout and stderr into `log`; answers whether it succeeded and
/// what it wrote. One that runs over [`RUN_LIMIT`] is killed and fails the test.
fn run(mut command: Command, log: &Path) -> (bool, String) {
    let file = std::fs::File::create(log).expect("the log file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("the log file"))
        .stderr(file)
        .spawn()
        .expect("the tool starts");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a process id"));
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only once the test has failed already.
        exited.send(child.wait()).ok();
    });
    match exit.recv_timeout(RUN_LIMIT) {
        Ok(status) => (status.expect("the tool's status").success(), std::fs::read_to_string(log).expect("the log")),
        Err(_) => {
            // Gone already if it exited just now, which the failure below reports all the same.
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).ok();
            panic!("{command:?} ran over {RUN_LIMIT:?}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

/// An extension uploaded and published, so that the operations on an extension, its versions
/// and its actions reach past "not found": the project of `xif new Greeter`, saved by `xif save`,
/// which the document's examples name.
fn publish_sample(url: &str, token: &str, directory: &Path) {
    let binary = env!("CARGO_BIN_EXE_xif");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    xif_testkit::xif(binary, &["new", "Greeter"], directory, &target);
    let archive = directory.join("Greeter.xif");
    xif_testkit::xif(
        binary,
        &["save", "-o", archive.to_str().expect("a UTF-8 path")],
        &directory.join("Greeter"),
        &target,
    );
    let bytes = std::fs::read(&archive).expect("the archive");
    let digest = hex::encode(Sha256::digest(&bytes));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let uploaded = client
            .post(format!("{url}/api/v1/extensions/Greeter/versions"))
            .bearer_auth(token)
            .header("x-xif-sha256", digest)
            .body(bytes)
            .send()
            .await
            .expect("uploaded");
        assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap_or_default());
        let published = client
            .post(format!("{url}/api/v1/extensions/Greeter/publications"))
            .bearer_auth(token)
            .json(&json!({ "version": 1, "expected": null }))
            .send()
            .await
            .expect("published");
        assert_eq!(published.status(), 200, "{}", published.text().await.unwrap_or_default());
    });
}

/// Whether schemathesis tested every operation it selected, as its summary says.
fn tested_all(said: &str) -> bool {
    let after = |label: &str| {
        said.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|rest| rest.split('/').next().unwrap_or("").trim().to_owned())
    };
    after("Selected:").is_some_and(|selected| after("Tested:") == Some(selected))
}

fn schemathesis(url: &str, token: &str, directory: &Path) -> Command {
    let mut command = Command::new(xif_testkit::python_tool("schemathesis"));
    command
        .current_dir(directory)
        .args(["run", &format!("{url}/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(CHECKS)
        .args(["--max-examples", MAX_EXAMPLES, "--continue-on-failure"])
        .args(["--request-timeout", "30", "--generation-database", "none", "--no-color"]);
    command
}

#[test]
fn the_served_document_is_valid_openapi_and_the_server_answers_only_what_it_describes() {
    let data = tempfile::tempdir().expect("data directory");
    let work = tempfile::tempdir().expect("work directory");
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let log = Arc::clone(&log);
        xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), data.path(), PASSWORD, "warn", &[], move |line| {
            log.lock().expect("the log").push(line);
        })
    };
    let server_log = || log.lock().expect("the log").join("\n");
    // Every token now: schemathesis's logins soon use up the attempts of this address.
    let token = server.token("admin", PASSWORD);
    let last_tokens = TAKE_RIGHTS_AWAY.map(|_| server.token("admin", PASSWORD));
    publish_sample(&server.url, &token, work.path());

    let document = Command::new("curl")
        .args(["-sS", "--fail", &format!("{}/api/v1/openapi.json", server.url)])
        .output()
        .expect("curl runs");
    assert!(document.status.success(), "{}", String::from_utf8_lossy(&document.stderr));
    let parsed: Value = serde_json::from_slice(&document.stdout).expect("the document is JSON");
    assert_eq!(parsed["openapi"], "3.1.0");
    let saved = work.path().join("openapi.json");
    std::fs::write(&saved, &document.stdout).expect("written");
    let mut validator = Command::new(xif_testkit::python_tool("openapi-spec-validator"));
    validator.args(["--schema", "3.1"]).arg(&saved);
    let (valid, said) = run(validator, &work.path().join("validator.log"));
    assert!(valid, "openapi-spec-validator: {said}");

    let mut main = schemathesis(&server.url, &token, work.path());
    for operation in TAKE_RIGHTS_AWAY {
        main.args(["--exclude-operation-id", operation]);
    }
    let (passed, said) = run(main, &work.path().join("schemathesis.log"));
    assert!(
        passed,
        "schemathesis found answers the document does not describe:\n{said}\nthe server's log:\n{}",
        server_log()
    );
    assert!(tested_all(&said), "every other operation was tested:\n{said}");

    for (operation, token) in TAKE_RIGHTS_AWAY.iter().zip(&last_tokens) {
        let mut last = schemathesis(&server.url, token, work.path());
        // Alone, an operation has no links to follow, and so no stateful phase.
        last.args(["--include-operation-id", operation, "--phases", "examples,coverage,fuzzing"]);
        let (passed, said) = run(last, &work.path().join(format!("schemathesis-{operation}.log")));
        assert!(
            passed,
            "schemathesis found answers the document does not describe:\n{said}\nthe server's log:\n{}",
            server_log()
        );
        assert!(tested_all(&said), "{operation} was tested:\n{said}");
    }
    assert!(!server_log().contains("internal error"), "no internal error was logged:\n{}", server_log());
}
