//! Records of an extension's entities through the API, on real databases the tests start:
//! PostgreSQL, MariaDB and SQLite. Each maps an existing table (made with the database's own
//! client), then creates, reads, lists, updates and deletes through a real `xif server`,
//! checking the rows with that client; every data type an attribute can have round-trips; SQL
//! injection attempts in filter names, operators, values and sort keys are refused or harmless;
//! and the database stopped mid-test answers 503 while the server keeps serving actions.

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "administrator-password";

/// The entity every test maps: an attribute of every data type an attribute can have, a
/// mandatory one, a default, a unique one, and an auto-numbered identifier.
const DEFINITION: &str = r#"[extension]
name = "Shop"
version = "1.0.0"
description = "Items in a database of the server."

[[actions]]
name = "Echo"
description = "Returns its input."
inputs = [ { name = "Text", type = "Text" } ]
outputs = [ { name = "Same", type = "Text" } ]

[[entities]]
name = "Item"
description = "An item."
table = "item"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true, auto_number = true, column = "id" },
  { name = "Name", type = "Text", length = 50, mandatory = true, column = "name" },
  { name = "Count", type = "Integer", default = 7, column = "count" },
  { name = "Big", type = "Long Integer", column = "big" },
  { name = "Price", type = "Decimal", length = 12, decimals = 2, column = "price" },
  { name = "Active", type = "Boolean", column = "active" },
  { name = "At", type = "Date Time", column = "at" },
  { name = "Day", type = "Date", column = "day" },
  { name = "Clock", type = "Time", column = "clock" },
  { name = "Mail", type = "Email", column = "mail" },
  { name = "Phone", type = "Phone Number", column = "phone" },
  { name = "Amount", type = "Currency", column = "amount" },
  { name = "Data", type = "Binary Data", column = "data" },
  { name = "Parent", type = "Entity Identifier", record = "Item", column = "parent" },
]
"#;

/// A database of a test: its URL for the server, its own client, and how to stop and start it.
struct Backend<'a> {
    /// `PostgreSQL`, `MariaDB`, `SQLite`: for messages.
    name: &'static str,
    url: String,
    /// Runs SQL with the database's own client and returns its output.
    sql: Box<dyn Fn(&str) -> String + 'a>,
    /// `CREATE TABLE item …` in the dialect.
    table: &'static str,
    /// The full record's row, as `SELECT` [`ROW`] prints it.
    row: &'static str,
    /// Stops, then starts, the database (none for SQLite, a file).
    stop: Option<Box<dyn Fn() + 'a>>,
    start: Option<Box<dyn Fn() + 'a>>,
}

/// The columns of the full record, as each client prints them (binary as hexadecimal).
const ROW: &str =
    "SELECT name, count, big, price, active, at, day, clock, mail, phone, amount, HEXDATA FROM item WHERE name = 'Ann'";

/// `METHOD URL` with curl, as `token`, with a JSON `body`: the status, the headers (lower-case
/// names) and the JSON answer.
fn request(method: &str, url: &str, token: &str, body: Option<&Value>) -> (u16, Vec<(String, String)>, Value) {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-i", "-X", method, "-H"]).arg(format!("authorization: Bearer {token}"));
    if let Some(body) = body {
        curl.args(["-H", "content-type: application/json", "--data-binary", &body.to_string()]);
    }
    curl.arg("--url").arg(url);
    let output = curl.output().expect("curl runs");
    assert!(output.status.success(), "curl {url}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and a body");
    let mut lines = head.lines();
    let status = lines.next().and_then(|line| line.split_whitespace().nth(1)).and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status.expect("a status code"), headers, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

fn sha256_hex(path: &std::path::Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().expect("sha256sum runs");
    String::from_utf8_lossy(&output.stdout).split_whitespace().next().expect("a digest").to_owned()
}

/// A server with `Shop` published, its logical database `main` mapped (with `xif admin
/// connection add` and `map`) to `backend`'s database, whose table exists.
struct Setup {
    server: xif_testkit::Server,
    _directory: tempfile::TempDir,
    token: String,
    records: String,
}

fn xif_admin(
    server: &xif_testkit::Server,
    token: &str,
    arguments: &[&str],
    stdin: &str,
) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["admin", "--server", &server.url])
        .args(arguments)
        .env("XIF_TOKEN", token)
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
}

fn set_up(backend: &Backend<'_>) -> Setup {
    let setup = set_up_unmapped(backend);
    let (code, _, stderr) =
        xif_admin(&setup.server, &setup.token, &["connection", "map", "Shop", "main", "shopdb"], "");
    assert_eq!(code, Some(0), "{}: {stderr}", backend.name);
    setup
}

