//! The integration log (step 11): every call of an action and every record operation, with
//! when, who (token's module or user), what, how long, and the outcome. Kept 14 days by default.
//!
//! Recording must stay cheap on the call path: [`CallLog::record`] never waits on the database.
//! It puts the entry on a bounded channel (a `try_send`, no lock held across a database call);
//! one writer gathers what arrives for up to `GATHER` (200 ms), looking every `STEP` (10 ms), at
//! most `BATCH` (4,096) entries, and inserts them in one transaction. The writer is a thread of
//! its own, not a task: building a batch's statement and its parameters took several percent of
//! the runtime's one worker on a loaded server, which the calls need (the insert itself runs on
//! the runtime's handle, with the store's connections). When the channel is full (the database slower than the calls for a while), the
//! entry is dropped and counted in `xif_call_log_dropped_total`, with a warning at most every 10
//! seconds: the calls themselves never slow down for their log. A sweeper removes the entries
//! older than the retention every `SWEEP_EVERY` (10 minutes). At shutdown, [`CallLog::flush`]
//! writes what still waits before the metadata store closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use compact_str::CompactString;

use crate::store::MetadataStore;

/// One entry of the integration log. Its names are [`CompactString`]s, kept inline up to 24
/// bytes: an entry is made for every call, and allocating and freeing three or four strings for
/// each (freed a thousand at a time, after the insert) cost a loaded server's one worker more
/// than the rest of the recording.
#[derive(Debug, Clone)]
pub struct CallEntry {
    /// When the call arrived.
    pub at: SystemTime,
    /// The extension.
    pub extension: CompactString,
    /// The module the token belongs to, or `None` for a user's own token.
    pub module: Option<CompactString>,
    /// The user who owns the token.
    pub user: CompactString,
    /// The id of the token the call came with.
    pub token_id: Option<i64>,
    /// `action` or `record` operation.
    pub kind: CallKind,
    /// The action's name, or `Entity.operation` (`Customer.read`).
    pub operation: CompactString,
    /// How long it took.
    pub duration: Duration,
    /// `None` when it succeeded, else the API error code (`invalid_input`, `record_not_found`); for
    /// an action that failed, with the action's own code after a colon (`action_failed:card_declined`).
    pub error: Option<CompactString>,
}

/// The longest action code kept in the log, in characters.
const MAX_ACTION_CODE: usize = 64;

/// An action's own failure code as the log keeps it: the extension chose it, so only its first
/// `MAX_ACTION_CODE` (64) letters, digits, `_`, `-` and `.` are kept (anything else becomes `_`), so
/// that the entry stays short and one word in `xif calls`.
pub fn action_code(code: &str) -> String {
    code.chars()
        .take(MAX_ACTION_CODE)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
        .collect()
}

/// What was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// An action.
    Action,
    /// A record operation on an entity.
    Record,
}

impl CallKind {
    /// The kind as stored and answered: `action` or `record`.
    pub const fn name(self) -> &'static str {
        match self {
            CallKind::Action => "action",
            CallKind::Record => "record",
        }
    }
}

/// How many entries wait for the writer at most; beyond, entries are dropped (and counted).
const CAPACITY: usize = 16_384;

/// The most entries inserted in one transaction.
const BATCH: usize = 4_096;

/// How long the writer waits, after an entry arrives, for others to join its transaction: a few
/// large transactions a second under load, rather than one (and its sync to disk) per handful
/// of calls. Entries reach the log within this time (plus the insert's).
const GATHER: Duration = Duration::from_millis(200);

/// How often the writer looks at the channel while it gathers: it takes what arrived in steps
/// rather than waking for each entry (a wake-up and a timer per call took several percent of a
/// loaded server's one worker). At this step the channel ([`CAPACITY`]) holds 1.6 million calls
/// a second.
const STEP: Duration = Duration::from_millis(10);

/// How often entries older than the retention are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The shortest time between two warnings about dropped entries.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A warning said at most every [`WARN_EVERY`] (10 s), whichever thread would say it: for what
/// may happen at the rate of requests (entries dropped, a damaged segment read).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// When it was last said, in seconds since the epoch.
    said_at: AtomicI64,
}

impl Throttle {
    pub(crate) const fn new() -> Self {
        Throttle { said_at: AtomicI64::new(0) }
    }

