//! The director's append-only journal: framing, segments, sequence numbers, durability,
//! snapshots and replay. It does not know what records mean; the index converts the JSON
//! objects handed back by replay into typed records and refuses unknown types itself.
//!
//! On disk, under the director's data dir DIR (see docs/FORMAT.md):
//! - `journal/NNNNNNNN.log`: segments, one record per line, `<crc32 8 hex> <json>\n`.
//! - `snapshot-<seq, 20 digits>.json`: `{"format":1,"seq":S,"state":...}`, the caller's
//!   state after every record up to S.
//!
//! Locking: `state` guards the open segment and the sequence counters; lines are written
//! under it so that file order is seq order. fsync runs outside it (group commit, see
//! `Journal::wait_durable`). `snapshot_seq` serialises `snapshot` calls and is never taken
//! while `state` is held, so the two cannot deadlock.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};

use crate::fsutil::{sync_dir, write_atomic};

/// A segment is closed and a new one started once the next line would take it past this.
pub const SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The only snapshot layout this code reads and writes.
pub const SNAPSHOT_FORMAT: u64 = 1;

const JOURNAL_DIR: &str = "journal";
const SEGMENT_DIGITS: usize = 8;
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_DIGITS: usize = 20;

pub type Result<T, E = JournalError> = std::result::Result<T, E>;

pub struct JournalConfig {
    /// The director's data dir; segments live in `dir/journal/`, snapshots in `dir`.
    pub dir: PathBuf,
    pub segment_bytes_max: u64,
}

impl JournalConfig {
    pub fn new(dir: PathBuf) -> JournalConfig {
        JournalConfig {
            dir,
            segment_bytes_max: SEGMENT_BYTES_MAX,
        }
    }
}

