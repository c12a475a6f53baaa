//! The serve loop: connect to the host, say hello, run calls until told to stop, and carry the
//! queries actions make on their logical databases.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use xif_protocol::{
    ActionFailure, ActionSignature, CHANNEL_ENV, ExtensionMessage, Hello, HostMessage, PROTOCOL_VERSION, Row,
    TOKEN_ENV, Values, decode, encode, read_frame,
};

use crate::ActionError;

/// What an extension says of itself in its hello.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The actions it implements, with their signatures.
    pub actions: Vec<ActionSignature>,
}

/// Runs one call: the action's name and inputs to its outputs.
pub trait Handler: Send + Sync + 'static {
    /// Runs action `action` with `inputs`.
    fn call(&self, action: &str, inputs: Values) -> Result<Values, ActionError>;
}

impl<F> Handler for F
where
    F: Fn(&str, Values) -> Result<Values, ActionError> + Send + Sync + 'static,
{
    fn call(&self, action: &str, inputs: Values) -> Result<Values, ActionError> {
        self(action, inputs)
    }
}

/// Calls run at once at most; more wait for a free worker.
const WORKERS: usize = 16;

/// How long a worker that read a call keeps the lead parked while it runs that call (see
/// [`Channel`]): a call that arrives meanwhile waits about this long, while a worker is idle,
/// before another worker reads it.
const PARK: Duration = Duration::from_millis(1);

/// Connects to the host named in the environment, says hello with `manifest`, and serves calls
/// with `handler` until the host asks to stop or goes away. Problems are written to stderr,
/// which is the extension's log.
pub fn serve(manifest: Manifest, handler: impl Handler) -> ExitCode {
    match run(manifest, Arc::new(handler)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let mut stderr = std::io::stderr().lock();
            // The log is the only place to report to; if it is gone, there is nowhere else.
            if writeln!(stderr, "error: {message}").is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::FAILURE
        }
    }
}

fn run(manifest: Manifest, handler: Arc<dyn Handler>) -> Result<(), String> {
    let (Some(path), Some(token)) = (std::env::var_os(CHANNEL_ENV), std::env::var(TOKEN_ENV).ok()) else {
        return Err(format!(
            "`{}` is an xif extension and runs under a host: try `xif call ACTION` in its project, or publish it",
            manifest.name
        ));
    };
    let stream = UnixStream::connect(&path)
        .map_err(|error| format!("cannot connect to the host at `{}`: {error}", path.to_string_lossy()))?;
    let mut writer = stream.try_clone().map_err(|error| format!("cannot use the channel: {error}"))?;
    let hello = ExtensionMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        token,
        extension: manifest.name,
        version: manifest.version,
        actions: manifest.actions,
    });
    writer.write_all(&encode(&hello)).map_err(|error| format!("cannot say hello to the host: {error}"))?;
    let mut reader = stream;
    let mut buffer = Vec::new();
    match read_frame(&mut reader, &mut buffer) {
        Ok(true) => match decode::<HostMessage>(&buffer) {
            Ok(HostMessage::Welcome { .. }) => {}
            Ok(HostMessage::Refuse { reason }) => return Err(format!("the host refused this extension: {reason}")),
            Ok(other) => return Err(format!("the host answered the hello with {other:?}")),
            Err(error) => return Err(error.to_string()),
        },
        Ok(false) => return Err("the host closed the channel during the handshake".into()),
        Err(error) => return Err(error.to_string()),
    }

    // Buffered: the host sends calls queued together in one write; they are read in one call.
    let channel = Arc::new(Channel {
        reader: Mutex::new((BufReader::with_capacity(64 * 1024, reader), buffer)),
        writer: Mutex::new(Outgoing { stream: writer, held: Vec::new() }),
        holding: AtomicBool::new(false),
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        standby_wake: Condvar::new(),
        next_query: AtomicU64::new(1),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let channel = Arc::clone(&channel);
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || work(&channel, &*handler, worker))
        })
        .collect();
    let mut outcome = Ok(());
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => outcome = Err(message),
            Err(_) => outcome = Err("a worker thread panicked".into()),
        }
    }
    outcome
}

