//! A farm for tests and benchmarks: nodes of `xif server` on one PostgreSQL database and one
//! moto bucket, each on a fixed port (so that it restarts where the balancer looks for it), with
//! the data directory it keeps across a kill.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::KillOnDrop;

/// One node.
pub struct Node {
    /// The process, while it runs.
    pub process: Option<KillOnDrop>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub data: PathBuf,
}

impl Node {
    /// Where it listens, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its name in the farm, `node-PORT`.
    pub fn name(&self) -> String {
        format!("node-{}", self.port)
    }

    /// Kills it with SIGKILL (nothing is cleaned up) and reaps it.
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("the node runs");
        process.0.kill().expect("killed");
        process.0.wait().expect("reaped");
    }
}

/// How the nodes of a farm start.
#[derive(Clone)]
pub struct Setup {
    /// The `xif` binary.
    pub binary: String,
    /// `--database`.
    pub database: String,
    /// `--blobs`.
    pub blobs: String,
    /// The administrator's password.
    pub password: String,
    /// More arguments for `xif server`.
    pub extra: Vec<String>,
    /// Environment variables for it (such as the object store's credentials).
    pub env: Vec<(String, String)>,
}

impl Setup {
    /// Starts a node on `port` with its data in `data`, named `node-PORT`, and waits until it
    /// listens (it converged to the published state by then); panics with its error otherwise.
    pub fn start(&self, data: &Path, port: u16) -> Node {
        let mut command = self.command(data, port);
        command.env("XIF_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the server starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let process = KillOnDrop(child);
        let mut said = Vec::new();
        loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("the node on port {port} stopped before it listened: {}", said.join("\n"))
            };
            if line.starts_with("listening on ") {
                break;
            }
            said.push(line);
        }
        // Its log goes on being read, so that the pipe never fills.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Node { process: Some(process), port, data: data.to_owned() }
    }

    /// The command that starts a node on `port` with its data in `data`, named `node-PORT`
    /// (without `--blobs` when [`Setup::blobs`] is empty: archives in its data directory).
    pub fn command(&self, data: &Path, port: u16) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
            .args(["--database", &self.database])
            .args(["--node-name", &format!("node-{port}")])
            // haproxy (on loopback) says whom it forwards for: logins are throttled per client.
            .args(["--trusted-proxy", "127.0.0.1/32"])
            .args(&self.extra)
            .env("XIF_ADMIN_PASSWORD", &self.password)
            .stdin(Stdio::null());
        if !self.blobs.is_empty() {
            command.args(["--blobs", &self.blobs]);
        }
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Starts it again where it was, on its data.
    pub fn restart(&self, node: &mut Node) {
        assert!(node.process.is_none(), "the node runs already");
        *node = self.start(&node.data.clone(), node.port);
    }

    /// Starts `count` nodes, one after the other (the first makes the schema and the
    /// administrator), with data directories under `directory`.
    pub fn nodes(&self, directory: &Path, count: usize) -> Vec<Node> {
        (0..count)
            .map(|index| self.start(&directory.join(format!("node{index}")), crate::haproxy::free_port()))
            .collect()
    }
}
