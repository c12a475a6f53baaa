//! The 1-Click Publish end to end: the real `xif` binary (login, publish, upload, versions,
//! logout, quickstart) against a real `xif server` process, with real cargo builds of real
//! extension projects.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const PASSWORD: &str = "administrator-password";

fn target() -> PathBuf {
    xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"))
}

/// A server and a config directory of its own.
struct World {
    server: xif_testkit::Server,
    directory: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        Self::with_server_arguments(&[])
    }

    /// A world whose server runs with `arguments` besides its port and data directory.
    fn with_server_arguments(arguments: &[&str]) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let server = xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &directory.path().join("data"),
            PASSWORD,
            "warn",
            arguments,
            drop,
        );
        std::fs::create_dir(directory.path().join("config")).expect("config directory");
        World { server, directory }
    }

    fn path(&self) -> &Path {
        self.directory.path()
    }

    /// `xif ARGUMENTS` with this world's config directory and shared build output.
    fn command(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
        command
            .args(arguments)
            .current_dir(self.path())
            .env("XIF_CONFIG_DIR", self.path().join("config"))
            .env("CARGO_TARGET_DIR", target())
            .env_remove("XIF_SERVER")
            .env_remove("XIF_TOKEN")
            .env_remove("XIF_SIGNING_KEY")
            .stdin(Stdio::null());
        command
    }

    fn xif(&self, arguments: &[&str]) -> (Option<i32>, String, String) {
        finish(self.command(arguments).output().expect("xif runs"))
    }

    fn log_in(&self, user: &str, password: &str) -> (Option<i32>, String, String) {
        let mut child = self
            .command(&["login", &self.server.url, "--user", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xif login runs");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("written");
        finish(child.wait_with_output().expect("finished"))
    }

    /// A new project `name` from `xif new`.
    fn project(&self, name: &str) -> PathBuf {
        let (code, _, stderr) = self.xif(&["new", name]);
        assert_eq!(code, Some(0), "{stderr}");
        self.path().join(name)
    }

    /// Adds a user with `permissions`, as the administrator.
    fn add_user(&self, name: &str, password: &str, permissions: &[&str]) {
        let mut arguments = vec!["admin", "user", "add", name, "--password-stdin"];
        for permission in permissions {
            arguments.extend(["--grant", permission]);
        }
        let mut child = self
            .command(&arguments)
            .env("XIF_SERVER", &self.server.url)
            .env("XIF_TOKEN", self.token("admin", PASSWORD))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xif admin runs");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("written");
        let (code, _, stderr) = finish(child.wait_with_output().expect("finished"));
        assert_eq!(code, Some(0), "{stderr}");
    }

    /// A token of `user`, from the API.
    fn token(&self, user: &str, password: &str) -> String {
        self.server.token(user, password)
    }

    /// `GET PATH` as `token`.
    fn get(&self, token: &str, path: &str) -> Value {
        let output = Command::new("curl")
            .args(["-sS", "-H"])
            .arg(format!("authorization: Bearer {token}"))
            .arg(format!("{}/api/v1{path}", self.server.url))
            .output()
            .expect("curl runs");
        serde_json::from_slice(&output.stdout).expect("JSON")
    }
}

fn finish(output: Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn replace(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("readable");
    assert!(text.contains(from), "`{from}` in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("written");
}

#[test]
fn log_in_publish_unchanged_change_roll_back_and_log_out() {
    let world = World::new();
    let (code, _, stderr) = world.xif(&["publish", "--path", "."]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("xif login") && stderr.contains("XIF_SERVER") && stderr.contains("XIF_TOKEN"), "{stderr}");

    let (code, _, stderr) = world.log_in("admin", "wrong password");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("wrong user name or password"), "{stderr}");
    let (code, _, stderr) = world.log_in("admin", PASSWORD);
    assert_eq!(code, Some(0), "{stderr}");
    let credentials = world.path().join("config/credentials.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&credentials).expect("stored").permissions());
    assert_eq!(mode & 0o777, 0o600, "only the owner reads the token");
    let (code, stdout, _) = world.xif(&["whoami"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with(&format!("admin on {} (administrator)", world.server.url)), "{stdout}");

    let project = world.project("Published");
    let path = project.to_str().expect("path");
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    for stage in ["[ok]   Verify", "[ok]   Save", "[ok]   Upload", "[ok]   Publish", "[ok]   Deploy"] {
        assert!(stderr.contains(stage), "a line for each stage, `{stage}`:\n{stderr}");
    }
    assert!(stderr.contains("published version 1"), "{stderr}");
    let (code, stdout, stderr) =
        world.xif(&["invoke", "Published", "Greet", "--input", r#"{"Person": {"Name": "Ada"}}"#]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Hello, Ada!" }));

    // Unchanged: nothing is saved, uploaded or published again.
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("[skip] Save") && stderr.contains("unchanged since the last save"), "{stderr}");
    assert!(stderr.contains("[skip] Upload") && stderr.contains("identical to version 1"), "{stderr}");
    assert!(stderr.contains("version 1 is already published; nothing to do"), "{stderr}");

    // A one-line change is a new version.
    replace(&project.join("src/main.rs"), "Hello, ", "Welcome, ");
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("published version 2, replacing version 1"), "{stderr}");
    let (_, stdout, _) = world.xif(&["invoke", "Published", "Greet", "--input", r#"{"Person": {"Name": "Ada"}}"#]);
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Welcome, Ada!" }));

    // Roll back to version 1, then upload a version without publishing it.
    let (code, _, stderr) = world.xif(&["publish", "--path", path, "--version", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("published version 1, replacing version 2"), "{stderr}");
    let (_, stdout, _) = world.xif(&["invoke", "Published", "Greet", "--input", r#"{"Person": {"Name": "Ada"}}"#]);
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Hello, Ada!" }));
    replace(&project.join("src/main.rs"), "Welcome, ", "Hi, ");
    let (code, _, stderr) = world.xif(&["upload", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("uploaded as version 3"), "{stderr}");
    let (code, stdout, _) = world.xif(&["versions", "--path", path, "--json"]);
    assert_eq!(code, Some(0));
    let versions: Value = serde_json::from_str(&stdout).expect("JSON");
    let summary: Vec<(i64, bool)> = versions
        .as_array()
        .expect("a list")
        .iter()
        .map(|version| (version["number"].as_i64().unwrap_or_default(), version["published"] == json!(true)))
        .collect();
    assert_eq!(summary, vec![(1, true), (2, false), (3, false)]);

    // A dry run goes as far as a validate-only publication.
    let (code, _, stderr) = world.xif(&["publish", "--path", path, "--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("dry run: version 3 could be published; nothing was published"), "{stderr}");
    assert_eq!(world.get(&world.token("admin", PASSWORD), "/extensions")[0]["published"], 1);

    let (code, _, stderr) = world.xif(&["logout"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("the token was revoked"), "{stderr}");
    let (code, _, stderr) = world.xif(&["whoami"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not connected"), "{stderr}");
}

#[test]
fn a_server_with_a_trusted_key_takes_only_uploads_signed_by_it() {
    let keys = tempfile::tempdir().expect("keys");
    for name in ["trusted", "other"] {
        let output = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(["--quiet", "keygen", "--secret", &format!("{name}.key"), "--public", &format!("{name}.pub")])
            .current_dir(keys.path())
            .output()
            .expect("xif keygen runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let key = |name: &str| keys.path().join(name).to_str().expect("UTF-8 path").to_owned();
    let world = World::with_server_arguments(&["--trusted-key", &key("trusted.pub")]);
    let (code, _, stderr) = world.log_in("admin", PASSWORD);
    assert_eq!(code, Some(0), "{stderr}");
    let project = world.project("Signing");
    let path = project.to_str().expect("path");
    let admin = world.token("admin", PASSWORD);

    // Unsigned: refused at Upload, with the reason and the way out.
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("[FAIL] Upload") && stderr.contains("(signature_required)"), "{stderr}");
    assert!(stderr.contains("--sign KEY") && stderr.contains("XIF_SIGNING_KEY"), "{stderr}");
    // Signed by a key the server does not trust.
    let (code, _, stderr) = world.xif(&["upload", "--path", path, "--sign", &key("other.key")]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("(untrusted_signature)"), "{stderr}");
    assert_eq!(world.get(&admin, "/extensions"), json!([]), "nothing refused is stored");

    // Signed by the trusted key (here through XIF_SIGNING_KEY): uploaded, published, running.
    let publish_signed = || {
        finish(
            world
                .command(&["publish", "--path", path])
                .env("XIF_SIGNING_KEY", key("trusted.key"))
                .output()
                .expect("xif runs"),
        )
    };
    let (code, _, stderr) = publish_signed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(", signed") && stderr.contains("published version 1"), "{stderr}");
    let (code, stdout, stderr) =
        world.xif(&["invoke", "Signing", "Greet", "--input", r#"{"Person": {"Name": "Ada"}}"#]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Hello, Ada!" }));

    // What the server took is the file next to its signature, which minisign checks as is.
    let archive = project.join("target/xif/Signing.xif");
    let minisign = |archive: &Path| {
        Command::new("minisign")
            .args(["-Vm"])
            .arg(archive)
            .args(["-p", &key("trusted.pub")])
            .output()
            .expect("minisign runs (scripts/install-test-tools)")
    };
    assert!(minisign(&archive).status.success());
    let signature = std::fs::read(project.join("target/xif/Signing.xif.minisig")).expect("signature");

    // Unchanged: the archive is kept, and so is its signature, which still matches it.
    let (code, _, stderr) = publish_signed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("[skip] Save") && stderr.contains("version 1 is already published"), "{stderr}");
    assert_eq!(std::fs::read(project.join("target/xif/Signing.xif.minisig")).expect("signature"), signature);
    assert!(minisign(&archive).status.success());

    // A change: a new archive, signed anew.
    replace(&project.join("src/main.rs"), "Hello, ", "Welcome, ");
    let (code, _, stderr) = publish_signed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("published version 2, replacing version 1"), "{stderr}");
    assert!(minisign(&archive).status.success());
}

#[test]
fn errors_stop_before_save_warnings_do_not_and_permissions_are_named() {
    let world = World::new();
    world.add_user("carol", "carols-long-password", &["allow-extensions"]);
    let (code, _, stderr) = world.log_in("carol", "carols-long-password");
    assert_eq!(code, Some(0), "{stderr}");

    // An error: the run stops in Verify; nothing is saved, nothing reaches the server.
    let project = world.project("Checked");
    let path = project.to_str().expect("path");
    replace(&project.join("extension.toml"), "type = \"Boolean\"", "type = \"Bool\"");
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("XE") && stderr.contains("Bool") && stderr.contains("[FAIL] Verify"), "{stderr}");
    assert!(!stderr.contains("[....] Save"), "stopped before Save:\n{stderr}");
    assert!(!project.join("target/xif").exists(), "no archive");
    let admin = world.token("admin", PASSWORD);
    assert_eq!(world.get(&admin, "/extensions"), json!([]), "nothing reached the server");

    // A warning (a structure without a description): reported, and the run goes on.
    replace(&project.join("extension.toml"), "type = \"Bool\"", "type = \"Boolean\"");
    replace(&project.join("extension.toml"), "description = \"Someone to greet.\"\n", "");
    let (code, _, stderr) = world.xif(&["publish", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("warning") && stderr.contains("XW0004"), "{stderr}");
    assert!(stderr.contains("published version 1"), "{stderr}");

    // Entities need allow-foreign-entities, which carol lacks: the server refuses and says so.
    let entities = world.project("Stored");
    let text = std::fs::read_to_string(entities.join("extension.toml")).expect("definition");
    std::fs::write(
        entities.join("extension.toml"),
        format!(
            "{text}\n[[entities]]\nname = \"Visit\"\ndescription = \"A visit.\"\ntable = \"VISIT\"\nattributes = [\n  {{ name = \"Id\", type = \"Long Integer\", identifier = true, auto_number = true }},\n  {{ name = \"Who\", type = \"Text\", length = 100 }},\n]\n"
        ),
    )
    .expect("written");
    let (code, _, stderr) = world.xif(&["publish", "--path", entities.to_str().expect("path")]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("allow-foreign-entities") && stderr.contains("[FAIL] Publish"), "{stderr}");
    assert_eq!(
        world.get(&admin, "/extensions").as_array().map(|list| list.iter().filter(|e| e["published"].is_i64()).count()),
        Some(1)
    );
}

/// Reads `xif publish --json` events until one matches `until`.
fn events_until(lines: &mut impl Iterator<Item = Value>, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    for event in lines.by_ref() {
        let matched = until(&event);
        seen.push(event);
        if matched {
            return seen;
        }
    }
    panic!("the event never came; saw {seen:#?}");
}

/// `xif publish --path PATH --json`, running, and its process id for signals.
fn spawn_json_publish(world: &World, path: &str) -> (std::process::Child, nix::unistd::Pid) {
    let child = world
        .command(&["publish", "--path", path, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif publish runs");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    (child, pid)
}

fn json_lines(child: &mut std::process::Child) -> impl Iterator<Item = Value> {
    BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .map(|line| serde_json::from_str::<Value>(&line).unwrap_or_else(|error| panic!("`{line}`: {error}")))
}

#[test]
fn json_events_a_publication_meanwhile_and_an_interrupted_upload() {
    let world = World::new();
    let (code, _, stderr) = world.log_in("admin", PASSWORD);
    assert_eq!(code, Some(0), "{stderr}");
    let project = world.project("Streamed");
    let path = project.to_str().expect("path");

    // The event stream of a clean publish, reduced to its shape: every event and its fields.
    let (code, stdout, stderr) = world.xif(&["publish", "--path", path, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let shape: Vec<String> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("one JSON object per line"))
        .filter(|event| event["event"] != "compiling")
        .map(|event| {
            let object = event.as_object().expect("an object");
            let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
            fields.sort_unstable();
            let detail = ["stage", "step", "outcome", "reason"]
                .iter()
                .filter_map(|key| object.get(*key).and_then(Value::as_str).map(|value| format!("{key}={value}")))
                .collect::<Vec<_>>()
                .join(" ");
            let achieved = object.get("achieved").map(|achieved| format!(" achieved={achieved}")).unwrap_or_default();
            format!("{} {detail} [{}]{achieved}", object["event"].as_str().unwrap_or_default(), fields.join(", "))
        })
        .collect();
    // How many progress events there are depends on the archive's size: one line stands for them.
    let mut shape = shape;
    shape.dedup();
    insta::assert_snapshot!("publish_events", shape.join("\n"));

    // Another user publishes while this run is under way: the run is refused, clearly.
    replace(&project.join("src/main.rs"), "Hello, ", "Salut, ");
    let (code, _, stderr) = world.xif(&["upload", "--path", path]);
    assert_eq!(code, Some(0), "{stderr}");
    replace(&project.join("src/main.rs"), "Salut, ", "Hallo, ");
    let (mut child, pid) = spawn_json_publish(&world, path);
    let mut lines = json_lines(&mut child);
    events_until(&mut lines, |event| event["event"] == "stage_started" && event["stage"] == "verify");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stopped");
    let admin = world.token("admin", PASSWORD);
    let published = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "content-type: application/json", "-H"])
        .arg(format!("authorization: Bearer {admin}"))
        .args(["-d", r#"{"version": 2, "expected": 1}"#])
        .arg(format!("{}/api/v1/extensions/Streamed/publications", world.server.url))
        .output()
        .expect("curl runs");
    assert!(String::from_utf8_lossy(&published.stdout).contains("\"published\":true"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("continued");
    let rest: Vec<Value> = lines.collect();
    let (code, _, _) = finish(child.wait_with_output().expect("finished"));
    assert_eq!(code, Some(4));
    let stopped = rest.last().expect("a last event");
    assert_eq!(
        (&stopped["event"], &stopped["reason"], &stopped["stage"]),
        (&json!("stopped"), &json!("refused"), &json!("publish"))
    );
    let message = stopped["message"].as_str().unwrap_or_default();
    assert!(message.contains("published meanwhile") && message.contains("stale_version"), "{message}");

    // Ctrl-C during an upload: the server keeps no version of it.
    let big = project.join("resources/big.bin");
    xif_testkit::incompressible(&big, 160 << 20, 7);
    let text = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    std::fs::write(
        project.join("extension.toml"),
        format!("{text}\n[[resources]]\npath = \"resources/big.bin\"\ndeploy = \"ignore\"\n"),
    )
    .expect("written");
    let before = world.get(&admin, "/extensions/Streamed/versions").as_array().map(Vec::len);
    let (mut child, pid) = spawn_json_publish(&world, path);
    let mut lines = json_lines(&mut child);
    events_until(&mut lines, |event| event["event"] == "progress");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupted");
    let rest: Vec<Value> = lines.collect();
    let (code, _, stderr) = finish(child.wait_with_output().expect("finished"));
    assert_eq!(code, Some(130), "{stderr}");
    let stopped = rest.last().expect("a last event");
    assert_eq!((&stopped["reason"], &stopped["stage"]), (&json!("cancelled"), &json!("upload")), "{rest:#?}");
    // The server notices the broken upload and discards it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(world.get(&admin, "/extensions/Streamed/versions").as_array().map(Vec::len), before, "no version");
}

#[test]
fn quickstart_publishes_the_sample_and_calls_it() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .arg("quickstart")
        .current_dir(directory.path())
        .env("CARGO_TARGET_DIR", target())
        .env("XIF_CONFIG_DIR", directory.path())
        .output()
        .expect("xif runs");
    let (code, stdout, stderr) = finish(output);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Hello, Ada!" }));
    assert!(stderr.contains("[ok]   Deploy") && stderr.contains("the server stopped"), "{stderr}");
}
