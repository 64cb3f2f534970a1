//! Pins: chunks an upload in flight has sent or reused, which garbage collection must not
//! delete although no object references them yet. The data path pins; `upkeep::gc` reads
//! the pins under the same lock before it deletes (see gc.rs for the order of events).

use crate::hash::Hash;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Every pin of the director, with GC's view of pins taken while a pass runs.
#[derive(Default)]
pub struct InFlight {
    pub(crate) counts: HashMap<Hash, u32>,
    pub(crate) gc_running: bool,
    pub(crate) pinned_during_gc: HashSet<Hash>,
}

impl InFlight {
    pub(crate) fn pinned(&self, h: &Hash) -> bool {
        self.counts.contains_key(h) || self.pinned_during_gc.contains(h)
    }
}

/// Chunks one upload has pinned; unpinned when dropped (after commit or failure).
pub struct Pins<'a> {
    inflight: &'a Mutex<InFlight>,
    hashes: Vec<Hash>,
}

impl Pins<'_> {
    pub fn new(inflight: &Mutex<InFlight>) -> Pins<'_> {
        Pins {
            inflight,
            hashes: Vec::new(),
        }
    }

    pub fn pin(&mut self, h: Hash) {
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        *f.counts.entry(h).or_insert(0) += 1;
        self.hashes.push(h);
    }
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut f = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        for h in self.hashes.drain(..) {
            if let Some(c) = f.counts.get_mut(&h) {
                *c -= 1;
                if *c == 0 {
                    f.counts.remove(&h);
                }
            }
            if f.gc_running {
                f.pinned_during_gc.insert(h);
            }
        }
    }
}
