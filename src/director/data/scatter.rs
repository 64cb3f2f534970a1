//! Scatter: a request body becomes chunks, each chunk gets N durable copies on the first
//! N live stores in its placement order, a manifest chunk follows, and only then is the
//! object journaled. A small body (up to `INLINE_BYTES_MAX`) makes no chunk of its own: it
//! rides inside its manifest, so a small object costs one durable create per copy, not two.
//!
//! Memory is bounded: the body is never held whole. The chunker holds at most one maximum
//! chunk plus a read buffer; at most `CHUNKS_IN_FLIGHT` chunks are being uploaded at once
//! (each shared by its replica uploads, not copied); the next chunk is hashed while the
//! previous ones upload.

use super::store_client::CallError;
use super::stores::Target;
use crate::chunker::Chunker;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::Acl;
pub use crate::director::meta::condition::{WriteCondition, precondition_failed};
use crate::director::meta::index::{ObjectMeta, Prepared};
use crate::director::meta::manifest::{self, Manifest};
use crate::director::meta::records::{ChunkRef, ObjectPart, ObjectRecord, Record};
use crate::director::meta::versions::{Versioning, new_version_id};
use crate::director::s3::body::{self, CheckedBody};
use crate::director::{Director, Replication};
use crate::hash::{Hash, to_hex};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// Bodies of 1 to this many bytes are inline: stored inside their manifest chunk (base64),
/// not as a chunk of their own, which halves the durable creates of a small PUT (one file
/// per copy instead of two). Never more than the chunker's minimum chunk
/// (`Director::inline_bytes_max`): a body that short is one chunk whatever the chunker, so
/// inlining it loses no deduplication inside objects, only between identical small files,
/// and every larger object is cut and deduplicated exactly as before. 64 KiB rather than the
/// whole 256 KiB CDC minimum because base64 costs a third more bytes on every copy, and up
/// to about 64 KiB a create costs the same whatever its size while above it the bytes start
/// to count; it is also where a chunk stops being worth a HEAD or a chain
/// (`HEAD_FIRST_BYTES_MIN`, `CHAIN_BYTES_MIN`), the same "small" everywhere.
pub const INLINE_BYTES_MAX: u64 = 64 * 1024;

/// An object's bytes, ready to be described by a manifest: chunks that already have their
/// copies, or the bytes themselves for an inline object.
#[derive(Clone, Debug)]
pub enum Contents {
    Chunks(Vec<ChunkRef>),
    Inline(Vec<u8>),
}

/// Chunks uploading at the same time for one request.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// Chunks one manifest may list: keeps a manifest well under a store's 8 MiB chunk cap
/// (about 80 bytes per chunk).
pub const MANIFEST_CHUNKS_MAX: usize = 90_000;
/// Below this size a chunk is PUT directly: a HEAD round trip costs more than sending it.
pub const HEAD_FIRST_BYTES_MIN: usize = 64 * 1024;

/// Below this size a chunk's copies are sent to each store directly even in chain mode:
/// for a small chunk the latency of one more hop costs more than the bytes it saves.
pub const CHAIN_BYTES_MIN: usize = 64 * 1024;

/// What the client asked to store, besides the body.
#[derive(Clone, Debug, Default)]
pub struct NewObject {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub meta: BTreeMap<String, String>,
    /// Stored standard headers (`index::STORED_HEADERS`).
    pub headers: BTreeMap<String, String>,
    pub condition: WriteCondition,
    /// The verified checksum the client sent (algorithm, base64 value), kept and returned.
    pub checksum: Option<(String, String)>,
    /// Part boundaries (a copy of a multipart object keeps its source's).
    pub parts: Vec<ObjectPart>,
    /// The version's ACL (`x-amz-acl` / `x-amz-grant-*`; a copy does not keep its
    /// source's, as S3).
    pub acl: Acl,
}

/// A body stored as chunks: what `ingest` returns.
#[derive(Clone, Debug)]
pub struct Ingested {
    pub chunks: Vec<ChunkRef>,
    pub size: u64,
    /// Binary MD5 of the body.
    pub md5: [u8; 16],
}