    /// Whether the warning is to be said now (and then not again for [`WARN_EVERY`]).
    pub(crate) fn due(&self) -> bool {
        let now = chrono::Utc::now().timestamp();
        let last = self.said_at.load(Ordering::Relaxed);
        let wait = i64::try_from(WARN_EVERY.as_secs()).unwrap_or(i64::MAX);
        now - last >= wait && self.said_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// The integration log: a channel to its writer, or nothing when it is turned off.
#[derive(Debug, Default)]
pub struct CallLog {
    sender: Option<tokio::sync::mpsc::Sender<Message>>,
    /// The warning about dropped entries.
    warned: Throttle,
    /// How long entries are kept; zero when the log is off.
    retention: Duration,
    /// Told by the writer when it ends, awaited by [`CallLog::flush`].
    ended: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

/// What the writer receives.
#[derive(Debug)]
enum Message {
    Entry(CallEntry),
    /// Write what waits and end (at shutdown).
    Stop,
}

impl CallLog {
    /// A log written to `metadata` by a thread of its own, as served by node `node`, keeping
    /// entries `days` days (and sweeping older ones); `days` 0 turns the log off: nothing is
    /// recorded, and nothing already recorded is swept. Must run in a tokio runtime, whose
    /// handle runs the inserts.
    ///
    /// # Errors
    ///
    /// When the writer's thread cannot be started.
    pub fn start(
        metadata: Arc<dyn MetadataStore>,
        days: u32,
        node: impl Fn() -> String + Send + 'static,
    ) -> std::io::Result<Self> {
        if days == 0 {
            return Ok(Self::default());
        }
        let retention = Duration::from_secs(u64::from(days) * 86_400);
        let (sender, receiver) = tokio::sync::mpsc::channel(CAPACITY);
        let (ended, on_end) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let store = Arc::clone(&metadata);
        std::thread::Builder::new().name("xif-call-log".into()).spawn(move || {
            write(&runtime, store.as_ref(), receiver, &node);
            ended.send(()).ok();
        })?;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                if let Err(error) = sweep(metadata.as_ref(), retention).await {
                    tracing::warn!(%error, "cannot remove old entries of the integration log");
                }
            }
        });
        Ok(Self {
            sender: Some(sender),
            warned: Throttle::new(),
            retention,
            ended: std::sync::Mutex::new(Some(on_end)),
        })
    }

    /// Writes the entries still waiting and stops the writer, within 5 seconds: at shutdown,
    /// before the metadata store closes, so that the last calls are not lost.
    pub async fn flush(&self) {
        let Some(sender) = &self.sender else { return };
        let ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some(ended) = ended else { return };
        let stopped = async {
            // Behind the entries already waiting; the writer ends after writing them.
            if sender.send(Message::Stop).await.is_ok() {
                ended.await.ok();
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), stopped).await.is_err() {
            tracing::warn!("the integration log's last entries were not written within 5 seconds");
        }
    }

    /// Whether calls are recorded.
    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// How long entries are kept; zero when the log is off.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Records `entry`, without waiting: when the writer is behind by `CAPACITY` (16,384) entries, the
    /// entry is dropped and counted.
    pub fn record(&self, entry: CallEntry) {
        let Some(sender) = &self.sender else { return };
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = sender.try_send(Message::Entry(entry)) {
            metrics::counter!("xif_call_log_dropped_total").increment(1);
            if self.warned.due() {
                tracing::warn!(
                    "the integration log cannot keep up with the calls: entries are dropped (counted in \
                     xif_call_log_dropped_total); the database is slow or unreachable"
                );
            }
        }
    }
}

/// Whether a call to `extension` that ended with `error` (if it did) belongs in the log: every
/// call to an extension that exists, published or not, running or not; none to a name no
/// extension has, so that calls to made-up names (by any token, even one without permissions)
/// cannot fill the log. The running versions are asked first (no database round trip on the
/// hot path); the metadata is read only for a failed call to an extension that does not run.
/// When the metadata cannot be read, the call is recorded.
pub async fn worth_recording(state: &crate::AppState, extension: &str, error: Option<&crate::error::ApiError>) -> bool {
    if error.is_none() || state.runtime.running_version(extension).await.is_some() {
        return true;
    }
    !matches!(state.metadata.extension(extension).await, Ok(None))
}

/// Removes the entries older than `retention`; returns how many.
pub async fn sweep(metadata: &dyn MetadataStore, retention: Duration) -> Result<u64, crate::store::StoreError> {
    let before = SystemTime::now().checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
    let removed = metadata.sweep_calls(crate::store::micros(before)).await?;
    if removed > 0 {
        tracing::debug!(removed, "old entries of the integration log removed");
    }
    Ok(removed)
}

