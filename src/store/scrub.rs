//! The scrubber: re-reads every chunk at a bounded rate, quarantines copies that no longer
//! hash to their name, counts what it found, and starts over.

use super::engine::{Store, hash_reader};
use crate::hash::Hash;
use std::fs::File;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Progress of the scrubber, as `/status` and `/metrics` report it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ScrubState {
    pub enabled: bool,
    pub rate_bytes_per_sec: u64,
    /// Passes completed since start.
    pub passes: u64,
    /// Chunks and bytes checked in the current pass.
    pub pass_chunks: u64,
    pub pass_bytes: u64,
    /// Totals since start.
    pub checked_chunks: u64,
    pub checked_bytes: u64,
    pub corrupt_found: u64,
    /// Unix seconds when the last full pass ended, 0 if none yet.
    pub last_pass_end: u64,
}

pub struct Scrubber {
    pub state: Mutex<ScrubState>,
}

impl Scrubber {
    pub fn new(rate_bytes_per_sec: u64) -> Scrubber {
        Scrubber {
            state: Mutex::new(ScrubState {
                enabled: rate_bytes_per_sec > 0,
                rate_bytes_per_sec,
                ..ScrubState::default()
            }),
        }
    }

    pub fn snapshot(&self) -> ScrubState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut ScrubState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Starts the background thread (does nothing when the rate is 0).
    pub fn spawn(self: &Arc<Self>, store: Arc<Store>, pause: Duration) {
        let rate = self.snapshot().rate_bytes_per_sec;
        if rate == 0 {
            log::info!("scrubber disabled (--scrub-rate 0)");
            return;
        }
        let me = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("scrubber".into())
            .spawn(move || {
                loop {
                    me.pass(&store, rate);
                    thread::sleep(pause);
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the scrubber thread: {e}");
        }
    }

    /// One pass over every chunk, sleeping as needed to stay under `rate` bytes/s.
    fn pass(&self, store: &Store, rate: u64) {
        self.update(|s| {
            s.pass_chunks = 0;
            s.pass_bytes = 0;
        });
        let start = Instant::now();
        let mut done_bytes = 0u64;
        let mut visit = |h: Hash, path: &std::path::Path| {
            let n = self.check_one(store, &h, path);
            done_bytes += n;
            // Throttle: sleep until the bytes read so far fit in the elapsed time.
            let due = Duration::from_secs_f64(done_bytes as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
            true
        };
        if let Err(e) = store.walk(None, &mut visit) {
            log::warn!("scrub pass stopped early: {e}");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.update(|s| {
            s.passes += 1;
            s.last_pass_end = now;
        });
        log::debug!(
            "scrub pass finished in {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }

    /// Verifies one chunk; returns the bytes read.
    fn check_one(&self, store: &Store, h: &Hash, path: &std::path::Path) -> u64 {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(_) => return 0, // deleted meanwhile
        };
        let (len, actual) = match hash_reader(&mut f) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("scrub: cannot read {}: {e}", path.display());
                return 0;
            }
        };
        let corrupt = actual != *h;
        if corrupt {
            log::warn!("scrub: chunk {h} hashes to {actual}: moving it to quarantine");
            if let Err(e) = store.quarantine(h, &f) {
                log::error!("scrub: cannot quarantine {h}: {e}");
            }
        }
        self.update(|s| {
            s.pass_chunks += 1;
            s.pass_bytes += len;
            s.checked_chunks += 1;
            s.checked_bytes += len;
            s.corrupt_found += u64::from(corrupt);
        });
        len
    }
}
