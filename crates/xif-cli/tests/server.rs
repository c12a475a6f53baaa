//! The Platform Server as a real listening process (`xif server`), over HTTP and TLS, used by
//! real clients: the admin CLI, concurrent publishers, and a server killed with SIGKILL in the
//! middle of an upload and of publications, then restarted.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "administrator-password";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// A running `xif server`; killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// A server on `data`, with `XIF_TEST_DATABASE=postgres` its metadata in a PostgreSQL
    /// database of its own (see `xif_testkit::postgres::test_database`).
    fn start(data: &Path, tls: Option<(&Path, &Path)>) -> Server {
        Server::start_with(data, tls, &[])
    }

    /// The same with `extra` arguments.
    fn start_with(data: &Path, tls: Option<(&Path, &Path)>, extra: &[&str]) -> Server {
        let mut command = Server::embedded(data, tls);
        if let Some(database) = xif_testkit::postgres::test_database(data) {
            command.env("XIF_DATABASE", database);
        }
        command.args(extra);
        Server::spawn(command)
    }

    /// `xif server` on `data` with SQLite in it whatever the back end of the run, for what only
    /// a database file has (it can be lost, damaged, or fill a disk).
    fn embedded(data: &Path, tls: Option<(&Path, &Path)>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
        command.args(["server", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data);
        xif_testkit::s3::configure(&mut command, data);
        if let Some((certificate, key)) = tls {
            command.arg("--tls-cert").arg(certificate).arg("--tls-key").arg(key);
        }
        command
    }

    /// Starts `command`, a `xif server`, and waits until it says where it listens.
    fn spawn(mut command: Command) -> Server {
        let mut child = command
            .env("XIF_ADMIN_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    sender.send(url.to_owned()).ok();
                }
                kept.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
        let url = receiver.recv_timeout(Duration::from_secs(20)).expect("the server says where it listens");
        Server { child, url, log }
    }

    /// SIGTERM, as an operator stops it; waits until it has.
    fn stop(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(status.success());
        assert!(self.child.wait().expect("reaped").success(), "a stopped server exits 0");
    }

    /// SIGKILL: no chance to clean up.
    fn kill(mut self) {
        self.child.kill().expect("killed");
        self.child.wait().expect("reaped");
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn http(ca: Option<&[u8]>) -> reqwest::Client {
    rustls::crypto::ring::default_provider().install_default().ok();
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = ca {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("PEM"));
    }
    builder.build().expect("client")
}

async fn login(client: &reqwest::Client, url: &str, user: &str, password: &str) -> String {
    let response = client
        .post(format!("{url}/api/v1/login"))
        .json(&json!({ "user": user, "password": password }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("JSON")["token"].as_str().expect("token").to_owned()
}

async fn upload(client: &reqwest::Client, url: &str, token: &str, bytes: Vec<u8>) -> (u16, Value) {
    let digest: String = hex::encode(Sha256::digest(&bytes));
    let response = client
        .post(format!("{url}/api/v1/extensions/Served/versions"))
        .bearer_auth(token)
        .header("x-xif-sha256", digest)
        .body(bytes)
        .send()
        .await
        .expect("sent");
    answer(response).await
}

/// A response's status and JSON body; an error body is checked for server paths, which the
/// server never sends (every data directory of these tests is a temporary one).
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        let text = body.to_string();
        assert!(!text.contains(&std::env::temp_dir().display().to_string()), "a server path in {text}");
    }
    (status, body)
}

async fn publish(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    version: i64,
    expected: Option<i64>,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}/api/v1/extensions/Served/publications"))
        .bearer_auth(token)
        .json(&json!({ "version": version, "expected": expected }))
        .send()
        .await
        .expect("sent");
    answer(response).await
}

async fn get(client: &reqwest::Client, url: &str, token: &str, path: &str) -> Value {
    client.get(format!("{url}/api/v1{path}")).bearer_auth(token).send().await.expect("sent").json().await.expect("JSON")
}

