use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Header, Method, StatusCode};
use crate::request::BodyState;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::{Limits, Request, Response};

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    // dpyfs: None when the address cannot be had (the peer already gone); upstream
    // unwrapped the error later and the connection's thread panicked.
    remote_addr: Option<SocketAddr>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // dpyfs: the bounds of a request head, the lingering close.
    limits: Limits,

    // dpyfs: the read timeout the socket was accepted with (the idle timeout), restored
    // after a request head's deadline has shortened it.
    idle_timeout: Option<Duration>,

    // dpyfs: how the previous request's body ended (see `BodyState`).
    previous_body: Option<Arc<BodyState>>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    /// dpyfs: the request is answered with this status and a one-line reason, and the
    /// connection closes (we do not know where a next request would start).
    Refused(u16, HTTPVersion, &'static str),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// dpyfs: the previous response said `Connection: close` (its body was left unread).
    CloseAfterResponse,
    /// dpyfs: a TLS hello on this plain-HTTP port.
    TlsHello,
    ReadIoError(IoError),
}

/// dpyfs: why a line of a request head could not be read.
enum LineError {
    /// Longer than the bound given.
    TooLong,
    /// A CR that does not end the line.
    Malformed,
    /// A byte outside ASCII (say a raw UTF-8 `x-amz-meta-*` value).
    NotAscii,
    /// The head's deadline (`Limits::head_timeout`) passed after its first byte.
    TimedOut,
    /// No byte of a request came within the idle timeout, or the client closed.
    Ended(IoError),
    /// dpyfs: the first byte is that of a TLS handshake record: a client speaking HTTPS
    /// to this plain-HTTP port.
    TlsHello,
}

/// dpyfs: the deadline of one request head. It starts at the head's first byte (before
/// that, the idle timeout alone applies: a kept-alive connection may wait for its next
/// request), and the socket's read timeout is shortened to what is left of it before each
/// read from the socket, so a client that trickles header bytes is cut off on time.
struct HeadClock {
    timeout: Duration,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    shortened: bool,
}

impl HeadClock {
    fn before_socket_read(&mut self, stream: &RefinedTcpStream) -> Result<(), LineError> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LineError::TimedOut);
        }
        let left = self.idle.map_or(left, |idle| idle.min(left));
        stream
            .set_read_timeout(Some(left))
            .map_err(LineError::Ended)?;
        self.shortened = true;
        Ok(())
    }

    fn restore(&mut self, stream: &RefinedTcpStream) {
        if self.shortened {
            stream.set_read_timeout(self.idle).ok();
            self.shortened = false;
        }
    }
}

