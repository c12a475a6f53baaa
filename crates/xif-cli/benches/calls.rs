//! The bar of step 5: calls through the HTTP API reach at least 50% of the throughput of a
//! minimal HTTP handler on the same framework, measured in the same run with an external load
//! generator (`wrk`, installed from Debian when missing), with p50 and p99 latency.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::path::Path;
use std::process::Command;

const SECONDS: &str = "5";
const CONNECTIONS: &str = "8";
const BODY: &str = r#"{"Person": {"Name": "Ada"}}"#;

/// Runs wrk against `url` with a POST of `BODY`; returns requests per second, p50 and p99.
fn wrk(url: &str, token: Option<&str>, script_directory: &Path) -> (f64, String, String) {
    let script = script_directory.join("post.lua");
    let authorization =
        token.map(|token| format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n")).unwrap_or_default();
    std::fs::write(&script, format!("wrk.method = \"POST\"\nwrk.body = '{BODY}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{authorization}")).expect("written");
    let output = Command::new("wrk")
        .args(["-t", "1", "-c", CONNECTIONS, "-d", SECONDS, "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!text.contains("Non-2xx"), "every request succeeds:\n{text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("`{prefix}` in:\n{text}"))
    };
    (field("Requests/sec:").parse().expect("a rate"), field("50%"), field("99%"))
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        let installed =
            Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]).status().is_ok_and(|status| status.success())
                || (Command::new("apt-get").args(["update", "-qq"]).status().is_ok()
                    && Command::new("apt-get")
                        .args(["install", "-y", "-qq", "wrk"])
                        .status()
                        .is_ok_and(|status| status.success()));
        assert!(installed, "wrk is needed: apt-get install wrk");
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let xif = |arguments: &[&str], directory: &Path| {
        xif_testkit::xif(env!("CARGO_BIN_EXE_xif"), arguments, directory, &target)
    };
    xif(&["new", "CallBench"], temporary.path());
    let archive = temporary.path().join("CallBench.xif");
    xif(&["save", "-o", archive.to_str().expect("path")], &temporary.path().join("CallBench"));

    // The baseline: a minimal handler on the same framework, in a process of its own (this
    // one), with one worker thread and with two; the faster counts. (The xif server leaves a core
    // to the extensions' processes: one worker on this machine.)
    let minimal = |workers: usize| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
        let url = format!("http://{}/minimal", listener.local_addr().expect("address"));
        let app = axum::Router::new().route(
            "/minimal",
            axum::routing::post(|axum::Json(inputs): axum::Json<serde_json::Value>| async move {
                let name = inputs["Person"]["Name"].as_str().unwrap_or_default().to_owned();
                axum::Json(serde_json::json!({ "Greeting": format!("Hello, {name}!") }))
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await.ok() });
        (runtime, url)
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &temporary.path().join("data"),
        "benchmark-password",
        "warn",
        &[],
        drop,
    );
    let url = server.url.clone();
    let token = runtime.block_on(async {
        let client = reqwest::Client::new();
        let token = client
            .post(format!("{url}/api/v1/login"))
            .json(&serde_json::json!({ "user": "admin", "password": "benchmark-password" }))
            .send()
            .await
            .expect("login")
            .json::<serde_json::Value>()
            .await
            .expect("JSON")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let bytes = std::fs::read(&archive).expect("archive");
        use sha2::Digest as _;
        let digest: String = hex::encode(sha2::Sha256::digest(&bytes));
        let response = client
            .post(format!("{url}/api/v1/extensions/CallBench/versions"))
            .bearer_auth(&token)
            .header("x-xif-sha256", digest)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201);
        let response = client
            .post(format!("{url}/api/v1/extensions/CallBench/publications"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "version": 1, "expected": null }))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status(), 200);
        token
    });

    let baselines: Vec<(usize, (f64, String, String))> = [1, 2]
        .into_iter()
        .map(|workers| {
            let (minimal_runtime, minimal_url) = minimal(workers);
            let figures = wrk(&minimal_url, None, temporary.path());
            minimal_runtime.shutdown_background();
            (workers, figures)
        })
        .collect();
    for (workers, (rate, p50, p99)) in &baselines {
        println!("minimal axum handler, {workers} worker(s): {rate:.0} requests/s, p50 {p50}, p99 {p99}");
    }
    let (_, (minimal_rate, minimal_p50, minimal_p99)) = baselines
        .into_iter()
        .max_by(|(_, (left, _, _)), (_, (right, _, _))| left.total_cmp(right))
        .expect("two baselines");
    let call_url = format!("{url}/api/v1/extensions/CallBench/actions/Greet");
    let (call_rate, call_p50, call_p99) = wrk(&call_url, Some(&token), temporary.path());
    let ratio = call_rate / minimal_rate;
    println!("wrk, 1 thread, {CONNECTIONS} connections, {SECONDS} s each, POST {BODY}");
    println!("minimal axum handler (baseline): {minimal_rate:.0} requests/s, p50 {minimal_p50}, p99 {minimal_p99}");
    println!("xif server, the sample's Greet : {call_rate:.0} requests/s, p50 {call_p50}, p99 {call_p99}");
    println!(
        "throughput ratio: {:.0}% (bar: at least 50%) -> {}",
        ratio * 100.0,
        if ratio >= 0.5 { "met" } else { "NOT met" }
    );
    drop(server);
}