impl Director {
    /// Stores an object from `body`, which verifies itself as it is read (length, hashes,
    /// checksums, chunk signatures): a failed check stops the upload before the commit.
    pub fn put_object(
        &self,
        new: NewObject,
        body: &mut CheckedBody<'_>,
    ) -> Result<Arc<ObjectMeta>> {
        let len = body.len();
        // Refuse early, before reading a byte, when the request cannot succeed.
        {
            let idx = self.read_index();
            idx.bucket(&new.bucket)?;
            new.condition.check(&idx, &new.bucket, &new.key)?;
        }
        self.check_live_stores()?;
        let mut pins = self.pins();
        let want_md5 = body.content_md5();
        let (contents, md5) = match self.read_small(body, len)? {
            Small::Whole(bytes) => {
                let md5 = <[u8; 16]>::from(Md5::digest(&bytes));
                if bytes.is_empty() {
                    (Contents::Chunks(Vec::new()), md5)
                } else {
                    (Contents::Inline(bytes), md5)
                }
            }
            Small::Head(head) => {
                let mut rest = io::Cursor::new(head).chain(&mut *body);
                let ingested = self.ingest(&mut rest, len, &mut pins)?;
                (Contents::Chunks(ingested.chunks), ingested.md5)
            }
        };
        body::check_content_md5(want_md5, &md5)?;
        // Known once the body has been read to its end (and verified).
        let new = NewObject {
            checksum: body.checksum(),
            ..new
        };
        let meta = self.store_object(new, contents, to_hex(&md5), &mut pins)?;
        self.counters
            .bytes_in
            .fetch_add(meta.size, Ordering::Relaxed);
        Ok(meta)
    }

    /// The largest body stored inline: `INLINE_BYTES_MAX`, or the chunker's minimum chunk
    /// if that is smaller (see `INLINE_BYTES_MAX`).
    pub fn inline_bytes_max(&self) -> u64 {
        INLINE_BYTES_MAX.min(u64::from(self.cfg.chunking.min_chunk()))
    }