/// A call read from the channel: its id, action and inputs.
type Call = (u64, String, Values);

/// What a query returned: its rows and the number of rows it changed.
pub(crate) type Answer = (Vec<Row>, u64);

/// The channel to the host, shared by the workers and by every [`crate::Database`] handle.
///
/// Leader and followers: one thread at a time (the leader, `State::leading`) reads a frame.
/// A call it reads as an idle worker it runs itself, so a call is never handed from thread to
/// thread on its way. A thread waiting for the answer to its query leads too while no one else
/// does: otherwise, with every worker waiting on a query, no one would read the answers. A call
/// such a thread reads goes to `backlog`, for the next idle worker; an answer for another query
/// is left in `answers` for its waiter.
///
/// The lead is parked while a call runs: the worker that read it keeps the lead (`parked`) and,
/// unless someone took it meanwhile, reads the next frame itself when the call returns, so that
/// short calls, one after the other, cost no thread switch (waking a follower for each call took
/// about half of a small extension's time). One idle worker, the standby, waits on a condition
/// of its own until the park's deadline ([`PARK`]) and then takes the lead, so that while a
/// worker is idle a long call holds up the calls behind it by about that much; calls that
/// waited in the buffer keep the deadline of the park they waited behind, so once it passes
/// they go to idle workers one after the other at once. A thread that must read the answer to
/// its query takes a parked lead at once.
///
/// Replies go out together as the echo of a batch would: a worker that keeps the lead with
/// another whole call waiting in the buffer holds its reply back, to go out with the next one
/// written (one write, and one wake-up of the host, for the calls the host sent together). What
/// is held goes out before the leader reads the socket, when a thread takes a parked lead from
/// another (the standby at the park's deadline: so a long call holds replies back by about
/// [`PARK`] at most), when the standby leaves its role, and when a worker ends. Replies are held
/// only while there is a standby, so that someone takes the lead at the deadline.
pub(crate) struct Channel {
    /// Locked only by the leader.
    reader: Mutex<(BufReader<UnixStream>, Vec<u8>)>,
    writer: Mutex<Outgoing>,
    /// Whether replies are held back: read without the writer's lock, so that the leader does
    /// not wait for another thread's write before each read when nothing is held.
    holding: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the lead is free or parked with threads waiting for answers, a call waits
    /// in the backlog, an answer arrived, the standby role is free, or the channel ended.
    wake: Condvar,
    /// The standby's: signalled when the lead is parked while the standby sleeps, and with
    /// `wake` for everything else.
    standby_wake: Condvar,
    next_query: AtomicU64,
}

/// The writing side of the channel.
struct Outgoing {
    stream: UnixStream,
    /// Replies held back, to go out with the next write (see [`Channel`]).
    held: Vec<u8>,
}

/// Whether `buffered` holds a whole frame, which can be read without waiting for the socket.
fn holds_frame(buffered: &[u8]) -> bool {
    match buffered.first_chunk::<4>() {
        Some(prefix) => buffered.len() - 4 >= u32::from_le_bytes(*prefix) as usize,
        None => false,
    }
}

/// The lead, kept by the worker that runs the call it read.
#[derive(Clone, Copy)]
struct Park {
    /// The worker.
    worker: usize,
    /// When the standby may take it.
    until: Instant,
}

#[derive(Default)]
struct State {
    /// A thread is reading the channel.
    leading: bool,
    /// The lead is parked with a worker running a call (never while `leading`).
    parked: Option<Park>,
    /// A worker is the standby.
    standby: bool,
    /// The standby waits without a deadline: the lead was not parked when it last looked.
    standby_sleeping: bool,
    /// Calls read by a thread that was waiting for a query's answer.
    backlog: VecDeque<Call>,
    /// Queries in flight: `None` until answered.
    answers: HashMap<u64, Option<Result<Answer, ActionError>>>,
    /// Threads waiting for an answer.
    querying: usize,
    /// The host asked to stop: idle workers exit; threads waiting for answers read on.
    stopping: bool,
    /// The channel is gone (closed, or broken with this reason): nothing more can be read.
    closed: Option<String>,
    /// Why the channel broke, until one worker has reported it as the process's outcome.
    broken: Option<String>,
}

