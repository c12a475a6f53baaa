//! The typed events of a run: what the window, the plain log and `--json` all show.

use serde::Serialize;

/// The five stages of a 1-Click Publish, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The definition, Update Source Code and Compile.
    Verify,
    /// Packing the XIF.
    Save,
    /// Sending the XIF to the server, which stores it as a new version.
    Upload,
    /// The server checks permissions and the impact on consumers, and records the publication.
    Publish,
    /// The server runs the new version; the old one is drained.
    Deploy,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] = [Stage::Verify, Stage::Save, Stage::Upload, Stage::Publish, Stage::Deploy];

    /// Its name as shown: `Verify`.
    pub const fn title(self) -> &'static str {
        match self {
            Stage::Verify => "Verify",
            Stage::Save => "Save",
            Stage::Upload => "Upload",
            Stage::Publish => "Publish",
            Stage::Deploy => "Deploy",
        }
    }
}

/// The sub-steps of Verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Verifying the definition.
    Definition,
    /// Update Source Code.
    UpdateSource,
    /// Compiling with cargo.
    Compile,
}

impl Step {
    /// Its name as shown.
    pub const fn title(self) -> &'static str {
        match self {
            Step::Definition => "definition",
            Step::UpdateSource => "update source code",
            Step::Compile => "compile",
        }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageOutcome {
    /// It did its work.
    Done,
    /// Nothing needed doing (an unchanged archive, an identical version, the published version).
    Skipped,
    /// It failed; the run stops.
    Failed,
}

/// A diagnostic of Verify, located and rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiagnosticReport {
    /// `error` or `warning`.
    pub severity: String,
    /// The stable code, `XE0103`.
    pub code: String,
    /// The code's title from the catalogue.
    pub title: String,
    /// What is wrong.
    pub message: String,
    /// The file it is about.
    pub file: String,
    /// 1-based line, when it points somewhere.
    pub line: Option<usize>,
    /// 1-based column, when it points somewhere.
    pub column: Option<usize>,
    /// How to fix it.
    pub help: Option<String>,
    /// The rustc-style rendering with the source snippet, without colours.
    pub rendered: String,
}

impl DiagnosticReport {
    /// Whether it is an error (which stops the run).
    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

/// What a finished run achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Achieved {
    /// The XIF was saved.
    Saved {
        /// Where.
        archive: String,
    },
    /// The XIF is stored on the server as version `version`.
    Uploaded {
        /// The version's number on the server.
        version: i64,
        /// Whether this run created it (false: an identical version was there already).
        created: bool,
    },
    /// Everything up to a validate-only publication passed; nothing was published.
    Validated {
        /// The uploaded version that could be published.
        version: i64,
    },
    /// The version is published and running.
    Published {
        /// The version's number on the server.
        version: i64,
        /// The version it replaced.
        replaced: Option<i64>,
    },
    /// The version was published already; nothing changed.
    AlreadyPublished {
        /// The version's number on the server.
        version: i64,
    },
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Verify reported errors.
    Errors,
    /// The server refused: a permission, a conflict with another publication, a stale version,
    /// an archive or deploy it would not take.
    Refused,
    /// The version is published, but not every live node of the farm runs it yet: the nodes
    /// behind are named, with why.
    NotEverywhere,
    /// The server could not be reached, or answered something unreadable.
    Network,
    /// Cancelled (Ctrl-C, or Close in the window).
    Cancelled,
    /// Something on this machine failed: a file could not be read or written.
    Local,
}

/// One event of a run. Serialized with an `event` tag: one JSON object per line with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started.
    Started {
        /// The project directory.
        project: String,
        /// The server, when the run goes beyond Save.
        server: Option<String>,
        /// The stages this run goes through.
        stages: Vec<Stage>,
    },
    /// A stage started.
    StageStarted {
        /// Which.
        stage: Stage,
    },
    /// A sub-step of Verify started.
    Step {
        /// Which.
        step: Step,
    },
    /// Compile is building a crate.
    Compiling {
        /// The crate's name.
        #[serde(rename = "crate")]
        krate: String,
    },
    /// An error or warning.
    Diagnostic {
        /// The stage that raised it.
        stage: Stage,
        /// What it says.
        #[serde(flatten)]
        diagnostic: DiagnosticReport,
    },
    /// Bytes sent during Upload.
    Progress {
        /// Sent so far.
        sent: u64,
        /// The archive's size.
        total: u64,
    },
    /// How the publication affects the modules that use the extension.
    Impact {
        /// The stage that reported it (Publish).
        stage: Stage,
        /// Each consumer with its classification and the elements that changed.
        consumers: Vec<xif_api::ConsumerImpact>,
    },
    /// Something worth saying that is neither a diagnostic nor a result.
    Note {
        /// The stage it belongs to.
        stage: Stage,
        /// The text.
        message: String,
    },
    /// A stage ended.
    StageFinished {
        /// Which.
        stage: Stage,
        /// How.
        outcome: StageOutcome,
        /// What it did, in a few words.
        summary: String,
        /// How long it took.
        millis: u64,
    },
    /// The run did everything it was asked to.
    Finished {
        /// What it achieved.
        achieved: Achieved,
        /// How long the run took.
        millis: u64,
    },
    /// The run stopped before the end.
    Stopped {
        /// The stage it stopped in, if it had started one.
        stage: Option<Stage>,
        /// Why, as a kind.
        reason: StopReason,
        /// Why, in words: what was wrong and how to go on.
        message: String,
        /// How long the run took.
        millis: u64,
    },
}
