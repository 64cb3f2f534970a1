//! Durable file-system helpers: the one atomic-file type (`AtomicFile`, and `write_atomic`
//! over it), directory fsync, unique temporary names and their clean-up guard.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes a directory entry (a create, rename or unlink inside `dir`) durable.
///
/// `sync_all` on a file makes its bytes durable but not its name: after a power cut the
/// rename that put the file in place can be lost unless the directory itself is fsynced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temporary file name that no other writer in this process or another will pick.
pub fn unique_tmp_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}.{}.{n}.{nanos:08x}.tmp", std::process::id())
}

/// Removes the file on drop unless `keep` was called: an early return or a panic between
/// create and rename leaves no half-written temporary file behind.
pub struct TmpGuard {
    path: Option<PathBuf>,
}

impl TmpGuard {
    pub fn new(path: PathBuf) -> TmpGuard {
        TmpGuard { path: Some(path) }
    }

    /// The file has been renamed away; nothing to clean up.
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// A file written under a temporary name and put in place whole: the one sequence of
/// create, write, fsync, rename and folder fsync that every durable write in dpyfs uses
/// (small documents through `write_atomic`, chunks in the store, downloads in
/// `dpyfs-get`). It is a `Write`, so a caller can stream into it; the temporary file is
/// removed if it is dropped before `commit`.
///
/// Why each step: the data is fsynced before the rename, so the name never points at
/// bytes the disk does not hold yet; the rename replaces the target in one step, so a
/// reader sees either the old file or the whole new one; and the folder is fsynced after
/// it, because the rename lives in the folder (see `sync_dir`).
pub struct AtomicFile {
    file: File,
    tmp: PathBuf,
    guard: TmpGuard,
}

impl AtomicFile {
    /// A temporary file beside `target` (`.NAME.<pid>.<n>.<t>.tmp`), created with
    /// permission bits `mode` less the umask.
    pub fn create(target: &Path, mode: u32) -> io::Result<AtomicFile> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        AtomicFile::create_in(&parent_of(target), &format!(".{name}"), mode)
    }

    /// A temporary file in `dir` (the store's `tmp/`, on the same file system as the
    /// target), its name starting with `prefix`.
    pub fn create_in(dir: &Path, prefix: &str, mode: u32) -> io::Result<AtomicFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = dir.join(unique_tmp_name(prefix));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        Ok(AtomicFile {
            file,
            guard: TmpGuard::new(tmp.clone()),
            tmp,
        })
    }

    /// The temporary name, for error messages.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Makes the written bytes durable. A writer that renames under a lock (the store)
    /// calls this first, outside the lock; `commit` calls it otherwise.
    pub fn sync(self) -> io::Result<SyncedFile> {
        self.file.sync_all()?;
        Ok(SyncedFile {
            tmp: self.tmp,
            guard: self.guard,
        })
    }

    /// Fsyncs, renames over `target` and fsyncs `target`'s folder.
    pub fn commit(self, target: &Path) -> io::Result<()> {
        self.sync()?.rename_over(target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An `AtomicFile` whose bytes are durable, waiting for its name.
pub struct SyncedFile {
    tmp: PathBuf,
    guard: TmpGuard,
}

impl SyncedFile {
    /// Renames over `target` (replacing a file there) and fsyncs its folder.
    pub fn rename_over(self, target: &Path) -> io::Result<()> {
        fs::rename(&self.tmp, target)?;
        self.guard.keep();
        sync_dir(&parent_of(target))
    }

    /// Renames to `target`, a name nothing holds yet, and fsyncs its folder; if that
    /// fsync fails the name is taken back out (the file returns to its temporary name and
    /// is removed), so nothing unacknowledged stays in place.
    pub fn rename_new(self, target: &Path) -> io::Result<()> {
        fs::rename(&self.tmp, target)?;
        if let Err(e) = sync_dir(&parent_of(target)) {
            let _ = fs::rename(target, &self.tmp);
            return Err(e);
        }
        self.guard.keep();
        Ok(())
    }
}

/// The folder holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `data` to `target` atomically and durably (see `AtomicFile`): a reader sees
/// either the old file or the whole new one, never a part.
pub fn write_atomic(target: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_mode(target, data, 0o666)
}

/// `write_atomic` creating the file with permission bits `mode` (less the umask): 0o600
/// for a file of secrets, which is never readable by others, not even for a moment.
pub fn write_atomic_mode(target: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(target, mode)?;
    f.write_all(data)?;
    f.commit(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(unique_tmp_name(&format!("dpyfs-fsutil-{name}")));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let d = scratch("replace");
        let t = d.join("x.json");
        write_atomic(&t, b"one").unwrap();
        write_atomic(&t, b"two").unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn write_atomic_mode_sets_the_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("mode");
        let t = d.join("secret.json");
        write_atomic_mode(&t, b"s", 0o600).unwrap();
        let mode = fs::metadata(&t).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn write_atomic_into_a_missing_folder_fails_cleanly() {
        let d = scratch("missing");
        let t = d.join("no/such/dir/x");
        assert!(write_atomic(&t, b"x").is_err());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_atomic_file_streams_and_appears_only_when_committed() {
        let d = scratch("stream");
        let t = d.join("big.bin");
        let mut f = AtomicFile::create(&t, 0o666).unwrap();
        let tmp = f.tmp_path().to_path_buf();
        for i in 0..100u8 {
            f.write_all(&[i; 1000]).unwrap();
        }
        assert!(!t.exists() && tmp.exists());
        f.commit(&t).unwrap();
        assert_eq!(fs::read(&t).unwrap().len(), 100_000);
        assert!(!tmp.exists());
        // Dropped before its commit: nothing in place, nothing left behind.
        let mut g = AtomicFile::create(&d.join("never"), 0o666).unwrap();
        g.write_all(b"half").unwrap();
        drop(g);
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("big.bin")]);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn rename_new_puts_a_file_from_another_folder_in_place() {
        let d = scratch("new");
        fs::create_dir_all(d.join("tmp")).unwrap();
        fs::create_dir_all(d.join("ab")).unwrap();
        let mut f = AtomicFile::create_in(&d.join("tmp"), "chunk", 0o666).unwrap();
        f.write_all(b"chunk").unwrap();
        let synced = f.sync().unwrap();
        synced.rename_new(&d.join("ab/chunk")).unwrap();
        assert_eq!(fs::read(d.join("ab/chunk")).unwrap(), b"chunk");
        assert_eq!(fs::read_dir(d.join("tmp")).unwrap().count(), 0);
        // A target in a folder that does not exist: the rename fails, the file is removed.
        let mut g = AtomicFile::create_in(&d.join("tmp"), "chunk", 0o666).unwrap();
        g.write_all(b"x").unwrap();
        assert!(g.sync().unwrap().rename_new(&d.join("no/chunk")).is_err());
        assert_eq!(fs::read_dir(d.join("tmp")).unwrap().count(), 0);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn tmp_guard_removes_unless_kept() {
        let d = scratch("guard");
        let a = d.join("a");
        fs::write(&a, b"x").unwrap();
        drop(TmpGuard::new(a.clone()));
        assert!(!a.exists());
        fs::write(&a, b"x").unwrap();
        TmpGuard::new(a.clone()).keep();
        assert!(a.exists());
        fs::remove_dir_all(d).unwrap();
    }
}