/// Real XIFs of one extension in several versions, saved by `xif save` once per run.
fn archives() -> &'static [Vec<u8>] {
    static ARCHIVES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ARCHIVES.get_or_init(|| {
        let temporary = tempfile::tempdir().expect("temporary directory");
        let target = workspace().join("target/extensions");
        xif_testkit::sample_archives(
            env!("CARGO_BIN_EXE_xif"),
            "Served",
            &["0.1.0", "0.2.0", "0.3.0"],
            temporary.path(),
            &target,
        )
    })
}

#[test]
fn over_tls_the_admin_cli_and_a_client_upload_publish_and_download() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).expect("certificate");
    let (certificate, key) = (temporary.path().join("server.pem"), temporary.path().join("server.key"));
    std::fs::write(&certificate, certified.cert.pem()).expect("written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("written");
    let server = Server::start(&temporary.path().join("data"), Some((&certificate, &key)));
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let url = server.url.replace("127.0.0.1", "localhost");
    let ca = std::fs::read(&certificate).expect("certificate");

    let runtime = runtime();
    let client = http(Some(&ca));
    let admin = runtime.block_on(login(&client, &url, "admin", PASSWORD));

    // The admin CLI, trusting the test's certificate.
    let admin_cli = |arguments: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(["admin", "--server", &url, "--ca-cert"])
            .arg(&certificate)
            .args(arguments)
            .env("XIF_TOKEN", &admin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xif admin runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
        let output = child.wait_with_output().expect("finished");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) =
        admin_cli(&["user", "add", "bob", "--grant", "allow-extensions", "--password-stdin"], "bobs-long-password\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "bob: allow-extensions\n");
    let (code, _, stderr) = admin_cli(&["user", "add", "bob", "--password-stdin"], "bobs-long-password\n");
    assert_eq!((code, stderr.as_str()), (Some(4), "error: a user `bob` exists already (user_exists)\n"));
    let (code, stdout, _) = admin_cli(&["user", "grant", "bob", "change-and-deploy"], "");
    assert_eq!((code, stdout.as_str()), (Some(0), "bob: allow-extensions, allow-foreign-entities\n"));
    let (code, stdout, _) = admin_cli(&["user", "revoke", "bob", "allow-foreign-entities"], "");
    assert_eq!((code, stdout.as_str()), (Some(0), "bob: allow-extensions\n"));
    let (code, stdout, _) = admin_cli(&["user", "list"], "");
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "admin administrator: allow-extensions, allow-foreign-entities\nbob: allow-extensions\n")
    );

    // Bob uploads, publishes and downloads over TLS.
    let bob = runtime.block_on(login(&client, &url, "bob", "bobs-long-password"));
    let (status, body) = runtime.block_on(upload(&client, &url, &bob, archives()[0].clone()));
    assert_eq!(status, 201, "{body}");
    let (status, body) = runtime.block_on(publish(&client, &url, &bob, 1, None));
    assert_eq!((status, &body["published"]), (200, &json!(true)), "{body}");
    let downloaded = runtime.block_on(async {
        client
            .get(format!("{url}/api/v1/extensions/Served/versions/1/xif"))
            .bearer_auth(&bob)
            .send()
            .await
            .expect("sent")
            .bytes()
            .await
            .expect("body")
    });
    assert_eq!(downloaded.as_ref(), archives()[0].as_slice());

    // The published sample runs: invoked through the server with the CLI.
    let bob_cli = |arguments: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(arguments)
            .args(["--server", &url, "--ca-cert"])
            .arg(&certificate)
            .env("XIF_TOKEN", &bob)
            .output()
            .expect("xif runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) =
        bob_cli(&["invoke", "Served", "Greet", "--input", r#"{"Person": {"Name": "Ada Lovelace"}}"#]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).expect("JSON"), json!({ "Greeting": "Hello, Ada!" }));
    let (code, _, stderr) = bob_cli(&["invoke", "Served", "Greet", "--input", "{}"]);
    assert_eq!(code, Some(4));
    assert_eq!(
        stderr,
        "error: action `Greet` needs input `Person` (Record of `Person`), which was not given (invalid_input)\n"
    );
    // The sample writes nothing: the log is empty, and the command says so on stderr.
    let (code, stdout, stderr) = bob_cli(&["logs", "Served"]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    assert_eq!(stderr, "the running version of `Served` has written nothing yet\n");

    // A client that does not trust the certificate is refused by TLS.
    let untrusting = http(None);
    assert!(runtime.block_on(untrusting.get(format!("{url}/healthz")).send()).is_err());

    let (code, _, _) = admin_cli(&["user", "remove", "bob"], "");
    assert_eq!(code, Some(0));
    let log = server.log();
    for secret in [PASSWORD, "bobs-long-password", admin.as_str(), bob.as_str()] {
        assert!(!log.contains(secret), "the server's log never holds passwords or tokens");
    }
    assert!(log.contains("\"message\":\"published\""), "structured logs: {log}");
}

#[test]
fn two_clients_publishing_at_once_never_both_win() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(&temporary.path().join("data"), None);
    let runtime = runtime();
    let client = http(None);
    let url = server.url.clone();
    runtime.block_on(async {
        let admin = login(&client, &url, "admin", PASSWORD).await;
        for archive in archives() {
            assert_eq!(upload(&client, &url, &admin, archive.clone()).await.0, 201);
        }
        assert_eq!(publish(&client, &url, &admin, 1, None).await.0, 200);
        for _round in 0..5 {
            let current = get(&client, &url, &admin, "/extensions").await[0]["published"].as_i64();
            let others: Vec<i64> = (1..=3).filter(|number| Some(*number) != current).collect();
            let (first, second) = tokio::join!(
                publish(&client, &url, &admin, others[0], current),
                publish(&client, &url, &admin, others[1], current)
            );
            let outcomes = [first, second];
            let won = outcomes.iter().filter(|(status, _)| *status == 200).count();
            assert_eq!(won, 1, "exactly one publication wins: {outcomes:?}");
            for (status, body) in &outcomes {
                if *status != 200 {
                    assert_eq!(*status, 409, "{body}");
                    let code = body["error"]["code"].as_str().unwrap_or_default();
                    assert!(code == "stale_version" || code == "publication_in_progress", "{body}");
                }
            }
        }
        let history = get(&client, &url, &admin, "/extensions/Served/publications").await;
        assert_eq!(history.as_array().map(Vec::len), Some(6), "one publication recorded per round, plus the first");
    });
}

/// Uploads under way on the server of `data`: staged files, or, on S3, multipart uploads and
/// staged objects in its bucket.
fn staged_uploads(data: &Path) -> usize {
    if xif_testkit::s3::enabled() {
        let (objects, uploads) = xif_testkit::s3::objects_for(data, "staging/");
        return objects + uploads;
    }
    std::fs::read_dir(data.join("blobs/staging")).map(|entries| entries.count()).unwrap_or(0)
}

#[test]
fn a_server_killed_during_an_upload_restarts_without_a_trace_of_it() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    let server = Server::start(&data, None);
    let runtime = runtime();
    let client = http(None);
    let url = server.url.clone();
    let admin = runtime.block_on(login(&client, &url, "admin", PASSWORD));

    // Send half of the archive, then kill the server while it waits for the rest.
    let archive = archives()[0].clone();
    let digest: String = hex::encode(Sha256::digest(&archive));
    let half = bytes::Bytes::copy_from_slice(&archive[..archive.len() / 2]);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]).chain(futures_util::stream::pending());
    let request = client
        .post(format!("{url}/api/v1/extensions/Served/versions"))
        .bearer_auth(&admin)
        .header("x-xif-sha256", &digest)
        .header("content-length", archive.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    runtime.block_on(async {
        let pending = tokio::spawn(request);
        // The staged file (or multipart upload) appears when the server starts receiving the body.
        let mut staged = 0;
        for _ in 0..500 {
            staged = staged_uploads(&data);
            if staged > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(staged, 1, "the upload is under way when the server is killed");
        server.kill();
        assert!(pending.await.expect("joined").is_err(), "the upload did not complete");
    });

    let server = Server::start(&data, None);
    let url = server.url.clone();
    runtime.block_on(async {
        let admin = login(&client, &url, "admin", PASSWORD).await;
        assert_eq!(get(&client, &url, &admin, "/extensions").await, json!([]), "no half-stored version");
        if xif_testkit::s3::enabled() {
            // The multipart upload of a killed server stays in the bucket until the bucket's
            // lifecycle rule removes it (see ARCHITECTURE.md); it is never an archive.
            assert_eq!(xif_testkit::s3::objects_for(&data, "sha256/").0, 0);
        } else {
            assert_eq!(staged_uploads(&data), 0);
            assert_eq!(std::fs::read_dir(data.join("blobs/sha256")).expect("blobs").count(), 0);
        }
        assert_eq!(upload(&client, &url, &admin, archive).await.0, 201, "the same upload succeeds after the restart");
    });
}

#[test]
fn a_server_killed_during_publications_restarts_consistent() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    // On PostgreSQL, shared by a farm, the lock of a killed server is not freed when it starts
    // again (another server may be publishing) but when its lease ends: a short one.
    let shared = xif_testkit::postgres::enabled();
    let extra: &[&str] = if shared { &["--lock-lease", "1"] } else { &[] };
    let mut server = Server::start_with(&data, None, extra);
    let runtime = runtime();
    let client = http(None);
    let admin = runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        for archive in archives() {
            assert_eq!(upload(&client, &server.url, &admin, archive.clone()).await.0, 201);
        }
        admin
    });
    for delay_ms in [0u64, 1, 2, 5, 10] {
        let url = server.url.clone();
        let current =
            runtime.block_on(async { get(&client, &url, &admin, "/extensions").await[0]["published"].as_i64() });
        let target = if current == Some(2) { 3 } else { 2 };
        runtime.block_on(async {
            let request = tokio::spawn({
                let client = client.clone();
                let admin = admin.clone();
                async move { publish(&client, &url, &admin, target, current).await }
            });
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            request.abort();
        });
        server.kill();
        server = Server::start_with(&data, None, extra);
        let url = server.url.clone();
        runtime.block_on(async {
            let published = get(&client, &url, &admin, "/extensions").await[0]["published"].as_i64();
            assert!(published == current || published == Some(target), "{published:?}");
            let history = get(&client, &url, &admin, "/extensions/Served/publications").await;
            let last = history.as_array().and_then(|list| list.last()).map(|publication| publication["to"].as_i64());
            assert_eq!(last.flatten(), published, "the record and the state agree");
            // No lock survives the restart (or, shared, its lease): the next publication goes
            // through.
            let next = if published == Some(1) { 3 } else { 1 };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (status, body) = publish(&client, &url, &admin, next, published).await;
                if shared
                    && status == 409
                    && body["error"]["code"] == "publication_in_progress"
                    && std::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                assert_eq!(status, 200, "{body}");
                break;
            }
        });
    }
}

