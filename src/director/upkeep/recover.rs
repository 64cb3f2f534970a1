//! `dpyfs recover`: rebuilds a director's journal from the manifest chunks on the stores
//! alone, for when the director's disk is lost. The newest version of each key (by the
//! manifest's mtime) wins. Buckets come back with the objects in them (an empty bucket has
//! no manifest and is not recovered), and an object deleted while its manifest was still
//! on the stores (not yet garbage-collected) comes back too.
//!
//! Versioned buckets: every manifest that names a version id is a version, and all of
//! them come back, in mtime order (the newest current), with the bucket's versioning
//! enabled; of the `null` versions only the newest is kept, as a write keeps one.
//! Delete markers have no manifest: a key whose current version was a marker comes back
//! with its newest object version current (nothing is lost; delete it again).

use super::holdings::LIST_PAGE_CHUNKS;
use crate::director::data::store_client::{Listed, StoreClient};
use crate::director::meta::index::{ObjectMeta, valid_bucket_name, validate_key};
use crate::director::meta::journal::{Journal, JournalConfig};
use crate::director::meta::manifest::{self, MANIFEST_MAGIC, Manifest};
use crate::director::meta::records::Record;
use crate::hash::Hash;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Serialize)]
pub struct RecoverReport {
    pub stores: usize,
    pub chunks_listed: u64,
    pub manifests: u64,
    pub objects: u64,
    pub buckets: u64,
    /// Manifests of older versions of a key that a newer one replaced.
    pub older_versions: u64,
    /// Noncurrent versions restored in versioned buckets (besides `objects`).
    pub noncurrent_versions: u64,
    /// Manifests that did not decode or verify.
    pub bad_manifests: u64,
    /// Chunks no store could give the first line of.
    pub unreadable: u64,
}

/// The manifests found, by (bucket, key): (mtime, manifest hash, manifest).
type Found = BTreeMap<(String, String), Vec<(u64, Hash, Manifest)>>;

/// The first chunk of each hash seen, with a store that holds it.
fn list_everything(
    client: &StoreClient,
    urls: &[String],
) -> Result<BTreeMap<Hash, (u64, usize)>, String> {
    let mut all = BTreeMap::new();
    for (i, url) in urls.iter().enumerate() {
        let mut after: Option<Hash> = None;
        loop {
            let page: Vec<Listed> = client
                .list_chunks(url, after.as_ref(), LIST_PAGE_CHUNKS)
                .map_err(|e| format!("cannot list {url}: {e}"))?;
            for l in &page {
                all.entry(l.hash).or_insert((l.size, i));
            }
            if page.len() < LIST_PAGE_CHUNKS {
                break;
            }
            after = page.last().map(|l| l.hash);
        }
    }
    Ok(all)
}

fn read_manifest(client: &StoreClient, url: &str, h: &Hash, size: u64) -> Option<Option<Manifest>> {
    let head = client
        .chunk_prefix(url, h, MANIFEST_MAGIC.len() as u64 + 1)
        .ok()?;
    if head != format!("{MANIFEST_MAGIC}\n").as_bytes() {
        return Some(None);
    }
    let bytes = client.get_chunk(url, h, size).ok()?;
    if Hash::of(&bytes) != *h {
        return None;
    }
    Some(manifest::decode(&bytes))
}

fn usable(m: &Manifest) -> bool {
    valid_bucket_name(&m.bucket)
        && validate_key(&m.key).is_ok()
        && ObjectMeta::from_record(&m.object).is_ok()
        && m.body().is_ok()
}

