//! Object versions (S3 versioning) in the index: a bucket's versioning status, the
//! versions of each key newest first, delete markers, the `null` version, the listing of
//! versions, and which versions a bucket's lifecycle rules let go.
//!
//! Layout: `Bucket::objects` keeps the current object of every key (so plain GET and
//! ListObjects stay as they were); `Bucket::history` keeps, newest first, the versions
//! that are not in `objects`. When a key's current version is a delete marker, the key
//! has no entry in `objects` and the marker is the first entry of its history. A bucket
//! that never had versioning has an empty history: its objects are all `null` versions,
//! and a write replaces the `null` version as it always did.

pub use super::index::Versioning;
use super::index::{Bucket, Index, ObjectMeta, Version};
use super::records::{LifecycleRule, ObjectRecord, Record};
use crate::director::error::{DirectorError, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::Bound;
use std::sync::Arc;

/// Most versions (and common prefixes) one ListObjectVersions page returns (S3's limit).
pub const LIST_VERSIONS_MAX: usize = 1000;
/// Length of a version id: 12 hex digits of unix ms, then 20 of a hash.
pub const VERSION_ID_CHARS: usize = 32;
/// Most rules one lifecycle configuration may hold (S3's limit).
pub const LIFECYCLE_RULES_MAX: usize = 1000;

/// A version as a snapshot holds it: `{"object": {...}}` or `{"marker": {...}}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum VersionRecord {
    Object(Box<ObjectRecord>),
    Marker {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        mtime: u64,
    },
}

/// A new version id: the same shape as an upload id (12 hex digits of unix ms, so ids
/// sort by creation time, then 20 hex digits of a hash of the key, the time in
/// nanoseconds, the process and a counter), made by the director that takes the write,
/// before the record is proposed: unique across the directors of a group without
/// asking the leader.
pub fn new_version_id(bucket: &str, key: &str, now_ms: u64) -> String {
    super::uploads::new_upload_id(bucket, key, now_ms)
}

/// A `versionId` a client sent: `null`, or an id of ours (None is the `null` version).
pub fn parse_version_id(s: &str) -> Result<Option<String>> {
    if s == "null" {
        return Ok(None);
    }
    let ours = s.len() == VERSION_ID_CHARS
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if ours {
        Ok(Some(s.to_string()))
    } else {
        Err(DirectorError::BadRequest(
            "InvalidArgument",
            format!("invalid version id specified: {s:?}"),
        ))
    }
}

/// 404 NoSuchVersion.
pub fn no_such_version(key: &str, id: Option<&str>) -> DirectorError {
    DirectorError::S3(
        404,
        "NoSuchVersion",
        format!("the key '{key}' has no version {}", id.unwrap_or("null")),
    )
}

impl Bucket {
    /// A new current object version. A `null` version replaces the key's `null`
    /// version wherever it is; a versioned one keeps the old current version as the
    /// newest noncurrent one.
    pub fn put_version(&mut self, key: &str, meta: Arc<ObjectMeta>) {
        let null = meta.version.is_none();
        let old = self.objects.insert(key.to_string(), meta);
        let keep_old = old.filter(|o| !(null && o.version.is_none()));
        if keep_old.is_none() && (!null || !self.history.contains_key(key)) {
            return;
        }
        let hist = self.history.entry(key.to_string()).or_default();
        if let Some(o) = keep_old {
            hist.insert(0, Version::Object(o));
        }
        if null {
            hist.retain(|v| v.id().is_some());
        }
        if hist.is_empty() {
            self.history.remove(key);
        }
    }

    /// A delete marker becomes the current version (a `null` one replaces the `null`
    /// version).
    pub fn add_marker(&mut self, key: &str, version: Option<String>, mtime_ms: u64) {
        let hist = self.history.entry(key.to_string()).or_default();
        if let Some(o) = self.objects.remove(key) {
            hist.insert(0, Version::Object(o));
        }
        if version.is_none() {
            hist.retain(|v| v.id().is_some());
        }
        hist.insert(0, Version::Marker { version, mtime_ms });
    }

    /// Removes one version for good; the newest version left becomes current. False if
    /// the key has no such version.
    pub fn remove_version(&mut self, key: &str, id: Option<&str>) -> bool {
        if self
            .objects
            .get(key)
            .is_some_and(|o| o.version.as_deref() == id)
        {
            self.objects.remove(key);
            self.promote(key);
            return true;
        }
        let Some(hist) = self.history.get_mut(key) else {
            return false;
        };
        let Some(i) = hist.iter().position(|v| v.id() == id) else {
            return false;
        };
        hist.remove(i);
        self.promote(key);
        true
    }