/// dpyfs: the first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// dpyfs: reads one line of a request head into `out`, without its line end. A line ends
/// with LF, with or without a CR before it (RFC 9112 §2.2 lets a server accept a bare LF,
/// which is what `printf 'GET /\n' | nc` sends; upstream waited for a CRLF that never
/// came). At most `max` bytes (line end included) are ever held: upstream grew its buffer
/// for as long as the client sent bytes, and a 700 MB header line aborted the daemon.
fn read_head_line(
    src: &mut BufReader<RefinedTcpStream>,
    clock: &mut HeadClock,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), LineError> {
    out.clear();
    loop {
        if src.buffer().is_empty() {
            clock.before_socket_read(src.get_ref())?;
        }
        let buf = match src.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e)
                if clock.deadline.is_some()
                    && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Err(LineError::TimedOut)
            }
            Err(e) => return Err(LineError::Ended(e)),
        };
        if buf.is_empty() {
            return Err(LineError::Ended(IoError::new(
                ErrorKind::ConnectionAborted,
                "Unexpected EOF",
            )));
        }
        if clock.deadline.is_none() {
            if buf[0] == TLS_HANDSHAKE_RECORD {
                return Err(LineError::TlsHello);
            }
            clock.deadline = Some(Instant::now() + clock.timeout);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if out.len() + take > max {
            return Err(LineError::TooLong);
        }
        out.extend_from_slice(&buf[..take]);
        src.consume(take);
        if done {
            out.pop();
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            if out.contains(&b'\r') {
                return Err(LineError::Malformed);
            }
            if !out.is_ascii() {
                return Err(LineError::NotAscii);
            }
            return Ok(());
        }
    }
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: Limits,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr().ok().flatten();
        let secure = read_socket.secure();
        let idle_timeout = read_socket.read_timeout().ok().flatten();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = match source.next() {
            Some(r) => r,
            None => unreachable!("SequentialReaderBuilder always gives a next reader"),
        };

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            idle_timeout,
            previous_body: None,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let limits = self.limits;
        let mut clock = HeadClock {
            timeout: limits.head_timeout,
            idle: self.idle_timeout,
            deadline: None,
            shortened: false,
        };
        // dpyfs: the previous request's body reader comes back first; if its response
        // closed the connection, not one more byte is read as a request.
        let src = self
            .next_header_source
            .wait_turn()
            .map_err(ReadError::ReadIoError)?;
        if self.previous_body.as_ref().is_some_and(|b| b.closing()) {
            return Err(ReadError::CloseAfterResponse);
        }
        let head = read_head(src, &mut clock, &limits);
        clock.restore(src.get_ref());
        let (method, path, version, headers) = head?;

        // building the writer for the request
        let writer = match self.sink.next() {
            Some(w) => w,
            None => unreachable!("SequentialWriterBuilder always gives a next writer"),
        };

        // follow-up for next potential request
        let mut data_source = match self.source.next() {
            Some(r) => r,
            None => unreachable!("SequentialReaderBuilder always gives a next reader"),
        };
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        let body_state = Arc::new(BodyState::default());
        self.previous_body = Some(Arc::clone(&body_state));

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            self.remote_addr,
            data_source,
            writer,
            body_state,
            clock.deadline,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e)
                    if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
                {
                    ReadError::Refused(
                        408,
                        version.clone(),
                        "the request body was not received in time",
                    )
                }
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version.clone())
                }
                request::RequestCreationError::BadFraming(why) => {
                    ReadError::Refused(400, version.clone(), why)
                }
            }
        })?;

        // return the request
        Ok(request)
    }

    /// dpyfs: answers `status` with a one-line reason and `Connection: close`, then closes
    /// the connection (lingering).
    fn refuse(&mut self, status: u16, version: HTTPVersion, why: &str) {
        // dpyfs: at INFO, so that a refused client shows in the log without RUST_LOG.
        log::info!(
            "refused a request from {:?}: {} {}",
            self.remote_addr,
            status,
            why
        );
        let version = if version < HTTPVersion(1, 1) {
            HTTPVersion(1, 0)
        } else {
            HTTPVersion(1, 1)
        };
        if let Some(mut writer) = self.sink.next() {
            let response = Response::from_string(format!("{}\n", why))
                .with_status_code(StatusCode(status))
                .with_connection_close();
            response
                .raw_print(&mut writer, version, &[], false, None)
                .ok();
            writer.flush().ok();
        }
        self.linger();
    }

    /// dpyfs: closes the connection the way a server must when the client may still be
    /// sending (RFC 9112 §9.6): the sending side is shut down first (the client sees the
    /// answer and then the end), and what the client still sends is read and dropped for a
    /// short while (`Limits::linger`, at most `Limits::linger_bytes_max`). Closing with
    /// unread bytes at once makes the kernel send a reset, and the client may lose the
    /// answer it had not read yet. This runs on the connection's own thread, never on a
    /// handler thread.
    fn linger(&mut self) {
        let limits = self.limits;
        let src = match self.next_header_source.wait_turn() {
            Ok(s) => s,
            Err(_) => return,
        };
        if src.get_mut().shutdown_write().is_err() {
            return;
        }
        let until = Instant::now() + limits.linger;
        let mut left = limits.linger_bytes_max;
        let buffered = src.buffer().len();
        src.consume(buffered);
        let stream = src.get_mut();
        let mut buf = [0u8; 4096];
        while left > 0 {
            let now = Instant::now();
            if now >= until || stream.set_read_timeout(Some(until - now)).is_err() {
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n as u64),
            }
        }
    }
}

