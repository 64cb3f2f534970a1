//! The HTTP edge. This is the only module that touches tiny_http types: it accepts
//! connections, turns each tiny_http request into a socket-free [`Request`], calls a
//! handler, and writes the handler's [`Response`]. Handlers (the store's and the
//! director's APIs) are plain functions over these two types.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The bounds of a request head and of open connections, enforced by the vendored
/// tiny_http (vendor/tiny_http/PATCHES.md): a request line or header line over
/// `LINE_BYTES_MAX` (16 KiB), a head over `HEAD_BYTES_MAX` (64 KiB) or over `HEADERS_MAX`
/// (100) headers is answered 414/431 and the connection closed; a head must arrive within
/// `HEAD_TIMEOUT_SECS` (15 s) of its first byte (else 408); beyond `CONNECTIONS_MAX` (512)
/// open connections a new one is answered 503 and closed.
pub use tiny_http::{
    CONNECTIONS_MAX, HEAD_BYTES_MAX, HEAD_TIMEOUT_SECS, HEADERS_MAX, LINE_BYTES_MAX,
};

/// Default number of threads that run handlers; each holds at most one request.
pub const WORKERS_MAX: usize = 32;
/// An idle or stalled connection is dropped after this long without progress.
pub const IDLE_TIMEOUT_MS: u64 = 60_000;
/// One worker in this many (at least one when there are two or more) never takes a request
/// whose body is still to be read from the client, so status pages, GETs, HEADs and small
/// requests are served while slow uploads hold all the others.
pub const RESERVE_WORKERS_DIVISOR: usize = 4;
/// A request body must arrive at `BODY_RATE_BYTES_MIN` bytes or more in every
/// `BODY_RATE_WINDOW_SECS` spent waiting for it (about 100 bytes a second, far below any
/// real link), or the read fails and the connection closes. Only time spent waiting for
/// the client counts, not the handler's own work between reads.
pub const BODY_RATE_WINDOW_SECS: u64 = 20;
pub const BODY_RATE_BYTES_MIN: u64 = 2048;
/// Each connection holds two file descriptors; a quarter of the descriptor limit at most
/// goes to connections, the rest stays for files and outgoing connections.
const FDS_PER_CONNECTION_SHARE: u64 = 4;

/// A parsed request: everything a handler needs, no sockets.
pub struct Request<'a> {
    pub method: String,
    /// The path as sent (still percent-encoded), without the query.
    pub path: String,
    /// The raw query string, without the leading `?`.
    pub query: String,
    /// `query` decoded into pairs, filled by the first `query_params` call: a request's
    /// query is parsed once, however many steps (auth, routing, the handler) read it.
    /// Leave it `Default::default()` when building a `Request`.
    pub params: std::cell::OnceCell<Vec<(String, String)>>,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: &'a mut dyn Read,
    /// Content-Length when the client sent one (None for chunked bodies).
    pub body_len: Option<u64>,
    pub remote: Option<SocketAddr>,
}

impl Request<'_> {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query's decoded pairs, in order (parsed on the first call only).
    pub fn query_params(&self) -> &[(String, String)] {
        self.params.get_or_init(|| query_pairs(&self.query))
    }

    /// The first query parameter with this name, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_params()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A response body.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A stream of exactly `len` bytes (or of unknown length, sent chunked).
    Stream(Box<dyn Read + Send>, Option<u64>),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn empty(status: u16) -> Response {
        Response::new(status, Body::Empty)
    }

    pub fn text(status: u16, content_type: &str, text: impl Into<String>) -> Response {
        Response::new(status, Body::Bytes(text.into().into_bytes()))
            .with_header("Content-Type", content_type)
    }

    /// A JSON document, ending with a newline (so a shell prompt after curl starts on its
    /// own line).
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::text(status, "application/json", value.to_string() + "\n")
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets a header, replacing any of the same name (case-insensitive).
    pub fn set_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.with_header(name, value)
    }

    /// The body as bytes, for tests of handlers; streams are read to the end.
    pub fn body_bytes(self) -> io::Result<Vec<u8>> {
        match self.body {
            Body::Empty => Ok(Vec::new()),
            Body::Bytes(b) => Ok(b),
            Body::Stream(mut r, _) => {
                let mut v = Vec::new();
                r.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}

/// A handler: a function from request to response. It must not panic on bad input, but if
/// it panics anyway the edge answers 500 and keeps serving.
pub type Handler = Arc<dyn Fn(&mut Request<'_>) -> Response + Send + Sync>;

/// Settings of the HTTP edge.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub workers: usize,
    pub idle_timeout: Duration,
    /// Open connections at most (lowered to what the descriptor limit allows).
    pub connections_max: usize,
    /// See `HEAD_TIMEOUT_SECS`.
    pub head_timeout: Duration,
    /// See `BODY_RATE_WINDOW_SECS`.
    pub body_rate_window: Duration,
    /// HTTPS with these files (`--tls-cert`, `--tls-key`, `--client-ca`); None: plain HTTP.
    pub tls: Option<crate::tls::ServerFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            workers: WORKERS_MAX,
            idle_timeout: Duration::from_millis(IDLE_TIMEOUT_MS),
            connections_max: CONNECTIONS_MAX,
            head_timeout: Duration::from_secs(HEAD_TIMEOUT_SECS),
            body_rate_window: Duration::from_secs(BODY_RATE_WINDOW_SECS),
            tls: None,
        }
    }
}

