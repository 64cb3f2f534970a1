//! Multipart uploads: the uploads in progress (index state, journal records and their
//! rules) and the director's operations on them. HTTP and XML live in `multipart_api.rs`.
//!
//! A part becomes replicated chunks as it arrives, exactly like an object PUT
//! (`Director::ingest`); its chunk list, size and MD5 are journaled (`upload_part`), so
//! pending uploads survive a restart and their chunks count as referenced for garbage
//! collection, repair and fsck. Complete stitches the listed parts' chunk lists into one
//! object record (no data is copied), writes its manifest chunk and journals
//! `upload_complete`, which removes the upload and puts the object in one record.

use super::index::{ChunkRef, Index, ObjectMeta, ObjectRecord, Record};
use crate::director::Director;
use crate::director::data::gather::pieces;
use crate::director::data::scatter::MANIFEST_CHUNKS_MAX;
use crate::director::error::{DirectorError, Result};
use crate::hash::{Hash, to_hex};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Part numbers run from 1 to this (as S3).
pub const PART_NUMBER_MAX: u32 = 10_000;
/// Largest part (as S3: 5 GiB).
pub const PART_BYTES_MAX: u64 = 5 << 30;
/// Default smallest part except the last (`--multipart-min-part`, as S3: 5 MiB).
pub const MIN_PART_BYTES_DEFAULT: u64 = 5 << 20;
/// Default age after which an upload with no activity is aborted (`--multipart-max-age`).
pub const MAX_AGE_SECS_DEFAULT: u64 = 7 * 24 * 3600;
/// Longest pause of the expiry thread between two looks at the uploads.
pub const EXPIRY_CHECK_SECS_MAX: u64 = 3600;
/// Most parts or uploads one listing page returns (as S3).
pub const LIST_MAX: usize = 1000;

/// (bucket, key, upload id): uploads sort by bucket, then key, then id (ids start with
/// the initiation time, so one key's uploads list oldest first).
pub type UploadKey = (String, String, String);
pub type Uploads = BTreeMap<UploadKey, Upload>;

/// One stored part, in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub size: u64,
    pub mtime_ms: u64,
    /// Hex MD5 of the part's bytes, without quotes.
    pub etag: String,
    pub chunks: Vec<ChunkRef>,
}

/// An upload in progress, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    pub initiated_ms: u64,
    pub content_type: String,
    pub meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub parts: BTreeMap<u32, Arc<Part>>,
}

impl Upload {
    /// The last time a client did something with the upload (start or a part).
    pub fn last_activity_ms(&self) -> u64 {
        self.parts
            .values()
            .map(|p| p.mtime_ms)
            .fold(self.initiated_ms, u64::max)
    }
}

/// A part as journaled (`upload_part`) and in snapshots.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartRecord {
    pub size: u64,
    pub mtime: u64,
    pub etag: String,
    /// `[[sha256 hex, length], ...]` in order; lengths add up to `size`.
    pub chunks: Vec<(String, u64)>,
}

impl PartRecord {
    fn from_part(p: &Part) -> PartRecord {
        PartRecord {
            size: p.size,
            mtime: p.mtime_ms,
            etag: p.etag.clone(),
            chunks: p
                .chunks
                .iter()
                .map(|c| (c.hash.to_hex(), u64::from(c.len)))
                .collect(),
        }
    }

    fn to_part(&self) -> std::result::Result<Part, String> {
        // The object conversion checks names, lengths and that they add up.
        let o = ObjectMeta::from_record(&ObjectRecord {
            size: self.size,
            mtime: self.mtime,
            etag: self.etag.clone(),
            content_type: String::new(),
            meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            chunks: self.chunks.clone(),
            checksum: None,
            manifest: Hash::of(b"").to_hex(),
        })?;
        if parse_md5(&self.etag).is_none() {
            return Err(format!("part etag {:?} is not a hex MD5", self.etag));
        }
        Ok(Part {
            size: o.size,
            mtime_ms: o.mtime_ms,
            etag: o.etag,
            chunks: o.chunks,
        })
    }
}

