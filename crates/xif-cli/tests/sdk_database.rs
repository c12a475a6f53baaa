//! An extension's own code on its logical databases (`xif_sdk::database`), end to end: a real
//! extension project whose actions insert and read rows through the SDK, published by the real
//! `xif publish` on a real `xif server` (extensions isolated as the server runs them), its
//! logical database `main` mapped to a PostgreSQL database of a cluster started here, then to an
//! SQLite file, then to a MariaDB database; the rows checked with `psql`, `sqlite3` and `mariadb`. A logical database the definition
//! does not declare, one it declares but nobody mapped, the database's own error, and the
//! database stopped under the server each give the action a clear error, and the server keeps
//! serving. `xif call` runs the queries locally on a database given with `--database`, and
//! without one says they are not available.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "administrator-password";

const DEFINITION: &str = r#"
[extension]
name = "Ledger"
version = "1.0.0"
description = "Keeps entries in a database of its own."

[[actions]]
name = "Add"
description = "Adds an entry, then lists every entry."

[[actions.inputs]]
name = "Name"
type = "Text"

[[actions.inputs]]
name = "Amount"
type = "Decimal"
length = 12
decimals = 2

[[actions.inputs]]
name = "Day"
type = "Date"

[[actions.inputs]]
name = "Receipt"
type = "Binary Data"

[[actions.inputs]]
name = "Marks"
description = "How the SQL marks parameters: `$` ($1, $2: PostgreSQL, SQLite) or `?` (MySQL)."
type = "Text"
default = "$"

[[actions.outputs]]
name = "Entries"
type = "Text"

[[actions]]
name = "Count"
description = "Counts the rows of a table of a logical database."

[[actions.inputs]]
name = "Database"
type = "Text"

[[actions.inputs]]
name = "Table"
type = "Text"

[[actions.outputs]]
name = "Rows"
type = "Long Integer"

[[actions]]
name = "Select"
description = "Counts the rows a query returns."

[[actions.inputs]]
name = "Sql"
type = "Text"

[[actions.outputs]]
name = "Rows"
type = "Long Integer"

[[actions]]
name = "Later"
description = "Leaves a thread that queries once the call has returned."

[[entities]]
name = "Entry"
description = "An entry."
table = "entries"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true, auto_number = true, column = "id" },
  { name = "Name", type = "Text", length = 100, column = "name" },
  { name = "Amount", type = "Decimal", length = 12, decimals = 2, column = "amount" },
  { name = "Day", type = "Date", column = "day" },
  { name = "Active", type = "Boolean", column = "active" },
  { name = "Receipt", type = "Binary Data", column = "receipt" },
]

[[entities]]
name = "OldEntry"
description = "An entry of years past."
table = "old_entries"
database = "archive"
attributes = [{ name = "Id", type = "Long Integer", identifier = true }]
"#;

const MAIN: &str = r#"//! The actions of Ledger: rows in its logical database `main`, through the SDK.

#[rustfmt::skip]
mod bindings;

use bindings::*;

struct Implementation;

