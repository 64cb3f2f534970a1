//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]

#[cfg(feature = "ssl-openssl")]
use zeroize::Zeroizing;

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use client::ClientConnection;
use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};
pub use test::TestRequest;
#[doc(hidden)]
pub use client::fuzz_head;

mod client;
mod common;
mod connection;
mod request;
mod response;
mod ssl;
mod test;
mod util;

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,

    // dpyfs: set when the accept thread ended without `close` (it panicked): the server
    // accepts nothing any more, `recv` fails, and the owner should exit non-zero.
    accept_failed: Arc<AtomicBool>,
}

/// dpyfs: the longest request line or header line, line end included.
pub const LINE_BYTES_MAX: usize = 16 * 1024;
/// dpyfs: the longest request head (request line and headers).
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// dpyfs: the most headers in one request.
pub const HEADERS_MAX: usize = 100;
/// dpyfs: a request head must arrive whole this long after its first byte.
pub const HEAD_TIMEOUT_SECS: u64 = 15;
/// dpyfs: the most connections open at once; more are answered 503 and closed.
pub const CONNECTIONS_MAX: usize = 512;
/// dpyfs: how long a connection closed by the server goes on reading what the client
/// still sends (see `ClientConnection::linger`), and how much of it at most.
/// Long enough for a refused 8 MiB chunk upload to arrive over a slow LAN, so that a
/// client that sends its whole body before reading (dpyfs's director, to a store) still
/// gets the answer rather than a reset.
pub const LINGER_MS: u64 = 5_000;
pub const LINGER_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// dpyfs: a condition that may repeat (refused connections, accept errors) is logged at
/// most once in this long, with the count of the repeats.
const REPEAT_LOG_SECS: u64 = 60;

/// dpyfs: the bounds of the HTTP edge (defaults: the constants above).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub line_bytes_max: usize,
    pub head_bytes_max: usize,
    pub headers_max: usize,
    pub head_timeout: Duration,
    pub connections_max: usize,
    pub linger: Duration,
    pub linger_bytes_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_bytes_max: LINE_BYTES_MAX,
            head_bytes_max: HEAD_BYTES_MAX,
            headers_max: HEADERS_MAX,
            head_timeout: Duration::from_secs(HEAD_TIMEOUT_SECS),
            connections_max: CONNECTIONS_MAX,
            linger: Duration::from_millis(LINGER_MS),
            linger_bytes_max: LINGER_BYTES_MAX,
        }
    }
}

/// dpyfs: logs a repeating condition at most once per `REPEAT_LOG_SECS`.
struct RepeatLog {
    last: Option<Instant>,
    missed: u64,
}

impl RepeatLog {
    fn new() -> Self {
        RepeatLog {
            last: None,
            missed: 0,
        }
    }

    fn log(&mut self, level: log::Level, what: std::fmt::Arguments<'_>) {
        let due = self
            .last
            .map_or(true, |t| t.elapsed() >= Duration::from_secs(REPEAT_LOG_SECS));
        if due {
            if self.missed > 0 {
                log::log!(level, "{} ({} more since the last report)", what, self.missed);
            } else {
                log::log!(level, "{}", what);
            }
            self.last = Some(Instant::now());
            self.missed = 0;
        } else {
            self.missed += 1;
        }
    }
}

/// dpyfs: counts a connection while its task (or the closure holding it) lives.
struct LiveConnection(Arc<AtomicUsize>);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// dpyfs: runs when the accept thread ends. Unless the server was closed, the thread died
/// (a panic): the queue is closed so every `recv` fails at once, and `accept_failed`
/// tells the owner, which exits non-zero so that a supervisor (systemd) restarts it.
/// Upstream's accept thread could die silently and leave a live process that accepted
/// nothing.
struct AcceptThreadEnd {
    close: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    messages: Arc<MessagesQueue<Message>>,
}

impl Drop for AcceptThreadEnd {
    fn drop(&mut self) {
        if !self.close.load(Relaxed) {
            log::error!("the accept thread ended: no connection is accepted any more");
            self.failed.store(true, Relaxed);
            self.messages.close();
        }
    }
}

/// dpyfs: the answer to a connection beyond `Limits::connections_max`, written to its
/// fresh (empty) send buffer before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Retry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n\r\ntoo many open connections\n";

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// this trait is to make sure that Server implements Share and Send
#[doc(hidden)]
trait MustBeShareDummy: Sync + Send {}
#[doc(hidden)]
impl MustBeShareDummy for Server {}

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// If `Some`, then the server will use SSL to encode the communications.
    pub ssl: Option<SslConfig>,
}

/// Configuration of the server for SSL.
#[cfg(not(feature = "ssl-rustls"))]
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
}

/// dpyfs: with rustls 0.23, the TLS settings are a source of `rustls::ServerConfig`, asked
/// once for every new connection, so that a certificate replaced on disk (or a new client
/// CA) takes effect without a restart. The handshake itself runs on the connection's own
/// thread, never on the accept thread.
#[cfg(feature = "ssl-rustls")]
#[derive(Clone)]
pub struct SslConfig {
    pub source: Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>,
}

