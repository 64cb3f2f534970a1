//! The client side of the director's HTTP API, shared by `dpyfs-put`, `dpyfs-get` and the
//! `dpyfs ls/rm/stat/status` commands: S3-style object calls, ListObjectsV2 pages,
//! `/_dpyfs/...` JSON, retries with back-off, and (one place) SigV4 request signing. The only
//! client module that touches ureq types: callers see `ClientError`, `Download` and plain
//! values.

use crate::http::percent_encode;
use crate::s3::xml;
use crate::sigv4::Credentials;
use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Default director URL when neither `--url` nor `DPYFS_URL` is given.
pub const URL_DEFAULT: &str = "http://127.0.0.1:7070";
/// Retries after the first attempt, by default (so six attempts in all).
pub const RETRIES_DEFAULT: u32 = 5;
/// First back-off delay; it doubles after each failed attempt, up to `BACKOFF_MAX_MS`.
pub const BACKOFF_FIRST_MS: u64 = 500;
pub const BACKOFF_MAX_MS: u64 = 8_000;
/// Connecting must succeed within this; a stalled transfer fails after `READ_TIMEOUT_SECS`.
pub const CONNECT_TIMEOUT_SECS: u64 = 10;
pub const READ_TIMEOUT_SECS: u64 = 120;
/// The region signatures name (`AWS_REGION` overrides it).
pub const REGION_DEFAULT: &str = "us-east-1";

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum ClientError {
    /// The director answered with an error status (S3 XML or JSON body decoded).
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: connection reset, timed out.
    Transport(String),
    /// The connection was refused: nothing listens at the URL (the director's), most
    /// likely because no cluster runs. Retryable: a director may be starting.
    NoDirector(String),
    /// A failure that must not be retried (a local file, a body that cannot be re-sent, a
    /// download that does not verify, an interrupt).
    Final(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;

impl ClientError {
    /// Connection errors and 5xx (except 501, which will not change) are worth another try.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) | ClientError::NoDirector(_) => true,
            ClientError::Status { status, .. } => *status >= 500 && *status != 501,
            ClientError::Final(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Status {
                status,
                code,
                message,
            } => write!(f, "{code} (HTTP {status}): {message}"),
            ClientError::Transport(m) => write!(f, "no answer from the director: {m}"),
            ClientError::NoDirector(url) => write!(
                f,
                "no director at {url} — is a cluster running? (`make run` starts one)"
            ),
            ClientError::Final(m) => f.write_str(m),
        }
    }
}

/// Access keys from the environment: `DPYFS_ACCESS_KEY`/`DPYFS_SECRET_KEY`, else
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (both of a pair must be set).
pub fn credentials_from_env() -> Option<Credentials> {
    let pair = |a: &str, s: &str| {
        let a = std::env::var(a).ok().filter(|v| !v.is_empty())?;
        let s = std::env::var(s).ok().filter(|v| !v.is_empty())?;
        Some(Credentials {
            access_key: a,
            secret_key: s,
        })
    };
    pair("DPYFS_ACCESS_KEY", "DPYFS_SECRET_KEY")
        .or_else(|| pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
}

/// The director URL: `--url`, else `DPYFS_URL`, else `URL_DEFAULT`.
pub fn default_url() -> String {
    std::env::var("DPYFS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| URL_DEFAULT.to_string())
}

/// One director URL, checked: (base without a trailing `/`, host[:port]).
fn parse_director(url: &str) -> std::result::Result<(String, String), String> {
    let base = url.trim_end_matches('/').to_string();
    let rest = crate::tls::strip_scheme(&base)
        .ok_or_else(|| format!("the URL must start with http:// or https:// (got {url:?})"))?;
    let host = rest.split('/').next().unwrap_or("").to_string();
    if host.is_empty() || rest.contains('/') {
        return Err(format!(
            "the URL must be http[s]://HOST[:PORT] with no path (got {url:?})"
        ));
    }
    Ok((base, host))
}

/// A request body.
pub enum Payload<'a> {
    None,
    Bytes(&'a [u8]),
    /// A stream; with a length it is sent with Content-Length, else chunked.
    Reader(&'a mut dyn Read, Option<u64>),
}

/// An object being downloaded: its headers and the body stream.
pub struct Download {
    pub status: u16,
    /// Content-Length, when the director sent one (it always does for objects).
    pub len: Option<u64>,
    /// The ETag without quotes.
    pub etag: Option<String>,
    pub body: Box<dyn Read + Send>,
}

/// What HEAD tells of an object.
#[derive(Clone, Debug)]
pub struct Head {
    pub size: u64,
    pub etag: String,
    /// Last-Modified, unix milliseconds (0 when absent).
    pub modified_ms: u64,
    pub content_type: String,
    /// User metadata: `x-amz-meta-NAME` headers as (name, value), names lowercase.
    pub meta: Vec<(String, String)>,
}

fn meta_headers(meta: &[(String, String)]) -> impl Iterator<Item = (String, String)> + '_ {
    meta.iter()
        .map(|(k, v)| (format!("x-amz-meta-{}", k.to_ascii_lowercase()), v.clone()))
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    Object {
        key: String,
        size: u64,
        etag: String,
        modified: String,
    },
    Prefix(String),
}

/// Called with a one-line notice before each retry ("connection refused; retry 2/5 in 1 s").
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Client {
    /// The directors to try, in order, as (base URL, host[:port] as the Host header
    /// carries it, which signatures cover): `DPYFS_URL=http://a:7070,http://b:7070` or
    /// `--url` repeated names a group of directors.
    directors: Vec<(String, String)>,
    /// The one requests go to; moved on after a refused connection or a 503.
    current: std::sync::atomic::AtomicUsize,
    agent: ureq::Agent,
    keys: Option<Credentials>,
    region: String,
    pub retries: u32,
    /// Whether a refused connection is retried: yes for transfers (a director may be
    /// starting, e.g. `make run` in another shell), no for the one-shot `dpyfs` commands.
    pub retry_refused: bool,
    pub notice: Notice,
}

impl Client {
    /// A client of the director at `url` (`http://host:port` or `https://host:port`), with
    /// keys from the environment if any. Err for any other URL.
    pub fn new(url: &str) -> std::result::Result<Client, String> {
        Client::with_read_timeout(url, Duration::from_secs(READ_TIMEOUT_SECS))
    }

    /// `new` with another limit on a stalled answer: an admin pass (GC, a deep fsck)
    /// answers only once it is done. `url` may name several directors, comma-separated.
    pub fn with_read_timeout(url: &str, read: Duration) -> std::result::Result<Client, String> {
        let directors = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(parse_director)
            .collect::<std::result::Result<Vec<_>, String>>()?;
        if directors.is_empty() {
            return Err("no director URL given".into());
        }
        Ok(Client {
            directors,
            current: std::sync::atomic::AtomicUsize::new(0),
            agent: ureq::AgentBuilder::new()
                .resolver(crate::resolve::netloc)
                .tls_connector(crate::tls::connector())
                .timeout_connect(Duration::from_secs(CONNECT_TIMEOUT_SECS))
                .timeout_read(read)
                .timeout_write(Duration::from_secs(READ_TIMEOUT_SECS))
                // No kept-alive connections: ureq 2 clears a connection's read and write
                // timeouts when it goes back to its pool and does not set them again when
                // it is reused, so a call on a reused connection to a director that has
                // stopped answering (a hung board, a pulled cable) would wait forever. A
                // fresh connection per call costs one handshake on the LAN.
                .max_idle_connections(0)
                .build(),
            keys: credentials_from_env(),
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| REGION_DEFAULT.to_string()),
            retries: RETRIES_DEFAULT,
            retry_refused: true,
            notice: Arc::new(|_| {}),
        })
    }

    /// The director requests go to now.
    pub fn url(&self) -> &str {
        &self.director().0
    }

    fn director(&self) -> &(String, String) {
        let k = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.directors[k % self.directors.len()]
    }

    /// After a refused connection or a 503: the next director of a group, if any.
    fn next_director(&self) {
        if self.directors.len() > 1 {
            self.current
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Runs `f` until it succeeds, fails with an error that is not retryable, or has been
    /// tried `1 + retries` times, sleeping with exponential back-off in between. `f` must
    /// be safe to repeat (it re-opens files; a consumed stdin makes its error `Final`).
    pub fn retrying<T>(&self, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut delay = BACKOFF_FIRST_MS;
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.retryable()
                        && (self.retry_refused
                            || self.directors.len() > 1
                            || !matches!(e, ClientError::NoDirector(_)))
                        && attempt < self.retries
                        && !crate::sys::stop_requested() =>
                {
                    attempt += 1;
                    self.next_director();
                    (self.notice)(&format!(
                        "{what}: {e}; retry {attempt}/{} in {:.1} s",
                        self.retries,
                        delay as f64 / 1000.0
                    ));
                    sleep_unless_stopped(Duration::from_millis(delay));
                    delay = (delay * 2).min(BACKOFF_MAX_MS);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One request, no retries. `path` is already percent-encoded; `query` is raw.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body: Payload<'_>,
    ) -> Result<ureq_response::Answer> {
        let base = &self.director().0;
        let url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        let mut req = self.agent.request(method, &url);
        // A streamed body is not hashed ahead (it may be stdin): SigV4's UNSIGNED-PAYLOAD.
        let payload_hash = match &body {
            Payload::None => crate::hash::Hash::of(b"").to_hex(),
            Payload::Bytes(b) => crate::hash::Hash::of(b).to_hex(),
            Payload::Reader(..) => "UNSIGNED-PAYLOAD".to_string(),
        };
        let mut all: Vec<(String, String)> = headers.to_vec();
        if let Payload::Reader(_, Some(n)) = &body {
            all.push(("content-length".into(), n.to_string()));
        }
        for (k, v) in self.sign(method, path, query, &all, &payload_hash) {
            all.push((k, v));
        }
        for (k, v) in &all {
            req = req.set(k, v);
        }
        let res = match body {
            Payload::None => req.call(),
            Payload::Bytes(b) => req.send_bytes(b),
            Payload::Reader(r, _) => req.send(r),
        };
        match res {
            Ok(r) => Ok(ureq_response::Answer(r)),
            Err(ureq::Error::Status(status, r)) => Err(error_from(status, r)),
            Err(ureq::Error::Transport(t)) if refused(&t) => {
                Err(ClientError::NoDirector(base.clone()))
            }
            // A certificate refused now is refused on every try.
            Err(ureq::Error::Transport(t)) if crate::tls::certificate_refused(&t) => {
                Err(ClientError::Final(t.to_string()))
            }
            Err(ureq::Error::Transport(t)) => Err(ClientError::Transport(t.to_string())),
        }
    }

    /// Headers that sign this request (AWS SigV4: x-amz-date, x-amz-content-sha256,
    /// authorization), or none without keys. Every header in `headers` is signed, and
    /// `host`; a streamed body is `UNSIGNED-PAYLOAD`.
    fn sign(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        payload_hash: &str,
    ) -> Vec<(String, String)> {
        let Some(creds) = &self.keys else {
            return Vec::new();
        };
        crate::sigv4::sign_headers(
            creds,
            &self.region,
            method,
            path,
            query,
            &self.director().1,
            headers,
            payload_hash,
            crate::timefmt::now_ms() / 1000,
        )
    }

    /// Whether requests are signed (keys were found in the environment).
    pub fn signs(&self) -> bool {
        self.keys.is_some()
    }

    // ---- objects and buckets ----

    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        body: Payload<'_>,
    ) -> Result<String> {
        self.put_object_meta(bucket, key, content_type, &[], body)
    }

    /// PUT with user metadata: `meta` names go out as `x-amz-meta-NAME`.
    pub fn put_object_meta(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        meta: &[(String, String)],
        body: Payload<'_>,
    ) -> Result<String> {
        let mut headers = vec![("content-type".to_string(), content_type.to_string())];
        headers.extend(meta_headers(meta));
        let a = self.call("PUT", &object_path(bucket, key), "", &headers, body)?;
        Ok(a.header("etag").unwrap_or("").trim_matches('"').to_string())
    }

    /// Bytes `start..start + len` of an object (fewer at its end), one ranged GET.
    pub fn get_range(&self, bucket: &str, key: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes={start}-{}", start + len - 1);
        let a = self.call(
            "GET",
            &object_path(bucket, key),
            "",
            &[("range".into(), range)],
            Payload::None,
        )?;
        let d = a.into_download();
        // A range past the end is answered with 416 (an error above); the buffer is
        // bounded by `len`, not by what the server claims to send.
        let mut out = Vec::with_capacity(usize::try_from(len.min(1 << 24)).unwrap_or(0));
        d.body
            .take(len)
            .read_to_end(&mut out)
            .map_err(|e| ClientError::Transport(format!("reading {key}: {e}")))?;
        Ok(out)
    }

    /// An object's size, time and user metadata, or None if there is no such key (a
    /// missing bucket is also None here: HEAD has no body to tell them apart).
    pub fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>> {
        match self.call("HEAD", &object_path(bucket, key), "", &[], Payload::None) {
            Ok(a) => {
                let modified_ms = a
                    .header("last-modified")
                    .and_then(crate::timefmt::parse_http_date)
                    .unwrap_or(0);
                let content_type = a.header("content-type").unwrap_or("").to_string();
                let meta = a.meta();
                let d = a.into_download();
                Ok(Some(Head {
                    size: d.len.unwrap_or(0),
                    etag: d.etag.unwrap_or_default(),
                    modified_ms,
                    content_type,
                    meta,
                }))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// CopyObject `src` to `dst` in one bucket: no data moves (the director reuses the
    /// chunks). With `meta`, the copy's metadata is replaced by it; without, it is kept.
    pub fn copy_object(
        &self,
        bucket: &str,
        src: &str,
        dst: &str,
        meta: Option<(&str, &[(String, String)])>,
    ) -> Result<()> {
        let mut headers = vec![("x-amz-copy-source".to_string(), object_path(bucket, src))];
        if let Some((content_type, meta)) = meta {
            headers.push(("x-amz-metadata-directive".into(), "REPLACE".into()));
            headers.push(("content-type".into(), content_type.into()));
            headers.extend(meta_headers(meta));
        }
        self.call(
            "PUT",
            &object_path(bucket, dst),
            "",
            &headers,
            Payload::None,
        )?;
        Ok(())
    }

    /// The first page (at most `max_keys` entries) under `prefix`, grouped at `delimiter`.
    pub fn list_first(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: u32,
    ) -> Result<Vec<Listed>> {
        let mut q = format!(
            "list-type=2&encoding-type=url&max-keys={max_keys}&prefix={}",
            percent_encode(prefix, false)
        );
        if let Some(d) = delimiter {
            q.push_str(&format!("&delimiter={}", percent_encode(d, false)));
        }
        let doc = self
            .call("GET", &bucket_path(bucket), &q, &[], Payload::None)?
            .text()?;
        Ok(parse_list_page(&doc)?.entries)
    }

    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Download> {
        let a = self.call("GET", &object_path(bucket, key), "", &[], Payload::None)?;
        Ok(a.into_download())
    }

    /// Size and ETag, or None if there is no such key (the bucket exists).
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<Option<(u64, String)>> {
        match self.call("HEAD", &object_path(bucket, key), "", &[], Payload::None) {
            Ok(a) => {
                let d = a.into_download();
                Ok(Some((d.len.unwrap_or(0), d.etag.unwrap_or_default())))
            }
            Err(e) if e.status() == Some(404) => {
                // HEAD has no body: tell a missing bucket from a missing key.
                if self.bucket_exists(bucket)? {
                    Ok(None)
                } else {
                    Err(no_such_bucket(bucket))
                }
            }
            Err(e) => Err(e),
        }
    }

    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.call("DELETE", &object_path(bucket, key), "", &[], Payload::None)?;
        Ok(())
    }

    pub fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        match self.call("HEAD", &bucket_path(bucket), "", &[], Payload::None) {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket; Ok(false) if it existed already.
    pub fn create_bucket(&self, bucket: &str) -> Result<bool> {
        match self.call("PUT", &bucket_path(bucket), "", &[], Payload::None) {
            Ok(_) => Ok(true),
            Err(ClientError::Status { code, .. })
                if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.call("DELETE", &bucket_path(bucket), "", &[], Payload::None)?;
        Ok(())
    }

    /// (name, creation date) of every bucket.
    pub fn list_buckets(&self) -> Result<Vec<(String, String)>> {
        let doc = self.retrying("list buckets", || {
            self.call("GET", "/", "", &[], Payload::None)?.text()
        })?;
        let root = xml::parse(&doc)
            .map_err(|e| ClientError::Final(format!("the bucket list is not XML: {e}")))?;
        let text = |e: &xml::Element, tag: &str| e.child_text(tag).unwrap_or_default().to_string();
        let buckets = root
            .child("Buckets")
            .map(|b| b.all("Bucket").collect::<Vec<_>>());
        Ok(buckets
            .unwrap_or_default()
            .into_iter()
            .map(|b| (text(b, "Name"), text(b, "CreationDate")))
            .collect())
    }

    /// Every entry under `prefix` (ListObjectsV2, page after page), grouped at
    /// `delimiter` when one is given.
    pub fn list(&self, bucket: &str, prefix: &str, delimiter: Option<&str>) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = format!(
                "list-type=2&encoding-type=url&prefix={}",
                percent_encode(prefix, false)
            );
            if let Some(d) = delimiter {
                q.push_str(&format!("&delimiter={}", percent_encode(d, false)));
            }
            if let Some(t) = &token {
                q.push_str(&format!("&continuation-token={}", percent_encode(t, false)));
            }
            let doc = self.retrying(&format!("list {bucket}/{prefix}"), || {
                self.call("GET", &bucket_path(bucket), &q, &[], Payload::None)?
                    .text()
            })?;
            let page = parse_list_page(&doc)?;
            out.extend(page.entries);
            match page.next_token {
                Some(t) if page.truncated => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// `GET /_dpyfs/<path>` as JSON, retried.
    pub fn admin_json(&self, path: &str) -> Result<serde_json::Value> {
        self.retrying(&format!("/_dpyfs/{path}"), || {
            self.admin_call("GET", path, None)
        })
    }

    /// One call to `/_dpyfs/<path>` (`path` may end in `?query`), not retried: a JSON
    /// body out when given, and the JSON answer.
    pub fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let body = body.map(|b| b.to_string());
        let (headers, payload) = match &body {
            Some(b) => (
                vec![("content-type".to_string(), "application/json".to_string())],
                Payload::Bytes(b.as_bytes()),
            ),
            None => (Vec::new(), Payload::None),
        };
        let text = self
            .call(method, &format!("/_dpyfs/{p}"), q, &headers, payload)?
            .text()?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Final(format!("the director's answer is not JSON: {e}")))
    }
}

/// Whether a transport error is a refused connection (nothing listens on the port), as
/// opposed to a reset, a timeout or a name that does not resolve.
fn refused(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = e.source();
    }
    false
}

fn sleep_unless_stopped(d: Duration) {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end && !crate::sys::stop_requested() {
        std::thread::sleep(Duration::from_millis(50).min(d));
    }
}

fn no_such_bucket(bucket: &str) -> ClientError {
    ClientError::Status {
        status: 404,
        code: "NoSuchBucket".into(),
        message: format!("the bucket '{bucket}' does not exist"),
    }
}

/// `/bucket/key` with the key percent-encoded (slashes kept), as signatures expect.
pub fn object_path(bucket: &str, key: &str) -> String {
    format!(
        "/{}/{}",
        percent_encode(bucket, false),
        percent_encode(key, true)
    )
}

pub fn bucket_path(bucket: &str) -> String {
    format!("/{}", percent_encode(bucket, false))
}

/// The error an answer carries: S3 XML `<Code>`/`<Message>`, or JSON `code`/`error`.
fn error_from(status: u16, r: ureq::Response) -> ClientError {
    let mut text = String::new();
    let _ = r.into_reader().take(64 * 1024).read_to_string(&mut text);
    let doc = xml::parse(&text).ok();
    let (code, message) = if let Some(c) = doc.as_ref().and_then(|d| d.child_text("Code")) {
        let m = doc.as_ref().and_then(|d| d.child_text("Message"));
        (c.to_string(), m.unwrap_or_default().to_string())
    } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        (
            v["code"].as_str().unwrap_or("Error").to_string(),
            v["error"].as_str().unwrap_or("").to_string(),
        )
    } else {
        let generic = match status {
            404 => "NotFound",
            403 => "AccessDenied",
            _ => "Error",
        };
        (generic.to_string(), text.trim().to_string())
    };
    ClientError::Status {
        status,
        code,
        message,
    }
}

/// Keeps ureq's response type inside this module.
pub mod ureq_response {
    use super::{ClientError, Download, Result};
    use std::io::Read;

    pub struct Answer(pub(super) ureq::Response);

    impl Answer {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.0.header(name)
        }

        /// The `x-amz-meta-*` headers as (name without the prefix, value).
        pub fn meta(&self) -> Vec<(String, String)> {
            self.0
                .headers_names()
                .into_iter()
                .filter_map(|h| {
                    let name = h.to_ascii_lowercase();
                    let short = name.strip_prefix("x-amz-meta-")?.to_string();
                    Some((short, self.0.header(&h)?.to_string()))
                })
                .collect()
        }

        pub fn text(self) -> Result<String> {
            let mut s = String::new();
            self.0
                .into_reader()
                .take(64 << 20)
                .read_to_string(&mut s)
                .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?;
            Ok(s)
        }

        pub fn into_download(self) -> Download {
            let len = self
                .0
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            let etag = self
                .0
                .header("etag")
                .map(|e| e.trim().trim_matches('"').to_string());
            Download {
                status: self.0.status(),
                len,
                etag,
                body: Box::new(self.0.into_reader()),
            }
        }
    }
}

struct ListPage {
    entries: Vec<Listed>,
    truncated: bool,
    next_token: Option<String>,
}

fn parse_list_page(doc: &str) -> Result<ListPage> {
    let dec = |s: &str| {
        crate::http::percent_decode(s, true)
            .ok_or_else(|| ClientError::Final(format!("a listed name does not decode: {s:?}")))
    };
    let root =
        xml::parse(doc).map_err(|e| ClientError::Final(format!("the listing is not XML: {e}")))?;
    let text = |e: &xml::Element, tag: &str| e.child_text(tag).unwrap_or_default().to_string();
    let mut entries = Vec::new();
    for c in root.all("Contents") {
        entries.push(Listed::Object {
            key: dec(&text(c, "Key"))?,
            size: text(c, "Size").parse().unwrap_or(0),
            etag: text(c, "ETag").trim_matches('"').to_string(),
            modified: text(c, "LastModified"),
        });
    }
    for p in root.all("CommonPrefixes") {
        entries.push(Listed::Prefix(dec(&text(p, "Prefix"))?));
    }
    Ok(ListPage {
        entries,
        truncated: root.child_text("IsTruncated") == Some("true"),
        next_token: root.child_text("NextContinuationToken").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_keys_once_and_keep_slashes() {
        assert_eq!(object_path("b", "a b/é?.txt"), "/b/a%20b/%C3%A9%3F.txt");
        assert_eq!(bucket_path("photos"), "/photos");
    }

    #[test]
    fn list_pages_parse_with_url_encoding() {
        let doc = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <NextContinuationToken>6162</NextContinuationToken>\
            <Contents><Key>a%20b/%C3%A9</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
            <ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>\
            <CommonPrefixes><Prefix>dir%2F</Prefix></CommonPrefixes></ListBucketResult>";
        let p = parse_list_page(doc).unwrap();
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("6162"));
        assert_eq!(
            p.entries,
            vec![
                Listed::Object {
                    key: "a b/é".into(),
                    size: 12,
                    etag: "abc".into(),
                    modified: "2026-01-01T00:00:00.000Z".into()
                },
                Listed::Prefix("dir/".into())
            ]
        );
    }

    #[test]
    fn errors_retry_only_when_it_can_help() {
        let st = |status| ClientError::Status {
            status,
            code: "X".into(),
            message: String::new(),
        };
        assert!(ClientError::Transport("refused".into()).retryable());
        assert!(st(503).retryable());
        assert!(st(500).retryable());
        assert!(!st(501).retryable());
        assert!(!st(404).retryable());
        assert!(!ClientError::Final("stdin".into()).retryable());
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:7070/").is_ok());
        assert!(Client::new("https://nas.local:7070").is_ok());
        assert!(Client::new("ftp://x").is_err());
        assert!(Client::new("http://x/path").is_err());
        assert!(Client::new("http://").is_err());
        let group = Client::new("http://a:7070, http://b:7070/").unwrap();
        assert_eq!(group.url(), "http://a:7070");
        group.next_director();
        assert_eq!(group.url(), "http://b:7070");
        assert!(Client::new("http://a,ftp://b").is_err());
        assert!(Client::new(",").is_err());
    }
}