#[test]
fn every_data_type_round_trips_through_the_server() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    // The every-type fixture, copied and saved with `xif save`.
    let project = temporary.path().join("every-type");
    std::fs::create_dir_all(project.join("src")).expect("created");
    for file in ["extension.toml", "src/main.rs"] {
        std::fs::copy(workspace().join("fixtures/every-type").join(file), project.join(file)).expect("copied");
    }
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"every_type\"\nversion = \"1.0.0\"\nedition = \"2024\"\n\n[dependencies]\nxif-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            workspace().join("crates/xif-sdk").display().to_string()
        ),
    )
    .expect("written");
    let archive = temporary.path().join("every.xif");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["--quiet", "save", "-o"])
        .arg(&archive)
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", workspace().join("target/extensions"))
        .output()
        .expect("xif runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let server = Server::start(&temporary.path().join("data"), None);
    let runtime = runtime();
    let client = http(None);
    let url = server.url.clone();
    runtime.block_on(async {
        let admin = login(&client, &url, "admin", PASSWORD).await;
        let bytes = std::fs::read(&archive).expect("archive");
        let digest: String = hex::encode(Sha256::digest(&bytes));
        let response = client
            .post(format!("{url}/api/v1/extensions/EveryType/versions"))
            .bearer_auth(&admin)
            .header("x-xif-sha256", digest)
            .body(bytes)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201);
        let response = client
            .post(format!("{url}/api/v1/extensions/EveryType/publications"))
            .bearer_auth(&admin)
            .json(&json!({ "version": 1, "expected": null }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let inputs = json!({
            "Text": "héllo", "Integer": -2147483648, "LongInteger": 9007199254740993_i64,
            "Decimal": "12345678901234567.0123456789", "Boolean": true, "DateTime": "2024-02-29T23:59:59",
            "Date": "1900-01-01", "Time": "00:00:01", "Email": "ada@example.invalid", "PhoneNumber": "+44 20 7946 0000",
            "Currency": "19.99", "BinaryData": "AAEC/f7/",
        });
        let response = client
            .post(format!("{url}/api/v1/extensions/EveryType/actions/EchoScalars"))
            .bearer_auth(&admin)
            .json(&inputs)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.expect("JSON"),
            json!({ "Values": inputs }),
            "every value comes back exactly"
        );
        let lines = json!({ "Lines": [{ "Product": "Tea", "Amount": "2.50" }, { "Product": "Cake", "Amount": 3.25 }] });
        let response = client
            .post(format!("{url}/api/v1/extensions/EveryType/actions/Total"))
            .bearer_auth(&admin)
            .json(&lines)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.json::<Value>().await.expect("JSON"), json!({ "Total": "5.75" }));
    });
}

