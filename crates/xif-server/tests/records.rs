//! The record operations' SQL on real databases, without HTTP: PostgreSQL and MariaDB started
//! by the test, and an SQLite file. A table whose name and columns need quoting (a quote
//! character, a space, a keyword) takes every data type there and back, and lists filter and
//! sort it. The API's own test (`xif-cli/tests/records.rs`) goes through a real server.

use serde_json::{Value, json};
use xif_server::entities::Database;
use xif_server::entities::filter::ListQuery;
use xif_server::entities::records::{Records, Table};

/// Columns whose names need quoting in every dialect: a quote of each kind, a space, keywords.
const DEFINITION: &str = r#"[extension]
name = "Shop"
version = "1.0.0"
description = "d"

[[entities]]
name = "Item"
table = "odd \"item` table"
attributes = [
  { name = "Id", type = "Long Integer", identifier = true, auto_number = true, column = "select" },
  { name = "Name", type = "Text", mandatory = true, column = "na\"me" },
  { name = "Count", type = "Integer", default = 7, column = "co`unt" },
  { name = "Price", type = "Decimal", length = 12, decimals = 2, column = "order" },
  { name = "Active", type = "Boolean", column = "active" },
  { name = "At", type = "Date Time", column = "at" },
  { name = "Day", type = "Date", column = "day" },
  { name = "Clock", type = "Time", column = "clock" },
  { name = "Data", type = "Binary Data", column = "data" },
]
"#;

async fn round_trip(database: Database) {
    let definition = std::sync::Arc::new(xif_definition::parse(DEFINITION).expect("the definition parses"));
    let records = Records::default();
    let plan = records.plan("Shop", &definition, "item").expect("the entity");
    let table = Table { extension: "Shop", definition: &definition, plan: &plan, database: &database };
    let record = json!({
        "Name": "Ann", "Price": "12.50", "Active": true, "At": "2024-01-31T09:30:00.250", "Day": "2024-01-31",
        "Clock": "09:30:15", "Data": "AAEC/w==",
    });
    let (created, segment) = table.create(&record).await.expect("created");
    let id = created["Id"].as_i64().expect("an identifier");
    assert_eq!(segment, id.to_string());
    let mut expected = record.clone();
    expected["Id"] = json!(id);
    expected["Count"] = json!(7);
    assert_eq!(Value::Object(created), expected, "{database:?}");
    assert_eq!(Value::Object(table.read(&id.to_string()).await.expect("read")), expected, "{database:?}");
    table.create(&json!({ "Name": "Bob", "Count": 9 })).await.expect("created");
    let query = ListQuery::parse(&plan, "Count.gt=7&sort=-Name").expect("a query");
    let (listed, cut) = table.list(query).await.expect("listed");
    assert!(!cut, "a page of two small records is within its budget");
    assert_eq!(listed.iter().map(|r| r["Name"].clone()).collect::<Vec<_>>(), [json!("Bob")], "{database:?}");
    let (updated, created) = table.put(&id.to_string(), &json!({ "Count": 1 })).await.expect("put");
    assert_eq!((updated["Count"].clone(), created), (json!(1), false));
    table.delete(&id.to_string()).await.expect("deleted");
    assert!(table.read(&id.to_string()).await.is_err(), "{database:?}: deleted");
}

#[tokio::test]
async fn postgresql_round_trip() {
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    cluster.sql_in(
        &url,
        "CREATE TABLE \"odd \"\"item` table\" (\"select\" BIGSERIAL PRIMARY KEY, \"na\"\"me\" TEXT NOT NULL, \"co`unt\" INTEGER, \
         \"order\" NUMERIC(12,2), active BOOLEAN, at TIMESTAMP, day DATE, clock TIME, data BYTEA)",
    );
    round_trip(Database::Postgres(sqlx::PgPool::connect(&url).await.expect("connected"))).await;
}

#[tokio::test]
async fn mariadb_round_trip() {
    let server = xif_testkit::mariadb::Server::new();
    let url = server.database();
    server.sql_in(
        &url,
        "CREATE TABLE `odd \"item`` table` (`select` BIGINT AUTO_INCREMENT PRIMARY KEY, `na\"me` TEXT NOT NULL, `co``unt` INT, \
         `order` DECIMAL(12,2), active BOOLEAN, at DATETIME(3), day DATE, clock TIME, data BLOB)",
    );
    round_trip(Database::MySql(sqlx::MySqlPool::connect(&url).await.expect("connected"))).await;
}

#[tokio::test]
async fn sqlite_round_trip() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", directory.path().join("shop.sqlite").display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("connected");
    sqlx::query(
        "CREATE TABLE \"odd \"\"item` table\" (\"select\" INTEGER PRIMARY KEY AUTOINCREMENT, \"na\"\"me\" TEXT NOT NULL, \
         \"co`unt\" INTEGER, \"order\" TEXT, active BOOLEAN, at DATETIME, day DATE, clock TIME, data BLOB)",
    )
    .execute(&pool)
    .await
    .expect("the table");
    round_trip(Database::Sqlite(pool)).await;
}
