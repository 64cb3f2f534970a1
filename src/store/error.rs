//! The storage daemon's errors, and the one place they become HTTP statuses and codes.

use crate::hash::Hash;
use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum StoreError {
    /// The name is not 64 lowercase hex digits.
    InvalidName(String),
    /// The body does not hash to the name it was sent under.
    HashMismatch {
        expected: Hash,
        actual: Hash,
    },
    /// The body is longer than the chunk size limit.
    TooLarge {
        limit_bytes: u64,
    },
    /// The body ended before its Content-Length, or the client went away.
    IncompleteBody {
        expected: u64,
        received: u64,
    },
    /// Writing would take the disk below its reserve (or the disk is full).
    DiskFull,
    NotFound(Hash),
    /// A stored copy failed verification and was moved to quarantine.
    CorruptChunk(Hash),
    Unauthorized,
    /// The data directory belongs to another store, is locked, or is otherwise unusable.
    DataDir(String),
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        if is_disk_full(&source) {
            return StoreError::DiskFull;
        }
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// HTTP status and machine-readable code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            StoreError::InvalidName(_) => (400, "InvalidChunkName"),
            StoreError::HashMismatch { .. } => (422, "HashMismatch"),
            StoreError::TooLarge { .. } => (413, "ChunkTooLarge"),
            StoreError::IncompleteBody { .. } => (400, "IncompleteBody"),
            StoreError::DiskFull => (507, "InsufficientStorage"),
            StoreError::NotFound(_) => (404, "NoSuchChunk"),
            StoreError::CorruptChunk(_) => (404, "CorruptChunk"),
            StoreError::Unauthorized => (401, "Unauthorized"),
            StoreError::DataDir(_) => (500, "DataDirError"),
            StoreError::Io { .. } => (500, "IoError"),
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidName(n) => write!(
                f,
                "chunk name {n:?} is not 64 lowercase hex digits (a SHA-256)"
            ),
            StoreError::HashMismatch { expected, actual } => write!(
                f,
                "body hashes to {actual}, not to its name {expected}; nothing was stored"
            ),
            StoreError::TooLarge { limit_bytes } => write!(
                f,
                "chunk is larger than this store's limit of {limit_bytes} bytes; nothing was stored"
            ),
            StoreError::IncompleteBody { expected, received } => write!(
                f,
                "body ended after {received} of {expected} bytes; nothing was stored"
            ),
            StoreError::DiskFull => write!(
                f,
                "the disk is at or below its reserve of free space; nothing was stored"
            ),
            StoreError::NotFound(h) => write!(f, "no chunk {h} on this store"),
            StoreError::CorruptChunk(h) => write!(
                f,
                "the copy of chunk {h} on this store failed verification and was quarantined; try another copy"
            ),
            StoreError::Unauthorized => {
                write!(f, "missing or wrong 'Authorization: Bearer <token>' header")
            }
            StoreError::DataDir(m) => write!(f, "{m}"),
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}
