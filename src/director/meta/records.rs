//! Journal records: the serialised types the journal and snapshots hold, kept apart from
//! the in-memory ones (`index::ObjectMeta`, `uploads::Part`) and converted by hand, so the
//! memory layout can change without breaking old journals. Both the index and the uploads
//! depend on this file, not on each other. An unknown record type or version is refused,
//! never skipped.

use super::acl::AclRecord;
use crate::director::error::{DirectorError, Result};
use crate::hash::Hash;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Version of the records this director writes and reads (`"v"` in every record).
pub const RECORD_VERSION: u64 = 1;
/// One chunk of an object: its name and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub hash: Hash,
    pub len: u32,
}

/// A chunk list as records hold it: `[[sha256 hex, length], ...]`.
pub fn chunks_to_record(chunks: &[ChunkRef]) -> Vec<(String, u64)> {
    chunks
        .iter()
        .map(|c| (c.hash.to_hex(), u64::from(c.len)))
        .collect()
}

/// A record's chunk list, checked: names, lengths that fit, and a sum equal to `size`.
pub fn chunks_from_record(
    chunks: &[(String, u64)],
    size: u64,
) -> std::result::Result<Vec<ChunkRef>, String> {
    let mut out = Vec::with_capacity(chunks.len());
    let mut total = 0u64;
    for (h, len) in chunks {
        let hash = Hash::parse(h).ok_or_else(|| format!("bad chunk name {h:?}"))?;
        let len = u32::try_from(*len).map_err(|_| format!("chunk length {len} too large"))?;
        total += u64::from(len);
        out.push(ChunkRef { hash, len });
    }
    if total != size {
        return Err(format!(
            "chunk lengths add up to {total}, not to the size {size}"
        ));
    }
    Ok(out)
}

/// The object fields as they appear in journal records, snapshots and manifests.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectRecord {
    pub size: u64,
    pub mtime: u64,
    pub etag: String,
    pub content_type: String,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Content-Encoding, Content-Disposition, ... as sent with the upload (absent if none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `[[sha256 hex, length], ...]` in order.
    pub chunks: Vec<(String, u64)>,
    pub manifest: String,
    /// The body is inside the manifest chunk (its `data`), not in chunks of its own, so
    /// `chunks` is empty: a small object (`scatter::INLINE_BYTES_MAX`). Absent, false, in
    /// every record written before it existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inline: bool,
    /// `[algorithm, base64 value]` of the verified x-amz-checksum-*; absent if none was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
    /// The version id (`meta::versions::new_version_id`) in a bucket with versioning
    /// enabled; absent: the `null` version (every object of an unversioned bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The multipart upload this object was completed from, if any: a client that repeats
    /// CompleteMultipartUpload after a lost answer gets the same answer while the key
    /// still holds this object. Absent for objects written in one PUT or copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// A multipart object's parts in order (absent for single-part objects and for
    /// objects completed before it existed): GET `?partNumber=N` and GetObjectAttributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ObjectPart>,
    /// The version's ACL beyond its owner's (`meta::acl`); absent: private. Never in a
    /// manifest: `dpyfs recover` brings objects back private.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: AclRecord,
}

