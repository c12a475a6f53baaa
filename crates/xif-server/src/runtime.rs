//! The runtime: the published version of each extension runs as a child process of the server,
//! started through `xif-host`, and is replaced without dropping calls.
//!
//! Deploying starts the new version beside the old one, in a working directory of its own;
//! only after its handshake matches the definition are new calls switched to it. The old one
//! finishes the calls it has (each call holds the version it started on) and is then stopped.
//! If the new version fails to start, nothing changes and the old one keeps serving.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::RwLock;
use xif_definition::Definition;
use xif_host::{CallError, ExtensionProcess, InputError, Outputs, StartOptions};

/// How extension processes run.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// How long a process has to start and say hello.
    pub handshake_timeout: Duration,
    /// How long one call may take.
    pub call_timeout: Duration,
    /// Bytes of each process's log kept.
    pub log_capacity: usize,
    /// Limits on each process's resources.
    pub limits: xif_host::ResourceLimits,
    /// Calls one extension runs at once; more wait for a free place, within the call limit.
    pub max_concurrent_calls: usize,
    /// How processes are confined; `None` runs them with the server's rights.
    pub isolation: Option<IsolationOptions>,
    /// Disk space each process's working and temporary directories may use, in bytes.
    pub disk_bytes: Option<u64>,
}

impl Default for RuntimeOptions {
    /// 10 s to start, 30 s a call, 256 KiB of log, 1 GiB of memory, 1,024 open files, files of
    /// 256 MiB at most and 1 GiB in all, 64 processes and threads, 64 calls at once; not
    /// isolated (the server's binary turns isolation on: only it can launch extensions
    /// confined).
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            log_capacity: 256 * 1024,
            limits: xif_host::ResourceLimits {
                memory_bytes: Some(1 << 30),
                cpu_seconds: None,
                open_files: Some(1024),
                file_size_bytes: Some(256 << 20),
                processes: Some(64),
            },
            max_concurrent_calls: 64,
            isolation: None,
            disk_bytes: Some(1 << 30),
        }
    }
}

/// How extension processes are confined (see `xif_host::Isolation`).
#[derive(Debug, Clone)]
pub struct IsolationOptions {
    /// The `xif` binary, which launches an extension confined.
    pub launcher: PathBuf,
    /// User ids to run extension processes as, one of its own for each process, when the
    /// server is root; `None` runs them as the server's user.
    pub users: Option<RangeInclusive<u32>>,
    /// TCP allowed.
    pub network: bool,
    /// The kernel enforces Landlock.
    pub landlock: bool,
    /// Run extensions even when the kernel does not enforce Landlock.
    pub allow_unisolated: bool,
}

/// The user ids handed to extension processes, one each: the kernel counts processes per
/// user, and stopping an extension kills every process of its user, so no two processes share
/// one. Servers on one machine may share a range: each id in use is held by a lock on a file
/// (`TMPDIR/xif-extension-users/UID`), which the kernel releases when its server dies. Ids are
/// handed out in turn from a random start, so that one is seldom reused; a lock file that exists already marks an
/// id used before, whose leftovers (a dead server's, or zombies not yet reaped) are cleared
/// first, and an id not yet clear is passed over.
struct UserPool {
    range: RangeInclusive<u32>,
    locks: PathBuf,
    state: std::sync::Mutex<PoolState>,
}

struct PoolState {
    taken: BTreeSet<u32>,
    /// Where the next search starts.
    next: u32,
}

