//! Lifecycle rules applied: the leading director looks through every bucket with rules
//! a few times a day and journals the removal of each version they let go (noncurrent
//! versions past their days, beyond the newest ones kept; delete markers left alone).
//! The removals are ordinary `object_delete` records with a version, so followers,
//! replay and snapshots need nothing new; garbage collection then frees the chunks no
//! version refers to any more.

use crate::director::Director;
use crate::director::meta::records::Record;

/// Passes per lifecycle day: a version goes at most 1/24 of a day after it is due.
pub const PASSES_PER_DAY: u64 = 24;
/// Most removals one pass journals: a bucket with millions of due versions is worked
/// off over several passes instead of one huge batch.
pub const REMOVALS_PER_PASS_MAX: usize = 10_000;

impl Director {
    /// One pass: journals the removal of every version the rules let go now; returns
    /// how many were removed.
    pub fn apply_lifecycle(&self) -> usize {
        let now = crate::timefmt::now_ms();
        let day_ms = self.cfg.lifecycle_day_secs.saturating_mul(1000);
        let mut due = Vec::new();
        {
            let idx = self.read_index();
            'buckets: for (name, b) in &idx.buckets {
                for (key, version) in b.expired_versions(now, day_ms) {
                    if due.len() == REMOVALS_PER_PASS_MAX {
                        break 'buckets;
                    }
                    due.push(Record::ObjectDelete {
                        bucket: name.clone(),
                        key,
                        version,
                    });
                }
            }
        }
        if due.is_empty() {
            return 0;
        }
        let mut removed = 0;
        for (r, res) in due.iter().zip(self.commit_many(&due)) {
            match res {
                Ok(_) => removed += 1,
                Err(e) => log::warn!("lifecycle: {r:?} not journaled: {e}"),
            }
        }
        log::info!("lifecycle: {removed} version(s) removed by the buckets' rules");
        removed
    }

    /// The lifecycle thread's loop: a pass every 1/24 of a lifecycle day, on the leader
    /// only (the records it journals reach the other directors through the log).
    pub fn lifecycle_loop(&self) {
        let secs = (self.cfg.lifecycle_day_secs / PASSES_PER_DAY).max(1);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            if self.is_leader() {
                self.apply_lifecycle();
            }
        }
    }
}
