//! Published extensions are isolated: a real `xif server` runs the `escapes` fixture, whose
//! actions each try to reach what an extension must not (the server's database and
//! environment, another extension's files, `/etc/shadow`, hundreds of processes, a 2 GiB
//! file), beside another extension; each attempt is refused, the server and the other
//! extension keep serving, and the extension's own files work. No process an extension starts
//! outlives it, whether it is replaced, crashes or the server stops.

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "administrator-password";

/// A real server, its log, and an administrator's client.
struct Api {
    server: xif_testkit::Server,
    log: Arc<Mutex<String>>,
    client: reqwest::Client,
    token: String,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn start(data: &Path, extra: &[&str]) -> Api {
        let log = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&log);
        let server =
            xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), data, PASSWORD, "info", extra, move |line| {
                kept.lock().expect("log").push_str(&format!("{line}\n"));
            });
        let token = server.token("admin", PASSWORD);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Api { server, log, client: reqwest::Client::new(), token, runtime }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request =
                self.client.request(method, format!("{}{path}", self.server.url)).bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("the server answers");
            (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
        })
    }

    /// Uploads and publishes `archive` as the next version of `name`.
    fn publish(&self, name: &str, archive: Vec<u8>, expected: Option<i64>) -> i64 {
        let (status, body) = self.try_publish(name, archive, expected);
        assert_eq!(status, 200, "{body}\n{}", self.log.lock().expect("log"));
        body["publication"]["to"].as_i64().expect("a version number")
    }

    /// Uploads `archive` as the next version of `name` and tries to publish it; the answer.
    fn try_publish(&self, name: &str, archive: Vec<u8>, expected: Option<i64>) -> (u16, Value) {
        let digest = hex::encode(Sha256::digest(&archive));
        let (status, body) = self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{}/api/v1/extensions/{name}/versions", self.server.url))
                .bearer_auth(&self.token)
                .header("x-xif-sha256", digest)
                .body(archive)
                .send()
                .await
                .expect("uploaded");
            (response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
        });
        assert_eq!(status, 201, "{body}");
        let number = body["version"]["number"].as_i64().expect("a version number");
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/extensions/{name}/publications"),
            Some(json!({ "version": number, "expected": expected })),
        )
    }

    /// Calls `action` of `Escapes` and returns its outcome.
    fn attempt(&self, action: &str, inputs: Value) -> String {
        let (status, body) =
            self.send(reqwest::Method::POST, &format!("/api/v1/extensions/Escapes/actions/{action}"), Some(inputs));
        assert_eq!(status, 200, "{action}: {body}\nthe server's log:\n{}", self.log.lock().expect("log"));
        body["Outcome"].as_str().expect("an outcome").to_owned()
    }

    fn address(&self) -> String {
        self.server.url.trim_start_matches("http://").to_owned()
    }
}

fn escapes(version: &str) -> Vec<u8> {
    let definition = std::fs::read_to_string(fixtures::workspace().join("fixtures/escapes/extension.toml"))
        .expect("the fixture's definition")
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
    xif_testkit::pack("Escapes", version, &definition, &fixtures::binary("escapes"))
}

