//! The 1-Click Publish pipeline: Verify (definition, Update Source Code, Compile), Save, Upload,
//! Publish, Deploy, as one library that reports through typed [`Event`]s and never prints.
//!
//! Any error stops the run before the next stage; warnings are reported and the run goes on.
//! Cancelling (the [`CancellationToken`] given to [`run`]) stops a build's processes, drops an
//! upload (the server keeps nothing of a partial one) and never leaves a half-done publication:
//! the server records a publication in one transaction.

mod event;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use event::{Achieved, DiagnosticReport, Event, Stage, StageOutcome, Step, StopReason};
pub use tokio_util::sync::CancellationToken;
use xif_api::ErrorCode;
use xif_client::{Client, ClientError};
use xif_project::{BuildOptions, VerifyOptions};

/// Which server, as whom.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The server's URL.
    pub server: String,
    /// The API token.
    pub token: String,
    /// A PEM CA certificate to trust besides the system's roots.
    pub ca_certificate: Option<Vec<u8>>,
}

/// What a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Verify and Save.
    Save,
    /// Verify, Save and Upload: a new version, not published.
    Upload,
    /// Everything up to a validate-only publication: nothing is published.
    DryRun,
    /// The whole 1-Click Publish.
    Publish,
    /// Publish (and deploy) a version uploaded before; also how to roll back.
    PublishVersion(i64),
}

impl Goal {
    /// The stages a run for this goal goes through.
    pub fn stages(self) -> Vec<Stage> {
        match self {
            Goal::Save => vec![Stage::Verify, Stage::Save],
            Goal::Upload => vec![Stage::Verify, Stage::Save, Stage::Upload],
            Goal::DryRun => vec![Stage::Verify, Stage::Save, Stage::Upload, Stage::Publish],
            Goal::Publish => Stage::ALL.to_vec(),
            Goal::PublishVersion(_) => vec![Stage::Publish, Stage::Deploy],
        }
    }
}

/// A run's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project directory.
    pub project: PathBuf,
    /// What to do.
    pub goal: Goal,
    /// How Compile runs.
    pub build: BuildOptions,
    /// Where Save writes the XIF [default: `PROJECT/target/xif/NAME.xif`].
    pub archive: Option<PathBuf>,
    /// The server, for every goal beyond Save.
    pub connection: Option<Connection>,
    /// A minisign secret key: Save signs the XIF with it (`NAME.xif.minisig`, the whole file)
    /// and Upload sends the signature, which a server with trusted keys requires.
    pub sign: Option<PathBuf>,
}

/// Why a run stopped, as the [`Event::Stopped`] it ended with says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The stage it stopped in.
    pub stage: Option<Stage>,
    /// Why, as a kind.
    pub reason: StopReason,
    /// Why, in words.
    pub message: String,
}

impl Stopped {
    fn new(stage: impl Into<Option<Stage>>, reason: StopReason, message: impl Into<String>) -> Self {
        Self { stage: stage.into(), reason, message: message.into() }
    }
}

/// The events of a run go here; a receiver that went away is not an error.
pub type Events = tokio::sync::mpsc::UnboundedSender<Event>;

/// Runs the pipeline for `options.goal`, reporting every step to `events`, and returns what it
/// achieved or why it stopped. The last event is [`Event::Finished`] or [`Event::Stopped`].
pub async fn run(options: &Options, events: &Events, cancel: &CancellationToken) -> Result<Achieved, Stopped> {
    let started = Instant::now();
    let mut run = Run { options, events, cancel, stage: None, stage_started: Instant::now() };
    run.emit(Event::Started {
        project: project_name(&options.project),
        server: (options.goal != Goal::Save)
            .then(|| options.connection.as_ref().map(|connection| connection.server.clone()))
            .flatten(),
        stages: options.goal.stages(),
    });
    let outcome = run.go().await;
    let millis = millis(started);
    match &outcome {
        Ok(achieved) => run.emit(Event::Finished { achieved: achieved.clone(), millis }),
        Err(stopped) => {
            if let Some(stage) = stopped.stage
                && run.stage == Some(stage)
            {
                run.finish(StageOutcome::Failed, stage_failure(stopped));
            }
            run.emit(Event::Stopped {
                stage: stopped.stage,
                reason: stopped.reason,
                message: stopped.message.clone(),
                millis,
            });
        }
    }
    outcome
}