/// A user id taken from the pool until dropped, which happens after its process is killed.
struct UserLease {
    pool: Arc<UserPool>,
    uid: u32,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl UserPool {
    fn new(range: RangeInclusive<u32>) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let locks = std::env::temp_dir().join("xif-extension-users");
        // Only root may open the lock files: an extension holding one would keep its id.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&locks)?;
        // Starting anywhere in the range makes an id used before (which must be scanned for
        // leftovers first) rarer after a restart.
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|error| std::io::Error::other(error.to_string()))?;
        let span = u64::from(range.end() - range.start()) + 1;
        let offset = u32::try_from(u64::from(u32::from_le_bytes(bytes)) % span).unwrap_or(0);
        let next = range.start() + offset;
        Ok(Self { range, locks, state: std::sync::Mutex::new(PoolState { taken: BTreeSet::new(), next }) })
    }

    /// Kills what servers killed with SIGKILL left running under ids of the range: an id with
    /// processes whose lock no live server holds. Without it, such a process would run until
    /// its id came round again.
    fn sweep(&self) {
        use nix::fcntl::{Flock, FlockArg};
        for uid in xif_host::users_with_processes(&self.range) {
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(self.locks.join(uid.to_string())) else {
                // No lock file: not an id any server of this machine handed out.
                continue;
            };
            // Held by a live server: its process, not a leftover. The lock goes after the kill.
            if let Ok(_lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                xif_host::clear_user(uid);
                tracing::warn!(uid, "killed the processes a stopped server left running");
            }
        }
    }

    fn take(self: &Arc<Self>) -> Result<UserLease, DeployError> {
        use nix::fcntl::{Flock, FlockArg};
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (first, last) = (*self.range.start(), *self.range.end());
        let candidates = (state.next..=last).chain(first..state.next);
        for uid in candidates {
            if state.taken.contains(&uid) {
                continue;
            }
            let path = self.locks.join(uid.to_string());
            let users = |source| DeployError::Users { path: path.clone(), source };
            let (file, fresh) = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => (file, true),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    (std::fs::OpenOptions::new().write(true).open(&path).map_err(users)?, false)
                }
                Err(error) => return Err(users(error)),
            };
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                // Another server's.
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
                Err((_, error)) => return Err(users(error.into())),
            };
            // Never used: nothing can run under it. Used before and unlocked: what runs under
            // it was left by a dead server.
            if !fresh && !xif_host::clear_user(uid) {
                continue;
            }
            state.taken.insert(uid);
            state.next = if uid == last { first } else { uid + 1 };
            return Ok(UserLease { pool: Arc::clone(self), uid, _lock: lock });
        }
        Err(DeployError::NoUser { first, last })
    }
}

impl Drop for UserLease {
    fn drop(&mut self) {
        self.pool.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).taken.remove(&self.uid);
    }
}

/// One running version of an extension.
pub struct Running {
    /// The version's number.
    pub number: i64,
    /// Its definition, to check calls against.
    pub definition: Arc<Definition>,
    process: ExtensionProcess,
    /// Its user, given back once the process (declared before, so dropped before) is killed.
    user: Option<Arc<UserLease>>,
    directory: PathBuf,
    /// How to start it again after a crash.
    options: StartOptions,
    /// Calls under way, which a replacement waits for.
    in_flight: AtomicUsize,
    /// Places for calls at once.
    places: Arc<tokio::sync::Semaphore>,
}

/// Counts a call as under way until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Crashes within this window count towards marking an extension failed.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// This many crashes within the window mark it failed.
const MAX_CRASHES: usize = 5;

/// Why a version could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Its archive could not be read.
    #[error("its archive cannot be read: {0}")]
    Archive(String),
    /// Its process did not start.
    #[error("it did not start: {0}")]
    Start(#[from] xif_host::StartError),
    /// The kernel cannot isolate it, and running it unisolated is not allowed.
    #[error(
        "this kernel does not enforce Landlock, so the extension would run with the server's access to files; the server runs extensions only isolated (an operator can start it with --allow-unisolated-extensions)"
    )]
    Unisolated,
    /// The locks on user ids could not be taken.
    #[error("cannot lock a user id for the extension with `{path}`: {source}")]
    Users {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Every user id for extension processes is taken.
    #[error("all user ids for extension processes ({first}-{last}) are in use")]
    NoUser {
        /// The first of the range.
        first: u32,
        /// The last.
        last: u32,
    },
}

