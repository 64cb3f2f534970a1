//! The director's errors, and the one place they become HTTP statuses and S3 codes.

use super::meta::journal::JournalError;
use crate::hash::Hash;
use std::fmt;

#[derive(Debug)]
pub enum DirectorError {
    NoSuchBucket(String),
    NoSuchKey {
        bucket: String,
        key: String,
    },
    /// The version asked for is a delete marker: a GET of the key (404 NoSuchKey), or of
    /// the marker's version id (405 MethodNotAllowed). Answered with
    /// `x-amz-delete-marker: true` and the marker's `x-amz-version-id`.
    DeleteMarker {
        key: String,
        /// The marker's version id as S3 writes it (`null` for the null marker).
        version: String,
        by_version: bool,
    },
    BucketAlreadyOwnedByYou(String),
    BucketNotEmpty(String),
    InvalidBucketName(String),
    /// A key that is empty, too long, not UTF-8 or holds a NUL.
    InvalidKey(String),
    /// Fewer live stores than the replica count: nothing was written. `failed` names the
    /// stores that were asked and failed, with why ("s2: no answer").
    InsufficientStores {
        live: usize,
        needed: usize,
        failed: Vec<String>,
    },
    /// Fewer than N copies could be made because stores answered that their disks are
    /// full (507): nothing was written. `full` are their ids, `failed` any other failures.
    StoresFull {
        full: Vec<String>,
        needed: usize,
        failed: Vec<String>,
    },
    /// No store could give a verified copy of this chunk.
    ChunkUnavailable(Hash),
    /// The Range header asks for bytes beyond the object.
    InvalidRange {
        size: u64,
    },
    /// The object needs more chunks than one manifest may list.
    EntityTooLarge {
        limit_bytes: u64,
    },
    /// The body ended before its Content-Length, or the client went away.
    IncompleteBody {
        expected: u64,
        received: u64,
    },
    /// The client's body could not be read.
    BodyRead(String),
    /// Any other malformed request: (code, message).
    BadRequest(&'static str, String),
    MethodNotAllowed(String),
    /// An S3 feature this director does not have (yet): refused rather than misread.
    NotImplemented(String),
    /// The request conflicts with the cluster's state: (code, message).
    Conflict(&'static str, String),
    /// Any other S3 error with its own status: (status, code, message), e.g.
    /// (403, "SignatureDoesNotMatch", ...), (412, "PreconditionFailed", ...).
    S3(u16, &'static str, String),
    Journal(JournalError),
    Internal(String),
}

pub type Result<T> = std::result::Result<T, DirectorError>;

impl From<JournalError> for DirectorError {
    fn from(e: JournalError) -> Self {
        DirectorError::Journal(e)
    }
}

impl DirectorError {
    /// HTTP status and S3 error code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        use DirectorError::*;
        match self {
            NoSuchBucket(_) => (404, "NoSuchBucket"),
            NoSuchKey { .. } => (404, "NoSuchKey"),
            DeleteMarker {
                by_version: false, ..
            } => (404, "NoSuchKey"),
            DeleteMarker { .. } => (405, "MethodNotAllowed"),
            BucketAlreadyOwnedByYou(_) => (409, "BucketAlreadyOwnedByYou"),
            BucketNotEmpty(_) => (409, "BucketNotEmpty"),
            InvalidBucketName(_) => (400, "InvalidBucketName"),
            InvalidKey(_) => (400, "InvalidArgument"),
            InsufficientStores { .. } => (503, "InsufficientStores"),
            StoresFull { .. } => (507, "InsufficientStorage"),
            ChunkUnavailable(_) => (503, "ChunkUnavailable"),
            InvalidRange { .. } => (416, "InvalidRange"),
            EntityTooLarge { .. } => (400, "EntityTooLarge"),
            IncompleteBody { .. } => (400, "IncompleteBody"),
            BodyRead(_) => (400, "IncompleteBody"),
            BadRequest(code, _) => (400, code),
            MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            Conflict(code, _) => (409, code),
            NotImplemented(_) => (501, "NotImplemented"),
            S3(status, code, _) => (*status, code),
            Journal(JournalError::Io { source, .. }) if is_disk_full(source) => {
                (507, "InsufficientStorage")
            }
            Journal(JournalError::Stopped(_)) => (503, "ServiceUnavailable"),
            Journal(_) => (500, "InternalError"),
            Internal(_) => (500, "InternalError"),
        }
    }
}

impl fmt::Display for DirectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DirectorError::*;
        match self {
            NoSuchBucket(b) => write!(f, "the bucket '{b}' does not exist"),
            NoSuchKey { bucket, key } => write!(f, "no object '{key}' in bucket '{bucket}'"),
            DeleteMarker { key, version, .. } => {
                write!(f, "the version {version} of '{key}' is a delete marker")
            }
            BucketAlreadyOwnedByYou(b) => write!(f, "the bucket '{b}' already exists"),
            BucketNotEmpty(b) => {
                write!(f, "the bucket '{b}' is not empty; delete its objects first")
            }
            InvalidBucketName(b) => write!(
                f,
                "'{b}' is not a valid bucket name (3-63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)"
            ),
            InvalidKey(why) => write!(f, "invalid object key: {why}"),
            InsufficientStores {
                live,
                needed,
                failed,
            } => {
                write!(
                    f,
                    "only {live} store(s) are up but {needed} copies are required; nothing was stored"
                )?;
                write_failures(f, failed)
            }
            StoresFull {
                full,
                needed,
                failed,
            } => {
                write!(
                    f,
                    "store(s) {} are full (below their disk reserve) and {needed} copies are \
                     required; nothing was stored",
                    full.join(", ")
                )?;
                write_failures(f, failed)
            }
            ChunkUnavailable(h) => write!(
                f,
                "no store could supply a verified copy of chunk {h}; try again when more stores are up"
            ),
            InvalidRange { size } => write!(
                f,
                "the requested range is not satisfiable for an object of {size} bytes"
            ),
            EntityTooLarge { limit_bytes } => write!(
                f,
                "the object is larger than this director accepts (about {limit_bytes} bytes); nothing was stored"
            ),
            IncompleteBody { expected, received } => write!(
                f,
                "the body ended after {received} of {expected} bytes; nothing was stored"
            ),
            BodyRead(e) => write!(
                f,
                "reading the request body failed ({e}); nothing was stored"
            ),
            BadRequest(_, m) => write!(f, "{m}"),
            MethodNotAllowed(m) => write!(f, "{m}"),
            Conflict(_, m) => write!(f, "{m}"),
            S3(_, _, m) => write!(f, "{m}"),
            NotImplemented(m) => write!(f, "not implemented: {m}; nothing was changed"),
            Journal(e) => write!(f, "journal: {e}"),
            Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for DirectorError {}

fn write_failures(f: &mut fmt::Formatter<'_>, failed: &[String]) -> fmt::Result {
    if failed.is_empty() {
        return Ok(());
    }
    write!(f, " (failed: {})", failed.join("; "))
}

/// ENOSPC or EDQUOT: the disk (or the user's quota) is full.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl DirectorError {
    /// The message a client is sent. The same as `Display`, except that journal errors,
    /// which name the director's files, are told in words: paths stay in the log.
    pub fn client_message(&self) -> String {
        match self {
            DirectorError::Journal(JournalError::Io { source, .. }) if is_disk_full(source) => {
                "the director's journal disk is full; nothing was stored".into()
            }
            DirectorError::Journal(JournalError::Stopped(_)) => {
                "the director's journal takes no more writes after a disk error; nothing was \
                 stored (the director's log says why; restart it once the disk is fixed)"
                    .into()
            }
            DirectorError::Journal(_) => {
                "the director's journal failed; nothing was stored (the director's log says why)"
                    .into()
            }
            other => other.to_string(),
        }
    }
}