/// What the leader read.
enum Frame {
    Call(Call),
    Answer(u64, Result<Answer, ActionError>),
    Shutdown,
    /// The host closed the channel cleanly.
    Closed,
    /// The channel broke, or the host sent something this side does not understand.
    Broken(String),
}

impl State {
    /// Whether the standby sleeps without a deadline and should be woken; it counts as woken
    /// from now on, so that it is woken once.
    fn rouse_standby(&mut self) -> bool {
        std::mem::take(&mut self.standby_sleeping)
    }
}

impl Channel {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next frame, and whether it had been read from the socket already (it waited while
    /// the reader ran a call) rather than arriving now.
    fn read(&self) -> (Frame, bool) {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let (stream, buffer) = &mut *reader;
        let waited = !stream.buffer().is_empty();
        // The read may wait for the host, which may wait for the replies held back. (No reply is
        // held back while this thread reads: holding one takes the reader's lock. A write that
        // fails leaves the read to find the channel closed or broken.)
        if !holds_frame(stream.buffer()) && self.holding.load(Ordering::Acquire) {
            self.flush();
        }
        let frame = match read_frame(stream, buffer) {
            Ok(true) => match decode::<HostMessage>(buffer) {
                Ok(HostMessage::Call { id, action, inputs }) => Frame::Call((id, action, inputs)),
                Ok(HostMessage::Rows { id, rows, affected }) => Frame::Answer(id, Ok((rows, affected))),
                Ok(HostMessage::QueryFailed { id, error }) => {
                    Frame::Answer(id, Err(ActionError::new(error.code, error.message)))
                }
                Ok(HostMessage::Shutdown) => Frame::Shutdown,
                Ok(other) => Frame::Broken(format!("unexpected message from the host: {other:?}")),
                Err(error) => Frame::Broken(error.to_string()),
            },
            Ok(false) => Frame::Closed,
            Err(error) => Frame::Broken(error.to_string()),
        };
        (frame, waited)
    }

    /// Wakes a thread to take the lead, or (when the lead was just parked) to become the
    /// standby: any idle worker will do, unless threads wait for answers, which must all look. The standby is woken too if it sleeps: it may be the only
    /// idle worker. `standby` is what [`State::rouse_standby`] said under the lock.
    fn pass_lead(&self, everyone: bool, standby: bool) {
        if everyone {
            self.wake.notify_all();
        } else {
            self.wake.notify_one();
        }
        if standby {
            self.standby_wake.notify_one();
        }
    }

    /// Records what the leader read that is not its own to run: an answer for its waiter, or
    /// the end of the channel.
    fn settle(&self, state: &mut State, frame: Frame) {
        match frame {
            Frame::Call(call) => state.backlog.push_back(call),
            Frame::Answer(id, answer) => {
                // An answer to no query in flight is dropped: its waiter is gone.
                if let Some(slot) = state.answers.get_mut(&id) {
                    *slot = Some(answer);
                }
            }
            Frame::Shutdown => state.stopping = true,
            Frame::Closed => state.closed = Some("the host closed the channel".into()),
            Frame::Broken(reason) => {
                state.closed = Some(reason.clone());
                state.broken = Some(reason);
            }
        }
        self.wake.notify_all();
        self.standby_wake.notify_all();
    }

    /// The next call for idle worker `worker`, or `None` once it should exit.
    fn next_call(&self, worker: usize) -> Result<Option<Call>, String> {
        let mut state = self.state();
        let mut standby = false;
        let outcome = loop {
            if let Some(call) = state.backlog.pop_front() {
                break Ok(Some(call));
            }
            if let Some(reason) = state.broken.take() {
                break Err(reason);
            }
            if state.stopping || state.closed.is_some() {
                break Ok(None);
            }
            // The lead is free, or parked with this worker, or parked beyond its deadline.
            let may_lead =
                !state.leading && state.parked.is_none_or(|park| park.worker == worker || Instant::now() >= park.until);
            if may_lead {
                if std::mem::take(&mut standby) {
                    // Another idle worker becomes the standby.
                    state.standby = false;
                    self.wake.notify_one();
                }
                let taken = state.parked.take();
                state.leading = true;
                drop(state);
                if taken.is_some_and(|park| park.worker != worker) {
                    // Replies the parked worker held back go out now, not after its call.
                    self.flush();
                }
                let (frame, waited) = self.read();
                state = self.state();
                state.leading = false;
                if let Frame::Call(call) = frame {
                    // A call that waited in the buffer while the lead was parked keeps that
                    // park's deadline: otherwise a worker running calls shorter than the park,
                    // one after the other, would renew it forever while the others idle, and
                    // longer calls would start one park apart. Past it, the standby takes the
                    // lead at once, and so on down the calls that wait.
                    let until = match taken {
                        Some(park) if waited => park.until,
                        _ => Instant::now() + PARK,
                    };
                    state.parked = Some(Park { worker, until });
                    // Threads waiting for answers may take the parked lead; a sleeping standby
                    // starts counting; with no standby (every other worker busy, or the role
                    // just left), an idle worker is woken to take the role. Woken after the
                    // lock is let go, so that they do not wake only to wait for it.
                    let everyone = state.querying > 0;
                    let rouse = state.rouse_standby();
                    let vacant = !state.standby;
                    drop(state);
                    if everyone || vacant {
                        self.pass_lead(everyone, rouse);
                    } else if rouse {
                        self.standby_wake.notify_one();
                    }
                    return Ok(Some(call));
                }
                self.settle(&mut state, frame);
                continue;
            }
            if !state.standby {
                state.standby = true;
                standby = true;
            }
            state = if !standby {
                self.wake.wait(state).unwrap_or_else(PoisonError::into_inner)
            } else if let Some(park) = state.parked {
                let left = park.until.saturating_duration_since(Instant::now());
                self.standby_wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
            } else {
                state.standby_sleeping = true;
                let mut state = self.standby_wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                state.standby_sleeping = false;
                state
            };
        };
        if standby {
            // Leaving the role (for a call in the backlog, or to exit): another idle worker
            // takes it. Replies held back, counting on this standby, go out now.
            state.standby = false;
            state.standby_sleeping = false;
            drop(state);
            self.wake.notify_one();
            self.flush();
        }
        outcome
    }

    /// Sends a query for call `call` and waits for its answer, leading while no one else does.
    pub(crate) fn query(
        &self,
        call: u64,
        database: &str,
        sql: &str,
        params: Vec<serde_json::Value>,
    ) -> Result<Answer, ActionError> {
        let gone = |reason: &str| {
            ActionError::new("database_unavailable", format!("the query cannot reach the host: {reason}"))
        };
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.state();
            if let Some(reason) = &state.closed {
                return Err(gone(reason));
            }
            state.answers.insert(id, None);
            state.querying += 1;
        }
        let frame =
            encode(&ExtensionMessage::Query { id, call, database: database.to_owned(), sql: sql.to_owned(), params });
        let sent = self.send(&frame);
        let mut state = self.state();
        let answer = match sent {
            Err(error) => Err(gone(&error.to_string())),
            Ok(()) => loop {
                if let Some(Some(_)) = state.answers.get(&id) {
                    break state.answers.remove(&id).flatten().unwrap_or_else(|| Err(gone("no answer")));
                }
                if let Some(reason) = &state.closed {
                    break Err(gone(reason));
                }
                // A parked lead too: this answer must not wait for the park to end.
                if !state.leading {
                    let taken = state.parked.take();
                    state.leading = true;
                    drop(state);
                    if taken.is_some() {
                        self.flush();
                    }
                    let (frame, _) = self.read();
                    state = self.state();
                    state.leading = false;
                    // Whatever it was, the loop looks again: the answer, the end of the channel
                    // (which a worker then reports as the process's outcome), or more to wait.
                    self.settle(&mut state, frame);
                    continue;
                }
                state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            },
        };
        state.answers.remove(&id);
        state.querying -= 1;
        let everyone = state.querying > 0 || !state.backlog.is_empty();
        let rouse = state.rouse_standby();
        drop(state);
        // This thread may have held the lead: someone else takes it now.
        self.pass_lead(everyone, rouse);
        answer
    }

    fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what is held back, then `frame`, in one write.
    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut outgoing = self.outgoing();
        if outgoing.held.is_empty() {
            return outgoing.stream.write_all(frame);
        }
        let mut held = std::mem::take(&mut outgoing.held);
        held.extend_from_slice(frame);
        let sent = outgoing.stream.write_all(&held);
        held.clear();
        outgoing.held = held;
        self.holding.store(false, Ordering::Release);
        sent
    }

    /// Writes what is held back. A broken channel is left to the reader to find and report.
    fn flush(&self) {
        if self.send(&[]).is_err() {
            // The next read sees the channel closed or broken.
        }
    }

    /// Answers a call run by worker `worker`: held back (see [`Channel`]) while that worker
    /// keeps the lead with a whole call waiting in the buffer, which it reads next, and a
    /// standby waits to take the lead if that call runs long; written at once otherwise.
    fn reply(&self, worker: usize, reply: &ExtensionMessage) -> Result<(), String> {
        let frame = encode(reply);
        {
            let state = self.state();
            let runs_next = state.standby
                && state.parked.is_some_and(|park| park.worker == worker)
                && self.reader.try_lock().is_ok_and(|reader| holds_frame(reader.0.buffer()));
            // Under the state lock, so that a thread taking the lead from this worker flushes
            // after; and only when no one is writing, so that the state's lock is not held
            // through another thread's write.
            if runs_next && let Ok(mut outgoing) = self.writer.try_lock() {
                outgoing.held.extend_from_slice(&frame);
                self.holding.store(true, Ordering::Release);
                return Ok(());
            }
        }
        self.send(&frame).map_err(|error| format!("cannot answer the host: {error}"))
    }
}