impl DeployError {
    /// What the publisher is told: why the version did not start, without the server's paths or
    /// system errors, which go to the log.
    pub fn public_message(&self) -> String {
        use xif_host::StartError;
        match self {
            DeployError::Archive(_) => "its archive cannot be unpacked on the server".into(),
            DeployError::Start(StartError::Spawn { .. }) => "its binary cannot be run on this server".into(),
            DeployError::Start(StartError::Limits(_) | StartError::Channel(_) | StartError::Prepare { .. })
            | DeployError::Users { .. } => "the server could not set up a process for it".into(),
            DeployError::Start(error) => format!("it did not start: {error}"),
            DeployError::Unisolated | DeployError::NoUser { .. } => self.to_string(),
        }
    }
}

/// Why a call did not return outputs.
#[derive(Debug)]
pub enum RuntimeCallError {
    /// No version of the extension runs.
    NotRunning,
    /// The extension crashed again and again and was given up on; the reason follows.
    Failed(String),
    /// The inputs do not fit the action.
    Inputs(Vec<InputError>),
    /// The call failed in the extension.
    Call(CallError),
}

/// The running extensions of this server.
pub struct Runtime {
    root: PathBuf,
    options: RuntimeOptions,
    users: Option<Arc<UserPool>>,
    running: RwLock<HashMap<String, Arc<Running>>>,
    failed: RwLock<HashMap<String, String>>,
    /// Bumped whenever a version starts serving or stops: calls that found their process
    /// restarting wait for it.
    changes: tokio::sync::watch::Sender<u64>,
    /// Where extensions' own queries on their logical databases run, once the server set it.
    entities: std::sync::OnceLock<Arc<crate::entities::Entities>>,
}

/// A version started beside the running one, not yet serving calls.
pub struct Started {
    key: String,
    extension: String,
    running: Arc<Running>,
}

/// A version serving calls in place of the one before, until the switch is committed (the one
/// before is drained and stopped) or undone (the one before serves again, and the new one is
/// stopped). Dropped undecided, it is undone: nothing recorded it.
pub struct Switch {
    runtime: Arc<Runtime>,
    key: String,
    new: Arc<Running>,
    old: Option<Arc<Running>>,
    decided: bool,
}

impl Switch {
    /// Keeps the new version: the one before finishes its calls and stops.
    pub fn commit(mut self) {
        self.decided = true;
        if let Some(old) = self.old.take() {
            tokio::spawn(drain(old, self.runtime.options.call_timeout));
        }
    }

    /// Puts the version before back (or none, if there was none) and stops the new one.
    pub async fn undo(mut self) {
        self.decided = true;
        let (runtime, key, new, old) =
            (Arc::clone(&self.runtime), self.key.clone(), Arc::clone(&self.new), self.old.take());
        undo(runtime, key, new, old).await;
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if !self.decided {
            tracing::warn!(extension = %self.key, number = self.new.number, "a switch was left undecided; undoing it");
            let (runtime, key, new, old) =
                (Arc::clone(&self.runtime), self.key.clone(), Arc::clone(&self.new), self.old.take());
            // Outside a runtime (the server is gone) there is nothing left to serve calls.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(undo(runtime, key, new, old));
            }
        }
    }
}

async fn undo(runtime: Arc<Runtime>, key: String, new: Arc<Running>, old: Option<Arc<Running>>) {
    {
        let mut running = runtime.running.write().await;
        if running.get(&key).is_some_and(|current| Arc::ptr_eq(current, &new)) {
            match &old {
                Some(old) => running.insert(key.clone(), Arc::clone(old)),
                None => running.remove(&key),
            };
        }
    }
    runtime.changed();
    tracing::info!(extension = %key, number = new.number, back_to = ?old.as_ref().map(|old| old.number), "switch undone");
    drain(new, runtime.options.call_timeout).await;
}

/// A working directory removed on drop unless kept: a deploy that fails or is dropped half-way
/// leaves nothing behind.
struct WorkingDirectory {
    path: PathBuf,
    kept: bool,
}

