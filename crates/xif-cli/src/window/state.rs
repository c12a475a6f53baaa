//! What the window shows, as plain data: the operation log, the selected line, the stages'
//! states, the upload's progress, the dialogs. Events of the pipeline and keys change it;
//! drawing only reads it, so every screen can be built in a test without a terminal.

use std::time::{Duration, Instant};

use xif_studio::{Achieved, DiagnosticReport, Event, Stage, StageOutcome, Step, StopReason};

/// The state of one stage marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// Not reached (or not part of this run).
    Pending,
    /// Under way.
    Running,
    /// Ended as it should.
    Done,
    /// Nothing needed doing.
    Skipped,
    /// Ended with errors: the run stopped here.
    Failed,
}

/// One line of the operation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// A stage: its state, duration and summary.
    Stage { stage: Stage, state: StageState, millis: Option<u64>, summary: String },
    /// An error or warning, under the stage that raised it.
    Diagnostic { stage: Stage, report: DiagnosticReport },
    /// A module affected by the publication.
    Impact { consumer: xif_api::ConsumerImpact },
    /// Something said along the way.
    Note { text: String },
    /// How the run ended.
    End { ok: bool, text: String },
}

/// The buttons, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// Verifies again after errors and, when clean, goes on.
    VerifyAgain,
    /// Verify and Save.
    Save,
    /// Verify, Save and Upload.
    Upload,
    /// Publishes: the version uploaded in this window if there is one, else everything.
    Publish,
    /// Closes the window (asking first during a run).
    Close,
}

impl Button {
    /// Every button, in order.
    pub const ALL: [Button; 5] = [Button::VerifyAgain, Button::Save, Button::Upload, Button::Publish, Button::Close];

    /// Its label.
    pub const fn label(self) -> &'static str {
        match self {
            Button::VerifyAgain => "Verify Again",
            Button::Save => "Save",
            Button::Upload => "Upload",
            Button::Publish => "Publish",
            Button::Close => "Close",
        }
    }

    /// Its keyboard shortcut.
    pub const fn key(self) -> char {
        match self {
            Button::VerifyAgain => 'v',
            Button::Save => 's',
            Button::Upload => 'u',
            Button::Publish => 'p',
            Button::Close => 'q',
        }
    }
}

/// How the window's current or last run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Nothing has run yet.
    Idle,
    /// A run is under way.
    Running,
    /// It finished.
    Finished(Achieved),
    /// It stopped.
    Stopped(StopReason),
}

/// The connection dialog: which field has the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The server's URL.
    Server,
    /// The user name.
    User,
    /// The password.
    Password,
}

/// The server selection dialog.
#[derive(Debug, Clone, Default)]
pub struct ConnectDialog {
    /// The servers used before, the most recent first, with their user names.
    pub history: Vec<(String, String)>,
    /// What is typed.
    pub server: String,
    /// What is typed.
    pub user: String,
    /// What is typed (shown masked).
    pub password: String,
    /// The field with the cursor.
    pub field: Option<Field>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// A login is under way.
    pub busy: bool,
}

impl ConnectDialog {
    /// A dialog offering `history`, filled in with the most recent server.
    pub fn new(history: Vec<(String, String)>) -> Self {
        let (server, user) = history.first().cloned().unwrap_or_default();
        let field = Some(if server.is_empty() { Field::Server } else { Field::Password });
        Self { history, server, user, password: String::new(), field, error: None, busy: false }
    }

    /// The text of the field with the cursor.
    pub fn current(&mut self) -> Option<&mut String> {
        match self.field? {
            Field::Server => Some(&mut self.server),
            Field::User => Some(&mut self.user),
            Field::Password => Some(&mut self.password),
        }
    }

    /// Moves to the next field (`forward`) or the previous one.
    pub fn move_field(&mut self, forward: bool) {
        self.field = Some(match (self.field.unwrap_or(Field::Server), forward) {
            (Field::Server, true) | (Field::Password, false) => Field::User,
            (Field::User, true) => Field::Password,
            (Field::User, false) | (Field::Password, true) => Field::Server,
            (Field::Server, false) => Field::Password,
        });
    }

