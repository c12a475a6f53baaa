//! Confining an extension process so that a careless or hostile author cannot reach more than
//! the extension's own files: the launcher's side (`xif __launch-extension PLAN`, run in the
//! child before the extension's code) and the host's (killing the whole process tree).
//!
//! The launcher, in this order: sets resource limits on itself (inherited across `exec`),
//! drops to a user of its own when the host is root, sets `no_new_privs`, restricts itself
//! with Landlock (its working directory and a private temporary directory read-write, a short
//! list of system files read-only, nothing else; optionally no TCP), and `exec`s the
//! extension. The host starts it in a process group of its own and kills that group, and every
//! process of its dedicated user, when it stops.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};
use serde::{Deserialize, Serialize};

use crate::ResourceLimits;

/// The `xif` subcommand that launches an extension under a [`LaunchPlan`].
pub const LAUNCH_SUBCOMMAND: &str = "__launch-extension";

/// The newest Landlock ABI this code knows; older kernels get what they support (the crate's
/// best-effort mode), newer ones this much.
const NEWEST_ABI: ABI = ABI::V10;

/// Read-only (and executable) for every extension: shared libraries and programs, the dynamic
/// loader's cache, TLS certificates, name resolution and time zones. Nothing in this list
/// holds a secret or another tenant's data; paths missing on this system are skipped.
const SYSTEM_READ_ONLY: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
];

/// Readable and writable devices: `/dev/null` is where `Stdio::null()` points.
const SYSTEM_READ_WRITE: &[&str] = &["/dev/null"];

/// How the host confines an extension process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The `xif` binary, run as `xif __launch-extension PLAN`: it confines itself, then runs the
    /// extension in its place.
    pub launcher: PathBuf,
    /// The user (and group) to run as, when the host is root. It must be dedicated to this
    /// process: every process of this user is killed when the extension stops.
    pub user: Option<UserIds>,
    /// TCP connections and listening allowed; otherwise Landlock refuses them.
    pub network: bool,
    /// Refuse to run the extension when the kernel does not enforce Landlock.
    pub require_landlock: bool,
}

/// A numeric user and group; they need no entry in `/etc/passwd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIds {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

/// What the launcher does before it runs the extension; the host writes it as JSON on the
/// launcher's command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The extension's binary.
    pub program: PathBuf,
    /// Its resource limits.
    pub limits: ResourceLimits,
    /// The user to switch to.
    pub user: Option<UserIds>,
    /// Directories it may read, write and execute in: its working directory, its private
    /// temporary directory, and the channel's directory (connecting to a Unix socket is
    /// governed by Landlock from ABI 9 on).
    pub writable: Vec<PathBuf>,
    /// TCP allowed.
    pub network: bool,
    /// Fail rather than run without Landlock.
    pub require_landlock: bool,
}