/// dpyfs: one request head (request line and headers), within `limits`.
fn read_head(
    src: &mut BufReader<RefinedTcpStream>,
    clock: &mut HeadClock,
    limits: &Limits,
) -> Result<(Method, String, HTTPVersion, Vec<Header>), ReadError> {
    let mut line = Vec::new();
    let mut head_left = limits.head_bytes_max;
    let http11 = HTTPVersion(1, 1);
    let line_error = |e: LineError, version: &HTTPVersion, too_long: (u16, &'static str)| match e {
        LineError::TooLong => ReadError::Refused(too_long.0, version.clone(), too_long.1),
        LineError::Malformed => ReadError::Refused(400, version.clone(), "malformed request head"),
        LineError::NotAscii => ReadError::Refused(
            400,
            version.clone(),
            "the request head holds a byte outside ASCII: header values (x-amz-meta-* too) \
             must be ASCII; encode other text first (RFC 2047, or percent-encoding)",
        ),
        LineError::TimedOut => ReadError::Refused(
            408,
            version.clone(),
            "the request head was not received in time",
        ),
        LineError::Ended(e) => ReadError::ReadIoError(e),
        LineError::TlsHello => ReadError::TlsHello,
    };
    // A client may send an empty line or two before a request (RFC 9112 §2.2).
    let mut empty_lines = 0;
    let (method, path, version) = loop {
        read_head_line(src, clock, limits.line_bytes_max.min(head_left), &mut line)
            .map_err(|e| line_error(e, &http11, (414, "request line too long")))?;
        head_left = head_left.saturating_sub(line.len() + 2);
        if !line.is_empty() {
            break parse_request_line(&line)?;
        }
        empty_lines += 1;
        if empty_lines > 2 {
            return Err(ReadError::Refused(400, http11, "malformed request line"));
        }
    };
    let too_large = (431, "request headers too large");
    let mut headers = Vec::new();
    loop {
        read_head_line(src, clock, limits.line_bytes_max.min(head_left), &mut line)
            .map_err(|e| line_error(e, &version, too_large))?;
        head_left = head_left.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        if headers.len() >= limits.headers_max {
            return Err(ReadError::Refused(431, version, "too many request headers"));
        }
        headers.push(
            parse_header_line(&line)
                .map_err(|why| ReadError::Refused(400, version.clone(), why))?,
        );
    }
    Ok((method, path, version, headers))
}

/// dpyfs: the request-head rules applied to bytes, for the fuzz target `http_head` of
/// dpyfs (which reaches no socket): the first non-empty CRLF (or LF) line as the request
/// line, the lines after it as headers up to an empty line, the framing they announce and,
/// for a chunked body, the rest decoded as one (at most `FUZZ_BODY_BYTES_MAX` bytes). It
/// returns the status a refusal would carry, or 0 when the head is accepted.
#[doc(hidden)]
pub fn fuzz_head(bytes: &[u8]) -> u16 {
    const FUZZ_BODY_BYTES_MAX: u64 = 1 << 20;
    let mut lines = bytes.split(|&b| b == b'\n');
    let mut consumed = 0usize;
    let mut next_line = || {
        let l = lines.next()?;
        consumed += l.len() + 1;
        Some(l.strip_suffix(b"\r").unwrap_or(l))
    };
    let request_line = loop {
        match next_line() {
            Some([]) => continue,
            Some(l) => break l,
            None => return 400,
        }
    };
    let version = match parse_request_line(request_line) {
        Ok((_, _, v)) => v,
        Err(ReadError::Refused(status, _, _)) => return status,
        Err(_) => return 400,
    };
    let mut headers = Vec::new();
    loop {
        match next_line() {
            None | Some([]) => break,
            Some(l) => match parse_header_line(l) {
                Ok(h) => headers.push(h),
                Err(_) => return 400,
            },
        }
    }
    match crate::request::framing(&headers, &version) {
        Err(_) => 400,
        Ok(crate::request::Framing::Chunked) => {
            let rest = bytes.get(consumed.min(bytes.len())..).unwrap_or(&[]);
            let mut sink = Vec::new();
            let _ = chunked_transfer::Decoder::new(rest)
                .take(FUZZ_BODY_BYTES_MAX)
                .read_to_end(&mut sink);
            0
        }
        Ok(_) => 0,
    }
}

/// dpyfs: one header line. A line that starts with a space or tab (an obsolete folded
/// continuation, RFC 9112 §5.2), a name with spaces (`Content-Length : 5`, §5.1) or an
/// empty name is refused: another parser might read them differently.
fn parse_header_line(line: &[u8]) -> Result<Header, &'static str> {
    if matches!(line.first(), Some(b' ') | Some(b'\t')) {
        return Err("folded header lines are not supported");
    }
    let line = std::str::from_utf8(line).map_err(|_| "malformed header")?;
    match line.split_once(':') {
        Some((name, _)) if !name.is_empty() && name.bytes().all(is_tchar) => {}
        _ => return Err("malformed header"),
    }
    Header::from_str(line.trim()).map_err(|_| "malformed header")
}

