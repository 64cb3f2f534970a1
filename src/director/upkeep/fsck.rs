//! fsck: does every object have N verified copies of every chunk (and of its manifest)?
//! Copies are counted from the stores' listings (right name, right size: the stores verify
//! content on every read and in their scrubbers); with `deep`, every copy is also fetched
//! and re-hashed by the director.

use super::holdings::{referenced, right_size};
use crate::director::Director;
use crate::director::meta::index::Index;
use crate::hash::Hash;
use serde::Serialize;
use std::collections::HashMap;

/// Objects named in a report, at most, per category.
pub const FSCK_REPORT_OBJECTS_MAX: usize = 1000;

#[derive(Clone, Debug, Serialize)]
pub struct ChunkCopies {
    pub hash: String,
    pub copies: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ObjectProblem {
    pub object: String,
    pub chunks: Vec<ChunkCopies>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    pub ok: bool,
    pub deep: bool,
    pub replicas: usize,
    pub objects: u64,
    /// Multipart uploads in progress whose parts were checked.
    pub uploads: u64,
    pub chunks: u64,
    pub copies_verified: u64,
    pub under_replicated_objects: u64,
    pub lost_objects: u64,
    pub under_replicated: Vec<ObjectProblem>,
    pub lost: Vec<ObjectProblem>,
    pub stores_not_listed: Vec<String>,
}

/// What the stores hold of the referenced chunks.
struct CopyCount {
    /// The chunks with fewer than N verified copies, and how many they have.
    short: HashMap<Hash, usize>,
    copies_verified: u64,
    /// Stores whose listing failed, with the reason.
    stores_not_listed: Vec<String>,
}

impl Director {
    /// Counts the copies of every referenced chunk, then names the objects and uploads
    /// that have a chunk short of N copies.
    pub fn fsck(&self, deep: bool) -> FsckReport {
        let refs = referenced(&self.read_index());
        let count = self.count_referenced(&refs, deep);
        let mut rep = FsckReport {
            deep,
            replicas: self.cfg.replicas,
            chunks: refs.len() as u64,
            copies_verified: count.copies_verified,
            stores_not_listed: count.stores_not_listed,
            ..FsckReport::default()
        };
        let idx = self.read_index();
        for (is_upload, name, hashes) in acknowledged(&idx) {
            if is_upload {
                rep.uploads += 1;
            } else {
                rep.objects += 1;
            }
            rep.note(name, &hashes, &count.short);
        }
        rep.ok = rep.lost_objects == 0 && rep.under_replicated_objects == 0;
        rep
    }

    /// Copies of each of `refs` from the stores' listings (right size; re-hashed here
    /// too when `deep`), with a second look at every chunk that comes out short.
    fn count_referenced(&self, refs: &[(Hash, u32)], deep: bool) -> CopyCount {
        let n = self.cfg.replicas;
        let stores = self.stores.snapshot();
        let mut short: HashMap<Hash, usize> = HashMap::new();
        let mut verified = 0u64;
        let failed = self.scan_holdings(
            refs,
            &mut |seen| {
                let copies = seen
                    .holders
                    .iter()
                    .filter(|(i, size)| {
                        right_size(seen.len, *size)
                            && (!deep || self.verify_copy(&stores[*i].url, &seen.hash, seen.len))
                    })
                    .count();
                verified += copies as u64;
                if copies < n {
                    short.insert(seen.hash, copies);
                }
            },
            &mut |_, _| {},
        );
        // The listings are not one atomic picture: a repair pass moving a chunk between two
        // stores can make it look short. Every short chunk gets a second look, asking each
        // store directly.
        short.retain(|h, copies| {
            *copies = self.count_copies(h, deep);
            *copies < n
        });
        CopyCount {
            short,
            copies_verified: verified,
            stores_not_listed: failed
                .iter()
                .map(|(i, e)| format!("{}: {e}", stores[*i].id))
                .collect(),
        }
    }

