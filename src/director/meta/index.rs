//! The namespace: buckets and objects in memory, ordered by bucket and key (UTF-8 byte
//! order, as S3 lists them), rebuilt at start from the journal. The journal is the truth;
//! this is a cache of it.
//!
//! Journal records (`Record`) are serialised types kept apart from the in-memory ones
//! (`ObjectMeta`) and converted by hand, so the memory layout can change without breaking
//! old journals. An unknown record type or version is refused, never skipped.

use super::acl::Acl;
use super::condition::{WriteCondition, precondition_failed};
use super::records::LifecycleRule;
use super::records::{
    ChunkRef, Member, ObjectPart, ObjectRecord, RECORD_VERSION, Record, chunks_from_record,
    chunks_to_record,
};
use super::uploads::{Part, UploadKey, Uploads};
use crate::director::error::{DirectorError, Result};
use crate::hash::Hash;
use crate::s3::names::key_problem;
pub use crate::s3::names::valid_bucket_name;

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Standard headers an upload may set that are stored and sent back on GET and HEAD
/// (Content-Type is a field of its own).
pub const STORED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];
/// A bucket's versioning status (GetBucketVersioning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: objects have the `null` version only.
    #[default]
    Off,
    Enabled,
    /// Enabled once, now suspended: new writes make `null` versions, older ones stay.
    Suspended,
}

impl Versioning {
    pub fn parse(s: &str) -> Option<Versioning> {
        match s {
            "Enabled" => Some(Versioning::Enabled),
            "Suspended" => Some(Versioning::Suspended),
            _ => None,
        }
    }

    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Versioning::Off => None,
            Versioning::Enabled => Some("Enabled"),
            Versioning::Suspended => Some("Suspended"),
        }
    }
}

/// One version of a key: an object, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    Object(Arc<ObjectMeta>),
    /// `version` None: the `null` marker.
    Marker {
        version: Option<String>,
        mtime_ms: u64,
    },
}

impl Version {
    /// The version id; None is `null`.
    pub fn id(&self) -> Option<&str> {
        match self {
            Version::Object(o) => o.version.as_deref(),
            Version::Marker { version, .. } => version.as_deref(),
        }
    }

    /// The version id as S3 writes it (`null` for the null version).
    pub fn id_text(&self) -> &str {
        self.id().unwrap_or("null")
    }

    pub fn mtime_ms(&self) -> u64 {
        match self {
            Version::Object(o) => o.mtime_ms,
            Version::Marker { mtime_ms, .. } => *mtime_ms,
        }
    }
}

/// An object version, in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Unix milliseconds of the upload.
    pub mtime_ms: u64,
    /// Hex MD5 of the body (S3's ETag for a single-part upload), without quotes.
    pub etag: String,
    pub content_type: String,
    /// User metadata (`x-amz-meta-*`), names lowercase without the prefix.
    pub meta: BTreeMap<String, String>,
    /// The standard headers stored with the object (`STORED_HEADERS`), names lowercase.
    pub headers: BTreeMap<String, String>,
    /// Empty when the object is `inline`.
    pub chunks: Vec<ChunkRef>,
    /// The manifest chunk written for this version.
    pub manifest: Hash,
    /// The body is inside the manifest chunk (a small object), not in `chunks`.
    pub inline: bool,
    /// The checksum the client sent and the director verified: (algorithm, base64 value),
    /// e.g. ("crc32", "NhCmhg=="). Returned as `x-amz-checksum-<algorithm>`.
    pub checksum: Option<(String, String)>,
    /// The version id; None is the `null` version (see `versions.rs`).
    pub version: Option<String>,
    /// The multipart upload completed into this object (`ObjectRecord::upload_id`).
    pub upload_id: Option<String>,
    /// A multipart object's parts (`ObjectRecord::parts`); empty for a single part.
    pub parts: Vec<ObjectPart>,
    /// Grants beyond the owner's (the bucket's owner); empty: private.
    pub acl: Acl,
}