    /// After a removal: the newest remaining version is current (an object moves to
    /// `objects`; a marker stays first in the history), and an empty history goes.
    fn promote(&mut self, key: &str) {
        let Some(hist) = self.history.get_mut(key) else {
            return;
        };
        if !self.objects.contains_key(key) && matches!(hist.first(), Some(Version::Object(_))) {
            if let Version::Object(o) = hist.remove(0) {
                self.objects.insert(key.to_string(), o);
            }
        }
        if hist.is_empty() {
            self.history.remove(key);
        }
    }

    /// Every version of `key`, newest (the current one) first.
    pub fn versions_of(&self, key: &str) -> Vec<Version> {
        let mut out: Vec<Version> = self
            .objects
            .get(key)
            .map(|o| Version::Object(Arc::clone(o)))
            .into_iter()
            .collect();
        out.extend(self.history.get(key).into_iter().flatten().cloned());
        out
    }

    /// The version `id` of `key` (None: the `null` version).
    pub fn version(&self, key: &str, id: Option<&str>) -> Option<Version> {
        self.versions_of(key).into_iter().find(|v| v.id() == id)
    }

    /// The delete marker that is `key`'s current version, if it is one.
    pub fn current_marker(&self, key: &str) -> Option<&Version> {
        if self.objects.contains_key(key) {
            return None;
        }
        self.history
            .get(key)
            .and_then(|h| h.first())
            .filter(|v| matches!(v, Version::Marker { .. }))
    }

    /// Every object version of the bucket, current and noncurrent, with its key: what
    /// garbage collection, repair and fsck count (a chunk is live while any version
    /// refers to it).
    pub fn all_objects(&self) -> impl Iterator<Item = (&String, &Arc<ObjectMeta>)> + '_ {
        let older = self.history.iter().flat_map(|(k, h)| {
            h.iter().filter_map(move |v| match v {
                Version::Object(o) => Some((k, o)),
                Version::Marker { .. } => None,
            })
        });
        self.objects.iter().chain(older)
    }

    /// Adds `versioning`, `lifecycle` and `history` to a bucket's snapshot object (each
    /// only when set, so a bucket without versioning is written as before).
    pub fn versions_to_snapshot(&self, out: &mut Value) -> std::result::Result<(), String> {
        if let Some(s) = self.versioning.as_str() {
            out["versioning"] = Value::from(s);
        }
        if !self.lifecycle.is_empty() {
            out["lifecycle"] = serde_json::to_value(&self.lifecycle).map_err(|e| e.to_string())?;
        }
        if self.history.is_empty() {
            return Ok(());
        }
        let mut hist = serde_json::Map::new();
        for (k, h) in &self.history {
            let list: Vec<VersionRecord> = h
                .iter()
                .map(|v| match v {
                    Version::Object(o) => VersionRecord::Object(Box::new(o.to_record())),
                    Version::Marker { version, mtime_ms } => VersionRecord::Marker {
                        version: version.clone(),
                        mtime: *mtime_ms,
                    },
                })
                .collect();
            let v = serde_json::to_value(list).map_err(|e| format!("versions of '{k}': {e}"))?;
            hist.insert(k.clone(), v);
        }
        out["history"] = Value::Object(hist);
        Ok(())
    }

    /// Reads what `versions_to_snapshot` wrote (absent fields: no versioning).
    pub fn versions_from_snapshot(&mut self, b: &Value) -> std::result::Result<(), String> {
        if let Some(s) = b.get("versioning") {
            self.versioning = s
                .as_str()
                .and_then(Versioning::parse)
                .ok_or_else(|| format!("versioning status {s}"))?;
        }
        if let Some(l) = b.get("lifecycle") {
            self.lifecycle =
                serde_json::from_value(l.clone()).map_err(|e| format!("lifecycle: {e}"))?;
        }
        let Some(hist) = b.get("history") else {
            return Ok(());
        };
        let hist = hist.as_object().ok_or("history is not an object")?;
        for (k, list) in hist {
            let recs: Vec<VersionRecord> = serde_json::from_value(list.clone())
                .map_err(|e| format!("versions of '{k}': {e}"))?;
            let mut h = Vec::with_capacity(recs.len());
            for r in recs {
                h.push(match r {
                    VersionRecord::Object(o) => Version::Object(Arc::new(
                        ObjectMeta::from_record(&o)
                            .map_err(|e| format!("versions of '{k}': {e}"))?,
                    )),
                    VersionRecord::Marker { version, mtime } => Version::Marker {
                        version,
                        mtime_ms: mtime,
                    },
                });
            }
            if !h.is_empty() {
                self.history.insert(k.clone(), h);
            }
        }
        Ok(())
    }

    /// The versions the bucket's enabled lifecycle rules let go at `now_ms`, a day being
    /// `day_ms`: (key, version id). A noncurrent version is due `noncurrent_days` after
    /// it became noncurrent (when its next newer version was made), unless it is one of
    /// the `newer_noncurrent` newest noncurrent versions; a delete marker that is the
    /// only version left of its key is due under `expired_marker`.
    pub fn expired_versions(&self, now_ms: u64, day_ms: u64) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        if !self.lifecycle.iter().any(|r| r.enabled) {
            return out;
        }
        for (key, hist) in &self.history {
            let rules: Vec<&LifecycleRule> = self
                .lifecycle
                .iter()
                .filter(|r| r.enabled && key.starts_with(&r.prefix))
                .collect();
            let Some(first) = hist.first() else { continue };
            if rules.is_empty() {
                continue;
            }
            let current = self.objects.get(key);
            let (mut newer_ms, noncurrent) = match current {
                Some(o) => (o.mtime_ms, &hist[..]),
                None => (first.mtime_ms(), &hist[1..]),
            };
            for (i, v) in noncurrent.iter().enumerate() {
                let since = newer_ms;
                newer_ms = v.mtime_ms();
                let due = rules.iter().any(|r| {
                    r.noncurrent_days.is_some_and(|d| {
                        now_ms.saturating_sub(since) >= d.saturating_mul(day_ms)
                            && i as u64 >= r.newer_noncurrent.unwrap_or(0)
                    })
                });
                if due {
                    out.push((key.clone(), v.id().map(str::to_string)));
                }
            }
            if current.is_none() && hist.len() == 1 && rules.iter().any(|r| r.expired_marker) {
                out.push((key.clone(), first.id().map(str::to_string)));
            }
        }
        out
    }
}

