//! The file system: paths are keys under the prefix, folders come from `/` in keys
//! (listings with delimiter `/`) and from empty `dir/` marker objects (the rclone and s3fs
//! convention). Files being written live in a spool file; a large one is uploaded in
//! parts while it is written (`stream`), the rest on flush/fsync/release. Reads of
//! committed objects are ranged GETs, and for a sequential reader one GET of the rest of
//! the file read ahead in the background (`Prefetch`).

use super::stream::{PART_BYTES, PositionalReader, Stream};
use crate::client::{Client, ClientError, Listed};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first read-ahead window after a seek; it doubles on each sequential read up to
/// READAHEAD_MAX_BYTES, so a stream is fetched in large ranges and a seek fetches little.
pub const READAHEAD_MIN_BYTES: u64 = 256 * 1024;
pub const READAHEAD_MAX_BYTES: u64 = 8 << 20;
/// A sequential reader's stream arrives in blocks of this size...
const READ_BLOCK_BYTES: u64 = 1 << 20;
/// ...and at most this many wait for the reader (8 MiB ahead per open file).
const READ_BLOCKS_AHEAD: usize = 8;
/// The block size `stat` reports: `cp` and others size their buffers by it.
const BLOCK_BYTES: u32 = 128 * 1024;
/// User metadata name of the modification time (seconds since 1970, with a fraction), as
/// rclone writes it, so `rsync -a` and `cp -p` keep times.
const MTIME_META: &str = "mtime";
const CONTENT_TYPE: &str = "application/octet-stream";
/// Longest name `statfs` reports (an S3 key is at most 1024 bytes in all).
const NAME_MAX_BYTES: u32 = 255;

pub struct FsConfig {
    pub client: Client,
    pub bucket: String,
    pub prefix: String,
    pub ttl: Duration,
    pub owner: u32,
    pub group: u32,
    pub spool: PathBuf,
    pub spool_max_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Attr {
    dir: bool,
    size: u64,
    mtime: Duration,
}

/// Inode numbers for paths (relative to the prefix, no leading or trailing `/`; the root
/// is ""). Numbers are never reused while mounted. An entry lives while the kernel holds
/// it (lookups it has not forgotten) or a file is open; a long-running mount over a large
/// tree therefore keeps only what the kernel keeps.
struct Inodes {
    paths: HashMap<u64, String>,
    inos: HashMap<String, u64>,
    /// Lookups the kernel has been answered and has not forgotten, per inode.
    lookups: HashMap<u64, u64>,
    next: u64,
}

impl Inodes {
    fn new() -> Inodes {
        let mut n = Inodes {
            paths: HashMap::new(),
            inos: HashMap::new(),
            lookups: HashMap::new(),
            next: INodeNo::ROOT.0,
        };
        n.ino("");
        n
    }

    /// The inode of `path`, counted as one more lookup the kernel holds.
    fn looked_up(&mut self, path: &str) -> u64 {
        let i = self.ino(path);
        *self.lookups.entry(i).or_insert(0) += 1;
        i
    }

    /// The kernel forgot `n` lookups of `ino`; Some(ino) when none is left and the entry
    /// may go (the caller checks that no file has it open).
    fn forget(&mut self, ino: u64, n: u64) -> Option<u64> {
        let left = self.lookups.get_mut(&ino)?;
        *left = left.saturating_sub(n);
        if *left > 0 {
            return None;
        }
        self.lookups.remove(&ino);
        Some(ino)
    }

    /// Removes an entry nobody holds (never the root).
    fn drop_unheld(&mut self, ino: u64) {
        if ino == INodeNo::ROOT.0 || self.lookups.contains_key(&ino) {
            return;
        }
        if let Some(p) = self.paths.remove(&ino) {
            self.inos.remove(&p);
        }
    }

    fn ino(&mut self, path: &str) -> u64 {
        if let Some(i) = self.inos.get(path) {
            return *i;
        }
        let i = self.next;
        self.next += 1;
        self.paths.insert(i, path.to_string());
        self.inos.insert(path.to_string(), i);
        i
    }

