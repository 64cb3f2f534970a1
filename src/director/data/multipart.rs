//! Multipart uploads, the operations: create, part, part copy, complete, abort and the
//! expiry of abandoned uploads. Parts become chunks through the same `ingest` as a PUT;
//! the upload state and its rules are in `meta::uploads`.

use super::gather::{Piece, pieces};
use super::scatter::MANIFEST_CHUNKS_MAX;
use crate::checksum::{Algorithm, Checksummer, base64_decode, base64_encode, digest};
use crate::director::Director;
use crate::director::data::scatter::WriteCondition;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::Acl;
use crate::director::meta::index::{ObjectMeta, Prepared};
use crate::director::meta::records::{ChunkRef, ObjectPart, ObjectRecord, Record};
use crate::director::meta::uploads::*;
use crate::hash::{Hash, to_hex};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a client asked for when it started an upload.
#[derive(Clone, Debug, Default)]
pub struct NewUpload {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// `x-amz-checksum-algorithm`: every part must carry this checksum.
    pub checksum_algorithm: Option<Algorithm>,
    /// The object's ACL (`x-amz-acl` / `x-amz-grant-*`).
    pub acl: Acl,
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
            checksum_algorithm: new.checksum_algorithm.map(|a| a.name().to_string()),
            acl: new.acl.to_record(),
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
        let algorithm = self
            .read_index()
            .upload(bucket, key, upload_id)?
            .checksum_algorithm
            .clone();
        let announced = body.checksum_algorithm().map(Algorithm::name);
        if let Some(want) = algorithm.as_deref().filter(|w| announced != Some(*w)) {
            return Err(DirectorError::BadRequest(
                "InvalidRequest",
                format!(
                    "the upload was created with checksum algorithm {}: every part needs \
                     x-amz-checksum-{want} (header or trailer)",
                    want.to_uppercase()
                ),
            ));
        }
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
            // Verified by the body as it was read; kept only for an upload that asked.
            checksum: algorithm.and(body.checksum()).map(|(_, v)| v),
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
            part: part.to_record(),
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
        let algorithm = self
            .read_index()
            .upload(bucket, key, upload_id)?
            .checksum_algorithm
            .as_deref()
            .and_then(Algorithm::from_name);
        self.check_live_stores()?;
        let mut pins = self.pins();
        let plan = copy_plan(src, start, end);
        // Pinned before anything else: the source may be deleted meanwhile, and garbage
        // collection must not take the chunks this part is about to reference.
        for p in &plan {
            pins.pin(p.chunk.hash);
        }
        let mut gather = self.open_read(src, start, end)?;
        let mut md5 = Md5::new();
        let mut summer = algorithm.map(Checksummer::new);
        let mut hash_bytes = |b: &[u8]| {
            md5.update(b);
            if let Some(s) = summer.as_mut() {
                s.update(b);
            }
        };
        let mut chunks = Vec::with_capacity(plan.len());
        let mut buf = vec![0u8; 256 * 1024];
        for p in &plan {
            if !src.inline && p.skip == 0 && p.take == p.chunk.len as usize {
                let mut left = p.take;
                while left > 0 {
                    let n = left.min(buf.len());
                    read_exact(&mut gather, &mut buf[..n])?;
                    hash_bytes(&buf[..n]);
                    left -= n;
                }
                chunks.push(p.chunk);
            } else {
                let mut piece = vec![0u8; p.take];
                read_exact(&mut gather, &mut piece)?;
                hash_bytes(&piece);
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
            checksum: summer.map(|s| base64_encode(&s.finish())),
        };
        self.commit_part(bucket, key, upload_id, number, &part)?;
        Ok(part)
    }

