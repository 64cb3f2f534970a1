//! The chunk store itself: durable writes, verified reads, quarantine, listing, counters.
//! No HTTP here: the API module calls these methods with readers and writers.

use super::error::{Result, StoreError};
use super::layout::{Identity, Layout};
use crate::fsutil::{self, AtomicFile, SyncedFile};
use crate::hash::{Hash, Hasher};
use crate::human::parse_size;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Size of the buffer used to stream bodies and files.
pub const IO_BUFFER_BYTES: usize = 256 * 1024;
/// Default cap on one chunk.
pub const CHUNK_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// Most hashes one listing call returns.
pub const LIST_LIMIT_MAX: usize = 100_000;

/// Free space to keep on the data disk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reserve {
    Bytes(u64),
    /// Percent of the file system's total size.
    Percent(f64),
}

impl Reserve {
    /// Parses `1073741824`, `512M`, `1G` or `5%`.
    pub fn parse(s: &str) -> Option<Reserve> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().ok()?;
            return (0.0..=100.0).contains(&v).then_some(Reserve::Percent(v));
        }
        parse_size(s).map(Reserve::Bytes)
    }

    pub fn bytes(&self, total_bytes: u64) -> u64 {
        match *self {
            Reserve::Bytes(b) => b,
            Reserve::Percent(p) => (total_bytes as f64 * p / 100.0) as u64,
        }
    }
}

/// One entry of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub hash: Hash,
    pub size: u64,
    /// Unix seconds of the file's last modification (when it was stored).
    pub mtime: u64,
}

fn mtime_secs(m: &fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a PUT did.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyPresent,
}

pub struct Store {
    pub layout: Layout,
    pub identity: Identity,
    pub max_chunk_bytes: u64,
    pub reserve: Reserve,
    chunk_count: AtomicU64,
    chunk_bytes: AtomicU64,
    /// Serialise the operations that change which file a chunk name points at (rename
    /// into place, delete, quarantine), so the counters stay exact and the scrubber never
    /// quarantines a fresh good copy that replaced the bad one it just read. One lock per
    /// first folder `chunks/ab/` (`name_lock`): every one of those rules is about one name,
    /// and the folders under `ab/` are created and fsynced under the same lock, so no PUT
    /// renames into a folder whose own name is not durable yet. (A single lock held
    /// across each folder fsync made a store's creates take turns, so concurrent small
    /// PUTs could not share the file system's journal commits: issue 19.)
    rename_locks: Vec<Mutex<()>>,
    _dir_lock: File,
}

/// Disk-full and counters aside, a source of free space so tests can exercise the reserve.
fn free_and_total(root: &Path) -> Result<(u64, u64)> {
    let d = crate::sys::disk_space(root).map_err(|e| StoreError::io(root, e))?;
    Ok((d.free_bytes, d.total_bytes))
}

impl Store {
    /// Opens the data directory: folders, lock, empty `tmp/`, identity, and the counters
    /// from one walk of `chunks/`.
    pub fn open(
        root: &Path,
        want_id: Option<&str>,
        want_zone: Option<&str>,
        max_chunk_bytes: u64,
        reserve: Reserve,
    ) -> Result<Store> {
        let layout = Layout::new(root);
        let dir_lock = layout.prepare()?;
        let identity = super::layout::load_or_create_identity(&layout, want_id, want_zone)?;
        let store = Store {
            layout,
            identity,
            max_chunk_bytes,
            reserve,
            chunk_count: AtomicU64::new(0),
            chunk_bytes: AtomicU64::new(0),
            rename_locks: (0..=u8::MAX).map(|_| Mutex::new(())).collect(),
            _dir_lock: dir_lock,
        };
        let (n, b) = store.count_chunks()?;
        store.chunk_count.store(n, Ordering::Relaxed);
        store.chunk_bytes.store(b, Ordering::Relaxed);
        Ok(store)
    }

    pub fn chunk_count(&self) -> u64 {
        self.chunk_count.load(Ordering::Relaxed)
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.load(Ordering::Relaxed)
    }

    fn count_chunks(&self) -> Result<(u64, u64)> {
        let mut n = 0u64;
        let mut bytes = 0u64;
        self.walk(None, &mut |_, path| {
            if let Ok(m) = fs::metadata(path) {
                n += 1;
                bytes += m.len();
            }
            true
        })?;
        Ok((n, bytes))
    }

    /// Refuses a write that would take the disk below its reserve.
    fn check_reserve(&self, incoming_bytes: u64) -> Result<()> {
        let (free, total) = free_and_total(&self.layout.root)?;
        if free.saturating_sub(incoming_bytes) < self.reserve.bytes(total) || free == 0 {
            return Err(StoreError::DiskFull);
        }
        Ok(())
    }