/// What `Journal::open` found on disk, for the caller to rebuild its state from.
#[derive(Debug)]
pub struct Replay {
    /// The `state` of the newest snapshot, if there is one.
    pub snapshot: Option<Value>,
    /// The seq the snapshot covers; 0 without a snapshot.
    pub snapshot_seq: u64,
    /// The raft term of the record at `snapshot_seq` (0 when the snapshot does not say:
    /// written before directors had terms, or no snapshot).
    pub snapshot_term: u64,
    /// The directors' voter set in force at `snapshot_seq`, when the snapshot says.
    pub snapshot_voters: Option<Vec<u64>>,
    /// Records after the snapshot, in seq order, each with its `"seq"` field.
    pub records: Vec<Map<String, Value>>,
    /// Things recovered from (a cut torn tail, ignored files), one sentence each. They are
    /// returned rather than logged so that the caller logs them once, in its own words.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum JournalError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A bad line that is not the torn tail: a person has to look.
    Corrupt {
        file: PathBuf,
        line: u64,
        reason: String,
    },
    /// The newest snapshot cannot be read; it is never skipped, because the segments it
    /// covers may already be gone.
    Snapshot {
        file: PathBuf,
        reason: String,
    },
    /// A snapshot written by a newer (or unknown) version of dpyfs.
    Format(String),
    /// A record could not be encoded as JSON.
    Encode(serde_json::Error),
    /// The caller asked for a seq that does not follow the last one (a replica's log and
    /// its journal disagree: a bug, never a disk problem).
    Sequence(String),
    /// An earlier fsync failed (or a thread panicked holding the lock). After a failed
    /// fsync the kernel may have dropped the dirty pages, so no later write can be trusted
    /// to be durable: the journal refuses writes until the director restarts and replays.
    Stopped(String),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            JournalError::Corrupt { file, line, reason } => write!(
                f,
                "{file}:{line}: {reason}. Hint: look at it with `sed -n '{line}p' {file}`; \
                 restore that line from a backup, or move the segment aside knowing that \
                 the records in it are lost",
                file = file.display()
            ),
            JournalError::Snapshot { file, reason } => write!(
                f,
                "{}: {reason}. Hint: the snapshot is the only copy of the records it covers; \
                 restore it from a backup or rebuild the director with `dpyfs recover`",
                file.display()
            ),
            JournalError::Format(msg) => f.write_str(msg),
            JournalError::Encode(e) => write!(f, "cannot encode journal record: {e}"),
            JournalError::Sequence(msg) => f.write_str(msg),
            JournalError::Stopped(why) => write!(
                f,
                "journal stopped accepting writes: {why}. Hint: restart the director; it \
                 replays the journal from disk"
            ),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            JournalError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for JournalError {
    fn from(e: serde_json::Error) -> JournalError {
        JournalError::Encode(e)
    }
}

impl<T> From<PoisonError<T>> for JournalError {
    fn from(_: PoisonError<T>) -> JournalError {
        JournalError::Stopped("a thread panicked while holding the journal lock".into())
    }
}

/// Attaches the path to an io::Error: `.map_err(io_at(&path))`.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One segment file and the range of seqs in it (any, including ones a snapshot covers).
#[derive(Debug, Clone)]
struct SegmentInfo {
    no: u64,
    path: PathBuf,
    bytes: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

struct State {
    /// The segment appends go to. An `Arc` so that a group-commit leader can fsync it
    /// without the lock while a rotation replaces it.
    file: Arc<File>,
    current: SegmentInfo,
    /// Older segments still on disk, oldest first.
    closed: Vec<SegmentInfo>,
    /// The last seq written to the file (maybe not yet durable).
    last_seq: u64,
    /// Every line up to this seq is covered by a completed fsync.
    synced_seq: u64,
    /// A leader is fsyncing outside the lock.
    syncing: bool,
    /// Set on a failed fsync or an unrepairable write; see `JournalError::Stopped`.
    failed: Option<String>,
}

pub struct Journal {
    dir: PathBuf,
    journal_dir: PathBuf,
    segment_bytes_max: u64,
    state: Mutex<State>,
    /// Signalled whenever `synced_seq`, `syncing` or `failed` change.
    synced: Condvar,
    /// The newest durable snapshot's seq; also serialises `snapshot` calls.
    snapshot_seq: Mutex<u64>,
    syncs: AtomicU64,
}

impl Journal {
    /// Opens (creating journal/ if missing), replays, and returns the journal ready to
    /// append at last_seq+1.
    pub fn open(cfg: JournalConfig) -> Result<(Journal, Replay)> {
        let journal_dir = cfg.dir.join(JOURNAL_DIR);
        fs::create_dir_all(&journal_dir).map_err(io_at(&journal_dir))?;
        sync_dir(&cfg.dir).map_err(io_at(&cfg.dir))?;
        remove_snapshot_tmp_files(&cfg.dir)?;
        let loaded = load_newest_snapshot(&cfg.dir)?;
        let snapshot_seq = loaded.seq;
        let mut replayer = Replayer::new(snapshot_seq);
        let mut segments = list_segments(&journal_dir, &mut replayer.warnings)?;
        let count = segments.len();
        for (i, seg) in segments.iter_mut().enumerate() {
            replayer.scan_segment(seg, i + 1 == count)?;
        }
        let current = match segments.pop() {
            Some(seg) => seg,
            None => create_segment(&journal_dir, 1)?,
        };
        let file = open_for_append(&current.path)?;
        let last_seq = replayer.last_seq;
        let journal = Journal {
            dir: cfg.dir,
            journal_dir,
            segment_bytes_max: cfg.segment_bytes_max,
            state: Mutex::new(State {
                file: Arc::new(file),
                current,
                closed: segments,
                last_seq,
                synced_seq: last_seq,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            snapshot_seq: Mutex::new(snapshot_seq),
            syncs: AtomicU64::new(0),
        };
        let replay = Replay {
            snapshot: loaded.state,
            snapshot_seq,
            snapshot_term: loaded.term,
            snapshot_voters: loaded.voters,
            records: replayer.records,
            warnings: replayer.warnings,
        };
        Ok((journal, replay))
    }

    /// Appends one record, assigns and returns its seq; returns only after the record is
    /// durable (fsync). The journal owns the `"seq"` field: a caller's own is replaced.
    pub fn append(&self, record: Map<String, Value>) -> Result<u64> {
        let seq = self.write(record)?;
        self.wait(seq)
    }

    /// First half of `append`: assigns the seq and writes the line, but does not wait for
    /// it to be durable. The director calls this under its index lock (so records are
    /// applied in seq order) and then `wait`s outside the lock, so that concurrent writers
    /// share fsyncs. Nothing may be acknowledged before `wait` returns.
    pub fn write(&self, record: Map<String, Value>) -> Result<u64> {
        self.write_inner(None, record)
    }

    /// `write` of the record a replica's log holds at `seq`, which must be the next one.
    pub fn write_at(&self, seq: u64, record: Map<String, Value>) -> Result<u64> {
        self.write_inner(Some(seq), record)
    }

    fn write_inner(&self, want: Option<u64>, mut record: Map<String, Value>) -> Result<u64> {
        let mut st = self.state.lock()?;
        if let Some(why) = &st.failed {
            return Err(JournalError::Stopped(why.clone()));
        }
        let seq = st.last_seq + 1;
        if want.is_some_and(|w| w != seq) {
            return Err(JournalError::Sequence(format!(
                "asked to write seq {} but the journal's next seq is {seq}",
                want.unwrap_or(0)
            )));
        }
        record.insert("seq".into(), Value::from(seq));
        let line = encode_line(&record)?;
        if st.current.bytes > 0 && st.current.bytes + line.len() as u64 > self.segment_bytes_max {
            self.rotate(&mut st)?;
        }
        write_line(&mut st, &line)?;
        st.last_seq = seq;
        st.current.first_seq.get_or_insert(seq);
        st.current.last_seq = Some(seq);
        Ok(seq)
    }

    /// Second half of `append`: returns once a completed fsync covers `seq`.
    pub fn wait(&self, seq: u64) -> Result<u64> {
        let st = self.state.lock()?;
        self.wait_durable(st, seq)
    }

    /// The last seq handed out (its record is written, maybe not yet durable).
    pub fn last_seq(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_seq
    }

    /// Total bytes of segments currently on disk (for "compact by size" decisions).
    pub fn bytes(&self) -> u64 {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.closed.iter().map(|s| s.bytes).sum::<u64>() + st.current.bytes
    }

    /// How many segment fsyncs this journal has done since it was opened (metrics, tests).
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Group commit: waits until a completed fsync covers `seq`, doing the fsync itself if
    /// no other thread is.
    ///
    /// The scenario: A writes line 7 under the lock, finds nobody syncing, becomes leader,
    /// notes target = 7, drops the lock and fsyncs. Meanwhile B and C take the lock in turn,
    /// write lines 8 and 9, see `syncing` and wait. A's fsync returns: synced_seq = 7, A
    /// wakes everyone and returns. B (or C) wakes first, sees 8 > synced_seq and nobody
    /// syncing, becomes leader with target = 9 (both lines are already in the file) and
    /// one fsync covers B and C. So three appends cost two fsyncs, and under steady load
    /// one fsync per batch. Nobody returns early: synced_seq only ever rises to a target
    /// taken *before* the fsync started, and every line up to the target was fully
    /// written (under the lock) before the target was taken.
    fn wait_durable<'a>(&'a self, mut st: MutexGuard<'a, State>, seq: u64) -> Result<u64> {
        loop {
            if st.synced_seq >= seq {
                return Ok(seq);
            }
            if let Some(why) = &st.failed {
                return Err(JournalError::Stopped(why.clone()));
            }
            st = if st.syncing {
                self.synced.wait(st)?
            } else {
                self.lead_sync(st)?
            };
        }
    }

    /// Fsyncs the current segment without holding the lock, then publishes the result.
    fn lead_sync<'a>(&'a self, mut st: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        st.syncing = true;
        let target = st.last_seq;
        let file = Arc::clone(&st.file);
        let path = st.current.path.clone();
        drop(st);
        let result = file.sync_data();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock()?;
        st.syncing = false;
        // max: a rotation may have synced further while we were busy.
        match result {
            Ok(()) => st.synced_seq = st.synced_seq.max(target),
            Err(e) => st.failed = Some(format!("fsync of {} failed: {e}", path.display())),
        }
        self.synced.notify_all();
        Ok(st)
    }

