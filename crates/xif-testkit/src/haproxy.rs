//! haproxy (from Debian, `scripts/install-test-tools`) in front of the nodes of a farm: one
//! frontend on a free loopback port, round robin over the nodes, each checked on `/readyz` every
//! 200 ms, so that a node that is not ready (or is gone) gets no calls.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::KillOnDrop;

/// A running haproxy.
pub struct Haproxy {
    /// The process.
    pub process: KillOnDrop,
    /// Where it listens, such as `http://127.0.0.1:40123`.
    pub url: String,
    _directory: tempfile::TempDir,
}

/// A free port on loopback (bound and let go: another process could take it meanwhile, which a
/// test then sees as a failure to start).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// haproxy's defaults for a farm, as README shows them: the client's address passed on in
/// `X-Forwarded-For` (which nodes started with `--trusted-proxy` count logins by); retried on
/// another node when a connection fails or a node closes it without answering (a node stopping),
/// never on a response timeout (the call may have run and would run twice).
pub const DEFAULTS: &str = "defaults\n    mode http\n    option forwardfor\n    timeout connect 2s\n    timeout client 60s\n    \
                            timeout server 60s\n    retries 3\n    option redispatch\n    \
                            retry-on conn-failure empty-response\n";

/// The backend's head, as README shows it: each node checked on `/readyz` every 200 ms, out at
/// the first failed check (a draining node answers 503 for 2 s), in at the first good one.
pub const BACKEND: &str = "backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n    \
                           http-check expect status 200\n    default-server inter 200ms fall 1 rise 1\n";

/// The configuration for a frontend on `port` balancing over `backends` (`http://HOST:PORT`).
pub fn config(port: u16, backends: &[&str]) -> String {
    let mut text = format!(
        "global\n    maxconn 4096\n\n{DEFAULTS}\nfrontend farm\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\n{BACKEND}"
    );
    for (index, backend) in backends.iter().enumerate() {
        let address = backend.trim_start_matches("http://").trim_end_matches('/');
        text.push_str(&format!("    server node{index} {address} check\n"));
    }
    text
}

impl Haproxy {
    /// Starts haproxy in front of `backends` and waits until it accepts connections; panics
    /// saying how to install it when it is missing.
    pub fn start(backends: &[&str]) -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let file = directory.path().join("haproxy.cfg");
        std::fs::write(&file, config(port, backends)).expect("the configuration is written");
        let child = Command::new(binary())
            .args(["-db", "-f"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts (scripts/install-test-tools installs it)");
        let process = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { process, url: format!("http://127.0.0.1:{port}"), _directory: directory }
    }
}

/// haproxy's path: Debian puts it in `/usr/sbin`, which may not be on a user's `PATH`.
fn binary() -> &'static str {
    if Path::new("/usr/sbin/haproxy").is_file() { "/usr/sbin/haproxy" } else { "haproxy" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_checks_each_node_on_readyz() {
        let text = config(8000, &["http://127.0.0.1:1", "http://127.0.0.1:2/"]);
        assert!(text.contains("bind 127.0.0.1:8000"), "{text}");
        assert!(text.contains("option httpchk GET /readyz"), "{text}");
        assert!(text.contains("server node0 127.0.0.1:1 check\n    server node1 127.0.0.1:2 check"), "{text}");
    }

    #[test]
    fn the_readme_shows_the_configuration_the_tests_use() {
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(DEFAULTS), "README's farm section lacks:\n{DEFAULTS}");
        assert!(readme.contains(BACKEND), "README's farm section lacks:\n{BACKEND}");
        assert!(!DEFAULTS.contains("response-timeout"), "a call retried after a timeout may run twice");
    }
}
