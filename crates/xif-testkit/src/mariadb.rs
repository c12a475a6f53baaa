//! Throwaway MariaDB servers for tests: Debian's `mariadb-install-db` and `mariadbd`, run as the
//! `mysql` user when the tests run as root (as [`crate::postgres`] runs PostgreSQL as
//! `postgres`), with the data, socket and log in a temporary directory, listening on a free port
//! of 127.0.0.1.
//!
//! [`shared`] is one server per test process, started on first use. Every [`Server`] has a
//! watchdog process that kills it and removes its directory when a pipe closes: when the
//! [`Server`] is dropped, or when the test process exits however it ends (the pipe's end is
//! never inherited, so only this process holds it). [`Server::database`] makes a database with a
//! user of its own, whose password is in the URL it returns; [`Server::sql_in`] runs SQL with the
//! `mariadb` client as the server's `root`, to set up tables and check rows.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The password of the users [`Server::database`] makes, in the URLs it gives.
pub const PASSWORD: &str = "xif-test-secret";

/// How long a server may take to start or stop before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// A MariaDB server of a test; killed, and its directory removed, when dropped.
pub struct Server {
    directory: tempfile::TempDir,
    port: u16,
    process: Mutex<Option<Child>>,
    databases: AtomicU32,
    /// The watchdog's input: closing it (drop) makes the watchdog kill the server.
    _watchdog: (Child, ChildStdin),
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// A Debian program of MariaDB, or a panic saying how to install it.
fn program(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|directory| Path::new(directory).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("MariaDB's `{name}` is not installed: run `scripts/install-test-tools` (as root)"))
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

/// The error logs (`*.err`) of a data directory, for a failure's message.
fn server_log(data: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(data) else { return "(no data directory)".into() };
    let mut log = String::new();
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|extension| extension == "err") {
            log.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    if log.is_empty() { "(none)".into() } else { log }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

impl Server {
    /// Makes and starts a server; panics saying what failed.
    pub fn new() -> Self {
        let directory = tempfile::Builder::new().prefix("xif-mariadb-").tempdir().expect("a temporary directory");
        let root = running_as_root();
        if root {
            let mut chown = Command::new("chown");
            chown.arg("mysql:").arg(directory.path());
            run(chown, "chown of the server's directory");
        }
        let mut install = Command::new(program("mariadb-install-db"));
        install.arg("--no-defaults").arg(format!("--datadir={}", directory.path().join("data").display())).args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]);
        if root {
            install.arg("--user=mysql");
        }
        let output = install.stdin(Stdio::null()).output().expect("mariadb-install-db runs");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}; its server's log: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            server_log(&directory.path().join("data"))
        );
        let watchdog = {
            // The pid file names the running server, whichever start it is.
            let script = format!(
                "read -r _; kill -9 \"$(cat '{pid}' 2>/dev/null)\" >/dev/null 2>&1; rm -rf '{directory}'",
                pid = directory.path().join("pid").display(),
                directory = directory.path().display()
            );
            let mut child = Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the server's watchdog starts");
            let input = child.stdin.take().expect("the watchdog's input");
            (child, input)
        };
        let server = Self {
            directory,
            port: free_port(),
            process: Mutex::new(None),
            databases: AtomicU32::new(0),
            _watchdog: watchdog,
        };
        server.start();
        server
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn socket(&self) -> PathBuf {
        self.directory.path().join("socket")
    }

    /// Starts it, waiting until it answers a ping.
    pub fn start(&self) {
        let mut process = self.process.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(process.is_none(), "the MariaDB server is already running");
        let path = self.directory.path();
        let mut command = Command::new(program("mariadbd"));
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", path.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", path.join("pid").display()))
            .arg(format!("--log-error={}", path.join("log").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin", "--max-connections=400"])
            // Durability is not what the tests check: the server goes at their end.
            .args([
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
            ]);
        if running_as_root() {
            command.arg("--user=mysql");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("mariadbd does not start: {error}"));
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mariadbd exited ({status}) while starting: {}", self.log());
            }
            if self.admin().arg("ping").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
            {
                break;
            }
            if started.elapsed() > DEADLINE {
                child.kill().ok();
                panic!("MariaDB did not answer within {DEADLINE:?}: {}", self.log());
            }
            // The readiness event is the ping's answer: poll it, briefly apart.
            std::thread::sleep(Duration::from_millis(50));
        }
        *process = Some(child);
    }

    /// Stops it (connections are cut), waiting until the process has exited.
    pub fn stop(&self) {
        let mut process = self.process.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut child = process.take().expect("the MariaDB server is running");
        run(self.admin_command("shutdown"), "mariadb-admin shutdown");
        let started = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > DEADLINE {
                child.kill().ok();
                panic!("MariaDB did not stop within {DEADLINE:?}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it and starts it again.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("log")).unwrap_or_default()
    }

    fn admin(&self) -> Command {
        let mut command = Command::new(program("mariadb-admin"));
        command
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--connect-timeout=2"]);
        command
    }

    fn admin_command(&self, what: &str) -> Command {
        let mut command = self.admin();
        command.arg(what);
        command
    }

    /// The `mariadb` client as the server's `root`, on its socket, printing tab-separated rows
    /// without headers.
    pub fn client(&self) -> Command {
        let mut command = Command::new(program("mariadb"));
        command.arg("--no-defaults").arg(format!("--socket={}", self.socket().display())).args(["-uroot", "-N", "-B"]);
        command
    }

    /// The URL of `database` as user `user` (whose password is [`PASSWORD`]).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("mysql://{user}:{PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    /// Makes a new, empty database and a user of the same name who may do anything in it (and
    /// nothing else), and returns its URL, with the user's password.
    pub fn database(&self) -> String {
        let name = format!("xif_{}_{}", std::process::id(), self.databases.fetch_add(1, Ordering::Relaxed));
        self.sql(&format!(
            "CREATE DATABASE {name}; CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'%';"
        ));
        self.url(&name, &name)
    }

    /// Runs `statements` in the database of `url` (as [`Server::database`] made it) as `root`,
    /// and returns what the client printed (tab-separated, no headers).
    pub fn sql_in(&self, url: &str, statements: &str) -> String {
        let name = url.rsplit('/').next().unwrap_or_default();
        let name = name.split('?').next().unwrap_or_default();
        let mut client = self.client();
        client.args(["-D", name, "-e", statements]);
        String::from_utf8_lossy(&run(client, statements).stdout).into_owned()
    }

    /// Runs `statements` as `root` in no database, and returns what the client printed.
    pub fn sql(&self, statements: &str) -> String {
        let mut client = self.client();
        client.args(["-e", statements]);
        String::from_utf8_lossy(&run(client, statements).stdout).into_owned()
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let process = self.process.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut child) = process.take() {
            // Killed, not shut down: its data goes with the directory. A kill that fails
            // means it has already exited; waiting reaps it either way.
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The server shared by the tests of this process, started on first use and killed when the
/// process exits.
pub fn shared() -> &'static Server {
    static SHARED: OnceLock<Server> = OnceLock::new();
    SHARED.get_or_init(Server::new)
}
