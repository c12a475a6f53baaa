//! The bars of step 3: saving a XIF with 200 MiB of incompressible resources runs at 200 MB/s
//! or more, and peak memory stays under 64 MiB for both save and inspect.
//!
//! Throughput is timed on the real `xif save`, end to end (Verify included, on a project
//! compiled beforehand). Peak memory is measured in this process, around the library calls
//! that `xif save` and `xif inspect` make, because the binary's own figure would include the
//! cargo it starts for Verify.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RESOURCE_BYTES: u64 = 200 << 20;
const RUNS: usize = 5;

fn peak_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map(|usage| usage.max_rss()).unwrap_or(0)
}

fn median(mut runs: Vec<Duration>) -> (Duration, Duration, Duration) {
    runs.sort_unstable();
    (runs[runs.len() / 2], runs[0], runs[runs.len() - 1])
}

/// Measuring mode: `--peak-memory save|inspect PROJECT ARCHIVE TARGET` runs that one library
/// call and prints this process's peak resident memory in KiB.
fn measure(arguments: &[String]) {
    let (project, archive, target) = (Path::new(&arguments[1]), Path::new(&arguments[2]), Path::new(&arguments[3]));
    if arguments[0] == "save" {
        let options = xif_project::SaveOptions {
            verify: xif_project::VerifyOptions {
                build: xif_project::BuildOptions { target_dir: Some(target.to_owned()), ..Default::default() },
                ..Default::default()
            },
            output: archive.to_owned(),
            sign: None,
        };
        let saved = xif_project::save(project, &options, &mut |_| {}).expect("saved");
        assert!(saved.manifest.is_some(), "saved");
    } else {
        let mut reader = xif_archive::XifReader::open(archive, xif_archive::Limits::default()).expect("opens");
        reader.check().expect("checks");
    }
    println!("{}", peak_rss_kib());
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.iter().any(|argument| argument == "--list") {
        return;
    }
    if let Some(position) = arguments.iter().position(|argument| argument == "--peak-memory") {
        measure(&arguments[position + 1..]);
        return;
    }
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let temporary = tempfile::tempdir().expect("temporary directory");
    let xif = |arguments: &[&str], directory: &Path| {
        xif_testkit::xif(env!("CARGO_BIN_EXE_xif"), arguments, directory, &target)
    };
    xif(&["new", "BenchSave"], temporary.path());
    let project = temporary.path().join("BenchSave");
    xif_testkit::incompressible(&project.join("resources/large.bin"), RESOURCE_BYTES, 0x9e37_79b9_7f4a_7c15);
    let mut definition = std::fs::OpenOptions::new().append(true).open(project.join("extension.toml")).expect("open");
    writeln!(definition, "\n[[resources]]\npath = \"resources/large.bin\"\ndeploy = \"binaries\"").expect("written");
    drop(definition);
    xif(&["verify"], &project);

    let archive = temporary.path().join("BenchSave.xif");
    let archive_text = archive.to_str().expect("UTF-8 path");
    let saves: Vec<Duration> = (0..RUNS).map(|_| xif(&["save", "-o", archive_text], &project)).collect();
    let saves_for_figures = saves.clone();
    let inspects: Vec<Duration> = (0..RUNS).map(|_| xif(&["inspect", archive_text], temporary.path())).collect();
    let inspects_for_figures = inspects.clone();
    let size = std::fs::metadata(&archive).expect("archive").len();

    // Peak memory of the same library calls, each in a fresh process running this benchmark
    // in measuring mode.
    let measure = |what: &str| -> i64 {
        let output = Command::new(std::env::current_exe().expect("this benchmark"))
            .args(["--peak-memory", what])
            .arg(&project)
            .arg(&archive)
            .arg(&target)
            .output()
            .expect("the benchmark runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("a figure")
    };
    let peaks = |what: &str| -> Vec<f64> { (0..3).map(|_| measure(what) as f64 / 1024.0).collect() };
    let (save_peaks, inspect_peaks) = (peaks("save"), peaks("inspect"));
    let (save_peak, inspect_peak) = (save_peaks[0] as i64 * 1024, inspect_peaks[0] as i64 * 1024);
    let megabytes_per_second: Vec<f64> =
        saves_for_figures.iter().map(|time| RESOURCE_BYTES as f64 / 1e6 / time.as_secs_f64()).collect();
    xif_testkit::Figure::new(
        "`xif save`, 200 MiB of incompressible resources, end to end",
        "MB/s",
        &megabytes_per_second,
        "at least 200 MB/s",
        |median| median >= 200.0,
    )
    .report();
    let megabytes_per_second: Vec<f64> =
        inspects_for_figures.iter().map(|time| RESOURCE_BYTES as f64 / 1e6 / time.as_secs_f64()).collect();
    xif_testkit::Figure::new(
        "`xif inspect` of that archive, end to end",
        "MB/s",
        &megabytes_per_second,
        "reported",
        |_| true,
    )
    .report();
    xif_testkit::Figure::new("peak memory of save (fresh process)", "MiB", &save_peaks, "under 64 MiB", |median| {
        median < 64.0
    })
    .report();
    xif_testkit::Figure::new(
        "peak memory of inspect (fresh process)",
        "MiB",
        &inspect_peaks,
        "under 64 MiB",
        |median| median < 64.0,
    )
    .report();

    let (save_median, save_min, save_max) = median(saves);
    let (inspect_median, inspect_min, inspect_max) = median(inspects);
    let rate = |time: Duration| RESOURCE_BYTES as f64 / 1e6 / time.as_secs_f64();
    println!(
        "XIF of {} MiB of incompressible resources, archive {} MiB, {RUNS} runs each",
        RESOURCE_BYTES >> 20,
        size >> 20
    );
    println!(
        "xif save    : median {save_median:.2?} ({:.0} MB/s), min {save_min:.2?}, max {save_max:.2?}; bar 200 MB/s -> {}",
        rate(save_median),
        if rate(save_median) >= 200.0 { "met" } else { "NOT met" }
    );
    println!(
        "xif inspect : median {inspect_median:.2?} ({:.0} MB/s), min {inspect_min:.2?}, max {inspect_max:.2?}",
        rate(inspect_median),
    );
    println!(
        "peak memory : save {:.1} MiB, inspect {:.1} MiB; bar 64 MiB -> {}",
        save_peak as f64 / 1024.0,
        inspect_peak as f64 / 1024.0,
        if save_peak.max(inspect_peak) < 64 * 1024 { "met" } else { "NOT met" }
    );
}
