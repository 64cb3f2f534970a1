//! The store's HTTP API as a function from [`Request`] to [`Response`]: routing, the
//! bearer token, error bodies and metrics. No sockets here (see `crate::http`).

use super::engine::{LIST_LIMIT_MAX, PutOutcome, Store};
use super::error::StoreError;
use super::forward;
use super::scrub::Scrubber;
use crate::hash::Hash;
use crate::http::{Body, Request, Response};
use crate::metrics::Metrics;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Default number of names one `GET /chunks` answers with.
pub const LIST_LIMIT_DEFAULT: usize = 1000;

pub struct StoreApi {
    pub store: Arc<Store>,
    pub scrubber: Arc<Scrubber>,
    pub metrics: Metrics,
    token: Option<String>,
    started: Instant,
    /// Chunks (and their bytes) this store sent on to the next store of a chain.
    forwarded_chunks: AtomicU64,
    forwarded_bytes: AtomicU64,
}

/// The JSON error body every failure carries.
pub fn error_response(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!({"error": message, "code": code}))
}

fn from_error(e: &StoreError) -> Response {
    let (status, code) = e.status_and_code();
    if status >= 500 && status != 507 {
        log::error!("{e}");
    }
    error_response(status, code, &e.to_string())
}

/// `bytes=a-b` or `bytes=a-` within a chunk of `len` bytes; anything else means the whole
/// chunk.
fn parse_simple_range(r: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = r.trim().strip_prefix("bytes=")?.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = match b.trim() {
        "" => len.checked_sub(1)?,
        b => b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
    };
    (a <= b).then_some((a, b))
}