impl WorkingDirectory {
    fn keep(mut self) -> PathBuf {
        self.kept = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for WorkingDirectory {
    fn drop(&mut self) {
        if !self.kept
            && self.path.exists()
            && let Err(error) = std::fs::remove_dir_all(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the working directory of a failed deploy");
        }
    }
}

impl Runtime {
    /// A runtime keeping its working directories under `root`, emptied first: what a stopped
    /// server left there belongs to no process.
    pub fn new(root: &Path, options: RuntimeOptions) -> std::io::Result<Self> {
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        std::fs::create_dir_all(root)?;
        let users = match options.isolation.as_ref().and_then(|isolation| isolation.users.clone()) {
            Some(range) => {
                // Each extension's user must be able to reach its working directory.
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))?;
                for ancestor in root.ancestors().skip(1) {
                    let mode = std::fs::metadata(ancestor)?.permissions().mode();
                    if mode & 0o001 == 0 {
                        return Err(std::io::Error::other(format!(
                            "extensions, which run as users of their own, cannot reach their working directories \
                             under `{}`: `{}` is closed to other users; choose a data directory they can pass \
                             through, such as `/var/lib/xif` (the default for root)",
                            root.display(),
                            ancestor.display()
                        )));
                    }
                }
                let pool = UserPool::new(range)?;
                pool.sweep();
                Some(Arc::new(pool))
            }
            None => None,
        };
        Ok(Self {
            root: root.to_owned(),
            users,
            options,
            running: RwLock::new(HashMap::new()),
            failed: RwLock::new(HashMap::new()),
            changes: tokio::sync::watch::Sender::new(0),
            entities: std::sync::OnceLock::new(),
        })
    }

    /// Runs the queries that extensions started from now on make on their logical databases
    /// (`xif_sdk::database`) on the connections of `entities`. Without it, such queries fail as
    /// unavailable.
    pub fn use_entities(&self, entities: Arc<crate::entities::Entities>) {
        if self.entities.set(entities).is_err() {
            tracing::warn!("the runtime's entities were set twice; the first stay");
        }
    }

    /// Where the working directories are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn changed(&self) {
        self.changes.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// Starts version `number` of `extension` from the XIF at `blob` and, once it answers its
    /// handshake, sends new calls to it; the version it replaces is drained and stopped.
    pub async fn deploy(self: &Arc<Self>, extension: &str, number: i64, blob: &Path) -> Result<(), DeployError> {
        let started = self.start(extension, number, blob).await?;
        self.switch(started).await.commit();
        Ok(())
    }

    /// Starts version `number` of `extension` from the XIF at `blob` beside the running one, and
    /// waits for its handshake; it serves no call until switched to.
    pub async fn start(&self, extension: &str, number: i64, blob: &Path) -> Result<Started, DeployError> {
        let directory = WorkingDirectory {
            path: self.root.join(extension.to_ascii_lowercase()).join(format!("{number}-{}", unique())),
            kept: false,
        };
        let blob = blob.to_owned();
        let target = directory.path.clone();
        let (definition, binary) = tokio::task::spawn_blocking(move || prepare(&blob, &target))
            .await
            .map_err(|error| DeployError::Archive(error.to_string()))??;
        let mut options = StartOptions::new(
            binary,
            directory.path.clone(),
            definition.extension.name.value.clone(),
            definition.extension.version.value.to_string(),
        );
        options.signatures = xif_host::signatures(&definition);
        options.handshake_timeout = self.options.handshake_timeout;
        options.call_timeout = self.options.call_timeout;
        options.log_capacity = self.options.log_capacity;
        options.limits = self.options.limits;
        options.disk_bytes = self.options.disk_bytes;
        options.clean_environment = true;
        let databases = self.entities.get().map(|entities| {
            Arc::new(crate::entities::broker::Broker::new(Arc::clone(entities), &definition.extension.name.value))
                as Arc<dyn xif_host::Databases>
        });
        options.databases = xif_host::DatabaseAccess::new(&definition, databases);
        // A query cannot outlast the call it belongs to.
        options.databases.query_timeout = self.options.call_timeout;
        let (isolation, user) = self.isolation().await?;
        options.isolation = isolation;
        let process = ExtensionProcess::start(options.clone()).await?;
        let running = Arc::new(Running {
            number,
            definition: Arc::new(definition),
            process,
            user,
            directory: directory.keep(),
            options,
            in_flight: AtomicUsize::new(0),
            places: Arc::new(tokio::sync::Semaphore::new(self.options.max_concurrent_calls.max(1))),
        });
        Ok(Started { key: extension.to_ascii_lowercase(), extension: extension.to_owned(), running })
    }