fn stage_failure(stopped: &Stopped) -> String {
    match stopped.reason {
        StopReason::Errors => "errors".into(),
        StopReason::Refused => "refused by the server".into(),
        StopReason::NotEverywhere => "not running on every node".into(),
        StopReason::Network => "the server could not be reached".into(),
        StopReason::Cancelled => "cancelled".into(),
        StopReason::Local => "failed".into(),
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct Run<'a> {
    options: &'a Options,
    events: &'a Events,
    cancel: &'a CancellationToken,
    stage: Option<Stage>,
    stage_started: Instant,
}

/// What the server says about the extension before the run changes anything.
struct ServerState {
    client: Client,
    /// The published version, which the publication expects to replace.
    published: Option<i64>,
}

impl Run<'_> {
    fn emit(&self, event: Event) {
        // A front end that stopped listening does not stop the run.
        self.events.send(event).ok();
    }

    fn start(&mut self, stage: Stage) {
        self.stage = Some(stage);
        self.stage_started = Instant::now();
        self.emit(Event::StageStarted { stage });
    }

    fn finish(&mut self, outcome: StageOutcome, summary: impl Into<String>) {
        if let Some(stage) = self.stage.take() {
            self.emit(Event::StageFinished {
                stage,
                outcome,
                summary: summary.into(),
                millis: millis(self.stage_started),
            });
        }
    }

    fn note(&self, stage: Stage, message: impl Into<String>) {
        self.emit(Event::Note { stage, message: message.into() });
    }

    fn stop(&self, reason: StopReason, message: impl Into<String>) -> Stopped {
        Stopped::new(self.stage, reason, message)
    }

    fn cancelled(&self) -> Stopped {
        self.stop(StopReason::Cancelled, "cancelled; nothing was published")
    }

    fn client_error(&self, error: ClientError) -> Stopped {
        // Cancelled meanwhile: the request failed because its upload was cut short, which is the
        // cancellation's doing, not the network's.
        if self.cancel.is_cancelled() {
            return self.cancelled();
        }
        match &error {
            ClientError::Network { .. } => self.stop(StopReason::Network, format!("{error}; is the server running?")),
            ClientError::Server { status: 401, message, .. } => self.stop(
                StopReason::Refused,
                format!("the server did not accept the token: {message}; log in again with `xif login`"),
            ),
            // Busy, or its storage out of reach: the same publish may succeed later.
            ClientError::Server { code, message, .. } if code.class() == xif_api::ErrorClass::Unavailable => {
                self.stop(StopReason::Network, format!("{message} ({code}); publish again in a moment"))
            }
            ClientError::Server { code, message, .. } => {
                let hint = match code {
                    ErrorCode::StaleVersion => {
                        "; someone published meanwhile: look at `xif versions`, then publish again to replace it"
                    }
                    ErrorCode::PublicationInProgress => "; wait for that publication to end, then publish again",
                    ErrorCode::SignatureRequired => {
                        "; sign the archive: pass `--sign KEY` (a key made by `xif keygen`) or set XIF_SIGNING_KEY"
                    }
                    _ => "",
                };
                self.stop(StopReason::Refused, format!("{message} ({code}){hint}"))
            }
        }
    }

    async fn go(&mut self) -> Result<Achieved, Stopped> {
        let goal = self.options.goal;
        if let Goal::PublishVersion(version) = goal {
            let loaded = xif_project::load_definition(&self.options.project)
                .map_err(|error| Stopped::new(None, StopReason::Local, error.to_string()))?;
            let name = match &loaded.definition {
                Ok(definition) => definition.extension.name.value.clone(),
                Err(_) => {
                    return Err(Stopped::new(
                        None,
                        StopReason::Local,
                        format!("`{}` cannot be read; run `xif verify` to see why", xif_project::shown(&loaded.path)),
                    ));
                }
            };
            let server = self.connect(&name).await?;
            return self.publish(&server, &name, version, server.published, false).await;
        }

        // Connect first: a wrong token or an unreachable server should not wait for a build.
        let name_hint = xif_project::load_definition(&self.options.project)
            .ok()
            .and_then(|loaded| loaded.definition.ok())
            .map(|definition| definition.extension.name.value.clone());
        let server = match (goal, &name_hint) {
            (Goal::Save, _) => None,
            (_, Some(name)) => Some(self.connect(name).await?),
            // The definition does not parse: Verify says why.
            (_, None) => None,
        };

        let (name, definition, binary) = self.verify().await?;
        let archive = self.save(&name, &definition, &binary).await?;
        if goal == Goal::Save {
            return Ok(Achieved::Saved { archive: xif_project::shown(&archive) });
        }
        let server = match server {
            Some(server) => server,
            None => self.connect(&name).await?,
        };
        let (version, created) = self.upload(&server, &name, &archive).await?;
        match goal {
            Goal::Upload => Ok(Achieved::Uploaded { version, created }),
            Goal::DryRun => self.publish(&server, &name, version, server.published, true).await,
            _ => self.publish(&server, &name, version, server.published, false).await,
        }
    }

    async fn connect(&self, name: &str) -> Result<ServerState, Stopped> {
        let Some(connection) = &self.options.connection else {
            return Err(Stopped::new(
                None,
                StopReason::Local,
                "not connected to a server: run `xif login`, or set XIF_SERVER and XIF_TOKEN",
            ));
        };
        let client =
            Client::new(&connection.server, Some(connection.token.clone()), connection.ca_certificate.as_deref())
                .map_err(|error| self.client_error(error))?;
        let extension = tokio::select! {
            extension = client.extension(name) => extension.map_err(|error| self.client_error(error))?,
            () = self.cancel.cancelled() => return Err(self.cancelled()),
        };
        let published = extension.and_then(|extension| extension.published);
        Ok(ServerState { client, published })
    }

    /// Verify: returns the extension's name, its definition and its binary.
    async fn verify(&mut self) -> Result<(String, xif_definition::Definition, PathBuf), Stopped> {
        self.start(Stage::Verify);
        let project = self.options.project.clone();
        let flag = Arc::new(AtomicBool::new(false));
        let mut build = self.options.build.clone();
        build.cancel = Some(Arc::clone(&flag));
        let events = self.events.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let options = VerifyOptions { build, ..VerifyOptions::default() };
            let verification = xif_project::verify_project(&project, &options, &mut |progress| {
                let event = match progress {
                    xif_project::Progress::Step(step) => Event::Step {
                        step: match step {
                            xif_project::Step::Definition => Step::Definition,
                            xif_project::Step::UpdateSource => Step::UpdateSource,
                            xif_project::Step::Compile => Step::Compile,
                        },
                    },
                    xif_project::Progress::Compiling(name) => Event::Compiling { krate: name.to_owned() },
                };
                events.send(event).ok();
            })?;
            let sources = xif_project::sources(&project, Some(&verification.loaded.source), &verification.diagnostics);
            let reports = reports(&verification.diagnostics, &sources);
            Ok::<_, xif_project::ProjectError>((verification, reports))
        });
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = self.cancel.cancelled() => {
                flag.store(true, Ordering::Release);
                // The build's processes are killed within a tenth of a second; wait for that.
                task.await.ok();
                return Err(self.cancelled());
            }
        };
        let (verification, reports) = joined
            .map_err(|error| self.stop(StopReason::Local, format!("verification stopped unexpectedly: {error}")))?
            .map_err(|error| {
                let hint = error.hint().map(|hint| format!("; {hint}")).unwrap_or_default();
                self.stop(StopReason::Local, format!("{error}{hint}"))
            })?;
        for report in &reports {
            self.emit(Event::Diagnostic { stage: Stage::Verify, diagnostic: report.clone() });
        }
        let summary = xif_diagnostics::summary(&verification.diagnostics);
        if verification.has_errors() {
            return Err(
                self.stop(StopReason::Errors, format!("verification found {summary}; fix them and verify again"))
            );
        }
        let (Ok(definition), Some(binary)) = (verification.loaded.definition, verification.binary) else {
            return Err(self.stop(StopReason::Errors, "verification did not produce a binary"));
        };
        let name = definition.extension.name.value.clone();
        let built = if verification.compiled == 0 {
            "up to date".to_owned()
        } else {
            format!("{} crate(s) compiled", verification.compiled)
        };
        self.finish(StageOutcome::Done, format!("`{name}` {}: {summary}, {built}", definition.extension.version.value));
        Ok((name, definition, binary))
    }

    async fn save(
        &mut self,
        name: &str,
        definition: &xif_definition::Definition,
        binary: &Path,
    ) -> Result<PathBuf, Stopped> {
        self.start(Stage::Save);
        let archive = self
            .options
            .archive
            .clone()
            .unwrap_or_else(|| self.options.project.join("target").join("xif").join(format!("{name}.xif")));
        if let Some(parent) = archive.parent() {
            std::fs::create_dir_all(parent).map_err(|error| {
                self.stop(StopReason::Local, format!("cannot create `{}`: {error}", parent.display()))
            })?;
        }
        let (project, definition, binary, output, sign) = (
            self.options.project.clone(),
            definition.clone(),
            binary.to_owned(),
            archive.clone(),
            self.options.sign.clone(),
        );
        let packed = tokio::task::spawn_blocking(move || {
            xif_project::pack(&project, &definition, &binary, &output, sign.as_deref(), true)
        })
        .await
        .map_err(|error| self.stop(StopReason::Local, format!("saving stopped unexpectedly: {error}")))?
        .map_err(|error| self.stop(StopReason::Local, format!("cannot save `{}`: {error}", archive.display())))?;
        if self.cancel.is_cancelled() {
            return Err(self.cancelled());
        }
        let size = std::fs::metadata(&archive).map(|metadata| metadata.len()).unwrap_or_default();
        let signed = if packed.signature.is_some() { ", signed" } else { "" };
        let what = format!("{}, {}{signed}", xif_project::shown(&archive), bytes(size));
        if packed.reused {
            self.finish(StageOutcome::Skipped, format!("{what}: unchanged since the last save"));
        } else {
            self.finish(StageOutcome::Done, format!("{what}, {} entries", packed.manifest.entries.len()));
        }
        Ok(archive)
    }

    /// Upload: returns the version's number and whether this run created it.
    async fn upload(&mut self, server: &ServerState, name: &str, archive: &Path) -> Result<(i64, bool), Stopped> {
        self.start(Stage::Upload);
        let path = archive.to_owned();
        let digest = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(|error| self.stop(StopReason::Local, format!("hashing stopped unexpectedly: {error}")))?
            .map_err(|error| self.stop(StopReason::Local, format!("cannot read `{}`: {error}", archive.display())))?;
        let existing = tokio::select! {
            existing = server.client.version_with_digest(name, &digest) => existing.map_err(|error| self.client_error(error))?,
            () = self.cancel.cancelled() => return Err(self.cancelled()),
        };
        if let Some(existing) = existing {
            self.finish(StageOutcome::Skipped, format!("identical to version {}, not uploaded again", existing.number));
            return Ok((existing.number, false));
        }
        // Save signed the archive when asked to; the signature travels with it.
        let signature = match &self.options.sign {
            None => None,
            Some(_) => {
                let path = xif_project::signature_path(archive);
                Some(std::fs::read_to_string(&path).map_err(|error| {
                    self.stop(StopReason::Local, format!("cannot read the signature `{}`: {error}", path.display()))
                })?)
            }
        };
        let total = std::fs::metadata(archive).map(|metadata| metadata.len()).unwrap_or_default();
        let events = self.events.clone();
        let last = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Cleared when the stage ends, however it ends: the body stops being read (the server
        // then discards what it received) and no progress follows the stage's end. A lock, not
        // a flag: a progress event checked before the end must also be sent before it.
        let open = Arc::new(std::sync::Mutex::new(true));
        let sending = Arc::clone(&open);
        let cancel = self.cancel.clone();
        let sent = move |sent: u64| {
            let open = sending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cancel.is_cancelled() || !*open {
                return false;
            }
            // At most a few hundred events for any size: every 1% or at the end.
            let step = (total / 100).max(256 * 1024);
            let before = last.load(Ordering::Relaxed);
            if sent == total || sent >= before + step {
                last.store(sent, Ordering::Relaxed);
                events.send(Event::Progress { sent, total }).ok();
            }
            true
        };
        let response = tokio::select! {
            response = server.client.upload(name, archive, &digest, signature.as_deref(), sent) => response,
            () = self.cancel.cancelled() => {
                *open.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
                return Err(self.cancelled());
            }
        };
        *open.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        let response = response.map_err(|error| self.client_error(error))?;
        for warning in &response.warnings {
            self.note(Stage::Upload, format!("warning: {warning}"));
        }
        let number = response.version.number;
        if response.created {
            self.finish(StageOutcome::Done, format!("version {number}, {}", bytes(total)));
        } else {
            self.finish(StageOutcome::Skipped, format!("identical to version {number}, which the server kept"));
        }
        Ok((number, response.created))
    }

    async fn publish(
        &mut self,
        server: &ServerState,
        name: &str,
        version: i64,
        expected: Option<i64>,
        validate_only: bool,
    ) -> Result<Achieved, Stopped> {
        self.start(Stage::Publish);
        if expected == Some(version) && !validate_only {
            self.finish(StageOutcome::Skipped, format!("version {version} is already published; nothing to do"));
            self.start(Stage::Deploy);
            self.finish(StageOutcome::Skipped, format!("version {version} is running"));
            return Ok(Achieved::AlreadyPublished { version });
        }
        let request = xif_api::PublishRequest { version, expected, validate_only };
        let response = tokio::select! {
            response = server.client.publish(name, &request) => response,
            // The server records a publication in one transaction: it is there whole or not at all.
            () = self.cancel.cancelled() => return Err(self.cancelled()),
        };
        let response = match response {
            Ok(response) => response,
            Err(ClientError::Server { code: ErrorCode::DeployFailed, message, .. }) => {
                self.finish(StageOutcome::Done, format!("version {version} accepted"));
                self.start(Stage::Deploy);
                return Err(self.stop(StopReason::Refused, message));
            }
            Err(error) => return Err(self.client_error(error)),
        };
        if !response.consumers.is_empty() {
            self.emit(Event::Impact { stage: Stage::Publish, consumers: response.consumers.clone() });
        }
        for message in &response.messages {
            self.note(Stage::Publish, message.clone());
        }
        if validate_only {
            self.finish(StageOutcome::Done, format!("version {version} could be published (validate-only)"));
            return Ok(Achieved::Validated { version });
        }
        let replaced = response.publication.as_ref().and_then(|publication| publication.from);
        self.finish(StageOutcome::Done, format!("version {version} published"));

        self.start(Stage::Deploy);
        // In a farm, the server answers once every live node runs it, or says which did not.
        if response.nodes.len() > 1 || response.nodes.iter().any(|node| !node.ok) {
            for node in &response.nodes {
                let running =
                    node.running.map_or_else(|| "no version".to_owned(), |running| format!("version {running}"));
                self.note(Stage::Deploy, format!("node `{}` ({}) runs {running}", node.node, node.address));
            }
            let failed: Vec<String> = response
                .nodes
                .iter()
                .filter(|node| !node.ok)
                .map(|node| format!("node `{}`: {}", node.node, node.error.as_deref().unwrap_or("no reason given")))
                .collect();
            if !failed.is_empty() {
                return Err(self.stop(
                    StopReason::NotEverywhere,
                    format!(
                        "version {version} is published but not every node runs it ({}); a node retries by itself, \
                         see `xif nodes` and `xif logs {name}`",
                        failed.join("; ")
                    ),
                ));
            }
        }
        let extension = tokio::select! {
            extension = server.client.extension(name) => extension.map_err(|error| self.client_error(error))?,
            () = self.cancel.cancelled() => return Err(self.cancelled()),
        };
        let running = extension.and_then(|extension| extension.running);
        if running != Some(version) {
            return Err(self.stop(
                StopReason::Refused,
                format!(
                    "version {version} is published but the server runs {}; see `xif logs {name}`",
                    running.map_or_else(|| "no version".to_owned(), |running| format!("version {running}"))
                ),
            ));
        }
        let drained = replaced.map(|old| format!("; it replaced version {old}")).unwrap_or_default();
        self.finish(StageOutcome::Done, format!("version {version} runs{drained}"));
        Ok(Achieved::Published { version, replaced })
    }
}

