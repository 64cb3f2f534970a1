//! The repairer: what the director keeps between repair passes (when the next pass is
//! due, the rate and parallelism of copies, the report of the current or last pass). The
//! passes themselves are in repair.rs.

use serde::Serialize;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Default pause between two periodic repair passes.
pub const REPAIR_INTERVAL_SECS_DEFAULT: u64 = 600;
/// Default copy rate limit of repair.
pub const REPAIR_RATE_BYTES_PER_SEC_DEFAULT: u64 = 32 * 1024 * 1024;
/// Default number of chunks being copied at once.
pub const REPAIR_COPIES_DEFAULT: usize = 4;
/// Lost chunks named in a report, at most.
pub const REPORT_LOST_MAX: usize = 100;

#[derive(Clone, Debug, Default, Serialize)]
pub struct LostChunk {
    pub hash: String,
    /// `bucket/key` of the objects that need it.
    pub objects: Vec<String>,
}

/// Progress and result of the current (or last) pass.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    pub running: bool,
    pub passes: u64,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub chunks_checked: u64,
    pub copies_missing: u64,
    pub copies_made: u64,
    pub bytes_copied: u64,
    pub copies_failed: u64,
    pub surplus_removed: u64,
    /// Chunks left with fewer than N copies after the pass.
    pub under_replicated: u64,
    /// Chunks whose missing copies wait for a down (not yet lost) store.
    pub waiting_for_down_stores: u64,
    pub lost_chunks: u64,
    pub lost: Vec<LostChunk>,
    pub unreferenced_chunks_seen: u64,
    pub stores_not_listed: Vec<String>,
}

pub struct Repairer {
    pub report: Mutex<RepairReport>,
    wanted: Mutex<bool>,
    wake: Condvar,
    pub rate_bytes_per_sec: u64,
    pub copies: usize,
    pub interval: Duration,
}

impl Repairer {
    pub fn new(interval: Duration, rate_bytes_per_sec: u64, copies: usize) -> Repairer {
        Repairer {
            report: Mutex::new(RepairReport::default()),
            wanted: Mutex::new(false),
            wake: Condvar::new(),
            rate_bytes_per_sec,
            copies: copies.max(1),
            interval,
        }
    }

    /// Asks for a pass as soon as possible.
    pub fn request(&self) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    pub fn snapshot(&self) -> RepairReport {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut RepairReport)) {
        f(&mut self.report.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Waits for a request or the interval; true if a pass should run.
    pub(crate) fn wait_for_work(&self) {
        let mut w = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if !*w {
            w = self
                .wake
                .wait_timeout(w, self.interval)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *w = false;
    }
}
