//! Chain (pipeline) replication, the store's side: a chunk PUT that names further stores in
//! `X-Dpyfs-Forward` is streamed on to the first of them while this store writes its own
//! copy, so the director sends each byte once instead of N times (HDFS's write pipeline).
//!
//! Each store in the chain verifies the chunk's hash before it makes its own copy durable
//! (the engine's `put` does, as for any PUT); a bad byte anywhere is refused by every store
//! after it. The answer is this store's own outcome as the status (201 created, 200 already
//! present, or its error), and a JSON body with the outcome of every store further down the
//! chain, in order:
//!
//! ```json
//! {"forwarded": [{"url": "http://b:7071", "created": true},
//!                {"url": "http://c:7071", "status": 507, "code": "InsufficientStorage", "error": "..."}]}
//! ```
//!
//! The director acknowledges nothing on this report alone being incomplete: every store it
//! does not name as stored is sent its copy directly (`director::data::scatter`). The next
//! store is called with this store's own token (the cluster shares one), so forwarding works
//! only between stores that accept the same token; over HTTPS this store presents its own
//! certificate and trusts the cluster CA (`dpyfs-store --ca`, else its `--client-ca`).

use crate::hash::Hash;
use serde_json::{Value, json};
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

/// The header naming the stores after this one, space-separated, in chain order.
pub const FORWARD_HEADER: &str = "x-dpyfs-forward";
/// At most this many stores after this one (N is at most a handful).
pub const CHAIN_LEN_MAX: usize = 8;
/// Blocks of the body queued between the receiving and the forwarding thread: bounds the
/// memory a slow next store can make this one hold (at most this many reads' worth).
const QUEUED_BLOCKS_MAX: usize = 8;
const CONNECT_TIMEOUT_MS: u64 = 2_000;
/// A call to a store may take this long, plus the time its bytes take at
/// CALL_RATE_MIN_BYTES_PER_SEC (the director's calls and a store's forwards alike).
pub const CALL_TIMEOUT_MS: u64 = 30_000;
/// The slowest transfer a store call is allowed (1 MiB/s, far below any board's link).
pub const CALL_RATE_MIN_BYTES_PER_SEC: u64 = 1024 * 1024;
/// A store's JSON answer (a chain report, an error body) is read back at most this far.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;

/// The deadline of a whole call to a store that moves `bytes`. A deadline, not only read
/// and write timeouts: ureq 2 clears those on a connection it reuses from its pool.
pub fn call_deadline(bytes: u64) -> Duration {
    Duration::from_millis(
        CALL_TIMEOUT_MS + bytes.saturating_mul(1000) / CALL_RATE_MIN_BYTES_PER_SEC,
    )
}

/// A store's JSON answer body; Null when it is not JSON (or not readable).
pub fn read_answer(r: ureq::Response) -> Value {
    let mut text = String::new();
    let _ = r
        .into_reader()
        .take(ANSWER_BYTES_MAX)
        .read_to_string(&mut text);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The chain after this store, from the header's value: http(s) URLs, at most
/// CHAIN_LEN_MAX. `Err` is a message for a 400.
pub fn parse_chain(header: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = header
        .split_whitespace()
        .map(|u| u.trim_end_matches('/').to_string())
        .collect();
    if urls.is_empty() || urls.len() > CHAIN_LEN_MAX {
        return Err(format!(
            "{FORWARD_HEADER} must name 1 to {CHAIN_LEN_MAX} store URLs, separated by spaces"
        ));
    }
    if let Some(bad) = urls
        .iter()
        .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return Err(format!("{FORWARD_HEADER}: '{bad}' is not an http(s) URL"));
    }
    Ok(urls)
}

/// A reader that hands a copy of every block it reads to the forwarding thread.
pub struct Tee<'a> {
    inner: &'a mut dyn Read,
    tx: Option<SyncSender<Vec<u8>>>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(tx) = &self.tx {
                // A forwarder that has stopped (its store failed) takes no more; this
                // store's own copy goes on regardless.
                if tx.send(buf[..n].to_vec()).is_err() {
                    self.tx = None;
                }
            }
        }
        Ok(n)
    }
}