#[test]
fn a_server_started_with_its_defaults_keeps_its_data_in_the_users_data_directory_and_runs_extensions() {
    // As a newcomer would: no --data-dir, from a directory of no importance.
    let temporary = tempfile::tempdir().expect("temporary directory");
    let (home, elsewhere) = (temporary.path().join("home"), temporary.path().join("elsewhere"));
    std::fs::create_dir_all(&elsewhere).expect("created");
    let root = nix::unistd::geteuid().is_root();
    let mut command = if root {
        // Root's default is `/var/lib/xif`: the server runs in a mount namespace of its own in
        // which a fresh file system stands there, so that the machine's is left alone.
        std::fs::create_dir_all("/var/lib/xif").expect("created");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=0755 tmpfs /var/lib/xif && exec \"$0\" server --listen 127.0.0.1:0");
        command.arg(env!("CARGO_BIN_EXE_xif"));
        command
    } else {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
        command.args(["server", "--listen", "127.0.0.1:0"]);
        command
    };
    command.current_dir(&elsewhere).env("HOME", &home).env_remove("XDG_DATA_HOME").env_remove("XIF_DATA_DIR");
    let server = Server::spawn(command);
    // As root the extensions run as users of their own, who must reach their working
    // directories in it: root's home would not do.
    let data = if root { PathBuf::from("/var/lib/xif") } else { home.join(".local/share/xif") };
    assert!(server.log().contains(&format!("data directory: {}", data.display())), "{}", server.log());
    let runtime = runtime();
    let client = http(None);
    runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        assert_eq!(upload(&client, &server.url, &admin, archives()[0].clone()).await.0, 201);
        let (status, body) = publish(&client, &server.url, &admin, 1, None).await;
        assert_eq!(status, 200, "{body}");
        let answer = client
            .post(format!("{}/api/v1/extensions/Served/actions/Greet", server.url))
            .bearer_auth(&admin)
            .json(&json!({ "Person": { "Name": "Ada" } }))
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.json::<Value>().await.expect("JSON")["Greeting"], "Hello, Ada!");
    });
    if !root {
        assert!(data.join("metadata.sqlite").is_file());
    }
    assert_eq!(std::fs::read_dir(&elsewhere).expect("listed").count(), 0, "nothing written where it started");
}

