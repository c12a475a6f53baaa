//! The bar of step 5: calls through the HTTP API reach at least 50% of the throughput of a
//! minimal HTTP handler on the same framework, measured in the same run with an external load
//! generator (`wrk`, installed from Debian when missing), with p50 and p99 latency.
//!
//! The bar of step 11, the floor of this design: calls reach at least 70% of a minimal axum
//! handler that forwards the body over a Unix socket to an echo process (this benchmark's own
//! binary, run again with `--echo-process SOCKET`) and answers what comes back, with the
//! protocol's framing (a little-endian `u32` length, then the bytes) and calls multiplexed on
//! one connection by id, as the host does. The plain minimal handler is reported beside it.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::path::Path;
use std::process::Command;

const SECONDS: &str = "3";
const ROUNDS: usize = 3;
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

/// wrk's latency (`210.00us`, `2.84ms`, `1.02s`) in microseconds.
fn microseconds(latency: &str) -> f64 {
    let (number, factor) = if let Some(number) = latency.strip_suffix("us") {
        (number, 1.0)
    } else if let Some(number) = latency.strip_suffix("ms") {
        (number, 1e3)
    } else if let Some(number) = latency.strip_suffix('s') {
        (number, 1e6)
    } else {
        (latency, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// The echo process of the floor: connects to the Unix socket at `path` and sends back every
/// frame it reads, as it came; what several frames read at once bring goes back in one write.
/// Ends when the socket closes.
fn echo_process(path: &str) {
    use std::io::{BufReader, Read as _, Write as _};
    let stream = std::os::unix::net::UnixStream::connect(path).expect("the floor's socket");
    let mut writer = stream.try_clone().expect("a second handle");
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).is_err() {
            return;
        }
        let length = u32::from_le_bytes(prefix) as usize;
        out.extend_from_slice(&prefix);
        let start = out.len();
        out.resize(start + length, 0);
        if reader.read_exact(&mut out[start..]).is_err() {
            return;
        }
        // Nothing more already read: answer what is gathered.
        if reader.buffer().is_empty() {
            if writer.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The floor's side of the socket: frames queued by handlers (a `u64` id, then the body) are
/// written in batches by one task, answers are routed back by id by another.
#[derive(Clone)]
struct Floor {
    frames: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    pending: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<Vec<u8>>>>>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Floor {
    async fn forward(&self, body: &[u8]) -> Vec<u8> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.pending.lock().expect("pending").insert(id, sender);
        let mut frame = Vec::with_capacity(12 + body.len());
        frame.extend_from_slice(&u32::try_from(8 + body.len()).expect("a small body").to_le_bytes());
        frame.extend_from_slice(&id.to_le_bytes());
        frame.extend_from_slice(body);
        self.frames.send(frame).expect("the writer runs");
        receiver.await.expect("the echo answers")
    }
}

/// The floor with `workers` worker threads: its runtime (which holds its tasks), its URL, and
/// its echo process.
fn floor(workers: usize, directory: &Path) -> (tokio::runtime::Runtime, String, xif_testkit::KillOnDrop) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("runtime");
    let socket = directory.join(format!("floor-{workers}.sock"));
    let listener = runtime.block_on(async { tokio::net::UnixListener::bind(&socket) }).expect("the floor's socket");
    let echo = Command::new(std::env::current_exe().expect("this benchmark's binary"))
        .arg("--echo-process")
        .arg(&socket)
        .spawn()
        .expect("the echo process starts");
    let echo = xif_testkit::KillOnDrop(echo);
    let (stream, _) = runtime.block_on(listener.accept()).expect("the echo process connects");
    let (read, mut write) = stream.into_split();
    let (frames, mut queued) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let floor = Floor { frames, pending: Default::default(), next: Default::default() };
    // As the host's writer: frames queued during a write go out together in the next one.
    runtime.spawn(async move {
        while let Some(mut batch) = queued.recv().await {
            while let Ok(frame) = queued.try_recv() {
                batch.extend_from_slice(&frame);
            }
            if write.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    let pending = std::sync::Arc::clone(&floor.pending);
    runtime.spawn(async move {
        let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
        loop {
            let Ok(length) = read.read_u32_le().await else { return };
            let Ok(id) = read.read_u64_le().await else { return };
            let mut body = vec![0; length as usize - 8];
            if read.read_exact(&mut body).await.is_err() {
                return;
            }
            if let Some(sender) = pending.lock().expect("pending").remove(&id) {
                sender.send(body).ok();
            }
        }
    });
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
    let url = format!("http://{}/floor", listener.local_addr().expect("address"));
    let app = axum::Router::new()
        .route(
            "/floor",
            axum::routing::post(
                |axum::extract::State(floor): axum::extract::State<Floor>, body: bytes::Bytes| async move {
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], floor.forward(&body).await)
                },
            ),
        )
        .with_state(floor);
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });
    (runtime, url, echo)
}

/// Each of `servers` (a worker count and a URL) under wrk this round, printed under `label`:
/// the requests per second of each, in order.
fn rates(round: usize, label: &str, servers: &[(usize, &str)], directory: &Path) -> Vec<f64> {
    let mut rates = Vec::new();
    for (workers, url) in servers {
        let (rate, p50, p99) = wrk(url, None, directory);
        println!("round {round}: {label}, {workers} worker(s): {rate:.0} requests/s, p50 {p50}, p99 {p99}");
        rates.push(rate);
    }
    rates
}

/// A second xif server, with `--workers 2` (the default leaves a core to the extensions), the
/// benchmark's extension `archive` uploaded and published with curl: the server and the URL of
/// its `Greet`. Reported beside the default, to check that default on the machine it runs on.
fn two_worker_server(archive: &Path, directory: &Path) -> (xif_testkit::Server, String, String) {
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &directory.join("data-two-workers"),
        xif_testkit::BENCHMARK_PASSWORD,
        "warn",
        &["--workers", "2"],
        drop,
    );
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(archive).expect("archive")));
    let authorization = format!("Authorization: Bearer {token}");
    let curl = |arguments: &[&str]| {
        let output = Command::new("curl").args(["-sS", "--fail", "-H", &authorization]).args(arguments).output();
        let output = output.expect("curl runs");
        assert!(output.status.success(), "curl {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let at = |path: &str| format!("{}/api/v1/extensions/CallBench/{path}", server.url);
    let upload = format!("@{}", archive.display());
    curl(&["-H", &format!("x-xif-sha256: {digest}"), "--data-binary", &upload, &at("versions")]);
    curl(&["-H", "content-type: application/json", "-d", r#"{"version": 1, "expected": null}"#, &at("publications")]);
    let url = at("actions/Greet");
    (server, url, token)
}

/// The bar of step 11: xif's calls against the floor (the faster of its 1 and 2 workers), with
/// the floor on one worker (as many as the xif server has on this 2-core machine) and the plain
/// minimal handler's rate (`minimal`) beside it.
fn report_floor(floor_rates: &[f64], floor_one_worker_rates: &[f64], call_rates: &[f64], minimal: f64) {
    let (floor, _, _) = xif_testkit::spread(floor_rates);
    let (floor_one_worker, _, _) = xif_testkit::spread(floor_one_worker_rates);
    let (calls, _, _) = xif_testkit::spread(call_rates);
    let ratio = calls / floor;
    println!(
        "floor, axum forwarding over a Unix socket to an echo process, the faster of 1 or 2 workers: {floor:.0} requests/s"
    );
    println!(
        "floor on one worker: {floor_one_worker:.0} requests/s; xif against it: {:.0}%",
        calls / floor_one_worker * 100.0
    );
    println!(
        "xif against the floor: {:.0}% (bar: at least 70%) -> {}; against the minimal handler: {:.0}%; the floor against the minimal handler: {:.0}%",
        ratio * 100.0,
        if ratio >= 0.7 { "met" } else { "NOT met" },
        calls / minimal * 100.0,
        floor / minimal * 100.0
    );
    xif_testkit::Figure::new(
        "calls through the HTTP API, wrk (baseline: the floor, axum forwarding to an echo process)",
        "requests/s",
        call_rates,
        "at least 70% of the baseline",
        |median| median >= floor * 0.7,
    )
    .against(floor)
    .report();
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    if let Some(socket) = std::env::args().skip_while(|argument| argument != "--echo-process").nth(1) {
        echo_process(&socket);
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

    let server = xif_testkit::Server::for_benchmark(env!("CARGO_BIN_EXE_xif"), &temporary.path().join("data"));
    let url = server.url.clone();
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
    let token = runtime.block_on(async {
        let client = reqwest::Client::new();
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

    // Several rounds, each measuring both baselines and the xif server back to back, so that the
    // machine's drift affects all three alike.
    let minimal_servers: Vec<(tokio::runtime::Runtime, String)> = [1, 2].into_iter().map(minimal).collect();
    let call_url = format!("{url}/api/v1/extensions/CallBench/actions/Greet");
    // The floor of the design (step 11), with one worker and with two; the faster counts.
    let floors: Vec<_> = [1, 2].into_iter().map(|workers| floor(workers, temporary.path())).collect();
    let floor_urls: Vec<(usize, &str)> =
        floors.iter().zip([1, 2]).map(|((_, url, _), workers)| (workers, url.as_str())).collect();
    let (mut floor_rates, mut floor_one_worker_rates) = (Vec::new(), Vec::new());
    let (two_workers, two_workers_url, two_workers_token) = two_worker_server(&archive, temporary.path());
    let mut two_worker_rates = Vec::new();
    let (mut baseline_rates, mut call_rates) = (Vec::new(), Vec::new());
    let (mut baseline_p50s, mut call_p50s, mut baseline_p99s, mut call_p99s) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let mut best: Option<(f64, String, String)> = None;
        for (workers, (_, minimal_url)) in minimal_servers.iter().enumerate() {
            let figures = wrk(minimal_url, None, temporary.path());
            println!(
                "round {round}: minimal axum handler, {} worker(s): {:.0} requests/s, p50 {}, p99 {}",
                workers + 1,
                figures.0,
                figures.1,
                figures.2
            );
            if best.as_ref().is_none_or(|(rate, _, _)| figures.0 > *rate) {
                best = Some(figures);
            }
        }
        let (rate, p50, p99) = best.expect("two baselines");
        baseline_rates.push(rate);
        baseline_p50s.push(microseconds(&p50));
        baseline_p99s.push(microseconds(&p99));
        let rates = rates(round, "floor: axum forwarding to an echo process", &floor_urls, temporary.path());
        floor_rates.push(rates.iter().copied().fold(0.0, f64::max));
        floor_one_worker_rates.push(rates[0]);
        let (rate, p50, p99) = wrk(&call_url, Some(&token), temporary.path());
        println!("round {round}: xif server, the sample's Greet: {rate:.0} requests/s, p50 {p50}, p99 {p99}");
        call_rates.push(rate);
        call_p50s.push(microseconds(&p50));
        call_p99s.push(microseconds(&p99));
        let (rate, p50, p99) = wrk(&two_workers_url, Some(&two_workers_token), temporary.path());
        println!(
            "round {round}: xif server with --workers 2, the sample's Greet: {rate:.0} requests/s, p50 {p50}, p99 {p99}"
        );
        two_worker_rates.push(rate);
    }
    drop(two_workers);
    let (baseline, _, _) = xif_testkit::spread(&baseline_rates);
    let (calls, _, _) = xif_testkit::spread(&call_rates);
    let ratio = calls / baseline;
    println!("wrk, 1 thread, {CONNECTIONS} connections, {SECONDS} s each, POST {BODY}, {ROUNDS} rounds (medians)");
    println!("minimal axum handler, the faster of 1 or 2 workers (baseline): {baseline:.0} requests/s");
    println!("xif server, the sample's Greet: {calls:.0} requests/s");
    println!(
        "throughput ratio: {:.0}% (bar: at least 50%) -> {}",
        ratio * 100.0,
        if ratio >= 0.5 { "met" } else { "NOT met" }
    );
    xif_testkit::Figure::new(
        "calls through the HTTP API, wrk (baseline: the faster minimal axum handler)",
        "requests/s",
        &call_rates,
        "at least 50% of the baseline",
        |median| median >= baseline * 0.5,
    )
    .against(baseline)
    .report();
    report_floor(&floor_rates, &floor_one_worker_rates, &call_rates, baseline);
    let (floor, _, _) = xif_testkit::spread(&floor_rates);
    let (two, _, _) = xif_testkit::spread(&two_worker_rates);
    println!("xif server with --workers 2: {two:.0} requests/s, {:.0}% of the floor", two / floor * 100.0);
    xif_testkit::Figure::new(
        "calls through the HTTP API, the server with --workers 2 (baseline: the floor)",
        "requests/s",
        &two_worker_rates,
        "reported",
        |_| true,
    )
    .against(floor)
    .report();
    let (p50_baseline, _, _) = xif_testkit::spread(&baseline_p50s);
    xif_testkit::Figure::new("calls through the HTTP API, p50 latency", "µs", &call_p50s, "reported", |_| true)
        .against(p50_baseline)
        .report();
    let (p99_baseline, _, _) = xif_testkit::spread(&baseline_p99s);
    xif_testkit::Figure::new("calls through the HTTP API, p99 latency", "µs", &call_p99s, "reported", |_| true)
        .against(p99_baseline)
        .report();
    drop(server);
}