/// Scans `urls` and writes a journal into `data` (which must not hold one yet).
pub fn recover(
    urls: &[String],
    data: &Path,
    token: Option<String>,
) -> Result<RecoverReport, String> {
    let has_journal = data
        .join("journal")
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let has_snapshot = data
        .read_dir()
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
        })
        .unwrap_or(false);
    if has_journal || has_snapshot {
        return Err(format!(
            "{} already holds a journal; recover into a new, empty directory",
            data.display()
        ));
    }
    let client = StoreClient::new(token);
    let mut rep = RecoverReport {
        stores: urls.len(),
        ..RecoverReport::default()
    };
    let all = list_everything(&client, urls)?;
    rep.chunks_listed = all.len() as u64;
    let mut found: Found = BTreeMap::new();
    for (h, (size, store)) in &all {
        if *size <= MANIFEST_MAGIC.len() as u64 {
            continue;
        }
        let mut m = match read_manifest(&client, &urls[*store], h, *size) {
            None => {
                rep.unreadable += 1;
                continue;
            }
            Some(None) => continue,
            Some(Some(m)) => m,
        };
        // A manifest cannot hold its own name; the journal record does.
        m.object.manifest = h.to_hex();
        if !usable(&m) {
            rep.bad_manifests += 1;
            continue;
        }
        rep.manifests += 1;
        let k = (m.bucket.clone(), m.key.clone());
        found.entry(k).or_default().push((m.object.mtime, *h, m));
    }
    for versions in found.values_mut() {
        rep.older_versions += keep_versions(versions);
    }
    write_journal(&client, urls, data, found, &mut rep)?;
    Ok(rep)
}

/// Sorts one key's manifests oldest first and drops the `null` versions but the newest
/// (later writes replaced them); returns how many were dropped.
fn keep_versions(versions: &mut Vec<(u64, Hash, Manifest)>) -> u64 {
    versions.sort_by_key(|v| (v.0, v.1));
    let newest_null = versions
        .iter()
        .rposition(|(_, _, m)| m.object.version.is_none());
    let before = versions.len();
    let mut i = 0;
    versions.retain(|(_, _, m)| {
        let keep = m.object.version.is_some() || Some(i) == newest_null;
        i += 1;
        keep
    });
    (before - versions.len()) as u64
}

/// A `store_add` for every store of `urls` (each once), from its `/status`.
fn store_records(client: &StoreClient, urls: &[String]) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut ids = Vec::new();
    for url in urls {
        let v = client.status(url).map_err(|e| format!("{url}: {e}"))?;
        let id = v
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_string();
        if id.is_empty() || ids.contains(&id) {
            continue; // the same store given twice, or not a store
        }
        ids.push(id);
        let total = v
            .pointer("/disk/total_bytes")
            .and_then(|t| t.as_u64())
            .unwrap_or(0);
        records.push(Record::StoreAdd {
            id: v
                .get("id")
                .and_then(|i| i.as_str())
                .unwrap_or_default()
                .to_string(),
            url: url.trim_end_matches('/').to_string(),
            zone: v
                .get("zone")
                .and_then(|z| z.as_str())
                .unwrap_or("default")
                .to_string(),
            weight: (total as f64 / (1u64 << 30) as f64)
                .max(crate::director::data::placement::WEIGHT_MIN),
        });
    }
    Ok(records)
}

fn write_journal(
    client: &StoreClient,
    urls: &[String],
    data: &Path,
    found: Found,
    rep: &mut RecoverReport,
) -> Result<(), String> {
    let (journal, _) =
        Journal::open(JournalConfig::new(data.to_path_buf())).map_err(|e| e.to_string())?;
    let mut records = store_records(client, urls)?;
    // Per bucket: the oldest mtime (its creation, as far as anyone can tell) and
    // whether any version names a version id (versioning was enabled).
    let mut buckets: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for ((b, _), versions) in &found {
        for (mtime, _, m) in versions {
            let e = buckets.entry(b.clone()).or_insert((*mtime, false));
            e.0 = e.0.min(*mtime);
            e.1 |= m.object.version.is_some();
        }
    }
    for (b, (created, versioned)) in &buckets {
        // Manifests do not name owners or ACLs: recovered buckets are the admin keys',
        // and private.
        records.push(Record::BucketCreate {
            bucket: b.clone(),
            created: *created,
            owner: None,
            acl: Vec::new(),
        });
        if *versioned {
            records.push(Record::BucketVersioning {
                bucket: b.clone(),
                status: "Enabled".into(),
            });
        }
    }
    for ((bucket, key), versions) in found {
        let n = versions.len() as u64;
        for (_, _, m) in versions {
            records.push(Record::ObjectPut {
                bucket: bucket.clone(),
                key: key.clone(),
                object: m.object,
            });
        }
        rep.objects += 1;
        rep.noncurrent_versions += n.saturating_sub(1);
    }
    rep.buckets = buckets.len() as u64;
    let mut last = 0;
    for r in &records {
        last = journal
            .write(r.to_map().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if last > 0 {
        journal.wait(last).map_err(|e| e.to_string())?;
    }
    Ok(())
}
