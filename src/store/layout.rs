//! Where things live in a store's data directory, and the identity file.
//!
//! ```text
//! DIR/store.json                 identity {"format":1,"id":..,"zone":..,"created":..}
//! DIR/chunks/ab/cd/abcd...(64)   one file per chunk, exactly its bytes
//! DIR/tmp/                       uploads in flight; emptied at start
//! DIR/quarantine/<hash>.<unix>   copies that failed verification, moved aside
//! DIR/.lock                      held (flock) while a daemon uses the directory
//! ```

use super::error::{Result, StoreError};
use crate::fsutil;
use crate::hash::Hash;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version of `store.json` (and of the layout it describes).
pub const STORE_FORMAT: u32 = 1;

pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn chunks_dir(&self) -> PathBuf {
        self.root.join("chunks")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    pub fn identity_path(&self) -> PathBuf {
        self.root.join("store.json")
    }

    /// `chunks/ab/cd/<hash>`: the folder of a chunk.
    pub fn chunk_dir(&self, h: &Hash) -> PathBuf {
        let hex = h.to_hex();
        self.chunks_dir().join(&hex[0..2]).join(&hex[2..4])
    }

    pub fn chunk_path(&self, h: &Hash) -> PathBuf {
        self.chunk_dir(h).join(h.to_hex())
    }

    /// Creates the folders, takes the directory lock and empties `tmp/`.
    pub fn prepare(&self) -> Result<File> {
        for d in [
            self.root.clone(),
            self.chunks_dir(),
            self.tmp_dir(),
            self.quarantine_dir(),
        ] {
            fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        let lock_path = self.root.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        crate::sys::try_lock_exclusive(&lock).map_err(|_| {
            StoreError::DataDir(format!(
                "{} is in use by another dpyfs-store (it holds {}); stop it first",
                self.root.display(),
                lock_path.display()
            ))
        })?;
        self.empty_tmp()?;
        Ok(lock)
    }

    /// Uploads in flight when the daemon stopped were never acknowledged: drop them.
    fn empty_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        let entries = fs::read_dir(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let mut removed = 0u64;
        for e in entries {
            let e = e.map_err(|e| StoreError::io(&tmp, e))?;
            let p = e.path();
            fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
            removed += 1;
        }
        if removed > 0 {
            log::info!(
                "removed {removed} unfinished upload(s) from {}",
                tmp.display()
            );
        }
        Ok(())
    }
}

/// The identity file, `store.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub format: u32,
    pub id: String,
    pub zone: String,
    pub created: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new store id: readable, and unique enough to tell a handful of stores apart.
fn new_id(root: &Path) -> String {
    let seed = format!(
        "{:?}{}{}",
        SystemTime::now(),
        std::process::id(),
        root.display()
    );
    format!("store-{}", &Hash::of(seed.as_bytes()).to_hex()[..12])
}

/// Store ids and zones go into URLs, logs and file names: keep them plain.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Reads `store.json`, or creates it on first start. With `want_id`, a directory that
/// belongs to another store is refused: pointing a daemon at the wrong disk must not
/// silently merge two stores.
pub fn load_or_create_identity(
    layout: &Layout,
    want_id: Option<&str>,
    want_zone: Option<&str>,
) -> Result<Identity> {
    let path = layout.identity_path();
    let existing = match fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice::<Identity>(&bytes).map_err(|e| {
            StoreError::DataDir(format!(
                "{} is not a valid store identity ({e}); fix or remove it by hand",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let ident = match existing {
        Some(id) => check_identity(id, want_id, &path)?,
        None => Identity {
            format: STORE_FORMAT,
            id: want_id
                .map(str::to_string)
                .unwrap_or_else(|| new_id(&layout.root)),
            zone: want_zone.unwrap_or("default").to_string(),
            created: unix_now(),
        },
    };
    let mut ident = ident;
    let changed_zone = want_zone.is_some_and(|z| z != ident.zone);
    if let Some(z) = want_zone {
        ident.zone = z.to_string();
    }
    if changed_zone || !path.exists() {
        write_identity(&path, &ident)?;
    }
    Ok(ident)
}

fn check_identity(id: Identity, want_id: Option<&str>, path: &Path) -> Result<Identity> {
    if id.format != STORE_FORMAT {
        return Err(StoreError::DataDir(format!(
            "{} has format {}, this dpyfs-store understands format {STORE_FORMAT}",
            path.display(),
            id.format
        )));
    }
    if let Some(w) = want_id.filter(|w| *w != id.id) {
        return Err(StoreError::DataDir(format!(
            "{} belongs to store '{}', not '{w}': refusing to start (wrong --data or --id?)",
            path.display(),
            id.id
        )));
    }
    Ok(id)
}

fn write_identity(path: &Path, ident: &Identity) -> Result<()> {
    let mut text = serde_json::to_string(ident)
        .map_err(|e| StoreError::DataDir(format!("cannot encode store identity: {e}")))?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes()).map_err(|e| StoreError::io(path, e))
}