/// Compares without an early exit, so the time taken does not reveal a prefix of the token.
fn token_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl StoreApi {
    pub fn new(store: Arc<Store>, scrubber: Arc<Scrubber>, token: Option<String>) -> StoreApi {
        StoreApi {
            store,
            scrubber,
            metrics: Metrics::default(),
            token,
            started: Instant::now(),
            forwarded_chunks: AtomicU64::new(0),
            forwarded_bytes: AtomicU64::new(0),
        }
    }

    pub fn handle(&self, req: &mut Request<'_>) -> Response {
        let t0 = Instant::now();
        let (route, resp) = self.route(req);
        self.metrics.record(route, resp.status);
        self.metrics.observe(route, t0.elapsed().as_secs_f64());
        resp
    }

    fn authorized(&self, req: &Request<'_>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        req.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| token_eq(t.trim().as_bytes(), token.as_bytes()))
    }

    fn route(&self, req: &mut Request<'_>) -> (&'static str, Response) {
        let path = req.path.clone();
        let method = req.method.clone();
        match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", "/status") => return ("status", self.status()),
            ("GET", "/metrics") => return ("metrics", self.metrics_text()),
            _ => {}
        }
        if !self.authorized(req) {
            return ("unauthorized", from_error(&StoreError::Unauthorized));
        }
        if path == "/chunks" && method == "GET" {
            return ("chunk_list", self.list(req));
        }
        let Some(name) = path.strip_prefix("/chunks/") else {
            return (
                "other",
                error_response(
                    404,
                    "NoSuchRoute",
                    &format!("no such route: {method} {path}"),
                ),
            );
        };
        let Some(h) = Hash::parse(name) else {
            return (
                "invalid_name",
                from_error(&StoreError::InvalidName(name.to_string())),
            );
        };
        match method.as_str() {
            "PUT" => ("chunk_put", self.put(&h, req)),
            "GET" => (
                "chunk_get",
                // `?verify=0`: the reader verifies every byte itself (the director does).
                self.get(
                    &h,
                    req.header("range"),
                    req.query_param("verify").is_none_or(|v| v != "0"),
                ),
            ),
            "HEAD" => (
                "chunk_head",
                self.head(&h, req.query_param("verify").is_some_and(|v| v == "1")),
            ),
            "DELETE" => ("chunk_delete", self.delete(&h)),
            _ => (
                "other",
                error_response(
                    405,
                    "MethodNotAllowed",
                    &format!("{method} is not allowed on a chunk"),
                )
                .with_header("Allow", "GET, HEAD, PUT, DELETE"),
            ),
        }
    }

    fn put(&self, h: &Hash, req: &mut Request<'_>) -> Response {
        let len = req.body_len;
        if let Some(chain) = req.header(forward::FORWARD_HEADER).map(str::to_string) {
            return self.put_forwarding(h, req, &chain);
        }
        self.put_answer(h, self.store.put(h, req.body, len))
    }

    fn put_answer(&self, h: &Hash, r: Result<PutOutcome, StoreError>) -> Response {
        match r {
            Ok(PutOutcome::Created) => {
                self.metrics.add_in(self.store.exists(h).unwrap_or(0));
                Response::empty(201)
            }
            Ok(PutOutcome::AlreadyPresent) => Response::empty(200),
            Err(e) => from_error(&e),
        }
    }

    /// A chunk PUT that also goes on to the stores named in `X-Dpyfs-Forward` (chain
    /// replication, `forward.rs`): this store's outcome is the status, theirs the body.
    fn put_forwarding(&self, h: &Hash, req: &mut Request<'_>, chain: &str) -> Response {
        let chain = match forward::parse_chain(chain) {
            Ok(c) => c,
            Err(why) => return error_response(400, "InvalidForward", &why),
        };
        let Some(len) = req.body_len else {
            return error_response(
                411,
                "MissingContentLength",
                "a forwarded chunk needs a Content-Length",
            );
        };
        let (mut tee, fwd) = match forward::start(req.body, h, len, chain, self.token.clone()) {
            Ok(x) => x,
            Err(e) => {
                return error_response(503, "ServiceUnavailable", &format!("cannot forward: {e}"));
            }
        };
        let own = self.store.put(h, &mut tee, Some(len));
        let forwarded = fwd.finish(tee);
        if forwarded.first().is_some_and(|f| f.get("status").is_none()) {
            self.forwarded_chunks.fetch_add(1, Ordering::Relaxed);
            self.forwarded_bytes.fetch_add(len, Ordering::Relaxed);
        }
        let resp = self.put_answer(h, own);
        let mut body = match &resp.body {
            Body::Bytes(b) if !b.is_empty() => {
                serde_json::from_slice::<serde_json::Value>(b).unwrap_or_else(|_| json!({}))
            }
            _ => json!({}),
        };
        body["forwarded"] = serde_json::Value::Array(forwarded);
        Response::json(resp.status, &body)
    }

    /// The whole chunk, or with `Range: bytes=a-b` a part of it (the whole chunk is still
    /// verified first, unless the reader asked `?verify=0` because it checks the bytes). `dpyfs recover` reads the first line of every chunk this way.
    fn get(&self, h: &Hash, range: Option<&str>, verify: bool) -> Response {
        let (mut f, len) = match self.store.open_chunk(h, verify) {
            Ok(x) => x,
            Err(e) => return from_error(&e),
        };
        let Some((a, b)) = range.and_then(|r| parse_simple_range(r, len)) else {
            self.metrics.add_out(len);
            return Response::new(200, Body::Stream(Box::new(f), Some(len)))
                .with_header("Content-Type", "application/octet-stream");
        };
        if let Err(e) = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(a)) {
            return from_error(&StoreError::io(self.store.layout.chunk_path(h), e));
        }
        let n = b + 1 - a;
        self.metrics.add_out(n);
        Response::new(
            206,
            Body::Stream(Box::new(std::io::Read::take(f, n)), Some(n)),
        )
        .with_header("Content-Range", format!("bytes {a}-{b}/{len}"))
    }

    /// With `?verify=1` the copy is re-hashed first (and quarantined if bad): the
    /// director asks this before it skips uploading a chunk a store already has.
    fn head(&self, h: &Hash, verify: bool) -> Response {
        if verify {
            match self.store.has_good_copy(h) {
                Ok(true) => {}
                Ok(false) => return from_error(&StoreError::NotFound(*h)),
                Err(e) => return from_error(&e),
            }
        }
        match self.store.exists(h) {
            // An empty reader with the real length: HEAD sends Content-Length, no body.
            Some(len) => Response::new(200, Body::Stream(Box::new(std::io::empty()), Some(len))),
            None => from_error(&StoreError::NotFound(*h)),
        }
    }

    fn delete(&self, h: &Hash) -> Response {
        match self.store.delete(h) {
            Ok(()) => Response::empty(204),
            Err(e) => from_error(&e),
        }
    }

    fn list(&self, req: &Request<'_>) -> Response {
        let after = match req.query_param("after").filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => match Hash::parse(&a) {
                Some(h) => Some(h),
                None => return from_error(&StoreError::InvalidName(a)),
            },
        };
        let limit = match req.query_param("limit") {
            None => LIST_LIMIT_DEFAULT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if n <= LIST_LIMIT_MAX => n,
                _ => {
                    return error_response(
                        400,
                        "InvalidLimit",
                        &format!("limit must be a number from 0 to {LIST_LIMIT_MAX}"),
                    );
                }
            },
        };
        let detail = req.query_param("detail").is_some_and(|d| d == "1");
        match self.store.list(after.as_ref(), limit, detail) {
            Ok(listed) => {
                let mut text = String::with_capacity(listed.len() * 90);
                for l in listed {
                    text.push_str(&l.hash.to_hex());
                    if detail {
                        text.push_str(&format!(" {} {}", l.size, l.mtime));
                    }
                    text.push('\n');
                }
                Response::text(200, "text/plain", text)
            }
            Err(e) => from_error(&e),
        }
    }

    pub fn status_json(&self) -> serde_json::Value {
        let disk = crate::sys::disk_space(&self.store.layout.root).unwrap_or_default();
        let load = crate::sys::load_average();
        let id = &self.store.identity;
        json!({
            "id": id.id,
            "zone": id.zone,
            "version": crate::VERSION,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "tls_warnings": crate::tls::expiry_warnings(crate::timefmt::now_ms() / 1000),
            "load_average": load,
            "disk": {
                "total_bytes": disk.total_bytes,
                "free_bytes": disk.free_bytes,
                "reserve_bytes": self.store.reserve.bytes(disk.total_bytes),
            },
            "chunks": {"count": self.store.chunk_count(), "bytes": self.store.chunk_bytes()},
            "max_chunk_bytes": self.store.max_chunk_bytes,
            "forwarded": {
                "chunks": self.forwarded_chunks.load(Ordering::Relaxed),
                "bytes": self.forwarded_bytes.load(Ordering::Relaxed),
            },
            "scrub": self.scrubber.snapshot(),
        })
    }

    fn status(&self) -> Response {
        Response::json(200, &self.status_json())
    }

    fn metrics_text(&self) -> Response {
        let s = self.scrubber.snapshot();
        let disk = crate::sys::disk_space(&self.store.layout.root).unwrap_or_default();
        let gauges = [
            ("chunks", "Chunks stored.", self.store.chunk_count() as f64),
            (
                "chunk_bytes",
                "Bytes of chunks stored.",
                self.store.chunk_bytes() as f64,
            ),
            (
                "disk_total_bytes",
                "Size of the data file system.",
                disk.total_bytes as f64,
            ),
            (
                "disk_free_bytes",
                "Free bytes on the data file system.",
                disk.free_bytes as f64,
            ),
            (
                "scrub_passes_total",
                "Completed scrub passes.",
                s.passes as f64,
            ),
            (
                "scrub_pass_chunks",
                "Chunks checked in the current pass.",
                s.pass_chunks as f64,
            ),
            (
                "scrub_checked_bytes_total",
                "Bytes re-hashed by the scrubber.",
                s.checked_bytes as f64,
            ),
            (
                "corrupt_chunks_total",
                "Chunks found corrupt by the scrubber.",
                s.corrupt_found as f64,
            ),
            (
                "forwarded_bytes_total",
                "Bytes sent on to the next store of a replication chain.",
                self.forwarded_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "uptime_seconds",
                "Seconds since start.",
                self.started.elapsed().as_secs_f64(),
            ),
        ];
        Response::text(
            200,
            "text/plain; version=0.0.4",
            self.metrics.render("dpyfs_store", &gauges),
        )
    }
}