/// Why the launcher could not run the extension.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// An IPC namespace of its own could not be made.
    #[error("cannot give the extension an IPC namespace of its own: {0}")]
    Namespace(nix::Error),
    /// Shared memory could not be bounded.
    #[error("cannot bound the extension's shared memory: {0}")]
    SharedMemory(std::io::Error),
    /// A resource limit could not be set.
    #[error("cannot set the limit on {resource}: {source}")]
    Limit {
        /// The resource.
        resource: &'static str,
        /// What failed.
        source: std::io::Error,
    },
    /// Switching to the extension's user failed.
    #[error("cannot switch to user {uid} and group {gid}: {source}")]
    User {
        /// The user.
        uid: u32,
        /// The group.
        gid: u32,
        /// What failed.
        source: nix::Error,
    },
    /// `no_new_privs` could not be set.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivileges(nix::Error),
    /// The Landlock ruleset could not be built or applied.
    #[error("cannot restrict the process with Landlock: {0}")]
    Landlock(String),
    /// The kernel does not enforce Landlock, and it is required.
    #[error(
        "this kernel does not enforce Landlock, so the extension would run with the server's access to files; refusing to run it"
    )]
    LandlockMissing,
    /// The extension could not be run.
    #[error("cannot run extension binary `{path}`: {source}")]
    Exec {
        /// The binary.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Confines this process as `plan` says and replaces it with the extension; returns only when
/// that fails.
pub fn launch(plan: &LaunchPlan) -> LaunchError {
    if let Err(error) = confine(plan) {
        return error;
    }
    // Run by its name in the working directory (the launcher's own): neither its arguments nor
    // a shell's or interpreter's error messages then carry the server's paths.
    let program = match (plan.program.file_name(), std::env::current_dir()) {
        (Some(name), Ok(directory)) if plan.program.parent() == Some(directory.as_path()) => Path::new(".").join(name),
        _ => plan.program.clone(),
    };
    let source = std::process::Command::new(&program).exec();
    LaunchError::Exec { path: program, source }
}

fn confine(plan: &LaunchPlan) -> Result<(), LaunchError> {
    // Descriptors the server inherited and did not mark close-on-exec would reach the
    // extension past Landlock (which checks paths at open, not descriptors held): none but
    // stdin, stdout and stderr cross the exec.
    close_fds::CloseFdsBuilder::new().cloexecfrom(3);
    if plan.user.is_some() {
        // As root: an IPC namespace of its own, so that System V shared memory, queues and
        // semaphores are neither shared with other extensions nor left behind: they go with
        // the namespace, when its last process ends.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC).map_err(LaunchError::Namespace)?;
        // Segments no process has attached are removed at once, so that memory kept in them
        // cannot grow past the address-space limit of the processes that made them.
        std::fs::write("/proc/sys/kernel/shm_rmid_forced", "1").map_err(LaunchError::SharedMemory)?;
    }
    // Limits first, while this process may still raise them; the hard limits equal the soft
    // ones so that the extension cannot raise them either.
    set_limits(&plan.limits, plan.user.is_some())?;
    if let Some(user) = plan.user {
        switch_user(user)?;
    }
    // Set explicitly, so that it holds when Landlock is missing and allowed to be.
    nix::sys::prctl::set_no_new_privs().map_err(LaunchError::NoNewPrivileges)?;
    let status = restrict(plan).map_err(|error| LaunchError::Landlock(error.to_string()))?;
    match status {
        RulesetStatus::NotEnforced if plan.require_landlock => Err(LaunchError::LandlockMissing),
        RulesetStatus::NotEnforced => {
            // The extension's log is where its operator looks.
            eprintln_log("warning: Landlock is not enforced on this kernel: the extension runs without file isolation");
            Ok(())
        }
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
    }
}

#[expect(clippy::print_stderr, reason = "the launcher's stderr is the extension's log")]
fn eprintln_log(message: &str) {
    eprintln!("{message}");
}

fn set_limits(limits: &ResourceLimits, own_user: bool) -> Result<(), LaunchError> {
    use rlimit::Resource;
    let set = |resource: Resource, name: &'static str, value: Option<u64>| match value {
        Some(value) => {
            rlimit::setrlimit(resource, value, value).map_err(|source| LaunchError::Limit { resource: name, source })
        }
        None => Ok(()),
    };
    set(Resource::CORE, "core dumps", Some(0))?;
    set(Resource::AS, "memory", limits.memory_bytes)?;
    set(Resource::CPU, "CPU time", limits.cpu_seconds)?;
    set(Resource::NOFILE, "open files", limits.open_files)?;
    set(Resource::FSIZE, "file size", limits.file_size_bytes)?;
    // The kernel counts processes (and threads) per real user: under the server's own user it
    // would count the server's too, so the limit only applies under a user of its own.
    if own_user {
        set(Resource::NPROC, "processes", limits.processes)?;
    }
    Ok(())
}

