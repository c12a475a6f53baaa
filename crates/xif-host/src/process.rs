//! One running extension process and the calls to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use xif_protocol::{
    ActionFailure, ActionSignature, CHANNEL_ENV, ExtensionMessage, FrameError, Hello, HostMessage, PROTOCOL_VERSION,
    TOKEN_ENV, Values, decode, encode, frame_length,
};

use crate::Log;
use crate::database::DatabaseAccess;
use crate::isolation::{Isolation, LAUNCH_SUBCOMMAND, LaunchPlan, kill_tree};
use crate::outputs::{Outputs, ReturnFrame};
use crate::signature::signature_mismatches;

/// How to start an extension.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The compiled extension.
    pub binary: PathBuf,
    /// Where it runs.
    pub working_directory: PathBuf,
    /// The extension's name and version as the definition declares them.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The signatures the binary must announce, from the definition.
    pub signatures: Vec<ActionSignature>,
    /// How long the extension has to connect and say hello.
    pub handshake_timeout: Duration,
    /// How long one call may take.
    pub call_timeout: Duration,
    /// Bytes of stdout and stderr kept.
    pub log_capacity: usize,
    /// Limits on the process's resources.
    pub limits: ResourceLimits,
    /// Start the process with an empty environment but for the channel and a minimal `PATH`
    /// and `LANG`, rather than the host's.
    pub clean_environment: bool,
    /// Confine the process through the launcher; `None` runs the binary directly, with the
    /// host's rights (as `xif call` does on the author's own machine).
    pub isolation: Option<Isolation>,
    /// Disk space its working directory and temporary directory may use together, in bytes:
    /// checked every second, and the process is killed past it (no per-directory quota exists
    /// without root and a file system of its own; the file size limit bounds what one write
    /// adds between checks).
    pub disk_bytes: Option<u64>,
    /// Where the extension's queries on its logical databases run, and their limits.
    pub databases: DatabaseAccess,
}

/// Limits on an extension process's resources; `None` leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceLimits {
    /// Address space, in bytes: allocating beyond it fails, and the process ends.
    pub memory_bytes: Option<u64>,
    /// CPU time, in seconds: past it the process is killed.
    pub cpu_seconds: Option<u64>,
    /// Open files at once.
    pub open_files: Option<u64>,
    /// The size of any one file it writes, in bytes: a write beyond it fails (`EFBIG`, after
    /// `SIGXFSZ`, which ends a process that does not handle it).
    pub file_size_bytes: Option<u64>,
    /// Processes and threads at once; applied only under a user of the extension's own
    /// ([`Isolation::user`]), because the kernel counts them per user.
    pub processes: Option<u64>,
}

impl StartOptions {
    /// Options with the defaults: 10 s to start, 30 s a call, 256 KiB of log.
    pub fn new(binary: PathBuf, working_directory: PathBuf, name: String, version: String) -> Self {
        Self {
            binary,
            working_directory,
            name,
            version,
            signatures: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            log_capacity: 256 * 1024,
            limits: ResourceLimits::default(),
            clean_environment: false,
            isolation: None,
            disk_bytes: None,
            databases: DatabaseAccess::none(),
        }
    }
}

/// Why an extension could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process's resource limits could not be set.
    #[error("cannot limit the resources of the extension process: {0}")]
    Limits(std::io::Error),
    /// The extension's directories could not be prepared for its user.
    #[error("cannot prepare `{path}` for the extension's user: {source}")]
    Prepare {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The binary could not be run.
    #[error("cannot run extension binary `{path}`: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The host could not set up the channel.
    #[error("cannot set up the channel to the extension: {0}")]
    Channel(std::io::Error),
    /// The process ended before saying hello.
    #[error("the extension exited before its handshake ({status}); its log ends with:\n{log}")]
    ExitedBeforeHandshake {
        /// How it ended.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// The process did not say hello in time.
    #[error("the extension did not complete its handshake within {0:?}; it was stopped")]
    HandshakeTimeout(Duration),
    /// The process speaks another protocol version.
    #[error(
        "the extension speaks protocol version {extension}, this host speaks version {host}; rebuild it against this version of xif-sdk"
    )]
    ProtocolMismatch {
        /// The extension's version.
        extension: u32,
        /// The host's.
        host: u32,
    },
    /// The first frame was not a valid hello, or the secret was wrong.
    #[error("the extension broke the protocol during its handshake: {0}")]
    Protocol(String),
    /// The binary is not the one the definition describes.
    #[error("the extension binary does not match its definition: {}; rebuild it", .0.join("; "))]
    SignatureMismatch(Vec<String>),
}

