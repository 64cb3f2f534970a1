//! Calls from the director to stores. The only director module that touches ureq types.
//! Every call has a connect timeout and a deadline for the whole call; connections are
//! reused through one agent with a bounded idle pool per store, and TCP_NODELAY set.
//!
//! Why a deadline per call and not only read/write timeouts: ureq 2 applies its read and
//! write timeouts to a connection when it opens it, and clears them when the connection
//! goes back to the idle pool; a call on a reused connection then runs with no timeout at
//! all. A store whose board lost power or whose cable was pulled answers nothing, so such
//! a call (the `/status` poll above all) waited forever, and with it every liveness
//! update (found by tests/boards.rs, which cuts a board off its network). A deadline is
//! set on every request, so it holds on reused connections too.

use crate::hash::Hash;
use crate::store::forward::{FORWARD_HEADER, call_deadline, read_answer};
use std::io::Read;
use std::time::Duration;

/// Connecting to a store takes at most this long before the store counts as down.
pub const STORE_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// A read or write on a new store connection may stall at most this long; a whole call
/// has the deadline `store::forward::call_deadline` gives (this, plus its bytes at 1 MiB/s).
pub const STORE_IO_TIMEOUT_MS: u64 = crate::store::forward::CALL_TIMEOUT_MS;
/// Idle kept-alive connections per store.
pub const STORE_IDLE_CONNECTIONS_MAX: usize = 8;
/// `/status` polls give up sooner.
pub const STATUS_TIMEOUT_MS: u64 = 2_000;

#[derive(Debug)]
pub enum CallError {
    /// No answer: refused, reset, timed out. The store is treated as down.
    Transport(String),
    /// The store answered with an error status; `code` from its JSON body.
    Status(u16, String),
    /// Another store of a replication chain did not confirm this store's copy: unknown,
    /// to be sent directly. Says nothing about this store's health.
    Unconfirmed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "no answer: {e}"),
            CallError::Status(s, c) => write!(f, "HTTP {s} {c}"),
            CallError::Unconfirmed(why) => write!(f, "not confirmed by the chain: {why}"),
        }
    }
}

pub struct StoreClient {
    agent: ureq::Agent,
    status_agent: ureq::Agent,
    token: Option<String>,
}

fn classify(e: ureq::Error) -> CallError {
    match e {
        ureq::Error::Status(code, resp) => {
            let body = resp.into_string().unwrap_or_default();
            let c = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
                .unwrap_or_default();
            CallError::Status(code, c)
        }
        ureq::Error::Transport(t) => CallError::Transport(t.to_string()),
    }
}

impl StoreClient {
    pub fn new(token: Option<String>) -> StoreClient {
        let build = |io_ms: u64| {
            ureq::AgentBuilder::new()
                .resolver(crate::resolve::netloc)
                .tls_connector(crate::tls::connector())
                .timeout_connect(Duration::from_millis(STORE_CONNECT_TIMEOUT_MS))
                .timeout_read(Duration::from_millis(io_ms))
                .timeout_write(Duration::from_millis(io_ms))
                .max_idle_connections_per_host(STORE_IDLE_CONNECTIONS_MAX)
                .no_delay(true)
                .build()
        };
        StoreClient {
            agent: build(STORE_IO_TIMEOUT_MS),
            status_agent: build(STATUS_TIMEOUT_MS),
            token,
        }
    }

    /// A request to a store, with the token, whose whole call must end by the deadline
    /// for moving `bytes` (`store::forward::call_deadline`).
    fn req(&self, method: &str, url: &str, bytes: u64) -> ureq::Request {
        self.authorized(self.agent.request(method, url))
            .timeout(call_deadline(bytes))
    }