/// An upload in a snapshot's `uploads` list.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadSnapshot {
    bucket: String,
    key: String,
    upload_id: String,
    initiated: u64,
    content_type: String,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    /// Part number (as a string: JSON object keys) to part.
    #[serde(default)]
    parts: BTreeMap<String, PartRecord>,
}

pub fn uploads_to_snapshot(u: &Uploads) -> Value {
    let list: Vec<UploadSnapshot> = u
        .iter()
        .map(|((b, k, id), up)| UploadSnapshot {
            bucket: b.clone(),
            key: k.clone(),
            upload_id: id.clone(),
            initiated: up.initiated_ms,
            content_type: up.content_type.clone(),
            meta: up.meta.clone(),
            headers: up.headers.clone(),
            parts: up
                .parts
                .iter()
                .map(|(n, p)| (n.to_string(), PartRecord::from_part(p)))
                .collect(),
        })
        .collect();
    serde_json::to_value(list).unwrap_or(Value::Null)
}

pub fn uploads_from_snapshot(v: &Value, idx: &Index) -> std::result::Result<Uploads, String> {
    let list: Vec<UploadSnapshot> =
        serde_json::from_value(v.clone()).map_err(|e| format!("snapshot uploads: {e}"))?;
    let mut out = Uploads::new();
    for s in list {
        let name = format!("upload {} of '{}/{}'", s.upload_id, s.bucket, s.key);
        if !idx.buckets.contains_key(&s.bucket) {
            return Err(format!("{name}: no bucket '{}'", s.bucket));
        }
        let mut parts = BTreeMap::new();
        for (n, p) in &s.parts {
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
                .ok_or_else(|| format!("{name}: bad part number {n:?}"))?;
            parts.insert(
                n,
                Arc::new(p.to_part().map_err(|e| format!("{name}: {e}"))?),
            );
        }
        out.insert(
            (s.bucket, s.key, s.upload_id),
            Upload {
                initiated_ms: s.initiated,
                content_type: s.content_type,
                meta: s.meta,
                headers: s.headers,
                parts,
            },
        );
    }
    Ok(out)
}

pub fn no_such_upload(id: &str) -> DirectorError {
    DirectorError::S3(
        404,
        "NoSuchUpload",
        format!(
            "the upload '{id}' does not exist for this key: it was completed, aborted, cleaned after its maximum age, or never started"
        ),
    )
}

fn invalid_part(why: String) -> DirectorError {
    DirectorError::S3(400, "InvalidPart", why)
}

/// The binary MD5 of a hex ETag (quotes allowed around it).
pub fn parse_md5(etag: &str) -> Option<[u8; 16]> {
    let t = etag.trim().trim_matches('"');
    if t.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// S3's multipart ETag: the hex MD5 of the concatenated binary part MD5s, `-`, the count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", to_hex(&h.finalize()), part_md5s.len())
}

pub fn check_part_number(n: u32) -> Result<()> {
    if (1..=PART_NUMBER_MAX).contains(&n) {
        Ok(())
    } else {
        Err(DirectorError::BadRequest(
            "InvalidArgument",
            format!("part number {n}: it must be an integer between 1 and {PART_NUMBER_MAX}"),
        ))
    }
}

/// A new upload id: the initiation time (12 hex digits of unix ms, so one key's uploads
/// sort oldest first) and 20 hex digits of a hash of the key, the time, the process and a
/// counter (unique, not guessable from the key alone).
fn new_upload_id(bucket: &str, key: &str, now_ms: u64) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{bucket}\0{key}\0{nanos}\0{}\0{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let h = Hash::of(seed.as_bytes()).to_hex();
    format!("{now_ms:012x}{}", &h[..20])
}

/// One entry of ListMultipartUploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: u64,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Default)]
pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    pub truncated: bool,
}