#[derive(Debug, Default)]
pub struct Bucket {
    pub created_ms: u64,
    /// The access key that created it (`Record::BucketCreate::owner`); None: the admins'.
    pub owner: Option<String>,
    /// The current object version of every key that has one.
    pub objects: BTreeMap<String, Arc<ObjectMeta>>,
    /// The other versions of a key, newest first: a current delete marker first when
    /// the key has no current object, then the noncurrent versions (`versions.rs`).
    /// Empty in a bucket that never had versioning.
    pub history: BTreeMap<String, Vec<Version>>,
    pub versioning: Versioning,
    /// Lifecycle rules (`PutBucketLifecycleConfiguration`); empty when none.
    pub lifecycle: Vec<LifecycleRule>,
    /// Grants beyond the owner's; empty: private.
    pub acl: Acl,
}

impl ObjectMeta {
    pub fn to_record(&self) -> ObjectRecord {
        ObjectRecord {
            size: self.size,
            mtime: self.mtime_ms,
            etag: self.etag.clone(),
            content_type: self.content_type.clone(),
            meta: self.meta.clone(),
            headers: self.headers.clone(),
            chunks: chunks_to_record(&self.chunks),
            manifest: self.manifest.to_hex(),
            inline: self.inline,
            checksum: self.checksum.clone(),
            version: self.version.clone(),
            upload_id: self.upload_id.clone(),
            parts: self.parts.clone(),
            acl: self.acl.to_record(),
        }
    }

    pub fn from_record(r: &ObjectRecord) -> std::result::Result<ObjectMeta, String> {
        // An inline object's bytes are all in its manifest: it lists no chunk, and an
        // empty object is never inline (it has no bytes to carry).
        let chunks = if r.inline {
            if !r.chunks.is_empty() || r.size == 0 {
                return Err(format!(
                    "an inline object of {} bytes listing {} chunks",
                    r.size,
                    r.chunks.len()
                ));
            }
            Vec::new()
        } else {
            chunks_from_record(&r.chunks, r.size)?
        };
        Ok(ObjectMeta {
            size: r.size,
            mtime_ms: r.mtime,
            etag: r.etag.clone(),
            content_type: r.content_type.clone(),
            meta: r.meta.clone(),
            headers: r.headers.clone(),
            chunks,
            manifest: Hash::parse(&r.manifest)
                .ok_or_else(|| format!("bad manifest name {:?}", r.manifest))?,
            inline: r.inline,
            checksum: r.checksum.clone(),
            version: r.version.clone(),
            upload_id: r.upload_id.clone(),
            parts: r.parts.clone(),
            acl: Acl::from_record(&r.acl)?,
        })
    }
}

/// A key S3 accepts (see `crate::s3::names::key_problem`), as a director error.
pub fn validate_key(k: &str) -> Result<()> {
    match key_problem(k) {
        Some(why) => Err(DirectorError::InvalidKey(why)),
        None => Ok(()),
    }
}

/// A record with its in-memory forms made once, before the index lock is taken: the
/// `ObjectMeta` of an object record (a PUT, a copy, a completed upload), the `Part` of a
/// part record. Validation and apply both use them, so a commit converts once, outside
/// the lock, and an object's PUT hands the same `Arc` to the index and to its caller.
pub struct Prepared<'r> {
    pub record: &'r Record,
    object: Option<Arc<ObjectMeta>>,
    part: Option<Arc<Part>>,
    /// The condition the record takes effect under (`condition.rs`), validated with it.
    pub condition: WriteCondition,
}

impl<'r> Prepared<'r> {
    /// Converts what `record` carries; Err when a chunk name, length or ETag in it does
    /// not parse (a record the director made itself: an internal error, or corruption
    /// when replayed).
    pub fn new(record: &'r Record) -> std::result::Result<Prepared<'r>, String> {
        let (object, part) = match record {
            Record::ObjectPut { object, .. } | Record::UploadComplete { object, .. } => {
                (Some(Arc::new(ObjectMeta::from_record(object)?)), None)
            }
            Record::UploadPart { part, .. } => (None, Some(Arc::new(Part::from_record(part)?))),
            _ => (None, None),
        };
        Ok(Prepared {
            record,
            object,
            part,
            condition: WriteCondition::Any,
        })
    }

    /// The same record, taking effect only if `condition` holds when it is applied.
    pub fn with_condition(self, condition: WriteCondition) -> Prepared<'r> {
        Prepared { condition, ..self }
    }

    /// The object version an object record makes, if it is one.
    pub fn object(&self) -> Option<&Arc<ObjectMeta>> {
        self.object.as_ref()
    }

