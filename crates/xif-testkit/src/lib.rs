//! What xif's benchmarks and end-to-end tests share: running the real `xif` binary quietly,
//! starting a real `xif server` and learning where it listens, killing it however the benchmark
//! ends, packing a prebuilt extension into a XIF, finding the Python test tools, and writing
//! incompressible data. A library of its own (used only as a dev-dependency), so that each uses
//! what it needs without copies.

pub mod farm;
pub mod haproxy;
pub mod mariadb;
pub mod postgres;
pub mod s3;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's shared target directory for extensions built by tests and benchmarks.
pub fn extensions_target(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../../target/extensions")
}

/// Runs `xif --quiet ARGUMENTS` in `directory`, building extensions into `target`; panics
/// with xif's stderr when it fails. Returns how long it took.
pub fn xif(binary: &str, arguments: &[&str], directory: &Path, target: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(binary)
        .arg("--quiet")
        .args(arguments)
        .current_dir(directory)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("xif runs");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "xif {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    elapsed
}

/// The Python test tool `name` (`schemathesis`, `openapi-spec-validator`), from the virtual
/// environment that `scripts/install-test-tools` makes at `$XIF_TEST_TOOLS` (by default
/// `/opt/xif-test-tools`); panics saying how to install it when it is not there.
pub fn python_tool(name: &str) -> PathBuf {
    let root = std::env::var_os("XIF_TEST_TOOLS").map_or_else(|| PathBuf::from("/opt/xif-test-tools"), PathBuf::from);
    let tool = root.join("bin").join(name);
    assert!(tool.is_file(), "`{}` is missing: run `scripts/install-test-tools` (as root)", tool.display());
    tool
}

/// Archives of the sample project that `xif new NAME` writes in `directory`, one for each of
/// `versions` (its definition's version set to it), saved by the real `xif save`, with
/// extensions built into `target`.
pub fn sample_archives(binary: &str, name: &str, versions: &[&str], directory: &Path, target: &Path) -> Vec<Vec<u8>> {
    xif(binary, &["new", name], directory, target);
    let project = directory.join(name);
    let definition = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    versions
        .iter()
        .map(|version| {
            std::fs::write(
                project.join("extension.toml"),
                definition.replace("version = \"0.1.0\"", &format!("version = \"{version}\"")),
            )
            .expect("written");
            let archive = directory.join(format!("{version}.xif"));
            xif(binary, &["save", "-o", archive.to_str().expect("path")], &project, target);
            std::fs::read(archive).expect("archive")
        })
        .collect()
}

/// A child process killed when dropped, however the benchmark ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// The administrator password of [`Server::for_benchmark`].
pub const BENCHMARK_PASSWORD: &str = "benchmark-password";

/// A running `xif server`.
pub struct Server {
    /// The process.
    pub process: KillOnDrop,
    /// Where it listens, such as `http://127.0.0.1:40123`.
    pub url: String,
}

impl Server {
    /// Stops the server as an operator would, with SIGTERM, and waits until it has exited: a
    /// node of a farm then leaves the farm's list of nodes rather than being seen alive for a
    /// few seconds more, as a killed one is.
    pub fn stop(mut self) {
        let pid = self.process.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM was not sent to the server {pid}");
        self.process.0.wait().expect("the server exits");
    }

    /// Starts `xif server` on a free port with its data in `data`, the administrator password
    /// `password`, logs at `log_level`, and `extra` arguments (with `XIF_TEST_DATABASE=postgres`,
    /// a PostgreSQL database of its own in `XIF_DATABASE`: see [`postgres::test_database`]);
    /// every line of its stderr after the one that says where it listens goes to `on_line`.
    pub fn start(
        binary: &str,
        data: &Path,
        password: &str,
        log_level: &str,
        extra: &[&str],
        on_line: impl FnMut(String) + Send + 'static,
    ) -> Self {
        Self::start_with(Command::new(binary), data, password, log_level, extra, on_line)
    }

    /// The same, with `command` standing for the `xif` binary: such as `prlimit --nofile=256
    /// -- xif`, which runs the server with fewer open files allowed.
    pub fn start_with(
        mut command: Command,
        data: &Path,
        password: &str,
        log_level: &str,
        extra: &[&str],
        mut on_line: impl FnMut(String) + Send + 'static,
    ) -> Self {
        command.args(["server", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data);
        // The suites run on PostgreSQL too (see `postgres::test_database`), unless the test
        // chose a database itself (`--database` wins over the variable). In the environment, as
        // operators are told to, rather than on the command line that every process can read.
        if let Some(database) = postgres::test_database(data) {
            command.env("XIF_DATABASE", database);
            // A node on a shared database keeps database connections' passwords only under a
            // key given to it (`--secrets-key`, as every node of a farm).
            command.env("XIF_SECRETS_KEY", postgres::secrets_key());
        }
        s3::configure(&mut command, data);
        let mut child = command
            .args(extra)
            .env("XIF_ADMIN_PASSWORD", password)
            .env("XIF_LOG", log_level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let process = KillOnDrop(child);
        let url = loop {
            let line = lines.next().expect("the server says where it listens").expect("a line");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.to_owned();
            }
        };
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(&mut on_line));
        Self { process, url }
    }

