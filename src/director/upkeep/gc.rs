//! Garbage collection: mark and sweep. Chunks on the stores that no object (nor manifest)
//! references and that are older than the grace period are deleted.
//!
//! Uploads in flight are safe by two mechanisms. (1) Every chunk an upload is about to
//! store or reuse is pinned in `InFlight` *before* the upload checks or writes it, and stays
//! pinned until the upload has committed or failed. (2) While a GC pass runs, chunks unpinned
//! during it stay in `pinned_during_gc` until it ends, because the pass marked from an index
//! taken before those objects were committed. The check "not pinned" and the delete happen
//! under the `InFlight` lock, so an upload cannot pin a chunk between GC's check and delete.
//! The grace period (by the chunk file's mtime on its store) is a third line of defence.

use super::holdings::referenced;
use crate::director::Director;
use crate::director::error::Result;
use crate::hash::Hash;
use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub grace_secs: u64,
    /// Unreferenced copies older than the grace period (one per store holding one).
    pub candidates: u64,
    pub candidate_bytes: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Unreferenced copies kept because they are younger than the grace period.
    pub too_young: u64,
    /// Unreferenced copies kept because an upload in flight needs them.
    pub in_flight: u64,
    pub failed: u64,
    pub stores_not_listed: Vec<String>,
}

impl Director {
    /// One mark-and-sweep pass; with `dry_run`, reports what would go and deletes nothing.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        if !self.is_leader() {
            return Err(crate::director::error::DirectorError::S3(
                503,
                "ServiceUnavailable",
                "garbage collection runs on the leading director only; ask it".into(),
            ));
        }
        let _maintenance = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        self.set_gc_running(true);
        let refs = referenced(&self.read_index());
        let now = crate::timefmt::now_ms() / 1000;
        let grace = self.cfg.gc_grace_secs;
        let mut rep = GcReport {
            dry_run,
            grace_secs: grace,
            ..GcReport::default()
        };
        let mut doomed: Vec<(usize, Hash, u64)> = Vec::new();
        let failed = self.scan_holdings(&refs, &mut |_| {}, &mut |store, l| {
            if now.saturating_sub(l.mtime) < grace {
                rep.too_young += 1;
            } else {
                doomed.push((store, l.hash, l.size));
            }
        });
        let stores = self.stores.snapshot();
        rep.stores_not_listed = failed
            .iter()
            .map(|(i, e)| format!("{}: {e}", stores[*i].id))
            .collect();
        for (store, h, size) in doomed {
            let Some(s) = stores.get(store) else { continue };
            // Check and delete under the lock: no upload can pin `h` in between.
            let f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if f.pinned(&h) {
                rep.in_flight += 1;
                continue;
            }
            rep.candidates += 1;
            rep.candidate_bytes += size;
            if dry_run {
                continue;
            }
            match self.stores.client.delete_chunk(&s.url, &h) {
                Ok(()) => {
                    rep.deleted += 1;
                    rep.deleted_bytes += size;
                }
                Err(e) => {
                    rep.failed += 1;
                    log::warn!("gc: deleting {h} from {}: {e}", s.id);
                }
            }
            drop(f);
        }
        self.set_gc_running(false);
        if rep.deleted > 0 || rep.failed > 0 {
            log::info!(
                "gc: deleted {} unreferenced copies ({} bytes), {} failed",
                rep.deleted,
                rep.deleted_bytes,
                rep.failed
            );
        }
        Ok(rep)
    }

    fn set_gc_running(&self, on: bool) {
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        f.gc_running = on;
        f.pinned_during_gc.clear();
    }
}
