//! The director: the cluster's front door. It knows buckets, keys, objects, chunk lists,
//! placement and the journal; it knows a store only through its HTTP API (`client`).

pub mod admin;
pub mod data;
pub mod error;
pub mod meta;
pub mod s3;
pub mod serve;
pub mod upkeep;

use crate::chunker::Chunking;
use crate::http::ServerConfig;
use data::stores::Stores;
use error::{DirectorError, Result};
use meta::index::{Index, Prepared};
use meta::journal::{Journal, JournalConfig};
use meta::records::Record;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Default number of copies of every chunk.
pub const REPLICAS_DEFAULT: usize = 2;
/// Default age an unreferenced chunk must reach before it is deleted.
pub const GC_GRACE_SECS_DEFAULT: u64 = 3600;
/// Journal size that triggers a snapshot and compaction.
pub const COMPACT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// How a chunk's N copies reach the stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// The director sends the chunk once, to the first store, which streams it on to the
    /// next while writing its own copy (`store::forward`): the director's link carries
    /// each byte once instead of N times. Chunks under `data::scatter::CHAIN_BYTES_MIN`, and copies a
    /// chain did not confirm, go directly.
    Chain,
    /// The director sends every copy itself, in parallel (`--replication fanout`).
    FanOut,
}

#[derive(Clone, Debug)]
pub struct DirectorConfig {
    pub listen: String,
    pub data: PathBuf,
    pub stores: Vec<String>,
    pub replicas: usize,
    pub chunking: Chunking,
    pub store_token_file: Option<PathBuf>,
    pub compact_bytes: u64,
    /// A store down this long is lost: its chunks are re-replicated elsewhere.
    pub lost_after: Duration,
    pub repair_interval: Duration,
    pub repair_rate_bytes_per_sec: u64,
    pub repair_copies: usize,
    pub gc_grace_secs: u64,
    /// Smallest multipart part except the last (`--multipart-min-part`).
    pub multipart_min_part_bytes: u64,
    /// Uploads with no activity this long are aborted (`--multipart-max-age`); 0: never.
    pub multipart_max_age_secs: u64,
    pub http: ServerConfig,
    /// The keys file (`--keys`); None serves every request unsigned.
    pub keys: Option<PathBuf>,
    /// How a new chunk's copies reach the stores (`--replication`).
    pub replication: Replication,
}

impl DirectorConfig {
    pub fn new(listen: &str, data: PathBuf, stores: Vec<String>) -> DirectorConfig {
        DirectorConfig {
            listen: listen.to_string(),
            data,
            stores,
            replicas: REPLICAS_DEFAULT,
            chunking: Chunking::default_cdc(),
            store_token_file: None,
            compact_bytes: COMPACT_BYTES_DEFAULT,
            lost_after: Duration::from_secs(data::stores::LOST_AFTER_SECS_DEFAULT),
            repair_interval: Duration::from_secs(upkeep::repairer::REPAIR_INTERVAL_SECS_DEFAULT),
            repair_rate_bytes_per_sec: upkeep::repairer::REPAIR_RATE_BYTES_PER_SEC_DEFAULT,
            repair_copies: upkeep::repairer::REPAIR_COPIES_DEFAULT,
            gc_grace_secs: GC_GRACE_SECS_DEFAULT,
            multipart_min_part_bytes: meta::uploads::MIN_PART_BYTES_DEFAULT,
            multipart_max_age_secs: meta::uploads::MAX_AGE_SECS_DEFAULT,
            http: ServerConfig::default(),
            keys: None,
            replication: Replication::Chain,
        }
    }
}

/// Running totals for `/_dpyfs/status` and `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub chunks_written: AtomicU64,
    pub chunks_deduplicated: AtomicU64,
    pub bad_copies: AtomicU64,
    pub missing_copies: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

pub struct Director {
    pub cfg: DirectorConfig,
    /// The namespace. Mutations take the write lock around validate + journal write +
    /// apply, so records are applied in seq order; the fsync wait happens after the lock
    /// is released, so concurrent writers share fsyncs (group commit).
    pub index: RwLock<Index>,
    pub journal: Journal,
    pub stores: Arc<Stores>,
    pub counters: Counters,
    pub repairer: upkeep::repairer::Repairer,
    /// Chunks of uploads in flight, which garbage collection must not touch.
    pub inflight: std::sync::Mutex<data::pins::InFlight>,
    /// Held by a repair pass or a GC pass: one at a time.
    maintenance: std::sync::Mutex<()>,
    compacting: AtomicBool,
    _dir_lock: File,
}

fn lock_data_dir(dir: &std::path::Path) -> Result<File> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DirectorError::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let p = dir.join(".lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| DirectorError::Internal(format!("cannot open {}: {e}", p.display())))?;
    crate::sys::try_lock_exclusive(&f).map_err(|_| {
        DirectorError::Internal(format!(
            "{} is in use by another dpyfs-director; stop it first",
            dir.display()
        ))
    })?;
    Ok(f)
}