/// Why a call did not return outputs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The action returned its own error.
    #[error("action `{action}` failed: {} ({})", .failure.message, .failure.code)]
    Action {
        /// The action.
        action: String,
        /// Its error.
        failure: ActionFailure,
    },
    /// The action did not finish in time.
    #[error("action `{action}` did not finish within {limit:?}")]
    Timeout {
        /// The action.
        action: String,
        /// The time limit.
        limit: Duration,
    },
    /// The process ended while the call was in flight, or before it.
    #[error("the extension process ended ({status}); its log ends with:\n{log}")]
    Crashed {
        /// How it ended.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The extension wrote something that is not a protocol message.
    #[error("the extension broke the protocol: {0}; it was stopped")]
    Protocol(String),
}

type Reply = Result<Outputs, CallError>;

#[derive(Default)]
struct Pending {
    calls: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the channel is gone: every later call fails with it.
    closed: Option<CallError>,
}

/// Tells waiters when the process has ended.
type Ended = tokio::sync::watch::Sender<bool>;

/// A running extension that passed its handshake.
pub struct ExtensionProcess {
    hello: Hello,
    /// Frames for the writer task, which sends what has queued up in one write.
    frames: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    child: Arc<tokio::sync::Mutex<Child>>,
    log: Arc<Log>,
    call_timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
    ended: tokio::sync::watch::Receiver<bool>,
    tree: Tree,
    // Holds the socket's directory until the process is dropped.
    _channel_directory: tempfile::TempDir,
    // Holds its private temporary directory, removed with the process.
    _temporary: tempfile::TempDir,
}

/// An extension's process tree: its process group and, under isolation, its own user.
#[derive(Debug, Clone)]
struct Tree {
    group: Option<u32>,
    user: Option<u32>,
    /// Killed once its process had ended: the group's id is then free for the system to give
    /// to another process, so it is not signalled again.
    killed: Arc<std::sync::atomic::AtomicBool>,
    /// Held while the tree is being killed, so that a second killer waits for the first.
    killing: Arc<tokio::sync::Mutex<()>>,
}

impl Tree {
    fn kill(&self) {
        if let Some(group) = self.group {
            kill_tree(group, self.user);
        }
        self.killed.store(true, Ordering::Release);
    }

    /// Kills the tree unless that was done already, on a blocking thread: finding a user's
    /// processes reads `/proc`, which must not hold up the runtime's workers (a server may have
    /// only one), and is done once (the reader of a crashed process and `stop` both ask). Returns
    /// once the tree is dead, whoever killed it.
    async fn kill_once(&self) {
        let _killing = self.killing.lock().await;
        if self.killed.load(Ordering::Acquire) {
            return;
        }
        let tree = self.clone();
        let (done, killed) = oneshot::channel();
        // A thread of its own at the lowest priority: the scan of `/proc` then takes only the
        // time that serving, and the version that replaces this one, leave over.
        let spawned = std::thread::Builder::new().name("xif-kill-tree".into()).spawn(move || {
            // Failing to lower its priority changes only how fast the scan goes.
            rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19).ok();
            tree.kill();
            // The waiter may be gone (the runtime shutting down); the tree is dead regardless.
            done.send(()).ok();
        });
        match spawned {
            Ok(_) => {
                if killed.await.is_err() {
                    self.kill();
                }
            }
            // No thread to be had: kill here.
            Err(_) => self.kill(),
        }
    }
}

impl Drop for ExtensionProcess {
    /// Whatever the extension started goes with it, on every path.
    fn drop(&mut self) {
        if !self.tree.killed.load(Ordering::Acquire) {
            self.tree.kill();
        }
    }
}