impl bindings::Extension for Implementation {
    fn add(&self, name: Text, amount: Decimal, day: Date, receipt: BinaryData, marks: Text) -> Result<Text, ActionError> {
        let mark = |n: usize| if marks == "?" { "?".to_owned() } else { format!("${n}") };
        let database = xif_sdk::database("main")?;
        let inserted = database.execute(
            &format!(
                "INSERT INTO entries (name, amount, day, active, receipt) VALUES ({}, {}, {}, {}, {})",
                mark(1),
                mark(2),
                mark(3),
                mark(4),
                mark(5)
            ),
            &xif_sdk::params![name, amount, day, true, receipt]?,
        )?;
        if inserted != 1 {
            return Err(ActionError::new("not_inserted", format!("{inserted} rows inserted")));
        }
        // The handle works from another thread of the call too.
        let rows = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    database.query(
                        &format!(
                            "SELECT name, amount, day, active, receipt FROM entries WHERE amount >= {} ORDER BY name",
                            mark(1)
                        ),
                        &xif_sdk::params![Decimal::ZERO]?,
                    )
                })
                .join()
                .map_err(|_| ActionError::new("panic", "the querying thread panicked"))?
        })?;
        let entries = rows
            .iter()
            .map(|row| {
                Ok(format!(
                    "{}={}@{}:{}#{:?}",
                    row.get::<Text>("name")?,
                    row.get::<Decimal>("amount")?,
                    row.get::<Date>("day")?,
                    row.get::<bool>("active")?,
                    row.get::<BinaryData>("receipt")?.0
                ))
            })
            .collect::<Result<Vec<String>, ActionError>>()?;
        Ok(entries.join(","))
    }

    fn count(&self, database: Text, table: Text) -> Result<LongInteger, ActionError> {
        let rows = xif_sdk::database(&database)?.query(&format!("SELECT COUNT(*) AS n FROM {table}"), &[])?;
        rows.first().ok_or_else(|| ActionError::new("no_rows", "COUNT returned no row"))?.get("n")
    }

    fn select(&self, sql: Text) -> Result<LongInteger, ActionError> {
        Self::rows(&sql)
    }

    fn later(&self) -> Result<(), ActionError> {
        let database = xif_sdk::database("main")?;
        std::thread::spawn(move || {
            // Long enough for the call to have returned: the host then refuses the query.
            std::thread::sleep(std::time::Duration::from_millis(300));
            match database.query("SELECT 1 AS one", &[]) {
                Ok(_) => eprintln!("later: the query ran after its call"),
                Err(error) => eprintln!("later: {error}"),
            }
        });
        Ok(())
    }
}

impl Implementation {
    fn rows(sql: &str) -> Result<LongInteger, ActionError> {
        let rows = xif_sdk::database("main")?.query(sql, &[])?;
        Ok(LongInteger::try_from(rows.len()).unwrap_or(LongInteger::MAX))
    }
}

fn main() -> std::process::ExitCode {
    bindings::serve(Implementation)
}
"#;