    /// Closes the current segment and starts the next one, under the lock.
    ///
    /// The old segment is fsynced first: a later fsync only covers the new file, and a
    /// crash that kept lines of the new segment but lost unsynced lines at the end of the
    /// old one would leave a gap that replay (rightly) refuses. The new file's name is made
    /// durable (dir fsync) before any record in it can be acknowledged. This costs one
    /// fsync under the lock per segment, i.e. rarely.
    fn rotate(&self, st: &mut State) -> Result<()> {
        let synced = st.file.sync_data();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = synced {
            let why = format!("fsync of {} failed: {e}", st.current.path.display());
            st.failed = Some(why.clone());
            self.synced.notify_all();
            return Err(JournalError::Stopped(why));
        }
        st.synced_seq = st.last_seq;
        self.synced.notify_all();
        let next = create_segment(&self.journal_dir, st.current.no + 1)?;
        let file = open_for_append(&next.path)?;
        st.file = Arc::new(file);
        let old = std::mem::replace(&mut st.current, next);
        st.closed.push(old);
        Ok(())
    }

    /// Writes snapshot-<seq>.json with `state`, which the CALLER guarantees reflects
    /// exactly all records up to and including `seq`. Then rotates to a fresh segment if
    /// the current one holds records <= seq, and deletes segments whose every record is
    /// <= seq and older snapshot files, but only after the new snapshot is durable.
    pub fn snapshot(&self, seq: u64, state: &Value) -> Result<()> {
        self.snapshot_raft(seq, None, state)
    }

    /// `snapshot`, recording the raft term of the record at `seq` and the voters in force
    /// there (`"term"` and `"voters"` beside `"state"`, FORMAT.md).
    pub fn snapshot_raft(
        &self,
        seq: u64,
        raft: Option<(u64, &[u64])>,
        state: &Value,
    ) -> Result<()> {
        let mut newest = self.snapshot_seq.lock()?;
        assert!(
            seq <= self.last_seq(),
            "snapshot seq {seq} is beyond the journal"
        );
        if seq < *newest {
            return Ok(()); // A newer snapshot already covers everything this one would.
        }
        self.write_snapshot_file(seq, raft, state)?;
        *newest = seq;
        self.drop_covered(seq)
    }

    /// A snapshot received from the raft leader: the state after every record up to
    /// `seq`, which may lie beyond this journal's end. Records up to `seq` go; records
    /// after it stay (the log still holds them).
    pub fn install_snapshot(&self, seq: u64, raft: (u64, &[u64]), state: &Value) -> Result<()> {
        let mut newest = self.snapshot_seq.lock()?;
        self.write_snapshot_file(seq, Some(raft), state)?;
        *newest = seq;
        {
            let mut st = self.state.lock()?;
            if st.last_seq < seq {
                // Everything on disk is older than the snapshot: start after it.
                self.rotate(&mut st)?;
                st.last_seq = seq;
                st.synced_seq = seq;
            }
        }
        self.drop_covered(seq)
    }

    fn write_snapshot_file(
        &self,
        seq: u64,
        raft: Option<(u64, &[u64])>,
        state: &Value,
    ) -> Result<()> {
        let path = self.dir.join(snapshot_name(seq));
        let mut doc = serde_json::json!({"format": SNAPSHOT_FORMAT, "seq": seq, "state": state});
        if let Some((term, voters)) = raft {
            doc["term"] = Value::from(term);
            doc["voters"] = Value::from(voters.to_vec());
        }
        write_atomic(&path, &serde_json::to_vec(&doc)?).map_err(io_at(&path))
    }

    /// Once a snapshot at `seq` is durable: removes the segments and older snapshots it
    /// covers.
    fn drop_covered(&self, seq: u64) -> Result<()> {
        let doomed = self.release_segments(seq)?;
        for seg in &doomed {
            fs::remove_file(&seg.path).map_err(io_at(&seg.path))?;
        }
        sync_dir(&self.journal_dir).map_err(io_at(&self.journal_dir))?;
        let old_snapshots = remove_snapshots_before(&self.dir, seq)?;
        log::info!(
            "journal: snapshot at seq {seq}; removed {} segments and {old_snapshots} older snapshots",
            doomed.len()
        );
        Ok(())
    }