fn switch_user(user: UserIds) -> Result<(), LaunchError> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    let failed = |source| LaunchError::User { uid: user.uid, gid: user.gid, source };
    // Supplementary groups first (root's would stay otherwise), the group, then the user, after
    // which none of it can be undone.
    setgroups(&[]).map_err(failed)?;
    setgid(Gid::from_raw(user.gid)).map_err(failed)?;
    setuid(Uid::from_raw(user.uid)).map_err(failed)
}

fn restrict(plan: &LaunchPlan) -> Result<RulesetStatus, landlock::RulesetError> {
    let abi = NEWEST_ABI;
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?.scope(Scope::from_all(abi))?;
    if !plan.network {
        // Denying the network must not silently fail on a kernel without Landlock's TCP rules
        // (ABI 4): that is an error, not a partial restriction. UDP (ABI 10) where the kernel
        // has it.
        ruleset = ruleset
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessNet::from_all(ABI::V4))?
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessNet::from_all(abi))?;
    }
    let status = ruleset
        .create()?
        .add_rules(path_beneath_rules(existing(SYSTEM_READ_ONLY.iter().map(Path::new)), AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(
            existing(SYSTEM_READ_WRITE.iter().map(Path::new)),
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))?
        .add_rules(path_beneath_rules(&plan.writable, AccessFs::from_all(abi)))?
        .restrict_self()?;
    Ok(status.ruleset)
}

fn existing<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<&'a Path> {
    paths.filter(|path| path.exists()).collect()
}

/// Whether this kernel enforces Landlock, so that extensions can be isolated.
pub fn landlock_available() -> bool {
    // Creating a ruleset (and dropping it unused) restricts nothing.
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(Ruleset::create)
        .is_ok()
}

/// Kills process group `group` and, when `user` is given (a user dedicated to one extension
/// process), every process of that user: a child that left the group by calling `setsid`
/// goes too.
pub fn kill_tree(group: u32, user: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    if let Ok(group) = i32::try_from(group) {
        // ESRCH: the group is already gone, which is the point.
        killpg(nix::unistd::Pid::from_raw(group), Signal::SIGKILL).ok();
    }
    if let Some(uid) = user {
        clear_user(uid);
    }
}

/// Kills every process of user `uid`, scanning `/proc` until none is alive (a process may
/// fork while the scan runs; the process limit bounds how often). Returns whether none is left
/// at all: a zombie that no one has reaped yet still counts against the process limit of the
/// next process of that user. One scan when there is nothing to kill.
pub fn clear_user(uid: u32) -> bool {
    use nix::sys::signal::{Signal, kill};
    for _round in 0..100 {
        let found = processes_of(uid);
        if found.is_empty() {
            return true;
        }
        let alive: Vec<i32> = found.into_iter().filter(|(_, zombie)| !zombie).map(|(pid, _)| pid).collect();
        if alive.is_empty() {
            return false;
        }
        for pid in alive {
            // The process may have ended since the scan: nothing to do then.
            kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).ok();
        }
    }
    false
}

/// The processes whose real user id is `uid`, each with whether it is a zombie (dead, not yet
/// reaped by its parent).
fn processes_of(uid: u32) -> Vec<(i32, bool)> {
    processes_in(&(uid..=uid)).into_iter().map(|(pid, _, zombie)| (pid, zombie)).collect()
}

/// The user ids in `uids` that have processes (zombies included), from one scan of `/proc`.
pub fn users_with_processes(uids: &std::ops::RangeInclusive<u32>) -> std::collections::BTreeSet<u32> {
    processes_in(uids).into_iter().map(|(_, uid, _)| uid).collect()
}

/// The processes whose real user id is in `uids`: each with its user id and whether it is a
/// zombie.
fn processes_in(uids: &std::ops::RangeInclusive<u32>) -> Vec<(i32, u32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // A process that ended since the listing has no status: skipped.
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
            let real = field("Uid:")?.split_whitespace().next()?.parse::<u32>().ok()?;
            uids.contains(&real).then(|| (pid, real, field("State:").is_some_and(|state| state.starts_with('Z'))))
        })
        .collect()
}