    /// Stops a started version that will not serve, and removes its working directory.
    pub async fn discard(&self, started: Started) {
        drain(started.running, self.options.call_timeout).await;
    }

    /// Sends new calls to `started` instead of the version running now, which keeps running
    /// until the switch is committed or undone.
    pub async fn switch(self: &Arc<Self>, started: Started) -> Switch {
        let Started { key, extension, running } = started;
        self.failed.write().await.remove(&key);
        let old = self.running.write().await.insert(key.clone(), Arc::clone(&running));
        self.changed();
        tokio::spawn(supervise(Arc::downgrade(self), key.clone(), Arc::clone(&running)));
        tracing::info!(%extension, number = running.number, "deployed");
        Switch { runtime: Arc::clone(self), key, new: running, old, decided: false }
    }

    /// How a new process is confined, and the user it takes.
    async fn isolation(&self) -> Result<(Option<xif_host::Isolation>, Option<Arc<UserLease>>), DeployError> {
        let Some(options) = &self.options.isolation else { return Ok((None, None)) };
        if !options.landlock && !options.allow_unisolated {
            return Err(DeployError::Unisolated);
        }
        let user = match &self.users {
            // Taking an id used before scans `/proc`: not on the runtime's workers.
            Some(pool) => {
                let pool = Arc::clone(pool);
                let locks = pool.locks.clone();
                let taken = tokio::task::spawn_blocking(move || pool.take())
                    .await
                    .map_err(|error| DeployError::Users { path: locks, source: std::io::Error::other(error) })??;
                Some(Arc::new(taken))
            }
            None => None,
        };
        let isolation = xif_host::Isolation {
            launcher: options.launcher.clone(),
            // A group of the same number: it needs no entry in `/etc/group` either.
            user: user.as_ref().map(|user| xif_host::UserIds { uid: user.uid, gid: user.uid }),
            network: options.network,
            require_landlock: options.landlock,
        };
        Ok((Some(isolation), user))
    }