/// `xif ARGUMENTS` in `directory` against `server` as `token`, with `stdin` on its input: the
/// exit code, stdout and stderr.
fn xif(directory: &Path, server: &str, token: &str, arguments: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(arguments)
        .current_dir(directory)
        .env("XIF_CONFIG_DIR", directory.join("config"))
        .env("CARGO_TARGET_DIR", xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR")))
        .env("XIF_SERVER", server)
        .env("XIF_TOKEN", token)
        .env("NO_COLOR", "1")
        .env_remove("XIF_CONNECTION_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
    let output: Output = child.wait_with_output().expect("finished");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `POST /extensions/Ledger/actions/ACTION` with `inputs`, by curl: the status and the answer.
fn call(server: &str, token: &str, action: &str, inputs: &Value) -> (u16, Value) {
    let output = Command::new("curl")
        .args(["-sS", "-X", "POST", "-w", "\n%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .args(["-H", "content-type: application/json", "-d", &inputs.to_string()])
        .arg(format!("{server}/api/v1/extensions/Ledger/actions/{action}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.trim().parse().expect("a status"), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The message of a failed call, checked to be the action's failure with `code`.
fn failure(answer: (u16, Value), code: &str) -> String {
    let (status, body) = answer;
    assert_eq!(body["error"]["code"], "action_failed", "{status} {body}");
    let message = body["error"]["message"].as_str().expect("a message").to_owned();
    assert!(message.contains(&format!("({code})")), "expected `{code}`: {message}");
    message
}

/// The records of Ledger's entity Entry, by curl: the status and the answer.
fn records(server: &str, token: &str) -> (u16, Value) {
    let output = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .arg(format!("{server}/api/v1/extensions/Ledger/entities/Entry/records"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.trim().parse().expect("a status"), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Runs `sql` through the action Select: the rows it counted.
fn select(server: &str, token: &str, sql: &str) -> Value {
    let (status, body) = call(server, token, "Select", &json!({ "Sql": sql }));
    assert_eq!(status, 200, "{sql}: {body}");
    body["Rows"].clone()
}

fn healthy(server: &str) -> bool {
    Command::new("curl")
        .args(["-sSf", "-o", "/dev/null"])
        .arg(format!("{server}/healthz"))
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn actions_insert_and_read_rows_of_their_logical_databases_on_postgres_sqlite_and_mariadb() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::create_dir(root.join("config")).expect("config directory");

    // A PostgreSQL database of its own cluster, which the test stops under the server later.
    let cluster = xif_testkit::postgres::Cluster::new();
    let books = cluster.database();
    cluster.sql_in(
        &books,
        "CREATE TABLE entries (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name VARCHAR(100), \
         amount NUMERIC(12, 2), day DATE, active BOOLEAN, receipt BYTEA)",
    );

    // On PostgreSQL metadata (XIF_TEST_DATABASE=postgres) the server needs a secrets key given.
    let key = root.join("secrets.key");
    std::fs::write(&key, hex::encode([9u8; 32])).expect("written");
    let key_argument = key.to_str().expect("path").to_owned();
    let extra: Vec<&str> = if xif_testkit::postgres::enabled() { vec!["--secrets-key", &key_argument] } else { vec![] };
    let log = Arc::new(Mutex::new(String::new()));
    let server = {
        let log = Arc::clone(&log);
        xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &root.join("data"),
            PASSWORD,
            "info",
            &extra,
            move |line| {
                let mut log = log.lock().expect("the log");
                log.push_str(&line);
                log.push('\n');
            },
        )
    };
    let url = server.url.clone();
    let admin = server.token("admin", PASSWORD);

    // The project: `xif new`, then its definition and actions replaced.
    let (code, _, stderr) = xif(root, &url, &admin, &["new", "Ledger"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let project = root.join("Ledger");
    std::fs::write(project.join("extension.toml"), DEFINITION).expect("written");
    std::fs::write(project.join("src/main.rs"), MAIN).expect("written");
    std::fs::remove_dir_all(project.join("resources")).ok();
    // Run locally, there is no mapped connection: a clear error, not a hang.
    let (code, _, stderr) =
        xif(&project, &url, &admin, &["call", "Count", "--input", r#"{"Database": "main", "Table": "entries"}"#], "");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("not available when the extension runs locally"), "{stderr}");
    let (code, stdout, stderr) =
        xif(root, &url, &admin, &["publish", "--plain", "--path", project.to_str().expect("path")], "");
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // Not mapped yet: missing configuration, with the command that fixes it.
    let message = failure(
        call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" })),
        "missing_configuration",
    );
    assert!(message.contains("xif admin connection map Ledger main"), "{message}");

    // Mapped to PostgreSQL: rows go in and come back, typed.
    let (code, _, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "add", "books", "--url-stdin"], &format!("{books}\n"));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Ledger", "main", "books"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (status, body) =
        call(&url, &admin, "Add", &json!({ "Name": "Ann", "Amount": "12.50", "Day": "2024-01-31", "Receipt": "AQID" }));
    assert_eq!((status, &body["Entries"]), (200, &json!("Ann=12.50@2024-01-31:true#[1, 2, 3]")), "{body}");
    let (status, body) =
        call(&url, &admin, "Add", &json!({ "Name": "Bob", "Amount": "3", "Day": "2024-02-29", "Receipt": "" }));
    assert_eq!(
        (status, &body["Entries"]),
        (200, &json!("Ann=12.50@2024-01-31:true#[1, 2, 3],Bob=3.00@2024-02-29:true#[]")),
        "{body}"
    );
    assert_eq!(
        cluster
            .sql_in(&books, "SELECT name, amount, day, active, encode(receipt, 'hex') FROM entries ORDER BY id")
            .trim(),
        "Ann|12.50|2024-01-31|t|010203\nBob|3.00|2024-02-29|t|"
    );
    let (status, body) = call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" }));
    assert_eq!((status, &body["Rows"]), (200, &json!(2)), "{body}");

    // More calls querying at once than the extension has workers (16): every worker may wait
    // for an answer while the answers and the next calls still get read.
    let callers: Vec<_> = (0..40)
        .map(|_| {
            let (url, admin) = (url.clone(), admin.clone());
            std::thread::spawn(move || call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" })))
        })
        .collect();
    for caller in callers {
        let (status, body) = caller.join().expect("a caller");
        assert_eq!((status, &body["Rows"]), (200, &json!(2)), "{body}");
    }

    // A logical database the definition does not declare; one it declares that nobody mapped;
    // the database's own error, under the logical database's name and without its URL.
    let message =
        failure(call(&url, &admin, "Count", &json!({ "Database": "ghost", "Table": "entries" })), "unknown_database");
    assert!(message.contains("`ghost`") && message.contains("`main`, `archive`"), "{message}");
    let message = failure(
        call(&url, &admin, "Count", &json!({ "Database": "archive", "Table": "old_entries" })),
        "missing_configuration",
    );
    assert!(message.contains("`archive`"), "{message}");
    let message =
        failure(call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "nowhere" })), "database_error");
    assert!(message.contains("logical database `main`") && message.contains("\"nowhere\" does not exist"), "{message}");
    assert!(!message.contains(xif_testkit::postgres::PASSWORD) && !message.contains("127.0.0.1"), "{message}");

    // A handle kept past its call is refused: the query belongs to a call that has ended.
    let (status, body) = call(&url, &admin, "Later", &json!({}));
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let output = Command::new("curl")
            .args(["-sS", "-H"])
            .arg(format!("authorization: Bearer {admin}"))
            .arg(format!("{url}/api/v1/extensions/Ledger/logs"))
            .output()
            .expect("curl runs");
        let log = String::from_utf8_lossy(&output.stdout).into_owned();
        if let Some(line) = log.lines().find(|line| line.contains("later: ")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "the late query left no line in the log: {log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(line.contains("(no_call)") && line.contains("not in progress"), "{line}");

    // At most 10,000 rows a query; a column with no platform form asks for a cast.
    let (status, body) =
        call(&url, &admin, "Select", &json!({ "Sql": "SELECT g FROM generate_series(1, 10000) AS g" }));
    assert_eq!((status, &body["Rows"]), (200, &json!(10_000)), "{body}");
    let message = failure(
        call(&url, &admin, "Select", &json!({ "Sql": "SELECT g FROM generate_series(1, 10001) AS g" })),
        "too_many_rows",
    );
    assert!(message.contains("more than 10000 rows") && message.contains("LIMIT"), "{message}");
    let message = failure(
        call(&url, &admin, "Select", &json!({ "Sql": "SELECT '00000000-0000-0000-0000-000000000000'::uuid AS key" })),
        "invalid_column",
    );
    assert!(message.contains("column `key` is of type UUID") && message.contains("CAST(key AS TEXT)"), "{message}");

    // The extension's session state ends with its query and reaches neither the records API
    // nor its own next queries: a temporary table named like the entity's table, a search_path,
    // a statement_timeout of its own.
    assert_eq!(select(&url, &admin, "CREATE TEMP TABLE entries (id BIGINT)"), json!(0));
    assert_eq!(select(&url, &admin, "SET search_path TO nowhere"), json!(0));
    assert_eq!(select(&url, &admin, "SET statement_timeout = 0"), json!(0));
    let (status, body) = records(&url, &admin);
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)), "{body}");
    for _ in 0..8 {
        let (status, body) = call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" }));
        assert_eq!((status, &body["Rows"]), (200, &json!(2)), "{body}");
        // The database stops a statement of the extension's after 31 s, whatever it set.
        assert_eq!(select(&url, &admin, "SELECT 1 WHERE current_setting('statement_timeout') = '31s'"), json!(1));
    }
    // One statement a query: PostgreSQL prepares each.
    let message =
        failure(call(&url, &admin, "Select", &json!({ "Sql": "SELECT 1; DELETE FROM entries" })), "database_error");
    assert!(message.contains("multiple commands"), "{message}");
    assert_eq!(cluster.sql_in(&books, "SELECT count(*) FROM entries").trim(), "2");

    // The database stopped: the action is told, soon, and the server keeps serving.
    cluster.stop();
    let started = Instant::now();
    let message = failure(
        call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" })),
        "database_unavailable",
    );
    assert!(message.contains("logical database `main`"), "{message}");
    assert!(!message.contains(xif_testkit::postgres::PASSWORD) && !message.contains("127.0.0.1"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(20), "answered in {:?}", started.elapsed());
    assert!(healthy(&url), "the server still runs");
    failure(call(&url, &admin, "Count", &json!({ "Database": "ghost", "Table": "entries" })), "unknown_database");
    // Back: the same action works again, without the extension or the server restarting.
    cluster.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" }));
        if status == 200 {
            assert_eq!(body["Rows"], 2, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the database did not come back: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Mapped to an SQLite file instead: the same actions, another dialect.
    let file = root.join("books.sqlite");
    let output = Command::new("sqlite3")
        .arg(&file)
        .arg("CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, amount TEXT, day DATE, active BOOLEAN, receipt BLOB);")
        .output()
        .expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sqlite_url = format!("sqlite://{}", file.display());
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "add", "local", "--url", &sqlite_url], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Ledger", "main", "local"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let (status, body) =
        call(&url, &admin, "Add", &json!({ "Name": "Cy", "Amount": "7.25", "Day": "2023-12-31", "Receipt": "/w==" }));
    assert_eq!((status, &body["Entries"]), (200, &json!("Cy=7.25@2023-12-31:true#[255]")), "{body}");
    let output = Command::new("sqlite3")
        .arg(&file)
        .arg("SELECT name, amount, day, active, hex(receipt) FROM entries")
        .output()
        .expect("sqlite3");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "Cy|7.25|2023-12-31|1|FF");
    let message =
        failure(call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "nowhere" })), "database_error");
    assert!(message.contains("no such table: nowhere"), "{message}");

    // A hostile extension's SQL stays in its own file: no other database attached (the
    // server's metadata, a new file through a `file:` URI), no copy written elsewhere, no
    // second statement after the first, no temporary objects, pragmas or open transactions.
    let metadata = root.join("data").join("metadata.sqlite");
    let evil = root.join("evil.sqlite");
    let copy = root.join("copy.sqlite");
    let refused = [
        format!("ATTACH DATABASE '{}' AS m", metadata.display()),
        format!("ATTACH DATABASE 'file:{}?mode=rwc' AS e", evil.display()),
        "CREATE TEMP TABLE entries (id INTEGER)".to_owned(),
        "CREATE TEMP VIEW v AS SELECT 1".to_owned(),
        "PRAGMA writable_schema = ON".to_owned(),
        "PRAGMA journal_mode = OFF".to_owned(),
        "BEGIN IMMEDIATE".to_owned(),
        "SELECT load_extension('/tmp/nothing')".to_owned(),
    ];
    for sql in &refused {
        let message = failure(call(&url, &admin, "Select", &json!({ "Sql": sql })), "database_error");
        assert!(message.contains("not authorized"), "{sql}: {message}");
    }
    let message = failure(
        call(&url, &admin, "Select", &json!({ "Sql": format!("VACUUM INTO '{}'", copy.display()) })),
        "database_error",
    );
    assert!(message.contains("authoriz") || message.contains("attached"), "{message}");
    for sql in [
        format!("SELECT 1; ATTACH DATABASE '{}' AS m", metadata.display()),
        "SELECT 1 AS one; DELETE FROM entries".to_owned(),
        "SELECT 1 AS one; -- a comment\n; SELECT 2".to_owned(),
    ] {
        let message = failure(call(&url, &admin, "Select", &json!({ "Sql": sql })), "refused_statement");
        assert!(message.contains("more than one statement"), "{sql}: {message}");
    }
    assert!(!evil.exists() && !copy.exists(), "a file was written");
    assert_eq!(select(&url, &admin, "SELECT 1 AS one; -- a comment after it\n"), json!(1));
    assert_eq!(select(&url, &admin, "PRAGMA table_info(entries)"), json!(6));
    let (status, body) = call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "entries" }));
    assert_eq!((status, &body["Rows"]), (200, &json!(1)), "{body}");

    // Memory: the rows' bytes are counted while read, and a value has a size limit.
    let message = failure(
        call(
            &url,
            &admin,
            "Select",
            &json!({ "Sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) \
                               SELECT zeroblob(20000000) AS b FROM c" }),
        ),
        "result_too_large",
    );
    assert!(message.contains("more than 48 MiB"), "{message}");
    let message =
        failure(call(&url, &admin, "Select", &json!({ "Sql": "SELECT zeroblob(100000000) AS b" })), "database_error");
    assert!(message.contains("too big"), "{message}");

    // Runaway statements: the extension holds at most 4 connections, the records API keeps
    // answering meanwhile, and SQLite itself stops each statement at its deadline, so that
    // the extension's connections come back.
    let runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c";
    let started = Instant::now();
    let runners: Vec<_> = (0..4)
        .map(|_| {
            let (url, admin) = (url.clone(), admin.clone());
            std::thread::spawn(move || call(&url, &admin, "Select", &json!({ "Sql": runaway })))
        })
        .collect();
    // A fifth query waits for one of the four connections, and is told it cannot have one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(&url, &admin, "Select", &json!({ "Sql": "SELECT 1 AS one" }));
        if status != 200 {
            let message = failure((status, body), "database_unavailable");
            assert!(message.contains("logical database `main`"), "{message}");
            break;
        }
        assert!(Instant::now() < deadline, "a fifth query ran while four ran away: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let asked = Instant::now();
    let (status, body) = records(&url, &admin);
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(1)), "{body}");
    assert!(asked.elapsed() < Duration::from_secs(5), "the records API waited {:?}", asked.elapsed());
    // Each ends at 30 s: the query's or the action's time limit, whichever the host sees first.
    for runner in runners {
        let (status, body) = runner.join().expect("a runner");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!((status, code) == (504, "action_timeout") || message.contains("(query_timeout)"), "{status} {body}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = call(&url, &admin, "Select", &json!({ "Sql": "SELECT 1 AS one" }));
        if status == 200 {
            assert_eq!(body["Rows"], 1, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the runaway statements kept their connections: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());

    // Mapped to MariaDB: the same action, with MySQL's marks.
    let mariadb = xif_testkit::mariadb::Server::new();
    let shop = mariadb.database();
    mariadb.sql_in(
        &shop,
        "CREATE TABLE entries (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), amount DECIMAL(12, 2), \
         day DATE, active BOOLEAN, receipt BLOB);",
    );
    let (code, _, stderr) =
        xif(root, &url, &admin, &["admin", "connection", "add", "shop", "--url-stdin"], &format!("{shop}\n"));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = xif(root, &url, &admin, &["admin", "connection", "map", "Ledger", "main", "shop"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let inputs = json!({ "Name": "Eve", "Amount": "0.10", "Day": "2020-02-29", "Receipt": "AQID", "Marks": "?" });
    let (status, body) = call(&url, &admin, "Add", &inputs);
    assert_eq!((status, &body["Entries"]), (200, &json!("Eve=0.10@2020-02-29:true#[1, 2, 3]")), "{body}");
    assert_eq!(
        mariadb.sql_in(&shop, "SELECT name, amount, day, active, HEX(receipt) FROM entries").trim(),
        "Eve\t0.10\t2020-02-29\t1\t010203"
    );
    let message =
        failure(call(&url, &admin, "Count", &json!({ "Database": "main", "Table": "nowhere" })), "database_error");
    assert!(message.contains("logical database `main` (MySQL)") && message.contains("nowhere"), "{message}");
    // The database stops a statement of the extension's after 31 s; one statement a query.
    assert_eq!(select(&url, &admin, "SELECT 1 AS one WHERE @@max_statement_time = 31"), json!(1));
    failure(call(&url, &admin, "Select", &json!({ "Sql": "SELECT 1 AS one; DELETE FROM entries" })), "database_error");
    assert_eq!(mariadb.sql_in(&shop, "SELECT COUNT(*) FROM entries").trim(), "1");
    assert!(!message.contains(xif_testkit::mariadb::PASSWORD), "{message}");

    // `xif call --database` runs the same queries on the author's machine, on a database given
    // directly.
    let local = root.join("local.sqlite");
    let output = Command::new("sqlite3")
        .arg(&local)
        .arg("CREATE TABLE entries (id INTEGER PRIMARY KEY, name TEXT, amount TEXT, day DATE, active BOOLEAN, receipt BLOB);")
        .output()
        .expect("sqlite3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let given = format!("main=sqlite://{}", local.display());
    let input = r#"{"Name": "Di", "Amount": "1.5", "Day": "2022-02-02", "Receipt": "AA=="}"#;
    let (code, stdout, stderr) =
        xif(&project, &url, &admin, &["call", "Add", "--input", input, "--database", &given], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Di=1.5@2022-02-02:true#[0]"), "{stdout}");

    // Nothing the server logged holds the database's password.
    assert!(!log.lock().expect("the log").contains(xif_testkit::postgres::PASSWORD));
}