    /// The part a part record adds, if it is one.
    pub fn part(&self) -> Option<&Arc<Part>> {
        self.part.as_ref()
    }

    /// `object()` where the record is known to be an object record.
    pub(crate) fn object_or_err(&self) -> std::result::Result<&Arc<ObjectMeta>, String> {
        self.object()
            .ok_or_else(|| "an object record without its object".to_string())
    }
}

#[derive(Debug, Default)]
pub struct Index {
    pub buckets: BTreeMap<String, Bucket>,
    /// Stores of the cluster, by id.
    pub members: BTreeMap<String, Member>,
    /// Multipart uploads in progress, by (bucket, key, upload id).
    pub uploads: Uploads,
}

/// One entry of a listing.
#[derive(Debug, PartialEq, Eq)]
pub enum ListEntry {
    Object(String, Arc<ObjectMeta>),
    CommonPrefix(String),
}

/// The result of one listing page.
#[derive(Debug, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub truncated: bool,
    /// Where the next page starts (the last key or common prefix returned).
    pub next_after: Option<String>,
}

impl Index {
    /// Checks that `p` may be applied now; the same rules hold during replay. (What its
    /// conversion checks, `Prepared::new` has checked.)
    pub fn validate(&self, p: &Prepared<'_>) -> Result<()> {
        match p.record {
            Record::BucketCreate { bucket, acl, .. } => {
                if self.buckets.contains_key(bucket) {
                    return Err(DirectorError::BucketAlreadyOwnedByYou(bucket.clone()));
                }
                Acl::from_record(acl).map_err(DirectorError::Internal)?;
            }
            Record::BucketAcl { .. } | Record::ObjectAcl { .. } => self.validate_acl(p.record)?,
            Record::BucketDelete { bucket } => {
                let b = self.bucket(bucket)?;
                if !b.objects.is_empty() || !b.history.is_empty() {
                    return Err(DirectorError::BucketNotEmpty(bucket.clone()));
                }
            }
            Record::ObjectPut { bucket, .. } => {
                self.bucket(bucket)?;
            }
            Record::ObjectDelete { bucket, .. }
            | Record::DeleteMarker { bucket, .. }
            | Record::BucketLifecycle { bucket, .. } => {
                self.bucket(bucket)?;
            }
            Record::BucketVersioning { bucket, status } => {
                self.bucket(bucket)?;
                Versioning::parse(status).ok_or_else(|| {
                    DirectorError::BadRequest(
                        "MalformedXML",
                        format!("versioning status {status:?}: use Enabled or Suspended"),
                    )
                })?;
            }
            Record::StoreAdd { weight, .. } if !(weight.is_finite() && *weight > 0.0) => {
                return Err(DirectorError::BadRequest(
                    "InvalidArgument",
                    format!("store weight {weight} is not a positive number"),
                ));
            }
            Record::StoreAdd { id, .. } => {
                if self.members.contains_key(id) {
                    return Err(DirectorError::BadRequest(
                        "StoreExists",
                        format!("store '{id}' is already a member"),
                    ));
                }
            }
            Record::StoreMove { id, .. }
            | Record::StoreDrain { id }
            | Record::StoreRemove { id } => {
                self.member(id)?;
            }
            Record::UploadCreate { .. }
            | Record::UploadPart { .. }
            | Record::UploadComplete { .. }
            | Record::UploadAbort { .. } => self.validate_upload(p)?,
        }
        if p.condition != WriteCondition::Any {
            match p.record {
                Record::ObjectPut { bucket, key, .. }
                | Record::UploadComplete { bucket, key, .. } => {
                    p.condition.check(self, bucket, key)?
                }
                _ => {
                    return Err(DirectorError::Internal(
                        "a condition on a record that makes no object".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn member(&self, id: &str) -> Result<&Member> {
        self.members.get(id).ok_or_else(|| {
            DirectorError::BadRequest("NoSuchStore", format!("no store '{id}' in this cluster"))
        })
    }

    /// Applies a validated record.
    pub fn apply(&mut self, p: &Prepared<'_>) -> std::result::Result<(), String> {
        match p.record {
            Record::BucketCreate {
                bucket,
                created,
                owner,
                acl,
            } => {
                self.buckets.insert(
                    bucket.clone(),
                    Bucket {
                        created_ms: *created,
                        owner: owner.clone(),
                        acl: Acl::from_record(acl)?,
                        ..Bucket::default()
                    },
                );
            }
            Record::BucketAcl { .. } | Record::ObjectAcl { .. } => self.apply_acl(p.record)?,
            Record::BucketDelete { bucket } => {
                self.buckets.remove(bucket);
                // Uploads in progress go with their bucket (their parts become garbage).
                self.uploads.retain(|k: &UploadKey, _| k.0 != *bucket);
            }
            Record::ObjectPut { bucket, key, .. } => {
                let meta = p.object_or_err()?.clone();
                let b = self
                    .buckets
                    .get_mut(bucket)
                    .ok_or_else(|| format!("object in missing bucket '{bucket}'"))?;
                b.put_version(key, meta);
            }
            Record::ObjectDelete { .. }
            | Record::DeleteMarker { .. }
            | Record::BucketVersioning { .. }
            | Record::BucketLifecycle { .. } => self.apply_versions(p.record),
            Record::StoreAdd {
                id,
                url,
                zone,
                weight,
            } => {
                self.members.insert(
                    id.clone(),
                    Member {
                        url: url.clone(),
                        zone: zone.clone(),
                        weight: *weight,
                        draining: false,
                    },
                );
            }
            Record::StoreMove { id, url } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.url = url.clone();
                }
            }
            Record::StoreDrain { id } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.draining = true;
                }
            }
            Record::StoreRemove { id } => {
                self.members.remove(id);
            }
            Record::UploadCreate { .. }
            | Record::UploadPart { .. }
            | Record::UploadComplete { .. }
            | Record::UploadAbort { .. } => self.apply_upload(p)?,
        }
        Ok(())
    }

    /// Replays one record at start: validation failures are corruption, not user errors.
    pub fn replay(&mut self, seq: u64, r: &Record) -> std::result::Result<(), String> {
        let p = Prepared::new(r).map_err(|e| format!("record {seq} does not apply: {e}"))?;
        self.validate(&p)
            .map_err(|e| format!("record {seq} does not apply: {e}"))?;
        self.apply(&p).map_err(|e| format!("record {seq}: {e}"))
    }

    pub fn bucket(&self, name: &str) -> Result<&Bucket> {
        self.buckets
            .get(name)
            .ok_or_else(|| DirectorError::NoSuchBucket(name.to_string()))
    }

    pub fn object(&self, bucket: &str, key: &str) -> Result<Arc<ObjectMeta>> {
        self.bucket(bucket)?
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| DirectorError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })
    }