/// The forwarding thread's body: the blocks the `Tee` passed on. It ends cleanly only when
/// exactly `len` bytes came through; a body cut short (this store stopped reading: too
/// large, disk full) is an error, so that the next store sees an aborted request rather
/// than waiting for bytes that will never come.
struct Blocks {
    rx: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    seen: u64,
    len: u64,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(block) => {
                    self.seen += block.len() as u64;
                    self.current = block;
                    self.at = 0;
                }
                Err(_) if self.seen == self.len => return Ok(0),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the body stopped at {} of {} bytes", self.seen, self.len),
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A running forward of one chunk to the rest of its chain.
pub struct Forward {
    handle: std::thread::JoinHandle<Vec<Value>>,
}

/// Starts forwarding chunk `h` (`len` bytes, as declared by the request) to `chain[0]`,
/// which is asked to forward to the rest. Returns the reader this store must read its
/// body through, and the forward to `finish` once its own copy is done.
pub fn start<'a>(
    body: &'a mut dyn Read,
    h: &Hash,
    len: u64,
    chain: Vec<String>,
    token: Option<String>,
) -> io::Result<(Tee<'a>, Forward)> {
    let (tx, rx) = sync_channel(QUEUED_BLOCKS_MAX);
    let blocks = Blocks {
        rx,
        current: Vec::new(),
        at: 0,
        seen: 0,
        len,
    };
    let h = *h;
    let handle = std::thread::Builder::new()
        .name("chunk-forward".into())
        .spawn(move || send(&chain, &h, len, blocks, token.as_deref()))?;
    Ok((
        Tee {
            inner: body,
            tx: Some(tx),
        },
        Forward { handle },
    ))
}

impl Forward {
    /// Waits for the chain's answer: one JSON outcome per store after this one.
    pub fn finish(self, tee: Tee<'_>) -> Vec<Value> {
        // Closing the channel ends the forwarded body (or aborts it, if it was short).
        drop(tee);
        self.handle.join().unwrap_or_else(|_| {
            vec![json!({"url": "", "status": 0, "code": "ForwardPanicked",
                        "error": "the forwarding thread panicked"})]
        })
    }
}

/// PUTs the body to `chain[0]` with the rest of the chain in the header, and turns its
/// answer into the outcome of every store in `chain`.
fn send(chain: &[String], h: &Hash, len: u64, body: Blocks, token: Option<&str>) -> Vec<Value> {
    let next = &chain[0];
    let agent = ureq::AgentBuilder::new()
        .resolver(crate::resolve::netloc)
        .tls_connector(crate::tls::connector())
        .timeout_connect(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(call_deadline(len))
        .no_delay(true)
        .build();
    let mut req = agent
        .put(&format!("{next}/chunks/{h}"))
        .set("Content-Length", &len.to_string());
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    if chain.len() > 1 {
        req = req.set(FORWARD_HEADER, &chain[1..].join(" "));
    }
    let unreached = |why: &str| -> Vec<Value> {
        chain
            .iter()
            .map(|u| json!({"url": u, "status": 0, "code": "ForwardFailed", "error": why}))
            .collect()
    };
    let (status, answer) = match req.send(body) {
        Ok(r) => (r.status(), read_answer(r)),
        Err(ureq::Error::Status(s, r)) => (s, read_answer(r)),
        Err(e) => return unreached(&format!("{next}: {e}")),
    };
    let mut out = vec![if status < 300 {
        json!({"url": next, "created": status == 201})
    } else {
        json!({"url": next, "status": status,
               "code": answer.get("code").cloned().unwrap_or(Value::Null),
               "error": answer.get("error").cloned().unwrap_or(Value::Null)})
    }];
    // What the next store reported of the stores after it; a store that did not report
    // (an older store, or one that failed before forwarding) leaves them unconfirmed.
    let reported = answer
        .get("forwarded")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, u) in chain[1..].iter().enumerate() {
        out.push(reported.get(i).cloned().unwrap_or_else(|| {
            json!({"url": u, "status": 0, "code": "ForwardUnconfirmed",
                   "error": format!("{next} did not report on it")})
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_header_takes_urls_only_and_a_bounded_number() {
        assert_eq!(
            parse_chain("http://a:1/ https://b:2").unwrap(),
            vec!["http://a:1", "https://b:2"]
        );
        assert!(parse_chain("").is_err());
        assert!(parse_chain("file:///etc/passwd").is_err());
        let many = ["http://a:1"; CHAIN_LEN_MAX + 1].join(" ");
        assert!(parse_chain(&many).is_err());
    }

    fn blocks(len: u64) -> (SyncSender<Vec<u8>>, Blocks) {
        let (tx, rx) = sync_channel(2);
        let b = Blocks {
            rx,
            current: Vec::new(),
            at: 0,
            seen: 0,
            len,
        };
        (tx, b)
    }

    #[test]
    fn a_body_cut_short_is_an_error_for_the_next_store_not_an_end() {
        let (tx, mut b) = blocks(10);
        tx.send(vec![1, 2, 3]).unwrap();
        drop(tx);
        let mut out = Vec::new();
        let e = b.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out, vec![1, 2, 3]);

        let (tx, mut b) = blocks(3);
        tx.send(vec![1, 2, 3]).unwrap();
        drop(tx);
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert_eq!(out, vec![1, 2, 3]);
    }
}