impl ExtensionProcess {
    /// Starts the extension and waits for its handshake.
    pub async fn start(options: StartOptions) -> Result<Self, StartError> {
        let directory = tempfile::Builder::new().prefix("xif-channel-").tempdir().map_err(StartError::Channel)?;
        let socket = directory.path().join("channel");
        let listener = UnixListener::bind(&socket).map_err(StartError::Channel)?;
        let token = new_token().map_err(StartError::Channel)?;
        // A temporary directory of its own, which goes with the process: under isolation it is
        // the only place besides its working directory where it may write.
        let temporary = tempfile::Builder::new().prefix("xif-tmp-").tempdir().map_err(StartError::Channel)?;

        let mut command = match &options.isolation {
            None => Command::new(&options.binary),
            Some(isolation) => {
                if let Some(user) = isolation.user {
                    // Its user must be able to connect to the channel and write in its own
                    // directories; everything else stays the host's.
                    for path in [directory.path(), &socket, temporary.path(), &options.working_directory] {
                        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                            .map_err(|source| StartError::Prepare { path: path.to_owned(), source })?;
                    }
                }
                let plan = LaunchPlan {
                    program: options.binary.clone(),
                    limits: options.limits,
                    user: isolation.user,
                    writable: vec![
                        options.working_directory.clone(),
                        temporary.path().to_owned(),
                        directory.path().to_owned(),
                    ],
                    network: isolation.network,
                    require_landlock: isolation.require_landlock,
                };
                let plan = serde_json::to_string(&plan).map_err(|error| StartError::Channel(error.into()))?;
                let mut command = Command::new(&isolation.launcher);
                command.arg(LAUNCH_SUBCOMMAND).arg(plan);
                command
            }
        };
        if options.clean_environment {
            command.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").env("LANG", "C.UTF-8");
        }
        command
            .current_dir(&options.working_directory)
            .env(CHANNEL_ENV, &socket)
            .env(TOKEN_ENV, &token)
            .env("TMPDIR", temporary.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that stopping it kills whatever it started.
            .process_group(0)
            .kill_on_drop(true);
        let spawned = match &options.isolation {
            Some(isolation) => &isolation.launcher,
            None => &options.binary,
        };
        let mut child =
            spawn(&mut command).await.map_err(|source| StartError::Spawn { path: spawned.clone(), source })?;
        let tree = Tree {
            group: child.id(),
            user: options.isolation.as_ref().and_then(|isolation| isolation.user).map(|user| user.uid),
            killed: Arc::default(),
            killing: Arc::default(),
        };
        if options.isolation.is_none() {
            // Applied to the running child by its pid: setting them between fork and exec would
            // take `unsafe` code, and the child can do nothing of note before its handshake.
            // The launcher sets them on itself instead.
            if let Err(error) = apply_limits(child.id(), options.limits) {
                child.kill().await.ok();
                tree.kill();
                return Err(StartError::Limits(error));
            }
        }
        let log = Arc::new(Log::new(options.log_capacity));
        if let Some(stdout) = child.stdout.take() {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.drain(stdout).await });
        }
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.drain(stderr).await });
        }

        let handshake = async {
            let (stream, _) = listener.accept().await.map_err(StartError::Channel)?;
            let (mut reader, mut writer) = stream.into_split();
            let payload = read_payload(&mut reader).await.map_err(|error| StartError::Protocol(error.to_string()))?;
            let hello = match decode::<ExtensionMessage>(&payload) {
                Ok(ExtensionMessage::Hello(hello)) => hello,
                Ok(other) => return Err(StartError::Protocol(format!("expected a hello, got {other:?}"))),
                Err(error) => {
                    // A hello from another protocol version may not parse: report the version.
                    let version = serde_json::from_slice::<serde_json::Value>(&payload)
                        .ok()
                        .and_then(|value| value.get("protocol").and_then(serde_json::Value::as_u64));
                    return Err(match version {
                        Some(version) if version != u64::from(PROTOCOL_VERSION) => StartError::ProtocolMismatch {
                            extension: u32::try_from(version).unwrap_or(u32::MAX),
                            host: PROTOCOL_VERSION,
                        },
                        _ => StartError::Protocol(error.to_string()),
                    });
                }
            };
            let refusal = if hello.protocol != PROTOCOL_VERSION {
                Some(StartError::ProtocolMismatch { extension: hello.protocol, host: PROTOCOL_VERSION })
            } else if hello.token != token {
                Some(StartError::Protocol("the hello did not carry the channel's secret".into()))
            } else if hello.extension != options.name || hello.version != options.version {
                Some(StartError::SignatureMismatch(vec![format!(
                    "the binary is `{}` {}, the definition `{}` {}",
                    hello.extension, hello.version, options.name, options.version
                )]))
            } else {
                let mismatches = signature_mismatches(&options.signatures, &hello.actions);
                (!mismatches.is_empty()).then_some(StartError::SignatureMismatch(mismatches))
            };
            if let Some(error) = refusal {
                // The process is stopped right after; whether it reads the refusal is its
                // business, so a failed write changes nothing.
                writer.write_all(&encode(&HostMessage::Refuse { reason: error.to_string() })).await.ok();
                return Err(error);
            }
            writer
                .write_all(&encode(&HostMessage::Welcome { protocol: PROTOCOL_VERSION }))
                .await
                .map_err(StartError::Channel)?;
            Ok((hello, reader, writer))
        };

        let outcome = tokio::select! {
            outcome = tokio::time::timeout(options.handshake_timeout, handshake) => match outcome {
                Ok(outcome) => outcome,
                Err(_) => Err(StartError::HandshakeTimeout(options.handshake_timeout)),
            },
            status = child.wait() => Err(match status {
                Ok(status) => {
                    // Let the log drainers catch the last words.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    StartError::ExitedBeforeHandshake { status, log: log.tail(20) }
                }
                Err(error) => StartError::Channel(error),
            }),
        };
        let (hello, reader, writer) = match outcome {
            Ok(parts) => parts,
            Err(error) => {
                // Stopping a process that may already be gone: nothing to report either way.
                child.kill().await.ok();
                tree.kill();
                return Err(error);
            }
        };

        if let Some(limit) = options.disk_bytes {
            let directories = vec![options.working_directory.clone(), temporary.path().to_owned()];
            tokio::spawn(watch_disk(directories, limit, tree.clone(), Arc::clone(&log)));
        }
        let pending = Arc::new(Mutex::new(Pending::default()));
        let child = Arc::new(tokio::sync::Mutex::new(child));
        let (ended_sender, ended) = tokio::sync::watch::channel(false);
        let (frames, queued) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_frames(writer, queued));
        let queries = Queries { access: Arc::new(options.databases.clone()), frames: frames.downgrade() };
        let reader = tokio::spawn(read_replies(
            BufReader::with_capacity(64 * 1024, reader),
            queries,
            Arc::clone(&pending),
            Arc::clone(&child),
            Arc::clone(&log),
            ended_sender,
            tree.clone(),
        ));
        Ok(Self {
            hello,
            frames,
            pending,
            next_id: AtomicU64::new(1),
            child,
            log,
            call_timeout: options.call_timeout,
            reader,
            ended,
            tree,
            _channel_directory: directory,
            _temporary: temporary,
        })
    }

    /// What the extension said of itself.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The extension's log (its stdout and stderr).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Why the process is gone, once it is: it crashed, exited, or broke the protocol.
    pub fn ended(&self) -> Option<CallError> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).closed.clone()
    }

    /// Waits until the process has ended, and says why.
    pub async fn wait_ended(&self) -> CallError {
        let mut ended = self.ended.clone();
        // The sender lives as long as the reader task, which sets the flag before it goes.
        ended.wait_for(|ended| *ended).await.ok();
        self.ended().unwrap_or_else(|| self.closed_error())
    }

    /// Calls `action` with `inputs` and waits for its outputs, at most the call time limit.
    pub async fn call(&self, action: &str, inputs: Values) -> Result<Values, CallError> {
        self.call_within(action, inputs, self.call_timeout).await
    }

    /// Calls `action` with `inputs` and waits for its outputs, at most `limit`.
    pub async fn call_within(&self, action: &str, inputs: Values, limit: Duration) -> Result<Values, CallError> {
        self.call_outputs_within(action, inputs, limit).await.map(|outputs| outputs.values())
    }

    /// Calls `action` with `inputs` and waits for its outputs, at most `limit`; the outputs stay
    /// the JSON text the extension wrote (checked as [`Outputs`] says), for a caller that passes
    /// them on.
    pub async fn call_outputs_within(
        &self,
        action: &str,
        inputs: Values,
        limit: Duration,
    ) -> Result<Outputs, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(closed) = &pending.closed {
                return Err(closed.clone());
            }
            pending.calls.insert(id, sender);
        }
        let frame = encode(&HostMessage::Call { id, action: action.to_owned(), inputs });
        if self.frames.send(frame).is_err() {
            // The writer found the channel broken; the reader task sees the same and fails
            // this call with the reason.
        }
        match tokio::time::timeout(limit, receiver).await {
            Ok(Ok(reply)) => reply.map_err(|error| match error {
                CallError::Action { failure, .. } => CallError::Action { action: action.to_owned(), failure },
                other => other,
            }),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                self.pending.lock().unwrap_or_else(PoisonError::into_inner).calls.remove(&id);
                Err(CallError::Timeout { action: action.to_owned(), limit })
            }
        }
    }

    fn closed_error(&self) -> CallError {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending
            .closed
            .clone()
            .unwrap_or_else(|| CallError::Crashed { status: "unknown".into(), log: self.log.tail(20) })
    }

    /// Asks the extension to finish its calls and exit; kills it if it has not after `grace`.
    pub async fn stop(&self, grace: Duration) -> std::io::Result<ExitStatus> {
        if self.frames.send(encode(&HostMessage::Shutdown)).is_err() {
            // Already gone: waiting below returns its status.
        }
        let mut child = self.child.lock().await;
        let status = match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                child.kill().await?;
                child.wait().await
            }
        };
        // What it started may outlive it: its group (and its user) go now.
        self.tree.kill_once().await;
        self.reader.abort();
        status
    }
}

