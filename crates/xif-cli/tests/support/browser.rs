//! Service Center's browser scenarios, run from Rust: a real `xif server` started for the
//! scenario, and a script of `tests/console/` run by Node with Playwright driving Debian's
//! Chromium (both installed by `scripts/install-test-tools`; a missing one fails the test with
//! what to run, it never skips). Screenshots go to `target/console-screenshots/`, the
//! artefacts a reviewer opens.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The administrator's password of the servers the scenarios start.
pub const PASSWORD: &str = "console-admin-password";

/// A server for a scenario, and a directory of its own for files the scenario uses.
pub struct Console {
    /// The server.
    pub server: xif_testkit::Server,
    /// Its data directory's parent, for the scenario's files (`XIF_SCRATCH` in the script).
    pub directory: tempfile::TempDir,
}

/// Where the screenshots go.
pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

impl Console {
    /// A server with `extra` arguments, its administrator's password [`PASSWORD`].
    pub fn start(extra: &[&str]) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let server = xif_testkit::Server::start(
            env!("CARGO_BIN_EXE_xif"),
            &directory.path().join("data"),
            PASSWORD,
            "warn",
            extra,
            drop,
        );
        Console { server, directory }
    }

    /// Runs `tests/console/SCRIPT` against the server, with `env` added to its environment;
    /// fails the test with the script's own words when it fails.
    pub fn run(&self, script: &str, env: &[(&str, &str)]) {
        let tools = std::env::var("XIF_TEST_TOOLS").unwrap_or_else(|_| "/opt/xif-test-tools".into());
        let modules = Path::new(&tools).join("node/node_modules/playwright-core");
        assert!(
            modules.is_dir(),
            "Playwright is not installed in {tools}/node: run `sudo scripts/install-test-tools` (it installs Chromium, Node and the scenarios' npm packages)"
        );
        let chromium = std::env::var("XIF_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(Path::new(&chromium).exists(), "no Chromium at {chromium}: run `sudo scripts/install-test-tools`");
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        let output = Command::new("node")
            .arg(scripts.join(script))
            .current_dir(&scripts)
            .env("XIF_URL", &self.server.url)
            .env("XIF_ADMIN_PASSWORD", PASSWORD)
            .env("XIF_SCREENSHOTS", screenshots())
            // A directory of the test's own, for files the scenario writes.
            .env("XIF_SCRATCH", self.directory.path())
            .env("XIF_TEST_TOOLS", &tools)
            .env("XIF_CHROMIUM", &chromium)
            .envs(env.iter().copied())
            .output()
            .expect("node runs (sudo scripts/install-test-tools installs it)");
        assert!(
            output.status.success(),
            "the browser scenario {script} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
