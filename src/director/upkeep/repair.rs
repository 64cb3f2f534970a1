//! Repair and rebalance: a background pass compares what each store holds with what
//! placement wants for every referenced chunk, copies missing copies from a healthy one
//! (verified on the way), and removes surplus copies only once every wanted copy exists.
//!
//! "Wanted" for a chunk = the first N stores of its placement order (draining stores are
//! never wanted) that are not lost. A store that is down but not yet lost is still wanted:
//! nothing is copied elsewhere for it, so a reboot does not start a storm of copies. Once
//! it is lost (down longer than `--lost-after`), the next store in order is wanted instead.

use super::holdings::{Seen, referenced, right_size};
use super::repairer::{LostChunk, REPORT_LOST_MAX, RepairReport};
use crate::director::Director;
use crate::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::{Duration, Instant};

/// One chunk's work, handed to a copy worker.
struct Job {
    hash: Hash,
    len: u32,
    /// Holders (store index) of good copies.
    sources: Vec<usize>,
    /// Wanted stores (index, url) that lack it.
    missing: Vec<(usize, String)>,
    /// Holders that are not wanted: removed once every wanted copy exists.
    surplus: Vec<(usize, String)>,
    /// All wanted stores are up (so their copies can be confirmed).
    wanted_all_up: bool,
}

impl Director {
    /// The background loop: a repair pass (then garbage collection) on request, after
    /// membership changes, and every `interval`.
    pub fn repair_loop(&self) {
        loop {
            self.repairer.wait_for_work();
            if !self.is_leader() {
                // Passes run on the leader only; a new leader's poller starts its own.
                continue;
            }
            self.repair_pass();
            if let Err(e) = self.gc(false) {
                log::warn!("garbage collection: {e}");
            }
        }
    }

