//! Database connections and mappings end to end: the real `xif` binary against a real `xif
//! server`, real databases (a PostgreSQL cluster started here, SQLite files made with `sqlite3`),
//! and an extension with entities published by a real `xif publish`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "administrator-password";

/// The entities appended to a new project: `Customer` in the logical database `main`, `Note` in
/// `archive`.
const ENTITIES: &str = r#"
[[entities]]
name = "Customer"
description = "A customer."
table = "customers"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true, auto_number = true },
  { name = "Name", type = "Text", length = 100 },
  { name = "Age", type = "Integer" },
  { name = "Joined", type = "Date Time", column = "joined_at" },
]

[[entities]]
name = "Note"
description = "A note."
table = "notes"
database = "archive"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true },
  { name = "Body", type = "Text" },
]
"#;

fn finish(output: Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `xif ARGUMENTS` against `server` as `token`, with `stdin` on its input.
fn xif(directory: &Path, server: &str, token: &str, arguments: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(arguments)
        .current_dir(directory)
        .env("XIF_CONFIG_DIR", directory.join("config"))
        .env("CARGO_TARGET_DIR", xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR")))
        .env("XIF_SERVER", server)
        .env("XIF_TOKEN", token)
        .env_remove("XIF_CONNECTION_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
    finish(child.wait_with_output().expect("finished"))
}

/// `METHOD PATH` with `body` as `token`, by curl: the status and the answer.
fn api(server: &str, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-X", method, "-w", "\n%{http_code}", "-H"]).arg(format!("authorization: Bearer {token}"));
    if let Some(body) = body {
        command.args(["-H", "content-type: application/json", "-d", &body.to_string()]);
    }
    let output = command.arg(format!("{server}/api/v1{path}")).output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.trim().parse().expect("a status"), body.to_owned())
}

/// A token of `user`, from `POST /login`.
fn login(server: &str, user: &str, password: &str) -> String {
    let (status, body) = api(server, "none", "POST", "/login", Some(&json!({ "user": user, "password": password })));
    assert_eq!(status, 200, "{body}");
    json_of(&body)["token"].as_str().expect("a token").to_owned()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("`{text}`: {error}"))
}

/// A project `name` from `xif new` with [`ENTITIES`], published by `xif publish` as `token`.
fn publish_entities(directory: &Path, server: &str, token: &str, name: &str) -> String {
    let (code, _, stderr) = xif(directory, server, token, &["new", name], "");
    assert_eq!(code, Some(0), "{stderr}");
    let definition = directory.join(name).join("extension.toml");
    let text = std::fs::read_to_string(&definition).expect("definition");
    std::fs::write(&definition, format!("{text}{ENTITIES}")).expect("written");
    let (code, stdout, stderr) = xif(
        directory,
        server,
        token,
        &["publish", "--plain", "--path", directory.join(name).to_str().expect("path")],
        "",
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    format!("{stdout}{stderr}")
}

/// An SQLite file at `path` holding `sql`, made by `sqlite3`.
fn sqlite_file(path: &Path, sql: &str) {
    let output = Command::new("sqlite3").arg(path).arg(sql).output().expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A key file for `--secrets-key`.
fn key_file(path: &Path, byte: u8) -> PathBuf {
    std::fs::write(path, hex::encode([byte; 32])).expect("written");
    path.to_owned()
}

#[test]
fn connections_are_added_tested_mapped_checked_and_removed_without_showing_their_password() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::create_dir(root.join("config")).expect("config directory");
    let data = root.join("data");
    // On PostgreSQL metadata (XIF_TEST_DATABASE=postgres) the server is a farm node, given a
    // key by xif_testkit; alone, it makes its own in the data directory.
    let extra = ["--extension-isolation", "off"];
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let server = {
        let log = Arc::clone(&log);
        xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &data, PASSWORD, "debug", &extra, move |line| {
            log.lock().expect("the log").push(line);
        })
    };
    let url = server.url.clone();
    let admin = server.token("admin", PASSWORD);
    let postgres = xif_testkit::postgres::shared();
    let sales = postgres.database();
    assert!(sales.contains(xif_testkit::postgres::PASSWORD));
    let mut shown = String::new();

    // Published with two unmapped logical databases: the publication warns, the API and the
    // CLI say "missing configuration".
    let published = publish_entities(root, &url, &admin, "Shop");
    assert!(
        published.contains("missing configuration") && published.contains("xif admin connection map Shop main"),
        "{published}"
    );
    let (status, body) = api(&url, &admin, "GET", "/extensions/Shop", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["missing_configuration"], json!(["main", "archive"]));
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "mappings", "Shop"], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Shop/main: missing configuration") && stdout.contains("entities: Customer"), "{stdout}");
    assert!(stdout.contains("Shop/archive: missing configuration") && stdout.contains("entities: Note"), "{stdout}");

    // PostgreSQL, from stdin: shown back redacted.
    let (code, stdout, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "add", "sales", "--url-stdin"], &format!("{sales}\n"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sales (PostgreSQL)") && stdout.contains("postgres:***@"), "{stdout}");
    shown += &format!("{stdout}{stderr}");
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "sales"], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sales: ok") && stdout.contains("SELECT 1"), "{stdout}");
    shown += &format!("{stdout}{stderr}");

    // A wrong password, and a database that does not exist: said plainly, exit code 5.
    let wrong = sales.replace(xif_testkit::postgres::PASSWORD, "not-the-password");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "wrong", "--url", &wrong], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "wrong"], "");
    assert_eq!(code, Some(5), "{stdout}{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    let nowhere = format!("{}/no_such_database", sales.rsplit_once('/').expect("a database").0);
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "nowhere", "--url", &nowhere], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "nowhere"], "");
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("has no database `no_such_database`"), "{stderr}");
    shown += &stderr;

    // Nothing listens on the port: refused, said plainly.
    let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a port");
    let down = format!("postgres://postgres:{}@127.0.0.1:{}/sales", xif_testkit::postgres::PASSWORD, free.port());
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "down", "--url", &down], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "down"], "");
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains(&format!("PostgreSQL at 127.0.0.1:{} refused the connection", free.port())), "{stderr}");
    shown += &stderr;
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "remove", "down"], "");
    assert_eq!(code, Some(0), "{stderr}");

    // SQLite: a file outside the data directory is taken, one inside refused, a missing one too.
    let notes = root.join("notes.db");
    sqlite_file(&notes, "CREATE TABLE notes (Id INTEGER PRIMARY KEY, Body TEXT);");
    let sqlite_url = format!("sqlite://{}", notes.display());
    let (code, stdout, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "add", "notes", "--url", &sqlite_url], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("notes (SQLite)"), "{stdout}");
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "notes"], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    sqlite_file(&data.join("inside.db"), "CREATE TABLE t (x INTEGER);");
    let inside = format!("sqlite://{}", data.join("inside.db").display());
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "inside", "--url", &inside], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("inside the server's data directory") && stderr.contains("invalid_connection"), "{stderr}");
    let missing = format!("sqlite://{}", root.join("missing.db").display());
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "missing", "--url", &missing], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("does not exist") && !root.join("missing.db").exists(), "{stderr}");
    if !xif_testkit::postgres::enabled() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("secrets.key")).expect("the key was made").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secrets key is its owner's only");
    }

    // A mismatched table: every problem reported, located in extension.toml; nothing mapped.
    // A table whose name differs only in case: PostgreSQL's quoted names do not match it.
    postgres.sql_in(&sales, "CREATE TABLE \"Customers\" (x INTEGER)");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "main", "sales"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("table `customers` not found") && stderr.contains("`Customers` exists"), "{stderr}");
    postgres.sql_in(&sales, "DROP TABLE \"Customers\"");
    postgres.sql_in(&sales, "CREATE TABLE customers (\"Id\" BIGINT, \"Name\" TEXT, age TEXT)");
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "main", "sales"], "");
    assert_eq!(code, Some(4), "{stdout}{stderr}");
    assert!(stderr.contains("mapping_mismatch"), "{stderr}");
    for expected in [
        "entity `Customer`, attribute `Age`, column `customers.Age`: expected a column `Age`, found `age`: PostgreSQL \
         compares the quoted names the server uses exactly; write `column = \"age\"`",
        "entity `Customer`, attribute `Joined`, column `customers.joined_at`: expected a column `joined_at`, found none",
        "entity `Customer`, attribute `Id`, column `customers.Id`: expected the identifier's column to be a primary key",
        "entity `Customer`, attribute `Id`, column `customers.Id`: expected an identity or serial column",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in:\n{stderr}");
    }
    let located = stderr.lines().filter(|line| line.trim_start().starts_with("extension.toml:")).count();
    assert_eq!(located, 4, "one located line per problem:\n{stderr}");
    let (status, body) =
        api(&url, &admin, "PUT", "/extensions/Shop/databases/main", Some(&json!({ "connection": "sales" })));
    assert_eq!(status, 422, "{body}");
    let problems = json_of(&body)["error"]["problems"].as_array().map(Vec::len);
    assert_eq!(problems, Some(4), "{body}");
    // The definition's line of the Age attribute is where the type is reported.
    let definition = std::fs::read_to_string(root.join("Shop/extension.toml")).expect("definition");
    let age_line = definition.lines().position(|line| line.contains("name = \"Age\"")).expect("the Age line") + 1;
    assert!(stderr.contains(&format!("extension.toml:{age_line}:")), "line {age_line} in:\n{stderr}");

    // Fixed, it maps; the other logical database is still missing configuration.
    postgres.sql_in(&sales, "DROP TABLE customers");
    postgres.sql_in(
        &sales,
        "CREATE TABLE customers (\"Id\" BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \"Name\" VARCHAR(100), \
         \"Age\" INTEGER, joined_at TIMESTAMP)",
    );
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "main", "sales"], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("mapped `Shop`'s logical database `main` to connection `sales`"), "{stderr}");
    let (code, stdout, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "archive", "notes"], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (status, body) = api(&url, &admin, "GET", "/extensions/Shop", None);
    assert_eq!((status, json_of(&body)["missing_configuration"].clone()), (200, json!([])), "{body}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "nope", "notes"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("unknown_logical_database") && stderr.contains("`main`, `archive`"), "{stderr}");

    // The list: kind, redacted URL, who and when, the mappings.
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "list"], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sales (PostgreSQL): postgres://postgres:***@127.0.0.1"), "{stdout}");
    assert!(stdout.contains("added by admin at") && stdout.contains("mapped by Shop/main"), "{stdout}");
    assert!(stdout.contains("notes (SQLite)") && stdout.contains("mapped by Shop/archive"), "{stdout}");
    shown += &format!("{stdout}{stderr}");
    let (status, body) = api(&url, &admin, "GET", "/connections", None);
    assert_eq!(status, 200);
    shown += &body;

    // Not an administrator: refused, saying what is needed.
    let (status, body) = api(
        &url,
        &admin,
        "POST",
        "/users",
        Some(&json!({ "name": "bob", "password": "bobs-long-password", "grant": ["allow-extensions"] })),
    );
    assert_eq!(status, 201, "{body}");
    let bob = server.token("bob", "bobs-long-password");
    let (code, _, stderr) = xif(root, &url, &bob, &["admin", "connection", "list"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("needs an administrator") && stderr.contains("administrator_only"), "{stderr}");
    for (method, path, body) in [
        ("POST", "/connections", Some(json!({ "name": "x", "url": sales }))),
        ("POST", "/connections/sales/test", None),
        ("DELETE", "/connections/sales", None),
        ("GET", "/extensions/Shop/databases", None),
        ("PUT", "/extensions/Shop/databases/main", Some(json!({ "connection": "sales" }))),
    ] {
        let (status, answer) = api(&url, &bob, method, path, body.as_ref());
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }

    // Removing a mapped connection is refused, naming the mapping; --force removes both.
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "remove", "sales"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("connection_in_use") && stderr.contains("`Shop/main`"), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "remove", "sales", "--force"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "remove", "wrong"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (status, body) = api(&url, &admin, "GET", "/extensions/Shop", None);
    assert_eq!((status, json_of(&body)["missing_configuration"].clone()), (200, json!(["main"])), "{body}");
    let (status, body) = api(&url, &admin, "GET", "/extensions/Shop/databases", None);
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)[0]["connection"], Value::Null, "{body}");
    assert_eq!(json_of(&body)[1]["connection"], json!("notes"), "{body}");

    // The password was never shown, nor logged; the metadata holds it only encrypted.
    let secret = xif_testkit::postgres::PASSWORD;
    assert!(!shown.contains(secret), "shown: {shown}");
    server.stop();
    let log = log.lock().expect("the log").join("\n");
    assert!(log.contains("database connection added"), "the log was read");
    assert!(!log.contains(secret) && !log.contains("not-the-password"), "logged: {log}");
    if !xif_testkit::postgres::enabled() {
        let dump = Command::new("sqlite3").arg(data.join("metadata.sqlite")).arg(".dump").output().expect("sqlite3");
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("database_connections") && !dump.contains(secret), "stored in the clear");
    }
}