/// A `tchar` of RFC 9110 §5.6.2: what a method or a header name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            // dpyfs: once the last request is answered, a body it left unread is not
            // drained but the connection closes lingering (see `linger`).
            let unread = self.next_header_source.wait_turn().is_ok()
                && self.previous_body.as_ref().is_some_and(|b| b.closing());
            if unread {
                self.linger();
            }
            return None;
        }

        // dpyfs: every refusal closes the connection (upstream went on reading after a
        // 505, so the refused request's body was parsed as the next request).
        let rq = match self.read() {
            Ok(rq) => rq,
            Err(ReadError::Refused(status, version, why)) => {
                self.refuse(status, version, why);
                return None;
            }
            Err(ReadError::ExpectationFailed(version)) => {
                self.refuse(417, version, "only Expect: 100-continue is supported");
                return None;
            }
            Err(ReadError::CloseAfterResponse) => {
                self.linger();
                return None;
            }
            Err(ReadError::ReadIoError(_)) => return None,
            // dpyfs: an HTTP answer would mean nothing to a TLS client; the connection
            // closes, and the log says why the client saw a failed handshake.
            Err(ReadError::TlsHello) => {
                log::warn!(
                    "a TLS hello from {:?} on a plain-HTTP port: closed (this listener has \
                     no certificate; use an http:// URL, or start it with --tls-cert)",
                    self.remote_addr
                );
                return None;
            }
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
/// dpyfs: exactly three parts with single spaces; a method made of `tchar`s; HTTP/1.0 or
/// HTTP/1.1 (anything else that names a version: 505; an HTTP/0.9 line, without version:
/// 400 at once).
fn parse_request_line(line: &[u8]) -> Result<(Method, String, HTTPVersion), ReadError> {
    let bad = |why| ReadError::Refused(400, HTTPVersion(1, 1), why);
    let line = std::str::from_utf8(line).map_err(|_| bad("malformed request line"))?;
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    let (method, path, version) = match parts.as_slice() {
        [m, p, v] => (*m, *p, *v),
        [_, _] => return Err(bad("HTTP/0.9 requests are not supported")),
        _ => return Err(bad("malformed request line")),
    };
    if method.is_empty() || !method.bytes().all(is_tchar) || path.is_empty() {
        return Err(bad("malformed request line"));
    }
    let version = match version {
        "HTTP/1.1" => HTTPVersion(1, 1),
        "HTTP/1.0" => HTTPVersion(1, 0),
        v if v.starts_with("HTTP/") => {
            return Err(ReadError::Refused(
                505,
                HTTPVersion(1, 1),
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ))
        }
        _ => return Err(bad("malformed request line")),
    };
    let method = method.parse().map_err(|_| bad("malformed request line"))?;
    Ok((method, path.to_owned(), version))
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line(b"GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line(b"GET /hello").is_err());
        assert!(super::parse_request_line(b"qsd qsd qsd").is_err());
    }

    /// dpyfs: what the request line refuses, and with which status.
    #[test]
    fn request_line_refusals() {
        let status = |l: &[u8]| match super::parse_request_line(l) {
            Err(super::ReadError::Refused(s, _, _)) => s,
            other => panic!("{:?}: {:?}", String::from_utf8_lossy(l), other.map(|_| ())),
        };
        assert_eq!(status(b"GET /"), 400);
        assert_eq!(status(b"GET / HTTP/0.9"), 505);
        assert_eq!(status(b"GET / HTTP/2.0"), 505);
        assert_eq!(status(b"GET  / HTTP/1.1"), 400);
        assert_eq!(status(b"GET / HTTP/1.1 x"), 400);
        assert_eq!(status(b"G(T / HTTP/1.1"), 400);
        assert!(super::parse_request_line(b"PUT /b/k?x=1 HTTP/1.0").is_ok());
    }

    /// dpyfs: the fuzz entry point gives the statuses the connection would answer.
    #[test]
    fn fuzz_head_applies_the_head_rules() {
        assert_eq!(super::fuzz_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
        assert_eq!(super::fuzz_head(b"GET /\r\n\r\n"), 400);
        assert_eq!(super::fuzz_head(b"GET / HTTP/2.0\r\n\r\n"), 505);
        let smuggled = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(super::fuzz_head(smuggled), 400);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(super::fuzz_head(chunked), 0);
    }

    /// dpyfs: folded lines and names with spaces are refused.
    #[test]
    fn header_line_refusals() {
        assert!(super::parse_header_line(b"Content-Length: 5").is_ok());
        assert!(super::parse_header_line(b"X-Empty:").is_ok());
        assert!(super::parse_header_line(b" Content-Length: 5").is_err());
        assert!(super::parse_header_line(b"\tx: y").is_err());
        assert!(super::parse_header_line(b"Content-Length : 5").is_err());
        assert!(super::parse_header_line(b": 5").is_err());
        assert!(super::parse_header_line(b"no colon").is_err());
    }
}