    /// Drops the record at `seq` and every later one: raft's `truncate_from`, a follower's
    /// uncommitted tail that the leader's log replaces. Whole segments after the cut are
    /// removed; the segment holding the cut is shortened and fsynced before anything new
    /// is written after it.
    pub fn truncate_from(&self, seq: u64) -> Result<()> {
        let mut st = self.state.lock()?;
        if seq > st.last_seq {
            return Ok(());
        }
        while st.current.first_seq.is_none_or(|first| first >= seq) {
            let Some(prev) = st.closed.pop() else {
                break;
            };
            let gone = std::mem::replace(&mut st.current, prev);
            fs::remove_file(&gone.path).map_err(io_at(&gone.path))?;
            st.file = Arc::new(open_for_append(&st.current.path)?);
        }
        let offset = offset_of_seq(&st.current.path, seq)?;
        st.file.set_len(offset).map_err(io_at(&st.current.path))?;
        st.file.sync_all().map_err(io_at(&st.current.path))?;
        sync_dir(&self.journal_dir).map_err(io_at(&self.journal_dir))?;
        st.current.bytes = offset;
        if st.current.first_seq.is_some_and(|first| first >= seq) {
            st.current.first_seq = None;
            st.current.last_seq = None;
        } else {
            st.current.last_seq = Some(seq - 1);
        }
        st.last_seq = seq - 1;
        st.synced_seq = st.synced_seq.min(seq - 1);
        Ok(())
    }

    /// Under the lock: rotates away from a current segment that holds records <= seq, and
    /// takes out of the list the closed segments a snapshot at `seq` makes unnecessary.
    fn release_segments(&self, seq: u64) -> Result<Vec<SegmentInfo>> {
        let mut st = self.state.lock()?;
        if st.current.first_seq.is_some_and(|first| first <= seq) {
            self.rotate(&mut st)?;
        }
        // An empty closed segment (no records at all) is covered vacuously.
        let (doomed, kept) = st
            .closed
            .drain(..)
            .partition(|s| s.last_seq.is_none_or(|last| last <= seq));
        st.closed = kept;
        Ok(doomed)
    }
}

/// The byte offset in a segment where the line of `seq` (or the first later one) starts;
/// the file's length if there is none.
fn offset_of_seq(path: &Path, seq: u64) -> Result<u64> {
    let file = File::open(path).map_err(io_at(path))?;
    let mut reader = BufReader::new(file);
    let (mut raw, mut offset) = (Vec::new(), 0u64);
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).map_err(io_at(path))?;
        if n == 0 {
            return Ok(offset);
        }
        if check_line(&raw).is_ok_and(|(s, _)| s >= seq) {
            return Ok(offset);
        }
        offset += n as u64;
    }
}

/// `<crc32 of the json, 8 lowercase hex> <json>\n`. Compact serde_json output never holds
/// a raw newline (newlines inside strings are escaped), so one record is one line.
fn encode_line(record: &Map<String, Value>) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(record)?;
    let mut line = Vec::with_capacity(json.len() + 10);
    line.extend_from_slice(format!("{:08x} ", crc32fast::hash(&json)).as_bytes());
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

/// One write_all of the whole line, so concurrent readers and crashes see a prefix of it
/// at worst. If the write fails part-way (disk full), the partial line is cut off again:
/// left in place, the next line would follow it and turn a tail into a corrupt middle.
fn write_line(st: &mut State, line: &[u8]) -> Result<()> {
    let mut file: &File = &st.file;
    let Err(e) = file.write_all(line) else {
        st.current.bytes += line.len() as u64;
        return Ok(());
    };
    if let Err(cut) = st.file.set_len(st.current.bytes) {
        st.failed = Some(format!(
            "a write to {} failed ({e}) and the partial line could not be cut off ({cut})",
            st.current.path.display()
        ));
    }
    Err(JournalError::Io {
        path: st.current.path.clone(),
        source: e,
    })
}

fn segment_name(no: u64) -> String {
    format!("{no:0width$}.log", width = SEGMENT_DIGITS)
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    let all_digits = digits.len() == SEGMENT_DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
    if all_digits {
        digits.parse().ok()
    } else {
        None
    }
}

fn snapshot_name(seq: u64) -> String {
    format!(
        "{SNAPSHOT_PREFIX}{seq:0width$}.json",
        width = SNAPSHOT_DIGITS
    )
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?.strip_suffix(".json")?;
    let all_digits = digits.len() == SNAPSHOT_DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
    if all_digits {
        digits.parse().ok()
    } else {
        None
    }
}

/// Creates an empty segment and makes its name durable.
fn create_segment(journal_dir: &Path, no: u64) -> Result<SegmentInfo> {
    let path = journal_dir.join(segment_name(no));
    // Not create_new: if an earlier attempt created the file but failed later, retrying
    // must work. The file can only be empty, as nothing else writes past the newest one.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_at(&path))?;
    sync_dir(journal_dir).map_err(io_at(journal_dir))?;
    Ok(SegmentInfo {
        no,
        path,
        bytes: 0,
        first_seq: None,
        last_seq: None,
    })
}

fn open_for_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_at(path))
}

/// File names in `dir`, skipping the ones that are not UTF-8 (none of ours are).
fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Segments in `journal/`, oldest first; anything else there is reported and left alone.
fn list_segments(journal_dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<SegmentInfo>> {
    let mut segments = Vec::new();
    for name in file_names(journal_dir)? {
        let path = journal_dir.join(&name);
        match parse_segment_name(&name) {
            Some(no) if path.is_file() => segments.push(SegmentInfo {
                no,
                path,
                bytes: 0,
                first_seq: None,
                last_seq: None,
            }),
            _ => warnings.push(format!(
                "{}: not a journal segment; ignored",
                path.display()
            )),
        }
    }
    segments.sort_by_key(|s| s.no);
    Ok(segments)
}

/// write_atomic leaves `.snapshot-….tmp` behind only if the process died mid-write; such a
/// file was never renamed into place, so it holds nothing anyone relies on. Other temp
/// files in DIR belong to other modules and are theirs to clean.
fn remove_snapshot_tmp_files(dir: &Path) -> Result<()> {
    let prefix = format!(".{SNAPSHOT_PREFIX}");
    for name in file_names(dir)? {
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let path = dir.join(name);
            fs::remove_file(&path).map_err(io_at(&path))?;
        }
    }
    Ok(())
}

