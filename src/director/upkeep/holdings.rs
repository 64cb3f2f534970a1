//! What the stores actually hold, compared with what the index references: one sorted
//! merge of every reachable store's listing (`GET /chunks?detail=1`, page by page) against
//! the sorted list of referenced chunks. Repair, garbage collection, fsck and store
//! removal all walk this merge; memory is the referenced list (36 bytes per chunk) plus one
//! listing page per store.

use crate::director::Director;
use crate::director::data::store_client::{Listed, StoreClient};
use crate::director::meta::index::Index;
use crate::hash::Hash;

/// Names asked for per listing call.
pub const LIST_PAGE_CHUNKS: usize = 10_000;

/// Every chunk the namespace references (object versions, their manifests, and the parts of
/// uploads in progress), sorted and unique: (hash, length).
pub fn referenced(idx: &Index) -> Vec<(Hash, u32)> {
    let mut v: Vec<(Hash, u32)> = Vec::new();
    for b in idx.buckets.values() {
        // Every version: a chunk is live while any version refers to it.
        for (_, o) in b.all_objects() {
            v.extend(o.chunks.iter().map(|c| (c.hash, c.len)));
            // Manifest lengths are not kept; 0 means "any length".
            v.push((o.manifest, 0));
        }
    }
    // Parts of multipart uploads in progress are acknowledged data: kept, repaired and
    // checked like objects' chunks.
    for u in idx.uploads.values() {
        for p in u.parts.values() {
            v.extend(p.chunks.iter().map(|c| (c.hash, c.len)));
        }
    }
    v.sort_unstable_by_key(|a| a.0);
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// A store's listing, read page by page.
pub struct Cursor<'a> {
    client: &'a StoreClient,
    pub store: usize,
    pub url: String,
    page: Vec<Listed>,
    pos: usize,
    done: bool,
    /// Set when a listing call failed: the store's holdings are unknown for this pass.
    pub failed: Option<String>,
}

impl<'a> Cursor<'a> {
    pub fn new(client: &'a StoreClient, store: usize, url: &str) -> Cursor<'a> {
        Cursor {
            client,
            store,
            url: url.to_string(),
            page: Vec::new(),
            pos: 0,
            done: false,
            failed: None,
        }
    }

    /// The next listed chunk, without consuming it.
    pub fn peek(&mut self) -> Option<Listed> {
        if self.pos == self.page.len() && !self.done {
            let after = self.page.last().map(|l| l.hash);
            match self
                .client
                .list_chunks(&self.url, after.as_ref(), LIST_PAGE_CHUNKS)
            {
                Ok(p) => {
                    self.done = p.len() < LIST_PAGE_CHUNKS;
                    self.page = p;
                    self.pos = 0;
                }
                Err(e) => {
                    self.failed = Some(e.to_string());
                    self.done = true;
                    self.page.clear();
                    self.pos = 0;
                }
            }
        }
        self.page.get(self.pos).copied()
    }

    pub fn advance(&mut self) {
        self.pos += 1;
    }
}

/// What one referenced chunk looks like across the stores.
pub struct Seen {
    pub hash: Hash,
    pub len: u32,
    /// Stores (indices) that list it, with the size they report.
    pub holders: Vec<(usize, u64)>,
}

impl Director {
    /// Walks the merge: `on_ref` for every referenced chunk (with its holders among the
    /// listed stores), `on_unref` for every listed chunk nothing references. Returns the
    /// stores whose listing failed (their holdings are unknown).
    pub fn scan_holdings(
        &self,
        refs: &[(Hash, u32)],
        on_ref: &mut dyn FnMut(&Seen),
        on_unref: &mut dyn FnMut(usize, &Listed),
    ) -> Vec<(usize, String)> {
        let stores = self.stores.snapshot();
        let mut cursors: Vec<Cursor<'_>> = stores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.up)
            .map(|(i, s)| Cursor::new(&self.stores.client, i, &s.url))
            .collect();
        let drain_below =
            |c: &mut Cursor<'_>, bound: Option<&Hash>, f: &mut dyn FnMut(usize, &Listed)| {
                while let Some(l) = c.peek() {
                    if bound.is_some_and(|b| l.hash >= *b) {
                        break;
                    }
                    f(c.store, &l);
                    c.advance();
                }
            };
        for (hash, len) in refs {
            let mut seen = Seen {
                hash: *hash,
                len: *len,
                holders: Vec::new(),
            };
            for c in cursors.iter_mut() {
                drain_below(c, Some(hash), on_unref);
                if let Some(l) = c.peek().filter(|l| l.hash == *hash) {
                    seen.holders.push((c.store, l.size));
                    c.advance();
                }
            }
            on_ref(&seen);
        }
        for c in cursors.iter_mut() {
            drain_below(c, None, on_unref);
        }
        cursors
            .into_iter()
            .filter_map(|c| c.failed.map(|f| (c.store, f)))
            .collect()
    }
}

/// Whether a holder's copy has the right length (0 means any: manifests).
pub fn right_size(len: u32, size: u64) -> bool {
    len == 0 || u64::from(len) == size
}