impl Director {
    /// Opens the data directory and replays the journal into the index.
    pub fn open(cfg: DirectorConfig) -> Result<Director> {
        let dir_lock = lock_data_dir(&cfg.data)?;
        let (journal, replay) = Journal::open(JournalConfig::new(cfg.data.clone()))?;
        for w in &replay.warnings {
            log::warn!("journal: {w}");
        }
        let mut index = match &replay.snapshot {
            Some(state) => Index::from_snapshot(state).map_err(|e| {
                DirectorError::Internal(format!(
                    "snapshot {}: {e}",
                    cfg.data
                        .join(format!("snapshot-{:020}.json", replay.snapshot_seq))
                        .display()
                ))
            })?,
            None => Index::default(),
        };
        let n = replay.records.len();
        for m in replay.records {
            let (seq, rec) = Record::from_map(m).map_err(|e| {
                DirectorError::Internal(format!("journal in {}: {e}", cfg.data.display()))
            })?;
            index.replay(seq, &rec).map_err(|e| {
                DirectorError::Internal(format!("journal in {}: {e}", cfg.data.display()))
            })?;
        }
        log::info!(
            "journal replayed: snapshot at seq {}, {n} records after it, {} buckets, {} objects",
            replay.snapshot_seq,
            index.buckets.len(),
            index.object_count()
        );
        let token = cfg
            .store_token_file
            .as_deref()
            .map(crate::store::read_token)
            .transpose()
            .map_err(|e| DirectorError::Internal(e.to_string()))?;
        let stores = Arc::new(Stores::new(
            data::store_client::StoreClient::new(token),
            cfg.lost_after,
        ));
        stores.sync_members(&index.members);
        stores.add_pending(&cfg.stores);
        let repairer = upkeep::repairer::Repairer::new(
            cfg.repair_interval,
            cfg.repair_rate_bytes_per_sec,
            cfg.repair_copies,
        );
        Ok(Director {
            cfg,
            index: RwLock::new(index),
            journal,
            stores,
            counters: Counters::default(),
            repairer,
            inflight: std::sync::Mutex::new(data::pins::InFlight::default()),
            maintenance: std::sync::Mutex::new(()),
            compacting: AtomicBool::new(false),
            _dir_lock: dir_lock,
        })
    }

    /// Pins for one upload's chunks, released when dropped.
    pub fn pins(&self) -> data::pins::Pins<'_> {
        data::pins::Pins::new(&self.inflight)
    }

    pub fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates, journals and applies one record; returns once it is durable.
    pub fn commit(&self, rec: &Record) -> Result<u64> {
        self.commit_checked(rec, |_| Ok(()))
    }

    /// `commit`, after `check` has passed on the index as it is when the record applies
    /// (under the same lock, so no other commit comes between): conditional writes.
    pub fn commit_checked(
        &self,
        rec: &Record,
        check: impl FnOnce(&Index) -> Result<()>,
    ) -> Result<u64> {
        let p = Prepared::new(rec).map_err(DirectorError::Internal)?;
        self.commit_prepared(&p, check)
    }

    /// `commit_checked` of a record whose in-memory forms were made (outside the lock)
    /// by its caller, who keeps them: a PUT answers with the object the index now holds.
    pub fn commit_prepared(
        &self,
        p: &Prepared<'_>,
        check: impl FnOnce(&Index) -> Result<()>,
    ) -> Result<u64> {
        let seq = {
            let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
            check(&idx)?;
            self.write_locked(&mut idx, p)?
        };
        self.journal.wait(seq)?;
        self.maybe_compact();
        Ok(seq)
    }

    /// Commits several records, each on its own (one failing does not stop the others),
    /// sharing one wait for durability: DeleteObjects.
    pub fn commit_many(&self, recs: &[Record]) -> Vec<Result<u64>> {
        let mut results: Vec<Result<u64>> = {
            let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
            recs.iter()
                .map(|r| {
                    let p = Prepared::new(r).map_err(DirectorError::Internal)?;
                    self.write_locked(&mut idx, &p)
                })
                .collect()
        };
        let last = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .max()
            .copied();
        if let Some(seq) = last {
            if let Err(e) = self.journal.wait(seq) {
                let msg = e.to_string();
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(DirectorError::Internal(msg.clone()));
                }
            }
            self.maybe_compact();
        }
        results
    }

    /// Validates, journals (without waiting for the fsync) and applies one record.
    fn write_locked(&self, idx: &mut Index, p: &Prepared<'_>) -> Result<u64> {
        let map = p.record.to_map()?;
        idx.validate(p)?;
        let seq = self.journal.write(map)?;
        idx.apply(p).map_err(DirectorError::Internal)?;
        if p.record.is_membership() {
            self.stores.sync_members(&idx.members);
        }
        Ok(seq)
    }

    /// Writes a snapshot of the index and removes the journal segments it covers.
    pub fn compact(&self) -> Result<u64> {
        let (seq, state) = {
            // The read lock excludes mutations, so every record up to last_seq is applied.
            let idx = self.read_index();
            (
                self.journal.last_seq(),
                idx.to_snapshot().map_err(DirectorError::Internal)?,
            )
        };
        self.journal.snapshot(seq, &state)?;
        Ok(seq)
    }

    fn maybe_compact(&self) {
        if self.journal.bytes() < self.cfg.compact_bytes
            || self.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if let Err(e) = self.compact() {
            log::error!("journal compaction failed: {e}");
        }
        self.compacting.store(false, Ordering::Release);
    }
}