    /// Copies of `h` on the stores that are up, asked one by one (verified by the store
    /// with HEAD ?verify=1, or fetched and re-hashed here when `deep`).
    fn count_copies(&self, h: &Hash, deep: bool) -> usize {
        self.stores
            .snapshot()
            .iter()
            .filter(|s| s.up)
            .filter(|s| {
                if deep {
                    self.verify_copy(&s.url, h, 0)
                } else {
                    matches!(self.stores.client.head_chunk(&s.url, h), Ok(Some(_)))
                }
            })
            .count()
    }

    /// Fetches one copy and checks its hash (and length, when known). A copy that does not
    /// verify is reported to its store, which re-hashes and quarantines it: its listing then
    /// no longer shows it, so the repair pass that follows a deep check re-creates it
    /// instead of counting a rotten copy as good until the next scrub (issue 18, item 6).
    fn verify_copy(&self, url: &str, h: &Hash, len: u32) -> bool {
        let max = if len == 0 {
            crate::store::CHUNK_BYTES_MAX
        } else {
            u64::from(len)
        };
        match self.stores.client.get_chunk(url, h, max) {
            Ok(b) if Hash::of(&b) == *h && (len == 0 || b.len() == len as usize) => true,
            Ok(_) => {
                self.report_bad_copy(url, h);
                false
            }
            Err(_) => false,
        }
    }
}

/// Everything acknowledged and the chunks it needs, as (is an upload, name, chunks):
/// object versions (with their manifests), then multipart uploads in progress (named
/// `bucket/key?uploadId=ID`), whose parts are acknowledged data too.
fn acknowledged(idx: &Index) -> impl Iterator<Item = (bool, String, Vec<Hash>)> + '_ {
    let objects = idx.buckets.iter().flat_map(|(bname, b)| {
        // Noncurrent versions are acknowledged data too, named `bucket/key?versionId=ID`.
        b.all_objects().map(move |(k, o)| {
            let hashes: Vec<Hash> = o
                .chunks
                .iter()
                .map(|c| c.hash)
                .chain([o.manifest])
                .collect();
            let name = match (&o.version, b.objects.get(k)) {
                (Some(v), Some(cur)) if cur.version.as_ref() == Some(v) => format!("{bname}/{k}"),
                (None, Some(cur)) if cur.version.is_none() => format!("{bname}/{k}"),
                (v, _) => format!("{bname}/{k}?versionId={}", v.as_deref().unwrap_or("null")),
            };
            (false, name, hashes)
        })
    });
    let uploads = idx.uploads.iter().map(|((b, k, id), u)| {
        let hashes: Vec<Hash> = u
            .parts
            .values()
            .flat_map(|p| p.chunks.iter().map(|c| c.hash))
            .collect();
        (true, format!("{b}/{k}?uploadId={id}"), hashes)
    });
    objects.chain(uploads)
}

impl FsckReport {
    /// Counts `name` as lost (a chunk without a copy) or under-replicated when one of
    /// its chunks is short, and names it while the list has room.
    fn note(&mut self, name: String, hashes: &[Hash], short: &HashMap<Hash, usize>) {
        let bad: Vec<ChunkCopies> = hashes
            .iter()
            .filter_map(|h| {
                short.get(h).map(|c| ChunkCopies {
                    hash: h.to_hex(),
                    copies: *c,
                })
            })
            .collect();
        if bad.is_empty() {
            return;
        }
        let lost = bad.iter().any(|c| c.copies == 0);
        let (count, list) = if lost {
            (&mut self.lost_objects, &mut self.lost)
        } else {
            (
                &mut self.under_replicated_objects,
                &mut self.under_replicated,
            )
        };
        *count += 1;
        if list.len() < FSCK_REPORT_OBJECTS_MAX {
            list.push(ObjectProblem {
                object: name,
                chunks: bad,
            });
        }
    }
}
