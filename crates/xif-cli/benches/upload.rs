//! The bar of step 4: uploading a 1 GiB XIF over loopback reaches at least 70% of the
//! throughput of the same bytes sent with curl to an endpoint that discards them (a minimal
//! handler on the same framework), measured in the same run, with the server's peak memory
//! under 100 MiB.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RESOURCE_BYTES: u64 = 1 << 30;
const RUNS: usize = 3;

/// curl posting the bytes of `file` to `url`; returns the transfer's seconds and HTTP status.
/// `--data-binary @FILE` refuses a 1 GiB file (it holds the body in memory, and curl answers
/// "out of memory"), so both sides use `-T FILE -X POST`, which streams the same bytes with
/// the same headers.
fn curl(file: &Path, url: &str, headers: &[String]) -> (f64, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{time_total} %{http_code}", "-X", "POST", "-T"]).arg(file);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().expect("curl runs (install it with apt-get install curl)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (seconds, status) = text.split_once(' ').unwrap_or_else(|| {
        panic!("curl gave no figures ({}): {}", output.status, String::from_utf8_lossy(&output.stderr))
    });
    (seconds.parse().expect("seconds"), status.to_owned())
}

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let xif = |arguments: &[&str], directory: &Path| {
        xif_testkit::xif(env!("CARGO_BIN_EXE_xif"), arguments, directory, &target)
    };
    xif(&["new", "BenchUpload"], temporary.path());
    let project = temporary.path().join("BenchUpload");
    xif_testkit::incompressible(&project.join("resources/large.bin"), RESOURCE_BYTES, 0x2545_f491_4f6c_dd1d);
    let mut definition = std::fs::OpenOptions::new().append(true).open(project.join("extension.toml")).expect("open");
    writeln!(definition, "\n[[resources]]\npath = \"resources/large.bin\"\ndeploy = \"binaries\"").expect("written");
    drop(definition);
    let archive = temporary.path().join("BenchUpload.xif");
    xif(&["save", "-o", archive.to_str().expect("path")], &project);
    std::fs::remove_file(project.join("resources/large.bin")).expect("removed");
    let digest = String::from_utf8_lossy(&Command::new("sha256sum").arg(&archive).output().expect("sha256sum").stdout)
        .split(' ')
        .next()
        .expect("digest")
        .to_owned();
    let size = std::fs::metadata(&archive).expect("archive").len();

    // The baseline: a handler on the same framework that reads the body and drops it.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
    let discard_url = format!("http://{}/discard", listener.local_addr().expect("address"));
    let app = axum::Router::new()
        .route(
            "/discard",
            axum::routing::post(|body: axum::body::Body| async move {
                use http_body_util_shim::drain;
                drain(body).await;
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });

    // The xif server, a process of its own.
    // The server's own account of each upload: how long receiving and checking took.
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &temporary.path().join("data"),
        xif_testkit::BENCHMARK_PASSWORD,
        "info",
        &["--max-upload-mib", "2048"],
        |line| {
            if line.contains("received_ms") {
                let field = |name: &str| {
                    line.split(&format!("\"{name}\":"))
                        .nth(1)
                        .and_then(|rest| rest.split([',', '}']).next())
                        .unwrap_or("?")
                        .to_owned()
                };
                println!("  server: received in {} ms, checked in {} ms", field("received_ms"), field("checked_ms"));
            }
        },
    );
    let url = server.url.clone();
    let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
    let headers = [format!("authorization: Bearer {token}"), format!("x-xif-sha256: {digest}"), "expect:".to_owned()];
    let upload_url = format!("{url}/api/v1/extensions/BenchUpload/versions");

    let peak = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).expect("the server's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmHWM")
    };
    let mut raw = Vec::new();
    let mut uploads = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..RUNS {
        let (seconds, status) = curl(&archive, &discard_url, &[]);
        assert_eq!(status, "204");
        raw.push(seconds);
        // Resets the server's peak resident memory (VmHWM), so each upload has its own peak.
        std::fs::write(format!("/proc/{}/clear_refs", server.id()), "5").ok();
        let (seconds, status) = curl(&archive, &upload_url, &headers);
        assert!(status == "201" || status == "200", "upload answered {status}");
        uploads.push(seconds);
        peaks.push(peak());
        std::thread::sleep(Duration::from_millis(200));
    }
    let peak_kib = peaks.iter().copied().max().unwrap_or_default();
    drop(server);
    let throughput = |runs: &[f64]| -> Vec<f64> { runs.iter().map(|seconds| size as f64 / 1e6 / seconds).collect() };
    let (baseline, _, _) = xif_testkit::spread(&throughput(&raw));
    xif_testkit::Figure::new(
        "upload of a 1 GiB XIF to `xif server` (baseline: curl to a discarding handler)",
        "MB/s",
        &throughput(&uploads),
        "at least 70% of the baseline",
        |median| median >= baseline * 0.7,
    )
    .against(baseline)
    .report();
    let mebibytes: Vec<f64> = peaks.iter().map(|kib| *kib as f64 / 1024.0).collect();
    xif_testkit::Figure::new(
        "the server's peak memory during an upload (VmHWM)",
        "MiB",
        &mebibytes,
        "under 100 MiB",
        |median| median < 100.0,
    )
    .report();

    let (raw_median, raw_min, raw_max) = median(raw);
    let (upload_median, upload_min, upload_max) = median(uploads);
    let rate = |seconds: f64| size as f64 / 1e6 / seconds;
    let ratio = raw_median / upload_median;
    println!("upload of a {} MiB XIF over loopback with curl -T (POST), {RUNS} runs each", size >> 20);
    println!(
        "discarding endpoint (baseline): median {raw_median:.2} s ({:.0} MB/s), min {raw_min:.2}, max {raw_max:.2}",
        rate(raw_median)
    );
    println!(
        "xif server upload             : median {upload_median:.2} s ({:.0} MB/s), min {upload_min:.2}, max {upload_max:.2}",
        rate(upload_median)
    );
    println!(
        "throughput ratio: {:.0}% (bar: at least 70%) -> {}",
        ratio * 100.0,
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    println!(
        "server peak memory: {:.1} MiB (bar: under 100 MiB) -> {}",
        peak_kib as f64 / 1024.0,
        if peak_kib < 100 * 1024 { "met" } else { "NOT met" }
    );
}

/// Reading a body to its end, without keeping it.
mod http_body_util_shim {
    pub async fn drain(body: axum::body::Body) {
        use futures_util::StreamExt as _;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                return;
            }
        }
    }
}