    /// Puts the next (or previous) server of the history in the server field.
    pub fn cycle_history(&mut self, forward: bool) {
        if self.history.is_empty() {
            return;
        }
        let position = self.history.iter().position(|(server, _)| *server == self.server);
        let next = match (position, forward) {
            (None, _) => 0,
            (Some(index), true) => (index + 1) % self.history.len(),
            (Some(index), false) => (index + self.history.len() - 1) % self.history.len(),
        };
        let (server, user) = self.history[next].clone();
        self.server = server;
        self.user = user;
    }
}

/// Everything the window shows.
#[derive(Debug, Clone)]
pub struct WindowState {
    /// The project, as shown.
    pub project: String,
    /// The server, when connected.
    pub server: Option<String>,
    /// The operation log.
    pub lines: Vec<LogLine>,
    /// The selected line.
    pub selected: usize,
    /// Whether the selection follows the newest line.
    pub follow: bool,
    /// Each stage's marker.
    pub stages: [StageState; 5],
    /// The stages of the current run.
    pub in_run: Vec<Stage>,
    /// Verify's current sub-step, while it runs.
    pub step: Option<Step>,
    /// The crate being compiled.
    pub compiling: Option<String>,
    /// Bytes sent, the total, and when the upload started.
    pub upload: Option<(u64, u64, Instant)>,
    /// The current or last run.
    pub run: RunState,
    /// When the current stage started.
    pub stage_started: Option<Instant>,
    /// The version uploaded by this window's last run, for Publish.
    pub uploaded: Option<i64>,
    /// The server selection dialog, when open.
    pub connect: Option<ConnectDialog>,
    /// The "cancel the run and close?" question, when asked.
    pub confirm_close: bool,
    /// Watching the project for changes after errors.
    pub watching: bool,
    /// Colours allowed (`NO_COLOR` unset).
    pub color: bool,
}

impl WindowState {
    /// A window for `project`, not yet running.
    pub fn new(project: String, server: Option<String>, color: bool, watching: bool) -> Self {
        Self {
            project,
            server,
            lines: Vec::new(),
            selected: 0,
            follow: true,
            stages: [StageState::Pending; 5],
            in_run: Vec::new(),
            step: None,
            compiling: None,
            upload: None,
            run: RunState::Idle,
            stage_started: None,
            uploaded: None,
            connect: None,
            confirm_close: false,
            watching,
            color,
        }
    }

    fn index(stage: Stage) -> usize {
        Stage::ALL.iter().position(|candidate| *candidate == stage).unwrap_or_default()
    }

    /// Whether `button` can be pressed now.
    pub fn enabled(&self, button: Button) -> bool {
        let idle = self.run != RunState::Running && self.connect.is_none();
        match button {
            Button::Close => true,
            Button::VerifyAgain => idle && self.run == RunState::Stopped(StopReason::Errors),
            Button::Save | Button::Upload | Button::Publish => idle,
        }
    }

    fn push(&mut self, line: LogLine) {
        self.lines.push(line);
        if self.follow {
            self.selected = self.lines.len() - 1;
        }
    }

    /// Moves the selection; the log stops following new lines until the end is selected again.
    pub fn select(&mut self, index: usize) {
        if self.lines.is_empty() {
            return;
        }
        self.selected = index.min(self.lines.len() - 1);
        self.follow = self.selected == self.lines.len() - 1;
    }