/// Spawns `command`, retrying for a moment while the binary is "busy": a binary written just
/// before (as a deploy does) cannot be run while any process holds it open for writing, and a
/// process another thread forks at the wrong moment holds our write descriptor until its own
/// exec closes it. The wait is short and bounded.
async fn spawn(command: &mut Command) -> std::io::Result<Child> {
    const TEXT_FILE_BUSY: i32 = 26;
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(TEXT_FILE_BUSY) && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            outcome => return outcome,
        }
    }
}

fn apply_limits(pid: Option<u32>, limits: ResourceLimits) -> std::io::Result<()> {
    let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) else { return Ok(()) };
    let set = |resource: rlimit::Resource, value: Option<u64>| match value {
        Some(value) => rlimit::prlimit(pid, resource, Some((value, value)), None),
        None => Ok(()),
    };
    set(rlimit::Resource::AS, limits.memory_bytes)?;
    set(rlimit::Resource::CPU, limits.cpu_seconds)?;
    set(rlimit::Resource::NOFILE, limits.open_files)
}

/// Every second until the process tree is killed: when `directories` use more than `limit`
/// bytes of disk, says so in the log and kills the tree (the host then sees the process end).
async fn watch_disk(directories: Vec<PathBuf>, limit: u64, tree: Tree, log: Arc<Log>) {
    while !tree.killed.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let measured = directories.clone();
        let Ok(used) =
            tokio::task::spawn_blocking(move || measured.iter().map(|path| disk_usage(path)).sum::<u64>()).await
        else {
            return;
        };
        if used > limit && !tree.killed.load(Ordering::Acquire) {
            log.append(
                format!(
                    "xif: the extension uses {} MiB of disk, over its limit of {} MiB; it was stopped\n",
                    used >> 20,
                    limit >> 20
                )
                .as_bytes(),
            );
            tree.kill_once().await;
            return;
        }
    }
}

