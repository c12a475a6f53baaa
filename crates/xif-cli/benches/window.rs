//! The bars of step 7, with the real `xif` in a real terminal (tmux) against a real server:
//! - the window redraws at least 30 times a second during a run (frames counted by the window
//!   itself, `XIF_WINDOW_STATS`), and takes at most 5% of a core while idle (`/proc` CPU time
//!   over 5 s);
//! - a 1-Click Publish after a one-line change through the window takes at most 5% longer than
//!   the same with `--plain`, both in tmux, side by side, alternating.
#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 6;

struct Tmux(String, std::cell::Cell<usize>);

impl Tmux {
    fn run(&self, arguments: &[&str]) -> String {
        let output = Command::new("tmux").arg("-L").arg(&self.0).args(arguments).output().expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `command` in a new 100×30 session and waits until it has ended; returns how long.
    fn timed(&self, command: &str) -> Duration {
        // A session and a channel of its own for each run: the last one may still be closing.
        let run = self.1.get() + 1;
        self.1.set(run);
        let started = Instant::now();
        let script = format!("{command}; tmux -L {} wait-for -S finished-{run}", self.0);
        let session = format!("bench-{run}");
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(["new-session", "-d", "-s", &session, "-x", "100", "-y", "30", &script])
            .output()
            .expect("tmux runs");
        assert!(output.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&output.stderr));
        self.run(&["wait-for", &format!("finished-{run}")]);
        started.elapsed()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

fn median(runs: &mut [f64]) -> (f64, f64, f64) {
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], runs[0], runs[runs.len() - 1])
}

/// User and system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 2..].split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let temporary = tempfile::tempdir().expect("temporary directory");
    let root = temporary.path();
    let target = xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("config");
    let server = xif_testkit::Server::for_benchmark(env!("CARGO_BIN_EXE_xif"), &root.join("data"));
    let xif = env!("CARGO_BIN_EXE_xif");
    let mut login = Command::new(xif)
        .args(["--quiet", "login", &server.url, "--user", "admin", "--password-stdin"])
        .env("XIF_CONFIG_DIR", &config)
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
    xif_testkit::xif(xif, &["new", "BenchWindow"], root, &target);
    let project = root.join("BenchWindow");
    let stats = root.join("stats.json");
    let environment = format!(
        "env XIF_CONFIG_DIR='{}' CARGO_TARGET_DIR='{}' XIF_WINDOW_STATS='{}'",
        config.display(),
        target.display(),
        stats.display()
    );
    let log = root.join("stderr.log");
    let publish = |mode: &str| {
        format!("{environment} '{xif}' publish {mode} --path '{}' 2>>'{}'", project.display(), log.display())
    };
    let tmux = Tmux(format!("xif-bench-{}", std::process::id()), std::cell::Cell::new(0));
    // A session that outlives the runs, so the tmux server does not exit between them.
    tmux.run(&["new-session", "-d", "-s", "keep", "sleep 3600"]);
    tmux.timed(&publish("--plain"));

    let main_rs = project.join("src/main.rs");
    let change = |round: usize, by: &str| xif_testkit::one_line_change(&main_rs, round, by);
    let (mut plain, mut window, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        change(round, "plain");
        plain.push(tmux.timed(&publish("--plain")).as_secs_f64());
        change(round, "window");
        std::fs::remove_file(&stats).ok();
        window.push(tmux.timed(&publish("--window --close-when-done")).as_secs_f64());
        let figures: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap_or_else(|error| {
                panic!(
                    "the window wrote no stats ({error}); its stderr: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }))
            .expect("JSON");
        let frames = figures["frames_while_running"].as_f64().unwrap_or_default();
        let seconds = figures["seconds_running"].as_f64().unwrap_or_default();
        rates.push(frames / seconds.max(1e-3));
    }
    let (plain_baseline, _, _) = xif_testkit::spread(&plain);
    xif_testkit::Figure::new(
        "1-Click Publish after a one-line change in the window (baseline: the same with --plain), in tmux",
        "s",
        &window,
        "at most 1.05× the baseline",
        |median| median <= plain_baseline * 1.05,
    )
    .against(plain_baseline)
    .report();
    let (plain_median, plain_min, plain_max) = median(&mut plain);
    let (window_median, window_min, window_max) = median(&mut window);
    let (rate_median, rate_min, rate_max) = median(&mut rates);

    // Idle: the window open after a run, doing nothing, for 5 s.
    tmux.run(&["new-session", "-d", "-s", "idle", "-x", "100", "-y", "30", &publish("--window")]);
    let started = Instant::now();
    while !tmux.run(&["capture-pane", "-p", "-t", "idle"]).contains("DONE") {
        assert!(started.elapsed() < Duration::from_secs(120), "the window never finished its run");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pane_pid = tmux.run(&["list-panes", "-t", "idle", "-F", "#{pane_pid}"]).trim().to_owned();
    let children = Command::new("pgrep").args(["-P", &pane_pid]).output().expect("pgrep runs");
    let pid = String::from_utf8_lossy(&children.stdout).lines().next().map_or(pane_pid.clone(), str::to_owned);
    let pid = if Path::new(&format!("/proc/{pid}/exe")).exists() { pid } else { pane_pid };
    std::thread::sleep(Duration::from_millis(500));
    // Three stretches of 2 s; Linux counts CPU time in ticks of 1/100 s (`getconf CLK_TCK`).
    let idle_seconds = 2.0;
    let idle_runs: Vec<f64> = (0..3)
        .map(|_| {
            let before = cpu_ticks(&pid);
            std::thread::sleep(Duration::from_secs_f64(idle_seconds));
            #[expect(clippy::cast_precision_loss, reason = "a percentage")]
            let percent = (cpu_ticks(&pid) - before) as f64 / 100.0 / idle_seconds * 100.0;
            percent
        })
        .collect();
    tmux.run(&["send-keys", "-t", "idle", "q"]);
    let (idle, _, _) = xif_testkit::spread(&idle_runs);
    xif_testkit::Figure::new(
        "the window's redraws while a run is under way",
        "frames/s",
        &rates,
        "at least 30 per second",
        |median| median >= 30.0,
    )
    .report();
    xif_testkit::Figure::new(
        "the window's CPU while idle after a run",
        "% of a core",
        &idle_runs,
        "at most 5%",
        |median| median <= 5.0,
    )
    .report();

    println!("the window, in tmux 100×30, against a real server (sample from `xif new`)");
    println!(
        "redraws while a run is under way: median {rate_median:.1}/s (min {rate_min:.1}, max {rate_max:.1}) -> bar: at least 30/s -> {}",
        if rate_median >= 30.0 { "met" } else { "NOT met" }
    );
    println!(
        "idle, 3 × {idle_seconds:.0} s after a run: {idle:.2}% of a core -> bar: at most 5% -> {}",
        if idle <= 5.0 { "met" } else { "NOT met" }
    );
    println!("publish after a one-line change ({ROUNDS} rounds, alternating):");
    println!("  --plain : median {plain_median:.3} s (min {plain_min:.3}, max {plain_max:.3})");
    println!("  window  : median {window_median:.3} s (min {window_min:.3}, max {window_max:.3})");
    let ratio = window_median / plain_median;
    println!("  window / plain: {ratio:.3} -> bar: at most 1.05 -> {}", if ratio <= 1.05 { "met" } else { "NOT met" });
    drop(server);
}