fn snapshot_seqs(dir: &Path) -> Result<Vec<u64>> {
    Ok(file_names(dir)?
        .iter()
        .filter_map(|n| parse_snapshot_name(n))
        .collect())
}

/// Removes snapshots older than `seq` (the new one is durable) and fsyncs DIR.
fn remove_snapshots_before(dir: &Path, seq: u64) -> Result<usize> {
    let old: Vec<u64> = snapshot_seqs(dir)?
        .into_iter()
        .filter(|&s| s < seq)
        .collect();
    for s in &old {
        let path = dir.join(snapshot_name(*s));
        fs::remove_file(&path).map_err(io_at(&path))?;
    }
    sync_dir(dir).map_err(io_at(dir))?;
    Ok(old.len())
}

/// The newest snapshot as `Journal::open` hands it on.
struct LoadedSnapshot {
    state: Option<Value>,
    seq: u64,
    term: u64,
    voters: Option<Vec<u64>>,
}

/// The newest snapshot's state, seq, term and voters, or nothing (seq 0). Never falls
/// back to an older one: the segments between the two may already be gone.
fn load_newest_snapshot(dir: &Path) -> Result<LoadedSnapshot> {
    let Some(seq) = snapshot_seqs(dir)?.into_iter().max() else {
        return Ok(LoadedSnapshot {
            state: None,
            seq: 0,
            term: 0,
            voters: None,
        });
    };
    let path = dir.join(snapshot_name(seq));
    let bytes = fs::read(&path).map_err(io_at(&path))?;
    let bad = |reason: String| JournalError::Snapshot {
        file: path.clone(),
        reason,
    };
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(mut doc) = doc else {
        return Err(bad("not a JSON object".into()));
    };
    match doc.get("format").and_then(Value::as_u64) {
        Some(SNAPSHOT_FORMAT) => {}
        Some(other) => {
            return Err(JournalError::Format(format!(
                "{}: snapshot format {other} is unknown; this dpyfs reads format \
                 {SNAPSHOT_FORMAT} only. Hint: run the dpyfs version that wrote it",
                path.display()
            )));
        }
        None => return Err(bad("no numeric \"format\" field".into())),
    }
    if doc.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Err(bad(format!(
            "its \"seq\" field does not match the name's {seq}"
        )));
    }
    let term = doc.get("term").and_then(Value::as_u64).unwrap_or(0);
    let voters = match doc.get("voters") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<u64>>(v.clone())
                .map_err(|e| bad(format!("its \"voters\" field: {e}")))?,
        ),
    };
    let state = doc
        .remove("state")
        .ok_or_else(|| bad("no \"state\" field".into()))?;
    Ok(LoadedSnapshot {
        state: Some(state),
        seq,
        term,
        voters,
    })
}

