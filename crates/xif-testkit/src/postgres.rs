//! Throwaway PostgreSQL clusters for tests: Debian's `initdb` and `pg_ctl`, run as the
//! `postgres` user when the tests run as root (`initdb` refuses root), with the data and socket
//! in a temporary directory, listening on a free port of 127.0.0.1 with password
//! authentication.
//!
//! [`shared`] is one cluster per test process, started on first use and stopped when the process
//! exits (by a watchdog process that waits on a pipe which only the exit of the test process
//! closes, however it ends). [`Cluster::new`] makes one of a test's own, to stop and restart under
//! a server, stopped when dropped.
//!
//! With `XIF_TEST_DATABASE=postgres`, [`test_database`] gives each data directory its own
//! database of the shared cluster: [`crate::Server::start`] and the router suite pass it to the
//! server, so that the same suites run on PostgreSQL.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The password of the clusters' superuser `postgres`, in the URLs [`Cluster::database`] gives.
pub const PASSWORD: &str = "xif-test-secret";

/// A PostgreSQL cluster of a test.
pub struct Cluster {
    directory: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    databases: AtomicU32,
}

/// The directory of PostgreSQL's server programs: `$XIF_PG_BIN`, or the newest
/// `/usr/lib/postgresql/VERSION/bin` (Debian's layout).
fn bin_directory() -> PathBuf {
    if let Some(bin) = std::env::var_os("XIF_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .filter(|(_, bin)| bin.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `scripts/install-test-tools`")
    })
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// `program` with `arguments`, as the `postgres` user when running as root.
fn command(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

impl Cluster {
    /// Makes and starts a cluster; panics saying what failed.
    pub fn new() -> Self {
        let bin = bin_directory();
        let directory = tempfile::Builder::new().prefix("xif-postgres-").tempdir().expect("a temporary directory");
        if running_as_root() {
            run(
                {
                    let mut chown = Command::new("chown");
                    chown.arg("postgres:").arg(directory.path());
                    chown
                },
                "chown of the cluster's directory",
            );
        }
        let password_file = directory.path().join("password");
        std::fs::write(&password_file, PASSWORD).expect("the password file is written");
        let mut initdb = command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(directory.path().join("data"))
            .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", password_file.display()));
        run(initdb, "initdb");
        let cluster = Self { directory, bin, port: free_port(), databases: AtomicU32::new(0) };
        // Durability is not what the tests check: the cluster goes at their end.
        let settings = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 400\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            cluster.port,
            cluster.directory.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.data().join("postgresql.conf"))
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .expect("postgresql.conf is written");
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    fn pg_ctl(&self, arguments: &[&str]) -> Command {
        let mut command = command(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.data()).args(arguments);
        command
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts it, waiting until it accepts connections.
    pub fn start(&self) {
        let log = self.directory.path().join("log");
        let mut start = self.pg_ctl(&["-w", "-t", "60", "-l"]);
        start.arg(log).arg("start");
        // pg_ctl's postmaster keeps the output open: none is captured, or waiting for it hangs.
        let status = start.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(self.directory.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops it (fast: connections are closed), waiting until it has.
    pub fn stop(&self) {
        run(self.pg_ctl(&["-w", "-m", "fast", "stop"]), "pg_ctl stop");
    }

    /// Stops it and starts it again.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// The URL of `database`, with the password.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    /// Makes a new, empty database and returns its URL.
    pub fn database(&self) -> String {
        let name = format!("xif_{}_{}", std::process::id(), self.databases.fetch_add(1, Ordering::Relaxed));
        let mut psql = command(&self.bin.join("psql"));
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-h"])
            .arg(self.directory.path())
            .args(["-p", &self.port.to_string(), "-c", &format!("CREATE DATABASE {name}")]);
        run(psql, "CREATE DATABASE");
        self.url(&name)
    }

    /// Runs `statement` in the database of `url` (as [`Cluster::database`] made it) as the
    /// superuser, and returns what psql printed (unaligned, tuples only).
    pub fn sql_in(&self, url: &str, statement: &str) -> String {
        let name = url.rsplit('/').next().unwrap_or_default();
        let name = name.split('?').next().unwrap_or_default();
        let mut psql = command(&self.bin.join("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", name, "-h"])
            .arg(self.directory.path())
            .args(["-p", &self.port.to_string(), "-c", statement]);
        String::from_utf8_lossy(&run(psql, statement).stdout).into_owned()
    }

    /// Runs `statement` in the database `postgres` (to act on another database, such as
    /// `ALTER DATABASE`, or on the cluster's connections) and returns what it printed, unaligned.
    pub fn sql(&self, statement: &str) -> String {
        let mut psql = command(&self.bin.join("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-h"])
            .arg(self.directory.path())
            .args(["-p", &self.port.to_string(), "-c", statement]);
        String::from_utf8_lossy(&run(psql, statement).stdout).into_owned()
    }

    /// A process that stops the cluster and removes its directory when the pipe on its input
    /// closes, which happens when this process exits (the pipe's end is never inherited).
    /// The process is kept (with the pipe's end) for as long as this process runs.
    fn watchdog(&self) -> std::process::Child {
        let script = format!(
            "read -r _; {} -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            command_line(&self.bin.join("pg_ctl")),
            self.data().display(),
            self.directory.path().display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cluster's watchdog starts")
    }
}

fn command_line(program: &Path) -> String {
    if running_as_root() {
        format!("runuser -u postgres -- '{}'", program.display())
    } else {
        format!("'{}'", program.display())
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl(&["-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status().ok();
    }
}

/// The cluster shared by the tests of this process, started on first use and stopped when the
/// process exits.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<(Cluster, Mutex<std::process::Child>)> = OnceLock::new();
    &SHARED
        .get_or_init(|| {
            let cluster = Cluster::new();
            let watchdog = cluster.watchdog();
            (cluster, Mutex::new(watchdog))
        })
        .0
}

/// Whether `XIF_TEST_DATABASE=postgres` asks the suites to run on PostgreSQL.
pub fn enabled() -> bool {
    std::env::var("XIF_TEST_DATABASE").is_ok_and(|value| value == "postgres")
}

/// With `XIF_TEST_DATABASE=postgres`, the URL of the database of the server whose data directory
/// is `data`: a new database of the [`shared`] cluster the first time, the same one after, so
/// that a server restarted on its data finds its records. `None` otherwise (SQLite).
pub fn test_database(data: &Path) -> Option<String> {
    if !enabled() {
        return None;
    }
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let databases = DATABASES.get_or_init(Mutex::default);
    let key = std::path::absolute(data).unwrap_or_else(|_| data.to_owned());
    let mut databases = databases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Some(databases.entry(key).or_insert_with(|| shared().database()).clone())
}

/// A secrets key file (`xif server --secrets-key`) for every server the suites start on
/// PostgreSQL: one key for the whole test process, so that a restarted server reads what it
/// stored. A file of its own in the temporary directory, left there (it guards no real secret).
pub fn secrets_key() -> PathBuf {
    static KEY: OnceLock<tempfile::TempDir> = OnceLock::new();
    let directory = KEY.get_or_init(|| {
        let directory = tempfile::Builder::new().prefix("xif-secrets-").tempdir().expect("a temporary directory");
        std::fs::write(directory.path().join("secrets.key"), "ab".repeat(32)).expect("the key is written");
        directory
    });
    directory.path().join("secrets.key")
}
