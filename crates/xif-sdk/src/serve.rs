//! The serve loop: connect to the host, say hello, run calls until told to stop, and carry the
//! queries actions make on their logical databases.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

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
        writer: Mutex::new(writer),
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        next_query: AtomicU64::new(1),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let channel = Arc::clone(&channel);
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || work(&channel, &*handler))
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
/// thread on its way; it wakes another thread to lead first. A thread waiting for the answer
/// to its query leads too while no one else does: otherwise, with every worker waiting on a
/// query, no one would read the answers. A call such a thread reads goes to `backlog`, for the
/// next idle worker; an answer for another query is left in `answers` for its waiter.
pub(crate) struct Channel {
    /// Locked only by the leader.
    reader: Mutex<(BufReader<UnixStream>, Vec<u8>)>,
    writer: Mutex<UnixStream>,
    state: Mutex<State>,
    /// Signalled when the lead is free, a call waits in the backlog, an answer arrived, or the
    /// channel ended.
    wake: Condvar,
    next_query: AtomicU64,
}

#[derive(Default)]
struct State {
    /// A thread is reading the channel.
    leading: bool,
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

impl Channel {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> Frame {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let (stream, buffer) = &mut *reader;
        match read_frame(stream, buffer) {
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
        }
    }

    /// Wakes a thread to take the lead: any idle worker will do, unless threads wait for
    /// answers, which must all look.
    fn pass_lead(&self, everyone: bool) {
        if everyone {
            self.wake.notify_all();
        } else {
            self.wake.notify_one();
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
    }

    /// The next call for an idle worker, or `None` once it should exit.
    fn next_call(&self) -> Result<Option<Call>, String> {
        let mut state = self.state();
        loop {
            if let Some(call) = state.backlog.pop_front() {
                return Ok(Some(call));
            }
            if let Some(reason) = state.broken.take() {
                return Err(reason);
            }
            if state.stopping || state.closed.is_some() {
                return Ok(None);
            }
            if !state.leading {
                state.leading = true;
                drop(state);
                let frame = self.read();
                state = self.state();
                state.leading = false;
                if let Frame::Call(call) = frame {
                    // Woken after the lock is let go, so that the next leader does not wake
                    // only to wait for it.
                    let everyone = state.querying > 0 || !state.backlog.is_empty();
                    drop(state);
                    self.pass_lead(everyone);
                    return Ok(Some(call));
                }
                self.settle(&mut state, frame);
                continue;
            }
            state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
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
        let sent = self.writer.lock().unwrap_or_else(PoisonError::into_inner).write_all(&frame);
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
                if !state.leading {
                    state.leading = true;
                    drop(state);
                    let frame = self.read();
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
        drop(state);
        // This thread may have held the lead: someone else takes it now.
        self.pass_lead(everyone);
        answer
    }

    fn reply(&self, reply: &ExtensionMessage) -> Result<(), String> {
        let frame = encode(reply);
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.write_all(&frame).map_err(|error| format!("cannot answer the host: {error}"))
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

fn work(channel: &Arc<Channel>, handler: &dyn Handler) -> Result<(), String> {
    while let Some((id, action, inputs)) = channel.next_call()? {
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
        channel.reply(&reply)?;
    }
    Ok(())
}