/// Checks one line read from a segment, `\n` included. Returns its seq and object, or why
/// it is bad.
pub(crate) fn check_line(raw: &[u8]) -> Result<(u64, Map<String, Value>), String> {
    let line = raw
        .strip_suffix(b"\n")
        .ok_or("the line has no newline at its end (an interrupted write)")?;
    let mut parts = line.splitn(2, |&b| b == b' ');
    let crc_hex = parts.next().unwrap_or_default();
    let json = parts.next().ok_or("no space after the checksum")?;
    let is_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if crc_hex.len() != 8 || !crc_hex.iter().all(is_hex) {
        return Err("the checksum is not 8 lowercase hex digits".into());
    }
    let stated = std::str::from_utf8(crc_hex)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or("the checksum is not 8 lowercase hex digits")?;
    let actual = crc32fast::hash(json);
    if stated != actual {
        return Err(format!(
            "checksum mismatch: the line says {stated:08x}, its JSON hashes to {actual:08x}"
        ));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(json) else {
        return Err("the checksum matches but the text is not a JSON object".into());
    };
    let seq = map
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("no numeric \"seq\" field")?;
    Ok((seq, map))
}

/// Replay state while walking the segments in order.
struct Replayer {
    snapshot_seq: u64,
    /// The last seq seen after the snapshot (the snapshot seq until one is seen).
    last_seq: u64,
    records: Vec<Map<String, Value>>,
    warnings: Vec<String>,
}

impl Replayer {
    fn new(snapshot_seq: u64) -> Replayer {
        Replayer {
            snapshot_seq,
            last_seq: snapshot_seq,
            records: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records the snapshot covers are skipped (only their framing is checked); after it,
    /// each seq must be exactly one more than the last. A well-framed line with a bad seq
    /// is never a torn write, so this is Corrupt even at the very end.
    fn accept(&mut self, seq: u64, record: Map<String, Value>) -> Result<(), String> {
        let seen_any_after = self.last_seq > self.snapshot_seq;
        if seq <= self.snapshot_seq && !seen_any_after {
            return Ok(());
        }
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(format!(
                "expected seq {expected}, found {seq} (a gap or a repeat)"
            ));
        }
        self.last_seq = seq;
        self.records.push(record);
        Ok(())
    }

    /// Reads one segment line by line. A bad last line of the last segment is a torn
    /// write and is cut off; a bad line anywhere else stops the start.
    fn scan_segment(&mut self, seg: &mut SegmentInfo, is_last_segment: bool) -> Result<()> {
        let file = File::open(&seg.path).map_err(io_at(&seg.path))?;
        let mut reader = BufReader::new(file);
        let mut raw = Vec::new();
        let (mut offset, mut line_no) = (0u64, 0u64);
        loop {
            raw.clear();
            let n = reader
                .read_until(b'\n', &mut raw)
                .map_err(io_at(&seg.path))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let corrupt = |reason| JournalError::Corrupt {
                file: seg.path.clone(),
                line: line_no,
                reason,
            };
            match check_line(&raw) {
                Ok((seq, record)) => {
                    self.accept(seq, record).map_err(corrupt)?;
                    seg.first_seq.get_or_insert(seq);
                    seg.last_seq = Some(seq);
                }
                Err(reason) => {
                    let at_end = reader.fill_buf().map_err(io_at(&seg.path))?.is_empty();
                    if !(is_last_segment && at_end) {
                        return Err(corrupt(reason));
                    }
                    self.cut_torn_tail(seg, offset, line_no, &reason)?;
                    return Ok(());
                }
            }
            offset += n as u64;
        }
        seg.bytes = offset;
        Ok(())
    }

    /// A crash mid-write leaves a partial (or zero-filled) last line. It was never
    /// acknowledged, since acknowledgement waits for an fsync after the whole line, so it
    /// is safe to cut. The cut is fsynced so that a new line cannot land after it.
    fn cut_torn_tail(
        &mut self,
        seg: &mut SegmentInfo,
        offset: u64,
        line: u64,
        reason: &str,
    ) -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(io_at(&seg.path))?;
        let old_len = file.metadata().map_err(io_at(&seg.path))?.len();
        file.set_len(offset).map_err(io_at(&seg.path))?;
        file.sync_all().map_err(io_at(&seg.path))?;
        seg.bytes = offset;
        self.warnings.push(format!(
            "{}:{line}: {reason}; cut off the last {} bytes as a torn write (a crash mid-write; \
             that record was never acknowledged)",
            seg.path.display(),
            old_len - offset
        ));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;
    use crate::fsutil::unique_tmp_name;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let d = std::env::temp_dir().join(unique_tmp_name(&format!("dpyfs-journal-{name}")));
            fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
        fn seg(&self, no: u64) -> PathBuf {
            self.0.join(JOURNAL_DIR).join(segment_name(no))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn open(d: &Scratch) -> Result<(Journal, Replay)> {
        Journal::open(JournalConfig::new(d.0.clone()))
    }

    fn open_small(d: &Scratch, segment_bytes_max: u64) -> (Journal, Replay) {
        Journal::open(JournalConfig {
            dir: d.0.clone(),
            segment_bytes_max,
        })
        .unwrap()
    }

    fn rec(n: u64) -> Map<String, Value> {
        let Value::Object(m) = serde_json::json!({"type": "put", "key": format!("k{n}")}) else {
            unreachable!()
        };
        m
    }

    fn seqs(r: &Replay) -> Vec<u64> {
        r.records
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    }

    fn append_n(j: &Journal, n: u64) {
        for i in 0..n {
            j.append(rec(i)).unwrap();
        }
    }

    /// Seqs of every record in every segment on disk.
    fn seqs_on_disk(d: &Scratch) -> Vec<u64> {
        let mut names = file_names(&d.0.join(JOURNAL_DIR)).unwrap();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            for line in fs::read_to_string(d.0.join(JOURNAL_DIR).join(n))
                .unwrap()
                .lines()
            {
                out.push(check_line(format!("{line}\n").as_bytes()).unwrap().0);
            }
        }
        out
    }

    /// Replaces line `line_no` (1-based) of `path` with `with`.
    fn replace_line(path: &Path, line_no: usize, with: &str) {
        let text = fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[line_no - 1] = with.to_string();
        fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn bad_crc(path: &Path, line_no: usize) {
        let text = fs::read_to_string(path).unwrap();
        let line = text.lines().nth(line_no - 1).unwrap();
        replace_line(path, line_no, &format!("00000000{}", &line[8..]));
    }

    #[test]
    fn append_then_reopen_replays_every_record_with_its_seq() {
        let d = Scratch::new("reopen");
        let (j, r) = open(&d).unwrap();
        assert!(r.snapshot.is_none() && r.records.is_empty() && r.warnings.is_empty());
        for i in 1..=5 {
            assert_eq!(j.append(rec(i)).unwrap(), i);
        }
        assert_eq!(j.last_seq(), 5);
        assert_eq!(j.bytes(), fs::metadata(d.seg(1)).unwrap().len());
        drop(j);
        let (j, r) = open(&d).unwrap();
        assert_eq!(seqs(&r), vec![1, 2, 3, 4, 5]);
        assert_eq!(r.records[2]["key"], "k3");
        assert_eq!(j.append(rec(6)).unwrap(), 6);
        // The documented by-hand reading: drop the crc, the rest is JSON.
        let first = fs::read_to_string(d.seg(1)).unwrap();
        let json = first.lines().next().unwrap().split_once(' ').unwrap().1;
        assert_eq!(serde_json::from_str::<Value>(json).unwrap()["seq"], 1);
    }

    #[test]
    fn concurrent_appends_get_distinct_seqs_and_share_fsyncs() {
        let d = Scratch::new("concurrent");
        let (j, _) = open(&d).unwrap();
        let (threads, per_thread) = (8u64, 200u64);
        let mut all: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        (0..per_thread)
                            .map(|i| j.append(rec(i)).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        all.sort_unstable();
        let appends = threads * per_thread;
        assert_eq!(all, (1..=appends).collect::<Vec<_>>());
        let syncs = j.sync_count();
        println!(
            "{appends} appends, {syncs} fsyncs: {:.2} appends per fsync",
            appends as f64 / syncs as f64
        );
        assert!(syncs <= appends);
        drop(j);
        let (_, r) = open(&d).unwrap();
        assert_eq!(seqs(&r), (1..=appends).collect::<Vec<_>>());
    }

    #[test]
    fn rotation_by_size_spreads_records_over_segments_and_replay_crosses_them() {
        let d = Scratch::new("rotate");
        let (j, _) = open_small(&d, 200);
        append_n(&j, 20);
        let count = file_names(&d.0.join(JOURNAL_DIR)).unwrap().len();
        assert!(count >= 3, "only {count} segments");
        for no in 1..count as u64 {
            assert!(fs::metadata(d.seg(no)).unwrap().len() <= 200);
        }
        let total: u64 = (1..=count as u64)
            .map(|no| fs::metadata(d.seg(no)).unwrap().len())
            .sum();
        assert_eq!(j.bytes(), total);
        drop(j);
        let (j, r) = open_small(&d, 200);
        assert_eq!(seqs(&r), (1..=20).collect::<Vec<_>>());
        assert_eq!(j.append(rec(21)).unwrap(), 21);
    }

    #[test]
    fn torn_last_line_without_newline_is_cut_and_appends_continue() {
        let d = Scratch::new("torn-partial");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 3);
        drop(j);
        let good_len = fs::metadata(d.seg(1)).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(d.seg(1)).unwrap();
        f.write_all(b"1234abcd {\"seq\":4,\"ty").unwrap();
        drop(f);
        let (j, r) = open(&d).unwrap();
        assert_eq!(seqs(&r), vec![1, 2, 3]);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("00000001.log:4:"),
            "{}",
            r.warnings[0]
        );
        assert_eq!(fs::metadata(d.seg(1)).unwrap().len(), good_len);
        assert_eq!(j.append(rec(4)).unwrap(), 4);
        drop(j);
        let (_, r) = open(&d).unwrap();
        assert_eq!(seqs(&r), vec![1, 2, 3, 4]);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn bad_crc_on_the_last_line_is_cut_and_appends_continue() {
        let d = Scratch::new("torn-crc");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 3);
        drop(j);
        bad_crc(&d.seg(1), 3);
        let (j, r) = open(&d).unwrap();
        assert_eq!(seqs(&r), vec![1, 2]);
        assert!(
            r.warnings[0].contains(":3: checksum mismatch"),
            "{}",
            r.warnings[0]
        );
        assert_eq!(fs::read_to_string(d.seg(1)).unwrap().lines().count(), 2);
        assert_eq!(j.append(rec(3)).unwrap(), 3);
    }

    #[test]
    fn corrupt_middle_line_is_refused_with_file_and_line() {
        let d = Scratch::new("middle");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 5);
        drop(j);
        bad_crc(&d.seg(1), 3);
        let err = open(&d).err().unwrap();
        assert!(
            matches!(err, JournalError::Corrupt { line: 3, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("00000001.log:3: checksum mismatch"), "{msg}");
        assert!(msg.contains("sed -n '3p'"), "{msg}");
    }

    #[test]
    fn bad_line_at_the_end_of_a_non_last_segment_is_refused() {
        let d = Scratch::new("nonlast");
        let (j, _) = open_small(&d, 200);
        append_n(&j, 10);
        drop(j);
        let lines = fs::read_to_string(d.seg(1)).unwrap().lines().count();
        bad_crc(&d.seg(1), lines);
        let err = open(&d).err().unwrap();
        assert!(
            matches!(err, JournalError::Corrupt { line, .. } if line == lines as u64),
            "{err}"
        );
        assert!(err.to_string().contains("00000001.log"), "{err}");
    }

    #[test]
    fn seq_gap_or_repeat_is_refused_even_on_the_last_line() {
        let d = Scratch::new("gap");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 3);
        drop(j);
        let mut gap = rec(0);
        gap.insert("seq".into(), 7.into());
        let gap_line = String::from_utf8(encode_line(&gap).unwrap()).unwrap();
        replace_line(&d.seg(1), 3, gap_line.trim_end());
        let err = open(&d).err().unwrap();
        assert!(
            err.to_string().contains(":3: expected seq 3, found 7"),
            "{err}"
        );
        let mut repeat = rec(0);
        repeat.insert("seq".into(), 2.into());
        let repeat_line = String::from_utf8(encode_line(&repeat).unwrap()).unwrap();
        replace_line(&d.seg(1), 3, repeat_line.trim_end());
        let err = open(&d).err().unwrap();
        assert!(
            err.to_string().contains(":3: expected seq 3, found 2"),
            "{err}"
        );
    }

    #[test]
    fn snapshot_then_appends_replays_state_and_later_records_only() {
        let d = Scratch::new("snapshot");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 4);
        j.snapshot(4, &serde_json::json!({"objects": 4})).unwrap();
        append_n(&j, 2);
        drop(j);
        let (j, r) = open(&d).unwrap();
        assert_eq!(r.snapshot, Some(serde_json::json!({"objects": 4})));
        assert_eq!(r.snapshot_seq, 4);
        assert_eq!(seqs(&r), vec![5, 6]);
        assert_eq!(j.append(rec(7)).unwrap(), 7);
    }

    #[test]
    fn snapshot_removes_covered_segments_and_older_snapshots_only() {
        let d = Scratch::new("compact");
        let (j, _) = open_small(&d, 200);
        append_n(&j, 10);
        j.snapshot(3, &serde_json::json!("at 3")).unwrap();
        append_n(&j, 2); // 11, 12
        j.snapshot(8, &serde_json::json!("at 8")).unwrap();
        append_n(&j, 3); // 13..=15
        let on_disk = seqs_on_disk(&d);
        assert!(on_disk.iter().all(|&s| s > 3), "{on_disk:?}");
        assert!((9..=15).all(|s| on_disk.contains(&s)), "{on_disk:?}");
        // Segments are removed whole: every one left holds at least one record after 8.
        for name in file_names(&d.0.join(JOURNAL_DIR)).unwrap() {
            let text = fs::read_to_string(d.0.join(JOURNAL_DIR).join(&name)).unwrap();
            let last = text
                .lines()
                .map(|l| check_line(format!("{l}\n").as_bytes()).unwrap().0)
                .max();
            assert!(last.is_none_or(|s| s > 8), "{name} holds only records <= 8");
        }
        let snaps = snapshot_seqs(&d.0).unwrap();
        assert_eq!(snaps, vec![8]);
        let disk_bytes: u64 = file_names(&d.0.join(JOURNAL_DIR))
            .unwrap()
            .iter()
            .map(|n| fs::metadata(d.0.join(JOURNAL_DIR).join(n)).unwrap().len())
            .sum();
        assert_eq!(j.bytes(), disk_bytes);
        drop(j);
        let (_, r) = open_small(&d, 200);
        assert_eq!(r.snapshot, Some(serde_json::json!("at 8")));
        assert_eq!(seqs(&r), (9..=15).collect::<Vec<_>>());
    }

    #[test]
    fn snapshot_of_everything_leaves_an_empty_journal_that_continues() {
        let d = Scratch::new("all");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 3);
        j.snapshot(3, &serde_json::json!([])).unwrap();
        assert_eq!(j.bytes(), 0);
        assert!(!d.seg(1).exists());
        drop(j);
        let (j, r) = open(&d).unwrap();
        assert!(r.records.is_empty());
        assert_eq!(j.append(rec(4)).unwrap(), 4);
    }

    #[test]
    fn unknown_snapshot_format_is_refused() {
        let d = Scratch::new("format");
        fs::write(
            d.0.join(snapshot_name(5)),
            r#"{"format":2,"seq":5,"state":{}}"#,
        )
        .unwrap();
        let err = open(&d).err().unwrap();
        assert!(matches!(err, JournalError::Format(_)), "{err:?}");
        assert!(
            err.to_string().contains("snapshot format 2 is unknown"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_newest_snapshot_is_refused_not_skipped() {
        let d = Scratch::new("badsnap");
        fs::write(
            d.0.join(snapshot_name(1)),
            r#"{"format":1,"seq":1,"state":{}}"#,
        )
        .unwrap();
        fs::write(d.0.join(snapshot_name(9)), r#"{"format":1,"seq":9,"sta"#).unwrap();
        let err = open(&d).err().unwrap();
        assert!(matches!(err, JournalError::Snapshot { .. }), "{err:?}");
    }

    #[test]
    fn stray_files_are_reported_and_snapshot_temp_files_removed() {
        let d = Scratch::new("stray");
        fs::create_dir_all(d.0.join(JOURNAL_DIR)).unwrap();
        fs::write(d.0.join(JOURNAL_DIR).join("notes.txt"), "hello").unwrap();
        let tmp = d.0.join(unique_tmp_name(&format!(".{}", snapshot_name(3))));
        fs::write(&tmp, "half").unwrap();
        let (j, r) = open(&d).unwrap();
        assert!(!tmp.exists());
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("notes.txt"), "{:?}", r.warnings);
        assert_eq!(j.append(rec(1)).unwrap(), 1);
        assert!(d.0.join(JOURNAL_DIR).join("notes.txt").exists());
    }

    #[test]
    fn truncate_from_cuts_the_tail_across_segments_and_appends_continue() {
        let d = Scratch::new("truncate");
        let (j, _) = open_small(&d, 200);
        append_n(&j, 12);
        j.truncate_from(5).unwrap();
        assert_eq!(j.last_seq(), 4);
        assert_eq!(seqs_on_disk(&d), vec![1, 2, 3, 4]);
        assert!(j.write_at(7, rec(7)).is_err());
        assert_eq!(j.write_at(5, rec(5)).unwrap(), 5);
        j.wait(5).unwrap();
        j.truncate_from(9).unwrap(); // beyond the end: nothing to do
        drop(j);
        let (_, r) = open_small(&d, 200);
        assert_eq!(seqs(&r), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn an_installed_snapshot_beyond_the_end_restarts_the_journal_after_it() {
        let d = Scratch::new("install");
        let (j, _) = open(&d).unwrap();
        append_n(&j, 3);
        j.install_snapshot(10, (4, &[1, 2, 3]), &serde_json::json!("at 10"))
            .unwrap();
        assert_eq!(j.last_seq(), 10);
        assert_eq!(j.write_at(11, rec(11)).unwrap(), 11);
        j.wait(11).unwrap();
        drop(j);
        let (_, r) = open(&d).unwrap();
        assert_eq!(r.snapshot_seq, 10);
        assert_eq!(r.snapshot_term, 4);
        assert_eq!(r.snapshot_voters, Some(vec![1, 2, 3]));
        assert_eq!(seqs(&r), vec![11]);
        assert_eq!(seqs_on_disk(&d), vec![11]);
    }

    #[test]
    fn empty_segments_are_fine() {
        let d = Scratch::new("empty");
        let (j, _) = open_small(&d, 100);
        append_n(&j, 3);
        drop(j);
        fs::write(d.seg(99), "").unwrap();
        let (j, r) = open_small(&d, 100);
        assert_eq!(seqs(&r), vec![1, 2, 3]);
        assert_eq!(j.append(rec(4)).unwrap(), 4);
        assert!(fs::read_to_string(d.seg(99)).unwrap().contains("\"seq\":4"));
    }
}