    /// Moves `old` and everything below it to `new`.
    fn rename(&mut self, old: &str, new: &str) {
        let moved: Vec<(u64, String)> = self
            .paths
            .iter()
            .filter_map(|(i, p)| {
                let rest = if p == old {
                    ""
                } else {
                    p.strip_prefix(old)?
                        .strip_prefix('/')
                        .map(|_| &p[old.len()..])?
                };
                Some((*i, format!("{new}{rest}")))
            })
            .collect();
        if let Some(i) = self.inos.get(new).copied() {
            self.paths.remove(&i);
            self.inos.remove(new);
        }
        for (i, p) in moved {
            if let Some(oldp) = self.paths.insert(i, p.clone()) {
                self.inos.remove(&oldp);
            }
            self.inos.insert(p, i);
        }
    }
}

/// The state of a file while some handle has it open (one per inode, shared).
struct OpenFile {
    opens: u32,
    size: u64,
    mtime: Duration,
    /// The local copy being written, if the file was opened for writing or truncated.
    spool: Option<(PathBuf, std::fs::File)>,
    /// The spool differs from the committed object.
    dirty: bool,
    /// Unlinked while open: never uploaded.
    unlinked: bool,
    /// An upload failed and close/fsync told the program so: the last release does not
    /// try again behind its back (it may be writing the file anew elsewhere).
    reported: bool,
    /// The multipart upload sending the spool while it is written, if one runs.
    stream: Option<Stream>,
    /// A write landed below what a stream had sent: this version goes up whole.
    no_stream: bool,
    /// The program set the time (`cp -p`) while writing: a streamed upload keeps it too.
    mtime_set: bool,
    window_start: u64,
    window: Vec<u8>,
    /// A sequential reader's one GET of the rest of the file, read ahead in the
    /// background.
    prefetch: Option<Prefetch>,
}

/// One GET from `next` to the file's end, read by a background thread into blocks of
/// READ_BLOCK_BYTES, at most READ_BLOCKS_AHEAD of them waiting: a stream is one request,
/// so the director reads no chunk twice (as it would at the edges of separate ranges) and
/// the reader never waits for a request to start. Dropping it ends the thread at its next
/// block (a seek, the last close).
struct Prefetch {
    /// The file offset of the next block to arrive.
    next: u64,
    blocks: std::sync::mpsc::Receiver<Result<Vec<u8>, ClientError>>,
}

/// A folder's names, each with whether it is a folder, taken at opendir.
type Listing = Vec<(String, bool)>;

impl OpenFile {
    fn new(size: u64, mtime: Duration) -> OpenFile {
        OpenFile {
            opens: 0,
            size,
            mtime,
            spool: None,
            dirty: false,
            unlinked: false,
            reported: false,
            stream: None,
            no_stream: false,
            mtime_set: false,
            window_start: 0,
            window: Vec::new(),
            prefetch: None,
        }
    }
}

pub struct Fs {
    client: Arc<Client>,
    bucket: String,
    prefix: String,
    ttl: Duration,
    owner: u32,
    group: u32,
    started: Duration,
    spool: PathBuf,
    spool_max: u64,
    spool_used: AtomicU64,
    spool_n: AtomicU64,
    inodes: Mutex<Inodes>,
    attrs: Mutex<HashMap<String, (Option<Attr>, Instant)>>,
    /// Counts what is forgotten of `attrs` (changes under its lock): an answer fetched
    /// before a change it missed is not cached (see `attr_of`).
    attrs_gen: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Mutex<OpenFile>>>>,
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    /// Inode numbers each open folder's readdir made (see releasedir).
    dir_made: Mutex<HashMap<u64, Vec<u64>>>,
    dir_n: AtomicU64,
    statfs: Mutex<Option<((u64, u64), Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another request must not take the whole mount down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The errno a failed call becomes.
fn errno(e: &ClientError) -> Errno {
    log::warn!("{e}");
    match e {
        ClientError::Status { status: 404, .. } => Errno::ENOENT,
        ClientError::Status { status: 403, .. } => Errno::EACCES,
        ClientError::Status { status: 507, .. } => Errno::ENOSPC,
        ClientError::Status { code, .. } if code == "EntityTooLarge" => Errno::EFBIG,
        _ => Errno::EIO,
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    log::warn!("spool: {e}");
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// rclone's form: seconds, a dot, nine digits of nanoseconds.
pub fn format_mtime(t: Duration) -> String {
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

pub fn parse_mtime(s: &str) -> Option<Duration> {
    let (secs, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let secs: u64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn name_str(name: &OsStr) -> Result<&str, Errno> {
    match name.to_str() {
        Some(n) if !n.is_empty() && !n.contains('/') => Ok(n),
        _ => Err(Errno::EINVAL),
    }
}

impl Fs {
    pub fn new(c: FsConfig) -> Fs {
        let inodes = Inodes::new();
        Fs {
            client: Arc::new(c.client),
            bucket: c.bucket,
            prefix: c.prefix,
            ttl: c.ttl,
            owner: c.owner,
            group: c.group,
            started: now(),
            spool: c.spool,
            spool_max: c.spool_max_bytes,
            spool_used: AtomicU64::new(0),
            spool_n: AtomicU64::new(0),
            inodes: Mutex::new(inodes),
            attrs: Mutex::new(HashMap::new()),
            attrs_gen: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            dir_made: Mutex::new(HashMap::new()),
            dir_n: AtomicU64::new(1),
            statfs: Mutex::new(None),
        }
    }

    fn key(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// The listing prefix of a folder: its keys start with this.
    fn dir_prefix(&self, path: &str) -> String {
        if path.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}{path}/", self.prefix)
        }
    }

    fn path_of(&self, ino: INodeNo) -> Result<String, Errno> {
        lock(&self.inodes)
            .paths
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        Ok(join(&self.path_of(parent)?, name_str(name)?))
    }

    fn ino(&self, path: &str) -> u64 {
        lock(&self.inodes).ino(path)
    }

    fn open_file(&self, ino: u64) -> Option<Arc<Mutex<OpenFile>>> {
        lock(&self.open).get(&ino).cloned()
    }

    /// Forgets what is cached of `path` and of its folder's listing.
    fn invalidate(&self, path: &str) {
        let mut a = lock(&self.attrs);
        self.attrs_gen.fetch_add(1, Ordering::SeqCst);
        a.remove(path);
        a.remove(parent_of(path));
    }

    /// Forgets every cached answer.
    fn invalidate_all(&self) {
        let mut a = lock(&self.attrs);
        self.attrs_gen.fetch_add(1, Ordering::SeqCst);
        a.clear();
    }

    fn file_attr(&self, ino: u64, a: Attr) -> FileAttr {
        let t = UNIX_EPOCH + a.mtime;
        FileAttr {
            ino: INodeNo(ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: if a.dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: if a.dir { 0o755 } else { 0o644 },
            nlink: if a.dir { 2 } else { 1 },
            uid: self.owner,
            gid: self.group,
            rdev: 0,
            blksize: BLOCK_BYTES,
            flags: 0,
        }
    }

    /// What `path` is: a file being written (the spool), a cached answer, an object
    /// (HEAD), a folder (any key below it), or nothing.
    fn attr_of(&self, path: &str) -> Result<Option<Attr>, Errno> {
        if path.is_empty() {
            return Ok(Some(Attr {
                dir: true,
                size: 0,
                mtime: self.started,
            }));
        }
        // Taken before anything is looked at: an upload committed while this HEAD runs
        // invalidates after it, and the older answer must not then be cached as new (the
        // next open would fill its spool from a stale size).
        let seen = self.attrs_gen.load(Ordering::SeqCst);
        let ino = lock(&self.inodes).inos.get(path).copied();
        if let Some(of) = ino.and_then(|i| self.open_file(i)) {
            let of = lock(&of);
            if of.spool.is_some() && !of.unlinked {
                return Ok(Some(Attr {
                    dir: false,
                    size: of.size,
                    mtime: of.mtime,
                }));
            }
        }
        // (No let-chains: the ARM build's Debian rustc is 1.85.)
        if let Some((a, at)) = lock(&self.attrs).get(path) {
            if at.elapsed() < self.ttl {
                return Ok(*a);
            }
        }
        let key = self.key(path);
        let a = match self
            .client
            .retrying("lookup", || self.client.head(&self.bucket, &key))
        {
            Ok(Some(h)) => Some(Attr {
                dir: false,
                size: h.size,
                mtime: h
                    .meta
                    .iter()
                    .find(|(k, _)| k == MTIME_META)
                    .and_then(|(_, v)| parse_mtime(v))
                    .unwrap_or(Duration::from_millis(h.modified_ms)),
            }),
            Ok(None) => {
                let below = self.first_keys(&self.dir_prefix(path), 1)?;
                (!below.is_empty()).then_some(Attr {
                    dir: true,
                    size: 0,
                    mtime: self.started,
                })
            }
            Err(e) => return Err(errno(&e)),
        };
        let mut cache = lock(&self.attrs);
        if self.attrs_gen.load(Ordering::SeqCst) == seen {
            cache.insert(path.to_string(), (a, Instant::now()));
        }
        Ok(a)
    }

    /// Names in a folder, (name, is a folder), files being written included.
    fn listing(&self, path: &str) -> Result<Listing, Errno> {
        let dp = self.dir_prefix(path);
        let listed = self
            .client
            .list(&self.bucket, &dp, Some("/"))
            .map_err(|e| errno(&e))?;
        let mut names: Vec<(String, bool)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for l in listed {
            let (name, dir) = match &l {
                Listed::Object { key, .. } => (key.get(dp.len()..).unwrap_or(""), false),
                Listed::Prefix(p) => (p.get(dp.len()..).unwrap_or("").trim_end_matches('/'), true),
            };
            // A file and a folder of one name: the file wins, as in lookup.
            if !name.is_empty() && !name.contains('/') && seen.insert(name.to_string()) {
                names.push((name.to_string(), dir));
            }
        }
        for p in self.pending_paths() {
            if parent_of(&p) == path {
                let name = p.rsplit('/').next().unwrap_or(&p).to_string();
                if seen.insert(name.clone()) {
                    names.push((name, false));
                }
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        names.dedup_by(|a, b| a.0 == b.0);
        Ok(names)
    }

    fn spool_reserve(&self, more: u64) -> Result<(), Errno> {
        let r = self
            .spool_used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used + more <= self.spool_max).then_some(used + more)
            });
        r.map(|_| ()).map_err(|_| {
            log::warn!(
                "spool full ({} of {} bytes): refusing {more} more",
                self.spool_used.load(Ordering::SeqCst),
                self.spool_max
            );
            Errno::ENOSPC
        })
    }

    fn spool_release(&self, n: u64) {
        let _ = self
            .spool_used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Gives `of` a spool file holding the first `keep` bytes of the committed object.
    fn make_spool(&self, path: &str, of: &mut OpenFile, keep: u64) -> Result<(), Errno> {
        if of.spool.is_some() {
            return Ok(());
        }
        let keep = keep.min(of.size);
        self.spool_reserve(keep)?;
        let made = (|| {
            let p = self.spool.join(format!(
                "{}.part",
                self.spool_n.fetch_add(1, Ordering::SeqCst)
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(|e| io_errno(&e))?;
            // Unlinked at once: the open file is the only name, so nothing is left behind
            // if the mount process dies.
            let _ = std::fs::remove_file(&p);
            let mut at = 0;
            while at < keep {
                let n = READAHEAD_MAX_BYTES.min(keep - at);
                let data = self
                    .client
                    .retrying("read for writing", || {
                        self.client.get_range(&self.bucket, &self.key(path), at, n)
                    })
                    .map_err(|e| errno(&e))?;
                if data.is_empty() {
                    return Err(Errno::EIO);
                }
                f.write_all_at(&data, at).map_err(|e| io_errno(&e))?;
                at += data.len() as u64;
            }
            Ok((p, f))
        })();
        match made {
            Ok(s) => {
                of.spool = Some(s);
                of.size = keep;
                Ok(())
            }
            Err(e) => {
                self.spool_release(keep);
                Err(e)
            }
        }
    }

    /// Uploads a dirty spool: completes the stream of parts if one runs, else the whole
    /// file in one PUT. Ok once the object is committed.
    fn upload(&self, ino: u64, of: &mut OpenFile) -> Result<(), Errno> {
        if !of.dirty || of.unlinked {
            return Ok(());
        }
        let Some((_, file)) = &of.spool else {
            return Ok(());
        };
        let path = lock(&self.inodes)
            .paths
            .get(&ino)
            .cloned()
            .ok_or(Errno::ENOENT)?;
        if let Some(stream) = of.stream.take() {
            stream.finish(file, of.size).map_err(|e| errno(&e))?;
            of.dirty = false;
            of.no_stream = false;
            self.invalidate(&path);
            if std::mem::take(&mut of.mtime_set) {
                self.set_mtime(&path, of.mtime)?;
            }
            return Ok(());
        }
        let meta = vec![(MTIME_META.to_string(), format_mtime(of.mtime))];
        let size = of.size;
        self.client
            .retrying(&format!("upload {path}"), || {
                let mut r = std::io::Read::take(PositionalReader { file, at: 0 }, size);
                self.client.put_object_meta(
                    &self.bucket,
                    &self.key(&path),
                    CONTENT_TYPE,
                    &meta,
                    crate::client::Payload::Reader(&mut r, Some(size)),
                )
            })
            .map_err(|e| errno(&e))?;
        of.dirty = false;
        of.no_stream = false;
        of.mtime_set = false;
        self.invalidate(&path);
        Ok(())
    }

    /// A write or truncation at `from`: a stream that has sent bytes at or past it no
    /// longer matches the file, so it is given up and this version is uploaded whole.
    fn touched(&self, of: &mut OpenFile, from: u64) {
        if of.stream.as_ref().is_some_and(|s| from < s.sent) {
            if let Some(s) = of.stream.take() {
                s.abort();
            }
            of.no_stream = true;
        }
    }

    /// Sends the next parts of a file being written once a part's worth is past what the
    /// stream has sent, starting the stream (a multipart upload) at the first.
    fn stream_more(&self, ino: u64, of: &mut OpenFile) {
        let sent = of.stream.as_ref().map_or(0, |s| s.sent);
        if of.unlinked || of.no_stream || of.size < sent + PART_BYTES {
            return;
        }
        if of.stream.is_none() {
            let Ok(path) = self.path_of(INodeNo(ino)) else {
                return;
            };
            match Stream::start(
                self.client.clone(),
                &self.bucket,
                &self.key(&path),
                CONTENT_TYPE,
            ) {
                Ok(s) => of.stream = Some(s),
                Err(e) => {
                    // Not the write's failure: the file goes up whole at close instead.
                    log::warn!("{path}: uploading while writing: {e}");
                    of.no_stream = true;
                    return;
                }
            }
        }
        let (Some(stream), Some((_, file))) = (of.stream.as_mut(), &of.spool) else {
            return;
        };
        while stream.has_room() && of.size >= stream.sent + PART_BYTES {
            if let Err(e) = stream.send(file, PART_BYTES) {
                log::warn!("spool: {e}");
                of.no_stream = true;
                if let Some(s) = of.stream.take() {
                    s.abort();
                }
                return;
            }
        }
    }

    /// Creates the marker of `path`'s folder if the folder would otherwise vanish (its last
    /// key went away), so an emptied folder stays, as in any file system.
    fn keep_folder(&self, path: &str) {
        let parent = parent_of(path);
        if parent.is_empty() {
            return;
        }
        let dp = self.dir_prefix(parent);
        let emptied = matches!(self.first_keys(&dp, 1), Ok(below) if below.is_empty());
        if !emptied {
            return;
        }
        let marker = self.client.put_object(
            &self.bucket,
            &dp,
            CONTENT_TYPE,
            crate::client::Payload::Bytes(b""),
        );
        if let Err(e) = marker {
            log::warn!("keeping folder {parent}: {e}");
        }
    }

    fn set_mtime(&self, path: &str, t: Duration) -> Result<(), Errno> {
        let key = self.key(path);
        let meta = vec![(MTIME_META.to_string(), format_mtime(t))];
        self.client
            .retrying("set time", || {
                self.client
                    .copy_object(&self.bucket, &key, &key, Some((CONTENT_TYPE, &meta)))
            })
            .map_err(|e| errno(&e))?;
        self.invalidate(path);
        Ok(())
    }

    /// Truncates (or extends with zeros) to `size`. The truncation counts as an open while
    /// it runs, so it shares the state of handles open on the file (their close uploads),
    /// or, when none is, uploads itself and reports a failure.
    fn truncate(&self, ino: u64, path: &str, size: u64) -> Result<(), Errno> {
        let of = self.open_state(ino, path)?;
        let r = self.truncate_open(ino, path, &of, size);
        self.release_impl(ino);
        r
    }

    fn truncate_open(
        &self,
        ino: u64,
        path: &str,
        of: &Mutex<OpenFile>,
        size: u64,
    ) -> Result<(), Errno> {
        let mut g = lock(of);
        self.make_spool(path, &mut g, size)?;
        if size > g.size {
            self.spool_reserve(size - g.size)?;
        }
        self.touched(&mut g, size);
        if let Some((_, f)) = &g.spool {
            if let Err(e) = f.set_len(size) {
                if size > g.size {
                    self.spool_release(size - g.size);
                }
                return Err(io_errno(&e));
            }
        }
        if size < g.size {
            self.spool_release(g.size - size);
        }
        g.size = size;
        g.mtime = now();
        g.dirty = true;
        g.window.clear();
        g.prefetch = None;
        if g.opens == 1 {
            // No handle but this one: upload now. A failure is reported here, so the
            // release that follows does not try again behind the program's back.
            let r = self.upload(ino, &mut g);
            g.reported = r.is_err();
            r?;
        }
        self.invalidate(path);
        Ok(())
    }

    fn rename_impl(&self, old: &str, new: &str, flags: RenameFlags) -> Result<(), Errno> {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        let a = self.attr_of(old)?.ok_or(Errno::ENOENT)?;
        let target = self.attr_of(new)?;
        if target.is_some() && flags.contains(RenameFlags::RENAME_NOREPLACE) {
            return Err(Errno::EEXIST);
        }
        let copy_delete = |from: &str, to: &str| -> Result<(), Errno> {
            self.client
                .retrying("rename", || {
                    self.client.copy_object(&self.bucket, from, to, None)
                })
                .map_err(|e| errno(&e))?;
            self.client
                .retrying("rename", || self.client.delete_object(&self.bucket, from))
                .map_err(|e| errno(&e))
        };
        if !a.dir {
            if target.is_some_and(|t| t.dir) {
                return Err(Errno::EISDIR);
            }
            let ino = lock(&self.inodes).inos.get(old).copied();
            let pending = ino.and_then(|i| self.open_file(i).map(|of| (i, of)));
            if let Some((i, of)) = &pending {
                let mut g = lock(of);
                if g.spool.is_some() && !g.unlinked && !self.exists_committed(old)? {
                    // Never uploaded: the new name is all it needs (a stream under the
                    // old key starts again under the new one).
                    if let Some(s) = g.stream.take() {
                        s.abort();
                    }
                    lock(&self.inodes).rename(old, new);
                    g.dirty = true;
                    drop(g);
                    self.invalidate(old);
                    self.invalidate(new);
                    return Ok(());
                }
                self.upload(*i, &mut g)?;
            }
            copy_delete(&self.key(old), &self.key(new))?;
        } else {
            if let Some(t) = target {
                if !t.dir {
                    return Err(Errno::ENOTDIR);
                }
                let below = self.first_keys(&self.dir_prefix(new), 2)?;
                if below.iter().any(
                    |l| !matches!(l, Listed::Object { key, .. } if *key == self.dir_prefix(new)),
                ) {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            let (from, to) = (self.dir_prefix(old), self.dir_prefix(new));
            let keys = self
                .client
                .list(&self.bucket, &from, None)
                .map_err(|e| errno(&e))?;
            for l in keys {
                if let Listed::Object { key, .. } = l {
                    let rest = key.get(from.len()..).unwrap_or("");
                    copy_delete(&key, &format!("{to}{rest}"))?;
                }
            }
        }
        lock(&self.inodes).rename(old, new);
        self.invalidate_all();
        self.keep_folder(old);
        Ok(())
    }

    /// The first `max` keys under `prefix` (no grouping): enough to tell empty from not.
    fn first_keys(&self, prefix: &str, max: u32) -> Result<Vec<Listed>, Errno> {
        self.client
            .retrying("list", || {
                self.client.list_first(&self.bucket, prefix, None, max)
            })
            .map_err(|e| errno(&e))
    }

    fn exists_committed(&self, path: &str) -> Result<bool, Errno> {
        self.client
            .head(&self.bucket, &self.key(path))
            .map(|h| h.is_some())
            .map_err(|e| errno(&e))
    }

    fn read_impl(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let of = self.open_file(ino).ok_or(Errno::EBADF)?;
        let mut g = lock(&of);
        let end = (offset + u64::from(size)).min(g.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let want = usize::try_from(end - offset).map_err(|_| Errno::EINVAL)?;
        if let Some((_, f)) = &g.spool {
            let mut buf = vec![0u8; want];
            let n = f.read_at(&mut buf, offset).map_err(|e| io_errno(&e))?;
            buf.truncate(n);
            return Ok(buf);
        }
        let w_end = g.window_start + g.window.len() as u64;
        // The kernel sends read-ahead requests several at a time, and threads may take
        // them out of order: "sequential" allows a block of slack either way.
        let near =
            offset >= g.window_start && offset <= w_end + READ_BLOCK_BYTES && !g.window.is_empty();
        if near && end > w_end && g.prefetch.as_ref().is_some_and(|p| p.next == w_end) {
            extend_window(&mut g, offset, end)?;
        }
        let w_end = g.window_start + g.window.len() as u64;
        if offset >= g.window_start && end <= w_end {
            let from = usize::try_from(offset - g.window_start).map_err(|_| Errno::EINVAL)?;
            let out = g.window[from..from + want].to_vec();
            self.read_ahead(ino, &mut g, offset);
            return Ok(out);
        }
        // Sequential when this read starts where the window ends (or inside it): grow the
        // window; a seek starts small again.
        let sequential = offset >= g.window_start && offset <= w_end && !g.window.is_empty();
        let next = if sequential {
            (g.window.len() as u64 * 2).clamp(READAHEAD_MIN_BYTES, READAHEAD_MAX_BYTES)
        } else {
            READAHEAD_MIN_BYTES
        };
        let len = next.max(end - offset).min(g.size - offset);
        let path = self.path_of(INodeNo(ino))?;
        let data = self
            .client
            .retrying("read", || {
                self.client
                    .get_range(&self.bucket, &self.key(&path), offset, len)
            })
            .map_err(|e| errno(&e))?;
        let n = want.min(data.len());
        let out = data[..n].to_vec();
        g.window_start = offset;
        g.window = data;
        g.prefetch = None;
        if sequential {
            // Already a stream: the next window at once.
            self.read_ahead(ino, &mut g, offset + 1);
        }
        Ok(out)
    }

    /// Once a reader goes on past its first read in a window (it reads sequentially),
    /// starts one GET of the rest of the file from the window's end, read ahead in the
    /// background (see `Prefetch`).
    fn read_ahead(&self, ino: u64, of: &mut OpenFile, read_start: u64) {
        let w_end = of.window_start + of.window.len() as u64;
        if of.prefetch.is_some() || w_end >= of.size || read_start <= of.window_start {
            return;
        }
        let Ok(path) = self.path_of(INodeNo(ino)) else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_BLOCKS_AHEAD);
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key(&path));
        let len = of.size - w_end;
        std::thread::spawn(move || {
            let range = format!("bytes={w_end}-{}", w_end + len - 1);
            let got = client.call(
                "GET",
                &crate::client::object_path(&bucket, &key),
                "",
                &[("range".into(), range)],
                crate::client::Payload::None,
            );
            let mut body = match got {
                Ok(a) => std::io::Read::take(a.into_download().body, len),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            loop {
                let mut block = Vec::new();
                let r = std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut body, READ_BLOCK_BYTES),
                    &mut block,
                );
                let msg = match r {
                    Ok(0) => return,
                    Ok(_) => Ok(block),
                    Err(e) => Err(ClientError::Transport(format!("reading {key}: {e}"))),
                };
                let failed = msg.is_err();
                // An error sends nothing: the reader is gone.
                if tx.send(msg).is_err() || failed {
                    return;
                }
            }
        });
        of.prefetch = Some(Prefetch {
            next: w_end,
            blocks: rx,
        });
    }

    /// The live open state of `ino` (see `join_live`), with one more open counted.
    fn join_open(&self, ino: u64) -> Option<Arc<Mutex<OpenFile>>> {
        join_live(&lock(&self.open), ino)
    }

    /// The open state of `ino` with one more open counted: the live one if any, else one
    /// made by `make`, which replaces a state on its way out. The count changes under the
    /// map's lock, so a last release never removes a state that an open has just taken.
    fn acquire(&self, ino: u64, make: impl FnOnce() -> OpenFile) -> Arc<Mutex<OpenFile>> {
        let mut map = lock(&self.open);
        if let Some(of) = join_live(&map, ino) {
            return of;
        }
        let mut fresh = make();
        fresh.opens = 1;
        let of = Arc::new(Mutex::new(fresh));
        map.insert(ino, of.clone());
        of
    }

    /// The open state of the file `path` (inode `ino`) with one more open counted: the
    /// live one, or a new one sized by what the object is. Made only from the object, never
    /// from a state some release is ending: a spool filled from a size of 0 there and then
    /// written at the kernel's end of file (an append) held zeros where the file's bytes
    /// had been, and they were uploaded.
    fn open_state(&self, ino: u64, path: &str) -> Result<Arc<Mutex<OpenFile>>, Errno> {
        if let Some(of) = self.join_open(ino) {
            return Ok(of);
        }
        let a = self.attr_of(path)?.ok_or(Errno::ENOENT)?;
        if a.dir {
            return Err(Errno::EISDIR);
        }
        // A live state made meanwhile wins over `a`: its spool is newer than the object.
        Ok(self.acquire(ino, || OpenFile::new(a.size, a.mtime)))
    }

    fn open_impl(&self, ino: u64, flags: OpenFlags) -> Result<(), Errno> {
        let path = self.path_of(INodeNo(ino))?;
        let writing = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        let trunc = flags.0 & libc::O_TRUNC != 0;
        let of = self.open_state(ino, &path)?;
        let r = (|| {
            let mut g = lock(&of);
            if writing || trunc {
                let keep = if trunc { 0 } else { g.size };
                self.make_spool(&path, &mut g, keep)?;
                if trunc {
                    self.touched(&mut g, 0);
                    if let Some((_, f)) = &g.spool {
                        f.set_len(0).map_err(|e| io_errno(&e))?;
                    }
                    self.spool_release(g.size);
                    g.size = 0;
                    g.dirty = true;
                    g.mtime = now();
                }
            }
            Ok(())
        })();
        if r.is_err() {
            self.release_impl(ino);
        }
        r
    }

    fn release_impl(&self, ino: u64) {
        let Some(of) = self.open_file(ino) else {
            return;
        };
        let mut g = lock(&of);
        if g.opens > 1 {
            g.opens -= 1;
            return;
        }
        // The last handle: upload while still counted, so an open meanwhile shares it.
        if g.reported && g.dirty {
            log::warn!("dropping an unsaved file (inode {ino}): close/fsync reported it");
        } else if let Err(e) = self.upload(ino, &mut g) {
            log::warn!("dropping an unsaved file (inode {ino}): {e:?}");
        }
        g.opens = g.opens.saturating_sub(1);
        if g.opens > 0 {
            return;
        }
        if let Some(s) = g.stream.take() {
            s.abort();
        }
        if g.spool.take().is_some() {
            self.spool_release(g.size);
        }
        g.dirty = false;
        drop(g);
        let mut map = lock(&self.open);
        let unused = map
            .get(&ino)
            .is_some_and(|cur| Arc::ptr_eq(cur, &of) && lock(cur).opens == 0);
        if unused {
            map.remove(&ino);
        }
    }

    fn write_impl(&self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let Some(of) = self.open_file(ino) else {
            log::warn!("write to inode {ino}, which is not open");
            return Err(Errno::EBADF);
        };
        let mut g = lock(&of);
        let end = offset + data.len() as u64;
        if end > g.size {
            self.spool_reserve(end - g.size)?;
        }
        self.touched(&mut g, offset);
        let Some((_, f)) = &g.spool else {
            log::warn!("write to inode {ino}, which has no spool");
            return Err(Errno::EBADF);
        };
        if let Err(e) = f.write_all_at(data, offset) {
            if end > g.size {
                self.spool_release(end - g.size);
            }
            return Err(io_errno(&e));
        }
        g.size = g.size.max(end);
        g.dirty = true;
        g.mtime = now();
        self.stream_more(ino, &mut g);
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    fn statfs_impl(&self) -> Result<(u64, u64), Errno> {
        if let Some((v, at)) = *lock(&self.statfs) {
            if at.elapsed() < self.ttl {
                return Ok(v);
            }
        }
        let st = self.client.admin_json("status").map_err(|e| errno(&e))?;
        let replicas = st["replicas"].as_u64().unwrap_or(1).max(1);
        let (mut total, mut free) = (0u64, 0u64);
        for s in st["stores"].as_array().into_iter().flatten() {
            if s["up"] == true {
                let field = |f: &str| {
                    s.pointer(&format!("/status/disk/{f}"))
                        .and_then(|v| v.as_u64())
                };
                total += field("total_bytes").unwrap_or(0);
                free += field("free_bytes").unwrap_or(0);
            }
        }
        // Each byte is stored `replicas` times: that much less room for files.
        let v = (total / replicas, free / replicas);
        *lock(&self.statfs) = Some((v, Instant::now()));
        Ok(v)
    }
}

/// A sequential reader whose read goes past the window, with the background stream going
/// on from the window's end: keeps the window from a block before `offset` on and adds
/// the stream's blocks until `end` is covered (or the stream ends: the file shrank, or a
/// read failed, which drops the stream).
fn extend_window(g: &mut OpenFile, offset: u64, end: u64) -> Result<(), Errno> {
    let keep_from = offset.saturating_sub(READ_BLOCK_BYTES).max(g.window_start);
    let from = usize::try_from(keep_from - g.window_start).map_err(|_| Errno::EINVAL)?;
    let mut w = g.window.split_off(from);
    let mut ended = false;
    if let Some(p) = g.prefetch.as_mut() {
        while keep_from + (w.len() as u64) < end {
            match p.blocks.recv() {
                Ok(Ok(block)) => {
                    p.next += block.len() as u64;
                    w.extend_from_slice(&block);
                }
                Ok(Err(e)) => {
                    log::warn!("read-ahead: {e}");
                    ended = true;
                    break;
                }
                // The stream ended before the read's end (the file shrank).
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
    }
    if ended {
        g.prefetch = None;
    }
    g.window = w;
    g.window_start = keep_from;
    Ok(())
}

/// The state of `ino` in the open map, with one more open counted, if some handle holds
/// it. A state whose last release has begun (no opens left) is never joined: its spool is
/// gone or going, and its size and flags belong to a version already closed.
fn join_live(map: &HashMap<u64, Arc<Mutex<OpenFile>>>, ino: u64) -> Option<Arc<Mutex<OpenFile>>> {
    let of = map.get(&ino)?;
    let mut g = lock(of);
    if g.opens == 0 {
        return None;
    }
    g.opens += 1;
    drop(g);
    Some(of.clone())
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // O_TRUNC comes with open (not as a separate truncate to 0 first), so rewriting a
        // file never stores an empty version in between.
        if let Err(missing) = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC) {
            log::info!("kernel without {missing:?}");
        }
        Ok(())
    }

    fn destroy(&mut self) {
        let open: Vec<(u64, Arc<Mutex<OpenFile>>)> = lock(&self.open)
            .iter()
            .map(|(i, o)| (*i, o.clone()))
            .collect();
        for (ino, of) in open {
            if let Err(e) = self.upload(ino, &mut lock(&of)) {
                log::warn!("unmount: inode {ino} not saved: {e:?}");
            }
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let gone = lock(&self.inodes).forget(ino.0, nlookup);
        if let Some(i) = gone {
            self.drop_if_unheld(i);
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.child(parent, name).and_then(|p| {
            let a = self.attr_of(&p)?.ok_or(Errno::ENOENT)?;
            Ok(self.file_attr(lock(&self.inodes).looked_up(&p), a))
        });
        match r {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self
            .path_of(ino)
            .and_then(|p| self.attr_of(&p)?.ok_or(Errno::ENOENT));
        match r {
            Ok(a) => reply.attr(&self.ttl, &self.file_attr(ino.0, a)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Mode and owner are accepted and not kept: every file shows 0644 and every
        // folder 0755, owned by the mount point's owner.
        let r = (|| {
            let path = self.path_of(ino)?;
            if let Some(n) = size {
                self.truncate(ino.0, &path, n)?;
            }
            if let Some(t) = mtime {
                let t = match t {
                    TimeOrNow::SpecificTime(t) => t.duration_since(UNIX_EPOCH).unwrap_or_default(),
                    TimeOrNow::Now => now(),
                };
                let a = self.attr_of(&path)?.ok_or(Errno::ENOENT)?;
                let pending = self.open_file(ino.0);
                let mut kept = false;
                if let Some(of) = pending {
                    let mut g = lock(&of);
                    g.mtime = t;
                    kept = g.dirty;
                    g.mtime_set = kept;
                }
                if !a.dir && !kept {
                    self.set_mtime(&path, t)?;
                }
            }
            self.attr_of(&path)?.ok_or(Errno::ENOENT)
        })();
        match r {
            Ok(a) => reply.attr(&self.ttl, &self.file_attr(ino.0, a)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            let path = self.child(parent, name)?;
            if self.attr_of(&path)?.is_some() {
                return Err(Errno::EEXIST);
            }
            let marker = self.dir_prefix(&path);
            self.client
                .retrying("mkdir", || {
                    self.client.put_object(
                        &self.bucket,
                        &marker,
                        CONTENT_TYPE,
                        crate::client::Payload::Bytes(b""),
                    )
                })
                .map_err(|e| errno(&e))?;
            self.invalidate(&path);
            let a = Attr {
                dir: true,
                size: 0,
                mtime: self.started,
            };
            Ok(self.file_attr(lock(&self.inodes).looked_up(&path), a))
        })();
        match r {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            let path = self.child(parent, name)?;
            let ino = lock(&self.inodes).inos.get(&path).copied();
            if let Some(of) = ino.and_then(|i| self.open_file(i)) {
                lock(&of).unlinked = true;
            }
            self.client
                .retrying("unlink", || {
                    self.client.delete_object(&self.bucket, &self.key(&path))
                })
                .map_err(|e| errno(&e))?;
            self.invalidate(&path);
            self.keep_folder(&path);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            let path = self.child(parent, name)?;
            let marker = self.dir_prefix(&path);
            let below = self.first_keys(&marker, 2)?;
            let pending = self.listing_pending_under(&path);
            if pending
                || below
                    .iter()
                    .any(|l| !matches!(l, Listed::Object { key, .. } if *key == marker))
            {
                return Err(Errno::ENOTEMPTY);
            }
            self.client
                .retrying("rmdir", || self.client.delete_object(&self.bucket, &marker))
                .map_err(|e| errno(&e))?;
            self.invalidate(&path);
            self.keep_folder(&path);
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let old = self.child(parent, name)?;
            let new = self.child(newparent, newname)?;
            self.rename_impl(&old, &new, flags)
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_impl(ino.0, flags) {
            Ok(()) => reply.opened(FileHandle(ino.0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            let path = self.child(parent, name)?;
            let ino = lock(&self.inodes).looked_up(&path);
            let of = self.acquire(ino, || OpenFile::new(0, now()));
            let mut g = lock(&of);
            g.unlinked = false;
            if let Err(e) = self.make_spool(&path, &mut g, 0) {
                drop(g);
                self.release_impl(ino);
                // The kernel never hears of this inode: its lookup is not held.
                let _ = lock(&self.inodes).forget(ino, 1);
                self.drop_if_unheld(ino);
                return Err(e);
            }
            g.dirty = true;
            let a = Attr {
                dir: false,
                size: g.size,
                mtime: g.mtime,
            };
            drop(g);
            self.invalidate(&path);
            Ok(self.file_attr(ino, a))
        })();
        match r {
            Ok(a) => reply.created(
                &self.ttl,
                &a,
                Generation(0),
                FileHandle(a.ino.0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.read_impl(ino.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.write_impl(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.reply_upload(ino.0, reply);
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.reply_upload(ino.0, reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.release_impl(ino.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // The listing is taken once, at opendir, so a folder read in several calls is one
        // consistent snapshot.
        match self.path_of(ino).and_then(|p| self.listing(&p)) {
            Ok(names) => {
                let fh = self.dir_n.fetch_add(1, Ordering::SeqCst);
                lock(&self.dirs).insert(fh, Arc::new(names));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(names) = lock(&self.dirs).get(&fh.0).cloned() else {
            reply.error(Errno::EBADF);
            return;
        };
        let Ok(path) = self.path_of(ino) else {
            reply.error(Errno::ENOENT);
            return;
        };
        let parent_ino = if path.is_empty() {
            ino.0
        } else {
            self.ino(parent_of(&path))
        };
        let mut all = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (parent_ino, FileType::Directory, "..".to_string()),
        ];
        let mut made = Vec::new();
        {
            let mut inodes = lock(&self.inodes);
            for (name, dir) in names.iter() {
                let kind = if *dir {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                let p = join(&path, name);
                let known = inodes.inos.get(&p).copied();
                let i = known.unwrap_or_else(|| inodes.ino(&p));
                if known.is_none() {
                    made.push(i);
                }
                all.push((i, kind, name.clone()));
            }
        }
        // Numbers made only for this listing go at releasedir unless looked up by then.
        lock(&self.dir_made).entry(fh.0).or_default().extend(made);
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, kind, name)) in all.into_iter().enumerate().skip(skip) {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        let made = lock(&self.dir_made).remove(&fh.0).unwrap_or_default();
        for ino in made {
            self.drop_if_unheld(ino);
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Folder changes are calls that have returned: nothing is pending.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.statfs_impl() {
            Ok((total, free)) => {
                let b = u64::from(BLOCK_BYTES);
                // Inodes: no limit but memory; the used count is the inode map's size,
                // so `df -i` shows what a long-running mount holds.
                let files = u64::from(u32::MAX);
                reply.statfs(
                    total / b,
                    free / b,
                    free / b,
                    files,
                    files.saturating_sub(self.inodes_used()),
                    BLOCK_BYTES,
                    NAME_MAX_BYTES,
                    BLOCK_BYTES,
                );
            }
            Err(e) => reply.error(e),
        }
    }
}

impl Fs {
    fn reply_upload(&self, ino: u64, reply: ReplyEmpty) {
        let Some(of) = self.open_file(ino) else {
            reply.ok();
            return;
        };
        let mut g = lock(&of);
        let r = self.upload(ino, &mut g);
        g.reported = r.is_err();
        drop(g);
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Whether a file being written (not yet uploaded) lies under the folder `path`.
    fn listing_pending_under(&self, path: &str) -> bool {
        let below = format!("{path}/");
        self.pending_paths().iter().any(|p| p.starts_with(&below))
    }

    /// The paths of files being written (a spool, not unlinked).
    ///
    /// Lock order: the open map is held while an open file's lock is taken (`acquire`), an
    /// open file's lock while the inode map's is taken (`upload`). So the inode map's lock
    /// is never held while taking the open map's (nor a file's): here each map is read on
    /// its own, and the files are locked after both are let go.
    fn pending_paths(&self) -> Vec<String> {
        let open: Vec<(u64, Arc<Mutex<OpenFile>>)> = lock(&self.open)
            .iter()
            .map(|(i, of)| (*i, of.clone()))
            .collect();
        let open: Vec<(String, Arc<Mutex<OpenFile>>)> = {
            let inodes = lock(&self.inodes);
            open.into_iter()
                .filter_map(|(i, of)| Some((inodes.paths.get(&i)?.clone(), of)))
                .collect()
        };
        open.into_iter()
            .filter(|(_, of)| {
                let of = lock(of);
                of.spool.is_some() && !of.unlinked
            })
            .map(|(p, _)| p)
            .collect()
    }

    /// Drops `ino` from the inode map if the kernel holds no lookup of it and no file has
    /// it open.
    fn drop_if_unheld(&self, ino: u64) {
        // Not nested (see `pending_paths`). An open between the two steps needs a lookup
        // the kernel holds, which `drop_unheld` sees.
        let open = lock(&self.open).contains_key(&ino);
        if !open {
            lock(&self.inodes).drop_unheld(ino);
        }
    }

    /// Entries in the inode map (`df -i` shows them as used inodes).
    fn inodes_used(&self) -> u64 {
        lock(&self.inodes).paths.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_round_trip_in_rclone_form() {
        let t = Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(format_mtime(t), "1700000000.123456789");
        assert_eq!(parse_mtime("1700000000.123456789"), Some(t));
        assert_eq!(
            parse_mtime("1700000000.5"),
            Some(Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_mtime("1700000000"),
            Some(Duration::new(1_700_000_000, 0))
        );
        assert_eq!(parse_mtime("x"), None);
        assert_eq!(parse_mtime("1.x"), None);
    }

    #[test]
    fn renames_move_descendants_only() {
        let mut n = Inodes::new();
        let a = n.ino("a");
        let ab = n.ino("a/b");
        let ax = n.ino("ax");
        n.rename("a", "z/y");
        assert_eq!(n.paths[&a], "z/y");
        assert_eq!(n.paths[&ab], "z/y/b");
        assert_eq!(n.paths[&ax], "ax");
        assert_eq!(n.inos["z/y/b"], ab);
        assert!(!n.inos.contains_key("a/b"));
    }
}
