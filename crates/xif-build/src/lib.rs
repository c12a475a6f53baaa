//! Compile: build an extension with cargo and report what the compiler says as diagnostics.
//!
//! cargo runs with `--message-format=json`; every compiler error and warning becomes a
//! diagnostic with its file (relative to the project), byte span, label and help, rendered like
//! the verifier's. A build that takes longer than its time limit is stopped, cargo and the
//! compilers it started alike.

use std::io::{BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cargo_metadata::Message;
use cargo_metadata::diagnostic::{Diagnostic as CompilerDiagnostic, DiagnosticLevel};
use xif_diagnostics::{Code, Diagnostic, Span};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The cargo profile: `release` unless told otherwise.
    pub profile: String,
    /// The build is stopped after this long.
    pub timeout: Duration,
    /// Where build output goes; the project's `target/` when `None`.
    pub target_dir: Option<PathBuf>,
    /// The cargo to run; `$CARGO`, else `cargo` on the `PATH`, when `None`.
    pub cargo: Option<PathBuf>,
    /// Set from elsewhere to stop the build (its whole process group) within a tenth of a second.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            profile: "release".into(),
            timeout: Duration::from_secs(600),
            target_dir: None,
            cargo: None,
            cancel: None,
        }
    }
}

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildOutcome {
    /// The extension's executable, when the build succeeded.
    pub binary: Option<PathBuf>,
    /// The compiler's errors and warnings, and any reason the build could not run.
    pub diagnostics: Vec<Diagnostic>,
    /// How many crates were compiled (not up to date).
    pub compiled: usize,
    /// The build was stopped through [`BuildOptions::cancel`].
    pub cancelled: bool,
}

/// Builds the crate in `project` and reports its binary and diagnostics. `progress` is told the
/// name of each crate as it is compiled.
pub fn compile(project: &Path, options: &BuildOptions, progress: &mut dyn FnMut(&str)) -> BuildOutcome {
    // cargo runs in the project with an absolute manifest path, and reports absolute file names
    // that are made relative to this same path.
    let project = &project.canonicalize().unwrap_or_else(|_| project.to_owned());
    let cargo = options
        .cargo
        .clone()
        .or_else(|| std::env::var_os("CARGO").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--message-format=json", "--profile", &options.profile, "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .current_dir(project)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a time-out stops the compilers cargo started too.
        .process_group(0);
    if let Some(target_dir) = &options.target_dir {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return failed(
                Diagnostic::new(Code::CargoMissing, format!("cannot run `{}`: it was not found", cargo.display()))
                    .help("install Rust from https://rustup.rs, or set `CARGO` to the path of cargo"),
            );
        }
        Err(error) => {
            return failed(Diagnostic::new(Code::CargoMissing, format!("cannot run `{}`: {error}", cargo.display())));
        }
    };

    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for message in Message::parse_stream(BufReader::new(stdout)).map_while(Result::ok) {
                if sender.send(Event::Message(Box::new(message))).is_err() {
                    return;
                }
            }
        });
    }
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            // A failed read leaves what was read; cargo's exit status tells the rest.
            stderr.read_to_string(&mut text).ok();
            sender.send(Event::Stderr(text)).ok();
        });
    }

    let deadline = Instant::now() + options.timeout;
    let mut outcome = BuildOutcome::default();
    let mut stderr = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut streams_open = 2;
    while streams_open > 0 {
        let cancelled =
            || options.cancel.as_ref().is_some_and(|cancel| cancel.load(std::sync::atomic::Ordering::Acquire));
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        let event = match receiver.recv_timeout(wait) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if cancelled() => {
                let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
                nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).ok();
                child.wait().ok();
                return BuildOutcome { cancelled: true, ..BuildOutcome::default() };
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
                nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).ok();
                child.wait().ok();
                outcome.binary = None;
                outcome.diagnostics.push(
                    Diagnostic::new(
                        Code::CompileTimeout,
                        format!("compiling took longer than {:?} and was stopped", options.timeout),
                    )
                    .help("raise the limit with `--timeout`, or look for a build script that hangs"),
                );
                return outcome;
            }
        };
        match event {
            Event::Stderr(text) => {
                stderr = text;
                streams_open -= 1;
            }
            Event::Message(message) => match *message {
                Message::CompilerArtifact(artifact) => {
                    let build_script =
                        artifact.target.kind.iter().any(|kind| matches!(kind, cargo_metadata::TargetKind::CustomBuild));
                    if !artifact.fresh && !build_script {
                        outcome.compiled += 1;
                        progress(&artifact.target.name);
                    }
                    if let Some(executable) = artifact.executable {
                        outcome.binary = Some(executable.into_std_path_buf());
                    }
                }
                Message::CompilerMessage(message) => {
                    if let Some(diagnostic) = diagnostic(project, &message.message)
                        && seen.insert((diagnostic.file.clone(), diagnostic.span, diagnostic.message.clone()))
                    {
                        outcome.diagnostics.push(diagnostic);
                    }
                }
                Message::BuildFinished(_) => streams_open -= 1,
                _ => {}
            },
        }
    }
    let status = child.wait();
    let succeeded = status.as_ref().is_ok_and(std::process::ExitStatus::success);
    let has_errors = outcome.diagnostics.iter().any(Diagnostic::is_error);
    if !succeeded {
        outcome.binary = None;
        if !has_errors {
            let detail: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).rev().take(8).collect();
            let detail: Vec<&str> = detail.into_iter().rev().collect();
            outcome.diagnostics.push(
                Diagnostic::new(Code::CargoFailed, format!("cargo failed: {}", detail.join("\n")))
                    .help("fix the project's `Cargo.toml`, or run `cargo build` in the project to see more"),
            );
        }
    } else if outcome.binary.is_none() {
        outcome.diagnostics.push(
            Diagnostic::new(Code::NoBinary, "the build succeeded but produced no executable")
                .help("an extension is a binary crate: add `src/main.rs` that calls `bindings::serve`"),
        );
    }
    outcome
}

