//! The director: the cluster's front door. It knows buckets, keys, objects, chunk lists,
//! placement and the journal; it knows a store only through its HTTP API (`client`).

pub mod admin;
pub mod data;
pub mod error;
pub mod meta;
pub mod replica;
pub mod s3;
pub mod serve;
pub mod upkeep;

use crate::chunker::Chunking;
use crate::http::ServerConfig;
use data::stores::Stores;
use error::{DirectorError, Result};
use meta::index::Index;
use meta::journal::{Journal, JournalConfig};
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A lifecycle rule's day in seconds.
pub const LIFECYCLE_DAY_SECS_DEFAULT: u64 = 86_400;
/// The environment variable that shortens a lifecycle day, for tests (read by the binary).
pub const LIFECYCLE_DAY_ENV: &str = "DPYFS_TEST_DAY_SECONDS";
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
    /// The other directors of the group (`--peer`); empty for a group of one.
    pub peers: Vec<String>,
    /// The token directors present to each other (`--peer-token-file`; the store token
    /// when not given).
    pub peer_token_file: Option<PathBuf>,
    /// The length of a lifecycle rule's day in seconds: 86400, shorter only in tests
    /// (`DPYFS_TEST_DAY_SECONDS`).
    pub lifecycle_day_secs: u64,
}

impl DirectorConfig {
    /// `https` when the listener serves TLS (`--tls-cert`), else `http`: the scheme of every
    /// URL the director writes for itself (its peer URL, a completed upload's Location).
    pub fn scheme(&self) -> &'static str {
        if self.http.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

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
            peers: Vec::new(),
            peer_token_file: None,
            lifecycle_day_secs: LIFECYCLE_DAY_SECS_DEFAULT,
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
    /// The namespace, at the commit point: only the raft thread writes it, applying
    /// committed records in seq order (`replica::driver`).
    pub index: RwLock<Index>,
    pub journal: Journal,
    pub stores: Arc<Stores>,
    pub counters: Counters,
    pub repairer: upkeep::repairer::Repairer,
    /// Chunks of uploads in flight, which garbage collection must not touch.
    pub inflight: std::sync::Mutex<data::pins::InFlight>,
    /// Held by a repair pass or a GC pass: one at a time.
    maintenance: std::sync::Mutex<()>,
    /// The raft side: inbox, applied point, status (`replica::shared`).
    pub replica: replica::shared::Replica,
    /// What the raft thread starts from; taken when it starts.
    boot: std::sync::Mutex<Option<replica::boot::Boot>>,
    /// The token peers must present on `/_dpyfs/raft/...`.
    peer_token: Option<String>,
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
        let id = replica::state::director_id(&cfg.data).map_err(DirectorError::Internal)?;
        let (journal, replay) = Journal::open(JournalConfig::new(cfg.data.clone()))?;
        for w in &replay.warnings {
            log::warn!("journal: {w}");
        }
        let snapshot_name = format!("snapshot-{:020}.json", replay.snapshot_seq);
        let mut index = match &replay.snapshot {
            Some(state) => Index::from_snapshot(state).map_err(|e| {
                DirectorError::Internal(format!(
                    "snapshot {}: {e}",
                    cfg.data.join(&snapshot_name).display()
                ))
            })?,
            None => Index::default(),
        };
        let (snapshot_seq, n) = (replay.snapshot_seq, replay.records.len());
        let boot = replica::boot::restore(&cfg.data, id, !cfg.peers.is_empty(), replay, &mut index)
            .map_err(|e| {
                DirectorError::Internal(format!("journal in {}: {e}", cfg.data.display()))
            })?;
        log::info!(
            "journal replayed: snapshot at seq {snapshot_seq}, {n} records after it, applied up to \
             {}, {} buckets, {} objects",
            boot.restored.applied,
            index.buckets.len(),
            index.object_count()
        );
        let token = cfg
            .store_token_file
            .as_deref()
            .map(crate::store::read_token)
            .transpose()
            .map_err(|e| DirectorError::Internal(e.to_string()))?;
        let peer_token = match &cfg.peer_token_file {
            Some(p) => Some(
                crate::store::read_token(p).map_err(|e| DirectorError::Internal(e.to_string()))?,
            ),
            None => token.clone(),
        };
        let peers = Arc::new(replica::transport::Peers::new(
            format!("{}://{}", cfg.scheme(), cfg.listen),
            peer_token.clone(),
        ));
        let replica =
            replica::shared::Replica::new(id, peers, cfg.peers.clone(), boot.restored.applied);
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
            replica,
            boot: std::sync::Mutex::new(Some(boot)),
            peer_token,
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
}
