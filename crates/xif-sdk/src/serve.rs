//! The serve loop: connect to the host, say hello, run calls until told to stop.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use xif_protocol::{
    ActionFailure, ActionSignature, CHANNEL_ENV, ExtensionMessage, Hello, HostMessage, PROTOCOL_VERSION, TOKEN_ENV,
    Values, decode, encode, read_frame,
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

    // Leader and followers: the thread holding the reader reads one frame, lets go of the
    // reader, and runs that call itself, so a call is never handed from thread to thread.
    // Buffered: the host sends calls queued together in one write; they are read in one call.
    let shared = Arc::new(Shared {
        reader: Mutex::new((BufReader::with_capacity(64 * 1024, reader), buffer)),
        writer: Mutex::new(writer),
        stopping: AtomicBool::new(false),
        handler,
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || shared.work())
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

struct Shared {
    reader: Mutex<(BufReader<UnixStream>, Vec<u8>)>,
    writer: Mutex<UnixStream>,
    stopping: AtomicBool,
    handler: Arc<dyn Handler>,
}

impl Shared {
    fn work(&self) -> Result<(), String> {
        loop {
            let (id, action, inputs) = {
                let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
                if self.stopping.load(Ordering::Acquire) {
                    return Ok(());
                }
                let (stream, buffer) = &mut *reader;
                let message = match read_frame(stream, buffer) {
                    Ok(true) => decode::<HostMessage>(buffer).map_err(|error| error.to_string()),
                    // The host went away: nothing is left to serve.
                    Ok(false) => Ok(HostMessage::Shutdown),
                    Err(error) => Err(error.to_string()),
                };
                match message {
                    Ok(HostMessage::Call { id, action, inputs }) => (id, action, inputs),
                    Ok(HostMessage::Shutdown) => {
                        self.stopping.store(true, Ordering::Release);
                        return Ok(());
                    }
                    Ok(other) => {
                        self.stopping.store(true, Ordering::Release);
                        return Err(format!("unexpected message from the host: {other:?}"));
                    }
                    Err(error) => {
                        self.stopping.store(true, Ordering::Release);
                        return Err(error);
                    }
                }
            };
            let handler = &self.handler;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.call(&action, inputs)))
                .unwrap_or_else(|panic| {
                    let detail = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    Err(ActionError::new("panic", format!("action `{action}` panicked: {detail}")))
                });
            let reply = match result {
                Ok(outputs) => ExtensionMessage::Return { id, outputs },
                Err(error) => {
                    ExtensionMessage::Fail { id, error: ActionFailure { code: error.code, message: error.message } }
                }
            };
            let frame = encode(&reply);
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            writer.write_all(&frame).map_err(|error| format!("cannot answer the host: {error}"))?;
        }
    }
}