/// A server with `Shop` published and connection `shopdb` added for `backend`'s database, whose
/// table exists, but the logical database not mapped.
fn set_up_unmapped(backend: &Backend<'_>) -> Setup {
    (backend.sql)(backend.table);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &directory.path().join("data"),
        PASSWORD,
        "warn",
        &[],
        drop,
    );
    let token = server.token("admin", PASSWORD);
    let api = format!("{}/api/v1", server.url);
    let archive = directory.path().join("shop.xif");
    std::fs::write(&archive, xif_testkit::pack("Shop", "1.0.0", DEFINITION, &fixtures::binary("generic")))
        .expect("written");
    let output = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .args(["-H", &format!("x-xif-sha256: {}", sha256_hex(&archive))])
        .arg("--data-binary")
        .arg(format!("@{}", archive.display()))
        .arg(format!("{api}/extensions/Shop/versions"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "201", "the upload");
    let (status, _, body) = request(
        "POST",
        &format!("{api}/extensions/Shop/publications"),
        &token,
        Some(&json!({ "version": 1, "expected": null })),
    );
    assert_eq!(status, 200, "{body}");

    // Unmapped, the entity's database is missing configuration, and the message says how to map it.
    let records = format!("{api}/extensions/Shop/entities/Item/records");
    let (status, _, body) = request("GET", &records, &token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("missing_configuration")), "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("xif admin connection map Shop main"),
        "{body}"
    );

    let (code, _, stderr) =
        xif_admin(&server, &token, &["connection", "add", "shopdb", "--url-stdin"], &format!("{}\n", backend.url));
    assert_eq!(code, Some(0), "{stderr}");
    Setup { server, _directory: directory, token, records }
}

