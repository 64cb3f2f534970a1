//! The director: the cluster's front door. It knows buckets, keys, objects, chunk lists,
//! placement and the journal; it knows a store only through its HTTP API (`client`).

pub mod admin;
pub mod data;
pub mod error;
pub mod meta;
pub mod s3;
pub mod upkeep;

use crate::chunker::Chunking;
use crate::http::ServerConfig;
use data::stores::Stores;
use error::{DirectorError, Result};
use meta::index::{Index, Record};
use meta::journal::{Journal, JournalConfig};
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
            repair_interval: Duration::from_secs(upkeep::repair::REPAIR_INTERVAL_SECS_DEFAULT),
            repair_rate_bytes_per_sec: upkeep::repair::REPAIR_RATE_BYTES_PER_SEC_DEFAULT,
            repair_copies: upkeep::repair::REPAIR_COPIES_DEFAULT,
            gc_grace_secs: upkeep::gc::GC_GRACE_SECS_DEFAULT,
            multipart_min_part_bytes: meta::uploads::MIN_PART_BYTES_DEFAULT,
            multipart_max_age_secs: meta::uploads::MAX_AGE_SECS_DEFAULT,
            http: ServerConfig::default(),
            keys: None,
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
    pub repairer: upkeep::repair::Repairer,
    /// Chunks of uploads in flight, which garbage collection must not touch.
    pub inflight: std::sync::Mutex<upkeep::gc::InFlight>,
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
        let repairer = upkeep::repair::Repairer::new(
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
            inflight: std::sync::Mutex::new(upkeep::gc::InFlight::default()),
            maintenance: std::sync::Mutex::new(()),
            compacting: AtomicBool::new(false),
            _dir_lock: dir_lock,
        })
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
        let seq = {
            let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
            check(&idx)?;
            self.write_locked(&mut idx, rec)?
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
                .map(|r| self.write_locked(&mut idx, r))
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
    fn write_locked(&self, idx: &mut Index, rec: &Record) -> Result<u64> {
        let map = rec.to_map()?;
        idx.validate(rec)?;
        let seq = self.journal.write(map)?;
        idx.apply(rec).map_err(DirectorError::Internal)?;
        if rec.is_membership() {
            self.stores.sync_members(&idx.members);
        }
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

    /// Polls the stores; journals stores that answered for the first time (or at a new
    /// URL). Returns true when membership changed.
    pub fn poll_stores(&self) -> bool {
        let mut changed = false;
        for d in self.stores.poll() {
            let rec = match self.read_index().members.get(&d.id) {
                Some(m) if m.url == d.url => None,
                Some(_) => Some(Record::StoreMove {
                    id: d.id.clone(),
                    url: d.url.clone(),
                }),
                None => Some(Record::StoreAdd {
                    id: d.id.clone(),
                    url: d.url.clone(),
                    zone: d.zone.clone(),
                    weight: d.capacity_weight,
                }),
            };
            if let Some(r) = rec {
                match self.commit(&r) {
                    Ok(_) => {
                        log::info!("store {} at {} joined the cluster", d.id, d.url);
                        changed = true;
                    }
                    Err(e) => log::error!("cannot journal store {} at {}: {e}", d.id, d.url),
                }
            }
            self.stores.forget_pending(&d.url);
        }
        if changed {
            // Learn the new member's liveness now rather than at the next poll.
            self.stores.poll();
        }
        changed
    }

    /// Adds a store by URL; its identity comes from its `/status`.
    pub fn add_store(&self, url: &str, zone: Option<&str>, weight: Option<f64>) -> Result<String> {
        let url = url.trim_end_matches('/').to_string();
        let v = self.stores.client.status(&url).map_err(|e| {
            DirectorError::BadRequest("StoreUnreachable", format!("{url} does not answer: {e}"))
        })?;
        let id = v
            .get("id")
            .and_then(|i| i.as_str())
            .ok_or_else(|| {
                DirectorError::BadRequest("NotAStore", format!("{url} is not a dpyfs-store"))
            })?
            .to_string();
        let known = self.read_index().members.get(&id).map(|m| m.url.clone());
        let rec = match known {
            Some(u) if u == url => {
                return Err(DirectorError::BadRequest(
                    "StoreExists",
                    format!("store '{id}' at {url} is already a member"),
                ));
            }
            Some(_) => Record::StoreMove {
                id: id.clone(),
                url,
            },
            None => Record::StoreAdd {
                id: id.clone(),
                url,
                zone: zone
                    .map(str::to_string)
                    .or_else(|| v.get("zone").and_then(|z| z.as_str()).map(str::to_string))
                    .unwrap_or_else(|| "default".into()),
                weight: weight.unwrap_or_else(|| {
                    let total = v
                        .pointer("/disk/total_bytes")
                        .and_then(|t| t.as_u64())
                        .unwrap_or(0);
                    (total as f64 / (1u64 << 30) as f64).max(data::placement::WEIGHT_MIN)
                }),
            },
        };
        self.commit(&rec)?;
        self.stores.poll();
        self.repairer.request();
        Ok(id)
    }

    /// Marks a store draining: it takes no new copies and repair moves its chunks away.
    pub fn drain_store(&self, id: &str) -> Result<()> {
        self.commit(&Record::StoreDrain { id: id.to_string() })?;
        self.repairer.request();
        Ok(())
    }

    /// Removes a store, refused while it holds the only copy of any referenced chunk (or
    /// while that cannot be checked because another store cannot be listed).
    pub fn remove_store(&self, id: &str) -> Result<()> {
        let target = self
            .stores
            .snapshot()
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| DirectorError::BadRequest("NoSuchStore", format!("no store '{id}'")))?;
        let refs = upkeep::holdings::referenced(&self.read_index());
        let mut only_here = 0u64;
        let failed = self.scan_holdings(
            &refs,
            &mut |seen| {
                let elsewhere = seen
                    .holders
                    .iter()
                    .any(|(i, size)| *i != target && upkeep::holdings::right_size(seen.len, *size));
                only_here += u64::from(!elsewhere);
            },
            &mut |_, _| {},
        );
        let other_failed: Vec<_> = failed.iter().filter(|(i, _)| *i != target).collect();
        if !other_failed.is_empty() {
            return Err(DirectorError::Conflict(
                "StoreRemovalUnsafe",
                format!(
                    "cannot check the other stores ({} could not be listed); try again when all are up",
                    other_failed.len()
                ),
            ));
        }
        if only_here > 0 {
            return Err(DirectorError::Conflict(
                "StoreHoldsOnlyCopies",
                format!(
                    "store '{id}' still holds the only copy of {only_here} chunk(s): drain it and wait for repair"
                ),
            ));
        }
        self.commit(&Record::StoreRemove { id: id.to_string() })?;
        self.repairer.request();
        Ok(())
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

/// The store poller (liveness, new members, lost stores trigger repair), the repair
/// loop and the expiry of abandoned multipart uploads.
fn spawn_background(d: &Arc<Director>) -> Result<()> {
    let poller = Arc::clone(d);
    std::thread::Builder::new()
        .name("store-poller".into())
        .spawn(move || {
            // A pass starts when membership changes, when a store becomes lost (its
            // chunks need new copies) and when a store comes back up (surplus copies made
            // meanwhile can go, and it may need copies it missed).
            let mut lost_before: Vec<String> = Vec::new();
            let mut up_before: Vec<String> = Vec::new();
            loop {
                std::thread::sleep(Duration::from_millis(data::stores::STATUS_POLL_MS));
                let changed = poller.poll_stores();
                let now = poller.stores.snapshot();
                let ids = |f: &dyn Fn(&data::stores::StoreState) -> bool| -> Vec<String> {
                    now.iter().filter(|s| f(s)).map(|s| s.id.clone()).collect()
                };
                let lost = ids(&|s| s.lost(poller.cfg.lost_after));
                let up = ids(&|s| s.up);
                let newly =
                    |now: &[String], before: &[String]| now.iter().any(|i| !before.contains(i));
                if changed || newly(&lost, &lost_before) || newly(&up, &up_before) {
                    poller.repairer.request();
                }
                lost_before = lost;
                up_before = up;
            }
        })
        .map_err(|e| DirectorError::Internal(format!("cannot start the poller: {e}")))?;
    let repairer = Arc::clone(d);
    std::thread::Builder::new()
        .name("repair".into())
        .spawn(move || repairer.repair_loop())
        .map_err(|e| DirectorError::Internal(format!("cannot start repair: {e}")))?;
    if d.cfg.multipart_max_age_secs > 0 {
        let expiry = Arc::clone(d);
        std::thread::Builder::new()
            .name("multipart-expiry".into())
            .spawn(move || expiry.expiry_loop())
            .map_err(|e| DirectorError::Internal(format!("cannot start multipart expiry: {e}")))?;
    }
    Ok(())
}

/// Opens the director and starts serving.
pub fn start(cfg: DirectorConfig) -> Result<(crate::http::Server, Arc<s3::api::DirectorApi>)> {
    let http = cfg.http.clone();
    let listen = cfg.listen.clone();
    let auth = s3::auth::Auth::from_path(cfg.keys.as_deref()).map_err(DirectorError::Internal)?;
    let director = Arc::new(Director::open(cfg)?);
    director.poll_stores();
    spawn_background(&director)?;
    match &director.cfg.keys {
        Some(p) => log::info!(
            "keys file {}: requests must be signed (AWS Signature V4)",
            p.display()
        ),
        None if s3::auth::is_loopback(&listen) => {
            log::info!("no keys file: unsigned requests are served (loopback only)")
        }
        None => log::warn!(
            "no keys file and --allow-anonymous: anyone who can reach {listen} can read, \
             write and delete everything"
        ),
    }
    let api = Arc::new(s3::api::DirectorApi::new(Arc::clone(&director)).with_auth(auth));
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
