//! Gather: an object's bytes (or a range of them) as a `Read`, fetched chunk by chunk
//! from the stores in placement order with fallback, every chunk verified against its
//! SHA-256 by the director too. Up to `READ_AHEAD_CHUNKS` chunks are fetched in parallel
//! ahead of the one being sent. An inline object's bytes come from a verified copy of its
//! manifest instead, in one piece.

use crate::director::Director;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::ObjectMeta;
use crate::director::meta::manifest::{self, INLINE_MANIFEST_BYTES_MAX};
use crate::director::meta::records::ChunkRef;
use crate::hash::Hash;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

/// Chunks fetched ahead of the one being sent.
pub const READ_AHEAD_CHUNKS: usize = 4;

impl Director {
    /// One verified copy of a chunk: stores in placement order, live ones first; a copy
    /// that is missing or fails its hash is counted and the next store tried.
    pub fn fetch_chunk(&self, c: &ChunkRef) -> Result<Vec<u8>> {
        self.fetch_verified(&c.hash, u64::from(c.len))
    }

    /// One verified copy of chunk `h` of at most `max_len` bytes (see `fetch_chunk`).
    fn fetch_verified(&self, h: &Hash, max_len: u64) -> Result<Vec<u8>> {
        // Live stores first, keeping placement order; draining and down ones after.
        for t in self.stores.read_order(h) {
            match self.stores.client.get_chunk(&t.url, h, max_len) {
                Ok(bytes) if bytes.len() as u64 <= max_len && Hash::of(&bytes) == *h => {
                    return Ok(bytes);
                }
                Ok(bytes) => {
                    self.counters.bad_copies.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "store {} sent {} bytes for chunk {} that do not verify; trying another copy",
                        t.url,
                        bytes.len(),
                        h
                    );
                    self.report_bad_copy(&t.url, h);
                }
                Err(super::store_client::CallError::Transport(e)) => {
                    self.stores.mark_down(&t.id, &e);
                }
                Err(e) => {
                    self.counters.missing_copies.fetch_add(1, Ordering::Relaxed);
                    log::warn!("store {} has no good copy of chunk {}: {e}", t.url, h);
                }
            }
        }
        Err(DirectorError::ChunkUnavailable(*h))
    }

    /// The bytes of an inline object, from a verified copy of its manifest.
    pub fn read_inline(&self, meta: &ObjectMeta) -> Result<Vec<u8>> {
        let h = meta.manifest;
        let bytes = self.fetch_verified(&h, INLINE_MANIFEST_BYTES_MAX)?;
        // The copy verified against the name the journal holds, so it is the manifest this
        // director wrote: a body that does not come out of it is a bug, not a bad disk.
        let body = manifest::decode(&bytes)
            .ok_or_else(|| "it does not decode".to_string())
            .and_then(|m| m.body())
            .and_then(|b| b.ok_or_else(|| "it holds no data".to_string()))
            .map_err(|e| {
                DirectorError::Internal(format!("manifest {h} of an inline object: {e}"))
            })?;
        if body.len() as u64 != meta.size {
            return Err(DirectorError::Internal(format!(
                "manifest {h} holds {} bytes of an object of {}",
                body.len(),
                meta.size
            )));
        }
        Ok(body)
    }

    /// Asks a store that sent a copy that does not verify to check it itself, which
    /// quarantines it (the store's GET no longer hashes before sending: the director does).
    pub fn report_bad_copy(&self, url: &str, h: &Hash) {
        match self.stores.client.head_chunk(url, h) {
            Ok(None) => log::warn!("store {url} quarantined its bad copy of chunk {h}"),
            Ok(Some(_)) => log::warn!("store {url} finds its copy of chunk {h} good now"),
            Err(e) => log::warn!("store {url}: asking it to verify chunk {h}: {e}"),
        }
    }

    /// Bytes `start..end` of the object as a stream. The first chunk is fetched before
    /// this returns, so an unreadable object fails with an error status rather than a
    /// truncated 200.
    pub fn open_read(
        self: &Arc<Self>,
        meta: &Arc<ObjectMeta>,
        start: u64,
        end: u64,
    ) -> Result<Gather> {
        if meta.inline {
            let mut body = self.read_inline(meta)?;
            let end = end.min(body.len() as u64) as usize;
            body.truncate(end);
            body.drain(..(start as usize).min(end));
            self.counters
                .bytes_out
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            // Everything is in `buf`; the channel's sender is gone, so the stream ends there.
            let (_, rx) = sync_channel(1);
            return Ok(Gather {
                rx,
                buf: body,
                pos: 0,
                owed: 0,
            });
        }
        let pieces = pieces(&meta.chunks, start, end);
        let (tx, rx) = sync_channel(1);
        let me = Arc::clone(self);
        thread::Builder::new()
            .name("gather".into())
            .spawn(move || me.produce(pieces, tx))
            .map_err(|e| DirectorError::Internal(format!("cannot start a reader thread: {e}")))?;
        let mut g = Gather {
            rx,
            buf: Vec::new(),
            pos: 0,
            owed: end.saturating_sub(start),
        };
        if start < end {
            match g.rx.recv() {
                Ok(Ok(first)) => {
                    g.owed -= first.len() as u64;
                    g.buf = first;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(DirectorError::Internal("reader thread vanished".into())),
            }
        }
        Ok(g)
    }

    /// Fetches pieces in order with read-ahead and sends them; stops when the reader is
    /// dropped (the client went away) or a chunk cannot be had.
    fn produce(self: Arc<Self>, pieces: Vec<Piece>, tx: SyncSender<Result<Vec<u8>>>) {
        let mut ahead: VecDeque<(Piece, thread::JoinHandle<Result<Vec<u8>>>)> = VecDeque::new();
        let mut rest = pieces.into_iter();
        loop {
            while ahead.len() < READ_AHEAD_CHUNKS {
                let Some(p) = rest.next() else { break };
                let me = Arc::clone(&self);
                let c = p.chunk;
                match thread::Builder::new()
                    .name("fetch".into())
                    .spawn(move || me.fetch_chunk(&c))
                {
                    Ok(h) => ahead.push_back((p, h)),
                    Err(e) => {
                        let _ = tx.send(Err(DirectorError::Internal(format!(
                            "cannot start a fetch: {e}"
                        ))));
                        return;
                    }
                }
            }
            let Some((p, h)) = ahead.pop_front() else {
                return;
            };
            let msg = h
                .join()
                .unwrap_or_else(|_| Err(DirectorError::Internal("chunk fetch panicked".into())))
                .map(|mut bytes| {
                    bytes.truncate(p.skip + p.take);
                    bytes.drain(..p.skip);
                    bytes
                });
            let failed = msg.is_err();
            if let Ok(b) = &msg {
                self.counters
                    .bytes_out
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            if tx.send(msg).is_err() || failed {
                return;
            }
        }
    }
}

/// The part of one chunk that a range needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub chunk: ChunkRef,
    pub skip: usize,
    pub take: usize,
}