/// The call the current thread runs, so that [`crate::database`] knows which call a query
/// belongs to.
#[derive(Clone)]
pub(crate) struct CallContext {
    /// The call's id.
    pub(crate) call: u64,
    /// The channel it came on.
    pub(crate) channel: Arc<Channel>,
}

thread_local! {
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

/// The call the current thread runs, if it runs one.
pub(crate) fn current_call() -> Option<CallContext> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Clears the current call when dropped, on every path out of the action (a panic too).
struct Running;

impl Running {
    fn enter(context: CallContext) -> Self {
        CURRENT.with(|current| *current.borrow_mut() = Some(context));
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

fn work(channel: &Arc<Channel>, handler: &dyn Handler, worker: usize) -> Result<(), String> {
    let outcome = run_calls(channel, handler, worker);
    // Replies held back go out before the worker ends.
    channel.flush();
    outcome
}

fn run_calls(channel: &Arc<Channel>, handler: &dyn Handler, worker: usize) -> Result<(), String> {
    while let Some((id, action, inputs)) = channel.next_call(worker)? {
        let result = {
            let _running = Running::enter(CallContext { call: id, channel: Arc::clone(channel) });
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.call(&action, inputs))).unwrap_or_else(
                |panic| {
                    let detail = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    Err(ActionError::new("panic", format!("action `{action}` panicked: {detail}")))
                },
            )
        };
        let reply = match result {
            Ok(outputs) => ExtensionMessage::Return { id, outputs },
            Err(error) => {
                ExtensionMessage::Fail { id, error: ActionFailure { code: error.code, message: error.message } }
            }
        };
        channel.reply(worker, &reply)?;
    }
    Ok(())
}