    pub fn object_count(&self) -> u64 {
        self.buckets.values().map(|b| b.objects.len() as u64).sum()
    }

    /// One page of keys under `prefix`, after `after`, rolled up at `delimiter`.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<ListPage> {
        let b = self.bucket(bucket)?;
        let mut page = ListPage::default();
        if max == 0 {
            return Ok(page);
        }
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        // A resumed listing that stopped on a common prefix skips everything under it.
        // (Only when the resume point is itself a common prefix: a key such as `a/` that
        // merely ends with the delimiter is an object, and the keys under it still count.)
        let skip_under = after
            .filter(|a| a.starts_with(prefix) && delimiter_cut(a, prefix, delimiter) == Some(*a));
        let mut last_prefix: Option<String> = None;
        for (key, meta) in b.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if skip_under.is_some_and(|s| key.starts_with(s)) {
                continue;
            }
            let entry = match delimiter_cut(key, prefix, delimiter) {
                Some(cp) if last_prefix.as_deref() == Some(cp) => continue,
                Some(cp) => {
                    last_prefix = Some(cp.to_string());
                    ListEntry::CommonPrefix(cp.to_string())
                }
                None => ListEntry::Object(key.clone(), Arc::clone(meta)),
            };
            if page.entries.len() == max {
                page.truncated = true;
                break;
            }
            page.entries.push(entry);
        }
        if page.truncated {
            page.next_after = page.entries.last().map(|e| match e {
                ListEntry::Object(k, _) => k.clone(),
                ListEntry::CommonPrefix(p) => p.clone(),
            });
        }
        Ok(page)
    }

    /// The whole namespace as snapshot state. A record that cannot be encoded fails the
    /// snapshot (rather than writing `null` just before the segments it replaces go).
    pub fn to_snapshot(&self) -> std::result::Result<Value, String> {
        let mut buckets = Map::new();
        for (name, b) in &self.buckets {
            let mut objects = Map::new();
            for (k, o) in &b.objects {
                let v = serde_json::to_value(o.to_record())
                    .map_err(|e| format!("object '{name}/{k}': {e}"))?;
                objects.insert(k.clone(), v);
            }
            let mut entry = serde_json::json!({"created": b.created_ms, "objects": objects});
            if let Some(owner) = &b.owner {
                entry["owner"] = owner.clone().into();
            }
            if !b.acl.is_private() {
                entry["acl"] = serde_json::to_value(b.acl.to_record())
                    .map_err(|e| format!("bucket '{name}': {e}"))?;
            }
            b.versions_to_snapshot(&mut entry)
                .map_err(|e| format!("bucket '{name}': {e}"))?;
            buckets.insert(name.clone(), entry);
        }
        let mut state =
            serde_json::json!({ "v": RECORD_VERSION, "buckets": buckets, "members": self.members });
        if !self.uploads.is_empty() {
            state["uploads"] = super::uploads::uploads_to_snapshot(&self.uploads)?;
        }
        Ok(state)
    }

    pub fn from_snapshot(v: &Value) -> std::result::Result<Index, String> {
        if v.get("v").and_then(Value::as_u64) != Some(RECORD_VERSION) {
            return Err(format!(
                "snapshot state has version {:?}; this director reads version {RECORD_VERSION}",
                v.get("v")
            ));
        }
        let mut idx = Index::default();
        let buckets = v
            .get("buckets")
            .and_then(Value::as_object)
            .ok_or("snapshot has no buckets object")?;
        for (name, b) in buckets {
            let created_ms = b.get("created").and_then(Value::as_u64).unwrap_or(0);
            let owner = b.get("owner").and_then(Value::as_str).map(str::to_string);
            let acl = match b.get("acl") {
                None => Acl::default(),
                Some(a) => serde_json::from_value(a.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|r| Acl::from_record(&r))
                    .map_err(|e| format!("bucket '{name}' acl: {e}"))?,
            };
            let mut bucket = Bucket {
                created_ms,
                owner,
                acl,
                ..Bucket::default()
            };
            let objects = b
                .get("objects")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("bucket '{name}' has no objects object"))?;
            for (k, o) in objects {
                let rec: ObjectRecord = serde_json::from_value(o.clone())
                    .map_err(|e| format!("object '{name}/{k}': {e}"))?;
                let meta = ObjectMeta::from_record(&rec)
                    .map_err(|e| format!("object '{name}/{k}': {e}"))?;
                bucket.objects.insert(k.clone(), Arc::new(meta));
            }
            bucket
                .versions_from_snapshot(b)
                .map_err(|e| format!("bucket '{name}': {e}"))?;
            idx.buckets.insert(name.clone(), bucket);
        }
        if let Some(m) = v.get("members") {
            idx.members =
                serde_json::from_value(m.clone()).map_err(|e| format!("snapshot members: {e}"))?;
        }
        if let Some(u) = v.get("uploads") {
            let buckets = &idx.buckets;
            idx.uploads = super::uploads::uploads_from_snapshot(u, &|b| buckets.contains_key(b))?;
        }
        Ok(idx)
    }
}

