//! `xif publish` (the 1-Click Publish), `xif upload` and `xif versions`: the pipeline of
//! `xif-studio`, shown as plain lines (with a progress bar on a terminal) or as JSON events.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use xif_studio::{Event, Goal, StageOutcome, StopReason};

use crate::commands::BuildArgs;
use crate::commands::login::{Connection, Resolved, refused};
use crate::window::{achieved_text, seconds};
use crate::{Exit, output};

#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 published (warnings allowed), 1 verification found errors, \
    2 the command could not run, 4 the server refused (permission, another publication, stale version, \
    failed deploy, token), 5 the server could not be reached, 130 cancelled.\n\n\
    --json prints one JSON object per line, each with an `event` field: started, stage_started, step, \
    compiling, diagnostic, progress, impact, note, stage_finished, and last finished or stopped.")]
pub struct PublishArgs {
    #[command(flatten)]
    common: Common,
    /// Go as far as a validate-only publication: verify, save, upload, and ask the server whether
    /// it would publish; nothing is published
    #[arg(long, conflicts_with = "version")]
    dry_run: bool,
    /// Publish version N, uploaded before, instead of the project as it is (also how to roll back)
    #[arg(long, value_name = "N")]
    version: Option<i64>,
    /// Print lines, even on a terminal, instead of opening the window
    #[arg(long, conflicts_with_all = ["window", "json"])]
    plain: bool,
    /// Open the window even when stdin or stdout is not a terminal [default: on terminals]
    #[arg(long, conflicts_with = "json")]
    window: bool,
    /// In the window: after errors, verify again by itself when the definition or the source
    /// changes
    #[arg(long)]
    watch: bool,
    /// In the window: close it once the run has finished without errors
    #[arg(long)]
    close_when_done: bool,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    common: Common,
}

/// The options `xif publish` and `xif upload` share.
#[derive(Debug, Args)]
struct Common {
    /// The project directory
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Print one JSON event per line on stdout instead of lines for people
    #[arg(long)]
    json: bool,
    /// Where Save writes the XIF [default: `target/xif/NAME.xif` in the project]
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sign the XIF with this minisign secret key (made by `xif keygen`) and send the signature
    /// with the upload, as a server started with `--trusted-key` requires
    #[arg(long, value_name = "KEY", env = "XIF_SIGNING_KEY")]
    sign: Option<PathBuf>,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn publish(args: &PublishArgs) -> anyhow::Result<Exit> {
    let goal = match (args.version, args.dry_run) {
        (Some(version), _) => Goal::PublishVersion(version),
        (None, true) => Goal::DryRun,
        (None, false) => Goal::Publish,
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if args.window || (terminal && !args.plain && !args.common.json) {
        let common = &args.common;
        return crate::window::run(crate::window::WindowOptions {
            project: common.path.clone(),
            goal,
            build: common.build.options(),
            archive: common.output.clone(),
            connection: common.connection.resolve()?,
            ca_cert: common.connection.ca_cert.clone(),
            watch: args.watch,
            close_when_done: args.close_when_done,
            sign: common.sign.clone(),
        });
    }
    run(&args.common, goal)
}

pub fn upload(args: &UploadArgs) -> anyhow::Result<Exit> {
    run(&args.common, Goal::Upload)
}

fn run(common: &Common, goal: Goal) -> anyhow::Result<Exit> {
    let Common { path: project, json, output: archive, sign, connection, build } = common;
    let json = *json;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let connection = match connection.resolve()? {
        Some(resolved) => Some(resolved),
        // Unconnected on a terminal: ask, as the window's dialog does.
        None if !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            output::eprint("not connected to a server; log in:\n");
            match runtime.block_on(crate::commands::login::log_in(None, None, false, connection.ca_cert.clone())) {
                Ok(resolved) => Some(resolved),
                Err(error) => return refused(Err(error)),
            }
        }
        None => {
            if json {
                print_json(&Event::Stopped {
                    stage: None,
                    reason: StopReason::Local,
                    message: crate::commands::login::NOT_CONNECTED.into(),
                    millis: 0,
                });
            }
            anyhow::bail!(crate::commands::login::NOT_CONNECTED);
        }
    };
    let options = xif_studio::Options {
        project: project.to_owned(),
        goal,
        build: build.options(),
        archive: archive.clone(),
        sign: sign.clone(),
        connection: connection.map(|Resolved { server, token, ca_certificate }| xif_studio::Connection {
            server,
            token,
            ca_certificate,
        }),
    };
    Ok(publish_with(&runtime, &options, json))
}

/// Runs the pipeline with `options` on `runtime`, printing its events, and turns its end into
/// an exit code. Ctrl-C cancels it.
pub fn publish_with(runtime: &tokio::runtime::Runtime, options: &xif_studio::Options, json: bool) -> Exit {
    let cancel = xif_studio::CancellationToken::new();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let outcome = runtime.block_on(async {
        let interrupt = cancel.clone();
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.cancel();
            }
        });
        let printer = tokio::task::spawn_blocking(move || {
            let mut plain = Plain::new();
            while let Some(event) = receiver.blocking_recv() {
                if json {
                    print_json(&event);
                } else {
                    plain.show(&event);
                }
            }
        });
        let outcome = xif_studio::run(options, &sender, &cancel).await;
        drop(sender);
        printer.await.ok();
        watcher.abort();
        outcome
    });
    exit_code(&outcome)
}