/// One entry of ListObjectVersions.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionEntry {
    Version {
        key: String,
        version: Version,
        latest: bool,
    },
    CommonPrefix(String),
}

/// One page of ListObjectVersions.
#[derive(Debug, Default)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub truncated: bool,
    /// Where the next page starts: NextKeyMarker and NextVersionIdMarker.
    pub next_key: Option<String>,
    pub next_version: Option<String>,
}

/// Where a ListObjectVersions page starts.
#[derive(Debug, Default)]
pub struct VersionMarker<'a> {
    /// Keys after this one (or, with `version`, this key's versions after that one).
    pub key: Option<&'a str>,
    /// `null` or a version id, as the client sent it.
    pub version: Option<&'a str>,
}

/// The keys of `objects` and `history` from `start` on, in order, each once.
fn merged_keys<'a>(b: &'a Bucket, start: &str) -> impl Iterator<Item = &'a String> + 'a {
    let from = (Bound::Included(start.to_string()), Bound::Unbounded);
    let mut a = b.objects.range(from.clone()).map(|(k, _)| k).peekable();
    let mut h = b.history.range(from).map(|(k, _)| k).peekable();
    std::iter::from_fn(move || match (a.peek(), h.peek()) {
        (Some(x), Some(y)) if x < y => a.next(),
        (Some(x), Some(y)) if y < x => h.next(),
        (Some(_), Some(_)) => {
            h.next();
            a.next()
        }
        (Some(_), None) => a.next(),
        (None, _) => h.next(),
    })
}

impl Index {
    /// Applies the records of versioning to a bucket (validated; a missing bucket is
    /// skipped, as `object_delete` always was).
    pub(super) fn apply_versions(&mut self, r: &Record) {
        match r {
            Record::ObjectDelete {
                bucket,
                key,
                version,
            } => {
                if let Some(b) = self.buckets.get_mut(bucket) {
                    b.remove_version(key, version.as_deref());
                }
            }
            Record::DeleteMarker {
                bucket,
                key,
                version,
                mtime,
            } => {
                if let Some(b) = self.buckets.get_mut(bucket) {
                    b.add_marker(key, version.clone(), *mtime);
                }
            }
            Record::BucketVersioning { bucket, status } => {
                if let (Some(b), Some(v)) =
                    (self.buckets.get_mut(bucket), Versioning::parse(status))
                {
                    b.versioning = v;
                }
            }
            Record::BucketLifecycle { bucket, rules } => {
                if let Some(b) = self.buckets.get_mut(bucket) {
                    b.lifecycle = rules.clone();
                }
            }
            _ => {}
        }
    }