/// The disk space the files under `path` take (blocks allocated, so sparse files count for
/// what they hold); links are not followed, and what cannot be read counts as nothing. A loop
/// rather than recursion: the extension decides how deep its directories go.
fn disk_usage(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let mut used = 0;
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(metadata) = std::fs::symlink_metadata(&path) else { continue };
        used += metadata.blocks() * 512;
        if metadata.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            pending.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
        }
    }
    used
}

fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| std::io::Error::other(error.to_string()))?;
    Ok(hex::encode(bytes))
}

async fn read_payload(reader: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0; 4];
    reader.read_exact(&mut prefix).await?;
    let mut payload = vec![0; frame_length(prefix)?];
    reader.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Sends queued frames until the process is dropped or the channel breaks. Frames queued while
/// a write was under way go out together in the next one: under load, one system call (and one
/// wake-up of the extension) carries many calls.
async fn write_frames(mut writer: OwnedWriteHalf, mut frames: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    const BATCH: usize = 256 * 1024;
    while let Some(mut batch) = frames.recv().await {
        // Woken by a handler's frame, this task runs next (tokio's LIFO slot), before the other
        // handlers ready on the same worker have queued theirs: one write, and one wake-up of
        // the extension, per call. Yielding once lets them queue first, so that calls arriving
        // together go out in one write; alone, the task is polled again at once.
        tokio::task::yield_now().await;
        while batch.len() < BATCH {
            match frames.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            // The reader task sees the broken channel and reports why.
            return;
        }
    }
}