    /// The start of a body: all of it when it is no longer than `inline_bytes_max` (an
    /// inline object, or an empty one), else the bytes read so far, which come first in
    /// the chunks. A body announced longer is not read at all here.
    fn read_small(&self, body: &mut CheckedBody<'_>, len: Option<u64>) -> Result<Small> {
        let max = self.inline_bytes_max();
        if len.is_some_and(|n| n > max) {
            return Ok(Small::Head(Vec::new()));
        }
        let mut buf = Vec::new();
        (&mut *body)
            .take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|e| body::director_error(&e))?;
        let got = buf.len() as u64;
        if got > max {
            return Ok(Small::Head(buf));
        }
        if let Some(n) = len.filter(|&n| n != got) {
            return Err(DirectorError::IncompleteBody {
                expected: n,
                received: got,
            });
        }
        Ok(Small::Whole(buf))
    }

    /// Makes an object version from its contents (chunks that already have their copies,
    /// or inline bytes): writes its manifest chunk, then journals it (if `new.condition`
    /// still holds). Used by PUT and copy; `pins` must hold the chunks.
    pub fn store_object(
        &self,
        new: NewObject,
        contents: Contents,
        etag: String,
        pins: &mut super::pins::Pins<'_>,
    ) -> Result<Arc<ObjectMeta>> {
        let (chunks, inline) = match &contents {
            Contents::Chunks(c) => (c.as_slice(), None),
            Contents::Inline(b) => (&[][..], Some(b.as_slice())),
        };
        let record = ObjectRecord {
            size: match inline {
                Some(b) => b.len() as u64,
                None => chunks.iter().map(|c| u64::from(c.len)).sum(),
            },
            mtime: crate::timefmt::now_ms(),
            etag,
            content_type: new.content_type.clone(),
            meta: new.meta.clone(),
            headers: new.headers.clone(),
            chunks: chunks
                .iter()
                .map(|c| (c.hash.to_hex(), u64::from(c.len)))
                .collect(),
            manifest: String::new(),
            inline: inline.is_some(),
            checksum: new.checksum.clone(),
            version: None,
            upload_id: None,
            parts: new.parts.clone(),
            acl: new.acl.to_record(),
        };
        let record = self.write_manifest(&new.bucket, &new.key, record, inline, pins)?;
        let (bucket, key, condition) = (new.bucket, new.key, new.condition);
        let rec = Record::ObjectPut {
            bucket,
            key,
            object: record,
        };
        // The condition goes with the record: it is checked again when the record is
        // applied, after every record before it (a racing writer's too).
        let prepared = Prepared::new(&rec)
            .map_err(DirectorError::Internal)?
            .with_condition(condition);
        self.commit_prepared(&prepared, |_| Ok(()))?;
        let meta = prepared.object_or_err().map_err(DirectorError::Internal)?;
        Ok(Arc::clone(meta))
    }

    /// A request body becomes replicated chunks (pinned in `pins`), counted and
    /// MD5-hashed on the way; `len` is the length the client announced, if any. Shared
    /// by object PUT and multipart UploadPart.
    pub fn ingest(
        &self,
        body: &mut dyn Read,
        len: Option<u64>,
        pins: &mut super::pins::Pins<'_>,
    ) -> Result<Ingested> {
        let (chunks, size, md5) = self.scatter(body, pins)?;
        if len.is_some_and(|n| n != size) {
            let n = len.unwrap_or(0);
            return Err(DirectorError::IncompleteBody {
                expected: n,
                received: size,
            });
        }
        Ok(Ingested { chunks, size, md5 })
    }

    /// Writes the manifest chunk of `record` (pinned in `pins`), carrying `inline` (the
    /// body of an inline object), and returns the record with its `manifest` field set,
    /// ready to be journaled. Every new object version (PUT, copy, completed upload)
    /// passes here, so this is also where it gets its version id: in a bucket with
    /// versioning enabled, before the manifest is written, so that the manifest names the
    /// version (`dpyfs recover` reads it back).
    pub fn write_manifest(
        &self,
        bucket: &str,
        key: &str,
        mut record: ObjectRecord,
        inline: Option<&[u8]>,
        pins: &mut super::pins::Pins<'_>,
    ) -> Result<ObjectRecord> {
        record.manifest = String::new();
        record.version = self.new_version(bucket, key, record.mtime);
        // ACLs stay out of manifests: one changed later (PUT ?acl) cannot follow the
        // version into its manifest, so `dpyfs recover` brings every object back
        // private rather than with a grant that may have been withdrawn.
        let bare = ObjectRecord {
            acl: Vec::new(),
            ..record.clone()
        };
        let m = manifest::encode(&Manifest::new(bucket, key, bare, inline));
        let mh = Hash::of(&m);
        pins.pin(mh);
        self.replicate(&mh, &m)?;
        record.manifest = mh.to_hex();
        Ok(record)
    }

    /// The version id a new version of `bucket/key` gets: a new one when the bucket has
    /// versioning enabled, else None (the `null` version).
    pub fn new_version(&self, bucket: &str, key: &str, now_ms: u64) -> Option<String> {
        let enabled = self
            .read_index()
            .bucket(bucket)
            .is_ok_and(|b| b.versioning == Versioning::Enabled);
        enabled.then(|| new_version_id(bucket, key, now_ms))
    }

    pub fn check_live_stores(&self) -> Result<()> {
        let live = self.stores.live_count();
        if live < self.cfg.replicas {
            return Err(DirectorError::InsufficientStores {
                live,
                needed: self.cfg.replicas,
                failed: Vec::new(),
            });
        }
        Ok(())
    }

    /// Chunks the body and replicates every chunk, keeping `CHUNKS_IN_FLIGHT` uploads
    /// going while the next chunk is read. The request thread only reads and cuts; each
    /// chunk is SHA-256-named on its upload thread, and the body's MD5 (the ETag) is
    /// computed over the chunks, in order, on a thread of its own, so the three hashes run
    /// on different cores. Returns the chunks, the body's length and its MD5.
    fn scatter(
        &self,
        body: &mut dyn Read,
        pins: &mut super::pins::Pins<'_>,
    ) -> Result<(Vec<ChunkRef>, u64, [u8; 16])> {
        let mut chunker = Chunker::new(body, self.cfg.chunking);
        let pins = Mutex::new(pins);
        let mut refs = Vec::new();
        thread::scope(|sc| {
            let (md5_tx, md5_rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(CHUNKS_IN_FLIGHT);
            let md5 = sc.spawn(move || {
                let (mut md5, mut bytes) = (Md5::new(), 0u64);
                for c in md5_rx {
                    md5.update(&c[..]);
                    bytes += c.len() as u64;
                }
                (bytes, <[u8; 16]>::from(md5.finalize()))
            });
            let mut in_flight = VecDeque::new();
            let mut first_error = None;
            let mut count = 0usize;
            loop {
                let data = match chunker.next_chunk() {
                    Ok(Some(d)) => Arc::new(d),
                    Ok(None) => break,
                    Err(e) => {
                        first_error = Some(body::director_error(&e));
                        break;
                    }
                };
                if count == MANIFEST_CHUNKS_MAX {
                    first_error = Some(DirectorError::EntityTooLarge {
                        limit_bytes: MANIFEST_CHUNKS_MAX as u64
                            * u64::from(self.cfg.chunking.max_chunk()),
                    });
                    break;
                }
                count += 1;
                if md5_tx.send(Arc::clone(&data)).is_err() {
                    first_error = Some(DirectorError::Internal("the MD5 thread ended".into()));
                    break;
                }
                if in_flight.len() == CHUNKS_IN_FLIGHT {
                    match in_flight.pop_front().map(join_upload) {
                        Some(Ok(r)) => refs.push(r),
                        Some(Err(e)) => {
                            first_error = Some(e);
                            break;
                        }
                        None => {}
                    }
                }
                let pins = &pins;
                in_flight.push_back(sc.spawn(move || {
                    let hash = Hash::of(&data);
                    // Pinned before any store is asked for it: garbage collection leaves
                    // it be.
                    pins.lock().unwrap_or_else(|p| p.into_inner()).pin(hash);
                    self.replicate(&hash, &data)?;
                    Ok(ChunkRef {
                        hash,
                        len: data.len() as u32,
                    })
                }));
            }
            for h in in_flight {
                match join_upload(h) {
                    Ok(r) => refs.push(r),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            drop(md5_tx);
            let md5 = md5.join();
            match (first_error, md5) {
                (Some(e), _) => Err(e),
                (None, Ok((bytes, md5))) => Ok((std::mem::take(&mut refs), bytes, md5)),
                (None, Err(_)) => Err(DirectorError::Internal("the MD5 thread panicked".into())),
            }
        })
    }

    /// Makes sure chunk `h` has N durable copies: on the first N live stores in placement
    /// order, in parallel; a store that fails is replaced by the next live one in order.
    pub fn replicate(&self, h: &Hash, data: &[u8]) -> Result<()> {
        let n = self.cfg.replicas;
        let live: Vec<_> = self
            .stores
            .placement(h)
            .into_iter()
            .filter(|t| t.up)
            .collect();
        let mut next = n.min(live.len());
        let mut batch: Vec<_> = live[..next].to_vec();
        let mut copies = 0;
        let mut all_existed = true;
        // Stores that answered 507 (disk below its reserve), and every other failure.
        let mut full = Vec::new();
        let mut failed = Vec::new();
        loop {
            let results = self.copy_batch(&batch, h, data);
            for (t, r) in batch.iter().zip(results) {
                match r {
                    Ok(existed) => {
                        copies += 1;
                        all_existed &= existed;
                    }
                    Err(e) => {
                        log::warn!("chunk {h} to store {} failed: {e}", t.url);
                        match e {
                            CallError::Transport(_) => {
                                self.stores.mark_down(&t.id, &e.to_string());
                                failed.push(format!("{}: {e}", t.id));
                            }
                            CallError::Status(507, _) => full.push(t.id.clone()),
                            CallError::Status(..) | CallError::Unconfirmed(_) => {
                                failed.push(format!("{}: {e}", t.id))
                            }
                        }
                    }
                }
            }
            if copies >= n {
                break;
            }
            let want = n - copies;
            if next + want > live.len() {
                if !full.is_empty() {
                    return Err(DirectorError::StoresFull {
                        full,
                        needed: n,
                        failed,
                    });
                }
                return Err(DirectorError::InsufficientStores {
                    live: copies + live.len() - next,
                    needed: n,
                    failed,
                });
            }
            batch = live[next..next + want].to_vec();
            next += want;
        }
        let counter = if all_existed {
            &self.counters.chunks_deduplicated
        } else {
            &self.counters.chunks_written
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A copy of chunk `h` on every store of `batch`, one outcome each (Ok(true): it was
    /// there already). A chain when `--replication chain` and the chunk is large enough;
    /// every copy the chain does not confirm is then sent directly, so a broken chain
    /// costs time, never a copy.
    fn copy_batch(
        &self,
        batch: &[Target],
        h: &Hash,
        data: &[u8],
    ) -> Vec<std::result::Result<bool, CallError>> {
        let chain = self.cfg.replication == Replication::Chain
            && batch.len() >= 2
            && data.len() >= CHAIN_BYTES_MIN;
        if !chain {
            let all: Vec<usize> = (0..batch.len()).collect();
            return self.direct_copies(batch, &all, h, data);
        }
        // Stores that hold a verified copy need none (deduplication), as in `store_copy`.
        let c = &self.stores.client;
        let len = Some(data.len() as u64);
        let mut results: Vec<std::result::Result<bool, CallError>> =
            in_parallel(batch, |t| match c.head_chunk(&t.url, h) {
                Ok(l) if l == len => Ok(true),
                _ => Err(CallError::Unconfirmed("not there yet".into())),
            });
        let need: Vec<usize> = (0..batch.len()).filter(|&i| results[i].is_err()).collect();
        if need.len() >= 2 {
            let urls: Vec<&str> = need.iter().map(|&i| batch[i].url.as_str()).collect();
            for (&i, r) in need.iter().zip(c.put_chunk_chain(&urls, h, data)) {
                results[i] = r;
            }
        }
        let direct: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(results[i], Err(CallError::Unconfirmed(_))))
            .collect();
        if !direct.is_empty() {
            for (&i, r) in direct
                .iter()
                .zip(self.direct_copies(batch, &direct, h, data))
            {
                results[i] = r;
            }
        }
        results
    }

    /// A copy on each of `batch[i]` for `i` in `which`, sent by the director in parallel.
    fn direct_copies(
        &self,
        batch: &[Target],
        which: &[usize],
        h: &Hash,
        data: &[u8],
    ) -> Vec<std::result::Result<bool, CallError>> {
        let targets: Vec<&Target> = which.iter().map(|&i| &batch[i]).collect();
        in_parallel(&targets, |t| self.store_copy(&t.url, h, data))
    }

    /// One copy on one store; Ok(true) if the store already had it.
    fn store_copy(&self, url: &str, h: &Hash, data: &[u8]) -> std::result::Result<bool, CallError> {
        let c = &self.stores.client;
        if data.len() >= HEAD_FIRST_BYTES_MIN && c.head_chunk(url, h)? == Some(data.len() as u64) {
            return Ok(true);
        }
        c.put_chunk(url, h, data).map(|created| !created)
    }
}

/// What `read_small` found.
enum Small {
    /// The whole body, no longer than the inline limit.
    Whole(Vec<u8>),
    /// The first bytes of a longer body (none if its announced length was enough to tell).
    Head(Vec<u8>),
}

/// `f` of every item, each on its own thread; a panic is a transport failure.
fn in_parallel<T: Sync>(
    items: &[T],
    f: impl Fn(&T) -> std::result::Result<bool, CallError> + Sync,
) -> Vec<std::result::Result<bool, CallError>> {
    thread::scope(|sc| {
        let f = &f;
        let hs: Vec<_> = items.iter().map(|t| sc.spawn(move || f(t))).collect();
        hs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap_or_else(|_| Err(CallError::Transport("upload panicked".into())))
            })
            .collect()
    })
}

fn join_upload<T>(h: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(DirectorError::Internal("a chunk upload panicked".into())))
}
