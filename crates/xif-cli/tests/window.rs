//! The 1-Click Publish window in a real terminal: tmux runs the real `xif publish`, the test
//! sends keys and reads the pane, against a real `xif server`. A definition error stops the
//! run; the test fixes the file and presses Verify Again; the publication completes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "administrator-password";

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Self {
        Tmux { socket: format!("xif-test-{name}-{}", std::process::id()) }
    }

    fn run(&self, arguments: &[&str]) -> String {
        let output = Command::new("tmux").arg("-L").arg(&self.socket).args(arguments).output().expect("tmux runs");
        assert!(output.status.success(), "tmux {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "window"])
    }

    /// Waits until the pane shows `text`; panics with the pane after `limit`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let pane = self.pane();
            if pane.contains(text) {
                return pane;
            }
            assert!(started.elapsed() < limit, "`{text}` did not appear within {limit:?}; the pane shows:\n{pane}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut arguments = vec!["send-keys", "-t", "window"];
        arguments.extend(keys);
        self.run(&arguments);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output().ok();
    }
}

fn xif(directory: &Path, config: &Path, arguments: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(arguments)
        .current_dir(directory)
        .env("XIF_CONFIG_DIR", config)
        .env("CARGO_TARGET_DIR", xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xif runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("written");
    let output = child.wait_with_output().expect("finished");
    assert!(output.status.success(), "xif {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A server, a login, a project `name` from `xif new` with `breakage` (from, to) made to its
/// definition, and `xif publish OPTIONS` of it running in an 80×24 tmux session `window`
/// (`NO_COLOR` set), which prints `EXIT=CODE` when it ends.
fn publish_in_tmux(root: &Path, name: &str, breakage: (&str, &str), options: &str) -> (xif_testkit::Server, Tmux) {
    let server = xif_testkit::Server::start(env!("CARGO_BIN_EXE_xif"), &root.join("data"), PASSWORD, "warn", &[], drop);
    let config = root.join("config");
    xif(root, &config, &["login", &server.url, "--user", "admin", "--password-stdin"], &format!("{PASSWORD}\n"));
    xif(root, &config, &["new", name], "");
    let definition = root.join(name).join("extension.toml");
    let text = std::fs::read_to_string(&definition).expect("definition");
    assert!(text.contains(breakage.0));
    std::fs::write(&definition, text.replacen(breakage.0, breakage.1, 1)).expect("broken");
    let tmux = Tmux::new(name);
    let command = format!(
        "env NO_COLOR=1 XIF_CONFIG_DIR='{}' CARGO_TARGET_DIR='{}' '{}' publish {options} --path '{}'; echo EXIT=$?; sleep 60",
        config.display(),
        xif_testkit::extensions_target(env!("CARGO_MANIFEST_DIR")).display(),
        env!("CARGO_BIN_EXE_xif"),
        root.join(name).display()
    );
    tmux.run(&["new-session", "-d", "-s", "window", "-x", "80", "-y", "24", &command]);
    (server, tmux)
}

#[test]
fn a_definition_error_stops_the_run_then_verify_again_publishes() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = directory.path();
    let (server, tmux) = publish_in_tmux(root, "Windowed", ("type = \"Boolean\"", "type = \"Bool\""), "");
    let definition = root.join("Windowed/extension.toml");
    let text =
        std::fs::read_to_string(&definition).expect("definition").replacen("type = \"Bool\"", "type = \"Boolean\"", 1);

    // On a terminal, `xif publish` opens the window; the error stops the run in Verify.
    let pane = tmux.wait_for("Stopped on errors", Duration::from_secs(60));
    assert!(pane.contains("1-Click Publish · ") && pane.contains("[FAIL] Verify"), "{pane}");
    assert!(pane.contains("ERROR XE0201 unknown data type `Bool`"), "the error has its line: {pane}");
    assert!(pane.contains("24 | type = \"Bool\""), "the details show the source: {pane}");
    assert!(pane.contains("[v] Verify Again"), "Verify Again is enabled: {pane}");
    for marker in ["✘ Verify", "· Save", "· Upload", "· Publish", "· Deploy"] {
        assert!(pane.contains(marker), "`{marker}` in the progress bar: {pane}");
    }

    // The user fixes the file and presses Verify Again: the run goes on to the end.
    std::fs::write(&definition, text).expect("fixed");
    tmux.keys(&["v"]);
    let pane = tmux.wait_for("DONE   published version 1", Duration::from_secs(180));
    for marker in ["✔ Verify", "✔ Save", "✔ Upload", "✔ Publish", "✔ Deploy"] {
        assert!(pane.contains(marker), "`{marker}` in the progress bar: {pane}");
    }
    assert!(pane.contains("[-] Verify Again"), "Verify Again is disabled again: {pane}");

    // Selecting a line shows it in Details; a resize is survived.
    tmux.keys(&["Up"]);
    tmux.wait_for("Deploy: done", Duration::from_secs(10));
    tmux.run(&["resize-window", "-t", "window", "-x", "100", "-y", "30"]);
    tmux.wait_for("DONE   published version 1", Duration::from_secs(10));

    // Close: the terminal is restored and the outcome stays on the normal screen.
    tmux.keys(&["q"]);
    let pane = tmux.wait_for("EXIT=", Duration::from_secs(10));
    assert!(pane.contains("published version 1") && pane.contains("EXIT=0"), "{pane}");
    assert!(!pane.contains("1-Click Publish · ") && !pane.contains("[q] Close"), "the window is gone: {pane}");

    let token = server.token("admin", PASSWORD);
    let called = Command::new(env!("CARGO_BIN_EXE_xif"))
        .args(["invoke", "Windowed", "Greet", "--input", r#"{"Person": {"Name": "Ada"}}"#, "--server", &server.url])
        .env("XIF_TOKEN", token)
        .output()
        .expect("xif invoke runs");
    assert_eq!(String::from_utf8_lossy(&called.stdout).trim(), "{\n  \"Greeting\": \"Hello, Ada!\"\n}");
}

#[test]
fn with_watch_a_fix_verifies_again_by_itself() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = directory.path();
    let (_server, tmux) = publish_in_tmux(root, "Watched", ("name = \"Greet\"", "name = \"Greet!\""), "--watch");
    let definition = root.join("Watched/extension.toml");
    let text =
        std::fs::read_to_string(&definition).expect("definition").replacen("name = \"Greet!\"", "name = \"Greet\"", 1);
    let pane = tmux.wait_for("Verify Again starts when a file changes", Duration::from_secs(60));
    assert!(pane.contains("ERROR"), "{pane}");
    std::fs::write(&definition, text).expect("fixed");
    tmux.wait_for("DONE   published version 1", Duration::from_secs(180));

    // NO_COLOR: the screen has bold and reverse video, but no colour at all.
    let styled = tmux.run(&["capture-pane", "-p", "-e", "-t", "window"]);
    let colours: Vec<&str> = styled
        .split('\x1b')
        .filter(|sequence| {
            let parameters = sequence.strip_prefix('[').and_then(|rest| rest.split_once('m')).map(|(codes, _)| codes);
            parameters.is_some_and(|codes| {
                codes.split(';').any(|code| {
                    matches!(
                        code,
                        "30" | "31"
                            | "32"
                            | "33"
                            | "34"
                            | "35"
                            | "36"
                            | "37"
                            | "38"
                            | "90"
                            | "91"
                            | "92"
                            | "93"
                            | "94"
                            | "95"
                            | "96"
                            | "97"
                    )
                })
            })
        })
        .collect();
    assert!(colours.is_empty(), "colour codes with NO_COLOR: {colours:?}");
    assert!(styled.contains("\x1b[1m") || styled.contains(";1m"), "bold is still used: {styled:?}");

    // A signal (SIGTERM) closes the window and restores the terminal.
    let shell = tmux.run(&["list-panes", "-t", "window", "-F", "#{pane_pid}"]);
    let children = Command::new("pgrep").args(["-P", shell.trim()]).output().expect("pgrep runs");
    let xif = String::from_utf8_lossy(&children.stdout).lines().next().expect("xif runs in the pane").to_owned();
    Command::new("kill").args(["-TERM", &xif]).status().expect("kill runs");
    let pane = tmux.wait_for("EXIT=", Duration::from_secs(10));
    assert!(pane.contains("EXIT=130"), "{pane}");
    assert!(!pane.contains("1-Click Publish · ") && !pane.contains("[q] Close"), "the window is gone: {pane}");
}