/// The whole scenario on `backend`.
fn scenario(backend: &Backend<'_>) {
    let setup = set_up(backend);
    let (token, records) = (&setup.token, &setup.records);
    let name = backend.name;

    // Create: every data type, the identifier assigned by the database.
    let ann = json!({
        "Name": "Ann", "Count": 3, "Big": 9_007_199_254_740_993_i64, "Price": "12.50", "Active": true,
        "At": "2024-01-31T09:30:00", "Day": "2024-01-31", "Clock": "09:30:15", "Mail": "ann@example.com",
        "Phone": "+44 20 7946 0000", "Amount": "1234.5678", "Data": "AAEC/w==", "Parent": null,
    });
    let (status, headers, created) = request("POST", records, token, Some(&ann));
    assert_eq!(status, 201, "{name}: {created}");
    let id = created["Id"].as_i64().unwrap_or_else(|| panic!("{name}: an identifier: {created}"));
    let mut expected = ann.clone();
    expected["Id"] = json!(id);
    assert_eq!(created, expected, "{name}: the stored record is the one sent");
    assert_eq!(
        header(&headers, "location"),
        Some(format!("/api/v1/extensions/Shop/entities/Item/records/{id}").as_str())
    );
    // The row, as the database's own client sees it.
    assert_eq!((backend.sql)(ROW).trim_end(), backend.row, "{name}: the row");
    let (status, _, read) = request("GET", &format!("{records}/{id}"), token, None);
    assert_eq!((status, &read), (200, &expected), "{name}");

    // Defaults fill what is omitted; mandatory attributes are required; unique ones conflict.
    let (status, _, bob) = request("POST", records, token, Some(&json!({ "Name": "Bob", "Parent": id })));
    assert_eq!(status, 201, "{name}: {bob}");
    assert_eq!((bob["Count"].clone(), bob["Parent"].clone(), bob["Price"].clone()), (json!(7), json!(id), Value::Null));
    let (status, _, cid) = request("POST", records, token, Some(&json!({ "Name": "Cid", "Count": 9 })));
    assert_eq!(status, 201, "{name}: {cid}");
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Count": 1 })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("`Name`"), "{body}");
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Dee", "Count": "many" })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("`Count`"), "{body}");
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Ann" })));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("record_conflict")), "{name}: {body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("`Name`"), "{name}: {body}");

    // Bodies that are no record of Item, each refused naming what is wrong; the server stays up.
    for (bad, part) in [
        (json!(["Name", "Zed"]), "JSON object"),
        (json!("Zed"), "JSON object"),
        (json!({ "Name": "Zed", "Nope": 1 }), "`Nope`"),
        (json!({ "Name": "Zed", "Count": 2_147_483_648_i64 }), "`Count`"),
        (json!({ "Name": "Zed", "Count": 1.5 }), "`Count`"),
        (json!({ "Name": "Zed", "Big": "12" }), "`Big`"),
        (json!({ "Name": "Zed", "Price": "12,50" }), "`Price`"),
        (json!({ "Name": "Zed", "Price": "1e400" }), "`Price`"),
        (json!({ "Name": "Zed", "Active": "yes" }), "`Active`"),
        (json!({ "Name": "Zed", "At": "2024-02-30T09:30:00" }), "`At`"),
        (json!({ "Name": "Zed", "Day": "31/01/2024" }), "`Day`"),
        (json!({ "Name": "Zed", "Clock": "25:00:00" }), "`Clock`"),
        (json!({ "Name": "Zed", "Data": "not base64!" }), "`Data`"),
        (json!({ "Name": "Zed", "Parent": "one" }), "`Parent`"),
        (json!({ "Name": { "nested": true } }), "`Name`"),
        (json!({ "Name": null }), "`Name`"),
        (json!({ "Name": "x".repeat(51) }), "`Name`"),
    ] {
        let (status, _, body) = request("POST", records, token, Some(&bad));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name} {bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(part), "{name} {bad}: {message}");
    }

    // A value the column cannot hold (phone is VARCHAR(30), the attribute has no length): the
    // database refuses it, and that is the client's error. SQLite's columns take any length.
    if backend.stop.is_some() {
        let (status, _, body) =
            request("POST", records, token, Some(&json!({ "Name": "Gus", "Phone": "1".repeat(40) })));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    }

    // Lists: filters, sort, limit and offset, with a link to the next page when one is full.
    let names = |query: &str| -> Vec<String> {
        let (status, _, body) = request("GET", &format!("{records}?{query}"), token, None);
        assert_eq!(status, 200, "{name} {query}: {body}");
        body.as_array().expect("an array").iter().map(|r| r["Name"].as_str().unwrap_or_default().to_owned()).collect()
    };
    assert_eq!(names(""), ["Ann", "Bob", "Cid"]);
    assert_eq!(names("Name=Bob"), ["Bob"]);
    assert_eq!(names("Count.gt=5&sort=-Name"), ["Cid", "Bob"]);
    assert_eq!(names("Count.le=7&Count.ne=3"), ["Bob"]);
    assert_eq!(names("Name.like=%25i%25"), ["Cid"]);
    assert_eq!(names("Active=true"), ["Ann"]);
    assert_eq!(names("Day=2024-01-31"), ["Ann"]);
    assert_eq!(names("Price.ge=12.5"), ["Ann"]);
    assert_eq!(names("sort=-Count&limit=2"), ["Cid", "Bob"]);
    assert_eq!(names("sort=Name&limit=2&offset=2"), ["Cid"]);
    let (_, headers, _) = request("GET", &format!("{records}?sort=Name&limit=2"), token, None);
    let link = header(&headers, "link").unwrap_or_else(|| panic!("{name}: a link to the next page"));
    assert_eq!(link, "</api/v1/extensions/Shop/entities/Item/records?sort=Name&limit=2&offset=2>; rel=\"next\"");
    let (_, headers, _) = request("GET", &format!("{records}?sort=Name&limit=2&offset=2"), token, None);
    assert_eq!(header(&headers, "link"), None, "{name}: no next page after the last");

    // Update: the attributes given change, the others stay; the database's client agrees.
    let (status, _, updated) =
        request("PUT", &format!("{records}/{id}"), token, Some(&json!({ "Count": 4, "Mail": "ann@example.org" })));
    assert_eq!(status, 200, "{name}: {updated}");
    assert_eq!(
        (updated["Count"].clone(), updated["Mail"].clone(), updated["Price"].clone()),
        (json!(4), json!("ann@example.org"), json!("12.50"))
    );
    assert_eq!(
        (backend.sql)("SELECT count, mail FROM item WHERE name = 'Ann'").trim_end().replace('\t', "|"),
        "4|ann@example.org"
    );
    // The identifier is the database's to number: PUT of a new one is refused (it would take a
    // number the database gives later), and so is one given to POST; nothing is written.
    let (status, _, body) = request("PUT", &format!("{records}/1000"), token, Some(&json!({ "Name": "Eve" })));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("record_not_found")), "{name}: {body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("created with POST"), "{name}: {body}");
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Id": 1000, "Name": "Eve" })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`Id`") && message.contains("numbered by the database; leave it out"), "{name}: {body}");
    assert_eq!((backend.sql)("SELECT COUNT(*) FROM item WHERE id = 1000 OR name = 'Eve'").trim(), "0", "{name}");
    let (status, _, body) = request("PUT", &format!("{records}/1001"), token, Some(&json!({ "Id": 5, "Name": "Fay" })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    let (status, _, eve) = request("POST", records, token, Some(&json!({ "Name": "Eve" })));
    assert_eq!((status, &eve["Count"]), (201, &json!(7)), "{name}: {eve}");
    let eve = eve["Id"].as_i64().expect("numbered");

    // Delete, then it is gone.
    let (status, _, _) = request("DELETE", &format!("{records}/{eve}"), token, None);
    assert_eq!(status, 204, "{name}");
    assert_eq!((backend.sql)(&format!("SELECT COUNT(*) FROM item WHERE id = {eve}")).trim(), "0", "{name}");
    for method in ["GET", "DELETE"] {
        let (status, _, body) = request(method, &format!("{records}/{eve}"), token, None);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("record_not_found")),
            "{name} {method}: {body}"
        );
    }
    let (status, _, body) = request("GET", &format!("{records}/abc"), token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
    let (status, _, body) =
        request("GET", &format!("{}/api/v1/extensions/Shop/entities/Order/records", setup.server.url), token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_entity")), "{name}: {body}");

    // Injection attempts: refused naming the parameter, or harmless values; nothing executed.
    let count = || (backend.sql)("SELECT COUNT(*) FROM item").trim().to_owned();
    let before = count();
    for (query, parameter) in [
        ("Name%27%3B%20DROP%20TABLE%20item%3B--=x", "Name'; DROP TABLE item;--"),
        ("Name.eq%3B%20DROP%20TABLE%20item=x", "Name.eq; DROP TABLE item"),
        ("Name%20OR%201%3D1=x", "Name OR 1=1"),
        ("Count.gt=1%20OR%201%3D1", "Count.gt"),
        ("Name.like=x&Count.like=1", "Count.like"),
        ("sort=Name%3B--", "sort"),
        ("sort=Name%20DESC%3B%20DROP%20TABLE%20item", "sort"),
        ("sort=(SELECT%201)", "sort"),
        ("limit=1%3BDROP%20TABLE%20item", "limit"),
        ("offset=-1", "offset"),
        ("limit=1001", "limit"),
        ("Data=AAEC", "Data"),
    ] {
        let (status, _, body) = request("GET", &format!("{records}?{query}"), token, None);
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_filter")), "{name} {query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{parameter}`")), "{name} {query}: {message}");
    }
    for value in ["x%27%3B%20DROP%20TABLE%20item%3B%20--", "%27%20OR%20%271%27%3D%271", "Ann%27--"] {
        assert_eq!(names(&format!("Name={value}")), Vec::<String>::new(), "{name}: a value is only a value");
    }
    let (status, _, stored) = request("POST", records, token, Some(&json!({ "Name": "Robert'); DROP TABLE item;--" })));
    assert_eq!(status, 201, "{name}: {stored}");
    assert_eq!(stored["Name"], "Robert'); DROP TABLE item;--");
    assert_eq!(count(), (before.parse::<u64>().expect("a count") + 1).to_string(), "{name}: the table is there");

    // The database stops: 503 naming the connection, never its secret; the server keeps serving.
    if let (Some(stop), Some(start)) = (&backend.stop, &backend.start) {
        stop();
        let (status, headers, body) = request("GET", &format!("{records}/{id}"), token, None);
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("database_unavailable")), "{name}: {body}");
        assert!(header(&headers, "retry-after").is_some(), "{name}: Retry-After");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("shopdb"), "{name}: the message names the connection: {message}");
        assert!(!message.contains("xif-test-secret"), "{name}: {message}");
        let (status, _, _) = request("GET", &format!("{}/healthz", setup.server.url), token, None);
        assert_eq!(status, 200, "{name}: the server still answers");
        let (status, _, body) = request(
            "POST",
            &format!("{}/api/v1/extensions/Shop/actions/Echo", setup.server.url),
            token,
            Some(&json!({ "Text": "still here" })),
        );
        assert_eq!((status, &body["Same"]), (200, &json!("still here")), "{name}: actions still run");
        start();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _, body) = request("GET", &format!("{records}/{id}"), token, None);
            if status == 200 {
                assert_eq!(body["Name"], "Ann");
                break;
            }
            assert!(Instant::now() < deadline, "{name}: records did not come back: {status} {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn records_round_trip_on_postgresql() {
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    scenario(&Backend {
        name: "PostgreSQL",
        url: url.clone(),
        sql: Box::new(|statement| cluster.sql_in(&url, &statement.replace("HEXDATA", "encode(data, 'hex')"))),
        table: "CREATE TABLE item (id BIGSERIAL PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, count INTEGER, big BIGINT, \
                price NUMERIC(12,2), active BOOLEAN, at TIMESTAMP, day DATE, clock TIME, mail TEXT, phone VARCHAR(30), \
                amount NUMERIC(19,4), data BYTEA, parent BIGINT)",
        row: "Ann|3|9007199254740993|12.50|t|2024-01-31 09:30:00|2024-01-31|09:30:15|ann@example.com|+44 20 7946 0000|1234.5678|000102ff",
        stop: Some(Box::new(|| cluster.stop())),
        start: Some(Box::new(|| cluster.start())),
    });
}

#[test]
fn records_round_trip_on_mariadb() {
    let server = xif_testkit::mariadb::Server::new();
    let url = server.database();
    scenario(&Backend {
        name: "MariaDB",
        url: url.clone(),
        sql: Box::new(|statement| {
            server.sql_in(&url, &statement.replace("HEXDATA", "LOWER(HEX(data))")).replace('\t', "|")
        }),
        table: "CREATE TABLE item (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, count INT, \
                big BIGINT, price DECIMAL(12,2), active BOOLEAN, at DATETIME, day DATE, clock TIME, mail TEXT, \
                phone VARCHAR(30), amount DECIMAL(19,4), data BLOB, parent BIGINT)",
        row: "Ann|3|9007199254740993|12.50|1|2024-01-31 09:30:00|2024-01-31|09:30:15|ann@example.com|+44 20 7946 0000|1234.5678|000102ff",
        stop: Some(Box::new(|| server.stop())),
        start: Some(Box::new(|| server.start())),
    });
}

#[test]
fn records_round_trip_on_sqlite() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("shop.sqlite");
    let sqlite3 = |statement: &str| {
        let output = Command::new("sqlite3")
            .arg(&file)
            .arg(statement.replace("HEXDATA", "lower(hex(data))"))
            .output()
            .expect("sqlite3 runs (scripts/install-test-tools installs it)");
        assert!(output.status.success(), "sqlite3: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // SQLite keeps exact decimals as text (NUMERIC affinity would make 12.50 the real 12.5).
    scenario(&Backend {
        name: "SQLite",
        url: format!("sqlite://{}", file.display()),
        sql: Box::new(sqlite3),
        table: "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, count INTEGER, \
                big INTEGER, price TEXT, active BOOLEAN, at DATETIME, day DATE, clock TIME, mail TEXT, phone TEXT, \
                amount TEXT, data BLOB, parent INTEGER)",
        row: "Ann|3|9007199254740993|12.50|1|2024-01-31 09:30:00|2024-01-31|09:30:15|ann@example.com|+44 20 7946 0000|1234.5678|000102ff",
        stop: None,
        start: None,
    });
}

/// Columns narrower than their attributes (a 32-bit identifier for a Long Integer, `varchar(20)`
/// for Text of length 50) are refused by the mapping check, each located in the definition;
/// mapped anyway (`--force`), records still read and write, and the identifier a create
/// assigns comes back with the stored record (no error after a write). Decimals with more
/// digits than the attribute declares are refused before anything is written.
fn narrow_columns(backend: &Backend<'_>, narrow_id: &str) {
    let setup = set_up_unmapped(backend);
    let (token, records) = (&setup.token, &setup.records);
    let name = backend.name;
    let (code, _, stderr) = xif_admin(&setup.server, token, &["connection", "map", "Shop", "main", "shopdb"], "");
    assert_ne!(code, Some(0), "{name}: a narrow identifier was accepted");
    for expected in [
        format!(
            "extension.toml:17:25: entity `Item`, attribute `Id`, column `item.id`: expected bigint for Long Integer, \
             found {narrow_id}"
        ),
        "attribute `Name`, column `item.name`: expected a column of at least 50 characters for Text of length 50"
            .to_owned(),
        "attribute `Big`, column `item.big`: expected bigint for Long Integer".to_owned(),
        "attribute `Parent`, column `item.parent`: expected bigint for Entity Identifier".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{name}: `{expected}` not in:\n{stderr}");
    }
    // Wider is fine: `phone` is varchar(30) for a Phone Number of no length, `count` is bigint.
    assert!(!stderr.contains("item.phone") && !stderr.contains("item.count"), "{name}: {stderr}");

    let (code, _, stderr) =
        xif_admin(&setup.server, token, &["connection", "map", "Shop", "main", "shopdb", "--force"], "");
    assert_eq!(code, Some(0), "{name}: {stderr}");
    let (status, headers, created) =
        request("POST", records, token, Some(&json!({ "Name": "Ann", "Count": 2, "Big": 5, "Price": "1200.5" })));
    assert_eq!(status, 201, "{name}: {created}");
    let id = created["Id"].as_i64().expect("the assigned identifier");
    assert_eq!((created["Count"].as_i64(), created["Big"].as_i64()), (Some(2), Some(5)), "{name}: {created}");
    assert_eq!(created["Price"], "1200.50", "{name}: {created}");
    assert!(header(&headers, "location").is_some_and(|location| location.ends_with(&format!("/records/{id}"))));
    let (status, _, read) = request("GET", &format!("{records}/{id}"), token, None);
    assert_eq!((status, &read), (200, &created), "{name}");
    let (status, _, list) = request("GET", &format!("{records}?Id={id}&Big.ge=5"), token, None);
    assert_eq!((status, list), (200, json!([created])), "{name}");
    let (status, _, updated) = request("PUT", &format!("{records}/{id}"), token, Some(&json!({ "Count": 4 })));
    assert_eq!((status, updated["Count"].as_i64()), (200, Some(4)), "{name}: {updated}");

    // Too many digits after the point, or before it: refused, naming the attribute, not rounded.
    for (price, problem) in [
        (json!("1.239"), "has 3 digits after the point, and the attribute takes 2"),
        (json!(12_345_678_901.5), "has 11 digits before the point, and the attribute takes 10"),
    ] {
        let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Bob", "Price": price })));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`Price`") && message.contains(problem), "{name}: {message}");
    }
    let (status, _, body) = request("PUT", &format!("{records}/{id}"), token, Some(&json!({ "Amount": "1.00001" })));
    assert_eq!(status, 200, "{name}: Currency without declared digits takes any: {body}");
    assert_eq!((backend.sql)("SELECT count(*) FROM item").trim(), "1", "{name}: a refused record was written");
}

#[test]
fn narrow_columns_are_refused_and_a_forced_mapping_still_works_on_postgresql() {
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    narrow_columns(
        &Backend {
            name: "PostgreSQL",
            url: url.clone(),
            sql: Box::new(|statement| cluster.sql_in(&url, statement)),
            table: "CREATE TABLE item (id SERIAL PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE, count BIGINT, \
                    big SMALLINT, price NUMERIC(12,2), active BOOLEAN, at TIMESTAMP, day DATE, clock TIME, \
                    mail TEXT, phone VARCHAR(30), amount NUMERIC(19,6), data BYTEA, parent INTEGER)",
            row: "",
            stop: None,
            start: None,
        },
        "integer",
    );
}

#[test]
fn narrow_columns_are_refused_and_a_forced_mapping_still_works_on_mariadb() {
    let server = xif_testkit::mariadb::Server::new();
    let url = server.database();
    narrow_columns(
        &Backend {
            name: "MariaDB",
            url: url.clone(),
            sql: Box::new(|statement| server.sql_in(&url, statement)),
            table: "CREATE TABLE item (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE, \
                    count BIGINT, big SMALLINT, price DECIMAL(12,2), active BOOLEAN, at DATETIME, day DATE, \
                    clock TIME, mail TEXT, phone VARCHAR(30), amount DECIMAL(19,6), data BLOB, parent INT)",
            row: "",
            stop: None,
            start: None,
        },
        "int",
    );
}

/// SQLite keeps a NUMERIC column's decimals as INTEGER or REAL (`1200.5`): records give them
/// with the attribute's declared decimals, as the other databases do.
#[test]
fn sqlite_numeric_decimals_read_with_the_declared_decimals() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("shop.sqlite");
    let sqlite3 = |statement: &str| {
        let output = Command::new("sqlite3").arg(&file).arg(statement).output().expect("sqlite3 runs");
        assert!(output.status.success(), "sqlite3: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let backend = Backend {
        name: "SQLite",
        url: format!("sqlite://{}", file.display()),
        sql: Box::new(sqlite3),
        table: "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, count INTEGER, \
                big INTEGER, price DECIMAL(12,2), active BOOLEAN, at DATETIME, day DATE, clock TIME, mail TEXT, \
                phone TEXT, amount NUMERIC, data BLOB, parent INTEGER)",
        row: "",
        stop: None,
        start: None,
    };
    let setup = set_up(&backend);
    let (status, _, created) = request(
        "POST",
        &setup.records,
        &setup.token,
        Some(&json!({ "Name": "Ann", "Price": "1200.50", "Amount": "3" })),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!((backend.sql)("SELECT typeof(price), price FROM item").trim(), "real|1200.5");
    assert_eq!((created["Price"].as_str(), created["Amount"].as_str()), (Some("1200.50"), Some("3")), "{created}");
    let (status, _, body) =
        request("POST", &setup.records, &setup.token, Some(&json!({ "Name": "Bob", "Price": "12345678901.5" })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{body}");
}

#[test]
fn a_throwaway_mariadb_server_makes_databases_its_users_reach_and_survives_a_restart() {
    let server = xif_testkit::mariadb::Server::new();
    let url = server.database();
    let other = server.database();
    assert_ne!(url, other);
    server.sql_in(
        &url,
        "CREATE TABLE customer (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50)); INSERT INTO customer (name) VALUES ('Ann')",
    );
    assert_eq!(server.sql_in(&url, "SELECT id, name FROM customer"), "1\tAnn\n");

    // The user of the URL reaches its database over TCP with the URL's password, and no other.
    let user = url.trim_start_matches("mysql://").split(':').next().expect("a user").to_owned();
    let database = url.rsplit('/').next().expect("a database").to_owned();
    let client = |database: &str| {
        Command::new("mariadb")
            .args(["--no-defaults", "-h", "127.0.0.1", "-P", &server.port().to_string(), "-u", &user])
            .arg(format!("-p{}", xif_testkit::mariadb::PASSWORD))
            .args(["-N", "-B", "-D", database, "-e", "SELECT COUNT(*) FROM customer"])
            .output()
            .expect("mariadb runs")
    };
    let output = client(&database);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n");
    let other_database = other.rsplit('/').next().expect("a database");
    assert!(!client(other_database).status.success(), "a user reached another test's database");

    server.stop();
    assert!(!client(&database).status.success(), "the stopped server answered");
    server.start();
    assert_eq!(server.sql_in(&url, "SELECT name FROM customer"), "Ann\n");
}

/// A page of large records stops at its byte budget (16 MiB) rather than holding `limit` of
/// them in memory, and links to the first record it left out: following the links reads every
/// record once.
#[test]
fn a_page_of_large_records_stops_at_its_byte_budget_and_links_to_the_rest() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("shop.sqlite");
    let sqlite3 = |statement: &str| {
        let output = Command::new("sqlite3")
            .arg(&file)
            .arg(statement)
            .output()
            .expect("sqlite3 runs (scripts/install-test-tools installs it)");
        assert!(output.status.success(), "sqlite3: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let backend = Backend {
        name: "SQLite",
        url: format!("sqlite://{}", file.display()),
        sql: Box::new(sqlite3),
        table: "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, count INTEGER, \
                big INTEGER, price TEXT, active BOOLEAN, at DATETIME, day DATE, clock TIME, mail TEXT, phone TEXT, \
                amount TEXT, data BLOB, parent INTEGER)",
        row: "",
        stop: None,
        start: None,
    };
    let setup = set_up(&backend);
    // 20 records of 1.5 MB each (2 MB in base64): 8 fit in a page's 16 MiB.
    (backend.sql)(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) \
         INSERT INTO item (name, data) SELECT 'item' || x, zeroblob(1500000) FROM c",
    );
    let mut url = format!("{}?sort=Id&limit=1000", setup.records);
    let mut pages = Vec::new();
    let mut seen = Vec::new();
    loop {
        let (status, headers, body) = request("GET", &url, &setup.token, None);
        assert_eq!(status, 200, "{url}: {body}");
        let page = body.as_array().expect("an array");
        pages.push(page.len());
        seen.extend(page.iter().map(|record| record["Name"].as_str().expect("a name").to_owned()));
        let Some(link) = header(&headers, "link") else { break };
        let target = link.trim_start_matches('<').split_once('>').expect("a link").0;
        url = format!("{}{target}", setup.server.url);
        assert!(pages.len() < 10, "the links go on: {pages:?}");
    }
    assert_eq!(pages, [8, 8, 4], "records per page");
    let expected: Vec<String> = (1..=20).map(|n| format!("item{n}")).collect();
    assert_eq!(seen, expected, "every record once, in order");
}

/// What the database holds but the attribute's type cannot take answers 502
/// `invalid_stored_value` naming the record and the attribute (never 500), for a read and for a
/// list; constraint violations say what kind they are: a CHECK or NOT NULL is the client's 400,
/// a foreign key a 409 of its own wording, only a unique violation "must be unique", and none
/// answers the database's own words.
#[test]
fn stored_values_the_type_cannot_take_and_constraint_violations_are_named_on_sqlite() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("shop.sqlite");
    let sqlite3 = |statement: &str| {
        let output = Command::new("sqlite3").arg(&file).arg(statement).output().expect("sqlite3 runs");
        assert!(output.status.success(), "sqlite3: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let backend = Backend {
        name: "SQLite",
        url: format!("sqlite://{}", file.display()),
        sql: Box::new(sqlite3),
        table: "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, \
                count INTEGER CONSTRAINT count_positive CHECK (count > 0), big INTEGER, price TEXT, active BOOLEAN, \
                at DATETIME, day DATE, clock TIME, mail TEXT, phone TEXT, amount TEXT, data BLOB, \
                parent INTEGER REFERENCES item (id))",
        row: "",
        stop: None,
        start: None,
    };
    let setup = set_up(&backend);
    let (token, records) = (&setup.token, &setup.records);

    // Values written behind the server's back, by the database's own client.
    (backend.sql)(
        "INSERT INTO item (id, name, count) VALUES (1, 'Text', 'abc'); \
         INSERT INTO item (id, name, count) VALUES (2, 'Huge', 99999999999); \
         INSERT INTO item (id, name, price) VALUES (3, 'Infinite', 'inf'); \
         INSERT INTO item (id, name, amount) VALUES (4, 'Real', 9e999); \
         INSERT INTO item (id, name, count) VALUES (5, 'Fine', 3);",
    );
    for (id, attribute) in [(1, "Count"), (2, "Count"), (3, "Price"), (4, "Amount")] {
        let (status, _, body) = request("GET", &format!("{records}/{id}"), token, None);
        assert_eq!((status, body["error"]["code"].as_str()), (502, Some("invalid_stored_value")), "{id}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("record `{id}`")) && message.contains(&format!("`{attribute}`")),
            "{id}: the message names the record and the attribute: {message}"
        );
        let (status, _, body) = request("GET", &format!("{records}?Id={id}"), token, None);
        assert_eq!((status, body["error"]["code"].as_str()), (502, Some("invalid_stored_value")), "{id}: {body}");
    }
    let (status, _, body) = request("GET", &format!("{records}?sort=Id"), token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("invalid_stored_value")), "{body}");
    let (status, _, body) = request("GET", &format!("{records}/5"), token, None);
    assert_eq!((status, &body["Count"]), (200, &json!(3)), "a sound record reads: {body}");

    // A CHECK constraint: the client's 400, naming the constraint, not "must be unique".
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Zero", "Count": -1 })));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_input")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("check") && message.contains("`count_positive`") && !message.contains("unique"),
        "{message}"
    );
    assert!(!message.contains("CHECK constraint failed"), "the database's own words are not answered: {message}");
    // A foreign key: 409 with its own wording.
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Orphan", "Parent": 777 })));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("record_conflict")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("refers to a record that does not exist") && !message.contains("unique"), "{message}");
    assert!(!message.contains("FOREIGN KEY constraint failed"), "{message}");
    // A unique violation is still one.
    let (status, _, body) = request("POST", records, token, Some(&json!({ "Name": "Fine" })));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("record_conflict")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("must be unique"), "{body}");
    assert_eq!((backend.sql)("SELECT count(*) FROM item").trim(), "5", "nothing refused was written");
}

/// PostgreSQL's numeric `NaN`, which no Decimal is: 502 `invalid_stored_value` naming the record
/// and the attribute, for a read and a list, never 500.
#[test]
fn a_postgresql_nan_decimal_is_an_invalid_stored_value() {
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    let backend = Backend {
        name: "PostgreSQL",
        url: url.clone(),
        sql: Box::new(|statement| cluster.sql_in(&url, statement)),
        table: "CREATE TABLE item (id BIGSERIAL PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, count INTEGER, \
                big BIGINT, price NUMERIC(12,2), active BOOLEAN, at TIMESTAMP, day DATE, clock TIME, mail TEXT, \
                phone VARCHAR(30), amount NUMERIC(19,4), data BYTEA, parent BIGINT)",
        row: "",
        stop: None,
        start: None,
    };
    let setup = set_up(&backend);
    (backend.sql)("INSERT INTO item (id, name, price) VALUES (41, 'Unknown', 'NaN')");
    let (status, _, body) = request("GET", &format!("{}/41", setup.records), &setup.token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("invalid_stored_value")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("record `41`") && message.contains("`Price`"), "{message}");
    let (status, _, body) = request("GET", &setup.records, &setup.token, None);
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("invalid_stored_value")), "{body}");
}