/// Starts `xif server` on `data`, which must refuse to start; returns its stderr.
fn refused_start(data: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("XIF_ADMIN_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif server runs");
    // A server that starts after all says so, and is then stopped rather than waited for.
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().expect("stderr")).lines().map_while(Result::ok) {
        stderr.push_str(&format!("{line}\n"));
        if line.starts_with("listening on ") {
            child.kill().ok();
            break;
        }
    }
    let status = child.wait().expect("finished");
    assert_eq!(status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_lost_empty_or_corrupt_database_is_refused_at_start_and_nothing_is_initialised_over_it() {
    if xif_testkit::s3::enabled() {
        // About the embedded stores: a lost database told by the archives beside it.
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let data = temporary.path().join("data");
    let server = Server::spawn(Server::embedded(&data, None));
    let runtime = runtime();
    let client = http(None);
    runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        assert_eq!(upload(&client, &server.url, &admin, archives()[0].clone()).await.0, 201);
    });
    // Only the server reads its data: others may pass through the directory (to the extensions'
    // working directories), not list it.
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).expect("there").permissions().mode() & 0o777
    };
    assert_eq!((mode(&data), mode(&data.join("metadata.sqlite")), mode(&data.join("blobs"))), (0o711, 0o600, 0o700));
    // A second server on the same data directory is refused while the first runs.
    let stderr = refused_start(&data);
    assert!(stderr.contains("another server is running on this data directory"), "{stderr}");
    // Stopped as an operator would, its database is one file: a copy of it is a whole backup.
    server.stop();
    let database = data.join("metadata.sqlite");
    assert!(!data.join("metadata.sqlite-wal").exists(), "the write-ahead log is checkpointed at stop");
    let backup = temporary.path().join("backup");
    std::fs::create_dir_all(&backup).expect("created");
    let files = vec!["metadata.sqlite".to_owned()];
    std::fs::copy(&database, backup.join("metadata.sqlite")).expect("copied");

    // Another SQLite database (none of this server's tables): refused, and not written to.
    std::fs::remove_file(&database).expect("removed");
    let made = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); c.commit()",
        ])
        .arg(&database)
        .status()
        .expect("python3 runs");
    assert!(made.success());
    let before = std::fs::read(&database).expect("read");
    let stderr = refused_start(&data);
    assert!(stderr.contains("holds none of this server's records"), "{stderr}");
    assert_eq!(std::fs::read(&database).expect("read"), before, "the other database is left as it was");

    // Empty: refused, and left empty rather than made a fresh install.
    std::fs::write(&database, b"").expect("emptied");
    let stderr = refused_start(&data);
    assert!(stderr.contains("metadata.sqlite` is empty") && stderr.contains("hint: restore"), "{stderr}");
    assert_eq!(std::fs::metadata(&database).expect("there").len(), 0);

    // Missing while archives are there.
    std::fs::remove_file(&database).expect("removed");
    let stderr = refused_start(&data);
    assert!(stderr.contains("holds uploaded archives but no database"), "{stderr}");
    assert!(!database.exists());

    // A damaged first page: refused, naming the file, saying what to do.
    let mut bytes = std::fs::read(backup.join("metadata.sqlite")).expect("read");
    for byte in &mut bytes[..100] {
        *byte = 0xA5;
    }
    std::fs::write(&database, &bytes).expect("damaged");
    let stderr = refused_start(&data);
    assert!(stderr.contains("metadata.sqlite` is damaged") && stderr.contains("restore it from a backup"), "{stderr}");

    // Restored from the backup, it starts with everything it had.
    for name in &files {
        std::fs::copy(backup.join(name), data.join(name)).expect("restored");
    }
    let server = Server::spawn(Server::embedded(&data, None));
    runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        assert_eq!(get(&client, &server.url, &admin, "/extensions").await[0]["versions"], 1);
    });
}