    /// Calls `action` of the running version of `extension` with `inputs`, checked against its
    /// definition first. The outputs are the JSON object the extension wrote, checked by the host
    /// ([`Outputs`]) but not rebuilt: the handler sends them on as they are.
    pub async fn call(&self, extension: &str, action: &str, inputs: Value) -> Result<Outputs, RuntimeCallError> {
        let key = extension.to_ascii_lowercase();
        let limit = self.options.call_timeout;
        let started = tokio::time::Instant::now();
        let running = loop {
            // Subscribed before looking, so that a change made after the look is not missed.
            let mut changes = self.changes.subscribe();
            let Some(running) = self.running.read().await.get(&key).cloned() else {
                return Err(match self.failed.read().await.get(&key) {
                    Some(reason) => RuntimeCallError::Failed(reason.clone()),
                    None => RuntimeCallError::NotRunning,
                });
            };
            if running.process.ended().is_none() {
                break running;
            }
            // Its process ended and its supervisor is starting it again: wait for that, within
            // the call's time limit, rather than fail a call that was never sent.
            if tokio::time::timeout_at(started + limit, changes.changed()).await.is_err() {
                return Err(RuntimeCallError::Call(CallError::Timeout { action: action.to_owned(), limit }));
            }
        };
        // The call is counted on the version it started on, which a replacement waits for.
        let _in_flight = InFlight::new(&running.in_flight);
        let (declared, checked) =
            xif_host::validate_owned_inputs(&running.definition, action, inputs).map_err(RuntimeCallError::Inputs)?;
        let name = declared.name.value.clone();
        // Waiting for a place counts against the call's time limit.
        let _place = match Arc::clone(&running.places).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => match tokio::time::timeout(limit, Arc::clone(&running.places).acquire_owned()).await {
                Ok(Ok(place)) => place,
                _ => return Err(RuntimeCallError::Call(CallError::Timeout { action: name, limit })),
            },
        };
        let remaining = limit.saturating_sub(started.elapsed());
        running.process.call_outputs_within(&name, checked, remaining).await.map_err(|error| match error {
            // The limit the caller knows is the whole one, not what was left of it.
            CallError::Timeout { action, .. } => RuntimeCallError::Call(CallError::Timeout { action, limit }),
            other => RuntimeCallError::Call(other),
        })
    }

    /// The log of the running version of `extension`.
    pub async fn log(&self, extension: &str) -> Option<String> {
        self.running.read().await.get(&extension.to_ascii_lowercase()).map(|running| running.process.log().text())
    }

    /// The definition of the version of `extension` that runs, if one does.
    pub async fn definition(&self, extension: &str) -> Option<Arc<Definition>> {
        self.running.read().await.get(&extension.to_ascii_lowercase()).map(|running| Arc::clone(&running.definition))
    }

    /// The definition of version `number` of `extension`, if that is the version that runs.
    pub async fn definition_of_version(&self, extension: &str, number: i64) -> Option<Arc<Definition>> {
        self.running
            .read()
            .await
            .get(&extension.to_ascii_lowercase())
            .filter(|running| running.number == number)
            .map(|running| Arc::clone(&running.definition))
    }

    /// The version of `extension` that runs, if one does.
    pub async fn running_version(&self, extension: &str) -> Option<i64> {
        self.running.read().await.get(&extension.to_ascii_lowercase()).map(|running| running.number)
    }

    /// Whether the runtime gave up on `extension` after it crashed repeatedly (publishing it again
    /// starts it).
    pub async fn given_up(&self, extension: &str) -> bool {
        self.failed.read().await.contains_key(&extension.to_ascii_lowercase())
    }

    /// Stops every process: asks each to finish and exit, and kills those that do not.
    pub async fn stop_all(&self) {
        let running: Vec<Arc<Running>> = self.running.write().await.drain().map(|(_, running)| running).collect();
        self.changed();
        for running in running {
            drain(running, Duration::from_secs(5)).await;
        }
    }
}

/// Waits until no call is under way on `old` (at most `limit`), then stops it and removes its
/// directory.
async fn drain(old: Arc<Running>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while old.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let number = old.number;
    if old.in_flight.load(Ordering::Acquire) > 0 {
        tracing::warn!(number, "a replaced version still had calls after the time limit; stopping it");
    }
    // Its supervisor sees the process end, finds it is no longer current, and lets go.
    if let Err(error) = old.process.stop(Duration::from_secs(5)).await {
        tracing::warn!(%error, number, "stopping a replaced version failed");
    }
    tokio::fs::remove_dir_all(&old.directory).await.ok();
}