fn other() -> Vec<u8> {
    let definition = "[extension]\nname = \"Other\"\nversion = \"1.0.0\"\ndescription = \"Another tenant.\"\n\n\
        [[actions]]\nname = \"Echo\"\ndescription = \"Echoes.\"\ninputs = [ { name = \"Message\", type = \"Text\" } ]\n\
        outputs = [ { name = \"Echoed\", type = \"Text\" } ]\n";
    xif_testkit::pack("Other", "1.0.0", definition, &fixtures::binary("generic"))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn assert_refused(outcome: &str, what: &str) {
    assert!(outcome.starts_with("refused: "), "{what} must be refused, got `{outcome}`");
}

#[test]
fn an_extension_reaches_its_own_files_and_nothing_else() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    let api = Api::start(&data, &[]);
    api.publish("Escapes", escapes("1.0.0"), None);
    api.publish("Other", other(), None);
    let other_directory = std::fs::read_dir(data.join("runtime/other"))
        .expect("the other extension's runtime directory")
        .next()
        .expect("its working directory")
        .expect("an entry")
        .path();
    let metadata = data.join("metadata.sqlite");
    let path = |path: &Path| json!({ "Path": path.to_str().expect("UTF-8") });

    assert_refused(&api.attempt("ReadFile", path(&metadata)), "reading the server's database");
    assert_refused(&api.attempt("WriteFile", path(&metadata)), "writing the server's database");
    assert_refused(&api.attempt("ListDirectory", path(&data)), "listing the data directory");
    assert_refused(&api.attempt("ListDirectory", path(&data.join("blobs"))), "listing the archives");
    let environ = PathBuf::from(format!("/proc/{}/environ", api.server.id()));
    assert_refused(&api.attempt("ReadFile", path(&environ)), "reading the server's environment");
    assert_refused(&api.attempt("ReadFile", path(&other_directory.join("run"))), "reading another extension's binary");
    assert_refused(&api.attempt("ListDirectory", path(&other_directory)), "listing another extension's directory");
    assert_refused(&api.attempt("ReadFile", path(Path::new("/etc/shadow"))), "reading /etc/shadow");

    let big = api.attempt("WriteBigFile", json!({ "Megabytes": 2048 }));
    assert_eq!(big, "refused: wrote 256 MiB, then: File too large (os error 27)", "files are at most 256 MiB");
    if is_root() {
        // Under a user of its own, the process limit (64, with the SDK's own threads) holds.
        let spawned = api.attempt("SpawnProcesses", json!({ "Count": 500, "Seconds": "600" }));
        assert!(spawned.starts_with("refused: started "), "{spawned}");
        let started: usize =
            spawned["refused: started ".len()..].split(' ').next().and_then(|n| n.parse().ok()).expect("a count");
        assert!(started < 64, "{spawned}");
    }

    // What it may do, it can.
    assert_eq!(api.attempt("OwnFiles", json!({})), "done: wrote and read its own files");
    let address = api.address();
    assert_eq!(api.attempt("Connect", json!({ "Address": address })), format!("done: connected to {address}"));

    // The server and the other extension kept serving.
    let (status, _) = api.send(reqwest::Method::GET, "/healthz", None);
    assert_eq!(status, 200);
    let (status, body) = api.send(
        reqwest::Method::POST,
        "/api/v1/extensions/Other/actions/Echo",
        Some(json!({ "Message": "still here" })),
    );
    assert_eq!((status, body), (200, json!({ "Echoed": "still here" })));
    // (On PostgreSQL, with `XIF_TEST_DATABASE=postgres`, there is no database file to keep.)
    if !xif_testkit::postgres::enabled() {
        assert!(std::fs::metadata(&metadata).expect("the database").len() > 0);
    }
}

#[test]
fn with_the_network_denied_an_extension_cannot_connect() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let api = Api::start(&temporary.path().join("data"), &["--extension-network", "deny"]);
    api.publish("Escapes", escapes("1.0.0"), None);
    assert_refused(&api.attempt("Connect", json!({ "Address": api.address() })), "connecting over TCP");
    assert_eq!(api.attempt("OwnFiles", json!({})), "done: wrote and read its own files");
}

#[test]
fn an_extension_over_its_disk_space_is_stopped() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let api = Api::start(&temporary.path().join("data"), &["--extension-disk-mib", "32"]);
    api.publish("Escapes", escapes("1.0.0"), None);
    assert_eq!(api.attempt("FillDisk", json!({ "Megabytes": 64 })), "done: wrote 64 MiB");
    // Stopped within a second or so; its files stay, so each restart is stopped again until the
    // server gives up on it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) =
            api.send(reqwest::Method::POST, "/api/v1/extensions/Escapes/actions/OwnFiles", Some(json!({})));
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "the extension is stopped: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body["error"]["code"], "extension_failed", "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(message.contains("MiB of disk, over its limit of 32 MiB"), "{message}");
}

/// The live (not zombie) processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            String::from_utf8_lossy(&command).contains(marker) && !status.contains("State:\tZ")
        })
        .collect()
}