enum Event {
    Message(Box<Message>),
    Stderr(String),
}

fn failed(diagnostic: Diagnostic) -> BuildOutcome {
    BuildOutcome { binary: None, diagnostics: vec![diagnostic], compiled: 0, cancelled: false }
}

/// The diagnostic for one compiler message, or `None` for the summaries rustc adds ("aborting
/// due to 2 previous errors", "1 warning emitted").
fn diagnostic(project: &Path, message: &CompilerDiagnostic) -> Option<Diagnostic> {
    let code = match message.level {
        DiagnosticLevel::Error | DiagnosticLevel::Ice => Code::CompileError,
        DiagnosticLevel::Warning => Code::CompileWarning,
        _ => return None,
    };
    if message.spans.is_empty()
        && (message.message.starts_with("aborting due to") || message.message.ends_with("emitted"))
    {
        return None;
    }
    let text = match &message.code {
        Some(rustc) => format!("{} [{}]", message.message, rustc.code),
        None => message.message.clone(),
    };
    let mut diagnostic = Diagnostic::new(code, text);
    if let Some(span) = message.spans.iter().find(|span| span.is_primary) {
        let file = Path::new(&span.file_name);
        let relative = file.strip_prefix(project).unwrap_or(file);
        diagnostic = diagnostic
            .in_file(relative.to_string_lossy())
            .at(Span::new(span.byte_start as usize, span.byte_end as usize));
        if let Some(label) = &span.label {
            diagnostic = diagnostic.label(label.clone());
        }
    }
    let help: Vec<String> = message
        .children
        .iter()
        .filter(|child| matches!(child.level, DiagnosticLevel::Help | DiagnosticLevel::Note))
        .map(|child| {
            let replacement = child.spans.iter().find_map(|span| span.suggested_replacement.as_deref());
            match replacement {
                Some(replacement) if !replacement.is_empty() => format!("{}: `{replacement}`", child.message),
                _ => child.message.clone(),
            }
        })
        .collect();
    if !help.is_empty() {
        diagnostic = diagnostic.help(help.join("; "));
    }
    Some(diagnostic)
}
