//! The bars of step 6, with the real `xif` binary and a real `xif server`:
//! - `xif publish` of an unchanged extension takes under 0.3 s end to end and uploads nothing;
//! - `xif publish` after a one-line change takes at most the time of `cargo build --release`
//!   for the same kind of change plus 0.25 s, measured side by side in one run.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNCHANGED_RUNS: usize = 11;
const CHANGED_RUNS: usize = 5;

fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let output = command.output().expect("runs");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    elapsed
}

fn figures(runs: &mut [Duration]) -> (Duration, Duration, Duration) {
    runs.sort_unstable();
    (runs[runs.len() / 2], runs[0], runs[runs.len() - 1])
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let config = temporary.path().join("config");
    let server = xif_testkit::Server::for_benchmark(env!("CARGO_BIN_EXE_xif"), &temporary.path().join("data"));
    let xif = |arguments: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xif"));
        command
            .arg("--quiet")
            .args(arguments)
            .current_dir(temporary.path())
            .env("XIF_CONFIG_DIR", &config)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("XIF_SERVER")
            .env_remove("XIF_TOKEN");
        command
    };
    let mut login = xif(&["login", &server.url, "--user", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("xif login runs");
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", xif_testkit::BENCHMARK_PASSWORD).as_bytes())
        .expect("written");
    assert!(login.wait().expect("finished").success());
    timed(&mut xif(&["new", "BenchPublish"]));
    let project = temporary.path().join("BenchPublish");
    let path = project.to_str().expect("path");
    let first = timed(&mut xif(&["publish", "--path", path]));

    let versions = || {
        let output = xif(&["versions", "--path", path, "--json"]).output().expect("xif versions runs");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON").as_array().map_or(0, Vec::len)
    };
    let before = versions();
    let mut unchanged: Vec<Duration> =
        (0..UNCHANGED_RUNS).map(|_| timed(&mut xif(&["publish", "--path", path]))).collect();
    assert_eq!(versions(), before, "an unchanged extension uploads nothing");
    let milliseconds = |runs: &[Duration]| -> Vec<f64> { runs.iter().map(|run| run.as_secs_f64() * 1000.0).collect() };
    xif_testkit::Figure::new(
        "1-Click Publish of an unchanged extension, end to end, nothing uploaded",
        "ms",
        &milliseconds(&unchanged),
        "under 300 ms",
        |median| median < 300.0,
    )
    .report();
    let (median, min, max) = figures(&mut unchanged);
    println!("xif publish of the sample from `xif new` (first publish, with its build: {first:.2?})");
    println!("unchanged ({UNCHANGED_RUNS} runs): median {median:.1?}, min {min:.1?}, max {max:.1?}; nothing uploaded");
    println!("bar: under 300 ms -> {}", if median < Duration::from_millis(300) { "met" } else { "NOT met" });

    // Side by side: a one-line change built by cargo alone, then another built by xif publish.
    let main_rs = project.join("src/main.rs");
    let change = |round: usize, by: &str| xif_testkit::one_line_change(&main_rs, round, by);
    let mut cargo_runs = Vec::new();
    let mut publish_runs = Vec::new();
    for round in 0..CHANGED_RUNS {
        change(round, "cargo");
        cargo_runs.push(timed(
            Command::new("cargo")
                .args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(project.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target),
        ));
        change(round, "xif");
        publish_runs.push(timed(&mut xif(&["publish", "--path", path])));
    }
    assert_eq!(versions(), before + CHANGED_RUNS, "each change was published as a version");
    let (cargo_baseline, _, _) = xif_testkit::spread(&milliseconds(&cargo_runs));
    xif_testkit::Figure::new(
        "1-Click Publish after a one-line change (baseline: `cargo build --release` of such a change)",
        "ms",
        &milliseconds(&publish_runs),
        "at most the baseline + 250 ms",
        |median| median <= cargo_baseline + 250.0,
    )
    .against(cargo_baseline)
    .report();
    let (cargo_median, cargo_min, cargo_max) = figures(&mut cargo_runs);
    let (publish_median, publish_min, publish_max) = figures(&mut publish_runs);
    println!("one-line change ({CHANGED_RUNS} rounds, side by side):");
    println!("  cargo build --release: median {cargo_median:.2?}, min {cargo_min:.2?}, max {cargo_max:.2?}");
    println!("  xif publish          : median {publish_median:.2?}, min {publish_min:.2?}, max {publish_max:.2?}");
    let overhead = publish_median.saturating_sub(cargo_median);
    println!(
        "overhead {overhead:.2?} (bar: at most 250 ms) -> {}",
        if publish_median <= cargo_median + Duration::from_millis(250) { "met" } else { "NOT met" }
    );
    drop(server);
}