#[test]
fn clients_going_away_during_a_publication_leave_no_lock_and_the_running_version_is_the_published_one() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(&temporary.path().join("data"), None);
    let runtime = runtime();
    let client = http(None);
    let url = server.url.clone();
    let admin = runtime.block_on(async {
        let admin = login(&client, &url, "admin", PASSWORD).await;
        for archive in archives() {
            assert_eq!(upload(&client, &url, &admin, archive.clone()).await.0, 201);
        }
        admin
    });
    // The client goes away at several points of the publication: during the deploy, around the
    // switch and the record.
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        runtime.block_on(async {
            let published = get(&client, &url, &admin, "/extensions").await[0]["published"].as_i64();
            let target = if published == Some(2) { 3 } else { 2 };
            let before = get(&client, &url, &admin, "/extensions/Served/publications").await;
            let request = tokio::spawn({
                let (client, url, admin) = (client.clone(), url.clone(), admin.clone());
                async move { publish(&client, &url, &admin, target, published).await }
            });
            // Once the server holds the publication's lock (or has already recorded it), the
            // client goes away.
            let mut waited = 0;
            while get(&client, &url, &admin, "/locks").await == json!([])
                && get(&client, &url, &admin, "/extensions/Served/publications").await == before
            {
                assert!(waited < 3000, "the publication did not start within 30 s");
                waited += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            request.abort();
            // The publication runs to its end on the server and lets go of its lock.
            let mut waited = 0;
            while get(&client, &url, &admin, "/locks").await != json!([]) {
                assert!(waited < 3000, "the lock is still held after 30 s");
                waited += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let extension = get(&client, &url, &admin, "/extensions").await[0].clone();
            assert_eq!(extension["published"], extension["running"], "{extension}");
            // At once, the next publication goes through.
            let now = extension["published"].as_i64();
            let next = if now == Some(1) { 3 } else { 1 };
            let (status, body) = publish(&client, &url, &admin, next, now).await;
            assert_eq!(status, 200, "{body}");
            let extension = get(&client, &url, &admin, "/extensions").await[0].clone();
            assert_eq!((&extension["published"], &extension["running"]), (&json!(next), &json!(next)));
        });
    }
    // The administrator's view of locks from the CLI.
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["admin", "--server", &url, "lock", "list"])
        .env("XIF_TOKEN", &admin)
        .output()
        .expect("xif admin runs");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no publication lock is held"));
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["admin", "--server", &url, "lock", "break", "Served"])
        .env("XIF_TOKEN", &admin)
        .output()
        .expect("xif admin runs");
    assert_eq!(output.status.code(), Some(4), "refused: no lock");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no publication of `Served` holds a lock (no_lock)"));
}