/// Locates and renders each diagnostic for the event stream.
fn reports(diagnostics: &[xif_diagnostics::Diagnostic], sources: &xif_diagnostics::Sources) -> Vec<DiagnosticReport> {
    let located = xif_diagnostics::render_json(diagnostics, sources);
    diagnostics
        .iter()
        .zip(located)
        .map(|(diagnostic, json)| DiagnosticReport {
            severity: if diagnostic.is_error() { "error" } else { "warning" }.to_owned(),
            code: diagnostic.code.to_string(),
            title: json.title.to_owned(),
            message: diagnostic.message.clone(),
            file: json.file.to_owned(),
            line: json.location.as_ref().map(|location| location.line),
            column: json.location.as_ref().map(|location| location.column),
            help: diagnostic.help.clone(),
            rendered: xif_diagnostics::render_human(std::slice::from_ref(diagnostic), sources, false),
        })
        .collect()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A size as shown: `1.2 MiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{count} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// How the project is named in the operation log: its path as given, or, for the directory the
/// run started in (`.`), that directory's name.
fn project_name(path: &Path) -> String {
    let shown = xif_project::shown(path);
    if !shown.is_empty() {
        return shown;
    }
    std::fs::canonicalize(path)
        .ok()
        .and_then(|absolute| absolute.file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| ".".into())
}

#[cfg(test)]
mod project_name_tests {
    use super::*;

    #[test]
    fn the_directory_a_run_starts_in_is_named_by_its_name() {
        let here = std::env::current_dir().expect("a current directory");
        let name = here.file_name().expect("a name").to_string_lossy().into_owned();
        assert_eq!(project_name(Path::new(".")), name);
        assert_eq!(project_name(Path::new("Shop")), "Shop");
    }
}
