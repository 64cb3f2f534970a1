//! Multipart uploads: the uploads in progress (index state, journal records and their
//! rules) and the director's operations on them. HTTP and XML live in `multipart_api.rs`.
//!
//! A part becomes replicated chunks as it arrives, exactly like an object PUT
//! (`Director::ingest`); its chunk list, size and MD5 are journaled (`upload_part`), so
//! pending uploads survive a restart and their chunks count as referenced for garbage
//! collection, repair and fsck. Complete stitches the listed parts' chunk lists into one
//! object record (no data is copied), writes its manifest chunk and journals
//! `upload_complete`, which removes the upload and puts the object in one record.

use super::acl::{Acl, AclRecord};
use super::records::{ChunkRef, PartRecord, chunks_from_record, chunks_to_record};
use crate::director::error::{DirectorError, Result};
use crate::hash::{Hash, to_hex};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
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
    /// Base64 checksum under the upload's checksum algorithm, if it has one.
    pub checksum: Option<String>,
}

/// An upload in progress, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    pub initiated_ms: u64,
    pub content_type: String,
    pub meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub parts: BTreeMap<u32, Arc<Part>>,
    /// Lowercase algorithm name (`x-amz-checksum-algorithm`), if the upload has one.
    pub checksum_algorithm: Option<String>,
    /// The ACL the object will have (`x-amz-acl` / `x-amz-grant-*` at its start).
    pub acl: Acl,
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

impl Part {
    pub fn to_record(&self) -> PartRecord {
        PartRecord {
            size: self.size,
            mtime: self.mtime_ms,
            etag: self.etag.clone(),
            chunks: chunks_to_record(&self.chunks),
            checksum: self.checksum.clone(),
        }
    }

    /// The part a record describes; checks chunk names, lengths, that they add up, and
    /// the ETag.
    pub fn from_record(r: &PartRecord) -> std::result::Result<Part, String> {
        let chunks = chunks_from_record(&r.chunks, r.size)?;
        if parse_md5(&r.etag).is_none() {
            return Err(format!("part etag {:?} is not a hex MD5", r.etag));
        }
        Ok(Part {
            size: r.size,
            mtime_ms: r.mtime,
            etag: r.etag.clone(),
            chunks,
            checksum: r.checksum.clone(),
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    acl: AclRecord,
}

pub fn uploads_to_snapshot(u: &Uploads) -> std::result::Result<Value, String> {
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
                .map(|(n, p)| (n.to_string(), p.to_record()))
                .collect(),
            checksum_algorithm: up.checksum_algorithm.clone(),
            acl: up.acl.to_record(),
        })
        .collect();
    serde_json::to_value(list).map_err(|e| format!("snapshot uploads: {e}"))
}

/// Uploads from a snapshot; `has_bucket` tells which buckets exist.
pub fn uploads_from_snapshot(
    v: &Value,
    has_bucket: &dyn Fn(&str) -> bool,
) -> std::result::Result<Uploads, String> {
    let list: Vec<UploadSnapshot> =
        serde_json::from_value(v.clone()).map_err(|e| format!("snapshot uploads: {e}"))?;
    let mut out = Uploads::new();
    for s in list {
        let name = format!("upload {} of '{}/{}'", s.upload_id, s.bucket, s.key);
        if !has_bucket(&s.bucket) {
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
                Arc::new(Part::from_record(p).map_err(|e| format!("{name}: {e}"))?),
            );
        }
        out.insert(
            (s.bucket, s.key, s.upload_id),
            Upload {
                initiated_ms: s.initiated,
                content_type: s.content_type,
                meta: s.meta,
                headers: s.headers,
                acl: Acl::from_record(&s.acl).map_err(|e| format!("{name}: {e}"))?,
                parts,
                checksum_algorithm: s.checksum_algorithm,
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

pub(crate) fn invalid_part(why: String) -> DirectorError {
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
pub(crate) fn new_upload_id(bucket: &str, key: &str, now_ms: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::meta::index::{Index, Prepared};
    use crate::director::meta::records::{ObjectRecord, Record};

    /// `Index::validate` of a record as a commit prepares it.
    fn check(i: &Index, r: &Record) -> crate::director::error::Result<()> {
        i.validate(&Prepared::new(r).map_err(DirectorError::Internal)?)
    }

    fn part(data: &[u8]) -> PartRecord {
        PartRecord {
            size: data.len() as u64,
            mtime: 5,
            etag: to_hex(&Md5::digest(data)),
            chunks: vec![(Hash::of(data).to_hex(), data.len() as u64)],
            checksum: None,
        }
    }

    fn with_upload() -> Index {
        let mut i = Index::default();
        for r in [
            Record::BucketCreate {
                acl: Default::default(),
                bucket: "b".into(),
                created: 0,
                owner: None,
            },
            Record::UploadCreate {
                acl: Default::default(),
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "u1".into(),
                initiated: 1,
                content_type: "t".into(),
                meta: BTreeMap::new(),
                headers: BTreeMap::new(),
                checksum_algorithm: None,
            },
        ] {
            i.replay(1, &r).unwrap();
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
        i.replay(2, &p).unwrap();
        // A part of an unknown upload, or with a bad number, is refused.
        let mut bad = p.clone();
        if let Record::UploadPart { upload_id, .. } = &mut bad {
            *upload_id = "nope".into();
        }
        assert!(matches!(
            check(&i, &bad),
            Err(DirectorError::S3(404, "NoSuchUpload", _))
        ));
        let mut bad = p.clone();
        if let Record::UploadPart { number, .. } = &mut bad {
            *number = PART_NUMBER_MAX + 1;
        }
        assert!(check(&i, &bad).is_err());
        // The record round trip and the snapshot keep the upload.
        let mut m = p.to_map().unwrap();
        m.insert("seq".into(), 3.into());
        assert_eq!(Record::from_map(m).unwrap().1, p);
        let j = Index::from_snapshot(&i.to_snapshot().unwrap()).unwrap();
        assert_eq!(j.uploads, i.uploads);
        // Complete must match the parts exactly.
        let h = Hash::of(b"hello").to_hex();
        let obj = ObjectRecord {
            acl: Default::default(),
            size: 5,
            mtime: 9,
            etag: "x-1".into(),
            content_type: "t".into(),
            meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            chunks: vec![(h.clone(), 5)],
            manifest: h,
            inline: false,
            checksum: None,
            version: None,
            upload_id: None,
            parts: Vec::new(),
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
            check(&i, &wrong),
            Err(DirectorError::S3(400, "InvalidPart", _))
        ));
        i.replay(3, &done).unwrap();
        assert!(i.uploads.is_empty());
        assert_eq!(i.object("b", "k").unwrap().size, 5);
    }

    #[test]
    fn listing_uploads_with_markers() {
        let mut i = with_upload();
        for (k, id) in [("k", "u2"), ("a", "u9"), ("z/1", "u3")] {
            let create = Record::UploadCreate {
                acl: Default::default(),
                bucket: "b".into(),
                key: k.into(),
                upload_id: id.into(),
                initiated: 1,
                content_type: String::new(),
                meta: BTreeMap::new(),
                headers: BTreeMap::new(),
                checksum_algorithm: None,
            };
            i.replay(4, &create).unwrap();
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
        i.replay(5, &Record::BucketDelete { bucket: "b".into() })
            .unwrap();
        assert!(i.uploads.is_empty());
    }
}