/// Polls `check` until it holds, for at most `limit`.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_farm_shares_one_secrets_key_and_every_node_sees_a_new_mapping_at_once() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o711)).expect("permissions");
    std::fs::create_dir(root.join("config")).expect("config directory");
    let postgres = xif_testkit::postgres::Cluster::new();
    let mut moto = xif_testkit::s3::Moto::start();
    let key = key_file(&root.join("farm.key"), 1);
    let setup = xif_testkit::farm::Setup {
        binary: env!("CARGO_BIN_EXE_xif").to_owned(),
        database: postgres.database(),
        blobs: moto.bucket("farm"),
        password: PASSWORD.to_owned(),
        extra: vec![
            "--extension-isolation".into(),
            "off".into(),
            "--secrets-key".into(),
            key.to_str().expect("path").to_owned(),
        ],
        env: xif_testkit::s3::ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
    };
    let nodes = setup.nodes(root, 2);
    let (a, b) = (nodes[0].url(), nodes[1].url());
    let admin = login(&a, "admin", PASSWORD);
    publish_entities(root, &a, &admin, "Shop");
    let sales = postgres.database();
    postgres.sql_in(
        &sales,
        "CREATE TABLE customers (\"Id\" BIGSERIAL PRIMARY KEY, \"Name\" TEXT, \"Age\" INTEGER, joined_at TIMESTAMPTZ)",
    );

    // Node B knows the logical database is unmapped (and caches that).
    let missing = |node: &str| {
        let (status, body) = api(node, &admin, "GET", "/extensions/Shop", None);
        assert_eq!(status, 200, "{body}");
        json_of(&body)["missing_configuration"].clone()
    };
    assert!(eventually(Duration::from_secs(30), || missing(&b) == json!(["main", "archive"])), "{}", missing(&b));
    let (code, _, stderr) = xif(root, &a, &admin, &["admin", "connection", "add", "sales", "--url", &sales], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &a, &admin, &["admin", "connection", "map", "Shop", "main", "sales"], "");
    assert_eq!(code, Some(0), "{stderr}");
    // Mapped through A, seen by B without a restart; B decrypts the URL with the shared key.
    assert!(eventually(Duration::from_secs(10), || missing(&b) == json!(["archive"])), "{}", missing(&b));
    let (code, stdout, stderr) = xif(root, &b, &admin, &["admin", "connection", "test", "sales"], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // A node with another key, or none, is refused at start: it could not read the connections.
    let other = key_file(&root.join("other.key"), 2);
    for extra in [vec!["--secrets-key".to_owned(), other.to_str().expect("path").to_owned()], vec![]] {
        let mut setup = setup.clone();
        setup.extra = vec!["--extension-isolation".into(), "off".into()];
        setup.extra.extend(extra);
        let output = setup
            .command(&root.join("refused"), xif_testkit::haproxy::free_port())
            .env("XIF_LOG", "warn")
            .env_remove("XIF_SECRETS_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("the node runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("secrets key") && stderr.contains("--secrets-key"), "{stderr}");
    }
    drop(nodes);

    // A farm started without a key refuses to store a connection, saying how to give one.
    let keyless = xif_testkit::farm::Setup {
        database: postgres.database(),
        blobs: String::new(),
        extra: vec!["--extension-isolation".into(), "off".into()],
        env: Vec::new(),
        ..setup
    };
    let node = keyless.start(&root.join("keyless"), xif_testkit::haproxy::free_port());
    let token = login(&node.url(), "admin", PASSWORD);
    let (status, body) =
        api(&node.url(), &token, "POST", "/connections", Some(&json!({ "name": "sales", "url": sales })));
    assert_eq!(status, 409, "{body}");
    let message = json_of(&body)["error"]["message"].as_str().expect("a message").to_owned();
    assert_eq!(json_of(&body)["error"]["code"], "secrets_key_missing", "{body}");
    assert!(message.contains("--secrets-key") && !message.contains(xif_testkit::postgres::PASSWORD), "{message}");
}

