//! A real `xif server --database postgres://…` with PostgreSQL restarted under it: while the
//! database is down, requests that need it answer 503 `storage_unavailable` and the server keeps
//! running; once it is back, the same token, versions and publication are there and calls work.
//! And what the server shows of the database's URL never holds its password.

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "administrator-password";

/// `METHOD URL` with curl, as `token`, with a JSON `body` or a file's bytes: the status and
/// the JSON answer.
fn request(method: &str, url: &str, token: &str, body: Option<Value>, file: Option<(&str, &str)>) -> (u16, Value) {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .arg(url);
    if let Some(body) = body {
        curl.args(["-H", "content-type: application/json", "-d", &body.to_string()]);
    }
    if let Some((path, digest)) = file {
        curl.args(["-H", &format!("x-xif-sha256: {digest}"), "--data-binary", &format!("@{path}")]);
    }
    let output = curl.output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, status) = text.rsplit_once('\n').expect("a status");
    (status.parse().expect("a status code"), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn sha256_hex(path: &std::path::Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().expect("sha256sum runs");
    String::from_utf8_lossy(&output.stdout).split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn the_server_answers_503_while_postgres_is_down_and_recovers_everything_when_it_is_back() {
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = Arc::new(Mutex::new(String::new()));
    let server = {
        let log = Arc::clone(&log);
        xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &directory.path().join("data"),
            PASSWORD,
            "info",
            &["--database", &url],
            move |line| {
                let mut log = log.lock().expect("the log");
                log.push_str(&line);
                log.push('\n');
            },
        )
    };
    let api = format!("{}/api/v1", server.url);
    let token = server.token("admin", PASSWORD);

    // A version uploaded and published, an action called.
    let definition = "[extension]\nname = \"Greeter\"\nversion = \"1.0.0\"\ndescription = \"Test.\"\n\n\
                      [[actions]]\nname = \"Run\"\ndescription = \"Runs.\"\n";
    let archive = directory.path().join("greeter.xif");
    std::fs::write(&archive, xif_testkit::pack("Greeter", "1.0.0", definition, &fixtures::binary("generic")))
        .expect("written");
    let digest = sha256_hex(&archive);
    let archive_path = archive.to_str().expect("a path");
    let (status, body) =
        request("POST", &format!("{api}/extensions/Greeter/versions"), &token, None, Some((archive_path, &digest)));
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(
        "POST",
        &format!("{api}/extensions/Greeter/publications"),
        &token,
        Some(json!({ "version": 1, "expected": null })),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let call = || request("POST", &format!("{api}/extensions/Greeter/actions/Run"), &token, Some(json!({})), None);
    assert_eq!(call().0, 200);

    // PostgreSQL stops: what needs it answers 503 `storage_unavailable`, soon (the pool does
    // not wait long for a connection), and the server keeps running.
    // (`/me` may still answer: the token was checked moments ago and is cached.)
    cluster.stop();
    for path in ["/extensions", "/extensions/Greeter/versions", "/extensions/Greeter/publications"] {
        let started = Instant::now();
        let (status, body) = request("GET", &format!("{api}{path}"), &token, None, None);
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.contains(xif_testkit::postgres::PASSWORD) && !message.contains("127.0.0.1"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path} answered in {:?}", started.elapsed());
    }
    // Writes too: an upload and a publication are refused the same way, and nothing is kept.
    let (status, body) =
        request("POST", &format!("{api}/extensions/Greeter/versions"), &token, None, Some((archive_path, &digest)));
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
    let (status, body) = request(
        "POST",
        &format!("{api}/extensions/Greeter/publications"),
        &token,
        Some(json!({ "version": 1, "expected": 1 })),
        None,
    );
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
    let staging = directory.path().join("data/blobs/staging");
    assert_eq!(std::fs::read_dir(&staging).map(Iterator::count).unwrap_or(0), 0, "nothing staged is left");
    let (status, _) = request("GET", &format!("{}/healthz", server.url), &token, None, None);
    assert_eq!(status, 200, "the server still runs");

    // Back: the same token, the version and the publication are there, and calls work.
    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let me = loop {
        let (status, body) = request("GET", &format!("{api}/me"), &token, None, None);
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "the server did not recover: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(me["name"], "admin", "{me}");
    let (status, versions) = request("GET", &format!("{api}/extensions/Greeter/versions"), &token, None, None);
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    assert_eq!(versions[0]["published"], true, "{versions}");
    let (_, publications) = request("GET", &format!("{api}/extensions/Greeter/publications"), &token, None, None);
    assert_eq!(publications.as_array().map(Vec::len), Some(1), "{publications}");
    assert_eq!(call().0, 200);
    // A new version is accepted and numbered after the first.
    std::fs::write(
        &archive,
        xif_testkit::pack("Greeter", "1.0.1", &definition.replace("1.0.0", "1.0.1"), &fixtures::binary("generic")),
    )
    .expect("written");
    let digest = sha256_hex(&archive);
    let (status, body) =
        request("POST", &format!("{api}/extensions/Greeter/versions"), &token, None, Some((archive_path, &digest)));
    assert_eq!((status, &body["version"]["number"]), (201, &json!(2)), "{body}");

    // Nothing the server logged holds the password.
    let log = log.lock().expect("the log").clone();
    assert!(!log.contains(xif_testkit::postgres::PASSWORD), "{log}");
}

#[test]
fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a port");
    let directory = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(directory.path().join("data"))
        .args(["--database", &format!("postgres://xif:very-secret@127.0.0.1:{}/xif", port.port())])
        .env("XIF_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("xif runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("very-secret"), "{stderr}");
    assert!(stderr.contains(&format!("postgres://xif:***@127.0.0.1:{}/xif", port.port())), "{stderr}");
    assert!(stderr.contains("hint: check that PostgreSQL runs at that address"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(directory.path().join("data"))
        .args(["--database", "mysql://xif:very-secret@127.0.0.1/xif"])
        .env("XIF_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("xif runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && !stderr.contains("very-secret"), "{stderr}");
    assert!(stderr.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"), "{stderr}");
}