    /// The lock of the folder `chunks/ab/` that `h` lives under (see `rename_locks`).
    fn name_lock(&self, h: &Hash) -> MutexGuard<'_, ()> {
        self.rename_locks[usize::from(h.0[0])]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The chunk's length if it is stored. Taken under its name's lock, so a chunk whose
    /// rename is not yet durable (folder fsync in progress) is not reported yet.
    pub fn exists(&self, h: &Hash) -> Option<u64> {
        let _g = self.name_lock(h);
        fs::metadata(self.layout.chunk_path(h))
            .ok()
            .map(|m| m.len())
    }

    /// Whether the stored copy exists and still hashes to its name; a bad copy is
    /// quarantined (so it can be replaced) and reported as absent.
    pub fn has_good_copy(&self, h: &Hash) -> Result<bool> {
        if self.exists(h).is_none() {
            return Ok(false);
        }
        match self.open_verified(h) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) | Err(StoreError::CorruptChunk(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores a chunk from `body`, following the durable-write rule: stream into `tmp/`
    /// hashing as bytes arrive, refuse on mismatch, else fsync the file, rename into
    /// place, fsync the folder, and only then return. `len` is the Content-Length, if any.
    pub fn put(&self, h: &Hash, body: &mut dyn Read, len: Option<u64>) -> Result<PutOutcome> {
        if len.is_some_and(|n| n > self.max_chunk_bytes) {
            return Err(StoreError::TooLarge {
                limit_bytes: self.max_chunk_bytes,
            });
        }
        // A copy already here is re-verified before it is trusted: a rotted copy must not
        // turn a fresh upload into a no-op.
        if self.has_good_copy(h)? {
            // The body is read (and dropped) before answering: answering a kept-alive
            // connection before its request body has arrived stalled the next request on
            // it for the full client timeout (seen with many concurrent PUTs of one chunk).
            discard_body(body, self.max_chunk_bytes)?;
            return Ok(PutOutcome::AlreadyPresent);
        }
        self.check_reserve(len.unwrap_or(self.max_chunk_bytes))?;
        let tmp_dir = self.layout.tmp_dir();
        let mut file = AtomicFile::create_in(&tmp_dir, &h.to_hex()[..16], 0o666)
            .map_err(|e| StoreError::io(&tmp_dir, e))?;
        let received = self.receive(&mut file, body)?;
        if len.is_some_and(|n| n != received.0) {
            return Err(StoreError::IncompleteBody {
                expected: len.unwrap_or(0),
                received: received.0,
            });
        }
        if received.1 != *h {
            return Err(StoreError::HashMismatch {
                expected: *h,
                actual: received.1,
            });
        }
        // Fsynced here, outside the name's lock: concurrent PUTs flush their files in
        // parallel and only take turns for the rename.
        let tmp = file.tmp_path().to_path_buf();
        let synced = file.sync().map_err(|e| StoreError::io(&tmp, e))?;
        self.place(synced, h, received.0)
    }

    /// Streams `body` into `file`, enforcing the size cap as bytes arrive (an oversize
    /// body is refused as soon as it crosses the limit, not after it has filled the disk).
    /// Returns the byte count and hash.
    fn receive(&self, file: &mut AtomicFile, body: &mut dyn Read) -> Result<(u64, Hash)> {
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; IO_BUFFER_BYTES];
        let mut total = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    return Err(StoreError::IncompleteBody {
                        expected: 0,
                        received: total,
                    });
                }
            };
            total += n as u64;
            if total > self.max_chunk_bytes {
                return Err(StoreError::TooLarge {
                    limit_bytes: self.max_chunk_bytes,
                });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| StoreError::io(file.tmp_path(), e))?;
        }
        Ok((total, hasher.finish()))
    }

    /// Puts a verified, fsynced temporary file in place under its name and makes the
    /// rename durable (`rename_new` takes the name back if the folder fsync fails, so
    /// nothing unacknowledged stays in place). A copy already there wins; the temporary
    /// file is then removed.
    fn place(&self, file: SyncedFile, h: &Hash, len: u64) -> Result<PutOutcome> {
        let dir = self.layout.chunk_dir(h);
        let target = self.layout.chunk_path(h);
        let _g = self.name_lock(h);
        if target.exists() {
            return Ok(PutOutcome::AlreadyPresent);
        }
        self.ensure_dir(&dir)?;
        file.rename_new(&target)
            .map_err(|e| StoreError::io(&target, e))?;
        self.chunk_count.fetch_add(1, Ordering::Relaxed);
        self.chunk_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(PutOutcome::Created)
    }

    /// Creates `chunks/ab/cd` on demand; each new folder is made durable in its parent.
    /// Called under the chunk's `name_lock`, which covers every folder under `chunks/ab/`.
    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut to_sync = Vec::new();
        let mut d = dir.to_path_buf();
        while !d.is_dir() {
            to_sync.push(d.clone());
            if !d.pop() {
                break;
            }
        }
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        for created in to_sync {
            if let Some(parent) = created.parent() {
                fsutil::sync_dir(parent).map_err(|e| StoreError::io(parent, e))?;
            }
        }
        Ok(())
    }

    /// Opens a chunk and verifies it against its name before anything is sent. A copy
    /// that fails is quarantined and reported as `CorruptChunk`, so the caller can try
    /// another store. The returned file is positioned at 0; its length is returned too.
    /// The same open file is hashed and then sent, so a concurrent replacement of the
    /// name cannot slip unverified bytes in between.
    pub fn open_verified(&self, h: &Hash) -> Result<(File, u64)> {
        self.open_chunk(h, true)
    }

    /// Opens a chunk, verifying it first when `verify` (see `open_verified`); without,
    /// for a reader that checks every byte itself (the director, `GET ?verify=0`).
    pub fn open_chunk(&self, h: &Hash, verify: bool) -> Result<(File, u64)> {
        let path = self.layout.chunk_path(h);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(*h)),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if !verify {
            let len = f.metadata().map_err(|e| StoreError::io(&path, e))?.len();
            return Ok((f, len));
        }
        let (len, actual) = hash_reader(&mut f).map_err(|e| StoreError::io(&path, e))?;
        if actual != *h {
            log::warn!("chunk {h} on disk hashes to {actual}: moving it to quarantine",);
            self.quarantine(h, &f)?;
            return Err(StoreError::CorruptChunk(*h));
        }
        f.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io(&path, e))?;
        Ok((f, len))
    }

    /// Moves a bad copy aside to `quarantine/<hash>.<unix seconds>`; never deletes it.
    /// `opened` is the file that failed: if the name now points at another file (a good
    /// copy uploaded meanwhile), that file is left alone.
    pub fn quarantine(&self, h: &Hash, opened: &File) -> Result<()> {
        let path = self.layout.chunk_path(h);
        let _g = self.name_lock(h);
        if !same_file(opened, &path) {
            return Ok(());
        }
        let len = opened.metadata().map(|m| m.len()).unwrap_or(0);
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let qdir = self.layout.quarantine_dir();
        // Never over an earlier bad copy: a chunk can go bad twice in one second.
        let mut dest = qdir.join(format!("{h}.{secs}"));
        let mut n = 1;
        while dest.exists() {
            dest = qdir.join(format!("{h}.{secs}.{n}"));
            n += 1;
        }
        fs::rename(&path, &dest).map_err(|e| StoreError::io(&dest, e))?;
        fsutil::sync_dir(&qdir).map_err(|e| StoreError::io(&qdir, e))?;
        let dir = self.layout.chunk_dir(h);
        fsutil::sync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        self.chunk_count.fetch_sub(1, Ordering::Relaxed);
        self.chunk_bytes.fetch_sub(len, Ordering::Relaxed);
        Ok(())
    }

    pub fn delete(&self, h: &Hash) -> Result<()> {
        let path = self.layout.chunk_path(h);
        let _g = self.name_lock(h);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(*h)),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        let dir = self.layout.chunk_dir(h);
        fsutil::sync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        self.chunk_count.fetch_sub(1, Ordering::Relaxed);
        self.chunk_bytes.fetch_sub(len, Ordering::Relaxed);
        Ok(())
    }

    /// Up to `limit` chunks with names greater than `after`, in ascending order, with
    /// their size and modification time (unix seconds) when `detail` is set (one `stat`
    /// per chunk; zeros otherwise).
    pub fn list(&self, after: Option<&Hash>, limit: usize, detail: bool) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.walk(after, &mut |hash, path| {
            let (size, mtime) = if detail {
                match fs::metadata(path) {
                    Ok(m) => (m.len(), mtime_secs(&m)),
                    Err(_) => return true, // deleted meanwhile
                }
            } else {
                (0, 0)
            };
            out.push(Listed { hash, size, mtime });
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Visits chunk files in ascending hash order, starting after `after`, until `visit`
    /// returns false. Files whose names are not chunk names are skipped with a warning.
    pub fn walk(
        &self,
        after: Option<&Hash>,
        visit: &mut dyn FnMut(Hash, &Path) -> bool,
    ) -> Result<()> {
        let after_hex = after.map(|h| h.to_hex());
        let start1 = after_hex.as_ref().map(|h| h[0..2].to_string());
        let root = self.layout.chunks_dir();
        for d1 in sorted_subdirs(&root, start1.as_deref())? {
            let start2 = after_hex
                .as_ref()
                .filter(|h| h[0..2] == *d1)
                .map(|h| h[2..4].to_string());
            let p1 = root.join(&d1);
            for d2 in sorted_subdirs(&p1, start2.as_deref())? {
                let p2 = p1.join(&d2);
                if !visit_leaf(&p2, after, visit)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn visit_leaf(
    dir: &Path,
    after: Option<&Hash>,
    visit: &mut dyn FnMut(Hash, &Path) -> bool,
) -> Result<bool> {
    let mut names: Vec<Hash> = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        let name = e.file_name();
        match name.to_str().and_then(Hash::parse) {
            Some(h) if after.is_none_or(|a| h > *a) => names.push(h),
            Some(_) => {}
            None => log::warn!("ignoring stray file {}", e.path().display()),
        }
    }
    names.sort();
    for h in names {
        if !visit(h, &dir.join(h.to_hex())) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Two-hex-digit subfolders of `dir`, sorted, from `start` on.
fn sorted_subdirs(dir: &Path, start: Option<&str>) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        let name = e.file_name();
        let n = name.to_str().unwrap_or("");
        let hex2 = n.len() == 2
            && n.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        if hex2 && start.is_none_or(|s| n >= s) {
            v.push(n.to_string());
        }
    }
    v.sort();
    Ok(v)
}

/// Reads and drops a request body of at most `limit` bytes.
fn discard_body(body: &mut dyn Read, limit: u64) -> Result<()> {
    match io::copy(&mut body.take(limit + 1), &mut io::sink()) {
        Ok(n) if n > limit => Err(StoreError::TooLarge { limit_bytes: limit }),
        Ok(_) => Ok(()),
        Err(_) => Err(StoreError::IncompleteBody {
            expected: limit,
            received: 0,
        }),
    }
}

/// SHA-256 and length of everything `r` yields.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<(u64, Hash)> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; IO_BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hasher.finish()))
}

fn same_file(f: &File, path: &PathBuf) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let d = std::env::temp_dir().join(fsutil::unique_tmp_name("dpyfs-engine"));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn open(d: &Path) -> Store {
        Store::open(d, None, None, CHUNK_BYTES_MAX, Reserve::Bytes(0)).unwrap()
    }

    #[test]
    fn reserve_and_size_parsing() {
        assert_eq!(Reserve::parse("5%"), Some(Reserve::Percent(5.0)));
        assert_eq!(Reserve::parse("1G"), Some(Reserve::Bytes(1 << 30)));
        assert_eq!(Reserve::parse("1024"), Some(Reserve::Bytes(1024)));
        assert_eq!(Reserve::parse("101%"), None);
        assert_eq!(Reserve::parse("x"), None);
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn put_list_delete_and_counters() {
        let d = scratch();
        let s = open(&d);
        let mut hashes = Vec::new();
        for i in 0..20u32 {
            let data = i.to_le_bytes().repeat(i as usize);
            let h = Hash::of(&data);
            assert_eq!(
                s.put(&h, &mut &data[..], Some(data.len() as u64)).unwrap(),
                PutOutcome::Created
            );
            assert_eq!(
                s.put(&h, &mut &data[..], None).unwrap(),
                PutOutcome::AlreadyPresent
            );
            hashes.push(h);
        }
        hashes.sort();
        assert_eq!(s.chunk_count(), 20);
        let names = |v: Vec<Listed>| v.into_iter().map(|l| l.hash).collect::<Vec<_>>();
        assert_eq!(names(s.list(None, 1000, false).unwrap()), hashes);
        assert_eq!(
            names(s.list(Some(&hashes[4]), 3, false).unwrap()),
            hashes[5..8].to_vec()
        );
        let listed = s.list(None, 1, true).unwrap();
        assert!(listed[0].mtime > 0 && listed[0].size == s.exists(&listed[0].hash).unwrap());
        s.delete(&hashes[0]).unwrap();
        assert!(matches!(s.delete(&hashes[0]), Err(StoreError::NotFound(_))));
        assert_eq!(s.chunk_count(), 19);
        drop(s);
        let s = open(&d);
        assert_eq!(s.chunk_count(), 19, "counters rebuilt from disk at open");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn second_daemon_on_same_dir_is_refused() {
        let d = scratch();
        let _s = open(&d);
        let e = Store::open(&d, None, None, CHUNK_BYTES_MAX, Reserve::Bytes(0))
            .err()
            .unwrap();
        assert!(e.to_string().contains("in use"), "{e}");
        fs::remove_dir_all(d).unwrap();
    }
}