/// Watches the current version of an extension: when its process ends while it is still the
/// current one, starts it again after a growing pause, and gives up after [`MAX_CRASHES`]
/// crashes within [`CRASH_WINDOW`], marking the extension failed with the last reason.
async fn supervise(runtime: Weak<Runtime>, key: String, mut current: Arc<Running>) {
    let mut crashes: Vec<tokio::time::Instant> = Vec::new();
    loop {
        let reason = current.process.wait_ended().await;
        let Some(runtime) = runtime.upgrade() else { return };
        let still_current =
            runtime.running.read().await.get(&key).is_some_and(|running| Arc::ptr_eq(running, &current));
        if !still_current {
            // Replaced or stopped on purpose.
            return;
        }
        let now = tokio::time::Instant::now();
        crashes.retain(|at| now.duration_since(*at) < CRASH_WINDOW);
        crashes.push(now);
        tracing::warn!(extension = %key, number = current.number, %reason, crashes = crashes.len(), "extension process ended");
        if crashes.len() >= MAX_CRASHES {
            let message =
                format!("it ended {} times within {:?}; the last time: {reason}", crashes.len(), CRASH_WINDOW);
            let mut running = runtime.running.write().await;
            if running.get(&key).is_some_and(|running| Arc::ptr_eq(running, &current)) {
                running.remove(&key);
                runtime.failed.write().await.insert(key.clone(), message.clone());
                drop(running);
                runtime.changed();
                tracing::error!(extension = %key, %message, "extension marked failed");
            }
            return;
        }
        let pause = Duration::from_millis(100) * 2u32.pow(u32::try_from(crashes.len() - 1).unwrap_or(6).min(6));
        tokio::time::sleep(pause).await;
        let restarted = match ExtensionProcess::start(current.options.clone()).await {
            Ok(process) => Arc::new(Running {
                number: current.number,
                definition: Arc::clone(&current.definition),
                process,
                user: current.user.clone(),
                directory: current.directory.clone(),
                options: current.options.clone(),
                in_flight: AtomicUsize::new(0),
                places: Arc::clone(&current.places),
            }),
            Err(error) => {
                tracing::warn!(extension = %key, %error, "restarting the extension failed");
                continue;
            }
        };
        let mut running = runtime.running.write().await;
        if running.get(&key).is_some_and(|running| Arc::ptr_eq(running, &current)) {
            running.insert(key.clone(), Arc::clone(&restarted));
            drop(running);
            runtime.changed();
            tracing::info!(extension = %key, number = restarted.number, "extension restarted");
            current = restarted;
        } else {
            // Replaced while restarting: the restarted process is not needed.
            drop(running);
            restarted.process.stop(Duration::from_secs(1)).await.ok();
            return;
        }
    }
}

/// Extracts the binary and the deployed resources of the XIF at `blob` into `directory`, and
/// reads its definition.
fn prepare(blob: &Path, directory: &Path) -> Result<(Definition, PathBuf), DeployError> {
    let archive = |error: xif_archive::ArchiveError| {
        // The message reaches clients (`deploy_failed`): the blob's path goes to the log only.
        tracing::warn!(%error, "cannot read a version's archive to deploy it");
        DeployError::Archive(error.without_paths())
    };
    std::fs::create_dir_all(directory).map_err(|error| DeployError::Archive(error.to_string()))?;
    let mut reader = xif_archive::XifReader::open(blob, xif_archive::Limits::default()).map_err(archive)?;
    let text = reader.read_entry("extension.toml", xif_definition::MAX_DEFINITION_BYTES as u64).map_err(archive)?;
    let text = String::from_utf8(text).map_err(|_| DeployError::Archive("the definition is not UTF-8".into()))?;
    let definition =
        xif_definition::parse(&text).map_err(|_| DeployError::Archive("the definition does not parse".into()))?;
    // The extension can read its own definition in its working directory.
    std::fs::write(directory.join("extension.toml"), &text).map_err(|error| DeployError::Archive(error.to_string()))?;
    let binary_entry = reader.manifest().binary.clone();
    let file_name = binary_entry.rsplit('/').next().unwrap_or("extension").to_owned();
    let binary = directory.join(file_name);
    reader.extract_entry(&binary_entry, &binary, 0o755).map_err(archive)?;
    for resource in &definition.resources {
        if resource.deploy.value == xif_definition::DeployAction::Ignore {
            continue;
        }
        let target = directory.join(&resource.path.value);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|error| DeployError::Archive(error.to_string()))?;
        }
        reader.extract_entry(&format!("resources/{}", resource.path.value), &target, 0o644).map_err(archive)?;
    }
    Ok((definition, binary))
}

fn unique() -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).ok();
    hex::encode(bytes)
}
