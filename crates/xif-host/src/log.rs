//! The extension's log: what it writes to stdout and stderr, of which the newest bytes are kept.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt};

/// A bounded log: once full, the oldest bytes make room for the newest.
#[derive(Debug)]
pub struct Log {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bytes: VecDeque<u8>,
    dropped: u64,
}

impl Log {
    /// A log keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// Appends `bytes`, dropping the oldest if needed.
    pub fn append(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (inner.bytes.len() + keep.len()).saturating_sub(self.capacity);
        inner.bytes.drain(..overflow);
        inner.dropped += (overflow + bytes.len() - keep.len()) as u64;
        inner.bytes.extend(keep);
    }

    /// The kept text, with a note of how much was dropped before it.
    pub fn text(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (front, back) = inner.bytes.as_slices();
        let mut bytes = front.to_vec();
        bytes.extend_from_slice(back);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if inner.dropped > 0 { format!("[{} earlier bytes dropped]\n{text}", inner.dropped) } else { text }
    }

    /// The last `lines` lines of the kept text, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = self.text();
        let mut tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.reverse();
        tail.join("\n")
    }

    /// Copies `stream` into the log until it ends. The stream is always drained, however much
    /// the extension writes, so that it never blocks on a full pipe.
    pub(crate) async fn drain(&self, mut stream: impl AsyncRead + Unpin) {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            self.append(&buffer[..read]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes() {
        let log = Log::new(10);
        log.append(b"hello ");
        log.append(b"world, again");
        assert_eq!(log.text(), "[8 earlier bytes dropped]\nrld, again");
        log.append(b"\nend");
        assert_eq!(log.tail(1), "end");
    }
}
