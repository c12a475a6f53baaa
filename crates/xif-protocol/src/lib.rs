//! The wire protocol between a host (`xif call`, the Platform Server) and an extension process.
//!
//! The host starts the extension with the path of a Unix socket in [`CHANNEL_ENV`] and a
//! one-time secret in [`TOKEN_ENV`]; the extension connects, and from then on both sides
//! exchange frames: a little-endian `u32` length followed by that many bytes of JSON. Stdout
//! and stderr are never part of the protocol; they are the extension's log.
//!
//! 1. The extension sends [`ExtensionMessage::Hello`]: protocol version, the secret, its name,
//!    version and action signatures.
//! 2. The host answers [`HostMessage::Welcome`], or [`HostMessage::Refuse`] and closes.
//! 3. The host sends [`HostMessage::Call`]s, each with an id of its choosing; the extension
//!    answers each with [`ExtensionMessage::Return`] or [`ExtensionMessage::Fail`] carrying the
//!    same id, in any order: calls are concurrent.
//! 4. [`HostMessage::Shutdown`] asks the extension to finish its calls and exit.
//!
//! During a call, the extension may ask the host to run SQL on one of its logical databases
//! ([`ExtensionMessage::Query`], naming the call it belongs to); the host runs it on the
//! database connection the server mapped that logical database to, and answers
//! [`HostMessage::Rows`] or [`HostMessage::QueryFailed`] with the query's id. The extension
//! never sees the connection or its credentials. Parameters and cells travel in the platform's
//! JSON forms (the values of action inputs). These messages did not raise [`PROTOCOL_VERSION`]:
//! a host only sends them in answer to a query, so an extension that never queries works with
//! any host of version 1, and one that does needs a host that knows them (an older host stops
//! it as having broken the protocol).
//!
//! This crate knows the messages and the framing over `std::io`; it does not know processes,
//! sockets or async runtimes.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The version this crate speaks. A host refuses an extension that speaks another one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variable holding the path of the socket the extension connects to.
pub const CHANNEL_ENV: &str = "XIF_CHANNEL";

/// Environment variable holding the secret the extension proves itself with in its hello.
pub const TOKEN_ENV: &str = "XIF_CHANNEL_TOKEN";

/// Frames larger than this are refused as garbage rather than allocated.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Inputs or outputs of an action: parameter name to JSON value.
pub type Values = serde_json::Map<String, serde_json::Value>;

/// A message from the extension to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExtensionMessage {
    /// The first frame on the channel.
    Hello(Hello),
    /// A call finished with outputs.
    Return {
        /// The call's id.
        id: u64,
        /// Output parameter name to value.
        outputs: Values,
    },
    /// A call failed with the action's own error.
    Fail {
        /// The call's id.
        id: u64,
        /// What went wrong.
        error: ActionFailure,
    },
    /// Run SQL on a logical database of the extension, for a call in flight.
    Query {
        /// Chosen by the extension, unique among its queries in flight.
        id: u64,
        /// The id of the call the query belongs to.
        call: u64,
        /// The logical database, as the definition's entities name it (`main`).
        database: String,
        /// One SQL statement in the dialect of the mapped database, with parameters written as
        /// that dialect writes them (`$1` for PostgreSQL, `?` for MySQL and SQLite).
        sql: String,
        /// The parameters' values, in order, in the platform's JSON forms, but Binary Data as
        /// `{"base64": "…"}` (so that it is bound as bytes, not as its base64 text).
        #[serde(default)]
        params: Vec<serde_json::Value>,
    },
}

/// A row a query returned: column name to value, in the platform's JSON forms.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// What an extension says of itself when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version it speaks.
    pub protocol: u32,
    /// The secret from [`TOKEN_ENV`].
    pub token: String,
    /// Its name, as in its definition.
    pub extension: String,
    /// Its version, as in its definition.
    pub version: String,
    /// The actions it implements.
    pub actions: Vec<ActionSignature>,
}

/// The shape of an action as the extension was compiled with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSignature {
    /// The action's name.
    pub name: String,
    /// Its inputs, in order.
    pub inputs: Vec<ParameterSignature>,
    /// Its outputs, in order.
    pub outputs: Vec<ParameterSignature>,
}

/// The shape of a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterSignature {
    /// Its name.
    pub name: String,
    /// Its data type, as written in `extension.toml` (`Long Integer`).
    #[serde(rename = "type")]
    pub data_type: String,
    /// The structure or entity of a Record, Record List or Entity Identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// An action's own error, as the extension reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionFailure {
    /// A stable code the action chose (`not_implemented`, `card_declined`).
    pub code: String,
    /// What a person should know.
    pub message: String,
}