    /// One full repair pass.
    pub fn repair_pass(&self) {
        // Repair and GC never overlap: a pass works from the references it read at its
        // start, and could otherwise copy back a chunk that GC has just collected.
        let _maintenance = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let r = &self.repairer;
        r.update(|rep| {
            *rep = RepairReport {
                running: true,
                passes: rep.passes,
                started_ms: crate::timefmt::now_ms(),
                ..RepairReport::default()
            }
        });
        let refs = referenced(&self.read_index());
        let (tx, rx) = sync_channel::<Job>(r.copies * 2);
        let rx = Mutex::new(rx);
        let throttle = Throttle::new(r.rate_bytes_per_sec);
        let failed = thread::scope(|sc| {
            for _ in 0..r.copies {
                sc.spawn(|| {
                    loop {
                        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        };
                        self.repair_chunk(&job, &throttle);
                    }
                });
            }
            let mut on_ref = |seen: &Seen| {
                if let Some(job) = self.plan(seen) {
                    let _ = tx.send(job);
                }
            };
            let mut unref = 0u64;
            let failed = self.scan_holdings(&refs, &mut on_ref, &mut |_, _| unref += 1);
            r.update(|rep| rep.unreferenced_chunks_seen = unref);
            drop(tx);
            failed
        });
        self.name_lost_objects();
        let stores = self.stores.snapshot();
        r.update(|rep| {
            rep.stores_not_listed = failed
                .iter()
                .map(|(i, e)| format!("{}: {e}", stores.get(*i).map_or("?", |s| &s.id)))
                .collect();
            rep.running = false;
            rep.passes += 1;
            rep.finished_ms = crate::timefmt::now_ms();
        });
        let rep = r.snapshot();
        log::info!(
            "repair pass: {} chunks checked, {} copies made ({} bytes), {} surplus removed, {} under-replicated, {} lost",
            rep.chunks_checked,
            rep.copies_made,
            rep.bytes_copied,
            rep.surplus_removed,
            rep.under_replicated,
            rep.lost_chunks
        );
    }

    /// Decides what one chunk needs; None when it is fine as it is.
    fn plan(&self, seen: &Seen) -> Option<Job> {
        let n = self.cfg.replicas;
        let order = self.stores.placement(&seen.hash);
        let wanted: Vec<_> = order.iter().filter(|t| !t.lost).take(n).collect();
        let good: Vec<usize> = seen
            .holders
            .iter()
            .filter(|(_, size)| right_size(seen.len, *size))
            .map(|(i, _)| *i)
            .collect();
        let missing: Vec<(usize, String)> = wanted
            .iter()
            .filter(|t| t.up && !good.contains(&t.index))
            .map(|t| (t.index, t.url.clone()))
            .collect();
        let waiting = wanted.iter().any(|t| !t.up);
        let stores = self.stores.snapshot();
        let surplus: Vec<(usize, String)> = good
            .iter()
            .filter(|i| !wanted.iter().any(|t| t.index == **i))
            .filter_map(|i| stores.get(*i).map(|s| (*i, s.url.clone())))
            .collect();
        self.repairer.update(|rep| {
            rep.chunks_checked += 1;
            rep.copies_missing += missing.len() as u64;
            rep.waiting_for_down_stores += u64::from(waiting);
        });
        if good.is_empty() {
            self.repairer.update(|rep| {
                rep.lost_chunks += 1;
                rep.under_replicated += 1;
                if rep.lost.len() < REPORT_LOST_MAX {
                    rep.lost.push(LostChunk {
                        hash: seen.hash.to_hex(),
                        objects: Vec::new(),
                    });
                }
            });
            return None;
        }
        if missing.is_empty() && surplus.is_empty() {
            if good.len() < n {
                self.repairer.update(|rep| rep.under_replicated += 1);
            }
            return None;
        }
        Some(Job {
            hash: seen.hash,
            len: seen.len,
            sources: good,
            missing,
            surplus,
            wanted_all_up: !waiting && wanted.len() == n,
        })
    }

    /// Copies a chunk to the wanted stores that lack it, then removes surplus copies if
    /// (and only if) every wanted copy is now in place.
    fn repair_chunk(&self, job: &Job, throttle: &Throttle) {
        let mut placed = 0;
        if !job.missing.is_empty() {
            match self.fetch_from(&job.hash, job.len, &job.sources) {
                Some(data) => {
                    for (_, url) in &job.missing {
                        throttle.wait(data.len() as u64);
                        match self.stores.client.put_chunk(url, &job.hash, &data) {
                            Ok(_) => {
                                placed += 1;
                                self.repairer.update(|r| {
                                    r.copies_made += 1;
                                    r.bytes_copied += data.len() as u64;
                                });
                            }
                            Err(e) => {
                                log::warn!("repair: copy of {} to {url} failed: {e}", job.hash);
                                self.repairer.update(|r| r.copies_failed += 1);
                            }
                        }
                    }
                }
                None => self
                    .repairer
                    .update(|r| r.copies_failed += job.missing.len() as u64),
            }
        }
        if job.sources.len() + placed < self.cfg.replicas {
            self.repairer.update(|r| r.under_replicated += 1);
        }
        // Surplus copies go only when every wanted store is up and holds its copy.
        if placed < job.missing.len() || !job.wanted_all_up {
            return;
        }
        for (_, url) in &job.surplus {
            match self.stores.client.delete_chunk(url, &job.hash) {
                Ok(()) => self.repairer.update(|r| r.surplus_removed += 1),
                Err(e) => log::warn!("repair: removing surplus {} from {url}: {e}", job.hash),
            }
        }
    }

    /// A verified copy from one of `sources`.
    fn fetch_from(&self, h: &Hash, len: u32, sources: &[usize]) -> Option<Vec<u8>> {
        let stores = self.stores.snapshot();
        for i in sources {
            let Some(s) = stores.get(*i) else { continue };
            let max = if len == 0 {
                crate::store::CHUNK_BYTES_MAX
            } else {
                u64::from(len)
            };
            match self.stores.client.get_chunk(&s.url, h, max) {
                Ok(b) if Hash::of(&b) == *h => return Some(b),
                Ok(_) => {
                    self.counters.bad_copies.fetch_add(1, Ordering::Relaxed);
                    log::warn!("repair: copy of {h} on {} does not verify", s.id);
                    self.report_bad_copy(&s.url, h);
                }
                Err(e) => log::warn!("repair: reading {h} from {}: {e}", s.id),
            }
        }
        None
    }

    /// Fills in which objects each lost chunk belongs to.
    fn name_lost_objects(&self) {
        let mut rep = self
            .repairer
            .report
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if rep.lost.is_empty() {
            return;
        }
        let idx = self.read_index();
        for lost in rep.lost.iter_mut() {
            for (bname, b) in &idx.buckets {
                for (k, o) in b.all_objects() {
                    let hit = o.manifest.to_hex() == lost.hash
                        || o.chunks.iter().any(|c| c.hash.to_hex() == lost.hash);
                    if hit && lost.objects.len() < REPORT_LOST_MAX {
                        lost.objects.push(format!("{bname}/{k}"));
                    }
                }
            }
            for ((b, k, id), u) in &idx.uploads {
                let hit = u
                    .parts
                    .values()
                    .any(|p| p.chunks.iter().any(|c| c.hash.to_hex() == lost.hash));
                if hit && lost.objects.len() < REPORT_LOST_MAX {
                    lost.objects.push(format!("{b}/{k}?uploadId={id}"));
                }
            }
        }
    }
}

/// A shared byte-rate limit: callers sleep until their bytes fit the rate since start.
pub struct Throttle {
    rate: u64,
    start: Instant,
    spent: Mutex<u64>,
}

impl Throttle {
    pub fn new(rate_bytes_per_sec: u64) -> Throttle {
        Throttle {
            rate: rate_bytes_per_sec,
            start: Instant::now(),
            spent: Mutex::new(0),
        }
    }

    pub fn wait(&self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        let due = {
            let mut s = self.spent.lock().unwrap_or_else(|p| p.into_inner());
            *s += bytes;
            Duration::from_secs_f64(*s as f64 / self.rate as f64)
        };
        if let Some(w) = due.checked_sub(self.start.elapsed()) {
            thread::sleep(w);
        }
    }
}