#[cfg(feature = "ssl-rustls")]
impl std::fmt::Debug for SslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SslConfig { source: .. }")
    }
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: None,
        })
    }

    /// Shortcut for an HTTPS server on a specific address.
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    #[inline]
    pub fn https<A>(
        addr: A,
        config: SslConfig,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: Some(config),
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_with_limits(listener, ssl_config, Limits::default())
    }

    /// dpyfs: `from_listener` with the edge's bounds.
    pub fn from_listener_with_limits<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
        limits: Limits,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = listener.into();
        // building the "close" variable
        let close_trigger = Arc::new(AtomicBool::new(false));

        // building the TcpListener
        let (server, local_addr) = {
            let local_addr = listener.local_addr()?;
            log::debug!("Server listening on {}", local_addr);
            (listener, local_addr)
        };

        // building the SSL capabilities
        #[cfg(all(feature = "ssl-openssl", feature = "ssl-rustls"))]
        compile_error!(
            "Features 'ssl-openssl' and 'ssl-rustls' must not be enabled at the same time"
        );
        #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
        type SslContext = ();
        #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
        type SslContext = crate::ssl::SslContextImpl;
        let ssl: Option<SslContext> = {
            match ssl_config {
                #[cfg(feature = "ssl-openssl")]
                Some(config) => Some(SslContext::from_pem(
                    config.certificate,
                    Zeroizing::new(config.private_key),
                )?),
                #[cfg(feature = "ssl-rustls")]
                Some(config) => Some(SslContext::new(config.source)),
                #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                Some(_) => return Err(
                    "Building a server with SSL requires enabling the `ssl` feature in tiny-http"
                        .into(),
                ),
                None => None,
            }
        };

        // creating a task where server.accept() is continuously called
        // and ClientConnection objects are pushed in the messages queue
        let messages = MessagesQueue::with_capacity(8);

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        let accept_failed = Arc::new(AtomicBool::new(false));
        let accept_end = AcceptThreadEnd {
            close: close_trigger.clone(),
            failed: accept_failed.clone(),
            messages: messages.clone(),
        };
        thread::Builder::new().name("http-accept".into()).spawn(move || {
            let _accept_end = accept_end;
            // a tasks pool is used to dispatch the connections into threads
            let tasks_pool = util::TaskPool::new();
            // dpyfs: connections open now, and the log of refusals and accept errors.
            let live = Arc::new(AtomicUsize::new(0));
            let mut refusals = RepeatLog::new();
            let mut accept_errors = RepeatLog::new();

            log::debug!("Running accept thread");
            while !inside_close_trigger.load(Relaxed) {
                let new_client = match server.accept() {
                    // dpyfs: beyond the cap a connection is answered 503 and closed at once
                    // (upstream started a thread for every connection, without bound).
                    Ok((mut sock, remote)) if live.load(Relaxed) >= limits.connections_max => {
                        use std::io::Write;
                        sock.write_all(BUSY_RESPONSE).ok();
                        refusals.log(log::Level::Warn, format_args!(
                            "refused a connection from {:?}: {} connections are open (the limit)",
                            remote, limits.connections_max
                        ));
                        continue;
                    }
                    Ok((sock, _)) => {
                        use util::RefinedTcpStream;
                        let pair = match ssl {
                            None => RefinedTcpStream::new(sock),
                            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                            Some(ref ssl) => {
                                // trying to apply SSL over the connection
                                // if an error occurs, we just close the socket and resume listening
                                let sock = match ssl.accept(sock) {
                                    Ok(s) => s,
                                    Err(_) => continue,
                                };

                                RefinedTcpStream::new(sock)
                            }
                            #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                            Some(ref _ssl) => unreachable!(),
                        };
                        // dpyfs: out of file descriptors (EMFILE) for the second handle:
                        // the connection is dropped, the accept thread goes on.
                        let (read_closable, write_closable) = match pair {
                            Ok(p) => p,
                            Err(e) => {
                                accept_errors.log(log::Level::Error, format_args!(
                                    "dropped a new connection: {}",
                                    e
                                ));
                                continue;
                            }
                        };

                        Ok(ClientConnection::new(write_closable, read_closable, limits))
                    }
                    Err(e) => Err(e),
                };

                match new_client {
                    Ok(client) => {
                        let messages = inside_messages.clone();
                        let mut client = Some(client);
                        live.fetch_add(1, Relaxed);
                        let live_guard = LiveConnection(live.clone());
                        tasks_pool.spawn(Box::new(move || {
                            let _live = &live_guard;
                            if let Some(client) = client.take() {
                                // Synchronization is needed for HTTPS requests to avoid a deadlock
                                if client.secure() {
                                    let (sender, receiver) = mpsc::channel();
                                    for rq in client {
                                        messages.push(rq.with_notify_sender(sender.clone()).into());
                                        receiver.recv().unwrap();
                                    }
                                } else {
                                    for rq in client {
                                        messages.push(rq.into());
                                    }
                                }
                            }
                        }));
                    }

                    // dpyfs: an accept error never ends the accept thread. The listener
                    // carries SO_RCVTIMEO (so that accepted connections inherit it), which
                    // makes accept() return EAGAIN after an idle period; and EMFILE or
                    // ECONNABORTED are passing conditions. Upstream stopped accepting for good.
                    Err(ref e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue
                    }
                    Err(e) => {
                        accept_errors.log(
                            log::Level::Error,
                            format_args!("Error accepting new client: {}", e),
                        );
                        thread::sleep(std::time::Duration::from_millis(100));
                        continue;
                    }
                }
            }
            log::debug!("Terminating accept thread");
        })?;

        // result
        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
            accept_failed,
        })
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        unimplemented!()
        //self.requests_receiver.lock().len()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    pub fn recv(&self) -> IoResult<Request> {
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// dpyfs: like `recv()`, but takes the first queued request that `take` accepts (see
    /// `MessagesQueue::pop_where`); the others stay queued in order.
    pub fn recv_where(&self, mut take: impl FnMut(&Request) -> bool) -> IoResult<Request> {
        let next = self.messages.pop_where(|m| match m {
            Message::Error(_) => true,
            Message::NewRequest(rq) => take(rq),
        });
        match next {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// dpyfs: true when the accept thread died (see `AcceptThreadEnd`).
    pub fn accept_failed(&self) -> bool {
        self.accept_failed.load(Relaxed)
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close.store(true, Relaxed);
        // Connect briefly to ourselves to unblock the accept thread
        let maybe_stream = match &self.listening_addr {
            ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
            #[cfg(unix)]
            ListenAddr::Unix(addr) => {
                // TODO: use connect_addr when its stabilized.
                let path = addr.as_pathname().unwrap();
                std::os::unix::net::UnixStream::connect(path).map(Connection::from)
            }
        };
        if let Ok(stream) = maybe_stream {
            let _ = stream.shutdown(Shutdown::Both);
        }

        #[cfg(unix)]
        if let ListenAddr::Unix(addr) = &self.listening_addr {
            if let Some(path) = addr.as_pathname() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dpyfs: an accept thread that dies (a panic) closes the queue, so every waiting
    /// `recv` fails at once, and leaves `accept_failed` set for the owner to exit on; a
    /// server closed on purpose sets nothing.
    #[test]
    fn a_dead_accept_thread_is_reported() {
        let messages = MessagesQueue::<Message>::with_capacity(1);
        let failed = Arc::new(AtomicBool::new(false));
        let waiter = {
            let m = messages.clone();
            thread::spawn(move || m.pop_where(|_| true).is_none())
        };
        let end = AcceptThreadEnd {
            close: Arc::new(AtomicBool::new(false)),
            failed: failed.clone(),
            messages: messages.clone(),
        };
        let dying = thread::spawn(move || {
            let _end = end;
            panic!("deliberate panic standing for a dead accept thread");
        });
        assert!(dying.join().is_err());
        assert!(failed.load(Relaxed));
        assert!(waiter.join().unwrap());
        assert!(messages.pop().is_none());

        let failed = Arc::new(AtomicBool::new(false));
        drop(AcceptThreadEnd {
            close: Arc::new(AtomicBool::new(true)),
            failed: failed.clone(),
            messages: MessagesQueue::with_capacity(1),
        });
        assert!(!failed.load(Relaxed));
    }

    /// dpyfs: the framings RFC 9112 §6.3 makes ambiguous are refused.
    #[test]
    fn ambiguous_framings_are_refused() {
        use crate::request::{framing, Framing};
        let h = |pairs: &[(&str, &str)]| -> Vec<Header> {
            pairs
                .iter()
                .map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap())
                .collect()
        };
        let v11 = HTTPVersion(1, 1);
        assert_eq!(framing(&h(&[]), &v11), Ok(Framing::NoBody));
        assert_eq!(
            framing(&h(&[("Content-Length", "12")]), &v11),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            framing(&h(&[("transfer-encoding", "Chunked")]), &v11),
            Ok(Framing::Chunked)
        );
        for bad in [
            &[("Content-Length", "5"), ("Content-Length", "5")][..],
            &[("Content-Length", "5"), ("Content-Length", "6")][..],
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")][..],
            &[("Transfer-Encoding", "gzip")][..],
            &[("Transfer-Encoding", "gzip, chunked")][..],
            &[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")][..],
            &[("Content-Length", "+5")][..],
            &[("Content-Length", "")][..],
            &[("Content-Length", "5,5")][..],
            &[("Content-Length", "99999999999999999999999")][..],
        ] {
            assert!(framing(&h(bad), &v11).is_err(), "{:?}", bad);
        }
        assert!(framing(&h(&[("Transfer-Encoding", "chunked")]), &HTTPVersion(1, 0)).is_err());
    }
}
