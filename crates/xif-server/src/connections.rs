//! Connections: a cap on how many are open at once, taken before a connection is accepted, so
//! that those beyond it wait in the kernel's queue rather than take a file descriptor; and the
//! HTTP settings that close idle and trickling ones (see [`configure`]).
//!
//! Accept errors, such as running out of file descriptors, never stop the server: axum-server
//! tries again after a short pause, and they are logged at most every ten seconds.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ConnectionLimits;

/// File descriptors kept for the rest of the server (database, logs, extension processes) when
/// the connection cap is derived from the process's limit.
const RESERVED_DESCRIPTORS: u64 = 64;

/// A client's address, as the server's listener gives it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum_server::Address for Peer {
    type Stream = Connection;
    type Listener = Listener;
}

impl axum::extract::connect_info::Connected<Peer> for SocketAddr {
    fn connect_info(peer: Peer) -> Self {
        peer.0
    }
}

/// A TCP listener that accepts a connection only when the cap allows one more.
pub struct Listener {
    inner: tokio::net::TcpListener,
    permits: Arc<Semaphore>,
    last_warning: Mutex<Option<Instant>>,
}

impl Listener {
    /// Wraps a bound, non-blocking `listener`, with at most `cap` connections open at once.
    pub fn new(listener: std::net::TcpListener, cap: usize) -> io::Result<Self> {
        Ok(Self {
            inner: tokio::net::TcpListener::from_std(listener)?,
            permits: Arc::new(Semaphore::new(cap.max(1))),
            last_warning: Mutex::new(None),
        })
    }

    fn warn(&self, error: &io::Error) {
        let mut last = self.last_warning.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(%error, "cannot accept a connection; trying again");
        }
    }
}

impl axum_server::AddrListener<Connection, Peer> for Listener {
    async fn bind_to(_address: Peer) -> io::Result<Self> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "the server binds its listeners itself"))
    }

    async fn accept_stream(&self) -> io::Result<(Connection, Peer)> {
        let permit = self.permits.clone().acquire_owned().await.map_err(io::Error::other)?;
        match self.inner.accept().await {
            Ok((stream, address)) => {
                metrics::gauge!("xif_connections_open").increment(1.0);
                Ok((Connection { stream, _permit: permit }, Peer(address)))
            }
            Err(error) => {
                // A connection that the client reset while it waited is not worth a line.
                if error.kind() != io::ErrorKind::ConnectionAborted {
                    self.warn(&error);
                }
                Err(error)
            }
        }
    }

    fn get_local_addr(&self) -> io::Result<Peer> {
        self.inner.local_addr().map(Peer)
    }
}

/// An accepted connection, holding its place under the cap until it closes.
pub struct Connection {
    stream: tokio::net::TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        metrics::gauge!("xif_connections_open").decrement(1.0);
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The connection cap in force: the configured one, lowered when the process may not open that
/// many files (each connection may hold a file too: an upload's staging file, a download).
pub fn cap(limits: &ConnectionLimits) -> usize {
    let configured = limits.max_connections.max(1);
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            let affordable = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS) / 2).unwrap_or(usize::MAX);
            let cap = configured.min(affordable.max(16));
            if cap < configured {
                tracing::info!(
                    connections = cap,
                    open_files = soft,
                    "fewer connections at once than configured: the process may open only so many files"
                );
            }
            cap
        }
        Err(_) => configured,
    }
}

/// HTTP/1.1 only (every client of the API speaks it; HTTP/2 would need idle handling of its
/// own), with a time limit on reading a request's headers. Hyper starts that timer whenever a
/// connection waits for a request, when it opens and after each response, so it closes idle
/// keep-alive connections and trickling ones (slowloris) alike.
pub fn configure<Acceptor>(
    server: axum_server::Server<Peer, Acceptor>,
    limits: &ConnectionLimits,
) -> axum_server::Server<Peer, Acceptor> {
    let mut server = server.http1_only();
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    server
}

/// Lets the process open as many files as its hard limit allows, since each connection takes
/// one: a process-wide change, for the server's binary to make at start.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read the open-file limit"),
    }
}