/// Waits until no live process holds `marker`, failing after 10 s.
fn wait_gone(marker: &str, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes {left:?} survived {after}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn no_process_an_extension_started_outlives_it() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    let mut api = Api::start(&data, &[]);
    let first = api.publish("Escapes", escapes("1.0.0"), None);
    // Distinct sleep lengths mark each round's processes.
    let start = |api: &Api, marker: &str| {
        let outcome = api.attempt("SpawnProcesses", json!({ "Count": 5, "Seconds": marker }));
        assert_eq!(outcome, "done: started 5 of 5");
        let daemon = is_root();
        if daemon {
            // A daemon leaves the process group; as root, the extension's own user catches it.
            assert_eq!(api.attempt("SpawnDaemon", json!({ "Seconds": marker })), "done: started a daemon");
        }
        let expected = if daemon { 6 } else { 5 };
        let deadline = Instant::now() + Duration::from_secs(10);
        while processes_with(marker).len() < expected {
            assert!(Instant::now() < deadline, "the processes started");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    start(&api, "600.101");
    let second = api.publish("Escapes", escapes("1.0.1"), Some(first));
    wait_gone("600.101", "replacing the version");

    start(&api, "600.102");
    let (status, body) = api.send(reqwest::Method::POST, "/api/v1/extensions/Escapes/actions/Exit", Some(json!({})));
    assert_eq!(status, 502, "{body}");
    wait_gone("600.102", "a crash");

    // Restarted after the crash; the server stopping takes everything with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) =
            api.send(reqwest::Method::POST, "/api/v1/extensions/Escapes/actions/OwnFiles", Some(json!({})));
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the extension restarts after its crash");
        std::thread::sleep(Duration::from_millis(50));
    }
    start(&api, "600.103");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(api.server.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signalled");
    api.server.process.0.wait().expect("the server stops");
    wait_gone("600.103", "the server's stop");
    assert!(second > first);
}

#[test]
fn what_a_killed_server_left_running_goes_when_it_starts_again() {
    if !is_root() {
        // Not root, extensions run as the server's user: nothing marks what a dead server left.
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    let mut api = Api::start(&data, &[]);
    api.publish("Escapes", escapes("1.0.0"), None);
    assert_eq!(api.attempt("SpawnProcesses", json!({ "Count": 3, "Seconds": "600.201" })), "done: started 3 of 3");
    assert_eq!(api.attempt("SpawnDaemon", json!({ "Seconds": "600.201" })), "done: started a daemon");
    // SIGKILL: the server cleans nothing up, and what the extension started keeps running (until
    // a server starts: this one again, or another test's, which may come first).
    api.server.process.0.kill().expect("killed");
    api.server.process.0.wait().expect("reaped");
    let _api = Api::start(&data, &[]);
    wait_gone("600.201", "the server's next start");
}

#[test]
fn descriptors_the_server_inherited_and_system_v_objects_stay_out_of_reach() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    // The server starts with a secret open on descriptor 9, as a careless service manager or
    // shell could leave it.
    let secret = temporary.path().join("secret.txt");
    std::fs::write(&secret, "root-only secret").expect("written");
    let wrapper = temporary.path().join("xif-with-a-descriptor");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec 9<\"{}\"\nexec \"{}\" \"$@\"\n", secret.display(), env!("CARGO_BIN_EXE_xif")),
    )
    .expect("written");
    let made_executable = Command::new("chmod").arg("+x").arg(&wrapper).status().expect("chmod runs");
    assert!(made_executable.success());
    let log = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&log);
    let server = xif_testkit::Server::start(
        wrapper.to_str().expect("UTF-8"),
        &temporary.path().join("data"),
        PASSWORD,
        "info",
        &[],
        move |line| kept.lock().expect("log").push_str(&format!("{line}\n")),
    );
    let token = server.token("admin", PASSWORD);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let api = Api { server, log, client: reqwest::Client::new(), token, runtime };
    api.publish("Escapes", escapes("1.0.0"), None);

    let read = api.attempt("Run", json!({ "Command": "cat <&9" }));
    assert_refused(&read, "reading a descriptor the server inherited");
    assert!(!read.contains("secret"), "{read}");

    // A binary that cannot run is refused without the server's paths in the answer, although the
    // launcher and the shell name the binary in the log that the answer quotes.
    let script = temporary.path().join("broken");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").expect("written");
    let definition = std::fs::read_to_string(fixtures::workspace().join("fixtures/escapes/extension.toml"))
        .expect("the fixture's definition")
        .replace("name = \"Escapes\"", "name = \"Broken\"");
    let (status, body) = api.try_publish("Broken", xif_testkit::pack("Broken", "1.0.0", &definition, &script), None);
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("deploy_failed")), "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(!message.contains(&temporary.path().to_string_lossy().into_owned()), "{message}");

    if is_root() {
        // System V objects live in the extension's own IPC namespace: made there, seen there,
        // never in the machine's, and gone with the extension.
        let host_segments = || {
            let output = Command::new("ipcs").arg("-m").output().expect("ipcs runs");
            String::from_utf8_lossy(&output.stdout).lines().filter(|line| line.starts_with("0x")).count()
        };
        let before = host_segments();
        let made = api.attempt("Run", json!({ "Command": "ipcmk -M 65536 && ipcs -m" }));
        assert!(made.starts_with("done: Shared memory id:"), "{made}");
        assert_eq!(host_segments(), before, "the machine's IPC namespace has no new segment");
    }
}