    /// `xif server` for a benchmark: a free port, data in `data`, the administrator password
    /// [`BENCHMARK_PASSWORD`], warnings only, its log dropped.
    pub fn for_benchmark(binary: &str, data: &Path) -> Self {
        Self::start(binary, data, BENCHMARK_PASSWORD, "warn", &[], drop)
    }

    /// A new API token of `user`, by logging in with curl.
    pub fn token(&self, user: &str, password: &str) -> String {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        let output = Command::new("curl")
            .args(["-sS", "-X", "POST", "-H", "content-type: application/json", "-d", &body])
            .arg(format!("{}/api/v1/login", self.url))
            .output()
            .expect("curl runs (apt-get install curl)");
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("the login answered: {}", String::from_utf8_lossy(&output.stdout)));
        answer["token"].as_str().unwrap_or_else(|| panic!("no token in {answer}")).to_owned()
    }

    /// The server's process id.
    pub fn id(&self) -> u32 {
        self.process.0.id()
    }

    /// The server's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_memory_mib(&self) -> f64 {
        peak_memory_mib(self.id())
    }
}

/// The peak resident memory (VmHWM) of process `pid` so far, in MiB.
pub fn peak_memory_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kib / 1024.0
}

/// Writes `bytes` (a multiple of 1 MiB) of xorshift output to `path`, 1 MiB at a time, so that
/// the writer stays small and the data does not compress.
pub fn incompressible(path: &Path, bytes: u64, seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("created"));
    let mut state = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..bytes >> 20 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).expect("written");
    }
    file.flush().expect("flushed");
}

/// A XIF of extension `name` `version` holding `definition` and `binary` (as `binary/run`),
/// written by xif-archive: for publishing a prebuilt fixture without `xif save`.
pub fn pack(name: &str, version: &str, definition: &str, binary: &Path) -> Vec<u8> {
    let directory = tempfile::tempdir().expect("temporary directory");
    let definition_file = directory.path().join("extension.toml");
    std::fs::write(&definition_file, definition).expect("written");
    let inputs = vec![
        xif_archive::Input {
            path: "extension.toml".into(),
            file: definition_file,
            kind: xif_archive::EntryKind::Definition,
        },
        xif_archive::Input { path: "binary/run".into(), file: binary.to_owned(), kind: xif_archive::EntryKind::Binary },
    ];
    let header = xif_archive::ManifestHeader {
        extension: xif_archive::ExtensionId { name: name.into(), version: version.into() },
        target: "x86_64-unknown-linux-gnu".into(),
        toolchain: "rustc".into(),
        protocol: 1,
    };
    let output = directory.path().join("out.xif");
    xif_archive::write(&output, inputs, header).expect("the archive is written");
    std::fs::read(output).expect("read")
}

/// Makes a one-line change to the `src/main.rs` of a project from `xif new`: its greeting
/// becomes `Hello{by}{round}`, different for each round and each side of a comparison.
pub fn one_line_change(main_rs: &Path, round: usize, by: &str) {
    let text = std::fs::read_to_string(main_rs).expect("main.rs");
    let start = text.find("Hello").expect("the greeting");
    let end = start + text[start..].find(',').expect("a comma after the greeting");
    std::fs::write(main_rs, format!("{}Hello{by}{round}{}", &text[..start], &text[end..])).expect("written");
}

/// One measured figure of a speed bar, as the benchmark runner (`bench/run`) collects them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Figure {
    /// What was measured.
    pub what: String,
    /// The unit of `median`, `min` and `max` (`ms`, `MB/s`, `%`, ...).
    pub unit: String,
    /// The median of the runs.
    pub median: f64,
    /// The smallest run.
    pub min: f64,
    /// The largest run.
    pub max: f64,
    /// How many runs.
    pub runs: usize,
    /// The baseline measured in the same run, in the same unit, when the bar has one.
    pub baseline: Option<f64>,
    /// The bar, in words (`under 50 ms`, `at least 50% of the baseline`).
    pub bar: String,
    /// Whether the bar is met.
    pub met: bool,
}

/// The median, minimum and maximum of `runs` (not empty).
pub fn spread(runs: &[f64]) -> (f64, f64, f64) {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[sorted.len() / 2], sorted[0], sorted[sorted.len() - 1])
}

impl Figure {
    /// A figure from `runs`, in `unit`, against `bar`.
    pub fn new(what: &str, unit: &str, runs: &[f64], bar: &str, met: impl FnOnce(f64) -> bool) -> Self {
        let (median, min, max) = spread(runs);
        Self {
            what: what.into(),
            unit: unit.into(),
            median,
            min,
            max,
            runs: runs.len(),
            baseline: None,
            bar: bar.into(),
            met: met(median),
        }
    }

    /// The same with the baseline's median.
    pub fn against(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Appends the figure as one JSON line to the file named by `XIF_BENCH_RESULTS`, when the
    /// runner set it; does nothing otherwise.
    pub fn report(&self) {
        let Some(path) = std::env::var_os("XIF_BENCH_RESULTS") else { return };
        let mut line = serde_json::to_string(self).expect("a figure is JSON");
        line.push('\n');
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the results file opens");
        file.write_all(line.as_bytes()).expect("the result is written");
    }
}
