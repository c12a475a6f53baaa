//! The bar of step 11: a record read by its identifier through the API (`GET
//! /api/v1/extensions/Shop/entities/Item/records/{id}`, a real `xif server` with a PostgreSQL
//! connection mapped to a real table) reaches at least 70% of the throughput of a minimal axum
//! handler that runs the same `SELECT … WHERE id = $1` on the same kind of sqlx pool to the same
//! database and answers the same JSON, measured in the same run with `wrk` (keep-alive HTTP).
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

#[path = "../../xif-host/tests/support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::{Command, Stdio};

use std::io::Write as _;

const SECONDS: &str = "3";
const ROUNDS: usize = 5;
const CONNECTIONS: &str = "8";
/// The records the table holds; each request reads one of them.
const ROWS: i64 = 1000;

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
  { name = "Count", type = "Integer", column = "count" },
  { name = "Price", type = "Decimal", length = 12, decimals = 2, column = "price" },
]
"#;

/// Runs wrk against `url` with GETs of ids spread over the table; returns requests per second.
fn wrk(url: &str, token: Option<&str>, script_directory: &Path) -> f64 {
    let script = script_directory.join("get.lua");
    let authorization =
        token.map(|token| format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n")).unwrap_or_default();
    std::fs::write(
        &script,
        format!(
            "{authorization}counter = 0\nrequest = function()\n  counter = counter + 1\n  \
             return wrk.format(\"GET\", wrk.path .. \"/\" .. (counter % {ROWS} + 1))\nend\n"
        ),
    )
    .expect("written");
    let output = Command::new("wrk")
        .args(["-t", "1", "-c", CONNECTIONS, "-d", SECONDS, "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!text.contains("Non-2xx"), "every request succeeds:\n{text}");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:").map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("a rate in:\n{text}"))
        .parse()
        .expect("a rate")
}

/// Publishes Shop on `server` and maps its logical database `main` to `url` with `xif admin
/// connection add` and `map`.
fn publish_and_map(runtime: &tokio::runtime::Runtime, server: &xif_testkit::Server, token: &str, url: &str) {
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let bytes = xif_testkit::pack("Shop", "1.0.0", DEFINITION, &fixtures::binary("generic"));
        use sha2::Digest as _;
        let digest: String = hex::encode(sha2::Sha256::digest(&bytes));
        let response = client
            .post(format!("{}/api/v1/extensions/Shop/versions", server.url))
            .bearer_auth(token)
            .header("x-xif-sha256", digest)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201);
        let response = client
            .post(format!("{}/api/v1/extensions/Shop/publications", server.url))
            .bearer_auth(token)
            .json(&serde_json::json!({ "version": 1, "expected": null }))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status(), 200);
    });
    for arguments in
        [&["connection", "add", "shopdb", "--url-stdin"][..], &["connection", "map", "Shop", "main", "shopdb"]]
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
            .args(["admin", "--server", &server.url])
            .args(arguments)
            .env("XIF_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xif admin runs");
        child.stdin.take().expect("stdin").write_all(format!("{url}\n").as_bytes()).expect("written");
        let output = child.wait_with_output().expect("finished");
        assert!(output.status.success(), "xif admin {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is needed: apt-get install wrk (bench/run does)"
    );
    let temporary = tempfile::tempdir().expect("temporary directory");
    let cluster = xif_testkit::postgres::Cluster::new();
    let url = cluster.database();
    cluster.sql_in(
        &url,
        &format!(
            "CREATE TABLE item (id BIGSERIAL PRIMARY KEY, name VARCHAR(50) NOT NULL, count INTEGER, price NUMERIC(12,2)); \
             INSERT INTO item (name, count, price) SELECT 'Item ' || n, n, n * 1.25 FROM generate_series(1, {ROWS}) AS n"
        ),
    );

    // The xif server, with Shop published and its logical database mapped to the table's: one
    // with its default of one worker thread on this machine (it leaves a core to extensions'
    // processes), one with two, as the baseline is measured with both: here the work is the
    // database's, in processes of its own, as an extension's would be.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let servers: Vec<(usize, xif_testkit::Server, String)> = [1, 2]
        .into_iter()
        .map(|workers| {
            let server = xif_testkit::Server::start(
                env!("CARGO_BIN_EXE_xif"),
                &temporary.path().join(format!("data-{workers}")),
                xif_testkit::BENCHMARK_PASSWORD,
                "warn",
                &["--workers", &workers.to_string()],
                drop,
            );
            let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
            publish_and_map(&runtime, &server, &token, &url);
            (workers, server, token)
        })
        .collect();

    // The baseline: the same query on the same kind of pool (as many connections as the
    // server's), answered as the same JSON by a minimal axum handler, with one worker thread
    // (the xif server leaves a core to the extensions' processes) and with two; the faster counts.
    let minimal = |workers: usize| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("runtime");
        let pool = runtime
            .block_on(sqlx::postgres::PgPoolOptions::new().max_connections(10).connect(&url))
            .expect("the baseline's pool");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
        let address = format!("http://{}/minimal", listener.local_addr().expect("address"));
        let app = axum::Router::new().route(
            "/minimal/{id}",
            axum::routing::get(
                |axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
                 axum::extract::Path(id): axum::extract::Path<i64>| async move {
                    use sqlx::Row as _;
                    let row =
                        sqlx::query("SELECT \"id\", \"name\", \"count\", \"price\" FROM \"item\" WHERE \"id\" = $1")
                            .bind(id)
                            .fetch_one(&pool)
                            .await
                            .expect("the row");
                    axum::Json(serde_json::json!({
                        "Id": row.get::<i64, _>(0),
                        "Name": row.get::<String, _>(1),
                        "Count": row.get::<Option<i32>, _>(2),
                        "Price": row.get::<Option<rust_decimal::Decimal>, _>(3).map(|price| price.to_string()),
                    }))
                },
            ),
        );
        let app = app.with_state(pool);
        runtime.spawn(async move { axum::serve(listener, app).await.ok() });
        (runtime, address)
    };
    let minimal_servers: Vec<(tokio::runtime::Runtime, String)> = [1, 2].into_iter().map(minimal).collect();
    let (mut baseline_rates, mut record_rates) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let mut best = 0.0_f64;
        for (workers, (_, minimal_url)) in minimal_servers.iter().enumerate() {
            let rate = wrk(minimal_url, None, temporary.path());
            println!("round {round}: minimal axum handler with sqlx, {} worker(s): {rate:.0} requests/s", workers + 1);
            best = best.max(rate);
        }
        baseline_rates.push(best);
        let mut best = 0.0_f64;
        for (workers, server, token) in &servers {
            let url = format!("{}/api/v1/extensions/Shop/entities/Item/records", server.url);
            let rate = wrk(&url, Some(token), temporary.path());
            println!("round {round}: xif server, {workers} worker(s), a record read by id: {rate:.0} requests/s");
            best = best.max(rate);
        }
        record_rates.push(best);
    }
    let (baseline, _, _) = xif_testkit::spread(&baseline_rates);
    let (records, _, _) = xif_testkit::spread(&record_rates);
    let ratio = records / baseline;
    println!(
        "wrk, 1 thread, {CONNECTIONS} connections, {SECONDS} s each, GET by id over {ROWS} rows, {ROUNDS} rounds (medians)"
    );
    println!(
        "minimal axum handler with the same query and pool, the faster of 1 or 2 workers (baseline): {baseline:.0} requests/s"
    );
    println!("xif server, a record read by id, the faster of 1 or 2 workers: {records:.0} requests/s");
    println!(
        "throughput ratio: {:.0}% (bar: at least 70%) -> {}",
        ratio * 100.0,
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    xif_testkit::Figure::new(
        "a record read by id through the API, PostgreSQL, wrk, the faster of 1 or 2 workers (baseline: a minimal axum handler, same query and pool, the faster of 1 or 2 workers)",
        "requests/s",
        &record_rates,
        "at least 70% of the baseline",
        |median| median >= baseline * 0.7,
    )
    .against(baseline)
    .report();
    drop(minimal_servers);
    drop(servers);
}