/// The exit code of a run's outcome.
pub fn exit_code(outcome: &Result<xif_studio::Achieved, xif_studio::Stopped>) -> Exit {
    match outcome {
        Ok(_) => Exit::Success,
        Err(stopped) => match stopped.reason {
            StopReason::Errors => Exit::Errors,
            StopReason::Refused | StopReason::NotEverywhere => Exit::Refused,
            StopReason::Network => Exit::Network,
            StopReason::Cancelled => Exit::Cancelled,
            StopReason::Local => Exit::CouldNotRun,
        },
    }
}

fn print_json(event: &Event) {
    match serde_json::to_string(event) {
        Ok(line) => output::print(&format!("{line}\n")),
        Err(error) => output::eprint(&format!("error: cannot write an event as JSON: {error}\n")),
    }
}

/// Lines for people on stderr: one per stage and per diagnostic, a progress bar during upload on
/// a terminal. Each line starts with a label, so nothing depends on colour.
struct Plain {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
}

impl Plain {
    fn new() -> Self {
        Self { bar: None, terminal: std::io::stderr().is_terminal() }
    }

    fn show(&mut self, event: &Event) {
        match event {
            Event::Started { project, server, stages } => {
                let stages: Vec<&str> = stages.iter().map(|stage| stage.title()).collect();
                let to = server.as_deref().map(|server| format!(" to {server}")).unwrap_or_default();
                output::progress_line(&format!("1-Click Publish of {project}{to}: {}", stages.join(" · ")));
            }
            Event::StageStarted { stage } => output::progress_line(&format!("[....] {}", stage.title())),
            Event::Step { step } => output::progress_line(&format!("       {}", step.title())),
            Event::Compiling { krate } => output::progress_line(&format!("       compiling {krate}")),
            Event::Diagnostic { diagnostic, .. } => output::eprint(&diagnostic.rendered),
            Event::Progress { sent, total } => {
                if !self.terminal || output::is_quiet() {
                    return;
                }
                let bar = self.bar.get_or_insert_with(|| {
                    let bar =
                        indicatif::ProgressBar::with_draw_target(Some(*total), indicatif::ProgressDrawTarget::stderr());
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "       [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar
                });
                bar.set_position(*sent);
            }
            Event::Impact { consumers, .. } => {
                for consumer in consumers {
                    let changes = if consumer.changes.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", consumer.changes.join("; "))
                    };
                    output::eprint(&format!(
                        "impact: module `{}` (built against version {}) is {}{changes}\n",
                        consumer.module, consumer.built_against, consumer.impact
                    ));
                }
            }
            Event::Note { message, .. } => output::progress_line(&format!("       {message}")),
            Event::StageFinished { stage, outcome, summary, millis } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let label = match outcome {
                    StageOutcome::Done => "[ok]  ",
                    StageOutcome::Skipped => "[skip]",
                    StageOutcome::Failed => "[FAIL]",
                };
                let line = format!("{label} {:<8}{:>7}  {summary}", stage.title(), seconds(*millis));
                if *outcome == StageOutcome::Failed {
                    output::eprint(&format!("{line}\n"));
                } else {
                    output::progress_line(&line);
                }
            }
            Event::Finished { achieved, millis } => {
                let what = achieved_text(achieved);
                output::eprint(&format!("{what} ({})\n", seconds(*millis)));
            }
            Event::Stopped { message, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
                output::eprint(&format!("error: {message}\n"));
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The extension [default: the one of the project in --path]
    extension: Option<String>,
    /// The project directory, when no extension is named
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    path: PathBuf,
    /// Print the versions as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub fn versions(args: &VersionsArgs) -> anyhow::Result<Exit> {
    let name = match &args.extension {
        Some(name) => name.clone(),
        None => {
            let definition = args.path.join(xif_project::DEFINITION_FILE);
            if !definition.exists() {
                anyhow::bail!(
                    "no `{}` here to take the extension's name from: name it, `xif versions NAME`",
                    xif_project::shown(&definition)
                );
            }
            let loaded = xif_project::load_definition(&args.path)?;
            match loaded.definition {
                Ok(definition) => definition.extension.name.value,
                Err(_) => anyhow::bail!(
                    "`{}` cannot be read; name the extension: `xif versions NAME`",
                    xif_project::shown(&loaded.path)
                ),
            }
        }
    };
    let client = args.connection.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    refused(runtime.block_on(async {
        let versions = client.versions(&name).await?;
        if args.json {
            output::print(&format!("{}\n", serde_json::to_string_pretty(&versions)?));
        } else if versions.is_empty() {
            output::eprint(&format!("no version of `{name}` was uploaded\n"));
        } else {
            let mut text = String::from("VERSION  DECLARED  SIZE        UPLOADED BY  UPLOADED AT           SHA-256\n");
            for version in &versions {
                text.push_str(&format!(
                    "{:<8} {:<9} {:<11} {:<12} {:<21} {}{}\n",
                    version.number,
                    version.declared_version,
                    output::bytes(u64::try_from(version.size).unwrap_or_default()),
                    version.uploaded_by,
                    version.uploaded_at,
                    &version.sha256[..12.min(version.sha256.len())],
                    if version.published { "  (published)" } else { "" }
                ));
            }
            output::print(&text);
        }
        anyhow::Ok(())
    }))
}