/// How many workers are kept for requests without a body on the wire.
pub fn reserve_workers(workers: usize) -> usize {
    if workers < 2 {
        0
    } else {
        (workers / RESERVE_WORKERS_DIVISOR).max(1)
    }
}

/// The connection cap in force: `configured`, but at most a share of the descriptor limit.
pub fn connections_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    let by_fds = fd_limit.map_or(usize::MAX, |n| {
        usize::try_from(n / FDS_PER_CONNECTION_SHARE).unwrap_or(usize::MAX)
    });
    configured.min(by_fds).max(1)
}

/// The workers that may hold a request whose body is still on the wire.
struct BodySlots {
    busy: AtomicUsize,
    max: usize,
}

impl BodySlots {
    fn try_take(&self) -> bool {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A running server: its address, and the worker threads to join.
pub struct Server {
    pub addr: SocketAddr,
    /// Whether the listener speaks HTTPS.
    pub tls: bool,
    server: Arc<tiny_http::Server>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr`, with TCP_NODELAY and idle timeouts set on the listener so every
    /// accepted connection inherits them (without NODELAY tiny_http stalls about 40 ms per
    /// large response on a kept-alive connection), and starts `cfg.workers` handler threads.
    pub fn start(addr: &str, cfg: &ServerConfig, handler: Handler) -> io::Result<Server> {
        Server::start_on(Server::bind(addr)?, cfg, handler)
    }

    /// Binds `addr` alone, so that a daemon can learn that its port is taken before it
    /// changes anything on disk; connections wait in the backlog until `start_on`.
    pub fn bind(addr: &str) -> io::Result<TcpListener> {
        let sockaddr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        TcpListener::bind(sockaddr)
    }

    /// `start` on a listener `bind` made.
    pub fn start_on(
        listener: TcpListener,
        cfg: &ServerConfig,
        handler: Handler,
    ) -> io::Result<Server> {
        crate::sys::set_listener_nodelay(&listener)?;
        crate::sys::set_listener_timeouts(&listener, cfg.idle_timeout)?;
        let local = listener.local_addr()?;
        let fd_limit = crate::sys::raise_fd_limit();
        let connections_max = connections_cap(cfg.connections_max, fd_limit);
        if connections_max < cfg.connections_max {
            log::info!(
                "at most {connections_max} connections (the file descriptor limit is {})",
                fd_limit.unwrap_or_default()
            );
        }
        let limits = tiny_http::Limits {
            connections_max,
            head_timeout: cfg.head_timeout,
            ..tiny_http::Limits::default()
        };
        let ssl = tls_settings(cfg, local)?;
        let server = tiny_http::Server::from_listener_with_limits(listener, ssl, limits)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let server = Arc::new(server);
        let workers_n = cfg.workers.max(1);
        let slots = Arc::new(BodySlots {
            busy: AtomicUsize::new(0),
            max: workers_n - reserve_workers(workers_n),
        });
        let mut workers = Vec::with_capacity(workers_n);
        for i in 0..workers_n {
            let s = Arc::clone(&server);
            let h = Arc::clone(&handler);
            let slots = Arc::clone(&slots);
            let window = cfg.body_rate_window;
            let t = thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || worker_loop(&s, &h, &slots, window))?;
            workers.push(t);
        }
        Ok(Server {
            addr: local,
            tls: cfg.tls.is_some(),
            server,
            workers,
        })
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Blocks until every worker has stopped (that is, until `stop` or forever). An error
    /// means the server stopped on its own because its accept thread died: the daemon must
    /// exit non-zero so that its supervisor restarts it.
    pub fn join(self) -> io::Result<()> {
        for w in self.workers {
            let _ = w.join();
        }
        if self.server.accept_failed() {
            return Err(io::Error::other(
                "the HTTP accept thread died; no connection is accepted any more",
            ));
        }
        Ok(())
    }

    /// Stops accepting work: workers return once their current request is answered.
    pub fn stop(&self) {
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
    }
}

/// The vendored tiny_http's TLS settings for `cfg.tls`: rustls, with the files read
/// again when they change (see `crate::tls::ServerTls`). Without TLS on an address other
/// than loopback, one warning: everything on the wire can be read there.
fn tls_settings(cfg: &ServerConfig, local: SocketAddr) -> io::Result<Option<tiny_http::SslConfig>> {
    let Some(files) = &cfg.tls else {
        if !local.ip().is_loopback() {
            log::warn!(
                "listening on {local} with plain HTTP: anyone on the network can read the \
                 traffic (data and tokens); give --tls-cert and --tls-key (see `dpyfs ca`)"
            );
        }
        return Ok(None);
    };
    let ssl = https_source(files)?;
    log::info!(
        "HTTPS on {local} with {}{}",
        files.cert.display(),
        if files.client_ca.is_some() {
            " (client certificates required)"
        } else {
            ""
        }
    );
    Ok(Some(ssl))
}

#[cfg(feature = "tls")]
fn https_source(files: &crate::tls::ServerFiles) -> io::Result<tiny_http::SslConfig> {
    let tls = crate::tls::ServerTls::load(files.clone()).map_err(io::Error::other)?;
    Ok(tiny_http::SslConfig {
        source: Arc::new(move || tls.config()),
    })
}

/// Without the `tls` feature every TLS flag is refused at start.
#[cfg(not(feature = "tls"))]
fn https_source(files: &crate::tls::ServerFiles) -> io::Result<tiny_http::SslConfig> {
    Err(crate::tls::refuse_server(files))
}

fn worker_loop(server: &tiny_http::Server, handler: &Handler, slots: &BodySlots, window: Duration) {
    loop {
        // A request whose body is still on the wire needs a body slot; the workers beyond
        // the slots (the reserve) serve the others meanwhile.
        let mut holds_slot = false;
        let next = server.recv_where(|rq| {
            if !rq.body_on_wire() {
                return true;
            }
            holds_slot = slots.try_take();
            holds_slot
        });
        let rq = match next {
            Ok(rq) => rq,
            Err(e) => {
                log::debug!("http worker stopping: {e}");
                return;
            }
        };
        serve_one(rq, handler, window);
        if holds_slot {
            slots.release();
        }
    }
}

/// A request body as the handler sees it: `100 Continue` goes out only when the handler
/// first reads (a request refused before that, say a 403, is answered without inviting the
/// body), and the body must keep a minimum rate (see `BODY_RATE_WINDOW_SECS`).
struct BodyReader<'a, C: FnMut() -> Instant> {
    rq: &'a mut tiny_http::Request,
    rate: MinRate<C>,
}

impl<C: FnMut() -> Instant> Read for BodyReader<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rq = &mut *self.rq;
        self.rate.read(|b| rq.as_reader().read(b), buf)
    }
}

/// The minimum-rate rule of `BODY_RATE_WINDOW_SECS`, over any read function and clock.
struct MinRate<C: FnMut() -> Instant> {
    clock: C,
    window: Duration,
    bytes_min: u64,
    waited: Duration,
    got: u64,
}

impl<C: FnMut() -> Instant> MinRate<C> {
    fn new(clock: C, window: Duration, bytes_min: u64) -> Self {
        MinRate {
            clock,
            window,
            bytes_min,
            waited: Duration::ZERO,
            got: 0,
        }
    }

    fn read(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let start = (self.clock)();
        let n = read(buf)?;
        self.waited += (self.clock)().saturating_duration_since(start);
        self.got += n as u64;
        if n == 0 || self.waited < self.window {
            return Ok(n);
        }
        if self.got < self.bytes_min {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request body arrived at less than {} bytes in {} s",
                    self.bytes_min,
                    self.window.as_secs()
                ),
            ));
        }
        self.waited = Duration::ZERO;
        self.got = 0;
        Ok(n)
    }
}

fn serve_one(mut rq: tiny_http::Request, handler: &Handler, window: Duration) {
    let method = rq.method().as_str().to_ascii_uppercase();
    let url = rq.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    // Parsed here as u64: tiny_http's own figure is a usize (32 bits on armv7).
    let body_len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .filter(|_| !headers.iter().any(|(k, _)| k == "transfer-encoding"));
    let remote = rq.remote_addr().copied();
    let response = {
        let mut body = BodyReader {
            rq: &mut rq,
            rate: MinRate::new(Instant::now, window, BODY_RATE_BYTES_MIN),
        };
        let mut req = Request {
            method: method.clone(),
            path,
            query,
            params: Default::default(),
            headers,
            body: &mut body,
            body_len,
            remote,
        };
        match catch_unwind(AssertUnwindSafe(|| handler(&mut req))) {
            Ok(r) => r,
            Err(_) => {
                log::error!("handler panicked on {method} {url}; answered 500");
                Response::json(
                    500,
                    &serde_json::json!({"error": "internal error (the request handler panicked)", "code": "InternalError"}),
                )
            }
        }
    };
    if let Err(e) = rq.respond(to_tiny(response)) {
        log::debug!("writing response to {method} {url} failed: {e}");
    }
}

fn to_tiny(r: Response) -> tiny_http::Response<Box<dyn Read + Send>> {
    let (reader, len): (Box<dyn Read + Send>, Option<u64>) = match r.body {
        Body::Empty => (Box::new(io::empty()), Some(0)),
        Body::Bytes(b) => {
            let n = b.len() as u64;
            (Box::new(io::Cursor::new(b)), Some(n))
        }
        Body::Stream(s, n) => (s, n),
    };
    let long = len.filter(|n| usize::try_from(*n).is_err());
    let short = len.and_then(|n| usize::try_from(n).ok());
    // A known length is always sent as Content-Length: clients (and HEAD) rely on it.
    let mut t = tiny_http::Response::new(
        tiny_http::StatusCode(r.status),
        Vec::new(),
        reader,
        short,
        None,
    )
    .with_chunked_threshold(usize::MAX);
    // Over 4 GiB on a 32-bit board: tiny_http's usize cannot hold it (vendor patch 5).
    if let Some(n) = long {
        t = t.with_u64_length(n);
    }
    for (k, v) in r.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            t.add_header(h);
        }
    }
    t
}

/// Decodes `%XX` escapes (and, when `plus_is_space`, `+`). Invalid escapes are kept as
/// they are; the result must be valid UTF-8 or None is returned.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    // `+` is replaced before decoding, so an escaped plus (`%2B`) stays a plus.
    let spaced;
    let s = if plus_is_space && s.contains('+') {
        spaced = s.replace('+', " ");
        spaced.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// What `percent_encode` escapes: everything but RFC 3986's unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), which is also the set AWS Signature V4 leaves as it is.
const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// `ESCAPED` less `/`: a key's path keeps its slashes.
const ESCAPED_BUT_SLASH: &percent_encoding::AsciiSet = &ESCAPED.remove(b'/');

/// Percent-encodes everything but the unreserved characters (RFC 3986), and `/` too
/// unless `keep_slash`. Escapes are uppercase hex, every byte of a non-ASCII character
/// escaped, as SigV4's canonical request requires.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let set = if keep_slash {
        ESCAPED_BUT_SLASH
    } else {
        ESCAPED
    };
    percent_encoding::utf8_percent_encode(s, set).to_string()
}

/// Splits a query string into decoded pairs; a pair that does not decode is dropped.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// True when every address `addr` (as given to `--listen`) resolves to is a loopback
/// address. A daemon that listens anywhere else must authenticate its callers: an address
/// that does not resolve counts as not loopback.
pub fn is_loopback(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map(|mut a| a.all(|s| s.ip().is_loopback()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once() {
        let mut empty = io::empty();
        let req = Request {
            method: "GET".into(),
            path: "/b".into(),
            query: "a=1&b=%20&a=2".into(),
            params: Default::default(),
            headers: Vec::new(),
            body: &mut empty,
            body_len: None,
            remote: None,
        };
        assert!(req.params.get().is_none());
        assert_eq!(req.query_param("b").as_deref(), Some(" "));
        let first = req.query_params().as_ptr();
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.query_params().as_ptr(), first);
        assert_eq!(req.query_params().len(), 3);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b", false).unwrap(), "a b");
        assert_eq!(percent_decode("a+b", true).unwrap(), "a b");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(percent_decode("%zz%4", false).unwrap(), "%zz%4");
        assert_eq!(percent_decode("%C3%A9", false).unwrap(), "é");
        assert!(percent_decode("%FF", false).is_none());
    }

    #[test]
    fn percent_encoding_round_trips() {
        let k = "a b/é?&=+%";
        assert_eq!(percent_encode(k, true), "a%20b/%C3%A9%3F%26%3D%2B%25");
        assert_eq!(percent_decode(&percent_encode(k, false), false).unwrap(), k);
    }

    /// The characters where common escape sets differ (the URL standard's path set, the
    /// form set, JavaScript's `encodeURIComponent`): SigV4 escapes all of them but the
    /// four unreserved marks, keeps `/` only in a path, and never writes `+` for a space.
    #[test]
    fn percent_encoding_follows_sigv4_where_sets_differ() {
        let all: String = (0x20u8..0x7f).map(char::from).collect();
        let want: String = all
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert_eq!(percent_encode(&all, false), want);
        assert_eq!(percent_encode(&all, true), want.replace("%2F", "/"));
        assert_eq!(percent_encode("~*'()!", false), "~%2A%27%28%29%21");
        assert_eq!(percent_encode("\u{7f}\u{80}ü", false), "%7F%C2%80%C3%BC");
        // `+` is a space only in a query; `%2B` is always a plus; a lone `%` stays.
        assert_eq!(percent_decode("a%2Bb+c%", true).unwrap(), "a+b c%");
        assert_eq!(percent_decode("a%2Bb+c%", false).unwrap(), "a+b+c%");
    }

    /// The minimum body rate counts only time spent waiting for the client, and fails a
    /// body that brings too little in a window (a fake clock: no sleeping).
    #[test]
    fn min_rate_fails_trickles_and_passes_slow_links() {
        use std::cell::Cell;
        let base = Instant::now();
        let now = Cell::new(Duration::ZERO);
        let window = Duration::from_secs(BODY_RATE_WINDOW_SECS);
        let mut buf = [0u8; 4096];
        // A byte every 5 s: refused once a window has been spent waiting.
        let mut rate = MinRate::new(|| base + now.get(), window, BODY_RATE_BYTES_MIN);
        let mut reads = 0;
        let err = loop {
            reads += 1;
            let r = rate.read(
                |_| {
                    now.set(now.get() + Duration::from_secs(5));
                    Ok(1)
                },
                &mut buf,
            );
            if let Err(e) = r {
                break e;
            }
            assert!(reads < 10, "never refused");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(reads, 4);
        // 1 KiB a second (a very slow link) for a long time: never refused.
        now.set(Duration::ZERO);
        let mut rate = MinRate::new(|| base + now.get(), window, BODY_RATE_BYTES_MIN);
        for _ in 0..1000 {
            let r = rate.read(
                |b| {
                    now.set(now.get() + Duration::from_secs(1));
                    Ok(b.len().min(1024))
                },
                &mut buf,
            );
            assert_eq!(r.unwrap(), 1024);
        }
        // A handler that works 60 s between reads of a fast body: its own time is not
        // the client's.
        now.set(Duration::ZERO);
        let mut rate = MinRate::new(|| base + now.get(), window, BODY_RATE_BYTES_MIN);
        for _ in 0..10 {
            now.set(now.get() + Duration::from_secs(60));
            assert_eq!(rate.read(|b| Ok(b.len().min(100)), &mut buf).unwrap(), 100);
        }
        // The end of the body is never an error.
        assert_eq!(rate.read(|_| Ok(0), &mut buf).unwrap(), 0);
    }

    #[test]
    fn reserve_and_connection_cap() {
        assert_eq!(reserve_workers(1), 0);
        assert_eq!(reserve_workers(2), 1);
        assert_eq!(reserve_workers(32), 8);
        assert_eq!(connections_cap(512, Some(1024)), 256);
        assert_eq!(connections_cap(512, Some(65_536)), 512);
        assert_eq!(connections_cap(512, None), 512);
        assert_eq!(connections_cap(512, Some(2)), 1);
    }

    #[test]
    fn query_parsing() {
        let p = query_pairs("after=ab&limit=10&flag");
        assert_eq!(p[0], ("after".into(), "ab".into()));
        assert_eq!(p[1], ("limit".into(), "10".into()));
        assert_eq!(p[2], ("flag".into(), "".into()));
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;

    /// A handler that panics answers 500, and the server keeps serving (issue 2).
    #[test]
    fn a_panicking_handler_answers_500_and_the_server_lives_on() {
        let handler: Handler = Arc::new(|req: &mut Request<'_>| {
            if req.path == "/boom" {
                panic!("deliberate panic in a test handler");
            }
            Response::text(200, "text/plain", "fine")
        });
        let cfg = ServerConfig {
            workers: 2,
            idle_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        let server = Server::start("127.0.0.1:0", &cfg, handler).unwrap();
        let base = format!("http://{}", server.addr);
        for _ in 0..4 {
            match ureq::get(&format!("{base}/boom")).call() {
                Err(ureq::Error::Status(500, r)) => {
                    assert!(r.into_string().unwrap().contains("InternalError"))
                }
                other => panic!("expected 500, got {other:?}"),
            }
        }
        let ok = ureq::get(&format!("{base}/fine")).call().unwrap();
        assert_eq!(ok.into_string().unwrap(), "fine");
        server.stop();
        server.join().unwrap();
    }

    /// Requests whose bodies never come hold every body worker, and a GET is served by the
    /// reserve; a head, or a small body read with it, trickled past the head's deadline is
    /// answered 408 (a 1 s deadline here).
    #[test]
    fn reserve_workers_serve_gets_while_bodies_stall() {
        use std::io::{BufRead, BufReader, Write};
        let handler: Handler = Arc::new(|req: &mut Request<'_>| {
            let mut v = Vec::new();
            match req.body.read_to_end(&mut v) {
                Ok(n) => Response::text(200, "text/plain", format!("{n}")),
                Err(e) => Response::text(400, "text/plain", e.to_string()),
            }
        });
        let cfg = ServerConfig {
            workers: 4,
            idle_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(1),
            ..ServerConfig::default()
        };
        let server = Server::start("127.0.0.1:0", &cfg, handler).unwrap();
        let stalled: Vec<std::net::TcpStream> = (0..6)
            .map(|_| {
                let mut c = std::net::TcpStream::connect(server.addr).unwrap();
                c.write_all(b"PUT /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc")
                    .unwrap();
                c
            })
            .collect();
        for _ in 0..3 {
            let mut c = std::net::TcpStream::connect(server.addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
            let mut line = String::new();
            BufReader::new(&c).read_line(&mut line).unwrap();
            assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
        }
        // Sends `start`, then trickles one byte per 300 ms; returns the first answer line.
        let trickle = |start: &[u8]| {
            let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
            slow.write_all(start).unwrap();
            slow.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut answer = String::new();
            for _ in 0..50 {
                let _ = slow.write_all(b"x");
                if BufReader::new(&slow).read_line(&mut answer).is_ok() {
                    break;
                }
            }
            answer
        };
        let answer = trickle(b"GET /x HTTP/1.1\r\nX: ");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        // A small body (read with the head) shares the head's deadline.
        let answer = trickle(b"PUT /x HTTP/1.1\r\nContent-Length: 500\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        drop(stalled);
        server.stop();
        server.join().unwrap();
    }

    /// Connections accepted in quick succession are all served while earlier ones stay
    /// open (tiny_http's thread pool queued a new connection behind kept-alive ones:
    /// vendor/tiny_http/PATCHES.md, patch 6). Each round opens 16 connections at once and
    /// keeps every one open; each must be answered.
    #[test]
    fn many_new_connections_are_served_while_others_stay_open() {
        use std::io::{BufRead, BufReader, Write};
        let handler: Handler =
            Arc::new(|_: &mut Request<'_>| Response::text(200, "text/plain", "ok"));
        let cfg = ServerConfig {
            workers: 4,
            idle_timeout: Duration::from_secs(30),
            ..ServerConfig::default()
        };
        let server = Server::start("127.0.0.1:0", &cfg, handler).unwrap();
        let mut open = Vec::new();
        for round in 0..8 {
            let conns: Vec<_> = (0..16)
                .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
                .collect();
            for mut c in conns {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                let mut line = String::new();
                BufReader::new(&c)
                    .read_line(&mut line)
                    .unwrap_or_else(|e| panic!("round {round}: no answer: {e}"));
                assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
                open.push(c);
            }
        }
        server.stop();
        server.join().unwrap();
    }
}
