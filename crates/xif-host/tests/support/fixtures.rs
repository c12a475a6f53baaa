//! Building the fixture extensions of `fixtures/` once per test run, into `target/fixtures`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The root of the main workspace.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The path of fixture binary `name`, built in release mode on first use.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let directory = BUILT.get_or_init(|| {
        let root = workspace();
        let target = root.join("target/fixtures");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("fixtures/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "fixtures build: {}", String::from_utf8_lossy(&output.stderr));
        target.join("release")
    });
    directory.join(name)
}