    /// CompleteMultipartUpload with the client's `[(part number, etag)]`: the parts'
    /// chunk lists, in the order listed, become the object; no data is copied. The write
    /// takes effect only if `condition` holds (checked again, atomically, at commit). A
    /// repeat of a Complete that already took effect, with the same part list, while the
    /// key still holds its object, answers that object again and changes nothing.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[(u32, String)],
        sums: &ListedChecksums,
        condition: &WriteCondition,
    ) -> Result<Arc<ObjectMeta>> {
        check_part_list(listed)?;
        let mut pins = self.pins();
        let (mut record, parts) = {
            let idx = self.read_index();
            let up = match idx.upload(bucket, key, upload_id) {
                Ok(up) => up,
                Err(e @ DirectorError::S3(_, "NoSuchUpload", _)) => {
                    return completed_before(&idx, bucket, key, upload_id, Some(listed)).ok_or(e);
                }
                Err(e) => return Err(e),
            };
            condition.check(&idx, bucket, key)?;
            self.assemble(up, listed, sums, &mut pins)?
        };
        record.upload_id = Some(upload_id.to_string());
        self.check_live_stores()?;
        let record = self.write_manifest(bucket, key, record, None, &mut pins)?;
        let rec = Record::UploadComplete {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            parts,
            object: record,
        };
        // The condition goes with the record and is checked again when it is applied, on
        // every director, after any racing writer's record.
        let prepared = Prepared::new(&rec)
            .map_err(DirectorError::Internal)?
            .with_condition(condition.clone());
        self.commit_prepared(&prepared, |_| Ok(()))?;
        let meta = prepared.object_or_err().map_err(DirectorError::Internal)?;
        Ok(Arc::clone(meta))
    }

    /// The object record the listed parts of `up` make: their chunk lists joined in the
    /// order listed, the multipart ETag, the upload's metadata; and the (number, ETag)
    /// list the journal record names. The chunks are pinned in `pins` while the caller
    /// holds the index lock: a re-upload of a part cannot make them collectable before
    /// the object references them.
    fn assemble(
        &self,
        up: &Upload,
        listed: &[(u32, String)],
        sums: &ListedChecksums,
        pins: &mut super::pins::Pins<'_>,
    ) -> Result<(ObjectRecord, Vec<(u32, String)>)> {
        let min = self.cfg.multipart_min_part_bytes;
        let mut md5s = Vec::with_capacity(listed.len());
        let mut parts = Vec::with_capacity(listed.len());
        let mut kept = Vec::with_capacity(listed.len());
        let mut chunks = Vec::new();
        let mut size = 0u64;
        for (i, (n, etag)) in listed.iter().enumerate() {
            let p = listed_part(up, *n, etag, i + 1 == listed.len(), min)?;
            check_listed_checksum(up, *n, p, sums)?;
            md5s.push(parse_md5(&p.etag).unwrap_or_default());
            parts.push((*n, p.etag.clone()));
            kept.push(ObjectPart {
                size: p.size,
                checksum: p.checksum.clone(),
            });
            size += p.size;
            for c in &p.chunks {
                pins.pin(c.hash);
                chunks.push((c.hash.to_hex(), u64::from(c.len)));
            }
        }
        if chunks.len() > MANIFEST_CHUNKS_MAX {
            return Err(DirectorError::EntityTooLarge {
                limit_bytes: MANIFEST_CHUNKS_MAX as u64 * u64::from(self.cfg.chunking.max_chunk()),
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
            version: None,
            checksum: composite_checksum(up, &kept)?,
            upload_id: None,
            parts: kept,
            acl: up.acl.to_record(),
            // A completed upload's parts are chunks on the stores already: it is never
            // inline, however small (inlining would add a create, not save one).
            inline: false,
        };
        Ok((record, parts))
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
            if self.is_leader() {
                self.expire_uploads();
            }
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

/// The pieces of `src` that bytes `start..end` are made of. An inline source has no chunk
/// to reuse: the range becomes a new chunk, and its manifest, which holds the bytes,
/// stands in for the chunk they are read from.
fn copy_plan(src: &ObjectMeta, start: u64, end: u64) -> Vec<Piece> {
    if src.inline && start < end {
        vec![Piece {
            chunk: ChunkRef {
                hash: src.manifest,
                len: u32::try_from(src.size).unwrap_or(u32::MAX),
            },
            skip: start as usize,
            take: (end - start) as usize,
        }]
    } else {
        pieces(&src.chunks, start, end)
    }
}

/// The object `key` holds if upload `upload_id` was completed into it and nothing has
/// replaced it since; with `listed`, only if that list of parts makes its ETag (a retry
/// of the same Complete, not a different one).
pub fn completed_before(
    idx: &crate::director::meta::index::Index,
    bucket: &str,
    key: &str,
    upload_id: &str,
    listed: Option<&[(u32, String)]>,
) -> Option<Arc<ObjectMeta>> {
    let m = idx.object(bucket, key).ok()?;
    if m.upload_id.as_deref() != Some(upload_id) {
        return None;
    }
    if let Some(listed) = listed {
        let md5s: Option<Vec<[u8; 16]>> = listed.iter().map(|(_, e)| parse_md5(e)).collect();
        if multipart_etag(&md5s?) != m.etag {
            return None;
        }
    }
    Some(m)
}

/// The checksums a Complete lists with its parts: part number to (lowercase algorithm,
/// base64 value), from `<ChecksumCRC32>` and the like.
pub type ListedChecksums = BTreeMap<u32, (String, String)>;

/// A checksum the Complete lists for part `n` must be the part's own (S3: InvalidPart).
/// Listed checksums of an upload without an algorithm are not compared (there is nothing
/// to compare them with; botocore lists them anyway).
fn check_listed_checksum(up: &Upload, n: u32, p: &Part, sums: &ListedChecksums) -> Result<()> {
    let (Some(alg), Some((listed_alg, value))) = (&up.checksum_algorithm, sums.get(&n)) else {
        return Ok(());
    };
    if listed_alg != alg || p.checksum.as_deref() != Some(value.as_str()) {
        return Err(invalid_part(format!(
            "part {n}: the {} checksum listed, {value}, is not the part's",
            listed_alg.to_uppercase()
        )));
    }
    Ok(())
}

/// S3's composite checksum of a multipart object whose upload has a checksum algorithm:
/// the algorithm over the parts' binary checksums in order, base64, `-<part count>`.
fn composite_checksum(up: &Upload, parts: &[ObjectPart]) -> Result<Option<(String, String)>> {
    let Some(name) = &up.checksum_algorithm else {
        return Ok(None);
    };
    let alg = Algorithm::from_name(name)
        .ok_or_else(|| DirectorError::Internal(format!("upload checksum algorithm {name:?}")))?;
    let mut joined = Vec::with_capacity(parts.len() * alg.digest_len());
    for (i, p) in parts.iter().enumerate() {
        let raw = p
            .checksum
            .as_deref()
            .and_then(base64_decode)
            .filter(|r| r.len() == alg.digest_len())
            .ok_or_else(|| invalid_part(format!("listed part {} has no checksum", i + 1)))?;
        joined.extend_from_slice(&raw);
    }
    let value = format!("{}-{}", base64_encode(&digest(alg, &joined)), parts.len());
    Ok(Some((name.clone(), value)))
}

/// S3's rules for the part list of a Complete: not empty, ascending, each number once.
fn check_part_list(listed: &[(u32, String)]) -> Result<()> {
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
    Ok(())
}

/// Part `n` of `up` as a Complete lists it: uploaded, with the ETag given, and (unless
/// it is the `last`) at least `min` bytes.
fn listed_part<'u>(up: &'u Upload, n: u32, etag: &str, last: bool, min: u64) -> Result<&'u Part> {
    let p = up
        .parts
        .get(&n)
        .ok_or_else(|| invalid_part(format!("part {n} was not uploaded")))?;
    if parse_md5(etag) != parse_md5(&p.etag) {
        return Err(invalid_part(format!(
            "part {n} has ETag \"{}\", not {etag}",
            p.etag
        )));
    }
    if !last && p.size < min {
        return Err(DirectorError::S3(
            400,
            "EntityTooSmall",
            format!(
                "part {n} is {} bytes; every part but the last must be at least {min} bytes",
                p.size
            ),
        ));
    }
    Ok(p)
}
