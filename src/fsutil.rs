//! Durable file-system helpers: the one atomic-write routine and directory fsync.

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

/// Writes `data` to `target` atomically and durably: a temporary file in the same folder
/// is written, fsynced, renamed over the target, and then the folder is fsynced. A reader
/// sees either the old file or the whole new one, never a part.
pub fn write_atomic(target: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_mode(target, data, 0o666)
}

/// `write_atomic` creating the file with permission bits `mode` (less the umask): 0o600
/// for a file of secrets, which is never readable by others, not even for a moment.
pub fn write_atomic_mode(target: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(unique_tmp_name(&format!(".{name}")));
    let guard = TmpGuard::new(tmp.clone());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, target)?;
    guard.keep();
    sync_dir(&dir)
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