/// The writer, on its own thread: waits for an entry, takes every other one that arrives for
/// [`GATHER`], looking every [`STEP`] (up to [`BATCH`]), and inserts them together on
/// `runtime`. A batch that cannot be written (the database down) is dropped after a warning,
/// counted: the log never holds up the calls, nor grows without bound. Ends when told to stop
/// (after writing what waits) or when the log is gone.
fn write(
    runtime: &tokio::runtime::Handle,
    metadata: &dyn MetadataStore,
    mut receiver: tokio::sync::mpsc::Receiver<Message>,
    node: &dyn Fn() -> String,
) {
    /// Why the writer ends.
    enum End {
        /// Told to (`CallLog::flush`).
        Stop,
        /// The log is gone without a flush.
        Gone,
    }
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut end = match receiver.blocking_recv() {
            Some(Message::Entry(entry)) => {
                batch.push(entry);
                None
            }
            Some(Message::Stop) => Some(End::Stop),
            None => Some(End::Gone),
        };
        let until = std::time::Instant::now() + GATHER;
        while end.is_none() {
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(Message::Entry(entry)) => batch.push(entry),
                    Ok(Message::Stop) => end = Some(End::Stop),
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => end = Some(End::Gone),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                }
                if end.is_some() {
                    break;
                }
            }
            let now = std::time::Instant::now();
            if end.is_some() || batch.len() >= BATCH || now >= until {
                break;
            }
            std::thread::sleep(STEP.min(until - now));
        }
        match end {
            None => runtime.block_on(insert(metadata, &mut batch, &node())),
            Some(End::Stop) => {
                runtime.block_on(insert(metadata, &mut batch, &node()));
                // Entries recorded after the stop, while the server finished its last calls.
                while let Ok(Message::Entry(entry)) = receiver.try_recv() {
                    batch.push(entry);
                    if batch.len() == BATCH {
                        runtime.block_on(insert(metadata, &mut batch, &node()));
                    }
                }
                runtime.block_on(insert(metadata, &mut batch, &node()));
                return;
            }
            // Dropped without a flush: the runtime that would run the insert is likely ending
            // with it (a timer on a runtime shut down panics), so what waits is let go, as a task
            // of that runtime would have been, and counted.
            Some(End::Gone) => {
                let mut lost = batch.len();
                while let Ok(message) = receiver.try_recv() {
                    lost += usize::from(matches!(message, Message::Entry(_)));
                }
                if lost > 0 {
                    metrics::counter!("xif_call_log_dropped_total").increment(lost as u64);
                    tracing::debug!(lost, "the integration log was dropped without a flush; its last entries are lost");
                }
                return;
            }
        }
    }
}

/// Inserts `batch` and empties it; a batch that cannot be written is dropped, counted.
async fn insert(metadata: &dyn MetadataStore, batch: &mut Vec<CallEntry>, node: &str) {
    if batch.is_empty() {
        return;
    }
    if let Err(error) = metadata.insert_calls(batch, node).await {
        metrics::counter!("xif_call_log_dropped_total").increment(batch.len() as u64);
        tracing::warn!(%error, entries = batch.len(), "cannot write entries of the integration log; they are lost");
    } else {
        metrics::counter!("xif_call_log_written_total").increment(batch.len() as u64);
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(operation: &str) -> CallEntry {
        CallEntry {
            at: SystemTime::now(),
            extension: "Echo".into(),
            module: None,
            user: "admin".into(),
            token_id: None,
            kind: CallKind::Action,
            operation: operation.into(),
            duration: Duration::from_micros(10),
            error: None,
        }
    }

    /// A writer that does not keep up never holds a call: the entries beyond the channel's room
    /// are dropped at once, and those within it arrive in order.
    #[tokio::test]
    async fn recording_never_waits_and_drops_what_the_channel_cannot_hold() {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
        let log = CallLog { sender: Some(sender), retention: Duration::from_secs(60), ..CallLog::default() };
        let started = std::time::Instant::now();
        for index in 0..1_000 {
            log.record(entry(&format!("Call{index}")));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "recording waited");
        let mut received = Vec::new();
        receiver.recv_many(&mut received, 10).await;
        let operations: Vec<&str> = received
            .iter()
            .filter_map(|message| match message {
                Message::Entry(entry) => Some(entry.operation.as_str()),
                Message::Stop => None,
            })
            .collect();
        assert_eq!(operations, ["Call0", "Call1"]);
        assert!(log.warned.said_at.load(Ordering::Relaxed) > 0, "the drop was warned about");
    }

    #[test]
    fn a_log_of_zero_days_is_off_and_records_nothing() {
        let log = CallLog::default();
        assert!(!log.enabled());
        log.record(entry("Say"));
        assert_eq!(log.retention(), Duration::ZERO);
    }
}
