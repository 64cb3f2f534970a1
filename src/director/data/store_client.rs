//! Calls from the director to stores. The only director module that touches ureq types.
//! Every call has connect and transfer timeouts; connections are reused through one
//! agent with a bounded idle pool per store, and TCP_NODELAY set.

use crate::hash::Hash;
use std::io::Read;
use std::time::Duration;

/// Connecting to a store takes at most this long before the store counts as down.
pub const STORE_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// A read or write on a store connection may stall at most this long.
pub const STORE_IO_TIMEOUT_MS: u64 = 30_000;
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
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "no answer: {e}"),
            CallError::Status(s, c) => write!(f, "HTTP {s} {c}"),
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

    fn req(&self, agent: &ureq::Agent, method: &str, url: &str) -> ureq::Request {
        let r = agent.request(method, url);
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Stores a chunk; Ok(true) if it was new, Ok(false) if the store already had it.
    pub fn put_chunk(&self, base: &str, h: &Hash, data: &[u8]) -> Result<bool, CallError> {
        let url = format!("{base}/chunks/{h}");
        let r = self
            .req(&self.agent, "PUT", &url)
            .send_bytes(data)
            .map_err(classify)?;
        Ok(r.status() == 201)
    }

    /// Some(len) if the store holds a copy that it has just re-verified.
    pub fn head_chunk(&self, base: &str, h: &Hash) -> Result<Option<u64>, CallError> {
        let url = format!("{base}/chunks/{h}?verify=1");
        match self.req(&self.agent, "HEAD", &url).call() {
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
        let r = self
            .req(&self.agent, "GET", &url)
            .call()
            .map_err(classify)?;
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
        self.req(&self.agent, "DELETE", &url)
            .call()
            .map(|_| ())
            .map_err(classify)
    }

    pub fn status(&self, base: &str) -> Result<serde_json::Value, CallError> {
        let r = self
            .req(&self.status_agent, "GET", &format!("{base}/status"))
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
        self.req(&self.agent, "GET", &url)
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
            .req(&self.agent, "GET", &url)
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