/// One part of a multipart object, as its record keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectPart {
    pub size: u64,
    /// Base64 checksum of the part under the object's checksum algorithm (an upload
    /// created with `x-amz-checksum-algorithm`), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A journal record (without the `seq` and `v` fields, which the caller handles).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    BucketCreate {
        bucket: String,
        created: u64,
        /// The access key that created it; absent for buckets made without keys, before
        /// buckets had owners, or by `dpyfs recover`: those belong to the admin keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        /// The bucket's ACL beyond its owner's (`meta::acl`); absent: private.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        acl: AclRecord,
    },
    BucketDelete {
        bucket: String,
    },
    ObjectPut {
        bucket: String,
        key: String,
        object: ObjectRecord,
    },
    /// Removes one version of `key` for good: `version`, or when absent the `null`
    /// version (in an unversioned bucket, the object). The next newer version left
    /// becomes current.
    ObjectDelete {
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// A DELETE without a version id in a versioned bucket: a delete marker becomes the
    /// current version (`version` absent: the `null` marker of a suspended bucket, which
    /// replaces the `null` version).
    DeleteMarker {
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// Unix ms.
        mtime: u64,
    },
    /// PutBucketVersioning: `status` is `Enabled` or `Suspended`.
    BucketVersioning {
        bucket: String,
        status: String,
    },
    /// PutBucketAcl: the bucket's ACL is now `acl` (empty: private).
    BucketAcl {
        bucket: String,
        acl: AclRecord,
    },
    /// PutObjectAcl: version `version` of `key` (absent: the `null` version) has the ACL
    /// `acl` (empty: private).
    ObjectAcl {
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        acl: AclRecord,
    },
    /// PutBucketLifecycleConfiguration (`rules` not empty) or its DELETE (empty).
    BucketLifecycle {
        bucket: String,
        rules: Vec<LifecycleRule>,
    },
    /// A store joins: identity from its `store.json`, placement zone and weight.
    StoreAdd {
        id: String,
        url: String,
        zone: String,
        weight: f64,
    },
    /// A known store answers at a new address (identity is the id, not the URL).
    StoreMove {
        id: String,
        url: String,
    },
    /// Move every chunk off this store; it takes no new copies.
    StoreDrain {
        id: String,
    },
    StoreRemove {
        id: String,
    },
    /// CreateMultipartUpload: an upload starts (multipart.rs).
    UploadCreate {
        bucket: String,
        key: String,
        upload_id: String,
        /// Unix ms.
        initiated: u64,
        content_type: String,
        #[serde(default)]
        meta: BTreeMap<String, String>,
        /// Stored standard headers, as in `ObjectRecord::headers`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// `x-amz-checksum-algorithm` of CreateMultipartUpload, lowercase (`crc32`, ...):
        /// every part carries that checksum and the object gets their composite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum_algorithm: Option<String>,
        /// `x-amz-acl` / `x-amz-grant-*` of CreateMultipartUpload: the object's ACL.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        acl: AclRecord,
    },
    /// UploadPart / UploadPartCopy: part `number` is stored (replacing an earlier one).
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        number: u32,
        part: PartRecord,
    },
    /// CompleteMultipartUpload: the upload becomes the object `object`, whose chunk list
    /// is the listed parts' lists in order; `parts` are the `[number, etag]` used.
    UploadComplete {
        bucket: String,
        key: String,
        upload_id: String,
        parts: Vec<(u32, String)>,
        object: ObjectRecord,
    },
    /// AbortMultipartUpload, or an abandoned upload cleaned after `--multipart-max-age`.
    UploadAbort {
        bucket: String,
        key: String,
        upload_id: String,
    },
}

/// One lifecycle rule, as journaled and in snapshots: what of the versions under
/// `prefix` the director's upkeep removes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub prefix: String,
    pub enabled: bool,
    /// NoncurrentVersionExpiration: days after a version became noncurrent...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u64>,
    /// ...except the newest this many noncurrent versions, which are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent: Option<u64>,
    /// Expiration/ExpiredObjectDeleteMarker: a delete marker that is the only version
    /// left of its key is removed.
    #[serde(default)]
    pub expired_marker: bool,
}

/// A store that belongs to the cluster, as journaled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub url: String,
    pub zone: String,
    pub weight: f64,
    #[serde(default)]
    pub draining: bool,
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
    /// Base64 checksum of the part under its upload's checksum algorithm, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Record {
    /// Whether the record changes the set of stores.
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            Record::StoreAdd { .. }
                | Record::StoreMove { .. }
                | Record::StoreDrain { .. }
                | Record::StoreRemove { .. }
        )
    }

    /// The JSON object the journal writes (it adds `seq`).
    pub fn to_map(&self) -> Result<Map<String, Value>> {
        let v = serde_json::to_value(self)
            .map_err(|e| DirectorError::Internal(format!("cannot encode a record: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(DirectorError::Internal(
                "a record is not a JSON object".into(),
            ));
        };
        m.insert("v".into(), Value::from(RECORD_VERSION));
        Ok(m)
    }

    /// Reads a record from the journal, refusing unknown versions and types.
    pub fn from_map(mut m: Map<String, Value>) -> std::result::Result<(u64, Record), String> {
        let seq = m
            .remove("seq")
            .and_then(|s| s.as_u64())
            .ok_or("record has no seq")?;
        // The raft term is the replica's business (records written before directors had
        // terms have none); the record itself is the same either way.
        m.remove("term");
        match m.remove("v").and_then(|v| v.as_u64()) {
            Some(RECORD_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "record {seq} has version {v}; this director reads version {RECORD_VERSION} (upgrade dpyfs)"
                ));
            }
            None => return Err(format!("record {seq} has no version field \"v\"")),
        }
        let r = serde_json::from_value(Value::Object(m))
            .map_err(|e| format!("record {seq}: {e} (unknown record type or field?)"))?;
        Ok((seq, r))
    }
}