/// Maps the byte range `start..end` onto chunk pieces.
pub(crate) fn pieces(chunks: &[ChunkRef], start: u64, end: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    if start >= end {
        return out;
    }
    let mut off = 0u64;
    for c in chunks {
        let c_end = off + u64::from(c.len);
        if c_end > start && off < end {
            let skip = start.saturating_sub(off);
            let take = end.min(c_end) - off - skip;
            out.push(Piece {
                chunk: *c,
                skip: skip as usize,
                take: take as usize,
            });
        }
        off = c_end;
        if off >= end {
            break;
        }
    }
    out
}

/// The reading end: yields the pieces' bytes in order; a chunk that could not be had
/// ends the stream with an error (the connection is then cut, never padded).
pub struct Gather {
    rx: Receiver<Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes promised but not yet received from the producer: the stream may only end
    /// when this is zero.
    owed: u64,
}

impl Read for Gather {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.owed = self.owed.saturating_sub(b.len() as u64);
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    log::error!("read aborted: {e}");
                    return Err(io::Error::other(e.to_string()));
                }
                Err(_) if self.owed == 0 => return Ok(0),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the object stream ended {} bytes early", self.owed),
                    ));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(lens: &[u32]) -> Vec<ChunkRef> {
        lens.iter()
            .enumerate()
            .map(|(i, &len)| ChunkRef {
                hash: Hash::of(&[i as u8]),
                len,
            })
            .collect()
    }

    #[test]
    fn ranges_map_to_chunk_pieces() {
        let c = chunks(&[10, 10, 10]);
        let whole = pieces(&c, 0, 30);
        assert_eq!(whole.len(), 3);
        assert!(whole.iter().all(|p| p.skip == 0 && p.take == 10));
        // A range on a chunk boundary.
        let p = pieces(&c, 10, 20);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].chunk, p[0].skip, p[0].take), (c[1], 0, 10));
        // A range across a boundary.
        let p = pieces(&c, 9, 11);
        assert_eq!(
            p.iter().map(|p| (p.skip, p.take)).collect::<Vec<_>>(),
            [(9, 1), (0, 1)]
        );
        // The last byte.
        let p = pieces(&c, 29, 30);
        assert_eq!((p[0].chunk, p[0].skip, p[0].take), (c[2], 9, 1));
        assert!(pieces(&c, 5, 5).is_empty());
    }
}