    /// One page of ListObjectVersions: keys under `prefix` from `marker` on, every
    /// version of each newest first, rolled up at `delimiter`.
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        marker: &VersionMarker<'_>,
        max: usize,
    ) -> Result<VersionPage> {
        let b = self.bucket(bucket)?;
        let mut page = VersionPage::default();
        if max == 0 {
            return Ok(page);
        }
        let start = match marker.key {
            Some(k) if k >= prefix => k,
            _ => prefix,
        };
        let skip_under = marker.key.filter(|a| {
            a.starts_with(prefix) && super::index::delimiter_cut(a, prefix, delimiter) == Some(*a)
        });
        let mut last_prefix: Option<String> = None;
        'keys: for key in merged_keys(b, start) {
            if !key.starts_with(prefix) {
                break;
            }
            let at_marker = marker.key == Some(key.as_str());
            if (at_marker && marker.version.is_none())
                || skip_under.is_some_and(|s| key.starts_with(s))
            {
                continue;
            }
            if let Some(cp) = super::index::delimiter_cut(key, prefix, delimiter) {
                if last_prefix.as_deref() == Some(cp) {
                    continue;
                }
                if page.entries.len() == max {
                    page.truncated = true;
                    break;
                }
                last_prefix = Some(cp.to_string());
                page.entries
                    .push(VersionEntry::CommonPrefix(cp.to_string()));
                continue;
            }
            // Resuming inside this key: skip its versions up to the marker one.
            let mut skipping = at_marker;
            for (i, v) in b.versions_of(key).into_iter().enumerate() {
                if skipping {
                    skipping = marker.version != Some(v.id_text());
                    continue;
                }
                if page.entries.len() == max {
                    page.truncated = true;
                    break 'keys;
                }
                page.entries.push(VersionEntry::Version {
                    key: key.clone(),
                    version: v,
                    latest: i == 0,
                });
            }
        }
        if page.truncated {
            match page.entries.last() {
                Some(VersionEntry::Version { key, version, .. }) => {
                    page.next_key = Some(key.clone());
                    page.next_version = Some(version.id_text().to_string());
                }
                Some(VersionEntry::CommonPrefix(p)) => page.next_key = Some(p.clone()),
                None => {}
            }
        }
        Ok(page)
    }

    /// The version `id` of `bucket/key` (None: `null`); 404 NoSuchVersion if absent.
    pub fn object_version(&self, bucket: &str, key: &str, id: Option<&str>) -> Result<Version> {
        self.bucket(bucket)?
            .version(key, id)
            .ok_or_else(|| no_such_version(key, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    fn obj(version: Option<&str>, mtime: u64) -> Arc<ObjectMeta> {
        Arc::new(ObjectMeta {
            acl: Default::default(),
            size: 1,
            mtime_ms: mtime,
            etag: format!("e{mtime}"),
            content_type: "t".into(),
            meta: Default::default(),
            headers: Default::default(),
            chunks: vec![crate::director::meta::records::ChunkRef {
                hash: Hash::of(&mtime.to_le_bytes()),
                len: 1,
            }],
            manifest: Hash::of(b"m"),
            checksum: None,
            inline: false,
            version: version.map(str::to_string),
            upload_id: None,
            parts: Vec::new(),
        })
    }

    fn ids(b: &Bucket, key: &str) -> Vec<String> {
        b.versions_of(key)
            .iter()
            .map(|v| match v {
                Version::Object(_) => v.id_text().to_string(),
                Version::Marker { .. } => format!("{}*", v.id_text()),
            })
            .collect()
    }

    #[test]
    fn history_over_puts_markers_and_removals() {
        let mut b = Bucket::default();
        b.put_version("k", obj(None, 1));
        b.put_version("k", obj(None, 2));
        assert_eq!(ids(&b, "k"), ["null"]);
        assert!(b.history.is_empty());
        b.put_version("k", obj(Some("v3"), 3));
        b.add_marker("k", Some("m4".into()), 4);
        b.put_version("k", obj(Some("v5"), 5));
        assert_eq!(ids(&b, "k"), ["v5", "m4*", "v3", "null"]);
        b.add_marker("k", Some("m6".into()), 6);
        assert!(b.current_marker("k").is_some());
        assert!(!b.objects.contains_key("k"));
        // Deleting the current marker brings the newest object back.
        assert!(b.remove_version("k", Some("m6")));
        assert_eq!(b.objects["k"].version.as_deref(), Some("v5"));
        // Deleting the current object makes the marker below it current.
        assert!(b.remove_version("k", Some("v5")));
        assert!(b.current_marker("k").is_some());
        assert!(!b.remove_version("k", Some("nope")));
        // Suspended: a null write replaces the older null version.
        b.put_version("k", obj(None, 7));
        assert_eq!(ids(&b, "k"), ["null", "m4*", "v3"]);
        b.add_marker("k", None, 8);
        assert_eq!(ids(&b, "k"), ["null*", "m4*", "v3"]);
        assert_eq!(b.all_objects().count(), 1);
        for id in [None, Some("m4"), Some("v3")] {
            assert!(b.remove_version("k", id));
        }
        assert!(b.history.is_empty() && b.objects.is_empty());
    }

    #[test]
    fn listing_versions_pages_through_every_version() {
        let mut i = Index::default();
        i.replay(
            1,
            &Record::BucketCreate {
                acl: Default::default(),
                bucket: "b".into(),
                created: 0,
                owner: None,
            },
        )
        .unwrap();
        let b = i.buckets.get_mut("b").unwrap();
        b.put_version("a", obj(Some("a1"), 1));
        b.put_version("a", obj(Some("a2"), 2));
        b.add_marker("d/x", Some("d1".into()), 3);
        b.put_version("z", obj(None, 4));
        let mut seen = Vec::new();
        let (mut key, mut ver) = (None::<String>, None::<String>);
        loop {
            let m = VersionMarker {
                key: key.as_deref(),
                version: ver.as_deref(),
            };
            let p = i.list_versions("b", "", "", &m, 2).unwrap();
            for e in &p.entries {
                if let VersionEntry::Version {
                    key,
                    version,
                    latest,
                } = e
                {
                    seen.push(format!("{key}:{}:{latest}", version.id_text()));
                }
            }
            if !p.truncated {
                break;
            }
            (key, ver) = (p.next_key, p.next_version);
        }
        assert_eq!(
            seen,
            ["a:a2:true", "a:a1:false", "d/x:d1:true", "z:null:true"]
        );
        let p = i
            .list_versions("b", "", "/", &VersionMarker::default(), 10)
            .unwrap();
        assert_eq!(p.entries.len(), 4);
        assert!(matches!(&p.entries[2], VersionEntry::CommonPrefix(c) if c == "d/"));
    }

    #[test]
    fn lifecycle_picks_old_noncurrent_versions_and_lone_markers() {
        let mut b = Bucket::default();
        for (i, t) in [10u64, 20, 30, 40].iter().enumerate() {
            b.put_version("k", obj(Some(&format!("v{i}")), *t));
        }
        b.add_marker("gone", Some("m".into()), 5);
        b.lifecycle = vec![LifecycleRule {
            id: String::new(),
            prefix: String::new(),
            enabled: true,
            noncurrent_days: Some(1),
            newer_noncurrent: Some(1),
            expired_marker: true,
        }];
        // Day of 100 ms: at 125, v1 (noncurrent since 30) and v0 (since 20) are due, but
        // v1 is the newest noncurrent one, kept.
        let due = b.expired_versions(125, 100);
        assert_eq!(
            due,
            [
                ("gone".to_string(), Some("m".to_string())),
                ("k".to_string(), Some("v0".to_string()))
            ]
        );
        assert!(
            b.expired_versions(119, 100)
                .iter()
                .all(|(k, _)| k == "gone")
        );
    }

    #[test]
    fn version_ids_parse() {
        let id = new_version_id("b", "k", 1_795_000_000_000);
        assert_eq!(parse_version_id(&id).unwrap(), Some(id.clone()));
        assert_eq!(parse_version_id("null").unwrap(), None);
        for bad in ["", "abc", "NULL", &id.to_uppercase()] {
            assert!(parse_version_id(bad).is_err(), "{bad}");
        }
        assert!(new_version_id("b", "k", 2) > new_version_id("b", "k", 1));
    }

    #[test]
    fn snapshot_keeps_versions_markers_and_settings() {
        let mut b = Bucket {
            versioning: Versioning::Suspended,
            ..Bucket::default()
        };
        b.put_version("k", obj(Some("v1"), 1));
        b.add_marker("k", None, 2);
        let mut v = serde_json::json!({});
        b.versions_to_snapshot(&mut v).unwrap();
        let mut c = Bucket::default();
        c.versions_from_snapshot(&v).unwrap();
        assert_eq!(c.versioning, Versioning::Suspended);
        assert_eq!(c.history, b.history);
        let mut plain = serde_json::json!({});
        Bucket::default().versions_to_snapshot(&mut plain).unwrap();
        assert_eq!(plain, serde_json::json!({}));
    }
}
