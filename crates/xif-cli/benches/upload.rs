//! The bar of step 10: uploading a 1 GiB XIF over loopback to the directory store reaches at
//! least 70% of the throughput of a minimal handler on the same framework that stores the same
//! bytes to a file and computes their SHA-256 (the one check no server may skip), measured in
//! the same run, with the server's peak memory under 100 MiB; and to an S3-compatible store
//! (moto, on loopback), the server's peak memory under 100 MiB, its throughput reported beside
//! the directory's. Both the baseline and the directory store make the file durable (fsync).
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RESOURCE_BYTES: u64 = 1 << 30;
const RUNS: usize = 3;
/// Uploads to moto, which keeps every object in memory and is slow: fewer.
const S3_RUNS: usize = 2;

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
    // One archive for each run, so that every upload stores a new version (an upload of bytes
    // the server holds already is answered without storing them again): the same resource,
    // the definition's version changed.
    let text = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    let archives: Vec<(std::path::PathBuf, String)> = (0..RUNS.max(S3_RUNS))
        .map(|run| {
            std::fs::write(
                project.join("extension.toml"),
                text.replacen("version = \"0.1.0\"", &format!("version = \"0.1.{run}\""), 1),
            )
            .expect("written");
            let archive = temporary.path().join(format!("BenchUpload-{run}.xif"));
            xif(&["save", "-o", archive.to_str().expect("path")], &project);
            let output = Command::new("sha256sum").arg(&archive).output().expect("sha256sum");
            let digest = String::from_utf8_lossy(&output.stdout).split(' ').next().expect("digest").to_owned();
            (archive, digest)
        })
        .collect();
    std::fs::remove_file(project.join("resources/large.bin")).expect("removed");
    let size = std::fs::metadata(&archives[0].0).expect("archive").len();

    // The baseline: a handler on the same framework that stores the body to a file while
    // hashing it (on a thread of its own, as a careful handler does), and makes it durable.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bound");
    let baseline_url = format!("http://{}/store", listener.local_addr().expect("address"));
    let stored = temporary.path().join("baseline.bin");
    let app = axum::Router::new()
        .route("/store", axum::routing::post(move |body: axum::body::Body| baseline::store(body, stored.clone())))
        .layer(axum::extract::DefaultBodyLimit::disable());
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });

    let run = |server: &xif_testkit::Server, runs: usize, with_baseline: bool| -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let token = server.token("admin", xif_testkit::BENCHMARK_PASSWORD);
        let upload_url = format!("{}/api/v1/extensions/BenchUpload/versions", server.url);
        let (mut baselines, mut uploads, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
        for (archive, digest) in archives.iter().take(runs) {
            let headers =
                [format!("authorization: Bearer {token}"), format!("x-xif-sha256: {digest}"), "expect:".to_owned()];
            if with_baseline {
                let (seconds, status) = curl(archive, &baseline_url, &[]);
                assert_eq!(status, "201");
                baselines.push(seconds);
            }
            // Resets the server's peak resident memory (VmHWM), so each upload has its own peak.
            std::fs::write(format!("/proc/{}/clear_refs", server.id()), "5").ok();
            let (seconds, status) = curl(archive, &upload_url, &headers);
            assert_eq!(status, "201", "each upload stores a new version");
            uploads.push(seconds);
            peaks.push(server.peak_memory_mib());
            std::thread::sleep(Duration::from_millis(200));
        }
        (baselines, uploads, peaks)
    };
    // The server's own account of each upload: how long receiving and checking took.
    let report = |line: String| {
        if line.contains("received_ms") {
            let field = |name: &str| {
                line.split(&format!("\"{name}\":"))
                    .nth(1)
                    .and_then(|rest| rest.split([',', '}']).next())
                    .unwrap_or("?")
                    .to_owned()
            };
            println!("  server: received in {} ms, checked {} ms later", field("received_ms"), field("checked_ms"));
        }
    };

    // The directory store.
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &temporary.path().join("data"),
        xif_testkit::BENCHMARK_PASSWORD,
        "info",
        &["--max-upload-mib", "2048"],
        report,
    );
    let (raw, uploads, peaks) = run(&server, RUNS, true);
    drop(server);

    // The S3 store: moto on loopback.
    let mut moto = xif_testkit::s3::Moto::start();
    let blobs = moto.bucket("xif-bench");
    let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
    command.envs(xif_testkit::s3::ENV);
    let server = xif_testkit::Server::start_with(
        command,
        &temporary.path().join("data-s3"),
        xif_testkit::BENCHMARK_PASSWORD,
        "info",
        &["--max-upload-mib", "2048", "--blobs", &blobs],
        report,
    );
    let (_, s3_uploads, s3_peaks) = run(&server, S3_RUNS, false);
    drop(server);
    drop(moto);

    let throughput = |runs: &[f64]| -> Vec<f64> { runs.iter().map(|seconds| size as f64 / 1e6 / seconds).collect() };
    let (baseline, _, _) = xif_testkit::spread(&throughput(&raw));
    let (directory, _, _) = xif_testkit::spread(&throughput(&uploads));
    xif_testkit::Figure::new(
        "upload of a 1 GiB XIF to `xif server`, directory store (baseline: a handler that stores the bytes and hashes them)",
        "MB/s",
        &throughput(&uploads),
        "at least 70% of the baseline",
        |median| median >= baseline * 0.7,
    )
    .against(baseline)
    .report();
    xif_testkit::Figure::new(
        "the server's peak memory during an upload to the directory store (VmHWM)",
        "MiB",
        &peaks,
        "under 100 MiB",
        |median| median < 100.0,
    )
    .report();
    xif_testkit::Figure::new(
        "upload of a 1 GiB XIF to `xif server`, S3 store on moto (beside: the directory store)",
        "MB/s",
        &throughput(&s3_uploads),
        "reported beside the directory store's",
        |_| true,
    )
    .against(directory)
    .report();
    xif_testkit::Figure::new(
        "the server's peak memory during an upload to the S3 store (VmHWM)",
        "MiB",
        &s3_peaks,
        "under 100 MiB",
        |median| median < 100.0,
    )
    .report();

    let (raw_median, raw_min, raw_max) = median(raw);
    let (upload_median, upload_min, upload_max) = median(uploads);
    let (s3_median, s3_min, s3_max) = median(s3_uploads);
    let rate = |seconds: f64| size as f64 / 1e6 / seconds;
    let ratio = raw_median / upload_median;
    let peak = |peaks: &[f64]| peaks.iter().copied().fold(0.0, f64::max);
    println!("upload of a {} MiB XIF over loopback with curl -T (POST)", size >> 20);
    println!(
        "store-and-hash handler (baseline): median {raw_median:.2} s ({:.0} MB/s), min {raw_min:.2}, max {raw_max:.2}",
        rate(raw_median)
    );
    println!(
        "xif server, directory store      : median {upload_median:.2} s ({:.0} MB/s), min {upload_min:.2}, max {upload_max:.2}",
        rate(upload_median)
    );
    println!(
        "xif server, S3 store (moto)      : median {s3_median:.2} s ({:.0} MB/s), min {s3_min:.2}, max {s3_max:.2}",
        rate(s3_median)
    );
    println!(
        "throughput ratio, directory store: {:.0}% (bar: at least 70%) -> {}",
        ratio * 100.0,
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    for (store, peaks) in [("directory", &peaks), ("S3", &s3_peaks)] {
        println!(
            "server peak memory, {store} store: {:.1} MiB (bar: under 100 MiB) -> {}",
            peak(peaks),
            if peak(peaks) < 100.0 { "met" } else { "NOT met" }
        );
    }
}

/// The baseline handler.
mod baseline {
    use futures_util::StreamExt as _;
    use sha2::Digest as _;

    /// Stores `body` to `path` and hashes it, on a thread fed through a short queue; answers
    /// `201` with the digest once the file is durable, and removes it.
    pub async fn store(body: axum::body::Body, path: std::path::PathBuf) -> (axum::http::StatusCode, String) {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
        let kept = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use std::io::Write as _;
            let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&kept)?);
            let mut hasher = sha2::Sha256::new();
            while let Some(chunk) = receiver.blocking_recv() {
                hasher.update(&chunk);
                file.write_all(&chunk)?;
            }
            file.flush()?;
            file.get_ref().sync_all()?;
            Ok(hex::encode(hasher.finalize()))
        });
        let mut stream = body.into_data_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            if sender.send(chunk).await.is_err() {
                break;
            }
        }
        drop(sender);
        let digest = writer.await.ok().and_then(Result::ok).unwrap_or_default();
        std::fs::remove_file(&path).ok();
        (axum::http::StatusCode::CREATED, digest)
    }
}