/// What the reader needs to answer the extension's queries.
struct Queries {
    access: Arc<DatabaseAccess>,
    /// The writer's queue; weak, so that the writer stops once the process is dropped.
    frames: tokio::sync::mpsc::WeakUnboundedSender<Vec<u8>>,
}

impl Queries {
    /// Answers query `id` of call `call` on a task of its own; refuses it at once when the call
    /// is not in flight.
    fn start(&self, pending: &Mutex<Pending>, query: (u64, u64, String, String, Vec<serde_json::Value>)) {
        let (id, call, database, sql, params) = query;
        let Some(frames) = self.frames.upgrade() else { return };
        let in_flight = pending.lock().unwrap_or_else(PoisonError::into_inner).calls.contains_key(&call);
        if !in_flight {
            let error = ActionFailure {
                code: "no_call".into(),
                message: format!(
                    "a query on logical database `{database}` belongs to call {call}, which is not in progress: a \
                     `Database` works only until its call returns"
                ),
            };
            // A failed send means the channel is gone; the reader sees it.
            frames.send(encode(&HostMessage::QueryFailed { id, error })).ok();
            return;
        }
        let access = Arc::clone(&self.access);
        tokio::spawn(async move {
            let frame = crate::database::answer(&access, id, database, sql, params).await;
            frames.send(frame).ok();
        });
    }
}

/// Routes replies to their calls and starts the extension's queries until the channel ends;
/// then fails every call in flight, and every later one, with the reason.
async fn read_replies(
    mut reader: BufReader<OwnedReadHalf>,
    queries: Queries,
    pending: Arc<Mutex<Pending>>,
    child: Arc<tokio::sync::Mutex<Child>>,
    log: Arc<Log>,
    ended: Ended,
    tree: Tree,
) {
    let reason = loop {
        let payload = match read_payload(&mut reader).await {
            Ok(payload) => payload,
            Err(FrameError::Io(_)) => break None,
            Err(error) => break Some(CallError::Protocol(error.to_string())),
        };
        // Most frames are returns: their outputs are checked and kept as written. A frame the
        // fast reading does not take (another message, or outputs it refuses) is decoded in full,
        // which reports what is wrong with it.
        let (id, reply) = match ReturnFrame::read(&payload) {
            Some((id, outputs)) => (id, Ok(outputs)),
            None => match decode::<ExtensionMessage>(&payload) {
                // Outputs the fast reading refused but the full decoding took: they are checked
                // the slow way, so that nothing it accepts is refused.
                Ok(ExtensionMessage::Return { id, outputs }) => match Outputs::from_values(&outputs) {
                    Some(outputs) => (id, Ok(outputs)),
                    None => break Some(CallError::Protocol("outputs that cannot be written as JSON".into())),
                },
                Ok(ExtensionMessage::Fail { id, error }) => {
                    (id, Err(CallError::Action { action: String::new(), failure: error }))
                }
                Ok(ExtensionMessage::Query { id, call, database, sql, params }) => {
                    queries.start(&pending, (id, call, database, sql, params));
                    continue;
                }
                Ok(ExtensionMessage::Hello(_)) => break Some(CallError::Protocol("a second hello".into())),
                Err(error) => break Some(CallError::Protocol(error.to_string())),
            },
        };
        let sender = pending.lock().unwrap_or_else(PoisonError::into_inner).calls.remove(&id);
        if let Some(sender) = sender {
            // The caller may have timed out and gone; its reply is then dropped.
            sender.send(reply).ok();
        }
    };
    let mut child = child.lock().await;
    let reason = match reason {
        Some(protocol_error) => {
            child.kill().await.ok();
            protocol_error
        }
        None => {
            let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                _ => "the channel closed but the process is still running".into(),
            };
            // Let the log drainers catch the last words.
            tokio::time::sleep(Duration::from_millis(20)).await;
            CallError::Crashed { status, log: log.tail(20) }
        }
    };
    // Crashed or broke the protocol: what it started goes too, before anyone restarts it.
    tree.kill_once().await;
    {
        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, sender) in pending.calls.drain() {
            sender.send(Err(reason.clone())).ok();
        }
        pending.closed = Some(reason);
    }
    ended.send_replace(true);
}