/// A small file system of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, megabytes: u64) -> SmallDisk {
        std::fs::create_dir_all(path).expect("created");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root, as the tests run here and on CI");
        SmallDisk { path: path.to_owned() }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        Command::new("umount").arg("-l").arg(&self.path).status().ok();
    }
}

/// The first start after an upgrade moves the integration log of the version before (a row per
/// entry) to its new layout. On a disk too full for that, the server says the disk is full (not
/// that the database is damaged, whose advice is to restore a backup) and loses nothing; with room
/// again, it moves every entry and starts.
#[test]
fn a_disk_too_full_to_move_the_old_integration_log_is_said_and_nothing_is_lost() {
    if xif_testkit::s3::enabled() {
        // About the embedded database on the local disk.
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let disk = SmallDisk::mount(&temporary.path().join("disk"), 24);
    let data = disk.path.join("data");
    Server::spawn(Server::embedded(&data, None)).stop();
    // The database as the version before left it: its log a table `calls`, 100,000 entries.
    let made = Command::new("python3")
        .args(["-c", OLD_LOG_SCHEMA])
        .arg(data.join("metadata.sqlite"))
        .status()
        .expect("python3 runs");
    assert!(made.success());
    // The disk full but for a little: the move needs more.
    let filler = disk.path.join("filler");
    {
        let mut file = std::fs::File::create(&filler).expect("created");
        let block = vec![7u8; 1 << 16];
        while file.write_all(&block).is_ok() {}
        let size = file.metadata().expect("its size").len();
        file.set_len(size.saturating_sub(256 << 10)).expect("shrunk");
    }
    let stderr = refused_start(&data);
    assert!(stderr.contains("the disk is full") && stderr.contains("nothing was lost"), "{stderr}");
    assert!(!stderr.contains("damaged"), "{stderr}");

    std::fs::remove_file(&filler).expect("removed");
    let server = Server::spawn(Server::embedded(&data, None));
    let client = http(None);
    let entries = runtime().block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        let mut entries = 0;
        let mut url = format!("{}/api/v1/extensions/Echo/calls?limit=1000", server.url);
        loop {
            let response = client.get(&url).bearer_auth(&admin).send().await.expect("sent");
            let next = response.headers().get("link").and_then(|link| link.to_str().ok()).map(str::to_owned);
            let page: Value = response.json().await.expect("JSON");
            let page = page.as_array().cloned().unwrap_or_else(|| panic!("not a page: {page}"));
            entries += page.len();
            let Some(next) = next else { break entries };
            let path = next.trim_start_matches('<').split('>').next().expect("a link");
            url = format!("{}{path}", server.url);
        }
    });
    assert_eq!(entries, 100_000, "every entry of the old log, once");
}