    fn authorized(&self, r: ureq::Request) -> ureq::Request {
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Stores a chunk; Ok(true) if it was new, Ok(false) if the store already had it.
    pub fn put_chunk(&self, base: &str, h: &Hash, data: &[u8]) -> Result<bool, CallError> {
        let url = format!("{base}/chunks/{h}");
        let r = self
            .req("PUT", &url, data.len() as u64)
            .send_bytes(data)
            .map_err(classify)?;
        Ok(r.status() == 201)
    }

    /// Stores a chunk on `chain[0]`, which streams it on to the rest of `chain` while it
    /// writes its own copy (`store::forward`). One outcome per store of the chain, in
    /// order: Ok(true) if it already had the chunk. A store the chain did not confirm
    /// (the chain broke before it, or an older store did not forward) is
    /// `Err(CallError::Unconfirmed)`: its copy must be sent another way, and nothing is
    /// known about its health.
    pub fn put_chunk_chain(
        &self,
        chain: &[&str],
        h: &Hash,
        data: &[u8],
    ) -> Vec<Result<bool, CallError>> {
        let Some((first, rest)) = chain.split_first() else {
            return Vec::new();
        };
        let url = format!("{first}/chunks/{h}");
        let answer = self
            .req("PUT", &url, data.len() as u64)
            .set(FORWARD_HEADER, &rest.join(" "))
            .send_bytes(data);
        let (own, body) = match answer {
            Ok(r) => (Ok(r.status() == 200), read_answer(r)),
            Err(ureq::Error::Status(code, r)) => {
                let body = read_answer(r);
                let c = body
                    .get("code")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default();
                (Err(CallError::Status(code, c.to_string())), body)
            }
            Err(e) => (Err(classify(e)), serde_json::Value::Null),
        };
        let reported = body
            .get("forwarded")
            .and_then(|f| f.as_array())
            .cloned()
            .unwrap_or_default();
        let mut out = vec![own];
        for (i, u) in rest.iter().enumerate() {
            out.push(match reported.get(i) {
                Some(v) if v.get("url").and_then(|x| x.as_str()) == Some(u) => chain_outcome(v),
                _ => Err(CallError::Unconfirmed(format!(
                    "{first} did not report on {u}"
                ))),
            });
        }
        out
    }

    /// Some(len) if the store holds a copy that it has just re-verified.
    pub fn head_chunk(&self, base: &str, h: &Hash) -> Result<Option<u64>, CallError> {
        let url = format!("{base}/chunks/{h}?verify=1");
        match self.req("HEAD", &url, 0).call() {
            Ok(r) => Ok(r.header("Content-Length").and_then(|l| l.parse().ok())),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// The chunk's bytes, at most `max_len` of them. The store is asked not to hash the
    /// chunk first (`?verify=0`): every caller checks the hash of what it receives, so the
    /// bytes are hashed once, not twice. A caller that finds a bad copy reports it with
    /// `head_chunk` (`?verify=1`), which makes the store quarantine it.
    pub fn get_chunk(&self, base: &str, h: &Hash, max_len: u64) -> Result<Vec<u8>, CallError> {
        let url = format!("{base}/chunks/{h}?verify=0");
        let r = self.req("GET", &url, max_len).call().map_err(classify)?;
        let cap = r
            .header("Content-Length")
            .and_then(|l| l.parse::<u64>().ok())
            .unwrap_or(0)
            .min(max_len);
        let mut buf = Vec::with_capacity(cap as usize);
        r.into_reader()
            .take(max_len + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CallError::Transport(e.to_string()))?;
        Ok(buf)
    }

    pub fn delete_chunk(&self, base: &str, h: &Hash) -> Result<(), CallError> {
        let url = format!("{base}/chunks/{h}");
        self.req("DELETE", &url, 0)
            .call()
            .map(|_| ())
            .map_err(classify)
    }

    pub fn status(&self, base: &str) -> Result<serde_json::Value, CallError> {
        let r = self
            .authorized(self.status_agent.get(&format!("{base}/status")))
            .timeout(Duration::from_millis(STATUS_TIMEOUT_MS))
            .call()
            .map_err(classify)?;
        let text = r
            .into_string()
            .map_err(|e| CallError::Transport(e.to_string()))?;
        serde_json::from_str(&text)
            .map_err(|e| CallError::Transport(format!("bad /status JSON: {e}")))
    }

    /// One page of a store's chunks after `after`, with size and mtime.
    pub fn list_chunks(
        &self,
        base: &str,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<Listed>, CallError> {
        let after = after.map(|h| h.to_hex()).unwrap_or_default();
        let url = format!("{base}/chunks?after={after}&limit={limit}&detail=1");
        let mut text = String::new();
        self.req("GET", &url, LIST_PAGE_BYTES_MAX)
            .call()
            .map_err(classify)?
            .into_reader()
            .take(LIST_PAGE_BYTES_MAX)
            .read_to_string(&mut text)
            .map_err(|e| CallError::Transport(e.to_string()))?;
        text.lines()
            .map(|l| {
                parse_listed(l)
                    .ok_or_else(|| CallError::Transport(format!("bad listing line {l:?}")))
            })
            .collect()
    }

    /// The first `n` bytes of a chunk (the store verifies the whole chunk first).
    pub fn chunk_prefix(&self, base: &str, h: &Hash, n: u64) -> Result<Vec<u8>, CallError> {
        let url = format!("{base}/chunks/{h}");
        let r = self
            .req("GET", &url, n)
            .set("Range", &format!("bytes=0-{}", n.saturating_sub(1)))
            .call()
            .map_err(classify)?;
        let mut buf = Vec::new();
        r.into_reader()
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| CallError::Transport(e.to_string()))?;
        Ok(buf)
    }
}

/// One store's outcome as a chain's report gives it (`store::forward`): only a plain
/// success counts; anything else is left for a direct copy.
fn chain_outcome(v: &serde_json::Value) -> Result<bool, CallError> {
    match v.get("created").and_then(|c| c.as_bool()) {
        Some(created) if v.get("status").is_none() => Ok(!created),
        _ => Err(CallError::Unconfirmed(format!(
            "{}: {}",
            v.get("url").and_then(|u| u.as_str()).unwrap_or("?"),
            v.get("error").and_then(|e| e.as_str()).unwrap_or("failed")
        ))),
    }
}

/// Bytes one listing page may take (100 000 lines of about 90 bytes).
const LIST_PAGE_BYTES_MAX: u64 = 10 * 1024 * 1024;

/// One line of a store's detailed listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub hash: Hash,
    pub size: u64,
    pub mtime: u64,
}

fn parse_listed(line: &str) -> Option<Listed> {
    let mut f = line.split(' ');
    Some(Listed {
        hash: Hash::parse(f.next()?)?,
        size: f.next()?.parse().ok()?,
        mtime: f.next()?.parse().ok()?,
    })
}
