//! The director: the cluster's front door. It knows buckets, keys, objects, chunk lists,
//! placement and the journal; it knows a store only through its HTTP API (`client`).

pub mod api;
pub mod client;
pub mod error;
pub mod index;
pub mod journal;
pub mod manifest;
pub mod placement;
pub mod read;
pub mod stores;
pub mod write;
pub mod xml;

use crate::chunker::Chunking;
use crate::http::ServerConfig;
use error::{DirectorError, Result};
use index::{Index, Record};
use journal::{Journal, JournalConfig};
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use stores::Stores;

/// Default number of copies of every chunk.
pub const REPLICAS_DEFAULT: usize = 2;
/// Journal size that triggers a snapshot and compaction.
pub const COMPACT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct DirectorConfig {
    pub listen: String,
    pub data: PathBuf,
    pub stores: Vec<String>,
    pub replicas: usize,
    pub chunking: Chunking,
    pub store_token_file: Option<PathBuf>,
    pub compact_bytes: u64,
    pub http: ServerConfig,
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
            http: ServerConfig::default(),
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
        let stores = Arc::new(Stores::new(&cfg.stores, client::StoreClient::new(token)));
        Ok(Director {
            cfg,
            index: RwLock::new(index),
            journal,
            stores,
            counters: Counters::default(),
            compacting: AtomicBool::new(false),
            _dir_lock: dir_lock,
        })
    }

    pub fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates, journals and applies one record; returns once it is durable.
    pub fn commit(&self, rec: &Record) -> Result<u64> {
        let map = rec.to_map()?;
        let seq = {
            let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
            idx.validate(rec)?;
            let seq = self.journal.write(map)?;
            idx.apply(rec).map_err(DirectorError::Internal)?;
            seq
        };
        self.journal.wait(seq)?;
        self.maybe_compact();
        Ok(seq)
    }

    /// Writes a snapshot of the index and removes the journal segments it covers.
    pub fn compact(&self) -> Result<u64> {
        let (seq, state) = {
            // The read lock excludes mutations, so every record up to last_seq is applied.
            let idx = self.read_index();
            (self.journal.last_seq(), idx.to_snapshot())
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

/// Opens the director and starts serving.
pub fn start(cfg: DirectorConfig) -> Result<(crate::http::Server, Arc<api::DirectorApi>)> {
    let http = cfg.http.clone();
    let listen = cfg.listen.clone();
    let director = Arc::new(Director::open(cfg)?);
    director.stores.poll();
    director.stores.spawn_poller();
    let api = Arc::new(api::DirectorApi::new(Arc::clone(&director)));
    let handler_api = Arc::clone(&api);
    let server = crate::http::Server::start(
        &listen,
        &http,
        Arc::new(move |req: &mut crate::http::Request<'_>| handler_api.handle(req)),
    )
    .map_err(|e| DirectorError::Internal(format!("cannot listen on {listen}: {e}")))?;
    log::info!(
        "director listening on http://{} with {} store(s), {} up, {} replicas",
        server.addr,
        director.cfg.stores.len(),
        director.stores.live_count(),
        director.cfg.replicas
    );
    Ok((server, api))
}