/// Turns the database at `argv[1]` back into what the version before the integration log's
/// segments left (migration 10 not applied, the log a table `calls`), holding 100,000 entries of
/// extension Echo.
const OLD_LOG_SCHEMA: &str = "import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript('''
DROP TABLE call_segments;
DELETE FROM schema_migrations WHERE version = 10;
CREATE TABLE calls (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, extension TEXT NOT NULL COLLATE NOCASE,
  module TEXT COLLATE NOCASE, user_name TEXT NOT NULL, token_id INTEGER, kind TEXT NOT NULL,
  operation TEXT NOT NULL, duration_us INTEGER NOT NULL, error TEXT, node TEXT);
CREATE INDEX calls_extension_at ON calls (extension, at);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO calls (at, extension, user_name, kind, operation, duration_us, node)
SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000000 - i, 'Echo', 'admin', 'action', 'Say', i, 'here' FROM n;
''')
db.commit()
";

#[test]
fn a_full_disk_fails_the_request_with_a_clear_error_and_keeps_nothing_half_written() {
    if xif_testkit::s3::enabled() {
        // About the local disk, where archives are not kept on S3.
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let disk = SmallDisk::mount(&temporary.path().join("disk"), 24);
    let data = disk.path.join("data");
    let server = Server::spawn(Server::embedded(&data, None));
    let runtime = runtime();
    let client = http(None);
    runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        assert_eq!(upload(&client, &server.url, &admin, archives()[0].clone()).await.0, 201);

        // An upload larger than the space left.
        let mut large = vec![0u8; 40 << 20];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for byte in &mut large {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let (status, body) = upload(&client, &server.url, &admin, large).await;
        assert_eq!((status, body["error"]["code"].as_str()), (507, Some("storage_full")), "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("no space left") && !message.contains(&data.display().to_string()), "{message}");
        assert_eq!(
            std::fs::read_dir(data.join("blobs/staging")).expect("staging").count(),
            0,
            "nothing staged is left"
        );
        assert_eq!(get(&client, &server.url, &admin, "/extensions").await[0]["versions"], 1);

        // The database cannot grow either: the request fails clearly, and works once there is room.
        let filler = disk.path.join("filler");
        {
            let mut file = std::fs::File::create(&filler).expect("created");
            let block = vec![7u8; 1 << 16];
            while file.write_all(&block).is_ok() {}
        }
        let new_user = json!({ "name": "carol", "password": "a-long-password" });
        let add = |body: Value| {
            let (client, url, admin) = (client.clone(), server.url.clone(), admin.clone());
            async move {
                let response = client
                    .post(format!("{url}/api/v1/users"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent");
                (response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
            }
        };
        let (status, body) = add(new_user.clone()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (507, Some("storage_full")), "{body}");
        std::fs::remove_file(&filler).expect("removed");
        let (status, body) = add(new_user).await;
        assert_eq!(status, 201, "{body}");
    });
    // The server kept serving throughout, and starts again on the same data.
    drop(server);
    let server = Server::spawn(Server::embedded(&data, None));
    runtime.block_on(async {
        let admin = login(&client, &server.url, "admin", PASSWORD).await;
        assert_eq!(get(&client, &server.url, &admin, "/extensions").await[0]["versions"], 1);
        login(&client, &server.url, "carol", "a-long-password").await;
    });
}