    /// Applies one event of the pipeline.
    pub fn apply(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Started { server, stages, .. } => {
                self.lines.clear();
                self.selected = 0;
                self.follow = true;
                self.stages = [StageState::Pending; 5];
                self.in_run = stages.clone();
                self.upload = None;
                self.step = None;
                self.run = RunState::Running;
                if server.is_some() {
                    self.server.clone_from(server);
                }
            }
            Event::StageStarted { stage } => {
                self.stages[Self::index(*stage)] = StageState::Running;
                self.stage_started = Some(now);
                self.push(LogLine::Stage {
                    stage: *stage,
                    state: StageState::Running,
                    millis: None,
                    summary: String::new(),
                });
            }
            Event::Step { step } => {
                self.step = Some(*step);
                self.compiling = None;
            }
            Event::Compiling { krate } => self.compiling = Some(krate.clone()),
            Event::Diagnostic { stage, diagnostic } => {
                self.push(LogLine::Diagnostic { stage: *stage, report: diagnostic.clone() });
            }
            Event::Progress { sent, total } => {
                let started = self.upload.map_or(now, |(_, _, started)| started);
                self.upload = Some((*sent, *total, started));
            }
            Event::Impact { consumers, .. } => {
                for consumer in consumers {
                    self.push(LogLine::Impact { consumer: consumer.clone() });
                }
            }
            Event::Note { message, .. } => self.push(LogLine::Note { text: message.clone() }),
            Event::StageFinished { stage, outcome, summary, millis } => {
                let state = match outcome {
                    StageOutcome::Done => StageState::Done,
                    StageOutcome::Skipped => StageState::Skipped,
                    StageOutcome::Failed => StageState::Failed,
                };
                self.stages[Self::index(*stage)] = state;
                if *stage == Stage::Verify {
                    self.step = None;
                    self.compiling = None;
                }
                // The stage's line, written when it started, now says how it ended.
                if let Some(LogLine::Stage { state: line_state, millis: line_millis, summary: line_summary, .. }) = self
                    .lines
                    .iter_mut()
                    .rev()
                    .find(|line| matches!(line, LogLine::Stage { stage: s, .. } if s == stage))
                {
                    *line_state = state;
                    *line_millis = Some(*millis);
                    line_summary.clone_from(summary);
                }
            }
            Event::Finished { achieved, millis } => {
                if let Achieved::Uploaded { version, .. } = achieved {
                    self.uploaded = Some(*version);
                }
                self.push(LogLine::End {
                    ok: true,
                    text: format!("{} ({})", achieved_text(achieved), seconds(*millis)),
                });
                self.run = RunState::Finished(achieved.clone());
            }
            Event::Stopped { reason, message, .. } => {
                self.push(LogLine::End { ok: false, text: message.clone() });
                self.run = RunState::Stopped(*reason);
                // After errors, show the first one.
                if *reason == StopReason::Errors
                    && let Some(first) = self
                        .lines
                        .iter()
                        .position(|line| matches!(line, LogLine::Diagnostic { report, .. } if report.is_error()))
                {
                    self.selected = first;
                    self.follow = false;
                }
            }
        }
    }

    /// Bytes per second of the upload so far.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let (sent, _, started) = self.upload?;
        let elapsed = now.duration_since(started).max(Duration::from_millis(1)).as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "a rate shown to one decimal")]
        Some(sent as f64 / elapsed)
    }
}

/// What a finished run achieved, in words.
pub fn achieved_text(achieved: &Achieved) -> String {
    match achieved {
        Achieved::Saved { archive } => format!("saved {archive}"),
        Achieved::Uploaded { version, created: true } => format!("uploaded as version {version}"),
        Achieved::Uploaded { version, created: false } => format!("version {version} holds this archive already"),
        Achieved::Validated { version } => {
            format!("dry run: version {version} could be published; nothing was published")
        }
        Achieved::Published { version, replaced: Some(old) } => {
            format!("published version {version}, replacing version {old}")
        }
        Achieved::Published { version, replaced: None } => format!("published version {version}"),
        Achieved::AlreadyPublished { version } => format!("version {version} is already published; nothing to do"),
    }
}

/// `0.42s`.
pub fn seconds(millis: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a duration shown to two decimals")]
    let seconds = millis as f64 / 1000.0;
    format!("{seconds:.2}s")
}