/// The common prefix `key` rolls up into, if the delimiter occurs after `prefix`.
pub(super) fn delimiter_cut<'a>(key: &'a str, prefix: &str, delimiter: &str) -> Option<&'a str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = &key[prefix.len()..];
    rest.find(delimiter)
        .map(|i| &key[..prefix.len() + i + delimiter.len()])
}

impl WriteCondition {
    /// Whether the condition holds for `bucket`/`key` in `idx`: Ok, or 412 (404 for
    /// `If-Match` on a key that does not exist).
    pub fn check(&self, idx: &Index, bucket: &str, key: &str) -> Result<()> {
        let current = match idx.object(bucket, key) {
            Ok(m) => Some(m),
            Err(DirectorError::NoSuchKey { .. }) => None,
            Err(e) => return Err(e),
        };
        let ok = match (self, &current) {
            (WriteCondition::Any, _) => true,
            (WriteCondition::Absent, c) => c.is_none(),
            (WriteCondition::EtagIs(_), None) => {
                return Err(DirectorError::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                });
            }
            (WriteCondition::EtagIs(tags), Some(m)) => {
                tags.iter().any(|t| t == "*" || *t == m.etag)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(precondition_failed(match self {
                WriteCondition::Absent => "If-None-Match: the key already exists",
                _ => "If-Match: the object's ETag differs",
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(size: u64) -> ObjectRecord {
        let h = Hash::of(b"x").to_hex();
        ObjectRecord {
            size,
            mtime: 1,
            etag: "e".into(),
            content_type: "t".into(),
            meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            chunks: if size > 0 {
                vec![(h.clone(), size)]
            } else {
                vec![]
            },
            manifest: h,
            inline: false,
            checksum: None,
            version: None,
            upload_id: None,
            parts: Vec::new(),
            acl: Vec::new(),
        }
    }

    /// An inline object (issue 19): `inline` is written only when true, read back as
    /// false from records without it, and its record lists no chunk.
    #[test]
    fn the_inline_field_is_optional_both_ways() {
        let old = obj(3);
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("inline"), "{text}");
        assert!(!ObjectMeta::from_record(&old).unwrap().inline);
        let mut new = obj(3);
        new.chunks.clear();
        new.inline = true;
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.contains(r#""inline":true"#), "{text}");
        let meta = ObjectMeta::from_record(&serde_json::from_str(&text).unwrap()).unwrap();
        assert!(meta.inline && meta.chunks.is_empty());
        assert_eq!(meta.to_record(), new);
        // Inline with chunks, or inline and empty, is not a record this director writes.
        let mut bad = obj(3);
        bad.inline = true;
        assert!(ObjectMeta::from_record(&bad).is_err());
        let mut bad = obj(0);
        bad.inline = true;
        assert!(ObjectMeta::from_record(&bad).is_err());
    }

    /// Records written before checksums existed still read, and a record without one is
    /// written exactly as before (issue 4).
    #[test]
    fn the_checksum_field_is_optional_both_ways() {
        let old = obj(1);
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("checksum"), "{text}");
        assert_eq!(serde_json::from_str::<ObjectRecord>(&text).unwrap(), old);
        let mut new = obj(1);
        new.checksum = Some(("crc32".into(), "NhCmhg==".into()));
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#""checksum":["crc32","NhCmhg=="]"#),
            "{text}"
        );
        let back: ObjectRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, new);
        let meta = ObjectMeta::from_record(&back).unwrap();
        assert_eq!(meta.to_record(), new);
    }

    /// `Index::validate` of a record as a commit prepares it.
    fn check(i: &Index, r: &Record) -> Result<()> {
        i.validate(&Prepared::new(r).map_err(DirectorError::Internal)?)
    }

    fn index_with(keys: &[&str]) -> Index {
        let mut i = Index::default();
        let bucket = Record::BucketCreate {
            bucket: "b".into(),
            created: 0,
            owner: None,
            acl: Vec::new(),
        };
        i.replay(1, &bucket).unwrap();
        for k in keys {
            let put = Record::ObjectPut {
                bucket: "b".into(),
                key: k.to_string(),
                object: obj(1),
            };
            i.replay(2, &put).unwrap();
        }
        i
    }

    /// The object a PUT's caller gets back is the one the index holds: converted once.
    #[test]
    fn a_commit_converts_its_object_once() {
        let mut i = index_with(&[]);
        let put = Record::ObjectPut {
            bucket: "b".into(),
            key: "k".into(),
            object: obj(3),
        };
        let p = Prepared::new(&put).unwrap();
        i.validate(&p).unwrap();
        i.apply(&p).unwrap();
        assert!(Arc::ptr_eq(
            p.object().unwrap(),
            &i.object("b", "k").unwrap()
        ));
        let mut bad = obj(3);
        bad.manifest = "zz".into();
        let bad = Record::ObjectPut {
            bucket: "b".into(),
            key: "k".into(),
            object: bad,
        };
        assert!(Prepared::new(&bad).is_err());
        assert!(i.replay(3, &bad).is_err());
    }

    fn names(p: &ListPage) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                ListEntry::Object(k, _) => k.clone(),
                ListEntry::CommonPrefix(p) => format!("{p}*"),
            })
            .collect()
    }

    #[test]
    fn records_round_trip_and_unknowns_are_refused() {
        let r = Record::ObjectPut {
            bucket: "b".into(),
            key: "k".into(),
            object: obj(3),
        };
        let mut m = r.to_map().unwrap();
        m.insert("seq".into(), 7.into());
        assert_eq!(Record::from_map(m.clone()).unwrap(), (7, r));
        let mut bad = m.clone();
        bad.insert("type".into(), "object_rename".into());
        assert!(Record::from_map(bad).unwrap_err().contains("record 7"));
        let mut v2 = m.clone();
        v2.insert("v".into(), 2.into());
        assert!(Record::from_map(v2).unwrap_err().contains("version 2"));
        let mut extra = m;
        extra.insert("surprise".into(), 1.into());
        assert!(Record::from_map(extra).is_err());
    }

    #[test]
    fn listing_with_prefix_delimiter_and_pages() {
        // A "folder marker" key equal to the prefix: resuming after it must not skip the
        // keys under it.
        let m = index_with(&["a/", "a/b", "a/c"]);
        let p1 = m.list("b", "a/", "/", None, 1).unwrap();
        assert_eq!(names(&p1), ["a/"]);
        let p2 = m
            .list("b", "a/", "/", p1.next_after.as_deref(), 10)
            .unwrap();
        assert_eq!(names(&p2), ["a/b", "a/c"]);
        let z = m.list("b", "", "", None, 0).unwrap();
        assert!(z.entries.is_empty() && !z.truncated);
        let i = index_with(&["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d"]);
        let p = i.list("b", "", "/", None, 1000).unwrap();
        assert_eq!(names(&p), ["a/*", "b", "c/*", "d"]);
        let p = i.list("b", "a/", "/", None, 1000).unwrap();
        assert_eq!(names(&p), ["a/1", "a/2", "a/b/*"]);
        // Pages of 2 with a delimiter: the common prefix is not repeated.
        let mut after = None;
        let mut all = Vec::new();
        loop {
            let p = i.list("b", "", "/", after.as_deref(), 2).unwrap();
            all.extend(names(&p));
            if !p.truncated {
                break;
            }
            after = p.next_after;
        }
        assert_eq!(all, ["a/*", "b", "c/*", "d"]);
        let p = i.list("b", "", "", Some("b"), 1000).unwrap();
        assert_eq!(names(&p), ["c/1", "c/2", "d"]);
    }

    #[test]
    fn keys_sort_in_utf8_byte_order() {
        let i = index_with(&["é", "z", "Z", "a"]);
        let p = i.list("b", "", "", None, 10).unwrap();
        assert_eq!(names(&p), ["Z", "a", "z", "é"]);
    }

    #[test]
    fn validation_rules() {
        let i = index_with(&["k"]);
        assert!(matches!(
            check(&i, &Record::BucketDelete { bucket: "b".into() }),
            Err(DirectorError::BucketNotEmpty(_))
        ));
        assert!(matches!(
            check(
                &i,
                &Record::BucketCreate {
                    acl: Default::default(),
                    bucket: "b".into(),
                    created: 0,
                    owner: None,
                }
            ),
            Err(DirectorError::BucketAlreadyOwnedByYou(_))
        ));
        assert!(matches!(
            check(
                &i,
                &Record::ObjectDelete {
                    bucket: "nope".into(),
                    key: "k".into(),
                    version: None,
                }
            ),
            Err(DirectorError::NoSuchBucket(_))
        ));
        for good in ["abc", "my-bucket.2", "a1b"] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "a_b",
            "_dpyfs",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        assert!(validate_key("").is_err());
        assert!(validate_key(&"x".repeat(1025)).is_err());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key("a/../b").is_ok());
    }

    #[test]
    fn snapshot_round_trips() {
        let i = index_with(&["a", "b/c"]);
        let j = Index::from_snapshot(&i.to_snapshot().unwrap()).unwrap();
        assert_eq!(j.object_count(), 2);
        assert_eq!(j.object("b", "b/c").unwrap(), i.object("b", "b/c").unwrap());
    }
}
