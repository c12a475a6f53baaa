//! The bar of step 2: `xif verify` on an unchanged, already compiled project takes under 0.3 s
//! end to end. Runs the real `xif` binary on a project made by `xif new`, compiled once
//! beforehand, and reports the median, minimum and maximum of several runs.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::path::Path;
use std::time::Duration;

const RUNS: usize = 15;

fn xif(arguments: &[&str], directory: &Path, target: &Path) -> Duration {
    xif_testkit::xif(env!("CARGO_BIN_EXE_xif"), arguments, directory, target)
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/extensions");
    let temporary = tempfile::tempdir().expect("temporary directory");
    xif(&["new", "BenchGreeter"], temporary.path(), &target);
    let project = temporary.path().join("BenchGreeter");
    let first = xif(&["verify"], &project, &target);
    let mut runs: Vec<Duration> = (0..RUNS).map(|_| xif(&["verify"], &project, &target)).collect();
    runs.sort_unstable();
    let median = runs[RUNS / 2];
    println!("xif verify of a project made by `xif new` ({RUNS} runs after a first build of {first:.2?})");
    println!("unchanged, compiled: median {median:.1?}, min {:.1?}, max {:.1?}", runs[0], runs[RUNS - 1]);
    let milliseconds: Vec<f64> = runs.iter().map(|run| run.as_secs_f64() * 1000.0).collect();
    xif_testkit::Figure::new(
        "`xif verify`, unchanged and compiled project",
        "ms",
        &milliseconds,
        "under 300 ms",
        |median| median < 300.0,
    )
    .report();
    let met = median < Duration::from_millis(300);
    println!("bar: under 300 ms -> {}", if met { "met" } else { "NOT met" });
}
