//! dpyfs: TLS with rustls 0.23 (upstream's copy was written for rustls 0.20).
//!
//! The server's settings come from a source asked once per connection (see `SslConfig`),
//! so certificates can be replaced on disk while the server runs. The handshake runs on
//! the connection's own thread at its first read, with the socket's timeouts; a failed
//! handshake is logged once with the peer's address and the reason (unknown issuer,
//! expired certificate, no client certificate...). A client that speaks plain HTTP to this
//! port is answered with a plain-text 400 that says to use https://.

use crate::connection::Connection;
use crate::util::refined_tcp_stream::Stream as RefinedStream;
use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Connection: close\r\n\
Content-Length: 62\r\n\
\r\n\
This port speaks HTTPS only: use an https:// URL to reach it.\n";

struct Inner {
    tls: rustls::StreamOwned<rustls::ServerConnection, Connection>,
    /// Set once the handshake has been tried: its failure is reported once, and later
    /// reads and writes fail without another log line.
    handshake_done: bool,
    failed: bool,
}

/// A wrapper around an owned Rustls connection and corresponding stream.
///
/// Uses an internal Mutex to permit disparate reader & writer threads to access the stream
/// independently (tiny_http never reads and writes one TLS connection at the same time:
/// see the `secure()` synchronisation in `lib.rs`).
pub(crate) struct RustlsStream(Arc<Mutex<Inner>>);

impl RustlsStream {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the stream as it was: rustls's state is
        // then at worst in error, which the next read reports.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn peer_addr(&mut self) -> io::Result<Option<SocketAddr>> {
        self.lock().tls.sock.peer_addr()
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        let mut inner = self.lock();
        if matches!(how, Shutdown::Write | Shutdown::Both) && inner.handshake_done && !inner.failed
        {
            // A close_notify first, so the client can tell a complete answer from a cut one.
            inner.tls.conn.send_close_notify();
            let Inner { tls, .. } = &mut *inner;
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        inner.tls.sock.shutdown(how)
    }

    pub(crate) fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.lock().tls.sock.set_read_timeout(t)
    }

    pub(crate) fn read_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        self.lock().tls.sock.read_timeout()
    }
}

impl Inner {
    /// Runs the handshake once; later calls return its outcome.
    fn handshake(&mut self) -> io::Result<()> {
        if self.handshake_done {
            return if self.failed {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "TLS handshake failed",
                ))
            } else {
                Ok(())
            };
        }
        self.handshake_done = true;
        let peer = self.tls.sock.peer_addr().ok().flatten();
        let peer = peer.map_or_else(|| "a local socket".to_string(), |a| a.to_string());
        if let Connection::Tcp(s) = &self.tls.sock {
            let mut first = [0u8; 1];
            match s.peek(&mut first) {
                Ok(1) if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_alphabetic() => {
                    self.failed = true;
                    log::warn!(
                        "plain HTTP from {peer} on a TLS port: answered 400 (the client \
                         must use an https:// URL)"
                    );
                    let _ = self.tls.sock.write_all(PLAIN_HTTP_ANSWER);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "plain HTTP on a TLS port",
                    ));
                }
                Ok(0) => {
                    // Connected and closed without a byte (a port probe): nothing to log.
                    self.failed = true;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                _ => {}
            }
        }
        while self.tls.conn.is_handshaking() {
            let Inner { tls, .. } = self;
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                self.failed = true;
                // The alert telling the client why goes out if the socket still takes it.
                let Inner { tls, .. } = self;
                let _ = tls.conn.write_tls(&mut tls.sock);
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    log::debug!("TLS connection from {peer} closed during the handshake");
                } else {
                    log::warn!("refused a TLS connection from {peer}: {e}");
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Clone for RustlsStream {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Read for RustlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        inner.handshake()?;
        match inner.tls.read(buf) {
            // A client that closes without close_notify (most HTTP clients, after their
            // last response) has ended the connection, not cut a message.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

impl Write for RustlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        inner.handshake()?;
        inner.tls.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.handshake_done || inner.failed {
            return Ok(());
        }
        inner.tls.flush()
    }
}

/// The source of server settings (see `SslConfig`).
pub(crate) struct RustlsContext(Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>);

impl RustlsContext {
    pub(crate) fn new(source: Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>) -> Self {
        Self(source)
    }

    pub(crate) fn accept(
        &self,
        stream: Connection,
    ) -> Result<RustlsStream, Box<dyn Error + Send + Sync + 'static>> {
        let connection = rustls::ServerConnection::new((self.0)())?;
        Ok(RustlsStream(Arc::new(Mutex::new(Inner {
            tls: rustls::StreamOwned::new(connection, stream),
            handshake_done: false,
            failed: false,
        }))))
    }
}

impl From<RustlsStream> for RefinedStream {
    fn from(stream: RustlsStream) -> Self {
        Self::Https(stream)
    }
}