#[test]
fn mariadb_and_sqlite_connections_are_tested_and_their_mappings_checked_per_column() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::create_dir(root.join("config")).expect("config directory");
    let key = key_file(&root.join("farm.key"), 9);
    let key_argument = key.to_str().expect("path").to_owned();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let server = {
        let log = Arc::clone(&log);
        let extra = ["--extension-isolation", "off", "--secrets-key", &key_argument];
        xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &root.join("data"),
            PASSWORD,
            "debug",
            &extra,
            move |line| {
                log.lock().expect("the log").push(line);
            },
        )
    };
    let url = server.url.clone();
    let admin = server.token("admin", PASSWORD);
    publish_entities(root, &url, &admin, "Shop");
    let maria = xif_testkit::mariadb::shared();
    let crm = maria.database();
    let secret = xif_testkit::mariadb::PASSWORD;
    assert!(crm.contains(secret));
    let mut shown = String::new();

    // `mariadb://` is taken as MySQL; tested for real, shown redacted.
    let alias = crm.replacen("mysql://", "mariadb://", 1);
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "crm", "--url-stdin"], &alias);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("crm (MySQL): mariadb://") && stdout.contains(":***@127.0.0.1"), "{stdout}");
    let (code, stdout, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "crm"], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("crm: ok, MySQL at 127.0.0.1"), "{stdout}");
    shown += &format!("{stdout}{stderr}");
    let wrong = crm.replace(secret, "not-the-password");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "wrong", "--url", &wrong], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "wrong"], "");
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("authentication failed") && !stderr.contains("not-the-password"), "{stderr}");
    let nowhere = format!("{}/no_such_database", crm.rsplit_once('/').expect("a database").0);
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "nowhere", "--url", &nowhere], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "test", "nowhere"], "");
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("the database `no_such_database`: it does not exist"), "{stderr}");
    shown += &stderr;

    // MariaDB: mismatches per column, then a table that fits.
    maria.sql_in(&crm, "CREATE TABLE customers (Id BIGINT PRIMARY KEY, Name INT, Age INT, joined_at DATE)");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "main", "crm"], "");
    assert_eq!(code, Some(4), "{stderr}");
    for expected in [
        "attribute `Id`, column `customers.Id`: expected an AUTO_INCREMENT column for an auto-numbered attribute",
        "attribute `Name`, column `customers.Name`: expected varchar, char or a text type for Text, found int",
        "attribute `Joined`, column `customers.joined_at`: expected datetime or timestamp for Date Time, found date",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in:\n{stderr}");
    }
    assert_eq!(stderr.lines().filter(|line| line.trim_start().starts_with("extension.toml:")).count(), 3, "{stderr}");
    maria.sql_in(&crm, "DROP TABLE customers");
    maria.sql_in(
        &crm,
        "CREATE TABLE customers (Id BIGINT AUTO_INCREMENT PRIMARY KEY, Name VARCHAR(100), Age INT, joined_at DATETIME)",
    );
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "main", "crm"], "");
    assert_eq!(code, Some(0), "{stderr}");

    // SQLite: a missing table, then a column of the wrong affinity and an identifier that is no key.
    let notes = root.join("notes.db");
    sqlite_file(&notes, "CREATE TABLE other (x INTEGER);");
    let sqlite_url = format!("sqlite://{}", notes.display());
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "notes", "--url", &sqlite_url], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "archive", "notes"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("entity `Note`: table `notes` not found in the database of connection `notes` (SQLite)"),
        "{stderr}"
    );
    sqlite_file(&notes, "CREATE TABLE notes (Id INTEGER, Body BLOB);");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "archive", "notes"], "");
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains(
            "attribute `Body`, column `notes.Body`: expected TEXT (or CHAR, VARCHAR, CLOB) for Text, found blob"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("attribute `Id`, column `notes.Id`: expected the identifier's column to be a primary key"),
        "{stderr}"
    );
    // --force maps without checking.
    let (code, _, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "map", "Shop", "archive", "notes", "--force"], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("not checked"), "{stderr}");
    let (status, body) = api(&url, &admin, "GET", "/extensions/Shop/databases", None);
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)[0]["connection"], json!("crm"), "{body}");
    assert_eq!(json_of(&body)[1]["connection"], json!("notes"), "{body}");
    let (status, body) = api(&url, &admin, "GET", "/connections", None);
    assert_eq!(status, 200);
    shown += &body;

    assert!(!shown.contains(secret), "shown: {shown}");
    server.stop();
    let log = log.lock().expect("the log").join("\n");
    assert!(!log.contains(secret) && !log.contains("not-the-password"), "logged: {log}");
}