/// A message from the host to the extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMessage {
    /// The hello was accepted.
    Welcome {
        /// The protocol version the host speaks.
        protocol: u32,
    },
    /// The hello was refused; the host closes the channel.
    Refuse {
        /// Why.
        reason: String,
    },
    /// Run an action.
    Call {
        /// Chosen by the host, unique among the calls in flight.
        id: u64,
        /// The action's name.
        action: String,
        /// Input parameter name to value.
        inputs: Values,
    },
    /// Finish the calls in flight and exit.
    Shutdown,
    /// A query succeeded.
    Rows {
        /// The query's id.
        id: u64,
        /// The rows it returned, in order (none for a statement that returns none).
        rows: Vec<Row>,
        /// The rows it changed (inserted, updated, deleted), as the database counts them.
        affected: u64,
    },
    /// A query failed: the database refused it, is not reachable, or the logical database is
    /// not declared or not mapped.
    QueryFailed {
        /// The query's id.
        id: u64,
        /// What went wrong, for the extension's author: a code and a message that names the
        /// logical database and the database's own message, never its URL.
        error: ActionFailure,
    },
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The channel failed.
    Io(io::Error),
    /// The peer announced a frame over [`MAX_FRAME`].
    TooLarge(usize),
    /// The frame is not a message of this protocol.
    Garbage(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(error) => write!(formatter, "the channel failed: {error}"),
            FrameError::TooLarge(size) => {
                write!(formatter, "a frame of {size} bytes is over the limit of {MAX_FRAME} bytes")
            }
            FrameError::Garbage(detail) => write!(formatter, "a frame is not a protocol message: {detail}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(error: io::Error) -> Self {
        FrameError::Io(error)
    }
}

/// Encodes `message` as one frame, length prefix included.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut frame = vec![0; 4];
    // Serializing these message types to a Vec cannot fail: every map key is a string.
    if serde_json::to_writer(&mut frame, message).is_err() {
        frame.truncate(4);
        frame.extend_from_slice(b"null");
    }
    let length = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&length.to_le_bytes());
    frame
}

/// Decodes the payload of a frame (without its length prefix).
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|error| {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
        FrameError::Garbage(format!("{error} in `{shown}`"))
    })
}

/// The payload length announced by a frame's 4-byte prefix, checked against [`MAX_FRAME`].
pub fn frame_length(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let length = u32::from_le_bytes(prefix) as usize;
    if length > MAX_FRAME { Err(FrameError::TooLarge(length)) } else { Ok(length) }
}

/// Writes one message as a frame.
pub fn write_message<T: Serialize>(writer: &mut impl Write, message: &T) -> io::Result<()> {
    writer.write_all(&encode(message))
}

/// Reads one frame's payload into `buffer`. `Ok(false)` means the peer closed the channel
/// cleanly between frames.
pub fn read_frame(reader: &mut impl Read, buffer: &mut Vec<u8>) -> Result<bool, FrameError> {
    let mut prefix = [0; 4];
    let mut filled = 0;
    while filled < 4 {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    let length = frame_length(prefix)?;
    buffer.clear();
    buffer.resize(length, 0);
    reader.read_exact(buffer)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_frames() {
        let mut values = Values::new();
        values.insert("Amount".into(), serde_json::json!("12.50"));
        let messages = [
            HostMessage::Welcome { protocol: PROTOCOL_VERSION },
            HostMessage::Call { id: 7, action: "Charge".into(), inputs: values },
            HostMessage::Shutdown,
            HostMessage::Rows { id: 3, rows: vec![Row::from_iter([("Name".into(), "Ann".into())])], affected: 0 },
            HostMessage::QueryFailed {
                id: 4,
                error: ActionFailure { code: "database_error".into(), message: "no table `x`".into() },
            },
        ];
        let mut channel = Vec::new();
        for message in &messages {
            write_message(&mut channel, message).expect("written");
        }
        let mut reader = channel.as_slice();
        let mut buffer = Vec::new();
        for message in &messages {
            assert!(read_frame(&mut reader, &mut buffer).expect("a frame"));
            assert_eq!(&decode::<HostMessage>(&buffer).expect("a message"), message);
        }
        assert!(!read_frame(&mut reader, &mut buffer).expect("clean end"));
    }

    #[test]
    fn a_query_without_parameters_reads_as_one_with_none() {
        let query: ExtensionMessage =
            decode(br#"{"type":"query","id":1,"call":2,"database":"main","sql":"SELECT 1"}"#).expect("a query");
        assert_eq!(
            query,
            ExtensionMessage::Query { id: 1, call: 2, database: "main".into(), sql: "SELECT 1".into(), params: vec![] }
        );
    }

    #[test]
    fn oversized_truncated_and_garbage_frames_are_refused() {
        let mut buffer = Vec::new();
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(read_frame(&mut huge.as_slice(), &mut buffer), Err(FrameError::TooLarge(_))));
        let truncated = [10, 0, 0, 0, b'{'];
        assert!(matches!(read_frame(&mut truncated.as_slice(), &mut buffer), Err(FrameError::Io(_))));
        assert!(matches!(decode::<HostMessage>(b"hello"), Err(FrameError::Garbage(_))));
        assert!(matches!(decode::<HostMessage>(br#"{"type":"launch"}"#), Err(FrameError::Garbage(_))));
    }
}