impl Index {
    pub fn upload(&self, bucket: &str, key: &str, id: &str) -> Result<&Upload> {
        self.bucket(bucket)?;
        self.uploads
            .get(&(bucket.to_string(), key.to_string(), id.to_string()))
            .ok_or_else(|| no_such_upload(id))
    }

    /// Uploads of `bucket` under `prefix`, after (key_marker, id_marker) as S3 means them:
    /// with only a key marker, keys after it; with both, also that key's later uploads.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        id_marker: &str,
        max: usize,
    ) -> Result<UploadPage> {
        self.bucket(bucket)?;
        let start: UploadKey = (
            bucket.to_string(),
            prefix.max(key_marker).to_string(),
            "".into(),
        );
        let mut page = UploadPage::default();
        for ((b, k, id), u) in self
            .uploads
            .range((Bound::Included(start), Bound::Unbounded))
        {
            if b != bucket || !k.starts_with(prefix) {
                break;
            }
            let after = !key_marker.is_empty() && k.as_str() == key_marker;
            if after && (id_marker.is_empty() || id.as_str() <= id_marker) {
                continue;
            }
            if page.entries.len() == max {
                page.truncated = true;
                break;
            }
            page.entries.push(UploadEntry {
                key: k.clone(),
                upload_id: id.clone(),
                initiated_ms: u.initiated_ms,
            });
        }
        Ok(page)
    }

    /// The validation half of `Index::validate` for upload records.
    pub(crate) fn validate_upload(&self, r: &Record) -> Result<()> {
        match r {
            Record::UploadCreate {
                bucket,
                key,
                upload_id,
                ..
            } => {
                self.bucket(bucket)?;
                let k = (bucket.clone(), key.clone(), upload_id.clone());
                if self.uploads.contains_key(&k) {
                    return Err(DirectorError::Internal(format!(
                        "upload id {upload_id} is already in use"
                    )));
                }
            }
            Record::UploadPart {
                bucket,
                key,
                upload_id,
                number,
                part,
            } => {
                self.upload(bucket, key, upload_id)?;
                check_part_number(*number)?;
                part.to_part().map_err(DirectorError::Internal)?;
            }
            Record::UploadComplete {
                bucket,
                key,
                upload_id,
                parts,
                object,
            } => {
                let up = self.upload(bucket, key, upload_id)?;
                let o = ObjectMeta::from_record(object).map_err(DirectorError::Internal)?;
                // The object must be exactly the listed parts, as they are now: a part
                // re-uploaded since Complete read it makes the record refused.
                let mut chunks = Vec::with_capacity(o.chunks.len());
                for (n, etag) in parts {
                    let p = up
                        .parts
                        .get(n)
                        .filter(|p| p.etag == *etag)
                        .ok_or_else(|| invalid_part(format!("part {n} changed or is gone")))?;
                    chunks.extend_from_slice(&p.chunks);
                }
                if chunks != o.chunks {
                    return Err(invalid_part(
                        "the object's chunks are not those of its parts".into(),
                    ));
                }
            }
            Record::UploadAbort {
                bucket,
                key,
                upload_id,
            } => {
                self.upload(bucket, key, upload_id)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The apply half of `Index::apply` for upload records (validated before).
    pub(crate) fn apply_upload(&mut self, r: &Record) -> std::result::Result<(), String> {
        match r {
            Record::UploadCreate {
                bucket,
                key,
                upload_id,
                initiated,
                content_type,
                meta,
                headers,
            } => {
                self.uploads.insert(
                    (bucket.clone(), key.clone(), upload_id.clone()),
                    Upload {
                        initiated_ms: *initiated,
                        content_type: content_type.clone(),
                        meta: meta.clone(),
                        headers: headers.clone(),
                        parts: BTreeMap::new(),
                    },
                );
            }
            Record::UploadPart {
                bucket,
                key,
                upload_id,
                number,
                part,
            } => {
                let p = part.to_part()?;
                let k = (bucket.clone(), key.clone(), upload_id.clone());
                let up = self
                    .uploads
                    .get_mut(&k)
                    .ok_or_else(|| format!("part of a missing upload {upload_id}"))?;
                up.parts.insert(*number, Arc::new(p));
            }
            Record::UploadComplete {
                bucket,
                key,
                upload_id,
                object,
                ..
            } => {
                let meta = ObjectMeta::from_record(object)?;
                self.uploads
                    .remove(&(bucket.clone(), key.clone(), upload_id.clone()));
                let b = self
                    .buckets
                    .get_mut(bucket)
                    .ok_or_else(|| format!("object in missing bucket '{bucket}'"))?;
                b.objects.insert(key.clone(), Arc::new(meta));
            }
            Record::UploadAbort {
                bucket,
                key,
                upload_id,
            } => {
                self.uploads
                    .remove(&(bucket.clone(), key.clone(), upload_id.clone()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// What a client asked for when it started an upload.
#[derive(Clone, Debug, Default)]
pub struct NewUpload {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
}

impl Director {
    /// CreateMultipartUpload: journals the upload; returns its id.
    pub fn create_upload(&self, new: NewUpload) -> Result<String> {
        let now = crate::timefmt::now_ms();
        let upload_id = new_upload_id(&new.bucket, &new.key, now);
        self.commit(&Record::UploadCreate {
            bucket: new.bucket,
            key: new.key,
            upload_id: upload_id.clone(),
            initiated: now,
            content_type: new.content_type,
            meta: new.meta,
            headers: new.headers,
        })?;
        Ok(upload_id)
    }

    /// UploadPart: the body becomes chunks as an object PUT's does; the part is journaled
    /// (replacing an earlier part with the same number) once every chunk has N copies.
    pub fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: &mut crate::director::s3::body::CheckedBody<'_>,
    ) -> Result<Part> {
        let (len, want_md5) = (body.len(), body.content_md5());
        check_part_number(number)?;
        if len.is_some_and(|n| n > PART_BYTES_MAX) {
            return Err(DirectorError::EntityTooLarge {
                limit_bytes: PART_BYTES_MAX,
            });
        }
        // Refuse before reading a byte when the request cannot succeed.
        self.read_index().upload(bucket, key, upload_id)?;
        self.check_live_stores()?;
        let mut pins = self.pins();
        let got = self.ingest(&mut body.take(PART_BYTES_MAX + 1), len, &mut pins)?;
        if got.size > PART_BYTES_MAX {
            return Err(DirectorError::EntityTooLarge {
                limit_bytes: PART_BYTES_MAX,
            });
        }
        crate::director::s3::body::check_content_md5(want_md5, &got.md5)?;
        let part = Part {
            size: got.size,
            mtime_ms: crate::timefmt::now_ms(),
            etag: to_hex(&got.md5),
            chunks: got.chunks,
        };
        self.commit_part(bucket, key, upload_id, number, &part)?;
        Ok(part)
    }

    fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        part: &Part,
    ) -> Result<()> {
        self.commit(&Record::UploadPart {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            number,
            part: PartRecord::from_part(part),
        })?;
        self.counters
            .bytes_in
            .fetch_add(part.size, Ordering::Relaxed);
        Ok(())
    }

    /// UploadPartCopy: bytes `start..end` of an existing object become part `number`.
    /// Chunks wholly inside the range are reused as they are; the partial chunks at the
    /// two edges are read from the stores and written as new chunks. Every byte of the
    /// range is still read once (verified, with read-ahead) because the part's ETag is
    /// the MD5 of its bytes, as S3 clients expect.
    #[allow(clippy::too_many_arguments)] // one upload, one source: all needed, all distinct
    pub fn upload_part_copy(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        src: &Arc<ObjectMeta>,
        start: u64,
        end: u64,
    ) -> Result<Part> {
        check_part_number(number)?;
        if end - start > PART_BYTES_MAX {
            return Err(DirectorError::EntityTooLarge {
                limit_bytes: PART_BYTES_MAX,
            });
        }
        self.read_index().upload(bucket, key, upload_id)?;
        self.check_live_stores()?;
        let mut pins = self.pins();
        let plan = pieces(&src.chunks, start, end);
        // Pinned before anything else: the source may be deleted meanwhile, and garbage
        // collection must not take the chunks this part is about to reference.
        for p in &plan {
            pins.pin(p.chunk.hash);
        }
        let mut gather = self.open_read(src, start, end)?;
        let mut md5 = Md5::new();
        let mut chunks = Vec::with_capacity(plan.len());
        let mut buf = vec![0u8; 256 * 1024];
        for p in &plan {
            if p.skip == 0 && p.take == p.chunk.len as usize {
                let mut left = p.take;
                while left > 0 {
                    let n = left.min(buf.len());
                    read_exact(&mut gather, &mut buf[..n])?;
                    md5.update(&buf[..n]);
                    left -= n;
                }
                chunks.push(p.chunk);
            } else {
                let mut piece = vec![0u8; p.take];
                read_exact(&mut gather, &mut piece)?;
                md5.update(&piece);
                let hash = Hash::of(&piece);
                pins.pin(hash);
                self.replicate(&hash, &piece)?;
                chunks.push(ChunkRef {
                    hash,
                    len: p.take as u32,
                });
            }
        }
        let part = Part {
            size: end - start,
            mtime_ms: crate::timefmt::now_ms(),
            etag: to_hex(&md5.finalize()),
            chunks,
        };
        self.commit_part(bucket, key, upload_id, number, &part)?;
        Ok(part)
    }

    /// CompleteMultipartUpload with the client's `[(part number, etag)]`: the parts'
    /// chunk lists, in the order listed, become the object; no data is copied.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[(u32, String)],
    ) -> Result<Arc<ObjectMeta>> {
        if listed.is_empty() {
            return Err(DirectorError::BadRequest(
                "MalformedXML",
                "the request lists no parts; at least one is needed".into(),
            ));
        }
        if listed.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(DirectorError::S3(
                400,
                "InvalidPartOrder",
                "the parts must be listed in ascending order of part number, each once".into(),
            ));
        }
        let min = self.cfg.multipart_min_part_bytes;
        let mut pins = self.pins();
        let (record, parts) = {
            let idx = self.read_index();
            let up = idx.upload(bucket, key, upload_id)?;
            let mut md5s = Vec::with_capacity(listed.len());
            let mut parts = Vec::with_capacity(listed.len());
            let mut chunks = Vec::new();
            let mut size = 0u64;
            for (i, (n, etag)) in listed.iter().enumerate() {
                let p = up
                    .parts
                    .get(n)
                    .ok_or_else(|| invalid_part(format!("part {n} was not uploaded")))?;
                if parse_md5(etag) != parse_md5(&p.etag) {
                    return Err(invalid_part(format!(
                        "part {n} has ETag \"{}\", not {etag}",
                        p.etag
                    )));
                }
                if i + 1 < listed.len() && p.size < min {
                    return Err(DirectorError::S3(
                        400,
                        "EntityTooSmall",
                        format!(
                            "part {n} is {} bytes; every part but the last must be at least {min} bytes",
                            p.size
                        ),
                    ));
                }
                md5s.push(parse_md5(&p.etag).unwrap_or_default());
                parts.push((*n, p.etag.clone()));
                size += p.size;
                // Pinned under the index lock: a re-upload of the part cannot make these
                // chunks collectable before the object references them.
                for c in &p.chunks {
                    pins.pin(c.hash);
                    chunks.push((c.hash.to_hex(), u64::from(c.len)));
                }
            }
            if chunks.len() > MANIFEST_CHUNKS_MAX {
                return Err(DirectorError::EntityTooLarge {
                    limit_bytes: MANIFEST_CHUNKS_MAX as u64
                        * u64::from(self.cfg.chunking.max_chunk()),
                });
            }
            let record = ObjectRecord {
                size,
                mtime: crate::timefmt::now_ms(),
                etag: multipart_etag(&md5s),
                content_type: up.content_type.clone(),
                meta: up.meta.clone(),
                headers: up.headers.clone(),
                chunks,
                manifest: String::new(),
                // S3's composite checksums of parts are not offered.
                checksum: None,
            };
            (record, parts)
        };
        self.check_live_stores()?;
        let record = self.write_manifest(bucket, key, record, &mut pins)?;
        let meta = ObjectMeta::from_record(&record).map_err(DirectorError::Internal)?;
        self.commit(&Record::UploadComplete {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            parts,
            object: record,
        })?;
        Ok(Arc::new(meta))
    }

    /// AbortMultipartUpload: the upload and its parts are forgotten; their chunks become
    /// garbage (collected after the grace period unless another object uses them).
    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.commit(&Record::UploadAbort {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        })?;
        Ok(())
    }

    /// Aborts uploads with no activity for `--multipart-max-age`; returns how many.
    pub fn expire_uploads(&self) -> usize {
        let max_ms = self.cfg.multipart_max_age_secs.saturating_mul(1000);
        if max_ms == 0 {
            return 0;
        }
        let now = crate::timefmt::now_ms();
        let old: Vec<UploadKey> = self
            .read_index()
            .uploads
            .iter()
            .filter(|(_, u)| now.saturating_sub(u.last_activity_ms()) > max_ms)
            .map(|(k, _)| k.clone())
            .collect();
        let mut n = 0;
        for (b, k, id) in old {
            match self.abort_upload(&b, &k, &id) {
                Ok(()) => {
                    n += 1;
                    log::info!(
                        "multipart upload {id} of '{b}/{k}' aborted: no activity for {} s",
                        self.cfg.multipart_max_age_secs
                    );
                }
                // Completed or aborted meanwhile.
                Err(DirectorError::S3(404, ..)) | Err(DirectorError::NoSuchBucket(_)) => {}
                Err(e) => log::error!("cannot abort the abandoned upload {id} of '{b}/{k}': {e}"),
            }
        }
        n
    }

    /// The expiry thread's loop: looks every half max-age (at least every second, at
    /// most every `EXPIRY_CHECK_SECS_MAX`).
    pub fn expiry_loop(&self) {
        let secs = (self.cfg.multipart_max_age_secs / 2).clamp(1, EXPIRY_CHECK_SECS_MAX);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            self.expire_uploads();
        }
    }
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8]) -> Result<()> {
    // The gather stream fails only when no store has a good copy of a chunk.
    r.read_exact(buf).map_err(|e| {
        DirectorError::S3(
            503,
            "ChunkUnavailable",
            format!("reading the copy source failed: {e}; nothing was stored"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(data: &[u8]) -> PartRecord {
        PartRecord {
            size: data.len() as u64,
            mtime: 5,
            etag: to_hex(&Md5::digest(data)),
            chunks: vec![(Hash::of(data).to_hex(), data.len() as u64)],
        }
    }

    fn with_upload() -> Index {
        let mut i = Index::default();
        for r in [
            Record::BucketCreate {
                bucket: "b".into(),
                created: 0,
            },
            Record::UploadCreate {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "u1".into(),
                initiated: 1,
                content_type: "t".into(),
                meta: BTreeMap::new(),
                headers: BTreeMap::new(),
            },
        ] {
            i.validate(&r).unwrap();
            i.apply(&r).unwrap();
        }
        i
    }

    #[test]
    fn etag_of_parts() {
        // md5("a") and md5("b"), concatenated in binary, then md5 of that.
        let a = parse_md5("\"0cc175b9c0f1b6a831c399e269772661\"").unwrap();
        let b = parse_md5("92eb5ffee6ae2fec3ad71c777531578f").unwrap();
        let mut cat = a.to_vec();
        cat.extend_from_slice(&b);
        let want = format!("{}-2", to_hex(&Md5::digest(&cat)));
        assert_eq!(multipart_etag(&[a, b]), want);
        assert!(parse_md5("xyz").is_none());
        assert!(parse_md5(&"g".repeat(32)).is_none());
    }

    #[test]
    fn records_validate_apply_and_snapshot() {
        let mut i = with_upload();
        let p = Record::UploadPart {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u1".into(),
            number: 1,
            part: part(b"hello"),
        };
        i.validate(&p).unwrap();
        i.apply(&p).unwrap();
        // A part of an unknown upload, or with a bad number, is refused.
        let mut bad = p.clone();
        if let Record::UploadPart { upload_id, .. } = &mut bad {
            *upload_id = "nope".into();
        }
        assert!(matches!(
            i.validate(&bad),
            Err(DirectorError::S3(404, "NoSuchUpload", _))
        ));
        let mut bad = p.clone();
        if let Record::UploadPart { number, .. } = &mut bad {
            *number = PART_NUMBER_MAX + 1;
        }
        assert!(i.validate(&bad).is_err());
        // The record round trip and the snapshot keep the upload.
        let mut m = p.to_map().unwrap();
        m.insert("seq".into(), 3.into());
        assert_eq!(Record::from_map(m).unwrap().1, p);
        let j = Index::from_snapshot(&i.to_snapshot()).unwrap();
        assert_eq!(j.uploads, i.uploads);
        // Complete must match the parts exactly.
        let h = Hash::of(b"hello").to_hex();
        let obj = ObjectRecord {
            size: 5,
            mtime: 9,
            etag: "x-1".into(),
            content_type: "t".into(),
            meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            chunks: vec![(h.clone(), 5)],
            manifest: h,
            checksum: None,
        };
        let etag = part(b"hello").etag;
        let done = Record::UploadComplete {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u1".into(),
            parts: vec![(1, etag)],
            object: obj.clone(),
        };
        let wrong = Record::UploadComplete {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u1".into(),
            parts: vec![(1, "00".repeat(16))],
            object: obj,
        };
        assert!(matches!(
            i.validate(&wrong),
            Err(DirectorError::S3(400, "InvalidPart", _))
        ));
        i.validate(&done).unwrap();
        i.apply(&done).unwrap();
        assert!(i.uploads.is_empty());
        assert_eq!(i.object("b", "k").unwrap().size, 5);
    }

    #[test]
    fn listing_uploads_with_markers() {
        let mut i = with_upload();
        for (k, id) in [("k", "u2"), ("a", "u9"), ("z/1", "u3")] {
            i.apply(&Record::UploadCreate {
                bucket: "b".into(),
                key: k.into(),
                upload_id: id.into(),
                initiated: 1,
                content_type: String::new(),
                meta: BTreeMap::new(),
                headers: BTreeMap::new(),
            })
            .unwrap();
        }
        let ids =
            |p: UploadPage| -> Vec<String> { p.entries.into_iter().map(|e| e.upload_id).collect() };
        assert_eq!(
            ids(i.list_uploads("b", "", "", "", 10).unwrap()),
            ["u9", "u1", "u2", "u3"]
        );
        let p = i.list_uploads("b", "", "", "", 2).unwrap();
        assert!(p.truncated);
        assert_eq!(ids(i.list_uploads("b", "", "k", "", 10).unwrap()), ["u3"]);
        assert_eq!(
            ids(i.list_uploads("b", "", "k", "u1", 10).unwrap()),
            ["u2", "u3"]
        );
        assert_eq!(ids(i.list_uploads("b", "z/", "", "", 10).unwrap()), ["u3"]);
        // Deleting the bucket drops its uploads.
        i.buckets.get_mut("b").unwrap().objects.clear();
        i.apply(&Record::BucketDelete { bucket: "b".into() })
            .unwrap();
        assert!(i.uploads.is_empty());
    }
}