/// What an administrator may not add: a hard link to the server's own metadata (another name of
/// a file in the data directory), and URL parameters sqlx does not read (which it would log with
/// their values). And sqlx's statement logging is off: no SQL text in the server's log, even at
/// `debug`.
#[test]
fn hard_links_to_the_metadata_and_unknown_url_parameters_are_refused_and_no_sql_is_logged() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::create_dir(root.join("config")).expect("config directory");
    let data = root.join("data");
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let server = {
        let log = Arc::clone(&log);
        let extra = ["--extension-isolation", "off"];
        xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &data, PASSWORD, "debug", &extra, move |line| {
            log.lock().expect("the log").push(line);
        })
    };
    let url = server.url.clone();
    let admin = server.token("admin", PASSWORD);
    let add = |name: &str, connection: &str| {
        api(&url, &admin, "POST", "/connections", Some(&json!({ "name": name, "url": connection })))
    };

    // A hard link to a file of the data directory, from elsewhere: refused, naming the file.
    // On SQLite the metadata; on PostgreSQL (whose secrets key comes from the environment)
    // whatever file the data directory holds.
    let own = ["metadata.sqlite", "secrets.key"]
        .into_iter()
        .map(str::to_owned)
        .find(|name| data.join(name).is_file())
        .or_else(|| {
            std::fs::read_dir(&data).expect("the data directory").flatten().find_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                entry.file_type().ok()?.is_file().then_some(name)
            })
        })
        .expect("the data directory holds a file");
    let own = own.as_str();
    let link = root.join("elsewhere.db");
    std::fs::hard_link(data.join(own), &link).expect("a hard link");
    let (status, body) = add("linked", &format!("sqlite://{}", link.display()));
    assert_eq!(status, 400, "{body}");
    assert_eq!(json_of(&body)["error"]["code"], "invalid_connection", "{body}");
    assert!(body.contains("hard link") && body.contains(own), "{body}");
    // A copy is another file: taken.
    let copy = root.join("copy.db");
    sqlite_file(&copy, "CREATE TABLE t (x INTEGER);");
    let (status, body) = add("copy", &format!("sqlite://{}", copy.display()));
    assert_eq!(status, 201, "{body}");

    // Parameters sqlx does not read: refused, named, their values never shown.
    for (connection, parameter) in [
        ("postgres://user:secret-password@127.0.0.1:5432/sales?PASSWORD=leaked-value", "PASSWORD"),
        ("postgres://user:secret-password@127.0.0.1:5432/sales?sslmode=disable&colour=leaked-value", "colour"),
        ("mysql://user:secret-password@127.0.0.1:3306/crm?sslpassword=leaked-value", "sslpassword"),
        ("mariadb://user:secret-password@127.0.0.1:3306/crm?application_name=leaked-value", "application_name"),
    ] {
        let (status, body) = add("params", connection);
        assert_eq!(status, 400, "{connection}: {body}");
        assert_eq!(json_of(&body)["error"]["code"], "invalid_connection", "{body}");
        assert!(body.contains(&format!("`{parameter}`")), "{parameter} named: {body}");
        assert!(!body.contains("leaked-value") && !body.contains("secret-password"), "{body}");
    }
    // Known ones are taken.
    let known = "postgres://user:secret-password@127.0.0.1:5432/sales?sslmode=disable&application_name=xif";
    let (status, body) = add("known", known);
    assert_eq!(status, 201, "{body}");

    // A connection tested (a `SELECT 1` on its pool) and the metadata used throughout: no SQL text
    // in the log, which is at `debug`.
    let (status, body) = api(&url, &admin, "POST", "/connections/copy/test", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("SELECT 1"), "the test ran: {body}");
    server.stop();
    let log = log.lock().expect("the log").join("\n");
    assert!(log.contains("database connection added"), "the log was read at debug: {log}");
    assert!(!log.contains("leaked-value"), "logged: {log}");
    assert!(!log.contains("SELECT 1") && !log.contains("sqlx::query"), "statements logged: {log}");
}
